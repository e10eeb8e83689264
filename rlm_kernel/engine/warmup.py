"""Pay a fresh process's one-time costs before the first question, on a daemon thread.

The first `rlm()` in a process used to spend ~0.3-0.45 s that later calls do not: importing the
SDK, building its client (TLS context, CA bundle), and the first streamed request, which lazily
imports the HTTP stack's connection and async-backend modules and fills the SDK's type caches.
`warmup()` does all of that in the background (the kernel starts it as it starts), so the first
run reuses the very client it built (same cache key as `make_clients`). It never reaches a network:
the first-request path is exercised against a one-shot responder inside this process on loopback,
and skipped altogether when a proxy is configured (the request could otherwise leave the machine)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import threading
import time
from typing import Any

from .clientset import ConfigError, make_clients, resolve_provider
from .modelio import ModelIO, default_io
from .options import RLMOptions

Timings = dict[str, Any]

#: The longest a gated warm-up waits for its signal before it starts anyway.
AFTER_WAIT = 5.0

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy")


def warmup(options: RLMOptions | None = None, *, io: ModelIO | None = None, after: threading.Event | None = None,
           **overrides: Any) -> concurrent.futures.Future[Timings]:
    """Start warming up and return at once. The future's result says how long each piece took
    (seconds); it never raises: a failure is recorded under "error" (its one-line text).

    `after`: begin only once this is set (at most AFTER_WAIT seconds later). The kernel sets it when
    it has answered its first kernel_info request: importing the SDK holds the GIL for most of a
    second, which would otherwise delay the kernel's start as a client sees it."""
    fut: concurrent.futures.Future[Timings] = concurrent.futures.Future()

    def work() -> None:
        timings: Timings = {}
        try:
            if after is not None:
                after.wait(AFTER_WAIT)
            _warm(options, io, overrides, timings)
        except BaseException as exc:  # a warm-up must never hurt its host
            timings["error"] = f"{type(exc).__name__}: {exc}"[:200]
        fut.set_result(timings)

    threading.Thread(target=work, name="rlm-warmup", daemon=True).start()
    return fut


def _timed(timings: Timings, name: str, t0: float) -> float:
    now = time.perf_counter()
    timings[name] = round(now - t0, 4)
    return now


def _warm(options: RLMOptions | None, io: ModelIO | None, overrides: dict[str, Any], timings: Timings) -> None:
    t = time.perf_counter()
    opts = (options or RLMOptions()).merged(**overrides)
    try:
        provider = resolve_provider(opts)
    except ConfigError:  # nothing configured yet: the SDK import is all a later run could reuse
        provider = None
    if provider == "demo":
        return
    if provider == "openai":
        from .clients.openai_client import import_openai

        import_openai()
    else:
        from .clients import anthropic_client  # noqa: F401 - imports the SDK
    t = _timed(timings, "import", t)
    io = io or default_io()
    io.loop  # noqa: B018 - starts the model-I/O thread
    t = _timed(timings, "io_thread", t)
    if provider is None:
        return
    clients = make_clients(opts, io)  # cached under the key a run with these options will look up
    sdk = io.call_sync(_sdk_of(clients.root), timeout=30)
    t = _timed(timings, "client", t)
    if provider == "anthropic" and sdk is not None and not _proxied():
        io.call_sync(_first_request(sdk), timeout=30)
        t = _timed(timings, "first_request", t)
    _read_a_reply()
    _timed(timings, "parser", t)


def _read_a_reply() -> None:
    """Read one reply the way a run reads the first: the tokenizer's patterns compile on first use
    (14-18 ms of CPU under a profiler, in a cold run only)."""
    from .protocol.recognize import hidden_finals, only_comments

    hidden_finals("x = 1  # FINAL(x)\n")
    only_comments("# a comment\n")


async def _sdk_of(client: Any) -> Any:
    """The SDK client, built on the I/O loop (where the run will use it)."""
    build = getattr(client, "_client", None)
    return build() if build is not None else None


def _proxied() -> bool:
    return any(os.environ.get(v) or os.environ.get(v.upper()) for v in _PROXY_VARS)


async def _first_request(sdk: Any) -> None:
    """One streamed Messages request (a root turn) and one plain one (a sub-call) to a responder on
    127.0.0.1 in this process, through a copy of the run's SDK client that shares its HTTP client (so
    the same transport's lazy paths are taken)."""
    server = await asyncio.start_server(_answer, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        probe = sdk.with_options(base_url=f"http://127.0.0.1:{port}", max_retries=0, timeout=10.0)
        params: dict[str, Any] = {"model": "warmup", "max_tokens": 1,
                                  "messages": [{"role": "user", "content": "warm-up"}]}
        async with probe.messages.stream(**params) as stream:
            await stream.get_final_message()
        await probe.messages.create(**params)
    finally:
        server.close()


def _sse(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()


_MESSAGE = {"id": "msg_warmup", "type": "message", "role": "assistant", "model": "warmup",
            "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}

_STREAM = b"".join([
    _sse("message_start", {"message": {
        "id": "msg_warmup", "type": "message", "role": "assistant", "model": "warmup", "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 1, "output_tokens": 0}}}),
    _sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    _sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
    _sse("content_block_stop", {"index": 0}),
    _sse("message_delta", {"delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 1}}),
    _sse("message_stop", {}),
])


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read one request and answer it with a canned event stream, then close the connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        body = json.loads(await reader.readexactly(length)) if length else {}
        reply, kind = (_STREAM, b"text/event-stream") if body.get("stream") else (
            json.dumps(_MESSAGE).encode(), b"application/json")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\nconnection: close\r\n"
                     b"content-length: %d\r\n\r\n" % (kind, len(reply)) + reply)
        await writer.drain()
    finally:
        writer.close()
