"""Files from elsewhere never run code: a pickled context in someone else's run folder is loaded on
export or resume only with the explicit opt-in (trust=True, --trust), and contexts are stored in
formats that need no pickle where one exists (Parquet for pandas, .npy for numpy, literals)."""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from test_export_support import DEMO_TEXT

from rlm_kernel import rlm
from rlm_kernel.engine.api import aresume
from rlm_kernel.engine.contextfile import UntrustedPickle, read_context
from rlm_kernel.engine.snapshot import context_snapshot_path, load_context, save_context
from rlm_kernel.export import export_run
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox


class Boom:
    """A pickle that writes `marker` when loaded, and then is the string 'the input'."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return eval, (f"(open({self.marker!r}, 'w').write('ran'), 'the input')[1]",)


def context_cell_of(path: Path) -> Any:
    cells = nbformat.read(path, as_version=4).cells
    return next(c for c in cells if c.metadata.get("rlm", {}).get("role") == "context")


def planted_run(runs_dir: Path, marker: Path) -> Path:
    """A resumable run (stopped at its budget) whose context snapshot someone replaced with a pickle
    that runs code: as a run folder received from elsewhere might be."""
    result = rlm("When are apples picked?", context=DEMO_TEXT, model="demo", runs_dir=str(runs_dir),
                 max_iterations=1)
    assert result.status == "budget" and result.log_path is not None
    snapshot = context_snapshot_path(result.log_path)
    assert snapshot is not None and snapshot.suffix == ".txt"
    snapshot.unlink()
    snapshot.with_suffix(".pkl").write_bytes(pickle.dumps(Boom(marker)))
    return result.log_path


def test_export_and_resume_never_unpickle_without_trust(tmp_path):
    marker = tmp_path / "code-ran"
    log = planted_run(tmp_path / "runs", marker)

    path = export_run(log, tmp_path / "plain.ipynb")
    assert not marker.exists()
    cell = context_cell_of(path)
    assert "read_sidecar('plain.context.pkl', trust=False)" in cell.source  # copied, and its reader must opt in
    with pytest.raises(UntrustedPickle, match=r"not loaded.*trust=True.*--trust"):
        load_context(log)
    with pytest.raises(UntrustedPickle):
        asyncio.run(aresume(log, model="demo"))
    assert not marker.exists()

    export_run(log, tmp_path / "trusted.ipynb", trust=True)
    assert marker.read_text() == "ran"
    marker.unlink()
    resumed = asyncio.run(aresume(log, model="demo", max_iterations=3, trust=True))
    assert marker.exists() and resumed.status in ("done", "budget")


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KernelSession, Path]]:
    with jupyter_sandbox(tmp_path_factory.mktemp("trust")) as work, KernelSession(work) as session:
        yield session, work


def test_the_kernel_magics_ask_for_trust_in_one_line(kernel):
    session, work = kernel
    marker = work / "code-ran"
    log = planted_run(work / "rlm_runs", marker)
    run_id = log.stem

    refused = session.run(f"%rlm resume {run_id}")
    assert refused.status == "error" and "Traceback" not in refused.text
    (error,) = refused.of_type("error")
    assert len(error["traceback"]) == 1 and "--trust" in error["traceback"][0], error["traceback"]
    assert session.run(f"%rlm export plain.ipynb {run_id}").status == "ok"
    assert not marker.exists()

    assert session.run(f"%rlm export trusted.ipynb {run_id} --trust").status == "ok"
    assert marker.exists()
    marker.unlink()
    resumed = session.run(f"%rlm resume {run_id} --trust --model demo --max-iterations 3", timeout=120)
    assert resumed.status == "ok", resumed.text
    assert marker.exists()


# --- safe formats ----------------------------------------------------------------------------------

def frames() -> dict[str, Any]:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    return {
        "frame": pd.DataFrame({"n": [1, 2, 3], "x": [0.5, float("nan"), 2.0], "s": ["a", None, "c"],
                               "when": pd.to_datetime(["2024-01-01", "2024-06-30", "2025-12-31"]),
                               "kind": pd.Categorical(["u", "v", "u"]), "ok": [True, False, True]},
                              index=pd.Index([10, 20, 30], name="id")),
        "series": pd.Series([1.5, 2.5], name="score"),
    }


def arrays() -> dict[str, Any]:
    np = pytest.importorskip("numpy")
    return {"floats": np.arange(12, dtype=np.float32).reshape(3, 4), "ints": np.array([[1, -2], [3, 4]]),
            "complex": np.array([1 + 2j, 3j]), "bools": np.array([True, False])}


def same(a: Any, b: Any) -> bool:
    if type(a).__module__.startswith("pandas"):
        return type(a) is type(b) and a.equals(b) and getattr(a, "name", None) == getattr(b, "name", None)
    if type(a).__module__ == "numpy":
        return a.dtype == b.dtype and a.shape == b.shape and (a == b).all()
    return type(a) is type(b) and a == b


@pytest.mark.parametrize(("make", "suffix"), [(frames, ".parquet"), (arrays, ".npy")])
def test_dataframes_and_arrays_round_trip_without_pickle(tmp_path, make, suffix):
    values = make()
    for name, value in values.items():
        save_context(value, tmp_path / f"{name}.jsonl").join()
        path = context_snapshot_path(tmp_path / f"{name}.jsonl")
        assert path is not None and path.suffix == suffix, name
        assert same(read_context(path), value), name
    # Another process (which wrote none of these files) reads them all without any opt-in.
    code = ("import pickle, sys\nfrom pathlib import Path\nfrom rlm_kernel.engine.contextfile import read_context\n"
            "out = {p.name.split('.')[0]: read_context(p) for p in Path(sys.argv[1]).glob('*.context.*')}\n"
            "sys.stdout.buffer.write(pickle.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, check=True, timeout=120)
    back = pickle.loads(done.stdout)
    assert set(back) == set(values) and all(same(back[k], v) for k, v in values.items())


def test_what_parquet_or_npy_would_change_falls_back_to_pickle(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    np = pytest.importorskip("numpy")
    for name, value in {"mixed": pd.DataFrame({"a": [1, "x"]}), "tuples": pd.DataFrame({"a": [(1, 2), (3, 4)]}),
                        "objects": np.array([1, "a"], dtype=object)}.items():
        save_context(value, tmp_path / f"{name}.jsonl").join()
        path = context_snapshot_path(tmp_path / f"{name}.jsonl")
        assert path is not None and path.suffix == ".pkl", name
        assert same(read_context(path), value), name  # this process wrote it: no opt-in needed


@pytest.mark.parametrize("value", [[(1, "one"), (2, "two")] * 500, {1: {"a", "b"}, 2: set()},
                                   "lone \udc80 surrogate", (1, 2.5, None, b"raw", 3j)])
def test_python_values_json_cannot_keep_are_literals(tmp_path, value):
    save_context(value, tmp_path / "run.jsonl").join()
    path = context_snapshot_path(tmp_path / "run.jsonl")
    assert path is not None and path.suffix == ".literal"
    assert same(read_context(path), value)


def test_an_exported_dataframe_loads_from_its_parquet_sidecar(tmp_path, monkeypatch):
    frame = frames()["frame"]
    big = frame.loc[frame.index.repeat(3_000)].reset_index()
    result = rlm("How many rows?", context=big, model="demo", runs_dir=str(tmp_path / "runs"))
    path = export_run(result.log_path, tmp_path / "nb" / "frame.ipynb")
    cell = context_cell_of(path)
    assert cell.metadata.rlm.sidecar == "frame.context.parquet" and "pickle" not in cell.source
    monkeypatch.chdir(path.parent)
    ns: dict[str, Any] = {}
    exec(cell.source, ns)
    assert same(ns["context"], big)
