"""What the fake model servers share: a threaded HTTP server bound to loopback only, scripted
replies, injected and random faults, per-request latency, request recording, token counting and
a prompt-cache simulation.

The fakes speak the real wire formats so tests and benchmarks go through the official SDKs
(their retries, SSE parsing and error classes) instead of mocks."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import math
import random
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

LOOPBACK = "127.0.0.1"
#: Request headers never kept in `requests` (credentials).
SECRET_HEADERS = frozenset({"authorization", "x-api-key", "proxy-authorization", "cookie", "api-key"})


def count_tokens(text: str) -> int:
    """Deterministic stand-in for a tokenizer: one token per four characters, rounded up."""
    return math.ceil(len(text) / 4)


class Request(dict):
    """One request as received: the parsed JSON body (this dict itself, so responders can read
    `request["messages"]`) plus `headers` (lower-cased, credentials removed), `size` in bytes,
    `time` (monotonic, on arrival), `path`, and after the reply `status` and `error_type`."""

    def __init__(self, body: dict[str, Any], *, path: str, headers: dict[str, str], size: int, index: int):
        super().__init__(body)
        self.path = path
        self.headers = headers
        self.size = size
        self.index = index
        self.time = time.monotonic()
        self.status: int | None = None
        self.error_type: str | None = None
        #: The streamed reply ended without a finish reason (a cut-short or empty stream).
        self.cut = False

    @property
    def model(self) -> str | None:
        return self.get("model")

    @property
    def stream(self) -> bool:
        return bool(self.get("stream"))

    @property
    def retry_count(self) -> int:
        """How many times the SDK had already tried this request (its x-stainless-retry-count)."""
        try:
            return int(self.headers.get("x-stainless-retry-count", "0"))
        except ValueError:
            return 0

    def tool_results(self) -> list[dict[str, Any]]:
        """The tool results this request brings, those after its last assistant message, in either
        API's shape (Anthropic tool_result blocks, OpenAI `tool` messages): `{"id", "content", "is_error"}`."""
        messages = self.get("messages") or []
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1)
        out: list[dict[str, Any]] = []
        for m in messages[last + 1 :]:
            if m.get("role") == "tool":
                out.append({"id": m.get("tool_call_id"), "content": content_text(m.get("content")),
                            "is_error": False})
            content = m.get("content")
            for b in content if isinstance(content, list) else []:
                if isinstance(b, dict) and b.get("type") == "tool_result":
                    inner = b.get("content")
                    out.append({"id": b.get("tool_use_id"),
                                "content": inner if isinstance(inner, str) else content_text(inner),
                                "is_error": bool(b.get("is_error"))})
        return out

    def user_texts(self) -> list[str]:
        """The text of every user message, in order."""
        return [content_text(m.get("content")) for m in self.get("messages") or [] if m.get("role") == "user"]

    def first_user_text(self) -> str:
        """The text of the first user message: a run's question (and its preview)."""
        texts = self.user_texts()
        return texts[0] if texts else ""

    @property
    def turn(self) -> int:
        """How many assistant replies the conversation already holds (0 on a run's first request)."""
        return sum(1 for m in self.get("messages") or [] if m.get("role") == "assistant")

    def last_user_text(self) -> str:
        """The text of the last user message, whether its content is a string or blocks."""
        for message in reversed(self.get("messages") or []):
            if message.get("role") == "user":
                return content_text(message.get("content"))
        return ""


def by_question(default: Sequence[str], scripts: Mapping[str, Sequence[str]] | None = None
                ) -> Callable[[Request], str]:
    """A root responder for several runs on one fake (a root and its children, a question and its
    follow-up): the script of the first key found in the run's first user message, else `default`;
    within it the reply for this turn (the last one again once the script is used up)."""
    chosen = dict(scripts or {})

    def respond(request: Request) -> str:
        first = request.first_user_text()
        script = next((s for key, s in chosen.items() if key in first), default)
        return script[min(request.turn, len(script) - 1)]

    return respond


