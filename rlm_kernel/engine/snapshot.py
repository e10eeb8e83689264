"""The run's `context`, saved next to its log so that export and resume in a fresh kernel can
bring it back. Written on a background thread: a 100 MB string must not delay the first request."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

SUFFIXES = (".txt", ".bin", ".json", ".pkl")


def _stem(log_path: Path) -> Path:
    return log_path.with_name(log_path.name.removesuffix(".jsonl") + ".context")


def context_snapshot_path(log_path: str | Path) -> Path | None:
    stem = _stem(Path(log_path))
    for suffix in SUFFIXES:
        p = stem.with_name(stem.name + suffix)
        if p.exists():
            return p
    return None


_JSON_SCALARS = (str, int, float, bool, type(None))
_SLICE = 1 << 20


def _json_exact(obj: Any) -> bool:
    """True when JSON gives the same object back: only dicts with str keys, lists and scalars
    (tuples and int keys would not survive). Walks the object; copies nothing."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if not all(isinstance(k, str) for k in item):
                return False
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, _JSON_SCALARS) or (isinstance(item, float) and item != item):
            return False
    return True


def _write(obj: Any, stem: Path) -> Path:
    """Stream the object to disk: a 100 MB string must not be copied whole to be encoded."""
    if isinstance(obj, str):
        path = stem.with_name(stem.name + ".txt")
    elif isinstance(obj, bytes | bytearray):
        path = stem.with_name(stem.name + ".bin")
    elif _json_exact(obj):
        path = stem.with_name(stem.name + ".json")
    else:
        path = stem.with_name(stem.name + ".pkl")
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".txt":
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            for i in range(0, len(obj), _SLICE):
                fh.write(obj[i:i + _SLICE])
    elif path.suffix == ".bin":
        with open(tmp, "wb") as fh:
            fh.write(memoryview(obj))
    elif path.suffix == ".json":
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, ensure_ascii=False)
    else:
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # readers never see half a file
    return path


def save_context(obj: Any, log_path: str | Path) -> threading.Thread:
    """Start writing the snapshot; join the returned thread to wait for it."""
    stem = _stem(Path(log_path))

    def work() -> None:
        try:
            _write(obj, stem)
        except Exception as exc:  # an unpicklable context must not break the run
            warnings.warn(f"rlm: could not save the context snapshot: {exc}", stacklevel=1)

    t = threading.Thread(target=work, name="rlm-context-snapshot", daemon=True)
    t.start()
    return t


def load_context(log_path: str | Path) -> Any:
    """The context of a recorded run; FileNotFoundError says where it looked."""
    p = context_snapshot_path(log_path)
    if p is None:
        raise FileNotFoundError(f"no context snapshot next to {log_path} (looked for {_stem(Path(log_path))}.*)")
    if p.suffix == ".txt":
        return p.read_text(encoding="utf-8")
    if p.suffix == ".bin":
        return p.read_bytes()
    if p.suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    return pickle.loads(p.read_bytes())  # our own file, written by save_context
