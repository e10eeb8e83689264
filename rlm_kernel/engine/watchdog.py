"""Interrupt a runaway generated cell after a timeout, whatever the cell's code catches.

At the deadline the cell gets a CellTimeout: on the main thread from a SIGALRM handler (which
also breaks time.sleep or a blocking read), on other threads (child runs, subshells) injected with
PyThreadState_SetAsyncExc (which stops pure-Python code but waits for a C call in progress).
CellTimeout is a BaseException, so `except Exception` does not see it. Code that catches it anyway
(`except BaseException`, a bare `except`, in a loop) is struck again every STRIKE_INTERVAL seconds,
and from the second strike on each step it takes raises another (see TimeLimit.struck) until the
cell's frame is left. Strikes only land while the cell's own frame is on the stack, so the
executor's bookkeeping around the cell is never hit. Nothing is traced before a deadline.

A timer and a SIGALRM handler the user had are put back afterwards, with the time they had left;
a user alarm due while the cell ran fires as soon as the cell ends."""

from __future__ import annotations

import ctypes
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

#: Seconds between strikes once the deadline has passed.
STRIKE_INTERVAL = 0.2
#: A cell's code runs as a module-level code object (exec/eval of compiled cell source).
CELL_CODE_NAME = "<module>"
_HERE = __file__
#: Code under the cell that propagates a CellTimeout properly and may clean up first (the helpers
#: the cell calls): never raised in by the trace function, only passed through.
TRUSTED = (str(Path(__file__).parent.parent),)

#: The limit guarding each thread's running cell, so a CellTimeout raised there can find it.
_active: dict[int, TimeLimit] = {}


class CellTimeout(BaseException):
    """The generated cell ran past its time limit (a BaseException: `except Exception` misses it)."""

    def __init__(self, *args: object) -> None:
        guard = _active.get(threading.get_ident())
        if not args and guard is not None:  # made in the cell's thread from an injected class
            args = (guard.message,)
            guard.struck(sys._getframe(1))
        super().__init__(*args)


def _set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exc) if exc else None)


