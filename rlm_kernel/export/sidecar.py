"""The notebook cell that brings back a run's `context`.

Small inputs are written into the cell as a Python literal, so the notebook stands alone. Large
ones go to a file next to the notebook (the .ipynb must stay small enough to open and diff), in
the plainest format that gives back an equal object (engine/contextfile.py): text, raw bytes, JSON,
a Python literal, Parquet, .npy, and pickle last. The cell reads it with `read_sidecar`, which runs
no code from the file unless the reader says they trust a pickle, and names a missing file."""

from __future__ import annotations

import ast
import json
import pprint
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.contextfile import (
    OneLine,
    UntrustedPickle,
    read_context,
    untrusted_message,
    write_context,
    written_here,
)


class SidecarMissing(OneLine, FileNotFoundError):
    """The notebook's context file is not next to it."""


def read_sidecar(name: str | Path, *, trust: bool = False) -> Any:
    """What an exported notebook's context cell calls: the context from the file `name` next to the
    notebook (the kernel's folder). A pickle needs `trust=True` (it can run code when loaded)."""
    path = Path(name)
    if not path.exists():
        raise SidecarMissing(f"{path.name} is not in {Path.cwd()}: copy it next to this notebook "
                             "(it holds the run's input), then run this cell again")
    try:
        return read_context(path, trust=trust)
    except UntrustedPickle:
        raise UntrustedPickle(untrusted_message(path, "set trust=True in this cell")) from None


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


NAME = "context"  # the name generated code reads the input by
HEADER = f"# The run's input, as `{NAME}` held it during the run."


def _alias_line(alias: str | None) -> str:
    """Also bind the person's own variable name (`%%rlm --context df`), so later cells that use it work."""
    if alias and alias != NAME and alias.isidentifier():
        return f"\n{alias} = {NAME}  # the variable the run was started with"
    return ""


def context_cell(obj: Any, *, out_path: Path, inline_chars: int, alias: str | None = None) -> ContextCell:
    """The cell source for `obj`, writing a sidecar next to `out_path` when it is too large to inline."""
    literal = _literal(obj, inline_chars)
    if literal is not None:
        return ContextCell(f"{HEADER}\n{NAME} = {literal}{_alias_line(alias)}")
    return _sidecar_cell(write_context(obj, _sidecar_stem(out_path)), alias, type_name=_type_name(obj))


def context_cell_from_snapshot(snapshot: Path, *, out_path: Path, inline_chars: int,
                               alias: str | None = None, trust: bool = False) -> ContextCell:
    """Like context_cell for a run's saved context, but a snapshot too big to inline is copied as it is
    rather than loaded and written again (a 50 MB input costs one file copy). So is a pickle this
    process did not write, unless `trust`: export never runs a file's code without the opt-in."""
    readable = snapshot.suffix != ".pkl" or trust or written_here(snapshot)
    if readable and snapshot.stat().st_size <= 4 * inline_chars:  # a UTF-8 char is 1-4 bytes: maybe inlinable
        return context_cell(read_context(snapshot, trust=trust), out_path=out_path, inline_chars=inline_chars,
                            alias=alias)
    path = _sidecar_stem(out_path).with_name(_sidecar_stem(out_path).name + snapshot.suffix)
    tmp = path.with_name(path.name + ".partial")
    shutil.copyfile(snapshot, tmp)
    tmp.replace(path)
    return _sidecar_cell(path, alias, type_name=None)


def _sidecar_stem(out_path: Path) -> Path:
    return out_path.with_name(out_path.stem + ".context")


def _type_name(obj: Any) -> str:
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _sidecar_cell(path: Path, alias: str | None, *, type_name: str | None) -> ContextCell:
    """The cell that loads a sidecar file written by the engine's write_context."""
    note = None
    load = f"read_sidecar({path.name!r})"
    size = f"{path.stat().st_size:,} bytes"
    lines = [HEADER, f"# It is large ({size}), so it lives in a file next to this notebook: copy it along."]
    if path.suffix == ".pkl":
        what = f"The input is a `{type_name}`, which has" if type_name else "The input has"
        note = (f"{what} no plain file format, so it is saved with pickle. "
                "Loading a pickle can run code: the next cell loads it only once you set `trust=True` in it, "
                "which you should do only if you trust where this notebook and its files came from.")
        warnings.warn(f"rlm export: the context was saved with pickle to {path.name}; only people who trust "
                      "the file should open the notebook", ContextPickleWarning, stacklevel=3)
        lines.append("# It is a pickle, which can run code when loaded: set trust=True only if you trust its source.")
        load = f"read_sidecar({path.name!r}, trust=False)"
    if path.suffix == ".ref":
        ref = json.loads(path.read_text(encoding="utf-8"))
        note = (f"The input is data on disk at `{ref['source']}` ({ref['files']:,} files), referred to and not "
                "copied: the notebook needs that data at the same place. Loading it warns if it changed.")
        lines[1] = "# It is data on disk, opened lazily from where the run found it (not copied: it must be there)."
    lines += ["from rlm_kernel.export import read_sidecar", "", f"{NAME} = {load}{_alias_line(alias)}"]
    return ContextCell("\n".join(lines), path, note)


def missing_context_cell(why: str) -> ContextCell:
    """A cell that says the input is gone, and fails loudly instead of replaying on the wrong data."""
    source = (f"# The run's input could not be found ({why}).\n"
              f"# Bind `{NAME}` to the same input the run had, then run the cells below.\n"
              f"if {NAME!r} not in globals():\n"
              f"    raise NameError({f'set {NAME} to the run input first: its snapshot is missing'!r})")
    note = (f"**The run's input is missing** ({why}). Bind `{NAME}` yourself before running the steps; "
            "with different data the recorded sub-call answers will not match.")
    return ContextCell(source, None, note)
