"""The front-end unit tests draw saved run states kept in widgets/test/fixtures. This checks that
they still look like what the kernel saves today, so the renderer is never tested against a shape
the kernel no longer sends. When it fails: `python tests/widget_fixtures.py` and look at the diff."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import widget_fixtures as wf

from rlm_kernel.widget.view import saved_items


def shape(bundle: dict[str, Any]) -> dict[str, Any]:
    """What the renderer relies on: the bundle's mime types, the payload's and header's keys, each
    item type's keys and how many there are, and the output types and mime types inside cells."""
    state = bundle[wf.RUN_MIME]
    keys: dict[str, set[str]] = {}
    outputs: set[str] = set()
    items = json.loads(state["items_json"])  # as saved, implied fields left out
    for item in items:
        keys.setdefault(item["type"], set()).update(item)
        for out in item.get("outputs") or []:
            outputs.add(out["output_type"])
            outputs.update(f"{out['output_type']}:{m}:{type(v).__name__}" for m, v in (out.get("data") or {}).items())
    return {"bundle": sorted(bundle), "payload": sorted(state), "header": sorted(state["header"]),
            "items": {t: sorted(k) for t, k in sorted(keys.items())},
            "counts": dict(Counter(i["type"] for i in items)), "outputs": sorted(outputs)}


def test_the_analysis_fixture_is_what_the_kernel_saves_now():
    saved = json.loads((wf.FIXTURES / "analysis.json").read_text())
    now = wf.make("analysis")
    assert shape(now) == shape(saved)
    answer = [i["answer"] for b in (now, saved) for i in saved_items(b[wf.RUN_MIME])
              if i["type"] == "run_finished" and i["run_id"] == "root"]
    assert answer[0] == answer[1]
