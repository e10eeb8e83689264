"""The kernelspec: `python -m rlm_kernel install` writes it with this interpreter's absolute path,
and the static copy shipped in the wheel (kernelspec/) is what the same code generates."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from rlm_kernel.kernel.install import DISPLAY_NAME, kernel_json, logo_png

ROOT = Path(__file__).parents[1]


def run_install(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rlm_kernel", "install", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60, check=True)


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_install_prefix_uses_this_interpreter(tmp_path: Path) -> None:
    out = run_install("--prefix", str(tmp_path))
    spec_dir = tmp_path / "share" / "jupyter" / "kernels" / "rlm"
    assert str(spec_dir) in out.stdout
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["argv"] == [sys.executable, "-m", "rlm_kernel", "-f", "{connection_file}"]
    assert Path(spec["argv"][0]).is_absolute()
    assert spec["display_name"] == "RLM (Python 3)" and spec["language"] == "python"
    assert png_size((spec_dir / "logo-32x32.png").read_bytes()) == (32, 32)
    assert png_size((spec_dir / "logo-64x64.png").read_bytes()) == (64, 64)
    found = KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]).get_kernel_spec("rlm")
    assert found.display_name == DISPLAY_NAME


def test_install_user_and_custom_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_install("--user", "--name", "rlm-test", "--display-name", "RLM (test env)",
                env={"JUPYTER_DATA_DIR": str(data_dir)})
    spec = json.loads((data_dir / "kernels" / "rlm-test" / "kernel.json").read_text())
    assert spec["display_name"] == "RLM (test env)"
    assert spec["argv"][0] == sys.executable


def test_install_rejects_two_destinations(tmp_path: Path) -> None:
    with pytest.raises(subprocess.CalledProcessError) as err:
        run_install("--user", "--prefix", str(tmp_path))
    assert "not allowed with" in err.value.stderr


def test_shipped_kernelspec_is_the_generated_one() -> None:
    shipped = ROOT / "kernelspec"
    assert json.loads((shipped / "kernel.json").read_text()) == kernel_json("python")
    for size in (32, 64):
        assert (shipped / f"logo-{size}x{size}.png").read_bytes() == logo_png(size), \
            "regenerate with: python -m rlm_kernel.kernel.install"


def test_wheel_ships_the_kernelspec_and_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]["kernelspec"] == \
        "share/jupyter/kernels/rlm"
    assert project["project"]["scripts"]["rlm-kernel"] == "rlm_kernel.__main__:main"
