"""How the root model runs code and gives its answer, as small strategy objects the loop calls:
`fences` (the paper's ```repl blocks and FINAL(...)) and `tools` (native tool use)."""

from __future__ import annotations

from ..clientset import ConfigError
from .base import LiveTurn, Protocol, Step
from .fences import FencedProtocol
from .tools import ToolProtocol

PROTOCOLS = ("tools", "fences")

__all__ = ["PROTOCOLS", "FencedProtocol", "LiveTurn", "Protocol", "Step", "ToolProtocol", "choose", "resolve"]


def resolve(requested: str | None, provider_label: str) -> str:
    """The protocol a run uses: the one asked for, else tools for Anthropic and fences elsewhere
    (OpenAI-compatible servers differ in how well they do tool calls; the demo model writes fences)."""
    name = (requested or "auto").strip().lower()
    if name == "auto":
        return "tools" if provider_label == "anthropic" else "fences"
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {requested!r}; use one of: auto, {', '.join(PROTOCOLS)}")
    return name


def choose(requested: str | None, provider_label: str) -> Protocol:
    return ToolProtocol() if resolve(requested, provider_label) == "tools" else FencedProtocol()
