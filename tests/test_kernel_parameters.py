"""A parameterised notebook carries its question to the RLM: `%rlm ask {question}` expands the
parameter (a `%%rlm` body is never expanded), headless under nbclient and papermill."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rlm_kernel.engine.record import list_runs
from rlm_kernel.kernel.testing import jupyter_sandbox

CORPUS = ("The Meridian reached port first on 3 May. The Aurora reached port second, a day later. "
          "The Halcyon never left the harbour because of a cracked hull. ") * 20


def parameterised_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}
    params = nbformat.v4.new_code_cell('question = "Which ship never left the harbour?"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(f"context = {CORPUS!r}"),
                nbformat.v4.new_code_cell("result = %rlm ask --model demo --max-iterations 5 {question}"),
                nbformat.v4.new_code_cell("print('ANSWER:', result.answer)")]
    return nb


def _questions(runs_dir: Path) -> list[str]:
    return [(log.started() or {}).get("question", "") for log in list_runs(runs_dir)]


def test_nbclient_runs_the_notebook_s_own_question(tmp_path: Path) -> None:
    nb = parameterised_notebook()
    with jupyter_sandbox(tmp_path / "j") as work:
        NotebookClient(nb, timeout=180, kernel_name="rlm", resources={"metadata": {"path": str(work)}}).execute()
        questions = _questions(work / "rlm_runs")
    assert questions == ["Which ship never left the harbour?"]
    printed = "".join(o.get("text", "") for o in nb.cells[3].outputs)
    assert "Halcyon" in printed


def test_papermill_parameter_reaches_the_question(tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    src = tmp_path / "in.ipynb"
    nbformat.write(parameterised_notebook(), src)
    with jupyter_sandbox(tmp_path / "j") as work:
        out = work / "out.ipynb"
        papermill.execute_notebook(str(src), str(out), parameters={"question": "Which ship reached port second?"},
                                   kernel_name="rlm", cwd=str(work), progress_bar=False)
        questions = _questions(work / "rlm_runs")
    assert questions == ["Which ship reached port second?"]  # not the literal "{question}", not the default
    printed = "".join(o.get("text", "") for o in nbformat.read(out, as_version=4).cells[-1].outputs)
    assert "Aurora" in printed


@pytest.mark.parametrize("line, options, question", [
    ("--model demo --max-iterations 3 What's the capital of France?", "--model demo --max-iterations 3",
     "What's the capital of France?"),
    ("--approve -- --model is part of this question", "--approve", "--model is part of this question"),
    ("How many --max-iterations are allowed?", "", "How many --max-iterations are allowed?"),
    ("--model=demo Which one?", "--model=demo", "Which one?"),
])
def test_ask_line_splits_flags_from_the_question(line: str, options: str, question: str) -> None:
    from rlm_kernel.kernel.magics import split_ask_line

    assert split_ask_line(line) == (options, question)
