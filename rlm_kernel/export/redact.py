"""Key redaction for exported notebooks.

An exported notebook is meant to be shared, and a run can print a key by accident (a model that
dumps `os.environ`, a traceback that shows request headers). Every string that leaves the run
record for a notebook passes through a Redactor first. It replaces the key shapes people actually
leak (the engine's `redact_keys`, which the model clients use on their error messages too) plus
the exact values of key-like environment variables, so nothing innocent is rewritten."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..engine.clients.errors import MARK, redact_keys

__all__ = ["MARK", "Redactor", "env_secrets"]

#: Name endings of variables whose values are secrets wherever they appear (ANTHROPIC_API_KEY,
#: OPENAI_API_KEY, RLM_OPENAI_API_KEY, ANTHROPIC_AUTH_TOKEN).
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN")
#: Shorter values are too likely to occur in ordinary text to be replaced blindly.
_MIN_SECRET_LEN = 8


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of key-like variables in `env` (default: os.environ), longest first."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items() if k.upper().endswith(_SECRET_ENV_SUFFIXES) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Replaces keys in text with MARK and counts how many it replaced."""

    def __init__(self, secrets: Iterable[str] = (), *, env: Mapping[str, str] | None = None) -> None:
        self.secrets = sorted({s for s in (*secrets, *env_secrets(env)) if s}, key=len, reverse=True)
        self.count = 0

    def text(self, s: str) -> str:
        s, n = redact_keys(s, self.secrets)
        self.count += n
        return s

    def deep(self, obj: Any) -> Any:
        """`obj` with every string inside dicts, lists and tuples redacted (dict keys included)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, Mapping):
            return {self.deep(k) if isinstance(k, str) else k: self.deep(v) for k, v in obj.items()}
        if isinstance(obj, list | tuple):
            return [self.deep(v) for v in obj]
        return obj
