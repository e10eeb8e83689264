"""Exported notebooks run top to bottom in the RLM kernel (nbclient) with no model server: the
outputs equal the recorded run's. Also the replay helpers on a plain namespace, and the --live switch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from test_export_support import (
    PNG,
    ROOT,
    comparable,
    crashed_log,
    demo_run,
    echo_sub,
    fake_run,
    recorded_cells,
    rich_run,
    scripted_root,
    step_cells,
)

from rlm_kernel.engine.api import aresume
from rlm_kernel.engine.replay import ReplayMiss
from rlm_kernel.export import export_run, install_replay
from rlm_kernel.testing.fake_anthropic import FakeAnthropic


@pytest.fixture
def srv() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(root_model=ROOT) as server:
        yield server


def execute(kernels: KernelSpecManager, path: Path, *, allow_errors: bool = False) -> Any:
    """Run the notebook in the RLM kernel from its own folder, as Jupyter would; return it executed."""
    nb = nbformat.read(path, as_version=4)
    km = KernelManager(kernel_name=nb.metadata.kernelspec.name, kernel_spec_manager=kernels)
    NotebookClient(nb, km=km, timeout=60, allow_errors=allow_errors,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def assert_replays_like_the_run(executed: Any, log_path: Path) -> None:
    recorded = recorded_cells(log_path)
    cells = step_cells(executed)
    assert cells, "no step cells ran"
    for cell in cells:
        key = (cell.metadata.rlm.step, cell.metadata.rlm.index)
        assert comparable(cell.outputs) == comparable(recorded[key]["outputs"]), key


# --- replay in the kernel ------------------------------------------------------------------------

def test_a_demo_run_replays_in_the_rlm_kernel(kernels, tmp_path):
    result = demo_run(tmp_path / "runs")
    executed = execute(kernels, export_run(result.log_path, tmp_path / "nb" / "demo.ipynb"))
    assert_replays_like_the_run(executed, result.log_path)


KERNEL_STEPS = [
    "A chart first.\n\n```repl\nimport base64\nclass Chart:\n    def __repr__(self):\n        return 'Chart()'\n"
    f"    def _repr_png_(self):\n        return base64.b64decode('{PNG}')\ndisplay(Chart())\nprint(len(context))\n```",
    "```repl\nsummary = llm_query('When? ' + context[:40])\nprint(summary)\n1 / 0\n```",
    "FINAL_VAR(summary)",
]


def test_a_kernel_session_run_exports_with_the_magic_and_replays_in_a_fresh_kernel(kernels, srv, tmp_path):
    srv.route(root=scripted_root({"picked": KERNEL_STEPS}), sub=echo_sub)
    v4 = nbformat.v4
    session = v4.new_notebook(metadata={"kernelspec": {"name": "rlm", "display_name": "RLM"}}, cells=[
        v4.new_code_cell("import os\nos.environ['ANTHROPIC_API_KEY'] = 'test-key'\n"
                         "context = 'The orchard grows apples.\\nApples are picked in September.\\n' * 30"),
        v4.new_code_cell(f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT} --max-retries 0 "
                         "--runs-dir runs\nWhen are apples picked?"),
        v4.new_code_cell("%rlm export exported.ipynb"),
    ])
    nbformat.write(session, tmp_path / "session.ipynb")
    execute(kernels, tmp_path / "session.ipynb")
    srv.stop()
    (log_path,) = (tmp_path / "runs").glob("*.jsonl")
    executed = execute(kernels, tmp_path / "exported.ipynb")
    assert_replays_like_the_run(executed, log_path)
    chart, failing = step_cells(executed)
    assert chart.outputs[0].output_type == "display_data" and chart.outputs[0].data["image/png"] == PNG
    assert [o.ename for o in failing.outputs if o.output_type == "error"] == ["ZeroDivisionError"]


def test_errors_images_edits_and_children_replay_with_the_model_server_down(kernels, tmp_path):
    with FakeAnthropic(root_model=ROOT) as server:
        result = rich_run(server, tmp_path / "runs")
        requests_during_run = len(server.requests)
    # The server is stopped: any model call from the notebook would now fail.
    executed = execute(kernels, export_run(result.log_path, tmp_path / "rich.ipynb"))
    assert_replays_like_the_run(executed, result.log_path)
    outputs = [o for c in step_cells(executed) for o in c.outputs]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert [o.ename for o in outputs if o.output_type == "error"] == ["ZeroDivisionError"]
    assert requests_during_run > 0


def test_an_unrecorded_prompt_fails_clearly(kernels, srv, tmp_path):
    result = rich_run(srv, tmp_path / "runs")
    path = export_run(result.log_path, tmp_path / "changed.ipynb")
    nb = nbformat.read(path, as_version=4)
    cell = step_cells(nb)[-1]
    cell.source = cell.source.replace("'Describe bananas'", "'Describe pears'")
    nbformat.write(nb, path)
    executed = execute(kernels, path, allow_errors=True)
    errors = [o for o in step_cells(executed)[-1].outputs if o.output_type == "error"]
    assert [e.ename for e in errors] == ["ReplayMiss"]
    assert "Describe pears" in errors[0].evalue and "--live" in errors[0].evalue


def test_the_live_switch_calls_the_model_instead(kernels, tmp_path):
    result = demo_run(tmp_path / "runs")
    path = export_run(result.log_path, tmp_path / "live.ipynb")
    nb = nbformat.read(path, as_version=4)
    next(c for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "replay-setup").source += " --live"
    fresh = "Question: When are apples picked?\\n\\nExcerpt:\\nApples are picked in May."
    nb.cells.append(nbformat.v4.new_code_cell(f"print(llm_query('{fresh}'))"))
    nbformat.write(nb, path)
    executed = execute(kernels, path)
    assert_replays_like_the_run(executed, result.log_path)  # the demo model is deterministic
    assert executed.cells[-1].outputs[0].text == "Apples are picked in May.\n"  # answered live: not recorded


def test_a_killed_run_and_its_resumption_replay(kernels, srv, tmp_path):
    log_path = crashed_log(srv, tmp_path / "runs")
    crashed = execute(kernels, export_run(log_path, tmp_path / "crashed.ipynb"))
    assert_replays_like_the_run(crashed, log_path)

    srv.route(root=["```repl\nprint('resumed', sum(nums))\n```", "FINAL(done)"], sub="3")
    resumed = asyncio.run(aresume(log_path, api_key="test-key"))
    assert resumed.status == "done"
    path = export_run(log_path, tmp_path / "resumed.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert any("resumed here from step 1" in c.source for c in nb.cells)
    assert [c.source for c in step_cells(nb)][-1] == "print('resumed', sum(nums))"
    executed = execute(kernels, path)
    assert_replays_like_the_run(executed, log_path)
    assert step_cells(executed)[-1].outputs[0].text == "resumed 6\n"


def test_a_50_mb_context_goes_to_a_sidecar_and_replays(kernels, srv, tmp_path):
    line = "row {:08d}: the quick brown fox jumps over the lazy dog\n"
    context = "".join(line.format(i) for i in range(50_000_000 // len(line.format(0)) + 1))
    assert len(context) >= 50_000_000
    script = ["```repl\nprint(len(context), context.count('fox'))\nprint(context[-30:])\n"
              "print(llm_query('Summarise: ' + context[:50]))\n```", "FINAL(done)"]
    result = fake_run(srv, tmp_path / "runs", {"fox": script}, "How many foxes?", context)
    path = export_run(result.log_path, tmp_path / "big.ipynb")
    sidecar = tmp_path / "big.context.txt"
    assert sidecar.stat().st_size == len(context.encode())
    assert path.stat().st_size < 50_000  # the notebook itself stays small
    del context
    executed = execute(kernels, path)
    assert_replays_like_the_run(executed, result.log_path)


# --- the helpers on a plain namespace ------------------------------------------------------------

def test_install_replay_binds_the_run_helpers_into_a_namespace(tmp_path):
    result = demo_run(tmp_path / "runs")
    ns: dict[str, Any] = {"context": "kept as it is"}
    session = install_replay(ns, result.log_path)
    assert "no model" in str(session) and session.recorded == 2
    assert ns["context"] == "kept as it is"
    with pytest.raises(ReplayMiss, match="never asked"):
        ns["llm_query"]("never asked")
    with pytest.raises(NameError, match="no variable named 'missing'"):
        ns["FINAL_VAR"]("missing")
    ns["FINAL"]("an answer")
    assert ns["answer"] == {"content": "an answer", "ready": True}

    live: dict[str, Any] = {}
    install_replay(live, result.log_path, live=True)
    fresh = "Question: When are apples picked?\n\nExcerpt:\nApples are picked in May."
    assert live["llm_query"](fresh) == "Apples are picked in May."


def test_install_replay_names_a_missing_log(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"gone.jsonl is not in .*: copy it next to this notebook"):
        install_replay({}, tmp_path / "gone.jsonl")


# --- an exported notebook travels ----------------------------------------------------------------

def frame_context() -> Any:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    return pd.DataFrame({"id": range(3_000), "fruit": ["apple", "pear", "plum"] * 1_000,
                         "weight": [0.5 * i for i in range(3_000)]})


TRAVEL_CONTEXTS = {
    "text": (lambda: "The orchard grows apples.\nApples are picked in September.\n" * 2_000, ".txt",
             "print(len(context), context.count('apples'))"),
    "frame": (frame_context, ".parquet", "print(context.shape, context['fruit'].value_counts().to_dict())"),
}


def travelled(kernels: KernelSpecManager, srv: FakeAnthropic, tmp_path: Path, kind: str,
              keep: set[str] | None = None) -> tuple[Path, Path, list[str]]:
    """Record a run, export it, then move the notebook (and the files it lists, or only `keep` of
    them) to a fresh folder, with the run folder moved away. Returns (notebook, log, travelling files)."""
    make, suffix, show = TRAVEL_CONTEXTS[kind]
    script = [f"```repl\n{show}\nanswers = llm_query_batched(['Weigh: ' + str(i) for i in range(3)])\n"
              "print(answers)\nprint(llm_query('Summarise: ' + str(len(context))))\n```", "FINAL(done)"]
    result = fake_run(srv, tmp_path / "runs", {"fruit": script}, "How much fruit?", make())
    srv.stop()
    path = export_run(result.log_path, tmp_path / "made" / "run.ipynb")
    files = list(nbformat.read(path, as_version=4).metadata.rlm.files)
    assert files == ["run.rlm.jsonl", f"run.context{suffix}"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    for name in ["run.ipynb", *(files if keep is None else keep)]:
        (path.parent / name).rename(fresh / name)
    archive = tmp_path / "archive"
    (tmp_path / "runs").rename(archive)  # nothing may point back at the run folder
    return fresh / "run.ipynb", archive / result.log_path.name, files


@pytest.mark.parametrize("kind", sorted(TRAVEL_CONTEXTS))
def test_a_moved_notebook_replays_from_the_files_it_names(kernels, srv, tmp_path, kind):
    notebook, log, _ = travelled(kernels, srv, tmp_path, kind)
    executed = execute(kernels, notebook)
    assert_replays_like_the_run(executed, log)
    assert "'Weigh: 0'" not in (notebook.parent / "run.rlm.jsonl").read_text()  # prompts do not travel


@pytest.mark.parametrize("missing", [0, 1])
def test_a_notebook_moved_without_a_file_names_it_in_one_line(kernels, srv, tmp_path, missing):
    notebook, _, files = travelled(kernels, srv, tmp_path, "text", keep=set())
    kept = [f for i, f in enumerate(files) if i != missing]
    for name in kept:
        (tmp_path / "made" / name).rename(notebook.parent / name)
    nb = nbformat.read(notebook, as_version=4)
    km = KernelManager(kernel_name="rlm", kernel_spec_manager=kernels)
    with pytest.raises(CellExecutionError):
        NotebookClient(nb, km=km, timeout=60, resources={"metadata": {"path": str(notebook.parent)}}).execute()
    failed = [c for c in nb.cells if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert len(failed) == 1
    (error,) = [o for o in failed[0].outputs if o.output_type == "error"]
    assert len(error.traceback) == 1, error.traceback
    assert f"{files[missing]} is not in {notebook.parent}: copy it next to this notebook" in error.traceback[0]
    assert failed[0].metadata.rlm.role == ("replay-setup" if missing == 0 else "context")
