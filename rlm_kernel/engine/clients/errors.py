"""Helpers shared by the clients for turning an SDK's final failure into a ModelError message,
and the one definition of what a key looks like (export's Redactor builds on `redact_keys`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx2

MARK = "[REDACTED]"
# Anthropic keys (sk-ant-api03-…, sk-ant-admin01-…), then other sk- keys (OpenAI sk-…, sk-proj-…).
_KEY_PATTERNS = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"(?<![A-Za-z0-9_\-])sk-[A-Za-z0-9_\-]{16,}"),
)
# "Authorization: Bearer <token>": keep the word so the text still reads.
_BEARER = re.compile(r"(\bBearer\s+)[A-Za-z0-9._~+/=\-]{8,}", re.IGNORECASE)
#: A known secret shorter than this is left alone: replacing it would mangle ordinary text.
_MIN_KNOWN_SECRET = 4


def redact_keys(text: str, secrets: Iterable[str | None] = ()) -> tuple[str, int]:
    """(`text` with the given secrets and anything shaped like a key replaced by MARK, how many
    were replaced). Pass secrets longest first when one may contain another."""
    count = 0
    for secret in secrets:
        if secret and len(secret) >= _MIN_KNOWN_SECRET and secret in text:
            count += text.count(secret)
            text = text.replace(secret, MARK)
    for pattern in _KEY_PATTERNS:
        text, n = pattern.subn(MARK, text)
        count += n
    text, n = _BEARER.subn(lambda m: m.group(1) + MARK, text)
    return text, count + n


def retries_taken(request: httpx2.Request | None) -> str:
    """' after N retries', read from the retry counter the SDKs stamp on each attempt ('' for none)."""
    try:
        n = int(request.headers.get("x-stainless-retry-count", "0")) if request is not None else 0
    except (ValueError, RuntimeError):
        n = 0
    return f" after {n} {'retry' if n == 1 else 'retries'}" if n else ""
