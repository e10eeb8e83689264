"""A `context` as a file that gives back an equal object, in the plainest format that can hold it.

Every format but the last is read without running code: text, raw bytes, JSON, a Python literal
(read with ast.literal_eval: tuples, int keys, sets), Parquet for pandas objects (when pyarrow is
installed) and `.npy` without pickle for numpy arrays. Pickle is the last resort, and a pickle runs
whatever code it holds when loaded, so reading one needs `trust=True` unless this very process wrote
it: a run folder or notebook from someone else must not run their code."""

from __future__ import annotations

import ast
import json
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .datasets import Corpus, Table, open_reference

SAFE_SUFFIXES = (".txt", ".bin", ".json", ".literal", ".parquet", ".npy", ".ref")
SUFFIXES = (*SAFE_SUFFIXES, ".pkl")
#: Longest Python literal written: ast.literal_eval is slow and needs many times the text's size in
#: memory, so longer values are pickled.
LITERAL_MAX_CHARS = 1_000_000
_SLICE = 1 << 20
_SERIES_KEY = b"rlm_kernel.series"
#: Files this process wrote, with their (size, mtime_ns): its own pickles need no opt-in.
_WRITTEN: dict[Path, tuple[int, int]] = {}


class OneLine(Exception):
    """Mixin: IPython shows the error as its one-line message (its `_render_traceback_` protocol), since
    the message says what to do and a traceback would only bury it."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class UntrustedPickle(OneLine, PermissionError):
    """A pickle this process did not write, read without trust=True."""


def untrusted_message(path: Path, how: str) -> str:
    return (f"{path.name} is a pickle, and loading a pickle runs whatever code it holds; it was not written by "
            f"this process, so it is not loaded. If you trust where it came from, {how}.")


HOW_TO_TRUST = "pass trust=True (in the kernel: %rlm resume --trust, %rlm export --trust)"


# --- writing -----------------------------------------------------------------------------------------

def write_context(obj: Any, stem: Path) -> Path:
    """Write `obj` to `<stem>.<suffix>` in the first format that gives it back, and return the path.
    Streamed where it matters: a 100 MB string is encoded in slices, never copied whole."""
    for suffix, write in _writers(obj):
        path = stem.with_name(stem.name + suffix)
        tmp = path.with_name(path.name + ".partial")
        try:
            write(obj, tmp)
        except Exception:
            tmp.unlink(missing_ok=True)
            if suffix == ".pkl":
                raise  # nothing else left: the context cannot be saved
            continue  # this format cannot hold obj exactly: the next one
        tmp.replace(path)  # readers never see half a file
        stat = path.stat()
        _WRITTEN[path.resolve()] = (stat.st_size, stat.st_mtime_ns)
        return path
    raise AssertionError("unreachable: pickle is always tried last")


def _writers(obj: Any) -> Iterator[tuple[str, Callable[[Any, Path], None]]]:
    """The formats to try for `obj`, plainest first; pickle always last. Data on disk (datasets.py) is
    referred to (`.ref`: where it is, its listing's checksum), never copied."""
    if isinstance(obj, Table | Corpus):
        yield ".ref", _write_reference
        return
    if isinstance(obj, str):
        yield ".txt", _write_text
        yield ".literal", _write_literal  # a str with lone surrogates: UTF-8 cannot hold it, repr can
    elif isinstance(obj, bytes | bytearray):
        yield ".bin", _write_bytes
    elif _is_pandas(obj):
        yield ".parquet", _write_parquet
    elif _is_numpy_array(obj):
        yield ".npy", _write_npy
    else:
        if _json_exact(obj):
            yield ".json", _write_json
        yield ".literal", _write_literal
    yield ".pkl", _write_pickle


def _write_text(obj: str, tmp: Path) -> None:
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        for i in range(0, len(obj), _SLICE):
            fh.write(obj[i:i + _SLICE])


def _write_bytes(obj: bytes | bytearray, tmp: Path) -> None:
    with open(tmp, "wb") as fh:
        fh.write(memoryview(obj))


def _write_json(obj: Any, tmp: Path) -> None:
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, ensure_ascii=False)


def _write_literal(obj: Any, tmp: Path) -> None:
    text = repr(obj)
    if len(text) > LITERAL_MAX_CHARS:
        raise ValueError("too large to read back as a literal")
    back = ast.literal_eval(text)  # raises for anything that is not a literal (objects, nan, ...)
    if type(back) is not type(obj) or back != obj:
        raise ValueError("the literal does not give the object back")
    tmp.write_bytes(text.encode("utf-8"))  # repr escapes what UTF-8 cannot hold (lone surrogates)


