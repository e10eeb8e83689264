"""Price table and cost arithmetic."""

from __future__ import annotations

import pytest

from rlm_kernel.engine.pricing import PRICES, alias, cost, price
from rlm_kernel.engine.types import Usage

MTOK = 1_000_000


@pytest.mark.parametrize(
    ("model", "dollars_in", "dollars_out"),
    [
        ("claude-sonnet-5-5", 2, 10), ("claude-opus-5-5", 4, 20), ("claude-sonnet-5", 2, 10),
        ("claude-opus-5", 5, 25), ("claude-haiku-4-5", 1, 5), ("claude-sonnet-4-5", 3, 15),
        ("claude-opus-4-5", 5, 25),
    ],
)
def test_listed_prices(model: str, dollars_in: float, dollars_out: float) -> None:
    assert cost(model, Usage(input_tokens=MTOK)) == pytest.approx(dollars_in)
    assert cost(model, Usage(output_tokens=MTOK)) == pytest.approx(dollars_out)
    assert cost(model, Usage(cache_read_tokens=MTOK)) == pytest.approx(0.1 * dollars_in)
    assert cost(model, Usage(cache_write_tokens=MTOK)) == pytest.approx(1.25 * dollars_in)


def test_only_the_checked_models_are_listed() -> None:
    assert set(PRICES) == {"claude-sonnet-5-5", "claude-opus-5-5", "claude-sonnet-5", "claude-opus-5",
                           "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"}


def test_mixed_usage_adds_up() -> None:
    usage = Usage(input_tokens=10_000, output_tokens=2_000, cache_read_tokens=50_000, cache_write_tokens=4_000)
    expected = (10_000 * 2 + 2_000 * 10 + 50_000 * 0.2 + 4_000 * 2.5) / MTOK
    assert cost("claude-sonnet-5-5", usage) == pytest.approx(expected)
    assert cost("claude-sonnet-5-5", usage.to_dict()) == pytest.approx(expected)


def test_unknown_and_tiered_models_have_no_price() -> None:
    for model in ("claude-haiku-5-5", "gpt-4o", "demo", "claude-sonnet-9-9"):
        assert cost(model, Usage(input_tokens=5)) is None
        assert price(model) is None


def test_dated_ids_use_their_alias() -> None:
    assert alias("claude-sonnet-4-5-20250929") == "claude-sonnet-4-5"
    assert alias("claude-sonnet-5-5") == "claude-sonnet-5-5"
    assert cost("claude-sonnet-4-5-20250929", Usage(input_tokens=MTOK)) == pytest.approx(3)
    assert price("claude-opus-4-5-20251101") is not None


def test_overrides_take_precedence_and_may_add_models() -> None:
    overrides = {
        "claude-sonnet-5-5": {"input": 1.5},
        "claude-haiku-5-5": {"input": 0.1, "output": 0.5},
        "my-local-model": {"input": 0, "output": 0},
    }
    assert price("claude-sonnet-5-5", overrides) == pytest.approx(
        {"input": 1.5, "output": 10.0, "cache_read": 0.15, "cache_write": 1.875})
    assert cost("claude-haiku-5-5", Usage(input_tokens=MTOK, output_tokens=MTOK), overrides) == pytest.approx(0.6)
    assert cost("my-local-model", Usage(input_tokens=123), overrides) == 0
    assert price("claude-haiku-5-5", overrides) is not None and price("claude-haiku-5-5") is None
    explicit = {"claude-opus-5": {"input": 5, "output": 25, "cache_read": 1, "cache_write": 2}}
    assert cost("claude-opus-5", Usage(cache_read_tokens=MTOK, cache_write_tokens=MTOK), explicit) == 3


def test_override_for_a_dated_id_and_incomplete_override() -> None:
    assert cost("claude-sonnet-4-5-20250929", Usage(output_tokens=MTOK), {"claude-sonnet-4-5": {"output": 1}}) == 1
    with pytest.raises(ValueError, match="'output'"):
        price("new-model", {"new-model": {"input": 1}})
