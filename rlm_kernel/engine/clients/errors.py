"""Helpers shared by the clients for turning an SDK's final failure into a ModelError message
(what a key looks like, and its redaction, is engine/redaction.py)."""

from __future__ import annotations

import httpx2


def retries_taken(request: httpx2.Request | None) -> str:
    """' after N retries', read from the retry counter the SDKs stamp on each attempt ('' for none)."""
    try:
        n = int(request.headers.get("x-stainless-retry-count", "0")) if request is not None else 0
    except (ValueError, RuntimeError):
        n = 0
    return f" after {n} {'retry' if n == 1 else 'retries'}" if n else ""