class TimeLimit:
    """Context manager: raise CellTimeout in the current thread's cell after `seconds`
    (None: only when `expire()` is called, e.g. because the run was cancelled)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.message = f"cell timed out after {seconds:g} s" if seconds else "cell interrupted"
        self.strikes = 0
        self.left = False  # the cell's frame has returned; no more strikes
        self._done = False
        self._thread = threading.get_ident()
        self._main = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
        self._owner: FrameType | None = None
        self._outer: TimeLimit | None = None
        self._cell: FrameType | None = None
        self._saved_trace: Any = None
        self._saved_profile: Any = None
        self._tracing = False
        self._injected = 0
        self._wake = threading.Event()
        self._deadline = None if seconds is None else time.monotonic() + seconds
        self._previous: tuple[Any, tuple[float, float], float] | None = None

    # --- entering and leaving ---------------------------------------------------------------
    def __enter__(self) -> TimeLimit:
        self._owner = sys._getframe(1)
        self._outer = _active.get(self._thread)
        _active[self._thread] = self
        if self._main:
            if self.seconds:
                handler = signal.signal(signal.SIGALRM, self._on_alarm)
                timer = signal.setitimer(signal.ITIMER_REAL, self.seconds, STRIKE_INTERVAL)
                self._previous = (handler, timer, time.monotonic())
        else:
            threading.Thread(target=self._watch, name="rlm-cell-watchdog", daemon=True).start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._done = True  # first: a strike arriving from here on does nothing
        self._wake.set()
        if self._previous is not None:
            handler, (delay, interval), started = self._previous
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, handler)
            if delay > 0:  # the user's timer goes on with the time it had left
                signal.setitimer(signal.ITIMER_REAL, max(delay - (time.monotonic() - started), 1e-3), interval)
        if self._tracing:
            sys.setprofile(self._saved_profile)
            sys.settrace(self._saved_trace)
        if self._injected > self.strikes:
            # One injected but not delivered. (Only then: in CPython 3.11 clearing with NULL leaves
            # the eval loop's breaker flag set for good, which made signal handlers recurse.)
            _set_async_exc(self._thread, None)
        if self._outer is not None:
            _active[self._thread] = self._outer
        else:
            _active.pop(self._thread, None)

    def expire(self, message: str | None = None) -> None:
        """Strike now (from any thread): the cell's run was cancelled."""
        if message:
            self.message = message
        if self._main:
            if self._previous is not None and not self._done:
                signal.setitimer(signal.ITIMER_REAL, 1e-3, STRIKE_INTERVAL)
        else:
            self._deadline = time.monotonic()
            self._wake.set()

    # --- striking -----------------------------------------------------------------------------
    def _cell_frame(self, frame: FrameType | None) -> FrameType | None:
        """The running cell's frame if `frame` is inside it (the outermost cell-code frame below
        the `with` that set this limit), else None."""
        cell = None
        while frame is not None and frame is not self._owner:
            if frame.f_code.co_filename == _HERE:
                return None  # our own code (leaving the limit): never strike here
            if frame.f_code.co_name == CELL_CODE_NAME:
                cell = frame
            frame = frame.f_back
        return cell if frame is self._owner else None

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._done or self.left or self._cell_frame(frame) is None:
            return
        self.struck(frame)
        raise CellTimeout(self.message)

    def _watch(self) -> None:
        """Off the main thread: inject CellTimeout at the deadline, then every STRIKE_INTERVAL."""
        while not self._done:
            wait = None if self._deadline is None else self._deadline - time.monotonic()
            if wait is None or wait > 0:
                self._wake.wait(wait)
                self._wake.clear()
                continue
            frame = sys._current_frames().get(self._thread)
            if not self.left and not self._done and self._cell_frame(frame) is not None:
                self._injected += 1
                _set_async_exc(self._thread, CellTimeout)
            self._deadline = time.monotonic() + STRIKE_INTERVAL

    def struck(self, frame: FrameType | None) -> None:
        """Called in the cell's thread as each strike is raised. From the second one on, the cell
        has evidently swallowed a CellTimeout, so what it runs raises more of them: a trace
        function raises at the next bytecode run inside the cell, and since Python switches off
        a trace function that raises, a profile function (called at every call and return)
        switches it back on. Strikes alone cannot do this: Python delivers them only at a few
        points (loop jumps, calls), which `try: time.sleep(...) except: pass` always catches."""
        self.strikes += 1
        cell = self._cell_frame(frame)
        if cell is None:
            return
        self._cell = cell
        if self.strikes >= 2:
            if not self._tracing:
                self._tracing = True
                self._saved_trace, self._saved_profile = sys.gettrace(), sys.getprofile()
                sys.setprofile(self._rearm)
            self._arm(frame)

    def _arm(self, frame: FrameType | None) -> None:
        sys.settrace(self._trace)
        while frame is not None:
            frame.f_trace, frame.f_trace_opcodes = self._trace, True
            if frame is self._cell:
                break
            frame = frame.f_back

    def _inside(self, frame: FrameType | None) -> bool:
        """Is `frame` the cell's or called from it (and not this module's own code)?"""
        if frame is None or frame.f_code.co_filename == _HERE:
            return False
        while frame is not None:
            if frame is self._cell:
                return True
            frame = frame.f_back
        return False

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Callable[..., Any] | None:
        if self.left or self._done or not self._inside(frame):
            return None
        if event == "call":
            frame.f_trace_opcodes = True
        elif event == "opcode" and not frame.f_code.co_filename.startswith(TRUSTED):
            raise CellTimeout(self.message)  # opcodes, not lines: a handler of only `pass` has no line
        return self._trace

    def _rearm(self, frame: FrameType, event: str, arg: Any) -> None:
        if self.left or self._done:
            return
        if event == "return" and frame is self._cell:
            self.left = True  # the cell is over: nothing may be raised outside it
            sys.settrace(self._saved_trace)
            return
        if sys.gettrace() is None and self._inside(frame):
            self._arm(frame)


class _NoLimit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


def time_limit(seconds: float | None) -> TimeLimit | _NoLimit:
    """Raise CellTimeout in the current thread's generated cell if it runs longer than `seconds`.
    Off the main thread a limit is kept even without `seconds`, so a cancelled run can expire it."""
    if seconds is not None and seconds <= 0:
        seconds = None
    if seconds is None and threading.current_thread() is threading.main_thread():
        return _NoLimit()
    return TimeLimit(seconds)


def expire(thread_id: int, message: str) -> bool:
    """Interrupt the generated cell running on `thread_id` now, as a timeout would; False if none is."""
    guard = _active.get(thread_id)
    if guard is None:
        return False
    guard.expire(message)
    return True
