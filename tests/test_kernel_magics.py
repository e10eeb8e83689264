"""`%rlm runs | show | resume | export | replay`, help and usage errors, on the demo model; and
`%load_ext rlm_kernel.kernel` giving %%rlm to a plain Python kernel."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.kernel.runs import run_markdown
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox

QUESTION = "Which harbour did the ship leave from?"
TEXT = "The ship left the harbour of Lisbon at dawn. Later it anchored off Praia. " * 40


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelSession, Path, str]]:
    """A kernel with one finished demo run."""
    with jupyter_sandbox(tmp_path_factory.mktemp("magics")) as work, KernelSession(work) as kernel:
        kernel.run(f"%rlm config model=demo\ncontext = {TEXT!r}")
        cell = kernel.run(f"%%rlm\n{QUESTION}")
        assert cell.status == "ok", cell.text
        run_id = list_runs(work / "rlm_runs")[0].root_run_id
        assert run_id
        yield kernel, work, run_id


def usage_error(cell) -> str:
    assert cell.status == "error"
    assert "Traceback" not in cell.text
    return cell.text


def test_help(demo: tuple[KernelSession, Path, str]) -> None:
    kernel, _, _ = demo
    assert "%rlm resume [RUN]" in kernel.run("%rlm").text
    text = kernel.run("%%rlm --help\nignored").text
    assert "--context NAME" in text and "--max-subcalls" in text and "--approve" in text
    assert "unknown command 'frobnicate'" in usage_error(kernel.run("%rlm frobnicate"))
    assert "cell body is empty" in usage_error(kernel.run("%%rlm --model demo\n"))


def test_runs_and_show(demo: tuple[KernelSession, Path, str]) -> None:
    kernel, _, run_id = demo
    listing = kernel.run("%rlm runs").text
    assert run_id in listing and "done" in listing and QUESTION[:30] in listing
    shown = kernel.run(f"%rlm show {run_id[:-2]}")  # a unique prefix is enough
    html = [o["data"].get("text/html", "") for o in shown.of_type("display_data")]
    assert any(QUESTION in h for h in html)
    assert "no run 'nope'" in usage_error(kernel.run("%rlm show nope"))


def test_resume_refuses_a_finished_run(demo: tuple[KernelSession, Path, str]) -> None:
    kernel, _, run_id = demo
    assert "no stopped or crashed run to resume" in usage_error(kernel.run("%rlm resume"))
    assert f"run {run_id} is done" in usage_error(kernel.run(f"%rlm resume {run_id}"))


def test_export_and_replay(demo: tuple[KernelSession, Path, str]) -> None:
    kernel, work, run_id = demo
    cell = kernel.run("%rlm export exports/")
    assert cell.status == "ok", cell.text
    [exported] = (work / "exports").glob("*.ipynb")  # named after the question and the time, not the run id
    pattern = r"which-harbour-did-the-ship-leave-from-\d{4}-\d\d-\d\d-\d{6}\.ipynb"
    assert re.fullmatch(pattern, exported.name), exported.name
    assert str(exported.name) in cell.text
    assert f"to share it, copy {exported.stem}.rlm.jsonl along with it" in cell.text
    replay = kernel.run(f"%rlm replay rlm_runs/{run_id}.jsonl")
    assert replay.status == "ok", replay.text
    assert "Replaying run" in replay.text
    missing = kernel.run("%rlm replay rlm_runs/missing.jsonl")
    assert missing.status == "error" and len(missing.of_type("error")[0]["traceback"]) == 1


def test_load_ext_in_a_plain_python_kernel(tmp_path: Path) -> None:
    with jupyter_sandbox(tmp_path) as work, KernelSession(work, kernel_name="python3") as kernel:
        kernel.run(f"%load_ext rlm_kernel.kernel\n%rlm config model=demo\ncontext = {TEXT!r}")
        cell = kernel.run(f"%%rlm\n{QUESTION}")
        assert cell.status == "ok", cell.text
        assert "Lisbon" in kernel.run("print(_.answer)").text


def test_rlm_cells_run_as_coroutines_even_with_autoawait_off(demo: tuple[KernelSession, Path, str]) -> None:
    kernel, _, _ = demo
    kernel.run("%autoawait off")
    try:
        assert kernel.run("import asyncio\nawait asyncio.sleep(0)").status == "error"  # ordinary cells: off
        cell = kernel.run(f"%%rlm\n{QUESTION}")
        assert cell.status == "ok", cell.text
        assert "Lisbon" in kernel.run("print(_.answer)").text
    finally:
        kernel.run("%autoawait on")


def test_an_empty_rlm_cell_as_the_first_error_still_gets_a_reply(tmp_path: Path) -> None:
    """ipykernel resets its last traceback only for non-coroutine cells; a fresh kernel whose first
    error was a UsageError in a %%rlm cell used to send no reply at all (the cell hung)."""
    with jupyter_sandbox(tmp_path) as work, KernelSession(work) as kernel:
        cell = kernel.run("%%rlm --model demo\n", timeout=30)
        assert cell.status == "error"
        assert "cell body is empty" in cell.text
        assert kernel.run("1 + 1").status == "ok"


def test_show_without_a_widget_writes_markdown_that_code_cannot_break(tmp_path: Path) -> None:
    """`%rlm show` where no widget can be shown (plain IPython): a model's code holding a fence
    stays inside its own code block."""
    code = 'prompt = """```\\nquote\\n```"""'
    log = RunLog(path=tmp_path / "r.jsonl", events=[
        {"type": "run_started", "run_id": "r1", "question": "Q?", "model": "m", "sub_model": "s"},
        {"type": "turn_finished", "run_id": "r1", "step": 1, "text": "Plan.\n```repl\nx = 1\n```"},
        {"type": "cell_finished", "run_id": "r1", "step": 1, "index": 0, "code": code,
         "outputs": [{"output_type": "stream", "name": "stdout", "text": "done\n"}]},
        {"type": "run_finished", "run_id": "r1", "status": "done", "answer": "42"},
    ])
    text = run_markdown(log)
    assert "> Plan.\n> ```repl" in text
    assert f"````python\n{code}\n````" in text and "```text\ndone\n```" in text
    assert text.endswith("#### Answer · done\n\n42")
