"""Exporting real runs (demo model, fake Anthropic server) as notebooks: structure, content, redaction,
size limits, the context cell, and runs that stopped, failed or crashed. Replaying the notebooks in
the RLM kernel is in test_export_replay.py."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_export_support import (
    CHILD_QUESTION,
    DEMO_TEXT,
    EDITED_CODE,
    FAKE_KEY,
    NOTE,
    PNG,
    ROOT,
    comparable,
    crashed_log,
    demo_run,
    fake_run,
    recorded_cells,
    rich_run,
    step_cells,
)

from rlm_kernel.engine import events as ev
from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.engine.redaction import MARK
from rlm_kernel.engine.steering import Steering
from rlm_kernel.export import export_run
from rlm_kernel.export.notebook import notebook_name
from rlm_kernel.kernel.runs import find_run
from rlm_kernel.testing.fake_anthropic import FakeAnthropic


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as server:
        yield server


def read(path: Path) -> Any:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    return nb


def md_text(nb: Any) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def role(nb: Any, name: str) -> list[Any]:
    return [c for c in nb.cells if c.metadata.get("rlm", {}).get("role") == name]


def run_cell_source(source: str, cwd: Path) -> dict[str, Any]:
    """Execute a (non-magic) notebook cell the way a kernel would, from the notebook's folder."""
    ns: dict[str, Any] = {}
    old = Path.cwd()
    os.chdir(cwd)
    try:
        exec(compile(source, "<cell>", "exec"), ns)
    finally:
        os.chdir(old)
    return ns


# --- a finished demo run ------------------------------------------------------------------------

@pytest.mark.parametrize("question, name", [
    ("How many tickets mention billing?", "how-many-tickets-mention-billing-"),
    ("¿Qué pasó? 2024 — résumé!", "qu-pas-2024-r-sum-"),
    ("!!!", "rlm-run-"),
    ("word " * 40, "word-" * 9)])
def test_an_export_into_a_folder_is_named_after_the_question_and_time(question, name):
    got = notebook_name(question, 1796138915.0)
    assert got.startswith(name) and got.endswith(".ipynb") and len(got) <= 48 + len("-2026-12-01-152835.ipynb")
    assert got.removeprefix(name).removesuffix(".ipynb") == time.strftime("%Y-%m-%d-%H%M%S",
                                                                           time.localtime(1796138915.0))


def test_demo_run_becomes_a_valid_notebook_that_reads_like_the_analysis(tmp_path):
    result = demo_run(tmp_path / "runs")
    path = export_run(result.log_path, tmp_path / "nb" / "apples")
    assert path == tmp_path / "nb" / "apples.ipynb"
    nb = read(path)
    assert nb.metadata.kernelspec == {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}

    title = nb.cells[0].source
    assert title.startswith("# When are apples picked?")
    for fact in ("`demo` (root)", "`demo-extractive`", "offline demo model", "| **Steps** | 3 |", "done",
                 "| **Sub-calls** | 2 |", "Tokens", "Cost"):
        assert fact in title

    assert nb.cells[1].metadata.rlm.role == "timeline"  # the run's picture, then the replay setup
    setup = nb.cells[2]
    assert setup.cell_type == "code" and setup.metadata.rlm.role == "replay-setup"
    magic = setup.source.splitlines()[-1]
    assert magic == "%rlm replay apples.rlm.jsonl"  # next to the notebook, so the two travel together
    assert (path.parent / "apples.rlm.jsonl").is_file()
    assert nb.metadata.rlm.source_log == f"../runs/{result.run_id}.jsonl"
    assert nb.metadata.rlm.files == ["apples.rlm.jsonl"] and "`apples.rlm.jsonl`" in title
    assert "--live" in setup.source  # the documented switch to live models

    assert run_cell_source(role(nb, "context")[0].source, path.parent)["context"] == DEMO_TEXT

    recorded = recorded_cells(result.log_path)
    cells = step_cells(nb)
    assert [c.source for c in cells] == [recorded[k]["code"] for k in sorted(recorded)]
    assert [c.execution_count for c in cells] == [recorded[k]["execution_count"] for k in sorted(recorded)]
    for cell, key in zip(cells, sorted(recorded), strict=True):
        assert comparable(cell.outputs) == comparable(recorded[key]["outputs"])

    reasoning = role(nb, "reasoning")
    assert [c.source.splitlines()[0] for c in reasoning] == ["## Step 1", "## Step 2", "## Step 3"]
    assert not any("```" in c.source for c in reasoning)  # prose only: the code is in the code cells
    assert role(nb, "answer")[0].source.endswith(result.answer)


