"""Per-thread capture of stdout/stderr, so concurrent runs (a child RLM on its own thread)
never see each other's prints, and code outside any capture still prints normally."""

from __future__ import annotations

import io
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

Sink = Callable[[str, str], None]  # (stream name, text)

_local = threading.local()
_install_lock = threading.Lock()


class _RoutingStream(io.TextIOBase):
    def __init__(self, name: str, fallback: TextIO) -> None:
        self.name_ = name
        self.fallback = fallback

    def write(self, s: str) -> int:
        sink: Sink | None = getattr(_local, "sink", None)
        if sink is None:
            return self.fallback.write(s)
        sink(self.name_, s)
        return len(s)

    def flush(self) -> None:
        if getattr(_local, "sink", None) is None:
            self.fallback.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, item: str) -> Any:
        return getattr(self.fallback, item)


def _install() -> None:
    with _install_lock:
        for name in ("stdout", "stderr"):
            current = getattr(sys, name)
            if not isinstance(current, _RoutingStream):
                setattr(sys, name, _RoutingStream(name, current))


@contextmanager
def captured(sink: Sink) -> Iterator[None]:
    """Route this thread's prints to `sink` for the duration of the block."""
    _install()
    previous = getattr(_local, "sink", None)
    _local.sink = sink
    try:
        yield
    finally:
        _local.sink = previous
