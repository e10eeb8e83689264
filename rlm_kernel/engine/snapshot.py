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


def _json_exact(obj: Any) -> bytes | None:
    """JSON only when it gives the same object back (tuples and int keys would not)."""
    try:
        text = json.dumps(obj, ensure_ascii=False)
    except (TypeError, ValueError):
        return None
    return text.encode() if json.loads(text) == obj else None


def _write(obj: Any, stem: Path) -> Path:
    if isinstance(obj, str):
        path, data = stem.with_name(stem.name + ".txt"), obj.encode("utf-8")
    elif isinstance(obj, bytes | bytearray):
        path, data = stem.with_name(stem.name + ".bin"), bytes(obj)
    else:
        data = _json_exact(obj)
        if data is not None:
            path = stem.with_name(stem.name + ".json")
        else:
            path, data = stem.with_name(stem.name + ".pkl"), pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
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
