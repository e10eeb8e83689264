"""What the root model learns about `context` before it writes any code.

The whole point of an RLM is that the root model never reads the input itself, so this module
must stay cheap on inputs of any size: lengths are O(1), large lists and dicts are sampled (and
the metadata says so), nothing is ever rendered whole, and the preview is capped at
`preview_chars` characters of content."""

from __future__ import annotations

import io
import itertools
import os
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from .datasets import Corpus, Table, human_bytes
from .text import omitted_note

#: Lists and dicts up to this many entries are measured entry by entry; longer ones are sampled.
SAMPLE_THRESHOLD = 10_000
#: Entries measured when sampling (evenly spaced, so the whole range is covered).
SAMPLE_SIZE = 2_000
#: Sizes reported individually for the first entries.
FIRST_ENTRIES = 10
#: Keys / columns listed by name.
FIRST_KEYS = 20
MAX_COLUMNS = 50
#: Nested values visited when measuring one entry, and in all; bigger entries are extrapolated.
#: Text up to this many characters has its lines counted exactly (about 6 ms); longer text gets an
#: estimate from LINE_WINDOWS evenly spaced windows, so describing 100 M characters does not hold the
#: first request for a full scan (75 ms here; the model can count exactly in one REPL line).
EXACT_LINES_LIMIT = 8_000_000
LINE_WINDOWS = 64
LINE_WINDOW = 1 << 16
_NODE_BUDGET = 1_000
_TOTAL_NODE_BUDGET = 200_000
_MAX_DEPTH = 20
_FRAME_ROWS = 5

SUPPORTED = ("str, bytes, list, tuple, dict, a pandas DataFrame/Series, or a path (a file, a directory or a "
             "glob) opened lazily from disk")

NO_CONTEXT = (
    "There is no context to work on: define a variable named `context` (for example "
    "context = open('book.txt').read()), or name another variable with --context NAME in %%rlm "
    "or context=... in rlm()."
)


class ContextError(ValueError):
    """The context cannot be used as it is; the message says how to fix it."""


# ---------------------------------------------------------------------------------------------
# Checking


def check_context(obj: Any) -> None:
    """Raise ContextError unless `obj` is a context the engine can describe and the REPL can use.

    Entries of lists and dicts are spot-checked (sampled on big inputs) only for things that
    break when read: iterators, open files, modules, functions."""
    if obj is None:
        raise ContextError(NO_CONTEXT)
    kind = _kind(obj)
    if kind is None:
        raise ContextError(
            f"context is a {_type_name(obj)}, which cannot be used as context: {_conversion_hint(obj)}. "
            f"Supported: {SUPPORTED}."
        )
    if kind in ("sequence", "mapping"):
        for key, item in _sample_entries(obj, kind):
            if _is_unusable_item(item):
                raise ContextError(
                    f"context[{_render(key, 60)}] is a {_type_name(item)}, which cannot be part of a "
                    f"context: {_conversion_hint(item)}."
                )


def _kind(obj: Any) -> str | None:
    if isinstance(obj, Table):
        return "table"
    if isinstance(obj, Corpus):
        return "files"
    if isinstance(obj, str):
        return "text"
    if isinstance(obj, bytes | bytearray):
        return "bytes"
    if isinstance(obj, list | tuple):
        return "sequence"
    if isinstance(obj, dict):
        return "mapping"
    if _is_dataframe(obj):
        return "dataframe"
    if _is_series(obj):
        return "series"
    return None


def _is_dataframe(obj: Any) -> bool:
    shape = getattr(obj, "shape", None)
    return (isinstance(shape, tuple) and len(shape) == 2 and hasattr(obj, "columns")
            and hasattr(obj, "dtypes") and not isinstance(obj, type))


def _is_series(obj: Any) -> bool:
    shape = getattr(obj, "shape", None)
    return (isinstance(shape, tuple) and len(shape) == 1 and hasattr(obj, "dtype")
            and hasattr(obj, "index") and not isinstance(obj, type))


def _is_unusable_item(item: Any) -> bool:
    return isinstance(item, Iterator | io.IOBase | types.ModuleType) or (
        callable(item) and not isinstance(item, type) and _kind(item) is None
    )


