"""What the first root request of a run over a big input waits for: no full scan of the text, and
the context snapshot written only once the request has left."""

from __future__ import annotations

import threading
from pathlib import Path

from rlm_kernel.engine.context import EXACT_LINES_LIMIT, context_summary, describe_context
from rlm_kernel.engine.snapshot import context_snapshot_path, save_context


def test_long_text_gets_an_estimated_line_count_said_as_such() -> None:
    text = "a line of twenty-ch\n" * ((EXACT_LINES_LIMIT // 20) + 50_000)
    meta = describe_context(text)
    exact = text.count("\n")
    assert meta["lines_estimated"] is True
    assert abs(meta["lines"] - exact) / exact < 0.01
    assert f"about {meta['lines']:,} lines" in context_summary(meta)


def test_short_text_is_counted_exactly() -> None:
    meta = describe_context("one\ntwo\nthree")
    assert meta["lines"] == 3 and "lines_estimated" not in meta
    assert "str of 13 characters, 3 lines" in context_summary(meta)


def test_snapshot_waits_for_its_signal(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    gate = threading.Event()
    writer = save_context("the context", log, after=gate)
    writer.join(0.1)
    assert writer.is_alive() and context_snapshot_path(log) is None  # nothing written before the signal
    gate.set()
    writer.join(10)
    assert context_snapshot_path(log).read_text() == "the context"
