"""rlm-kernel: Recursive Language Models in Python and as a Jupyter kernel.

`from rlm_kernel import rlm` imports only the engine; nothing from Jupyter is loaded."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RLMOptions", "RLMResult", "__version__", "rlm", "warmup"]

if TYPE_CHECKING:
    from .engine.api import RLMResult, rlm
    from .engine.options import RLMOptions
    from .engine.warmup import warmup


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension is (`jupyter labextension develop` reads this)."""
    return [{"src": "labextension", "dest": "rlm-kernel"}]


def __getattr__(name: str) -> Any:
    if name in ("rlm", "RLMResult"):
        from .engine import api

        return getattr(api, name)
    if name == "RLMOptions":
        from .engine.options import RLMOptions

        return RLMOptions
    if name == "warmup":
        from .engine.warmup import warmup

        return warmup
    raise AttributeError(name)