def _conversion_hint(obj: Any) -> str:
    """How to turn an unsupported object into a supported one."""
    if isinstance(obj, io.IOBase):
        return "it is an open file; read the file into a str first (context = f.read())"
    if isinstance(obj, os.PathLike):
        return "the path matches no files; check it (a file, a directory or a glob such as data/*.parquet)"
    if isinstance(obj, types.GeneratorType | Iterator):
        return "reading it would use it up; wrap it in list(...) first (context = list(it))"
    if isinstance(obj, types.ModuleType):
        return "it is a module; pass the data itself"
    if isinstance(obj, type):
        return "it is a class; pass an instance's data (a str, list or dict)"
    if callable(obj):
        return "it is a function; call it and pass what it returns"
    if isinstance(obj, set | frozenset):
        return "a set has no order; convert it with sorted(...) or list(...)"
    if isinstance(obj, Mapping):
        return "convert it with dict(...)"
    if isinstance(obj, memoryview):
        return "convert it with bytes(...)"
    if isinstance(obj, bool | int | float | complex):
        return "convert it with str(...)"
    if hasattr(obj, "tolist"):
        return "convert it with .tolist() (or str(...) for text)"
    if isinstance(obj, Iterable):
        return "convert it with list(...)"
    return "convert it to a str (e.g. str(obj) or json.dumps(...)), a list or a dict first"


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


# ---------------------------------------------------------------------------------------------
# Describing


def describe_context(obj: Any, preview_chars: int = 2000) -> dict[str, Any]:
    """JSON-able metadata about `obj` plus a head/tail preview of at most `preview_chars`
    characters of content (`preview_head` + `preview_tail`, with `preview_note` saying what lies
    between). `size_estimated` is true when sizes come from a sample (`sample_size` entries)."""
    if preview_chars < 0:
        raise ValueError(f"preview_chars must be >= 0, got {preview_chars}")
    check_context(obj)
    kind = _kind(obj)
    meta: dict[str, Any] = {"type": type(obj).__name__, "kind": kind}
    describe = _DESCRIBERS[kind]  # type: ignore[index]
    meta.update(describe(obj, preview_chars))
    meta["preview_note"] = (
        omitted_note(meta["preview_omitted"], meta["preview_unit"]) if meta["preview_omitted"] else ""
    )
    return meta


def _describe_text(obj: str, budget: int) -> dict[str, Any]:
    head, tail, omitted = _slice_preview(obj, budget)
    lines, estimated = _count_lines(obj)
    meta = {"size": len(obj), "size_unit": "characters", "size_estimated": False, "lines": lines}
    if estimated:
        meta["lines_estimated"] = True
    return {**meta, **_preview(head, tail, omitted, "characters")}


def _count_lines(text: str) -> tuple[int, bool]:
    """(lines, estimated): exact up to EXACT_LINES_LIMIT characters, else scaled up from a sample."""
    if not text:
        return 0, False
    n = len(text)
    if n <= EXACT_LINES_LIMIT:
        return text.count("\n") + (not text.endswith("\n")), False
    step = n // LINE_WINDOWS
    breaks = sum(text.count("\n", i * step, i * step + LINE_WINDOW) for i in range(LINE_WINDOWS))
    return max(1, round(breaks * n / (LINE_WINDOWS * LINE_WINDOW))), True


def _describe_bytes(obj: bytes | bytearray, budget: int) -> dict[str, Any]:
    head, tail, omitted = _slice_preview(obj, budget)
    return {"size": len(obj), "size_unit": "bytes", "size_estimated": False,
            **_preview(_bytes_text(head), _bytes_text(tail), omitted, "bytes")}


_CONTROL = {c: "\ufffd" for c in range(32) if chr(c) not in "\n\t\r"} | {127: "\ufffd"}


def _bytes_text(data: bytes | bytearray) -> str:
    """Bytes as readable text: UTF-8 where it decodes, U+FFFD for the rest and for control bytes.
    Never longer than `data`, so the preview stays within its budget."""
    return bytes(data).decode("utf-8", "replace").translate(_CONTROL)


def _describe_sequence(obj: list[Any] | tuple[Any, ...], budget: int) -> dict[str, Any]:
    n = len(obj)
    sample = [item for _, item in _sample_entries(obj, "sequence")]
    sizes, exact = _measure_all(sample)
    first = [_measure(item)[0] for item in obj[:FIRST_ENTRIES]]
    sampled = len(sample) < n
    meta: dict[str, Any] = {
        "items": n,
        **_size_fields(sizes, n, exact and not sampled),
        "item_types": _type_counts(sample),
        "item_sizes": _stats(sizes),
        "first_item_sizes": first,
        "sampled": sampled,
    }
    if sampled:
        meta["sample_size"] = len(sample)
    head, tail, omitted = _lines_preview(
        n, lambda i, cap: _labelled(f"[{i}] ", obj[i], cap), budget)
    meta.update(_preview(head, tail, omitted, "items"))
    return meta