def test_a_small_json_context_is_inline_and_a_large_one_goes_to_a_json_sidecar(tmp_path):
    small = {"notes": ["Apples are picked in September."], "year": 2026}
    nb = read(demo_run(tmp_path / "r1", small).export(tmp_path / "small.ipynb"))  # RLMResult.export
    assert run_cell_source(role(nb, "context")[0].source, tmp_path)["context"] == small
    assert not list(tmp_path.glob("small.context.*"))

    big = {"notes": [f"Note {i}: apples are picked in September." for i in range(2000)]}
    path = export_run(demo_run(tmp_path / "r2", big).log_path, tmp_path / "big.ipynb")
    nb = read(path)
    assert (tmp_path / "big.context.json").exists()
    assert run_cell_source(role(nb, "context")[0].source, tmp_path)["context"] == big
    assert "big.context.json" in role(nb, "context")[0].source


# --- a run with everything --------------------------------------------------------------------------

def test_errors_images_edits_notes_subcalls_and_children_are_all_shown(srv, tmp_path):
    result = rich_run(srv, tmp_path / "runs")
    nb = read(export_run(result.log_path, tmp_path / "rich.ipynb"))
    cells = step_cells(nb)
    by_key = {(c.metadata.rlm.step, c.metadata.rlm.index): c for c in cells}
    assert sorted(by_key) == [(1, 1), (2, 1), (2, 2), (3, 1), (4, 1)]  # child code is not a code cell

    error = by_key[(2, 1)]
    assert error.metadata.tags == ["raises-exception"]
    assert [(o.ename, o.evalue) for o in error.outputs if o.output_type == "error"] == [
        ("ZeroDivisionError", "division by zero")]

    image = by_key[(2, 2)]
    assert image.outputs[0].data["image/png"] == PNG

    edited = by_key[(3, 1)]
    assert edited.source == EDITED_CODE
    assert edited.metadata.rlm.edited is True
    assert edited.metadata.rlm.original_code == "print('model version')"
    edit_note = role(nb, "edit")[0]
    assert nb.cells.index(edit_note) == nb.cells.index(edited) - 1
    assert "print('model version')" in edit_note.source and "Edited by a person" in edit_note.source

    note = role(nb, "note")[0]
    assert NOTE in note.source and "after step 2" in note.source

    subcalls = by_key[(4, 1)].metadata.rlm.subcalls
    assert [(s.kind, s.prompt) for s in subcalls] == [
        ("rlm", CHILD_QUESTION), ("llm", "Describe apples"), ("llm", "Describe bananas")]
    llm = subcalls[1]
    assert llm.response == "Answer about: Describe apples"
    assert llm.model == "claude-haiku-5-5" and llm.usage["input_tokens"] > 0 and llm.latency >= 0
    summary = role(nb, "subcalls")[0]
    assert "2 × `llm_query_batched`" in summary.source and "Answer about: Describe bananas" in summary.source

    child = role(nb, "child")[0]
    assert child.source.startswith(f"### ↳ Child run (`rlm_query`): {CHILD_QUESTION[:-1]}")
    child_cells = [c for c in nb.cells if c.metadata.get("rlm", {}).get("run_id") == child.metadata.rlm.run_id]
    assert all(c.cell_type == "markdown" for c in child_cells)
    assert any(c.source.startswith("#### Step 1") for c in child_cells)
    assert any("n = context.count('cherry')" in c.source and "10 Answer about" in c.source for c in child_cells)
    assert "There are 10 cherries." in role(nb, "child-answer")[0].source

    title = nb.cells[0].source
    assert "| **Sub-calls** | 4 (including 1 child run) |" in title
    assert role(nb, "answer")[0].source.endswith(result.answer)


