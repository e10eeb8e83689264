"""The notebook cell that brings back a run's `context`.

Small inputs are written into the cell as a Python literal, so the notebook stands alone. Large
ones go to a file next to the notebook (the .ipynb must stay small enough to open and diff), in
the plainest format that gives back an equal object: text, raw bytes, JSON, and pickle last."""

from __future__ import annotations

import ast
import json
import pickle
import pprint
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class ContextPickleWarning(UserWarning):
    """The context could only be saved with pickle: whoever opens the notebook must trust the file."""


@dataclass
class ContextCell:
    source: str  # the code cell's source
    sidecar: Path | None = None  # the file written next to the notebook, if any
    note: str | None = None  # Markdown for the reader when something needs their attention


def _literal(obj: Any, limit: int) -> str | None:
    """A Python literal that evaluates back to an equal object, within `limit` characters, or None."""
    if isinstance(obj, str | bytes):
        text = repr(obj)
        return text if len(text) <= limit else None
    try:
        text = pprint.pformat(obj, width=100, sort_dicts=False)
        if len(text) > limit or type(obj) is not type(ast.literal_eval(text)) or ast.literal_eval(text) != obj:
            return None
        return text
    except Exception:  # not a literal (objects, nan, recursion): use a sidecar
        return None


def _json_exact(obj: Any) -> bytes | None:
    """JSON bytes when JSON gives back an equal object (no tuples, int keys or NaN lost), else None."""
    try:
        data = json.dumps(obj, ensure_ascii=False, allow_nan=False)
        return data.encode("utf-8") if json.loads(data) == obj and type(json.loads(data)) is type(obj) else None
    except (TypeError, ValueError, RecursionError):
        return None


NAME = "context"  # the name generated code reads the input by


def _alias_line(alias: str | None) -> str:
    """Also bind the person's own variable name (`%%rlm --context df`), so later cells that use it work."""
    if alias and alias != NAME and alias.isidentifier():
        return f"\n{alias} = {NAME}  # the variable the run was started with"
    return ""


def context_cell(obj: Any, *, out_path: Path, inline_chars: int, alias: str | None = None) -> ContextCell:
    """The cell source for `obj`, writing a sidecar next to `out_path` when it is too large to inline."""
    header = f"# The run's input, as `{NAME}` held it during the run."
    literal = _literal(obj, inline_chars)
    if literal is not None:
        return ContextCell(f"{header}\n{NAME} = {literal}{_alias_line(alias)}")
    stem = out_path.with_name(out_path.stem + ".context")
    if isinstance(obj, str):
        try:
            data, suffix = obj.encode("utf-8"), ".txt"
            load = 'Path({name!r}).read_bytes().decode("utf-8")'
        except UnicodeEncodeError:  # lone surrogates: only pickle keeps them
            data, suffix, load = b"", "", ""
    elif isinstance(obj, bytes | bytearray):
        data, suffix, load = bytes(obj), ".bin", "Path({name!r}).read_bytes()"
    else:
        raw = _json_exact(obj)
        data, suffix, load = (raw, ".json", 'json.loads(Path({name!r}).read_text(encoding="utf-8"))') \
            if raw is not None else (b"", "", "")
    note = None
    imports = "from pathlib import Path"
    if not suffix:
        data, suffix = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL), ".pkl"
        load = "pickle.loads(Path({name!r}).read_bytes())"
        imports += "\nimport pickle"
        note = (f"The input is a `{type(obj).__module__}.{type(obj).__qualname__}`, which has no plain file "
                "format, so it is saved with pickle. Loading a pickle can run code: run the next cell only "
                "if you trust where this notebook and its files came from.")
        warnings.warn(f"rlm export: the context ({type(obj).__name__}) was saved with pickle to "
                      f"{stem.name}.pkl; only people who trust the file should open the notebook",
                      ContextPickleWarning, stacklevel=3)
    elif suffix == ".json":
        imports += "\nimport json"
    path = stem.with_name(stem.name + suffix)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_bytes(data)
    tmp.replace(path)
    size = f"{len(data):,} bytes"
    source = (f"{header}\n# It is large ({size}), so it lives in a file next to this notebook.\n{imports}\n\n"
              f"{NAME} = {load.format(name=path.name)}{_alias_line(alias)}")
    return ContextCell(source, path, note)


def missing_context_cell(why: str) -> ContextCell:
    """A cell that says the input is gone, and fails loudly instead of replaying on the wrong data."""
    source = (f"# The run's input could not be found ({why}).\n"
              f"# Bind `{NAME}` to the same input the run had, then run the cells below.\n"
              f"if {NAME!r} not in globals():\n"
              f"    raise NameError({f'set {NAME} to the run input first: its snapshot is missing'!r})")
    note = (f"**The run's input is missing** ({why}). Bind `{NAME}` yourself before running the steps; "
            "with different data the recorded sub-call answers will not match.")
    return ContextCell(source, None, note)
