"""Resident memory of a process and its descendants, from /proc (Linux), without psutil.

dspy.RLM and rlms may run code in child processes that hold their own copy of the context, so
peak memory is sampled over the whole process tree, and the kernel's own high-water mark of this
process is read too (sampling can miss a short spike; VmHWM cannot)."""

from __future__ import annotations

import os
import threading
from pathlib import Path


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            kids.extend(int(x) for x in text.split())
    except (OSError, ValueError):
        pass
    return kids


def tree_rss(pid: int | None = None) -> int:
    """Bytes resident in `pid` (default: this process) and all its descendants now."""
    pid = os.getpid() if pid is None else pid
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _status_kib(p, "VmRSS") * 1024
        stack.extend(_children(p))
    return total


def reset_peak() -> bool:
    """Reset this process's VmHWM to its current RSS (writing 5 to clear_refs); False if not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def own_peak() -> int:
    """This process's peak resident bytes since start or the last reset_peak()."""
    return _status_kib(os.getpid(), "VmHWM") * 1024


class PeakSampler:
    """Samples tree_rss() every `interval` seconds on a daemon thread while in the `with` block."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self.peak = tree_rss()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss())
