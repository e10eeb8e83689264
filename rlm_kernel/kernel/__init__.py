"""The Jupyter side: RLMKernel (kernel.py), the magics, and the executor on IPython's shell.

`%load_ext rlm_kernel.kernel` adds `%%rlm` to a plain IPython kernel too."""

from __future__ import annotations

from typing import Any


def load_ipython_extension(shell: Any) -> None:
    from .magics import register

    register(shell)
