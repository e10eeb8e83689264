"""Dollar cost of model usage, from Anthropic's public price list.

Only list prices that the public docs state as a single number are here; a model priced in
tiers or not listed has no price (cost None), so a budget in dollars is never enforced on a
guess. Users add or correct prices with `RLMOptions.prices`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .types import Usage

#: Dollars per million tokens: input and output. Cache reads cost 0.1× input and 5-minute cache
#: writes 1.25× input unless an entry says otherwise ("cache_read", "cache_write").
#: Haiku 5.5 is listed "from $0.10 / $0.50" (tiered), so it is deliberately absent.
PRICES: dict[str, dict[str, float]] = {
    "claude-sonnet-5-5": {"input": 2.0, "output": 10.0},
    "claude-opus-5-5": {"input": 4.0, "output": 20.0},
    "claude-sonnet-5": {"input": 2.0, "output": 10.0},
    "claude-opus-5": {"input": 5.0, "output": 25.0},
    "claude-haiku-4-5": {"input": 1.0, "output": 5.0},
    "claude-sonnet-4-5": {"input": 3.0, "output": 15.0},
    "claude-opus-4-5": {"input": 5.0, "output": 25.0},
}
CACHE_READ_FACTOR = 0.1
CACHE_WRITE_FACTOR = 1.25
#: Message Batches requests cost half the standard price, every kind of token alike. Their usage is
#: kept under the model's id plus BATCH_SUFFIX, so every total that prices usage by model gets it right.
BATCH_FACTOR = 0.5
BATCH_SUFFIX = " (batch)"

_DATED = re.compile(r"-\d{8}$")

Prices = Mapping[str, Mapping[str, float]]


def alias(model: str) -> str:
    """The undated id of a dated snapshot: claude-sonnet-4-5-20250929 → claude-sonnet-4-5."""
    return _DATED.sub("", model)


def batch_key(model: str) -> str:
    """The usage key of `model`'s Message Batches requests: 'claude-sonnet-5-5 (batch)'."""
    return model + BATCH_SUFFIX


def price(model: str, overrides: Prices | None = None) -> dict[str, float] | None:
    """Per-million-token prices for `model` ("input", "output", "cache_read", "cache_write"), or
    None when unknown. An override (exact id first, then its alias) is laid over the table entry,
    so it may change one figure or add a model; cache prices follow input unless given. A batch
    key (see batch_key) costs BATCH_FACTOR of its model's prices."""
    if model.endswith(BATCH_SUFFIX):
        standard = price(model[: -len(BATCH_SUFFIX)], overrides)
        return None if standard is None else {k: v * BATCH_FACTOR for k, v in standard.items()}
    base: dict[str, Any] = dict(PRICES.get(model) or PRICES.get(alias(model)) or {})
    extra = (overrides or {}).get(model) or (overrides or {}).get(alias(model))
    if extra:
        base.update(extra)
    if not base:
        return None
    missing = [k for k in ("input", "output") if base.get(k) is None]
    if missing:
        needs = " and ".join(repr(k) for k in missing)
        raise ValueError(f"price for {model!r} needs {needs} in dollars per million tokens")
    base.setdefault("cache_read", base["input"] * CACHE_READ_FACTOR)
    base.setdefault("cache_write", base["input"] * CACHE_WRITE_FACTOR)
    return {k: float(base[k]) for k in ("input", "output", "cache_read", "cache_write")}


def cost(model: str, usage: Usage | Mapping[str, Any], overrides: Prices | None = None) -> float | None:
    """Dollars for `usage` on `model`, or None when the model has no known price."""
    p = price(model, overrides)
    if p is None:
        return None
    u = usage if isinstance(usage, Usage) else Usage.from_dict(dict(usage))
    return (
        u.input_tokens * p["input"]
        + u.output_tokens * p["output"]
        + u.cache_read_tokens * p["cache_read"]
        + u.cache_write_tokens * p["cache_write"]
    ) / 1_000_000
