"""Small helpers for writing Markdown that survives whatever text a model or a person produced."""

from __future__ import annotations

import re

from ..engine.text import plural

__all__ = ["duration", "fence", "heading", "inline", "plural", "quote"]

_INLINE_SPECIAL = re.compile(r"([\\`*_\[\]<>#|~])")


def inline(text: str, limit: int | None = None) -> str:
    """`text` on one line, cut to `limit` characters, with Markdown/HTML syntax escaped, so a
    prompt quoted in a list item cannot open a code block, a heading or a tag."""
    flat = " ".join(text.split())
    if limit is not None and len(flat) > limit:
        flat = flat[: max(0, limit - 1)].rstrip() + "…"
    return _INLINE_SPECIAL.sub(r"\\\1", flat)


def fence(body: str, lang: str = "") -> str:
    """A fenced block that cannot be closed early by backticks inside `body`."""
    longest = max((len(m) for m in re.findall(r"`{3,}", body)), default=2)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{body.rstrip(chr(10))}\n{ticks}"


def quote(text: str) -> str:
    """`text` as a Markdown block quote, blank lines included."""
    return "\n".join(f"> {line}" if line.strip() else ">" for line in text.strip("\n").split("\n"))


def heading(level: int, text: str) -> str:
    return f"{'#' * max(1, min(level, 6))} {text}"



def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"