def _describe_mapping(obj: dict[Any, Any], budget: int) -> dict[str, Any]:
    n = len(obj)
    entries = _sample_entries(obj, "mapping")
    sample = [value for _, value in entries]
    sizes, exact = _measure_all(sample)
    key_sizes, keys_exact = _measure_all([key for key, _ in entries])
    first_keys = list(itertools.islice(obj, FIRST_KEYS))
    sampled = len(sample) < n
    meta: dict[str, Any] = {
        "keys": n,
        "first_keys": [_render(k, 60) for k in first_keys],
        **_size_fields([k + v for k, v in zip(key_sizes, sizes, strict=True)], n,
                       exact and keys_exact and not sampled),
        "value_types": _type_counts(sample),
        "value_sizes": _stats(sizes),
        "first_value_sizes": [_measure(obj[k])[0] for k in first_keys[:FIRST_ENTRIES]],
        "sampled": sampled,
    }
    if sampled:
        meta["sample_size"] = len(sample)
    keys = _KeyWindow(obj)
    head, tail, omitted = _lines_preview(
        n, lambda i, cap: _labelled(_render(keys[i], 60) + ": ", obj[keys[i]], cap), budget)
    meta.update(_preview(head, tail, omitted, "keys"))
    return meta


def _describe_dataframe(obj: Any, budget: int) -> dict[str, Any]:
    rows, ncols = (int(v) for v in obj.shape)
    columns = [str(c) for c in itertools.islice(obj.columns, MAX_COLUMNS)]
    dtypes = obj.dtypes
    pairs = dtypes.items() if hasattr(dtypes, "items") else zip(obj.columns, dtypes, strict=False)
    meta: dict[str, Any] = {
        "shape": [rows, ncols],
        "columns": columns,
        "columns_omitted": max(0, ncols - len(columns)),
        "dtypes": {str(c): str(t) for c, t in itertools.islice(pairs, MAX_COLUMNS)},
    }
    meta.update(_frame_preview(obj, rows, budget))
    return meta


def _describe_series(obj: Any, budget: int) -> dict[str, Any]:
    rows = int(obj.shape[0])
    name = getattr(obj, "name", None)
    meta: dict[str, Any] = {"shape": [rows], "length": rows, "dtype": str(obj.dtype),
                            "name": None if name is None else _render(name, 60)}
    meta.update(_frame_preview(obj, rows, budget))
    return meta


_DESCRIBERS: dict[str, Callable[[Any, int], dict[str, Any]]] = {
    "text": _describe_text,
    "bytes": _describe_bytes,
    "sequence": _describe_sequence,
    "mapping": _describe_mapping,
    "dataframe": _describe_dataframe,
    "series": _describe_series,
    "table": lambda obj, budget: obj.describe(budget),
    "files": lambda obj, budget: obj.describe(budget),
}


