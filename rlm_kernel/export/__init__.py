"""The export room: a recorded run (its JSONL log and context snapshot) as a notebook that replays
without a model. It reads the run record only, never a live kernel or widget.

    from rlm_kernel.export import export_run
    export_run("rlm_runs/<run>.jsonl", "analysis.ipynb")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["export_run", "install_replay", "read_sidecar"]

if TYPE_CHECKING:
    from .notebook import export_run
    from .replay import install_replay
    from .sidecar import read_sidecar


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package does not pull in nbformat (or IPython for replay).
    if name == "export_run":
        from .notebook import export_run

        return export_run
    if name == "install_replay":
        from .replay import install_replay

        return install_replay
    if name == "read_sidecar":
        from .sidecar import read_sidecar

        return read_sidecar
    raise AttributeError(name)
