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


class FakeAnthropic(FakeModelServer):
    """Fake Anthropic Messages API on loopback (JSON and SSE, faults, latency, prompt caching)."""

    endpoint = "/v1/messages"
    label = "FakeAnthropic"
    fault_statuses = (429, 529, 500)
    counter_names = ("requests", "input", "output", "cache_read", "cache_write")

    def __init__(self, *, root_model: str = DEFAULT_ROOT_MODEL, reply: str = "OK", **kwargs: Any) -> None:
        super().__init__(reply=reply, **kwargs)
        #: Requests for this model id count as root requests in `route`.
        self.root_model = root_model
        self.default_reply = reply

    @property
    def base_url(self) -> str:
        """What to hand the SDK: the server's root, without /v1."""
        return self.url

    @property
    def accounting(self) -> dict[str, Any]:
        """Totals over successful replies, plus what they would bill as plain input tokens."""
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
    def _check(self, request: Request, headers: Any) -> tuple[int, str] | None:
        if self.api_key is not None and bearer_key(headers) != self.api_key:
            return 401, "invalid x-api-key"
        if not headers.get("anthropic-version"):
            return 400, "anthropic-version: header is required"
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
        return None

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        return error_body(status, message)

    def _reply(self, h: _Handler, request: Request, reply: Reply, fault: Fault | None) -> None:
        text, stop_reason, stop_sequence = self._shape(request, reply)
        uncached, read, write = self.cache.account(request["model"], prompt_blocks(request))
        usage = {
            "input_tokens": uncached,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "output_tokens": count_tokens(text),
        }
        message = {
            "id": f"msg_fake_{request.index:06d}",
            "type": "message",
            "role": "assistant",
            "model": request["model"],
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop_reason,
            "stop_sequence": stop_sequence,
            "usage": usage,
        }

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

        text = message["content"][0]["text"]
        start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
                 "usage": {**message["usage"], "output_tokens": 1}}
        request.status = 200
        h.start_stream(self._response_headers())
        event("message_start", {"type": "message_start", "message": start})
        event("content_block_start", {"type": "content_block_start", "index": 0,
                                      "content_block": {"type": "text", "text": ""}})
        event("ping", {"type": "ping"})
        for i, piece in enumerate(self._chunks(text)):
            if i:
                self._pause_between_chunks()
            event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                          "delta": {"type": "text_delta", "text": piece}})
            if fault is not None:
                break
        if fault is not None:
            body = error_body(fault.status, fault.message)
            request.error_type = body["error"]["type"]
            event("error", body)
            h.end_stream()
            return
        event("content_block_stop", {"type": "content_block_stop", "index": 0})
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