def content_text(content: Any) -> str:
    """The text of a message's (or the system prompt's) content, a string or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text")
    return ""


@dataclass
class Reply:
    """A scripted reply; a plain string means `Reply(text)`. `stop_reason` None means the API's
    normal end ("end_turn" / "stop", or "tool_use" / "tool_calls" when the reply calls tools)
    unless the fake truncates for max_tokens. `tool_calls` are made with `tool_call(...)`. With `cut`,
    the reply ends after its text with no finish/stop reason, the way a server that dropped the
    request ends it (streamed with text "": an empty stream; FakeOpenAI's JSON: finish_reason null)."""

    text: str = ""
    stop_reason: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    cut: bool = False


_tool_ids = itertools.count(1)


def tool_call(name: str, call_id: str | None = None, **tool_input: Any) -> dict[str, Any]:
    """One scripted tool call for `Reply(tool_calls=[...])`: `tool_call("python", code="print(1)")`."""
    return {"id": call_id or f"call_fake_{next(_tool_ids):05d}", "name": name, "input": tool_input}


Responder = Callable[[Request], "str | Reply"]


class ScriptExhausted(Exception):
    """A scripted responder ran out of replies: the test sent more requests than it expected."""


def as_responder(spec: Any, name: str = "script") -> Responder:
    """A responder from a reply, a function, or a list of either answered in order."""
    if callable(spec):
        return spec
    if isinstance(spec, str | Reply):
        return lambda _request: spec
    items = list(spec)
    lock = threading.Lock()
    position = itertools.count()

    def scripted(request: Request) -> str | Reply:
        with lock:
            i = next(position)
        if i >= len(items):
            raise ScriptExhausted(f"{name} has {len(items)} replies; request #{i + 1} asked for another")
        item = items[i]
        return item(request) if callable(item) else item

    return scripted


@dataclass
class Fault:
    """An error to return instead of a reply, `times` times, to requests that `match`."""

    status: int
    times: int = 1
    retry_after: float | None = None
    retry_after_ms: float | None = None
    match: Callable[[Request], bool] | None = None
    message: str | None = None
    #: Anthropic only: fail inside an open SSE stream (`event: error`), which the SDK does not retry.
    in_stream: bool = False

    def headers(self) -> dict[str, str]:
        h: dict[str, str] = {}
        if self.retry_after is not None:
            ra = self.retry_after
            h["retry-after"] = str(int(ra)) if float(ra).is_integer() else str(ra)
        if self.retry_after_ms is not None:
            h["retry-after-ms"] = str(self.retry_after_ms)
        return h


class PromptCache:
    """Prefix cache keyed by (model, hash of the blocks up to a breakpoint), like the real one:
    a breakpoint whose prefix is at least `min_tokens` is written; a later request whose prefix
    up to one of its breakpoints equals a written one reads it. Entries live `ttl` seconds from
    their last use."""

    def __init__(self, min_tokens: int = 1024, ttl: float = 300.0) -> None:
        self.min_tokens = min_tokens
        self.ttl = ttl
        self._entries: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def account(self, model: str, blocks: Sequence[tuple[str, int, bool]]) -> tuple[int, int, int]:
        """`blocks` are (canonical text, tokens, is_breakpoint) in prompt order.
        Returns (uncached input tokens, cache read tokens, cache write tokens)."""
        total = sum(tokens for _, tokens, _ in blocks)
        digest = hashlib.sha256(model.encode())
        prefixes: list[tuple[str, int]] = []  # (hash, tokens) at each breakpoint
        running = 0
        for text, tokens, breakpoint in blocks:
            digest.update(hashlib.sha256(text.encode()).digest())
            running += tokens
            if breakpoint:
                prefixes.append((digest.hexdigest(), running))
        now = time.monotonic()
        read = write_to = 0
        with self._lock:
            for key, expires in list(self._entries.items()):
                if expires < now:
                    del self._entries[key]
            for h, tokens in prefixes:
                if (model, h) in self._entries:
                    read = max(read, tokens)
            for h, tokens in prefixes:
                if tokens >= self.min_tokens:
                    if (model, h) not in self._entries and tokens > read:
                        write_to = max(write_to, tokens)
                    self._entries[(model, h)] = now + self.ttl
        write = max(0, write_to - read)
        return total - read - write, read, write


class _Counters:
    """Thread-safe running totals."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = tuple(names)
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        with self._lock:
            self._values = dict.fromkeys(self._names, 0)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for k, v in amounts.items():
                self._values[k] += v

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, owner: FakeModelServer, port: int) -> None:
        self.owner = owner
        self.open_connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__((LOOPBACK, port), _Handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        return client_address[0] == LOOPBACK

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-reply is not the server's problem


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as separate writes; without this, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every reply.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.conn_lock:
            self.server.open_connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.open_connections.discard(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.server.owner._handle(self)

    def do_GET(self) -> None:
        self.server.owner._handle(self)

    # -- writing helpers used by the servers --
    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def start_stream(self, headers: dict[str, str] | None = None) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def write_chunk(self, text: str) -> None:
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeModelServer:
    """Base of FakeAnthropic and FakeOpenAI. Subclasses define the endpoint and wire format.

    Knobs (all may be changed while running): `responder`, `latency` (seconds or a function of
    the request), `stream_delay` (seconds between streamed deltas), `stream_hold` (a threading.Event:
    after the first delta the stream waits until it is set, so a test proves deltas reach the client
    before the reply ends by setting it from its callback; `stream_hold_expired` counts waits that timed
    out), `chunk_chars` (characters per delta), `fault_rate` with `fault_retry_after_ms`, `api_key`
    (require this key), `models` (only these ids exist), `context_window` (reject longer prompts),
    `cache.min_tokens`, `max_in_flight` with `in_flight_retry_after` (429 beyond that many concurrent
    requests)."""

    endpoint: ClassVar[str] = "/v1/messages"
    label: ClassVar[str] = "fake"
    #: What random faults (`fault_rate`) answer with: statuses the SDKs retry.
    fault_statuses: ClassVar[tuple[int, ...]] = (429, 500)
    #: Random faults hit a request at most this often (counting the SDK's retries), so a client
    #: with the SDK's default of 2 retries always gets through.
    max_faults_per_request: ClassVar[int] = 1
    counter_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float | Callable[[Request], float] = 0.0,
        fault_rate: float = 0.0,
        seed: int = 0,
        min_cacheable: int = 1024,
        reply: str = "OK",
    ) -> None:
        self._port = port
        self.responder: Responder = as_responder(reply)
        self.latency = latency
        self.stream_delay = 0.0
        self.stream_hold: threading.Event | None = None
        self.stream_hold_timeout = 10.0
        self.stream_hold_expired = 0
        self.chunk_chars = 12
        self.fault_rate = fault_rate
        self.fault_retry_after_ms: float | None = 20
        self.api_key: str | None = None
        self.models: set[str] | None = None
        self.context_window: int | None = None
        self.cache = PromptCache(min_cacheable)
        #: Like a real rate limit on concurrent requests: beyond this many in flight on the endpoint,
        #: answer 429 with `in_flight_retry_after` seconds in retry-after (None: no limit).
        self.max_in_flight: int | None = None
        self.in_flight_retry_after: float = 0.5
        self._in_flight = 0
        #: The most requests the server has held at once: how concurrent a client really was.
        self.peak_in_flight = 0
        #: Messages of responder failures (script exhausted, exceptions), for assertions.
        self.errors: list[str] = []
        self._rng = random.Random(seed)
        self._faults: list[Fault] = []
        self._requests: list[Request] = []
        self._lock = threading.RLock()  # re-entrant: a fault's `match` may read `requests`
        self._ids = itertools.count(1)
        self._counters = _Counters(self.counter_names)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --
    def start(self) -> Self:
        if self._server is None:
            self._server = _Server(self, self._port)
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                name=f"{type(self).__name__}:{self.port}",
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with server.conn_lock:
            conns = list(server.open_connections)
        for conn in conns:  # wake handler threads parked on idle keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def base_url(self) -> str:
        raise NotImplementedError

    # -- scripting --
    def script(self, replies: Sequence[str | Reply | Responder]) -> None:
        """Answer requests with these replies in order; one more request is an error."""
        self.responder = as_responder(list(replies))

    def inject(
        self,
        status: int,
        times: int = 1,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        match: Callable[[Request], bool] | None = None,
        message: str | None = None,
        in_stream: bool = False,
    ) -> Fault:
        """Fail the next `times` matching requests with `status` and the API's error body."""
        fault = Fault(status, times, retry_after, retry_after_ms, match, message, in_stream)
        with self._lock:
            self._faults.append(fault)
        return fault

    @property
    def requests(self) -> list[Request]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    @property
    def accounting(self) -> dict[str, Any]:
        return self._counters.snapshot()

    @property
    def tool_results(self) -> list[dict[str, Any]]:
        """Every tool result received, in arrival order (each request's new ones only)."""
        return [r for request in self.requests for r in request.tool_results()]

    def reset(self) -> None:
        """Forget requests, faults, accounting, errors and cached prefixes."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self.peak_in_flight = 0
        self._counters.clear()
        self.cache.clear()
        self.errors.clear()

    # -- request handling --
    def _handle(self, h: _Handler) -> None:
        try:
            length = int(h.headers.get("content-length") or 0)
            raw = h.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in h.headers.items() if k.lower() not in SECRET_HEADERS}
            try:
                body = json.loads(raw) if raw else {}
                bad_json = not isinstance(body, dict)
            except ValueError:
                body, bad_json = {}, True
            path = h.path.split("?", 1)[0]
            with self._lock:
                request = Request(body, path=path, headers=headers, size=len(raw), index=len(self._requests))
                self._requests.append(request)
            if bad_json:
                return self._send_error(h, request, 400, "the body is not a JSON object")
            if self._serve_other(h, request):
                return None
            if h.command == "GET" and (info := self._get(path)) is not None:
                request.status = 200
                return h.send_json(200, info, self._response_headers())
            if h.command != "POST" or path != self.endpoint:
                return self._send_error(h, request, 404, f"{h.command} {path} is not served here")
            if not self._enter():
                return self._send_error(h, request, 429, f"{self.label}: more than {self.max_in_flight} "
                                        "requests in flight", {"retry-after": f"{self.in_flight_retry_after:g}"})
            left = threading.Event()

            def leave() -> None:  # before the reply goes out: a client that saw it may send the next
                with self._lock:
                    if not left.is_set():
                        left.set()
                        self._in_flight -= 1

            try:
                self._answer(h, request, leave)
            finally:
                leave()
        except (BrokenPipeError, ConnectionResetError):
            h.close_connection = True

    def _enter(self) -> bool:
        """Count one more request in flight, or refuse it when `max_in_flight` are already."""
        with self._lock:
            if self.max_in_flight is not None and self._in_flight >= self.max_in_flight:
                return False
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return True

    def _answer(self, h: _Handler, request: Request, leave: Callable[[], None]) -> None:
        """A request on the endpoint: latency, faults, checks, then the responder's reply (`leave`
        ends its time in flight)."""
        delay = self.latency(request) if callable(self.latency) else self.latency
        if delay:
            time.sleep(delay)
        fault = self._take_fault(request)
        if fault is not None and not fault.in_stream:
            leave()
            return self._send_error(h, request, fault.status, fault.message, fault.headers())
        problem = self._check(request, h.headers)
        if problem is not None:
            leave()
            return self._refuse(h, request, *problem)
        try:
            reply = self.responder(request)
        except Exception as err:  # a broken responder is a failed test, not a retry
            text = f"{type(err).__name__}: {err}"
            self.errors.append(text)
            status = 400 if isinstance(err, ScriptExhausted) else 500
            return self._send_error(h, request, status, f"{self.label} responder failed: {text}",
                                    {"x-should-retry": "false"})
        reply = reply if isinstance(reply, Reply) else Reply(str(reply))
        leave()
        self._reply(h, request, reply, fault)
        return None

    def _take_fault(self, request: Request) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.in_stream and not request.stream:
                    continue
                if fault.times > 0 and (fault.match is None or fault.match(request)):
                    fault.times -= 1
                    return fault
            if (
                self.fault_rate > 0
                and request.retry_count < self.max_faults_per_request
                and self._rng.random() < self.fault_rate
            ):
                return Fault(self._rng.choice(self.fault_statuses), retry_after_ms=self.fault_retry_after_ms)
        return None

    def _send_error(
        self, h: _Handler, request: Request, status: int, message: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = self._error_body(status, message)
        request.status = status
        request.error_type = body["error"]["type"]
        h.send_json(status, body, {**self._response_headers(), **(headers or {})})

    def _response_headers(self) -> dict[str, str]:
        return {"request-id": f"req_fake_{next(self._ids):06d}"}

    def _chunks(self, text: str) -> list[str]:
        n = max(1, self.chunk_chars)
        return [text[i : i + n] for i in range(0, len(text), n)]

    def _pause_between_chunks(self) -> None:
        if self.stream_hold is not None and not self.stream_hold.wait(self.stream_hold_timeout):
            self.stream_hold_expired += 1  # the client never showed it had the first pieces
            self.stream_hold.set()  # once is enough to tell: the rest of the reply goes out now
        if self.stream_delay:
            time.sleep(self.stream_delay)

    # -- subclass hooks --
    def _serve_other(self, h: _Handler, request: Request) -> bool:
        """Answer a request for another path (e.g. the batch endpoints); False leaves it to the endpoint."""
        return False

    def _check(self, request: Request, headers: Any) -> tuple[int, str] | None:
        """(status, message) when the request must be refused (auth, model, size...)."""
        return None

    def _refuse(self, h: _Handler, request: Request, status: int, message: str) -> None:
        """Answer a request `_check` refused: the API's error response (a subclass may bend it)."""
        self._send_error(h, request, status, message)

    def _get(self, path: str) -> Any:
        """The JSON body for `GET path`, or None to answer 404."""
        return None

    def _error_body(self, status: int, message: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def _reply(self, h: _Handler, request: Request, reply: Reply, fault: Fault | None) -> None:
        raise NotImplementedError


def bearer_key(headers: Any) -> str | None:
    """The key a client sent, as `x-api-key` or `Authorization: Bearer`."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization") or ""
    return auth[7:] if auth.lower().startswith("bearer ") else None


def run_cli(cls: type[FakeModelServer], module: str, argv: Sequence[str] | None = None) -> None:
    """`python -m <module>`: serve on loopback until interrupted."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=cls.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each reply")
    parser.add_argument("--stream-delay", type=float, default=0.0, help="seconds between streamed deltas")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="share of requests failed (retryable)")
    parser.add_argument("--seed", type=int, default=0, help="seed for --fault-rate")
    parser.add_argument("--min-cacheable", type=int, default=1024, help="smallest cacheable prefix (tokens)")
    parser.add_argument("--reply", default="OK", help="text of every reply")
    args = parser.parse_args(argv)
    server = cls(
        port=args.port, latency=args.latency, fault_rate=args.fault_rate, seed=args.seed,
        min_cacheable=args.min_cacheable, reply=args.reply,
    )
    server.stream_delay = args.stream_delay
    with server:
        print(f"{cls.__name__} listening on {server.base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            print(json.dumps(server.accounting), flush=True)