def test_keys_never_reach_the_notebook(srv, tmp_path, monkeypatch):
    env_key = "env-secret-" + "0123456789"
    script = ["```repl\nprint('sk-' + 'ant-api03-' + 'Q' * 32)\nprint('Authorization: Bearer ' + 'tok' * 6)\n"
              "print('sk-' + 'proj-' + 'Z' * 24)\nprint('env-secret-' + '0123456789')\n"
              "llm_query('Echo the key sk-' + 'proj-' + 'Z' * 24)\n"
              "raise ValueError('bad key ' + 'sk-' + 'ant-api03-' + 'Q' * 32)\n```", "FINAL(done)"]
    result = fake_run(srv, tmp_path / "runs", {"keys": script}, "Show the keys", "keys")
    raw = Path(result.log_path).read_text(encoding="utf-8")
    for secret in (FAKE_KEY, "tok" * 6, "sk-proj-" + "Z" * 24, "test-key"):
        assert secret not in raw  # redacted at the source
    assert env_key in raw  # not a credential when the run started: the export's own pass is the second line
    monkeypatch.setenv("ANTHROPIC_API_KEY", env_key)
    path = export_run(result.log_path, tmp_path / "keys.ipynb")
    recording = (tmp_path / "keys.rlm.jsonl").read_text(encoding="utf-8")
    assert "sk-proj-" + "Z" * 10 not in recording and MARK in recording  # the echoed answer is redacted too
    text = path.read_text(encoding="utf-8")
    for secret in (FAKE_KEY, "tok" * 6, "sk-proj-" + "Z" * 24, env_key, "test-key"):
        assert secret not in text
    out = step_cells(read(path))[0].outputs
    assert out[0].text == f"{MARK}\nAuthorization: Bearer {MARK}\n{MARK}\n{MARK}\n"
    assert out[1].evalue == f"bad key {MARK}"
    assert read(path).metadata.rlm.redactions >= 1


def test_long_outputs_are_cut_with_a_note(srv, tmp_path):
    script = ["```repl\nprint('x' * 50_000)\n```", "FINAL(long)"]
    result = fake_run(srv, tmp_path / "runs", {"Long": script}, "Long output?", "ctx")
    whole = step_cells(read(export_run(result.log_path, tmp_path / "whole.ipynb")))[0].outputs[0].text
    assert whole == "x" * 50_000 + "\n"
    nb = read(export_run(result.log_path, tmp_path / "cut.ipynb", max_output_chars=5_000))
    text = step_cells(nb)[0].outputs[0].text
    assert len(text) < 5_300 and "45,001 characters cut" in text and "max_output_chars=5,000" in text
    assert text.startswith("x" * 3000)
    assert nb.metadata.rlm.outputs_cut == 1


def test_many_large_subcalls_are_summarised_and_bounded_in_metadata(srv, tmp_path):
    script = ["```repl\nnotes = llm_query_batched([f'{i}: ' + 'w' * 3_000 for i in range(40)])\n"
              "print(len(notes))\n```", "FINAL(40)"]
    result = fake_run(srv, tmp_path / "runs", {"Many": script}, "Many sub-calls?", "ctx")
    nb = read(export_run(result.log_path, tmp_path / "many.ipynb", max_output_chars=10_000))
    entries = step_cells(nb)[0].metadata.rlm.subcalls
    assert len(entries) == 40 and {e.prompt_chars for e in entries} == {3_003, 3_004}
    kept = sum(len(e.prompt or "") + len(e.response or "") for e in entries)
    assert kept < 11_000 and sum(1 for e in entries if e.get("text_left_out")) >= 35
    summary = role(nb, "subcalls")[0].source
    assert "40 × `llm_query_batched`" in summary and "…and 35 more" in summary
    assert summary.count("\n1. ") + summary.count("\n5. ") == 2


# --- runs that did not finish ---------------------------------------------------------------------

