"""Where the front-end files are: inside the wheel (rlm_kernel/widget/static, put there by the
build's force-include) or, in an editable checkout, the repository's top-level widgets/."""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CANDIDATES = (_HERE / "static", _HERE.parents[1] / "widgets")


def static_dir() -> Path:
    """The first folder that holds tree.js; a clear error names both places otherwise."""
    for folder in _CANDIDATES:
        if (folder / "tree.js").is_file():
            return folder
    raise FileNotFoundError("rlm-kernel's widget front-end (tree.js) is missing; looked in "
                            + " and ".join(str(c) for c in _CANDIDATES))


def esm_path() -> Path:
    return static_dir() / "tree.js"


def css_path() -> Path:
    return static_dir() / "tree.css"
