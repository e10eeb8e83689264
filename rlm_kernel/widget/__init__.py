"""The notebook view of a run: `RunView` (live tree + steering buttons) and the static HTML
fallback. Imports Jupyter (comm, IPython display); the engine never imports this room."""

from __future__ import annotations

from .static import render_static_html
from .view import RunView

__all__ = ["RunView", "render_static_html"]
