"""Key redaction for exported notebooks.

An exported notebook is meant to be shared, and a run can print a key by accident (a model that
dumps `os.environ`, a traceback that shows request headers). Every string that leaves the run
record for a notebook passes through a Redactor first. It matches the key shapes people actually
leak plus the exact values of key-like environment variables, so nothing innocent is rewritten."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

MARK = "[REDACTED]"

# Anthropic keys (sk-ant-api03-…, sk-ant-admin01-…), then other sk- keys (OpenAI sk-…, sk-proj-…).
_PATTERNS = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{16,}"),
)
# "Authorization: Bearer <token>": keep the word so the text still reads.
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)

#: Environment variables whose values are secrets wherever they appear.
SECRET_ENV_NAMES = ("ANTHROPIC_API_KEY",)
#: Name endings that mark other secrets (OPENAI_API_KEY, RLM_OPENAI_API_KEY, ANTHROPIC_AUTH_TOKEN).
_SECRET_ENV_SUFFIXES = ("_API_KEY", "_AUTH_TOKEN")
#: Shorter values are too likely to occur in ordinary text to be replaced blindly.
_MIN_SECRET_LEN = 8


def env_secrets(env: Mapping[str, str] | None = None) -> list[str]:
    """Values of key-like variables in `env` (default: os.environ), longest first."""
    env = os.environ if env is None else env
    values = {v for k, v in env.items()
              if (k in SECRET_ENV_NAMES or k.upper().endswith(_SECRET_ENV_SUFFIXES)) and len(v) >= _MIN_SECRET_LEN}
    return sorted(values, key=len, reverse=True)


class Redactor:
    """Replaces keys in text with MARK and counts how many it replaced."""

    def __init__(self, secrets: Iterable[str] = (), *, env: Mapping[str, str] | None = None) -> None:
        self.secrets = sorted({s for s in (*secrets, *env_secrets(env)) if s}, key=len, reverse=True)
        self.count = 0

    def text(self, s: str) -> str:
        for secret in self.secrets:
            if secret in s:
                self.count += s.count(secret)
                s = s.replace(secret, MARK)
        for pattern in _PATTERNS:
            s, n = pattern.subn(MARK, s)
            self.count += n
        s, n = _BEARER.subn(lambda m: m.group(1) + MARK, s)
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


def redact(text: str) -> str:
    """`text` with key patterns and this environment's key values replaced by MARK."""
    return Redactor().text(text)
