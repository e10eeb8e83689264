"""The four rooms and their one-way doors: the engine imports no other room, the widget and the export
only the engine (and themselves). The kernel adapts all of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rlm_kernel"
ALLOWED = {"engine": {"engine"}, "widget": {"engine", "widget"}, "export": {"engine", "export"}}
#: The two late doors, each a function-level import of the export room behind a button the issues ask
#: for: `result.export(path)` and the tree's Export button. Nothing else may cross.
LATE_DOORS = {("engine/outcome.py", "export"), ("widget/view.py", "export")}


def rooms_imported(path: Path, room: str) -> set[str]:
    """Rooms of rlm_kernel that a module imports, however it spells the import."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = path.relative_to(PACKAGE).parent.parts[: len(path.relative_to(PACKAGE).parent.parts)
                                                               - (node.level - 1)]
                parts = [*base, *(node.module or "").split(".")]
                names = [parts] if node.module else [[*base, a.name] for a in node.names]
            elif (node.module or "").startswith("rlm_kernel."):
                names = [node.module.split(".")[1:]]
            else:
                continue
            found.update(p[0] for p in names if p and p[0])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("rlm_kernel."))
    return found - {room}


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_rooms_only_import_through_their_doors(room):
    for path in sorted((PACKAGE / room).rglob("*.py")):
        name = path.relative_to(PACKAGE).as_posix()
        wrong = {r for r in rooms_imported(path, room) if (PACKAGE / r).is_dir()} - ALLOWED[room]
        wrong = {r for r in wrong if (name, r) not in LATE_DOORS}
        assert not wrong, f"{path.relative_to(PACKAGE)} imports {sorted(wrong)}"