def _write_parquet(obj: Any, tmp: Path) -> None:
    import pyarrow as pa  # optional: without it, pandas objects fall back to pickle
    import pyarrow.parquet as pq

    pd = sys.modules["pandas"]
    series = isinstance(obj, pd.Series)
    frame = obj.to_frame(name="_" if obj.name is None else obj.name) if series else obj
    table = pa.Table.from_pandas(frame)
    if series:
        meta = dict(table.schema.metadata or {})
        meta[_SERIES_KEY] = json.dumps({"name": obj.name}).encode()
        table = table.replace_schema_metadata(meta)
    pq.write_table(table, tmp)
    back = _read_parquet(tmp)  # Arrow changes some objects (tuples to arrays): keep only exact copies
    check = pd.testing.assert_series_equal if series else pd.testing.assert_frame_equal
    if type(back) is not type(obj):
        raise ValueError("Parquet does not give this type back")
    check(obj, back, check_exact=True)


def _write_npy(obj: Any, tmp: Path) -> None:
    import numpy as np

    with open(tmp, "wb") as fh:
        np.save(fh, obj, allow_pickle=False)  # raises for arrays of Python objects


def _write_reference(obj: Table | Corpus, tmp: Path) -> None:
    tmp.write_text(json.dumps(obj.reference(), indent=1), encoding="utf-8")


def _write_pickle(obj: Any, tmp: Path) -> None:
    with open(tmp, "wb") as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def _is_pandas(obj: Any) -> bool:
    pd = sys.modules.get("pandas")  # never imported here: a pandas object means it already is
    return pd is not None and type(obj) in (pd.DataFrame, pd.Series)


def _is_numpy_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and type(obj) is np.ndarray


_JSON_SCALARS = (str, int, float, bool, type(None))


def _json_exact(obj: Any) -> bool:
    """True when JSON gives the same object back: only dicts with str keys, lists and scalars
    (tuples, int keys and subclasses would not survive). Walks the object; copies nothing."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            if not all(type(k) is str for k in item):
                return False
            stack.extend(item.values())
        elif type(item) is list:
            stack.extend(item)
        elif type(item) not in _JSON_SCALARS or (isinstance(item, float) and item != item):
            return False
    return True


# --- reading -----------------------------------------------------------------------------------------

def read_context(path: str | Path, *, trust: bool = False) -> Any:
    """Read a file written by write_context. A pickle is loaded only with `trust=True` or when this
    process wrote it (UntrustedPickle otherwise); every other format runs no code."""
    p = Path(path)
    suffix = p.suffix
    if suffix == ".txt":
        return p.read_bytes().decode("utf-8")  # not read_text: it would turn \r\n into \n
    if suffix == ".bin":
        return p.read_bytes()
    if suffix == ".json":
        return json.loads(p.read_text(encoding="utf-8"))
    if suffix == ".literal":
        return ast.literal_eval(p.read_bytes().decode("utf-8"))
    if suffix == ".parquet":
        return _read_parquet(p)
    if suffix == ".npy":
        return _read_npy(p)
    if suffix == ".ref":
        return open_reference(p)
    if suffix == ".pkl":
        if not (trust or written_here(p)):
            raise UntrustedPickle(untrusted_message(p, HOW_TO_TRUST))
        return pickle.loads(p.read_bytes())
    raise ValueError(f"{p.name} is not a context file (expected one of: {', '.join(SUFFIXES)})")


def written_here(path: Path) -> bool:
    """True when this process wrote `path` and it has not changed since."""
    try:
        stat = os.stat(path)
    except OSError:
        return False
    return _WRITTEN.get(Path(path).resolve()) == (stat.st_size, stat.st_mtime_ns)


def _read_parquet(p: Path) -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError(f"reading {p.name} needs pandas and pyarrow: pip install pandas pyarrow") from None
    table = pq.read_table(p)
    frame = table.to_pandas()
    series = (table.schema.metadata or {}).get(_SERIES_KEY)
    if series is None:
        return frame
    out = frame.iloc[:, 0]
    out.name = json.loads(series)["name"]
    return out


def _read_npy(p: Path) -> Any:
    try:
        import numpy as np
    except ImportError:
        raise ImportError(f"reading {p.name} needs numpy: pip install numpy") from None
    return np.load(p, allow_pickle=False)
