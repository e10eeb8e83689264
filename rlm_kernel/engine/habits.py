"""Undoing one habit of small models before their code runs.

Qwen2.5-Coder-1.5B, shown a preview of `context`, starts most first cells by typing that preview
back in as data (`context = \"\"\"The bright meadow ... [... 11,609 characters omitted ...] ...\"\"\"`)
and then searches its own copy, which lacks what it is looking for. Such an assignment never
holds the real input, so it is dropped before the cell runs and the rest of the cell works on the
real `context`; the model is told which lines were skipped and why."""

from __future__ import annotations

import ast

#: Names the run binds to the input.
INPUT_NAMES = ("context", "context_0")


def drop_retyped_context(code: str) -> tuple[str, list[int]]:
    """`code` without top-level statements that assign a literal (a string, or a list / dict / tuple
    of literals) to `context`, and the 1-based line numbers they covered."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code, []
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in INPUT_NAMES and _is_literal(node.value)):
            drop.append((node.lineno, node.end_lineno or node.lineno))
    if not drop:
        return code, []
    lines = code.splitlines(keepends=True)
    skipped = [n for a, b in drop for n in range(a, b + 1)]
    kept = [line for n, line in enumerate(lines, start=1) if n not in set(skipped)]
    return "".join(kept), skipped


def _is_literal(node: ast.expr) -> bool:
    """Text or a container of literals: data typed in (`context = None` is a different mistake)."""
    if isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str | bytes)):
        return True
    if not isinstance(node, ast.List | ast.Tuple | ast.Dict | ast.Set):
        return False
    try:
        ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False
    return True
