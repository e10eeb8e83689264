"""Steering: how a person (through the widget or code) pauses, steps, edits, notes and stops a run.

Requests may come from any thread (a comm handler on the kernel loop, a child run's thread), so the
state sits behind a lock and waiters poll it cheaply. Checkpoints sit at step boundaries and before
each generated cell; that is where pause, step and edit take effect."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

POLL = 0.05

_interrupts = 0


def note_interrupt() -> None:
    """Record that a person interrupted (Ctrl-C, SIGINT, the kernel's interrupt). Called by the
    signal handlers before they raise, so a KeyboardInterrupt that arrives now is known to be
    theirs; one that generated code raised itself is an error like any other."""
    global _interrupts
    _interrupts += 1


def interrupts_noted() -> int:
    """How many interrupts note_interrupt has recorded in this process (compare two readings)."""
    return _interrupts


class StopRequested(Exception):
    """Raised inside the loop when a person asked the run to stop."""


@dataclass
class PendingCell:
    step: int
    index: int
    code: str
    run_id: str


class Steering:
    """Shared by a root run and all of its children: one Stop stops the whole tree."""

    def __init__(self, *, approve: bool | None = None) -> None:
        self._lock = threading.Lock()
        #: Pause before every cell; None until the run sets it from its options.
        self.approve = approve
        self._paused = False
        self._stop = False
        self._steps_allowed: int | None = None  # None: run freely; n: pause after n more steps
        self._notes: list[str] = []
        self._edit: str | None = None
        self.pending: PendingCell | None = None
        #: Called with a state name whenever it changes (the loop emits a `state` event).
        self.on_state: Callable[[str], None] | None = None

    # --- requests (any thread) -------------------------------------------------------------
    def pause(self) -> None:
        with self._lock:
            self._paused = True
        self._notify("pausing")

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._steps_allowed = None
        self._notify("running")

    def step(self) -> None:
        """Run exactly one more step (or one pending cell under --approve), then pause again."""
        with self._lock:
            self._paused = False
            self._steps_allowed = 1
        self._notify("running")

    def stop(self) -> None:
        with self._lock:
            self._stop = True
            self._paused = False
        self._notify("stopping")

    def edit(self, code: str) -> None:
        """Replace the pending cell's code; only meaningful while paused on a pending cell."""
        with self._lock:
            self._edit = code

    def note(self, text: str) -> None:
        with self._lock:
            self._notes.append(text)

    # --- queries (loop side) ---------------------------------------------------------------
    @property
    def stop_requested(self) -> bool:
        return self._stop

    @property
    def paused(self) -> bool:
        return self._paused

    def take_notes(self) -> list[str]:
        with self._lock:
            notes, self._notes = self._notes, []
        return notes

    def check_stop(self) -> None:
        if self._stop:
            raise StopRequested()

    async def at_step_boundary(self) -> None:
        """Called before each model turn. Honors pause, step budgets and stop."""
        while True:
            await self._wait_while_paused()
            with self._lock:
                if self._steps_allowed is None:
                    return
                if self._steps_allowed > 0:
                    self._steps_allowed -= 1
                    return
                self._paused = True

    async def before_cell(self, pending: PendingCell) -> tuple[str, bool]:
        """Called before each generated cell: returns (code to run, edited?)."""
        with self._lock:
            self.pending = pending
            if self.approve:
                self._paused = True
        try:
            await self._wait_while_paused()
            with self._lock:
                edited, self._edit = self._edit, None
            if edited is not None and edited != pending.code:
                return edited, True
            return pending.code, False
        finally:
            with self._lock:
                self.pending = None

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, cancelling it at once if stop is requested meanwhile."""
        task = asyncio.ensure_future(awaitable)
        try:
            while not task.done():
                if self._stop:
                    task.cancel()
                    raise StopRequested()
                await asyncio.wait({task}, timeout=POLL)
            return task.result()
        finally:
            if not task.done():
                task.cancel()

    async def wait_while_paused(self) -> None:
        """Return once the run is not paused (at once if it is not); raise StopRequested on stop."""
        await self._wait_while_paused()

    async def _wait_while_paused(self) -> None:
        announced = False
        while True:
            self.check_stop()
            if not self._paused:
                if announced:
                    self._notify("running")
                return
            if not announced:
                self._notify("paused")
                announced = True
            await asyncio.sleep(POLL)

    def _notify(self, state: str) -> None:
        cb = self.on_state
        if cb is not None:
            cb(state)
