"""The notebook's stop button during an RLM run.

The kernel turns "interrupt" into SIGINT. What it should do depends on where the run is:
- running a generated cell synchronously (a loop, time.sleep, a blocking llm_query): raise
  KeyboardInterrupt right there, as in any cell;
- awaiting (a model turn, a pause, an async cell): the main thread sits in the event loop, where a
  KeyboardInterrupt would kill the kernel, so cancel the run's task instead.
ipykernel's own handler for async cells only cancels, which would leave a blocking cell running."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from ..engine.steering import note_interrupt


class InterruptRouter:
    """Installed for the duration of one run."""

    def __init__(self, task: asyncio.Task[Any], executor: Any) -> None:
        self.task = task
        self.executor = executor
        self.loop = task.get_loop()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        note_interrupt()  # a person's interrupt, not a KeyboardInterrupt the generated code raised
        if getattr(self.executor, "blocking", False):
            raise KeyboardInterrupt
        self.loop.call_soon_threadsafe(self._cancel)

    def _cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()

    @contextlib.contextmanager
    def installed(self) -> Iterator[InterruptRouter]:
        """Route SIGINT while the block runs (main thread only; a subshell has no signals)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        previous = signal.signal(signal.SIGINT, self)
        try:
            yield self
        finally:
            signal.signal(signal.SIGINT, previous)
