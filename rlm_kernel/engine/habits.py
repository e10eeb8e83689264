"""Undoing one habit of small models before their code runs.

Qwen2.5-Coder-1.5B, shown a preview of `context`, starts most first cells by typing that preview
back in as data (`context = \"\"\"The bright meadow ... [... 11,609 characters omitted ...] ...\"\"\"`),
or the description of it (`context = str of 12,009 characters, 1 lines`, which does not even parse),
or a stand-in (`context = str(12009)`), and then searches its own copy, which lacks what it is looking
for. An assignment to `context` whose value never reads the input cannot hold it, so it is dropped
before the cell runs and the rest of the cell works on the real `context`; the model is told which
lines were skipped and why. Work on the input (`context = context.lower()`) runs as written."""

from __future__ import annotations

import ast
import re

#: Names the run binds to the input.
INPUT_NAMES = ("context", "context_0")


def drop_retyped_context(code: str) -> tuple[str, list[int]]:
    """`code` without the top-level statements that assign `context` a value read from nowhere in
    the input, and the 1-based line numbers they covered. A cell that does not parse loses its
    unparsable one-line `context = ...` statements when the rest then parses."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return _drop_unparsable(code)
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id in INPUT_NAMES and not _reads_input(node.value)):
            drop.append((node.lineno, node.end_lineno or node.lineno))
    if not drop:
        return code, []
    skipped = [n for a, b in drop for n in range(a, b + 1)]
    return _without(code, skipped), skipped


def _without(code: str, skipped: list[int]) -> str:
    gone = set(skipped)
    return "".join(line for n, line in enumerate(code.splitlines(keepends=True), start=1) if n not in gone)


def _drop_unparsable(code: str) -> tuple[str, list[int]]:
    skipped = [n for n, line in enumerate(code.splitlines(), start=1)
               if _ASSIGNS_INPUT.match(line) and not _parses(line)]
    if not skipped:
        return code, []
    rest = _without(code, skipped)
    return (rest, skipped) if rest.strip() and _parses(rest) else (code, [])


_ASSIGNS_INPUT = re.compile(rf"^(?:{'|'.join(INPUT_NAMES)})\s*=(?!=)")


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except SyntaxError:
        return False
    return True


def _reads_input(node: ast.expr) -> bool:
    """Whether the value reads `context` (or `context_0`): then it is work on the input."""
    return any(isinstance(n, ast.Name) and n.id in INPUT_NAMES for n in ast.walk(node))
