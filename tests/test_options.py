"""RLMOptions checks every number option against the range written next to its help text, so
`rlm()`, `%%rlm`, `%rlm config`, config files and RLM_* variables all refuse a bad budget the same way."""

from __future__ import annotations

import dataclasses

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine.options import OptionError, RLMOptions, range_text


@pytest.mark.parametrize(("option", "value", "message"), [
    ("max_iterations", -3, "max_iterations must be a whole number of at least 1, got -3"),
    ("max_subcalls", -5, "max_subcalls must be a whole number of at least 1 (or None for no limit), got -5"),
    ("max_subcalls", 0, "max_subcalls must be a whole number of at least 1"),
    ("max_tokens", 0, "max_tokens must be a whole number of at least 1"),
    ("max_cost", 0, "max_cost must be a number above 0"),
    ("max_cost", -1.5, "max_cost must be a number above 0"),
    ("timeout", float("nan"), "timeout must be a number above 0"),
    ("cell_timeout", 0, "cell_timeout must be a number above 0"),
    ("max_depth", -1, "max_depth must be a whole number of at least 0"),
    ("concurrency", 0, "concurrency must be a whole number of at least 1"),
    ("max_iterations", "30", "max_iterations must be a whole number of at least 1, got '30'"),
    ("max_iterations", 2.5, "got 2.5"),
    ("max_iterations", True, "got True"),
])
def test_rlm_refuses_a_bad_number_before_anything_starts(tmp_path, option, value, message):
    with pytest.raises(OptionError) as info:
        rlm("What?", context="text", model="demo", runs_dir=str(tmp_path), **{option: value})
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())  # no run was started


def test_edges_of_the_ranges_are_accepted():
    opts = RLMOptions(max_iterations=1, max_depth=0, max_subcalls=None, max_cost=0.01, preview_chars=0,
                      max_retries=0, cell_timeout=None, timeout=0.5)
    assert (opts.max_iterations, opts.max_depth, opts.preview_chars) == (1, 0, 0)


def test_every_number_option_has_a_range():
    numbers = [f.name for f in dataclasses.fields(RLMOptions) if str(f.type).split(" ")[0] in ("int", "float")]
    assert len(numbers) >= 12
    assert [name for name in numbers if range_text(name) is None] == []


def test_a_log_recorded_before_the_checks_still_loads():
    opts = RLMOptions.from_recorded({"max_iterations": -3, "model": "m", "max_depth": 1})
    assert (opts.max_iterations, opts.model, opts.max_depth) == (30, "m", 1)
