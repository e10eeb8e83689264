"""Every notebook in example_notebooks/ runs top to bottom, headless (nbclient), on the RLM
kernel with the offline demo model: no key, no network."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rlm_kernel.kernel.testing import jupyter_sandbox

EXAMPLES = Path(__file__).parents[1] / "example_notebooks"
#: The examples as committed; `make quickstart` leaves *.executed.ipynb copies next to them.
NOTEBOOKS = sorted(p.name for p in EXAMPLES.glob("*.ipynb") if not p.name.endswith(".executed.ipynb"))


def test_there_is_a_quickstart() -> None:
    assert "01_quickstart.ipynb" in NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_headless(name: str, tmp_path: Path) -> None:
    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns("rlm_runs", ".ipynb_checkpoints", "*.executed.ipynb"))
    nb = nbformat.read(work / name, as_version=4)
    assert nb.metadata.kernelspec.name == "rlm"
    with jupyter_sandbox(tmp_path / "jupyter"):
        NotebookClient(nb, timeout=180, kernel_name="rlm", resources={"metadata": {"path": str(work)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, errors
    if name == "01_quickstart.ipynb":
        check_quickstart(nb, work)


def check_quickstart(nb: nbformat.NotebookNode, work: Path) -> None:
    text = "\n".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "demo model (offline)" in text  # no key: the demo model ran, and says so
    assert "starboard main engine failed" in text and "oil cooler" in text  # both failures found
    exported = list((work / "rlm_runs").glob("*.ipynb"))
    assert len(exported) == 1
    nbformat.validate(nbformat.read(exported[0], as_version=4))


def test_quickstart_command_prints_the_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`make quickstart` ends by printing the answer itself, not the tree's one-line pointer to it."""
    from rlm_kernel.quickstart import main

    work = tmp_path / "examples"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns("rlm_runs", ".ipynb_checkpoints", "*.executed.ipynb"))
    with jupyter_sandbox(tmp_path / "jupyter"):
        assert main([str(work / "01_quickstart.ipynb"), "--timeout", "180"]) == 0
    answer = capsys.readouterr().out.split("\nAnswer:\n", 1)[1]
    assert "starboard main engine failed" in answer and "the answer is in the tree" not in answer
