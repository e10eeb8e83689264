"""Helpers shared by the clients for turning an SDK's final failure into a ModelError message."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx2

_KEY_LIKE = re.compile(r"sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{16,}")


def retries_taken(request: httpx2.Request | None) -> str:
    """' after N retries', read from the retry counter the SDKs stamp on each attempt ('' for none)."""
    try:
        n = int(request.headers.get("x-stainless-retry-count", "0")) if request is not None else 0
    except (ValueError, RuntimeError):
        n = 0
    return f" after {n} {'retry' if n == 1 else 'retries'}" if n else ""


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` without the given secrets or anything shaped like an API key."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)
