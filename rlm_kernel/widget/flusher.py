"""Coalesces bursts of run events into at most one message per interval.

Runs on its own daemon thread rather than the kernel's event loop: the loop is blocked while a
generated cell runs (llm_query_batched over many chunks, say), and those are exactly the
moments a person wants to watch sub-calls finish. Publishing from a thread is what ipykernel
does for print() and display() from threads: messages go through its IOPub thread."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

INTERVAL = 0.1
#: Seconds without events after which the thread ends; the next event starts a new one.
IDLE_EXIT = 30.0
_log = logging.getLogger(__name__)


class Flusher:
    def __init__(self, flush: Callable[[], None], interval: float = INTERVAL, name: str = "rlm-view",
                 idle_exit: float = IDLE_EXIT) -> None:
        self._flush = flush
        self._interval = interval
        self._idle_exit = idle_exit
        self._name = name
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def poke(self) -> None:
        """Ask for a flush within one interval (any thread)."""
        if self._closed.is_set():
            return
        self._wake.set()  # before the check below, so an idle thread on its way out sees it
        with self._lock:
            if self._thread is None and not self._closed.is_set():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread and flush once more on the caller's thread."""
        self._closed.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        self._safe_flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            if not self._wake.wait(self._idle_exit):
                with self._lock:  # idle: end the thread (a view nobody finished must not pin one)
                    if not self._wake.is_set():
                        self._thread = None
                        return
                continue
            if self._closed.is_set():
                return
            self._closed.wait(self._interval)  # let a burst gather
            self._wake.clear()
            self._safe_flush()

    def _safe_flush(self) -> None:
        try:
            self._flush()
        except Exception:  # a dead front-end connection must not kill the thread or the run
            _log.exception("rlm view: sending an update failed")
