"""The kernel where Jupyter scales: launched by a jupyter_client provisioner from a kernelspec whose argv
wraps ours (as JupyterHub spawners and gateways do), in a working directory it cannot write, with a
read-only home. Runs still record, somewhere it says; RLM_RUNS_DIR points them at a shared volume."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_kernel.engine.record import list_runs
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox


def _can_make_read_only_mounts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(not _can_make_read_only_mounts(),
                                reason="needs `unshare -m` (root or user namespaces) for read-only mounts")

RO_SPEC = "rlm-readonly"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    root = tmp_path_factory.mktemp("deploy")
    with jupyter_sandbox(root) as work:
        image = root / "image-workdir"
        image.mkdir()
        # The spec a spawner would write: the same kernel, started inside a mount namespace where the
        # home and the working directory are read-only.
        wrapped = (f"mkdir -p \"$HOME\" && mount --bind -o ro \"$HOME\" \"$HOME\" && "
                   f"mount --bind -o ro {image} {image} && "
                   f"exec {sys.executable} -m rlm_kernel -f \"$0\"")
        spec_dir = root / "prefix" / "share" / "jupyter" / "kernels" / RO_SPEC
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": ["unshare", "-m", "sh", "-c", wrapped, "{connection_file}"],
            "display_name": "RLM (read-only image)", "language": "python", "interrupt_mode": "signal"}))
        yield work, image


QUESTION = "%%rlm --model demo --context notes\nWhich ship reached port first?"
SETUP = "import os\nnotes = 'The Meridian reached port first. The Aurora came second.' * 50"


def test_read_only_workdir_and_home_still_record_and_say_where(sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    _, image = sandbox
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    with KernelSession(image, env={"TMPDIR": str(tmp)}, kernel_name=RO_SPEC) as k:
        where = k.run("import os\nprint(os.getcwd())\ntry:\n    open(os.path.expanduser('~/x'), 'w')\n"
                      "except OSError as e:\n    print('home:', e.strerror)")
        assert str(image) in where.text and "Read-only file system" in where.text
        k.run(SETUP)
        cell = k.run(QUESTION, timeout=120)
    assert cell.status == "ok", cell.text
    assert "Meridian" in cell.text
    assert "is not writable, so runs are recorded in" in cell.text and "RLM_RUNS_DIR" in cell.text
    runs = list_runs(tmp / f"rlm_runs-{_user()}")
    assert len(runs) == 1 and runs[0].status == "done"
    assert not (image / "rlm_runs").exists()


def test_runs_dir_on_a_shared_volume(sandbox: tuple[Path, Path], tmp_path: Path) -> None:
    _, image = sandbox
    volume = tmp_path / "volume"
    with KernelSession(image, env={"RLM_RUNS_DIR": str(volume)}, kernel_name=RO_SPEC) as k:
        k.run(SETUP)
        cell = k.run(QUESTION, timeout=120)
        resumed = k.run("%rlm runs")
    assert cell.status == "ok" and "not writable" not in cell.text
    assert len(list_runs(volume)) == 1
    assert "done" in resumed.text


def _user() -> str:
    import getpass

    return getpass.getuser()
