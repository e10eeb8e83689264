"""A fake OpenAI-compatible chat-completions server (POST /v1/chat/completions) on 127.0.0.1,
standing in for vLLM, Ollama or llama.cpp in tests and benchmarks.

JSON and SSE (`data: {...}` chunks, a final usage chunk when `stream_options.include_usage`,
then `data: [DONE]`), the same scripting, faults, latency and recording as FakeAnthropic, and
with `prefix_caching = True` the automatic prefix cache such servers report as
`usage.prompt_tokens_details.cached_tokens`. `base_url` ends in /v1, as OpenAI clients expect.

Run `python -m rlm_kernel.testing.fake_openai --port 8766` for manual use."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._fakeserver import (
    FakeModelServer,
    Fault,
    Reply,
    Request,
    _Handler,
    bearer_key,
    content_text,
    count_tokens,
    run_cli,
)

__all__ = ["FakeOpenAI", "Reply", "Request"]

ERRORS = {  # status: (type, code, default message)
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    404: ("invalid_request_error", "model_not_found", "Not found"),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached (fake)."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, message: str | None = None, code: str | None = None) -> dict[str, Any]:
    kind, default_code, default_message = ERRORS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, f"Error {status}")
    )
    return {"error": {"message": message or default_message, "type": kind, "param": None,
                      "code": code or default_code}}


def check_tool_turns(messages: list[dict[str, Any]]) -> tuple[int, str] | None:
    """OpenAI's rules for tool use: an assistant message with `tool_calls` is followed by one `tool`
    message per call id, and a `tool` message answers a call of the assistant message before it."""
    open_ids: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            if message.get("tool_call_id") not in open_ids:
                return 400, (f"Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                             f"message with 'tool_calls' (messages[{i}]).")
            open_ids.discard(message["tool_call_id"])
            continue
        if open_ids:
            return 400, ("An assistant message with 'tool_calls' must be followed by tool messages responding "
                         f"to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
                         f"{sorted(open_ids)[0]}")
        open_ids = {c.get("id") for c in message.get("tool_calls") or []} if role == "assistant" else set()
    return None


class FakeOpenAI(FakeModelServer):
    """Fake OpenAI-compatible chat completions on loopback (JSON and SSE, faults, latency)."""

    endpoint = "/v1/chat/completions"
    label = "FakeOpenAI"
    fault_statuses = (429, 500, 503)
    counter_names = ("requests", "prompt_tokens", "completion_tokens", "cached_tokens")

    def __init__(self, *, reply: str = "OK", **kwargs: Any) -> None:
        super().__init__(reply=reply, **kwargs)
        #: Report reused message prefixes as cached_tokens, like vLLM/OpenAI automatic caching.
        self.prefix_caching = False

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def _check(self, request: Request, headers: Any) -> tuple[int, str] | None:
        if self.api_key is not None and bearer_key(headers) != self.api_key:
            return 401, "Incorrect API key provided."
        if not isinstance(request.get("model"), str):
            return 400, "you must provide a model parameter"
        if not isinstance(request.get("messages"), list) or not request["messages"]:
            return 400, "messages: a non-empty list is required"
        if self.models is not None and request.model not in self.models:
            return 404, f"The model `{request.model}` does not exist or you do not have access to it."
        total = sum(tokens for _, tokens, _ in self._blocks(request))
        if self.context_window is not None and total > self.context_window:
            return 400, (f"This model's maximum context length is {self.context_window} tokens. "
                         f"However, your messages resulted in {total} tokens.")
        return check_tool_turns(request["messages"])

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        code = "context_length_exceeded" if message and "maximum context length" in message else None
        return error_body(status, message, code)

    @staticmethod
    def _blocks(request: Request) -> list[tuple[str, int, bool]]:
        """One cacheable unit per message; every message end is a possible prefix boundary."""
        def text(m: dict[str, Any]) -> str:
            return content_text(m.get("content")) + (json.dumps(m["tool_calls"]) if m.get("tool_calls") else "")

        return [(json.dumps(m, sort_keys=True), count_tokens(text(m)), True) for m in request["messages"]]

    def _reply(self, h: _Handler, request: Request, reply: Reply, fault: Fault | None) -> None:
        text, finish = self._shape(request, reply)
        calls = [{"id": c["id"], "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["input"])}} for c in reply.tool_calls]
        if calls and reply.stop_reason is None and finish == "stop":
            finish = "tool_calls"
        blocks = self._blocks(request)
        if self.prefix_caching:
            uncached, cached, written = self.cache.account(request["model"], blocks)
            prompt = uncached + cached + written
        else:
            prompt, cached = sum(tokens for _, tokens, _ in blocks), 0
        completion = count_tokens(text) + sum(count_tokens(c["function"]["arguments"]) for c in calls)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        }
        ident, created = f"chatcmpl-fake-{request.index:06d}", int(time.time())
        request.status = 200

        def account() -> None:  # before the last byte goes out, so a client never sees stale totals
            self._counters.add(
                requests=1, prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached
            )

        if request.stream:
            self._stream(h, request, ident, created, text, finish, usage, fault, account, calls)
        else:
            account()
            h.send_json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text or None if calls else text,
                                                     **({"tool_calls": calls} if calls else {})},
                             "finish_reason": finish, "logprobs": None}],
                "usage": usage,
            }, self._response_headers())

    @staticmethod
    def _shape(request: Request, reply: Reply) -> tuple[str, str]:
        text, finish = reply.text, reply.stop_reason or "stop"
        stops = request.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        hits = [text.find(s) for s in stops if s and s in text]
        if hits:
            text, finish = text[: min(hits)], "stop"
        limit = request.get("max_completion_tokens") or request.get("max_tokens")
        if isinstance(limit, int) and count_tokens(text) > limit:
            text, finish = text[: 4 * limit], "length"
        return text, finish

    def _stream(
        self, h: _Handler, request: Request, ident: str, created: int, text: str, finish: str,
        usage: dict[str, Any], fault: Fault | None, account: Callable[[], None],
        calls: list[dict[str, Any]] | None = None,
    ) -> None:
        with_usage = bool((request.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": request["model"], "choices": choices, **extra}
            if with_usage:
                data.setdefault("usage", None)
            h.write_chunk(f"data: {json.dumps(data)}\n\n")

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk([{"index": 0, "delta": d, "finish_reason": finish_reason, "logprobs": None}])

        h.start_stream(self._response_headers())
        delta({"role": "assistant", "content": ""})
        for i, piece in enumerate(self._chunks(text)):
            if i:
                self._pause_between_chunks()
            delta({"content": piece})
            if fault is not None:
                break
        if fault is not None:
            body = error_body(fault.status, fault.message)
            request.error_type = body["error"]["type"]
            h.write_chunk(f"data: {json.dumps(body)}\n\n")
            h.end_stream()
            return
        for index, call in enumerate(calls or []):  # id and name first, then the arguments in pieces
            fn = call["function"]
            delta({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                   "function": {"name": fn["name"], "arguments": ""}}]})
            for piece in self._chunks(fn["arguments"]):
                self._pause_between_chunks()
                delta({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        delta({}, finish)
        if with_usage:
            chunk([], usage=usage)
        account()
        h.write_chunk("data: [DONE]\n\n")
        h.end_stream()


def main(argv: Sequence[str] | None = None) -> None:
    run_cli(FakeOpenAI, "rlm_kernel.testing.fake_openai", argv)


if __name__ == "__main__":
    main()
