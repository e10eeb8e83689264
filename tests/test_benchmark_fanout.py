"""benchmarks/fanout_adaptive.py runs end to end and its numbers come from what came back."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # benchmarks/ is a top-level folder, not part of the installed package

from benchmarks import fanout_adaptive  # noqa: E402


def test_fanout_benchmark_writes_its_tables(tmp_path: Path) -> None:
    fanout_adaptive.main(["--sizes", "12", "--limit", "4", "--latency", "0.1", "--concurrency", "12",
                          "--out", str(tmp_path)])
    results = json.loads((tmp_path / "fanout_adaptive.json").read_text())
    rows = {(r["mode"], r["concurrency"]): r for r in results["rows"]}
    assert rows[("adaptive", 12)]["correct"] == 12 and rows[("batch API", 12)]["correct"] == 12
    assert rows[("fixed", 12)]["http_429"] > rows[("fixed", 4)]["http_429"] == 0
    assert results["ratios"]["batch_cost_over_ordinary"] == 0.5
    assert "| 12 | adaptive | 12 |" in (tmp_path / "fanout_adaptive.md").read_text()
