"""The run's `context`, saved next to its log so that export and resume in a fresh kernel can
bring it back. Written on a background thread that starts once the root model has begun to answer, or
AFTER_WAIT seconds after the run started: copying a 100 MB string out competes for the CPU (and the
GIL) with the first request it must not delay, and the first request leaves well within that time.
The file formats, and why a pickle needs trust to be read, are in contextfile.py."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

from .contextfile import SUFFIXES, read_context, write_context


def _stem(log_path: Path) -> Path:
    return log_path.with_name(log_path.name.removesuffix(".jsonl") + ".context")


def context_snapshot_path(log_path: str | Path) -> Path | None:
    stem = _stem(Path(log_path))
    for suffix in SUFFIXES:
        p = stem.with_name(stem.name + suffix)
        if p.exists():
            return p
    return None


#: The longest the snapshot waits for its `after` signal before writing anyway: a slow model's first
#: token may take seconds, and the snapshot should be done by the time a short run ends.
AFTER_WAIT = 0.25


def save_context(obj: Any, log_path: str | Path, after: threading.Event | None = None) -> threading.Thread:
    """Start writing the snapshot, once `after` is set (at most AFTER_WAIT seconds later); join the
    returned thread to wait for it."""
    stem = _stem(Path(log_path))

    def work() -> None:
        if after is not None:
            after.wait(AFTER_WAIT)
        try:
            write_context(obj, stem)
        except Exception as exc:  # an unpicklable context must not break the run
            warnings.warn(f"rlm: could not save the context snapshot: {exc}", stacklevel=1)

    t = threading.Thread(target=work, name="rlm-context-snapshot", daemon=True)
    t.start()
    return t


def load_context(log_path: str | Path, *, trust: bool = False) -> Any:
    """The context of a recorded run; FileNotFoundError says where it looked. A pickled context is
    loaded only with `trust=True` or when this process saved it (contextfile.UntrustedPickle)."""
    p = context_snapshot_path(log_path)
    if p is None:
        raise FileNotFoundError(f"no context snapshot next to {log_path} (looked for {_stem(Path(log_path))}.*)")
    return read_context(p, trust=trust)
