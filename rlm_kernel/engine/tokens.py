"""A cheap, conservative token estimate for text no tokenizer has seen.

Used where no real count exists yet: the preflight check before a sub-call, the check of a root
prompt against the root model's window, and the usage of servers that report none in streams.
Characters per token vary by a factor of ten with the text: English prose is about 4, CJK about 1
or less, base64 and hex about 1.3-2.5, digits 1 on tokenizers that split them (Qwen, Llama 2).
So instead of one ratio, each character class has its own weight, plus a token for the transitions
tokenizers cut at (a capital inside a word, a digit next to a letter), which is what makes random
strings expensive. Calibrated against Qwen2.5's tokenizer (the strictest seen here: it splits every
digit; measured through llama-cpp-python's /extras/tokenize/count) it reads, as a multiple of the
real count: English 1.1, code 1.3, JSON 1.1, base64 1.1, hex 1.1, digits 1.0, Cyrillic 1.3, and
1.25 tokens per CJK character (ordinary Chinese and Japanese take 0.5-1; only rare ideographs
take more, up to 1.6). About 0.1 s per megabyte, most of it one regular-expression pass."""

from __future__ import annotations

import functools
import math
import re

# Tokens per character, by class. The ASCII classes are found by one bytes.translate over the
# UTF-8 text (a C pass, about a millisecond per megabyte) and summed with bytes.count.
_LOWER, _UPPER, _DIGIT, _SPACE, _BREAK, _PUNCT, _HIGH = b"abcdefg"
_WEIGHTS = {_LOWER: 0.22, _UPPER: 0.6, _DIGIT: 1.0, _SPACE: 0.15, _BREAK: 0.8, _PUNCT: 0.7}
#: CJK ideographs, kana, Hangul and full-width forms: a token or more each on most tokenizers.
CJK_WEIGHT = 1.25
#: Other characters of the Basic Multilingual Plane (accented Latin, Cyrillic, Greek, Arabic...).
OTHER_WEIGHT = 0.6
#: Characters beyond it (emoji, rare scripts): several UTF-8 bytes, often 2-3 tokens.
ASTRAL_WEIGHT = 2.0


def _table() -> bytes:
    table = bytearray([_PUNCT] * 128 + [_HIGH] * 128)
    for lo, hi, cls in ((b"a", b"z", _LOWER), (b"A", b"Z", _UPPER), (b"0", b"9", _DIGIT)):
        table[lo[0] : hi[0] + 1] = bytes([cls]) * (hi[0] - lo[0] + 1)
    table[ord(" ")] = _SPACE
    for c in b"\n\t\r":
        table[c] = _BREAK
    return bytes(table)


_TABLE = _table()

# Where tokenizers cut inside a run of non-space characters: each match costs about one more token.
_CUTS = re.compile(r"[a-z][A-Z]|[0-9][A-Za-z]|[A-Za-z][0-9]| [0-9]")
_CJK = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


#: Texts up to this many characters have their estimate remembered: every root turn re-estimates the
#: conversation so far (the same strings) and every sub-call its prompt twice (preflight, reply budget).
#: Longer ones (a prompt the preflight is about to refuse) are not kept alive by the cache.
REMEMBER_CHARS = 200_000


def estimate_tokens(text: str) -> int:
    """About how many tokens `text` is, erring high (see the module docstring for the calibration)."""
    return _remembered(text) if len(text) <= REMEMBER_CHARS else _estimate(text)


@functools.lru_cache(maxsize=256)
def _remembered(text: str) -> int:
    return _estimate(text)


def _estimate(text: str) -> int:
    if not text:
        return 0
    classes = text.encode("utf-8", "surrogatepass").translate(_TABLE)
    counts = {cls: classes.count(cls) for cls in _WEIGHTS}
    total = sum(weight * counts[cls] for cls, weight in _WEIGHTS.items())
    total += _count(_CUTS, text)
    if not text.isascii():
        ascii_chars = sum(counts.values())
        cjk, astral = _count(_CJK, text), _count(_ASTRAL, text)
        other = len(text) - ascii_chars - cjk - astral
        total += CJK_WEIGHT * cjk + ASTRAL_WEIGHT * astral + OTHER_WEIGHT * other
    return math.ceil(total)


def estimate_messages(system: str, messages: list[dict]) -> int:
    """Estimate of a chat request's prompt: every text in it plus a few tokens of framing per message."""
    total = estimate_tokens(system) + (4 if system else 0)
    for message in messages:
        # Our own tool-use messages carry calls and results beside the text (clients/tooluse.py).
        parts = [message.get("content"), message.get("tool_calls"), message.get("tool_results")]
        total += 4 + estimate_tokens(message_text([p for p in parts if p]))
    return total


def message_text(content: object) -> str:
    """The text a message carries, whether its content is a string or a list of blocks
    (text, tool_use input, tool_result content...)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(message_text(block) for block in content)
    if isinstance(content, dict):
        return "\n".join(message_text(v) for k, v in content.items() if k not in _FRAMING_KEYS)
    return "" if content is None else str(content)


_FRAMING_KEYS = frozenset({"type", "id", "tool_use_id", "cache_control", "role"})


def _count(pattern: re.Pattern[str], text: str) -> int:
    return pattern.subn("", text)[1]
