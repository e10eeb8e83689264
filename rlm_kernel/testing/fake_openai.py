"""A fake OpenAI-compatible chat-completions server (POST /v1/chat/completions) on 127.0.0.1,
standing in for vLLM, Ollama or llama.cpp in tests and benchmarks.

JSON and SSE (`data: {...}` chunks, a final usage chunk when `stream_options.include_usage`,
then `data: [DONE]`), the same scripting, faults, latency and recording as FakeAnthropic, and
with `prefix_caching = True` the automatic prefix cache such servers report as
`usage.prompt_tokens_details.cached_tokens`. `base_url` ends in /v1, as OpenAI clients expect.

`like(kind)` reproduces what real local servers do: "vllm" lists `max_model_len` in GET /v1/models;
"llama.cpp" has GET /props with `default_generation_settings.n_ctx`; "llama-cpp-python" lists
models with no window, answers a streamed prompt over its window with HTTP 200 and an empty stream
(non-streamed: a 400 naming the window), sends no usage in streams, and serves one request at a
time; with `interrupt_requests = True` a streamed reply is cut off (no finish reason) as soon as
another request is waiting, as llama-cpp-python's default does.

Run `python -m rlm_kernel.testing.fake_openai --port 8766` for manual use."""

from __future__ import annotations

import json
import threading
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
        #: Which window endpoint GET serves: None (none), "vllm", "llama.cpp", "llama-cpp-python".
        self.listing: str | None = None
        #: The model id listed when `models` is not set.
        self.served_model = "fake-model"
        #: Send the usage chunk a stream asks for (llama-cpp-python never does).
        self.stream_usage = True
        #: A streamed prompt over `context_window` gets HTTP 200 and an empty body (llama-cpp-python).
        self.overflow_empty_stream = False
        #: Serve one request at a time (llama-cpp-python); the rest wait their turn.
        self.one_at_a_time = False
        #: While one request streams, another waiting cuts it off (llama-cpp-python's default).
        self.interrupt_requests = False
        self._turn = threading.Lock()
        self._waiting = 0
        self._waiting_lock = threading.Lock()

    def like(self, kind: str) -> FakeOpenAI:
        """Behave like the named local server (see the module docstring); returns self."""
        if kind not in ("vllm", "llama.cpp", "llama-cpp-python"):
            raise ValueError(f"unknown server kind {kind!r}; use vllm, llama.cpp or llama-cpp-python")
        self.listing = kind
        if kind == "llama-cpp-python":
            self.stream_usage = False
            self.overflow_empty_stream = True
            self.one_at_a_time = True
        return self

    def _get(self, path: str) -> Any:
        ids = sorted(self.models) if self.models else [self.served_model]
        if path == "/v1/models" and self.listing is not None:
            extra: dict[str, Any] = {"owned_by": "me", "permissions": []}
            if self.listing == "vllm":
                extra = {"owned_by": "vllm", "max_model_len": self.context_window}
            elif self.listing == "llama.cpp":
                extra = {"owned_by": "llamacpp", "meta": {"n_ctx_train": 32768}}
            return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, **extra} for i in ids]}
        if path == "/props" and self.listing == "llama.cpp":
            return {"default_generation_settings": {"n_ctx": self.context_window, "params": {}},
                    "total_slots": 1, "model_path": f"/models/{ids[0]}.gguf"}
        return None

    def _refuse(self, h: _Handler, request: Request, status: int, message: str) -> None:
        if self.overflow_empty_stream and request.stream and "maximum context length" in message:
            request.status, request.cut = 200, True  # the error is only in the server's log
            h.start_stream(self._response_headers())
            h.end_stream()
            return
        super()._refuse(h, request, status, message)

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
        if not (self.one_at_a_time or self.interrupt_requests):
            return self._send_reply(h, request, reply, fault)
        with self._waiting_lock:
            self._waiting += 1
        with self._turn:
            with self._waiting_lock:
                self._waiting -= 1
            self._send_reply(h, request, reply, fault)

    def _interrupted(self) -> bool:
        with self._waiting_lock:
            return self.interrupt_requests and self._waiting > 0

    def _send_reply(self, h: _Handler, request: Request, reply: Reply, fault: Fault | None) -> None:
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

        finish_reason = None if reply.cut else finish
        if request.stream:
            self._stream(h, request, ident, created, text, finish_reason, usage, fault, account, calls)
        else:
            account()
            h.send_json(200, {
                "id": ident, "object": "chat.completion", "created": created, "model": request["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text or None if calls else text,
                                                     **({"tool_calls": calls} if calls else {})},
                             "finish_reason": finish_reason, "logprobs": None}],
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
        self, h: _Handler, request: Request, ident: str, created: int, text: str, finish: str | None,
        usage: dict[str, Any], fault: Fault | None, account: Callable[[], None],
        calls: list[dict[str, Any]] | None = None,
    ) -> None:
        """Stream `text`; `finish` None ends it without a finish reason (a scripted cut)."""
        with_usage = self.stream_usage and bool((request.get("stream_options") or {}).get("include_usage"))

        def chunk(choices: list[dict[str, Any]], **extra: Any) -> None:
            data = {"id": ident, "object": "chat.completion.chunk", "created": created,
                    "model": request["model"], "choices": choices, **extra}
            if with_usage:
                data.setdefault("usage", None)
            h.write_chunk(f"data: {json.dumps(data)}\n\n")

        def delta(d: dict[str, Any], finish_reason: str | None = None) -> None:
            chunk([{"index": 0, "delta": d, "finish_reason": finish_reason, "logprobs": None}])

        def cut() -> None:  # [DONE] with no finish reason, as llama-cpp-python ends an interrupted stream
            request.cut = True
            h.write_chunk("data: [DONE]\n\n")
            h.end_stream()

        h.start_stream(self._response_headers())
        delta({"role": "assistant", "content": ""})
        if self._interrupted():
            return cut()
        for i, piece in enumerate(self._chunks(text)):
            if i:
                self._pause_between_chunks()
            delta({"content": piece})
            if fault is not None:
                break
            if self._interrupted():
                return cut()
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
        if finish is None:
            return cut()
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
