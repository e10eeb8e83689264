"""Model I/O on its own event loop in a daemon thread.

Root turns are awaited from the run's loop (the kernel's, in Jupyter) and sub-calls are waited on
synchronously from generated code, which blocks whatever thread runs it. Keeping every model
request on this one loop means neither case blocks the other, and SDK clients (bound to the loop
they first ran on) are reused across runs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from .types import ModelClient

T = TypeVar("T")


class ModelIO:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients: dict[Any, ModelClient] = {}

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    ready.set()
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="rlm-model-io", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await a coroutine on the I/O loop from another loop; cancelling the caller cancels it."""
        return await asyncio.wrap_future(self.submit(coro))

    def call_sync(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Wait for a coroutine from synchronous code (generated cells). Never call on the I/O thread."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("call_sync on the model I/O thread would deadlock")
        fut = self.submit(coro)
        try:
            return wait_for(fut, timeout)
        except BaseException:
            fut.cancel()
            raise

    def clients(self) -> dict[Any, ModelClient]:
        """The clients built so far, by configuration (a copy)."""
        with self._lock:
            return dict(self._clients)

    def client(self, key: Any, factory: Callable[[], ModelClient]) -> ModelClient:
        """One client per configuration, reused so connections stay warm."""
        with self._lock:
            if key not in self._clients:
                self._clients[key] = factory()
            return self._clients[key]


#: Longest single wait on a future: a thread blocked in a C-level wait cannot receive the
#: exception a cell timeout injects, so waits are sliced this fine.
WAIT_SLICE = 0.05


def wait_for(fut: concurrent.futures.Future[T], timeout: float | None = None) -> T:
    """fut.result(timeout), waiting in short slices so a timeout or interrupt aimed at this thread
    (watchdog.py) lands within a slice."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = WAIT_SLICE if deadline is None else min(WAIT_SLICE, deadline - time.monotonic())
        try:
            return fut.result(max(left, 0))
        except concurrent.futures.TimeoutError:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def run_on_new_thread(fn: Callable[[], T], name: str, on_abort: Callable[[BaseException], None] | None = None) -> T:
    """Run `fn` on a fresh daemon thread and return (or raise) what it did. For work that needs an event
    loop of its own (asyncio.run) while the calling thread is blocked in generated code or already
    inside a loop. If the wait itself is interrupted (a cell timeout, Ctrl-C), `on_abort(exc)` is
    called to end the work before the exception goes on. Daemon, so nobody waits on it at exit."""
    result: concurrent.futures.Future[T] = concurrent.futures.Future()

    def work() -> None:
        try:
            result.set_result(fn())
        except BaseException as exc:
            result.set_exception(exc)

    threading.Thread(target=work, name=name, daemon=True).start()
    try:
        return wait_for(result)
    except BaseException as exc:
        if on_abort is not None and not result.done():
            on_abort(exc)
        raise


_default: ModelIO | None = None


def default_io() -> ModelIO:
    global _default
    if _default is None:
        _default = ModelIO()
    return _default
