"""A fake Anthropic Messages API (POST /v1/messages) on 127.0.0.1, for tests and benchmarks.

It answers JSON and SSE exactly in the shape the official SDK parses, returns the API's error
bodies for injected faults, counts tokens deterministically (ceil(chars / 4)) and simulates
prompt caching from `cache_control` breakpoints, so cache reads and writes show up in `usage`
as they would on the real service.

    with FakeAnthropic() as srv:
        srv.route(root=["```repl\\nprint(1)\\n```", "FINAL(1)"], sub=lambda r: "sub answer")
        client = AnthropicClient(api_key="test", base_url=srv.base_url)

Run `python -m rlm_kernel.testing.fake_anthropic --port 8765 --latency 0.2` for manual use."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from ..engine.options import DEFAULT_ROOT_MODEL
from ..engine.pricing import CACHE_READ_FACTOR, CACHE_WRITE_FACTOR
from ._fakeserver import (
    FakeModelServer,
    Fault,
    Reply,
    Request,
    Responder,
    _Handler,
    as_responder,
    bearer_key,
    count_tokens,
    run_cli,
)
from .fake_batches import BatchDesk

__all__ = ["FakeAnthropic", "Reply", "Request"]

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
DEFAULT_MESSAGES = {
    401: "invalid x-api-key",
    404: "Not found",
    413: "Request exceeds the maximum allowed number of bytes.",
    429: "Number of request tokens has exceeded your per-minute rate limit (fake).",
    500: "Internal server error",
    529: "Overloaded",
}
MAX_CACHE_BREAKPOINTS = 4


def error_body(status: int, message: str | None = None) -> dict[str, Any]:
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    message = message or DEFAULT_MESSAGES.get(status, kind)
    return {"type": "error", "error": {"type": kind, "message": message}}


def prompt_blocks(body: dict[str, Any]) -> list[tuple[str, int, bool]]:
    """The prompt as cacheable units in API order (tools, system, messages):
    (canonical form, tokens, carries a cache_control breakpoint)."""

    def unit(where: str, block: Any) -> tuple[str, int, bool]:
        if not isinstance(block, dict):
            block = {"type": "text", "text": str(block)}
        marked = block.get("cache_control") is not None
        clean = {k: v for k, v in block.items() if k != "cache_control"}
        canonical = json.dumps(clean, sort_keys=True)
        is_text = clean.get("type") == "text" and isinstance(clean.get("text"), str)
        text = clean["text"] if is_text else canonical
        return f"{where}:{canonical}", count_tokens(text), marked

    units = [unit("tool", t) for t in body.get("tools") or []]
    system = body.get("system")
    if isinstance(system, str):
        if system:
            units.append(unit("system", system))
    elif isinstance(system, list):
        units += [unit("system", b) for b in system]
    for message in body.get("messages") or []:
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else content or []
        units += [unit(str(message.get("role")), b) for b in blocks]
    return units


def check_tool_turns(messages: list[dict[str, Any]]) -> tuple[int, str] | None:
    """The API's rules for tool use: every tool_use is answered by a tool_result in the very next
    (user) message, results come before any text there, and no result answers an unknown id."""
    for i, message in enumerate(messages):
        content = message.get("content")
        blocks = content if isinstance(content, list) else []
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            prev = messages[i - 1].get("content") if i else None
            asked = {b.get("id") for b in prev if isinstance(b, dict) and b.get("type") == "tool_use"} \
                if isinstance(prev, list) else set()
            stray = [b.get("tool_use_id") for b in results if b.get("tool_use_id") not in asked]
            if stray:
                return 400, (f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {stray[0]}. "
                             "Each `tool_result` block must have a corresponding `tool_use` block in the "
                             "previous message.")
            if any(b.get("type") != "tool_result" for b in blocks[: len(results)]):
                return 400, f"messages.{i}: `tool_result` blocks must come first in the user message."
        uses = [b.get("id") for b in blocks if isinstance(b, dict) and b.get("type") == "tool_use"]
        if uses and i + 1 < len(messages):
            nxt = messages[i + 1].get("content")
            answered = {b.get("tool_use_id") for b in nxt if isinstance(b, dict)} if isinstance(nxt, list) else set()
            missing = [u for u in uses if u not in answered]
            if missing:
                return 400, (f"messages.{i + 1}: `tool_use` ids were found without `tool_result` blocks "
                             f"immediately after: {missing[0]}. Each `tool_use` block must have a "
                             "corresponding `tool_result` block in the next message.")
    return None


class FakeAnthropic(FakeModelServer):
    """Fake Anthropic Messages API on loopback (JSON and SSE, faults, latency, prompt caching)."""

    endpoint = "/v1/messages"
    label = "FakeAnthropic"
    fault_statuses = (429, 529, 500)
    counter_names = ("requests", "input", "output", "cache_read", "cache_write",
                     "batch_requests", "batch_input", "batch_output", "batch_cache_read", "batch_cache_write")

    def __init__(self, *, root_model: str = DEFAULT_ROOT_MODEL, reply: str = "OK", **kwargs: Any) -> None:
        super().__init__(reply=reply, **kwargs)
        #: Requests for this model id count as root requests in `route`.
        self.root_model = root_model
        self.default_reply = reply
        #: The Message Batches endpoints (fake_batches.BatchDesk): `batches.duration`, `.expire_after`.
        self.batches = BatchDesk(self)

    def reset(self) -> None:
        super().reset()
        self.batches.reset()

    @property
    def base_url(self) -> str:
        """What to hand the SDK: the server's root, without /v1."""
        return self.url

    @property
    def accounting(self) -> dict[str, Any]:
        """Totals over successful replies (batch results counted apart, as `batch_*`), plus what the
        ordinary replies would bill as plain input tokens."""
        totals: dict[str, Any] = super().accounting
        totals["billed_equivalent_input"] = (
            totals["input"] + CACHE_READ_FACTOR * totals["cache_read"] + CACHE_WRITE_FACTOR * totals["cache_write"]
        )
        return totals

    def route(
        self,
        root: str | Reply | Responder | Sequence[str | Reply | Responder] | None = None,
        sub: str | Reply | Responder | Sequence[str | Reply | Responder] | None = None,
        *,
        root_model: str | None = None,
    ) -> None:
        """Answer requests for `root_model` (default `self.root_model`) with `root` and all other
        models with `sub`; each is a reply, a function of the request, or a list used in order."""
        if root_model is not None:
            self.root_model = root_model
        default = as_responder(self.default_reply)
        root_fn = as_responder(root, "root script") if root is not None else default
        sub_fn = as_responder(sub, "sub script") if sub is not None else default

        def routed(request: Request) -> str | Reply:
            return root_fn(request) if request.model == self.root_model else sub_fn(request)

        self.responder = routed

    # -- hooks --
    def _serve_other(self, h: _Handler, request: Request) -> bool:
        return self.batches.serve(h, request)

    def _auth_problem(self, headers: Any) -> tuple[int, str] | None:
        if self.api_key is not None and bearer_key(headers) != self.api_key:
            return 401, "invalid x-api-key"
        if not headers.get("anthropic-version"):
            return 400, "anthropic-version: header is required"
        return None

    def _check(self, request: Request, headers: Any) -> tuple[int, str] | None:
        problem = self._auth_problem(headers)
        if problem is not None:
            return problem
        for name, kind in (("model", str), ("max_tokens", int), ("messages", list)):
            if not isinstance(request.get(name), kind):
                return 400, f"{name}: Field required"
        if not request["messages"]:
            return 400, "messages: at least one message is required"
        if self.models is not None and request.model not in self.models:
            return 404, f"model: {request.model}"
        blocks = prompt_blocks(request)
        marks = sum(1 for _, _, marked in blocks if marked)
        if marks > MAX_CACHE_BREAKPOINTS:
            return 400, (
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. "
                f"Found {marks}."
            )
        total = sum(tokens for _, tokens, _ in blocks)
        if self.context_window is not None and total > self.context_window:
            return 400, f"prompt is too long: {total} tokens > {self.context_window} maximum"
        return check_tool_turns(request["messages"])

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        return error_body(status, message)

    def _message(self, request: Request, reply: Reply, *, batch: bool = False) -> dict[str, Any]:
        """The Message answering `request` with `reply`, its usage from the cache simulation. A batch
        result is counted in the accounting at once; a live reply by `_reply`, as it goes out."""
        text, stop_reason, stop_sequence = self._shape(request, reply)
        uses = [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["input"]}
                for c in reply.tool_calls]
        if uses and reply.stop_reason is None and stop_reason == "end_turn":
            stop_reason = "tool_use"
        uncached, read, write = self.cache.account(request["model"], prompt_blocks(request))
        usage = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": count_tokens(text) + sum(count_tokens(json.dumps(u["input"])) for u in uses),
        }
        if batch:
            self._counters.add(batch_requests=1, batch_input=uncached, batch_output=usage["output_tokens"],
                               batch_cache_read=read, batch_cache_write=write)
        return {
            "id": f"msg_fake_{request.index:06d}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": ([{"type": "text", "text": text}] if text or not uses else []) + uses,
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }

    def _reply(self, h: _Handler, request: Request, reply: Reply, fault: Fault | None) -> None:
        message = self._message(request, reply)
        usage = message["usage"]
        uncached, read, write = (usage["input_tokens"], usage["cache_read_input_tokens"],
                                 usage["cache_creation_input_tokens"])

        def account() -> None:  # before the last byte goes out, so a client never sees stale totals
            self._counters.add(requests=1, input=uncached, output=usage["output_tokens"], cache_read=read,
                               cache_write=write)

        if request.stream and reply.cut:
            self._cut_stream(h, request, message)
        elif request.stream:
            self._stream(h, request, message, fault, account)
        else:
            request.status = 200
            account()
            h.send_json(200, message, self._response_headers())

    def _shape(self, request: Request, reply: Reply) -> tuple[str, str, str | None]:
        """Apply stop_sequences and max_tokens the way the API does."""
        text, stop_reason, stop_sequence = reply.text, reply.stop_reason or "end_turn", None
        hits = [(text.find(s), s) for s in request.get("stop_sequences") or [] if s and s in text]
        if hits:
            cut, stop_sequence = min(hits)
            text, stop_reason = text[:cut], "stop_sequence"
        if count_tokens(text) > request["max_tokens"]:
            text, stop_reason, stop_sequence = text[: 4 * request["max_tokens"]], "max_tokens", None
        return text, stop_reason, stop_sequence

    def _stream(
        self, h: _Handler, request: Request, message: dict[str, Any], fault: Fault | None,
        account: Callable[[], None],
    ) -> None:
        """Send `message` as the API's event sequence, or cut it short with `fault`."""

        def event(name: str, data: dict[str, Any]) -> None:
            h.write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n")

        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**message["usage"], "output_tokens": 1}}
        request.status = 200
        h.start_stream(self._response_headers())
        event("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                opening = {"type": "text", "text": ""}
                pieces = [{"type": "text_delta", "text": p} for p in self._chunks(block["text"])]
            else:  # tool_use: the input arrives as pieces of its JSON text (input_json_delta)
                opening = {**block, "input": {}}
                raw = json.dumps(block["input"])
                pieces = [{"type": "input_json_delta", "partial_json": p} for p in self._chunks(raw)]
            event("content_block_start", {"type": "content_block_start", "index": index,
                                          "content_block": opening})
            if index == 0:
                event("ping", {"type": "ping"})
            for i, delta in enumerate(pieces):
                if i or index:
                    self._pause_between_chunks()
                event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
                if fault is not None:
                    body = error_body(fault.status, fault.message)
                    request.error_type = body["error"]["type"]
                    event("error", body)
                    h.end_stream()
                    return
            event("content_block_stop", {"type": "content_block_stop", "index": index})
        if fault is not None:  # nothing was streamed to cut short
            body = error_body(fault.status, fault.message)
            request.error_type = body["error"]["type"]
            event("error", body)
            h.end_stream()
            return
        event("message_delta", {"type": "message_delta",
                                "delta": {"stop_reason": message["stop_reason"],
                                          "stop_sequence": message["stop_sequence"]},
                                "usage": {"output_tokens": message["usage"]["output_tokens"]}})
        account()
        event("message_stop", {"type": "message_stop"})
        h.end_stream()


    def _cut_stream(self, h: _Handler, request: Request, message: dict[str, Any]) -> None:
        """A stream that stops before message_delta: no stop reason, and no events at all for ''."""
        request.status, request.cut = 200, True
        h.start_stream(self._response_headers())
        text = message["content"][0]["text"]
        if text:
            start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
            h.write_chunk(f"event: message_start\ndata: {json.dumps({'type': 'message_start', 'message': start})}\n\n")
            block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
            h.write_chunk(f"event: content_block_start\ndata: {json.dumps(block)}\n\n")
            delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}
            h.write_chunk(f"event: content_block_delta\ndata: {json.dumps(delta)}\n\n")
        h.end_stream()


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(FakeAnthropic, "rlm_kernel.testing.fake_anthropic", argv)


if __name__ == "__main__":
    main()
