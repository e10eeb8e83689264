"""What a person sees when something is wrong, in a real kernel: a bad option from any layer is one
line; a failed run fails its cell (so Run All, nbclient and papermill stop there) while a budget stop
does not; a missing optional package is one line; `rlm-kernel --help` is this project's help."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from rlm_kernel.kernel.testing import Cell, KernelSession, jupyter_sandbox

RANGE = "must be a whole number of at least 1"


def one_line(cell: Cell) -> str:
    """The cell failed with a single line of text and no traceback; return it."""
    assert cell.status == "error", cell.text
    lines = [line for line in cell.text.splitlines() if line.strip() and not line.startswith("RLM run:")]
    assert len(lines) == 1 and "Traceback" not in cell.text, cell.text
    for error in cell.of_type("error"):
        assert len(error["traceback"]) == 1, error["traceback"]
    return lines[0]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("errors")
    with jupyter_sandbox(root) as work:
        yield root, work


@pytest.fixture(scope="module")
def kernel(sandbox: tuple[Path, Path]) -> Iterator[KernelSession]:
    with KernelSession(sandbox[1]) as session:
        session.run("context = 'some words to read ' * 20")
        yield session


def dead_url() -> str:
    """A loopback URL where nothing listens: connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- options out of range ------------------------------------------------------------------------

def test_a_bad_budget_on_the_cell_or_in_config_is_one_line(kernel: KernelSession) -> None:
    line = one_line(kernel.run("%%rlm --model demo --max-iterations -3\nWhat?"))
    assert "--max-iterations" in line and f"max_iterations {RANGE}, got -3" in line
    assert "max_subcalls must be a whole number of at least 1" in one_line(
        kernel.run("%%rlm --model demo --max-subcalls 0\nWhat?"))
    assert "max_cost must be a number above 0" in one_line(kernel.run("%%rlm --model demo --max-cost -1\nWhat?"))
    assert f"max_iterations {RANGE}, got -3" in one_line(kernel.run("%rlm config max_iterations=-3"))
    assert "timeout must be a number above 0" in one_line(kernel.run("%rlm resume --timeout 0"))
    help_text = " ".join(kernel.run("%%rlm --help\nignored").text.split())
    assert "answer. Allowed: a whole number of at least 1." in help_text  # --max-iterations says its range
    rows = [line.split() for line in kernel.run("%rlm config").text.splitlines()]
    assert ["max_iterations", "30", "default"] in rows  # the bad value was not kept


def test_a_bad_budget_in_a_config_file_or_the_environment_is_one_line(sandbox: tuple[Path, Path]) -> None:
    root, work = sandbox
    config = root / "config" / "rlm_kernel_config.py"  # JUPYTER_CONFIG_DIR in the sandbox
    config.parent.mkdir(exist_ok=True)
    config.write_text("c.RLMKernel.max_iterations = -3\n")
    try:
        with KernelSession(work) as session:
            session.run("context = 'text'")
            line = one_line(session.run("%%rlm --model demo\nWhat?"))
            assert f"c.RLMKernel.max_iterations = -3 in the config file: max_iterations {RANGE}" in line
    finally:
        config.unlink()
    with KernelSession(work, env={"RLM_MAX_SUBCALLS": "-5"}) as session:
        session.run("context = 'text'")
        line = one_line(session.run("%%rlm --model demo\nWhat?"))
        assert "environment variable RLM_MAX_SUBCALLS=-5: max_subcalls must be a whole number of at least 1" in line


def test_the_openai_provider_without_its_package_is_one_line(kernel: KernelSession) -> None:
    kernel.run("import sys\n_openai = sys.modules.get('openai')\nsys.modules['openai'] = None  # import fails")
    try:
        line = one_line(kernel.run(f"%%rlm --provider openai --base-url {dead_url()}/v1 --model m\nWhat?"))
    finally:
        kernel.run("sys.modules.pop('openai')\nif _openai: sys.modules['openai'] = _openai")
    assert 'pip install "rlm-kernel[openai]"' in line


# --- failed runs fail the cell; budget stops do not -------------------------------------------------

def run_notebook(work: Path, rlm_line: str, *, env: dict[str, str] | None = None) -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "rlm", "display_name": "RLM"}}, cells=[
        v4.new_code_cell("context = 'The orchard grows apples. ' * 30"),
        v4.new_code_cell(f"{rlm_line}\nWhat does the orchard grow?"),
        v4.new_code_cell("print('after the run')"),
    ])
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        NotebookClient(nb, timeout=60, kernel_name="rlm", resources={"metadata": {"path": str(work)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return nb


def test_a_failed_run_stops_nbclient_at_its_cell(sandbox: tuple[Path, Path]) -> None:
    url = dead_url()
    with pytest.raises(CellExecutionError) as info:
        run_notebook(sandbox[1], f"%%rlm --provider anthropic --base-url {url} --max-retries 0",
                     env={"ANTHROPIC_API_KEY": "sk-ant-test-unused"})
    assert info.value.ename == "RunFailed"
    assert "failed: Could not connect" in info.value.evalue or "Could not connect" in str(info.value)
    assert "print('after the run')" not in str(info.value)


def test_a_budget_stop_is_a_result_and_the_notebook_goes_on(sandbox: tuple[Path, Path]) -> None:
    nb = run_notebook(sandbox[1], "%%rlm --model demo --max-iterations 1")
    result = [o for o in nb.cells[1].outputs if o.output_type == "execute_result"]
    assert "status='budget'" in result[0].data["text/plain"]
    assert "budget" in result[0].data["text/markdown"]
    assert nb.cells[2].outputs[0].text == "after the run\n"


# --- help --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", [[sys.executable, "-m", "rlm_kernel", "--help"],
                                     [str(Path(sys.executable).with_name("rlm-kernel")), "--help"]])
def test_help_is_this_projects(command: list[str]) -> None:
    if not Path(command[0]).exists():
        pytest.skip(f"{command[0]} is not installed")
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}).stdout
    for needle in ("rlm-kernel install", "RLM (Python 3)", "-f CONNECTION_FILE", "rlm_runs", "%%rlm --help",
                   "ANTHROPIC_API_KEY"):
        assert needle in out, needle
    assert "IPKernelApp" not in out and "--help-all" not in out
