"""Make `%%rlm` cells (and `%rlm resume` / `%rlm ask` lines) coroutine cells.

ipykernel runs a cell on its event loop, as a coroutine, only when the cell contains a top-level
`await`; otherwise the cell blocks the loop and no widget click (comm message) is handled until it
ends. So before IPython's own magic transform, these cells are rewritten to *await* the magic,
which returns a coroutine. The rewritten form is what `In[n]` shows, as for any magic:

    %%rlm --model demo          ->  await get_ipython().run_cell_magic('rlm', '--model demo', 'question\\n')
    question
"""

from __future__ import annotations

import re
from typing import Any

_CELL = re.compile(r"%%rlm(?:[ \t]|$)")
_RESUME = re.compile(r"^(?P<indent>[ \t]*)(?P<assign>[A-Za-z_][\w.]*[ \t]*=[ \t]*)?%rlm[ \t]+"
                     r"(?P<args>(?:resume|ask)\b.*)$")


def is_rlm_cell(code: str) -> bool:
    """True for a cell the transform turns into a coroutine cell."""
    lines = code.lstrip("\n").splitlines()
    if lines and _CELL.match(lines[0].lstrip()):
        return True
    return any(_RESUME.match(line) for line in lines)


def make_transform(shell: Any):
    """A line transform for `shell.input_transformer_manager.line_transforms` (runs before `%%`)."""

    def rlm_coroutine_cells(lines: list[str]) -> list[str]:
        if not lines or not getattr(shell, "autoawait", False):
            return lines  # without autoawait the magic itself explains what to do
        if _CELL.match(lines[0]):
            options = lines[0][len("%%rlm"):].strip()
            body = "".join(lines[1:])
            return [f"await get_ipython().run_cell_magic('rlm', {options!r}, {body!r})\n"]
        out = []
        for line in lines:
            m = _RESUME.match(line.rstrip("\n"))
            if m:
                args = m["args"].rstrip()
                line = f"{m['indent']}{m['assign'] or ''}await get_ipython().run_line_magic('rlm', {args!r})\n"
            out.append(line)
        return out

    rlm_coroutine_cells.rlm_transform = True  # type: ignore[attr-defined]  # lets install() stay idempotent
    return rlm_coroutine_cells


def install(shell: Any) -> None:
    transforms = shell.input_transformer_manager.line_transforms
    if not any(getattr(t, "rlm_transform", False) for t in transforms):
        transforms.insert(0, make_transform(shell))
