"""The exported notebook leads with the run's timeline: an SVG picture in a Markdown cell, drawn from
the run log, with a bar for every model turn, cell and sub-call at the time it ran (overlapping
sub-calls side by side in lanes) and child runs nested below their step. A real run through the
SDK against the fake server; the picture is read back from the notebook as XML."""

from __future__ import annotations

import base64
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_export_support import ROOT, fake_run

from rlm_kernel.engine.record import RunLog
from rlm_kernel.engine.runtree import build_tree
from rlm_kernel.export import export_run
from rlm_kernel.export.timeline import timeline_svg
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

SVG = "{http://www.w3.org/2000/svg}"
QUESTION = "Time the fruit."
CHILD = "Check the pears."
BATCH = 4
STEPS = [
    "One after another, then all at once.\n```repl\nfirst = llm_query('first alone')\n"
    "second = llm_query('second alone')\n"
    f"many = llm_query_batched([f'together {{i}}' for i in range({BATCH})] + ['the bad one'])\n"
    f"checked = rlm_query({CHILD!r}, context)\nprint(first, second, len(many), checked)\n```",
    "This one fails.\n```repl\n1/0\n```",
    "FINAL(timed)",
]
CHILD_STEPS = ["```repl\nprint('child looks', len(context))\n```", "FINAL(pears fine)"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    tmp = tmp_path_factory.mktemp("timeline")
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.latency = lambda r: 0.0 if r.model == ROOT else 0.25
        srv.inject(400, times=1, message="no such fruit", match=lambda r: r.last_user_text() == "the bad one")
        result = fake_run(srv, tmp / "runs", {CHILD: CHILD_STEPS, QUESTION: STEPS}, QUESTION, "pears 4")
    assert result.status == "done", result.reason
    path = export_run(result.log_path, tmp / "out.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb, Path(result.log_path)


def picture(nb: Any) -> ET.Element:
    cells = [c for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "timeline"]
    assert len(cells) == 1
    found = re.search(r"!\[([^\]]+)\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", cells[0].source)
    assert found, cells[0].source[:300]
    return ET.fromstring(base64.b64decode(found.group(2)))


def rows(svg: ET.Element) -> list[tuple[str, list[tuple[str, float, float]]]]:
    """Each row's label and its bars as (kind, x0, x1)."""
    out = []
    for g in svg.iter(f"{SVG}g"):
        label = "".join(t.text or "" for t in g.iter(f"{SVG}text") if t.get("x") == "4").strip()
        bars = [(r.get("class") or "", float(r.get("x") or 0), float(r.get("x") or 0) + float(r.get("width") or 0))
                for r in g.iter(f"{SVG}rect")]
        out.append((label, bars))
    return out


def test_the_timeline_sits_under_the_title_with_a_bar_for_every_turn_cell_and_sub_call(exported) -> None:
    nb, log_path = exported
    assert nb.cells[1].metadata["rlm"]["role"] == "timeline"  # right below the title
    assert nb.cells[1].source.startswith("## Timeline")
    svg = picture(nb)
    kinds = [kind for _, bars in rows(svg) for kind, _, _ in bars]
    node = build_tree(RunLog.read(log_path))
    runs = node.walk()
    turns = sum(1 for r in runs for s in r.steps if s.t0 is not None)
    cells = [c for r in runs for s in r.steps for c in s.cells]
    subs = [sc for r in runs for s in r.steps for sc in s.subcalls]
    assert (turns, len(cells), len(subs)) == (3 + 2, 2 + 1, 2 + BATCH + 1 + 1)  # root + child
    assert kinds.count("turn") == turns
    assert kinds.count("cell") == len(cells) - 1  # all but the 1/0 cell
    assert kinds.count("sub") == len(subs) - 1  # all but the bad one
    assert kinds.count("fail") == 2  # the bad sub-call and the 1/0 cell
    labels = [label for label, _ in rows(svg)]
    assert labels[:2] == ["step 1", f"{len(subs)} sub-calls"]
    # the child run nests under step 1, before step 2
    assert labels.index("child step 1") < labels.index("child step 2") < labels.index("step 2")


def test_x_positions_show_which_sub_calls_ran_at_the_same_time(exported) -> None:
    nb, _ = exported
    table = rows(picture(nb))
    step1 = next(i for i, (label, _) in enumerate(table) if label == "step 1")
    lanes = []
    for label, bars in table[step1 + 1:]:
        if label and "sub-call" not in label:
            break
        lanes.append([b for b in bars if b[0] in ("sub", "fail")])
    # the two llm_query calls ran one after the other: the first lane holds them apart, in order
    first, second = lanes[0][0], lanes[0][1]
    assert first[2] <= second[1] + 0.5, (first, second)
    # the batch of five (and the child run's rlm_query after it) ran together: five lanes overlap
    assert len(lanes) == BATCH + 1, lanes
    edges = sorted([(x0, 1) for lane in lanes for _, x0, _ in lane]
                   + [(x1, -1) for lane in lanes for _, _, x1 in lane], key=lambda e: (e[0], e[1]))
    depth = peak = 0
    for _, d in edges:
        depth += d
        peak = max(peak, depth)
    assert peak == BATCH + 1
    # and the picture's scale is the run's: the step-1 cell bar spans all of its sub-calls
    cell = next(b for b in table[step1][1] if b[0] == "cell")
    assert all(cell[1] - 0.5 <= x0 and x1 <= cell[2] + 0.5 for lane in lanes for _, x0, x1 in lane)


def test_a_log_without_timings_gets_no_picture(tmp_path: Path) -> None:
    log = tmp_path / "run.jsonl"
    log.write_text('{"type": "run_started", "run_id": "r1", "question": "q"}\n')
    assert timeline_svg(build_tree(RunLog.read(log))) is None
