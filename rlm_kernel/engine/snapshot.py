"""The run's `context`, saved next to its log so that export and resume in a fresh kernel can
bring it back. Written on a background thread: a 100 MB string must not delay the first request."""

from __future__ import annotations

import json
import pickle
import threading
import warnings
from pathlib import Path
from typing import Any

from .datasets import Corpus, Table, open_reference

SUFFIXES = (".txt", ".bin", ".json", ".ref", ".pkl")


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


def _suffix(obj: Any) -> str:
    """The plainest file format that gives back an equal object; pickle last. Data on disk is
    referred to (`.ref`: where it is, its listing's checksum), never copied."""
    if isinstance(obj, Table | Corpus):
        return ".ref"
    if isinstance(obj, str):
        return ".txt"
    if isinstance(obj, bytes | bytearray):
        return ".bin"
    return ".json" if _json_exact(obj) else ".pkl"


def write_context(obj: Any, stem: Path) -> Path:
    """Write `obj` to `<stem>.<txt|bin|json|pkl>` and return the path. Streamed: a 100 MB string is
    encoded in slices, never copied whole. Also what export uses for its sidecar files."""
    suffix = _suffix(obj)
    path = stem.with_name(stem.name + suffix)
    tmp = path.with_name(path.name + ".partial")
    try:
        if suffix == ".txt":
            with open(tmp, "w", encoding="utf-8", newline="") as fh:
                for i in range(0, len(obj), _SLICE):
                    fh.write(obj[i:i + _SLICE])
        elif suffix == ".bin":
            with open(tmp, "wb") as fh:
                fh.write(memoryview(obj))
        elif suffix == ".json":
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(obj, fh, ensure_ascii=False)
        elif suffix == ".ref":
            tmp.write_text(json.dumps(obj.reference(), indent=1), encoding="utf-8")
        else:
            with open(tmp, "wb") as fh:
                pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    except UnicodeEncodeError:  # a str with lone surrogates: only pickle keeps it
        tmp.unlink(missing_ok=True)
        path = stem.with_name(stem.name + ".pkl")
        tmp = path.with_name(path.name + ".partial")
        with open(tmp, "wb") as fh:
            pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)
    tmp.replace(path)  # readers never see half a file
    return path


def save_context(obj: Any, log_path: str | Path) -> threading.Thread:
    """Start writing the snapshot; join the returned thread to wait for it."""
    stem = _stem(Path(log_path))

    def work() -> None:
        try:
            write_context(obj, stem)
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
    return read_context(p)


def read_context(p: Path) -> Any:
    """Read a file written by write_context (pickle only from our own files)."""
    if p.suffix == ".txt":
        return p.read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n
    if p.suffix == ".bin":
        return p.read_bytes()
    if p.suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    if p.suffix == ".ref":
        return open_reference(p)
    return pickle.loads(p.read_bytes())  # our own file, written by write_context