def test_stopped_failed_and_budget_runs_export_with_their_status(srv, tmp_path):
    steering = Steering()

    def stop_after_step_one(event: dict[str, Any]) -> None:
        if event["type"] == ev.CELL_FINISHED and event["step"] == 1:
            steering.stop()

    script = ["```repl\nx = 41\nprint(x)\n```", "```repl\nx += 1\nprint(x)\n```", "FINAL_VAR(x)"]
    stopped = fake_run(srv, tmp_path / "runs", {"Stop": script}, "Stop early?", "ctx", steering=steering,
                       subscribers=[stop_after_step_one])
    srv.inject(400, match=lambda r: len(r["messages"]) > 1, message="the fake refuses step 2")
    failed = fake_run(srv, tmp_path / "runs", {"Fail": script}, "Fail?", "ctx")
    budget = fake_run(srv, tmp_path / "runs", {"Budget": script}, "Budget?", "ctx", max_iterations=1)
    expected = [(stopped, "stopped", "stopped by user"), (failed, "failed", "the fake refuses step 2"),
                (budget, "budget", "max_iterations (1) reached")]
    for result, status, reason in expected:
        assert result.status == status
        nb = read(export_run(result.log_path, tmp_path / f"{status}.ipynb"))
        assert reason in nb.cells[0].source and nb.metadata.rlm.status == status
        assert step_cells(nb)[0].source == "x = 41\nprint(x)"
        assert reason in role(nb, "answer")[0].source


def test_a_killed_process_log_exports_with_what_finished(srv, tmp_path):
    log_path = crashed_log(srv, tmp_path / "runs")
    with open(log_path, "a", encoding="utf-8") as fh:  # what a kill during a write leaves behind
        fh.write('{"v": 1, "seq": 999, "run_id": "x", "type": "cell_fin')
    nb = read(export_run(log_path, tmp_path / "crashed.ipynb"))
    assert nb.metadata.rlm.status == "crashed"
    assert "did not finish" in nb.cells[0].source and "cut off" in nb.cells[0].source
    cells = step_cells(nb)
    assert [c.source.splitlines()[0] for c in cells] == ["nums = [int(t) for t in context.split()[1:]]"]
    assert comparable(cells[0].outputs) == [{"name": "stdout", "text": "6\n3\n"}]
    running = [c for c in nb.cells if "still running when the log ends" in c.source]
    assert len(running) == 1 and "time.sleep(60)" in running[0].source and running[0].cell_type == "markdown"
    assert "No final answer" in role(nb, "answer")[0].source


def test_export_picks_a_run_and_names_unknown_ones(srv, tmp_path):
    result = rich_run(srv, tmp_path / "runs")
    child_id = next(e["run_id"] for e in RunLog.read(result.log_path).events
                    if e["type"] == ev.RUN_STARTED and e.get("parent_run_id"))
    path = export_run(result.log_path, tmp_path, run_id=child_id)
    nb = read(path)
    assert nb.cells[0].source.startswith(f"# {CHILD_QUESTION[:-1]}")
    assert [c.source.splitlines()[0] for c in step_cells(nb)] == ["n = context.count('cherry')"]
    assert path.parent == tmp_path and path.name.startswith(notebook_name(CHILD_QUESTION, None)[:-len("undated.ipynb")])
    with pytest.raises(ValueError, match="no run 'nope'"):
        export_run(result.log_path, tmp_path / "x.ipynb", run_id="nope")
    assert json.loads(path.read_text())["nbformat"] == 4


def test_a_recording_written_into_the_runs_folder_is_not_a_run(tmp_path):
    """The tree's Export button writes the notebook (and so its recording) next to the run log."""
    result = demo_run(tmp_path / "runs")
    export_run(result.log_path, result.log_path.with_suffix(".ipynb"))
    assert (tmp_path / "runs" / f"{result.run_id}.rlm.jsonl").is_file()
    assert [log.path for log in list_runs(tmp_path / "runs")] == [result.log_path]
    assert find_run(result.run_id[:8], tmp_path / "runs").path == result.log_path