def _frame_preview(obj: Any, rows: int, budget: int) -> dict[str, Any]:
    """Head and tail rows as the frame prints them; the size is extrapolated from the head."""
    show_all = rows <= 2 * _FRAME_ROWS
    head_text = _safe_str(obj.head(rows if show_all else _FRAME_ROWS)) if hasattr(obj, "head") else ""
    tail_text = "" if show_all or not hasattr(obj, "tail") else _safe_str(obj.tail(_FRAME_ROWS))
    head = _cut(head_text, budget if show_all else (budget + 1) // 2)
    tail = _cut(tail_text, budget - len(head))
    shown = min(rows, len(head_text.splitlines()) - 1) if head_text else 0
    per_row = len(head_text) / max(1, shown)
    return {"size": round(per_row * rows), "size_unit": "characters", "size_estimated": True,
            **_preview(head, tail, 0 if show_all else rows - 2 * _FRAME_ROWS, "rows")}


def shows_all(meta: dict[str, Any]) -> bool:
    """Whether the preview in `meta` showed the whole input (nothing omitted). Kinds without a
    count of what was left out (tables, datasets) never do."""
    return meta.get("preview_omitted", 1) == 0 and not meta.get("columns_omitted")


def _preview(head: str, tail: str, omitted: int, unit: str) -> dict[str, Any]:
    return {"preview_head": head, "preview_tail": tail, "preview_omitted": omitted, "preview_unit": unit}


def _slice_preview(obj: Any, budget: int) -> tuple[Any, Any, int]:
    """First and last characters (or bytes) of a flat sequence, `budget` of them at most."""
    if len(obj) <= budget:
        return obj, obj[:0], 0
    head = (budget + 1) // 2
    tail = budget - head
    return obj[:head], obj[len(obj) - tail :], len(obj) - budget


def _lines_preview(n: int, line: Callable[[int, int], str], budget: int) -> tuple[str, str, int]:
    """One line per entry from the front, then from the back, within `budget` characters in all
    (newlines included). Each line gets a fair share so one huge entry cannot hide the rest."""
    cap = max(40, budget // 8)

    def collect(indices: Iterable[int], room: int) -> tuple[list[str], int]:
        lines: list[str] = []
        used = 0
        for i in indices:
            sep = 1 if lines else 0
            allowed = min(cap, room - used - sep)
            if allowed < 16:
                break
            text = line(i, allowed)
            if len(text) > allowed:
                break
            lines.append(text)
            used += len(text) + sep
        return lines, used

    everything, _ = collect(range(n), budget)
    if len(everything) == n:
        return "\n".join(everything), "", 0
    head_lines, used = collect(range(n), (budget + 1) // 2)
    taken = len(head_lines)
    tail_lines, _ = collect(range(n - 1, taken - 1, -1), budget - used)
    tail_lines.reverse()
    return "\n".join(head_lines), "\n".join(tail_lines), n - taken - len(tail_lines)


def _labelled(label: str, value: Any, cap: int) -> str:
    return label + _render(value, max(1, cap - len(label)))


class _KeyWindow:
    """Index access to a dict's keys from either end without listing them all."""

    def __init__(self, d: dict[Any, Any]) -> None:
        self._d = d
        self._front: list[Any] = []
        self._back: list[Any] = []
        self._fwd = iter(d)
        self._rev = reversed(d)

    def __getitem__(self, i: int) -> Any:
        if i <= len(self._front):  # the next key from the front, or one already seen
            if i == len(self._front):
                self._front.append(next(self._fwd))
            return self._front[i]
        j = len(self._d) - 1 - i
        while len(self._back) <= j:
            self._back.append(next(self._rev))
        return self._back[j]


# ---------------------------------------------------------------------------------------------
# Sampling and measuring


def _sample_entries(obj: Any, kind: str) -> list[tuple[Any, Any]]:
    """(index or key, value) pairs: every entry of a small list/dict, else the first few plus
    evenly spaced ones."""
    n = len(obj)
    if kind == "sequence":
        if n <= SAMPLE_THRESHOLD:
            indices: Iterable[int] = range(n)
        else:
            step = n / SAMPLE_SIZE
            indices = sorted(set(range(FIRST_ENTRIES)) | {int(k * step) for k in range(SAMPLE_SIZE)})
        return [(i, obj[i]) for i in indices]
    step = 1 if n <= SAMPLE_THRESHOLD else n // SAMPLE_SIZE
    return list(itertools.islice(obj.items(), 0, None, step))


def _measure_all(items: list[Any]) -> tuple[list[int], bool]:
    """Sizes of `items`, sharing one node budget so ten thousand nested entries stay cheap."""
    per_item = max(16, min(_NODE_BUDGET, _TOTAL_NODE_BUDGET // max(1, len(items))))
    sizes: list[int] = []
    exact = True
    for item in items:
        size, ok = _measure(item, [per_item])
        sizes.append(size)
        exact = exact and ok
    return sizes, exact


def _measure(x: Any, budget: list[int] | None = None, depth: int = 0) -> tuple[int, bool]:
    """Characters in `x`: a string's length, else the length of a JSON-like rendering. Visits at
    most _NODE_BUDGET nested values and extrapolates past that (then the bool is False)."""
    if isinstance(x, str | bytes | bytearray):
        return len(x), True
    if x is None or isinstance(x, bool | float):
        return len(repr(x)), True
    if isinstance(x, int):
        return _int_chars(x), True
    if isinstance(x, list | tuple | dict):
        n = len(x)
        if n == 0:
            return 2, True
        budget = budget if budget is not None else [_NODE_BUDGET]
        if depth >= _MAX_DEPTH or budget[0] <= 0:
            return 2 + 4 * n, False
        total, seen, exact = 0, 0, True
        for entry in (x.items() if isinstance(x, dict) else x):
            if budget[0] <= 0:
                break
            budget[0] -= 1
            if isinstance(x, dict):
                key_size, key_ok = _measure(entry[0], budget, depth + 1)
                value_size, value_ok = _measure(entry[1], budget, depth + 1)
                size, ok = key_size + 2 + value_size, key_ok and value_ok
            else:
                size, ok = _measure(entry, budget, depth + 1)
            total, seen, exact = total + size, seen + 1, exact and ok
        if seen < n:
            total, exact = round(total * n / seen), False
        return 2 + total + 2 * (n - 1), exact
    try:
        return len(str(x)), True
    except Exception:
        return 0, False


def _int_chars(x: int) -> int:
    if -(10**18) < x < 10**18:
        return len(str(x))
    return int(abs(x).bit_length() * 0.30103) + 1 + (x < 0)  # str() of huge ints is slow or refused


def _size_fields(sizes: list[int], n: int, exact: bool) -> dict[str, Any]:
    """Total characters of content: the sum of the entries' sizes, extrapolated from a sample."""
    total = sum(sizes) if len(sizes) == n else round(sum(sizes) / max(1, len(sizes)) * n)
    return {"size": total, "size_unit": "characters", "size_estimated": not exact}


def _stats(sizes: list[int]) -> dict[str, float] | None:
    if not sizes:
        return None
    return {"min": min(sizes), "max": max(sizes), "mean": round(sum(sizes) / len(sizes), 1)}


def _type_counts(items: list[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        name = type(item).__name__
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


# ---------------------------------------------------------------------------------------------
# Rendering


def _render(x: Any, limit: int) -> str:
    """A repr of `x` of at most `limit` characters ("…" marks a cut), built without rendering
    more of `x` than fits."""
    if limit <= 0:
        return ""
    if isinstance(x, str | bytes | bytearray):
        text = repr(x[:limit])
        return _cut_mark(text, limit, len(text) > limit or len(x) > limit)
    if isinstance(x, int) and not isinstance(x, bool) and not -(10**18) < x < 10**18:
        return _cut_mark(f"<int of {_int_chars(x):,} digits>", limit, False)
    if isinstance(x, list | tuple | dict):
        return _render_container(x, limit)
    return _cut_mark(_safe_str(x, use_repr=True), limit, False)


def _render_container(x: list[Any] | tuple[Any, ...] | dict[Any, Any], limit: int) -> str:
    opening, closing = "{}" if isinstance(x, dict) else "()" if isinstance(x, tuple) else "[]"
    out = opening
    entries = x.items() if isinstance(x, dict) else x
    for i, entry in enumerate(entries):
        sep = ", " if i else ""
        room = limit - len(out) - len(sep) - 1
        if room <= 1:
            return _cut_mark(out, limit, True)
        if isinstance(x, dict):
            key = _render(entry[0], room)
            piece = key + ": " + _render(entry[1], room - len(key) - 2) if len(key) + 2 < room else key
        else:
            piece = _render(entry, room)
        out += sep + piece
        if len(out) >= limit - 1:
            return _cut_mark(out, limit, True)
    if isinstance(x, tuple) and len(x) == 1:
        out += ","
    return _cut_mark(out + closing, limit, False)


def _cut_mark(text: str, limit: int, cut: bool) -> str:
    if not cut and len(text) <= limit:
        return text
    if len(text) <= limit and text.endswith("…"):
        return text  # a nested value already marked its cut
    return text[: limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit)]


def _safe_str(x: Any, use_repr: bool = False) -> str:
    try:
        return repr(x) if use_repr else str(x)
    except Exception as exc:  # a broken __repr__ must not stop the run
        return f"<{type(x).__name__}: unprintable ({type(exc).__name__})>"


# ---------------------------------------------------------------------------------------------
# Summary for the root model


def context_summary(meta: dict[str, Any]) -> str:
    """The few lines the root model reads about `context`: type, size, structure, preview."""
    kind = meta.get("kind")
    size = f"{'about ' if meta.get('size_estimated') else ''}{meta.get('size', 0):,} {meta.get('size_unit')}"
    sample = f" (from a sample of {meta['sample_size']:,})" if meta.get("sampled") else ""
    lines: list[str]
    if kind == "text":
        about = "about " if meta.get("lines_estimated") else ""
        lines = [f"context: str of {size}, {about}{meta['lines']:,} lines"]
    elif kind == "bytes":
        lines = [f"context: {meta['type']} of {size}"]
    elif kind == "sequence":
        lines = [f"context: {meta['type']} of {meta['items']:,} items, {size} in total{sample}"]
        if meta["items"]:
            lines.append(f"item types: {_counts_text(meta['item_types'])}{sample}")
            lines.append(f"item sizes in characters: {_stats_text(meta['item_sizes'])}; first items: "
                         + ", ".join(f"{s:,}" for s in meta["first_item_sizes"]))
    elif kind == "mapping":
        lines = [f"context: {meta['type']} with {meta['keys']:,} keys, {size} in total{sample}"]
        if meta["keys"]:
            more = ", …" if meta["keys"] > len(meta["first_keys"]) else ""
            lines.append("keys: " + ", ".join(meta["first_keys"]) + more)
            lines.append(f"value types: {_counts_text(meta['value_types'])}{sample}")
            lines.append(f"value sizes in characters: {_stats_text(meta['value_sizes'])}")
    elif kind == "dataframe":
        rows, ncols = meta["shape"]
        lines = [f"context: {meta['type']} with {rows:,} rows × {ncols:,} columns, {size} as text"]
        cols = ", ".join(f"{c} ({meta['dtypes'].get(c, '?')})" for c in meta["columns"])
        more = f", … {meta['columns_omitted']:,} more" if meta["columns_omitted"] else ""
        lines.append(f"columns: {cols}{more}")
    elif kind == "series":
        name = f" {meta['name']}" if meta.get("name") else ""
        lines = [f"context: {meta['type']}{name} of {meta['length']:,} values, dtype {meta['dtype']}"]
    elif kind == "table":
        rows = f"{'about ' if meta['rows_estimated'] else ''}{meta['rows']:,}"
        lines = [f"context: a table on disk (not in memory) of {rows} rows, {meta['files']:,} {meta['format']} "
                 f"file(s), {human_bytes(meta['size'])}, at {meta['source']}"]
        cols = ", ".join(f"{c} ({meta['dtypes'].get(c, '?')})" for c in meta["columns"])
        more = f", … {meta['columns_omitted']:,} more" if meta["columns_omitted"] else ""
        lines.append(f"columns: {cols}{more}")
        lines.append(TABLE_HINT)
    elif kind == "files":
        lines = [f"context: {meta['files']:,} text file(s) on disk (not in memory), {human_bytes(meta['size'])}, "
                 f"at {meta['source']}"]
        fs = meta["file_sizes"]
        lines.append(f"file sizes in bytes: min {fs['min']:,}, max {fs['max']:,}, mean {fs['mean']:,}; first: "
                     + ", ".join(meta["first_files"]))
        lines.append(FILES_HINT)
    else:
        lines = [f"context: {meta.get('type')}, {size}"]
    head, tail = meta.get("preview_head", ""), meta.get("preview_tail", "")
    if head or tail:
        lines.append("preview:")
        lines.append(head)
        if meta.get("preview_note"):
            lines.append(meta["preview_note"])
        if tail:
            lines.append(tail)
    return "\n".join(lines)


TABLE_HINT = ("It is too big to load: query it with SQL through DuckDB, e.g. "
              "context.sql('SELECT col, count(*) AS n FROM context GROUP BY col') returns a DataFrame; "
              "context.count() is the exact row count, context.head(5) a few rows, "
              "context.batches(10000, query) streams a result in DataFrames. Filter and aggregate in SQL, "
              "then send only the rows that need reading to sub-calls.")
FILES_HINT = ("They are read only when your code asks: len(context) files, context[i] reads file i whole, "
              "context.read(i, start, size) a byte range, context.lines(i) streams its lines, "
              "context.search(regex, max_hits=100) and context.count(regex) stream over every line (case-sensitive "
              "unless ignore_case=True), and "
              "context.chunks(50_000) yields pieces to send to llm_query_batched. Filter with search before "
              "reading.")


def _counts_text(counts: dict[str, int]) -> str:
    if len(counts) == 1:
        return f"all {next(iter(counts))}"
    return ", ".join(f"{name} {count:,}" for name, count in counts.items())


def _stats_text(stats: dict[str, float] | None) -> str:
    if not stats:
        return "n/a"
    return f"min {stats['min']:,}, max {stats['max']:,}, mean {stats['mean']:,}"
