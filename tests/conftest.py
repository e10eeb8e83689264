"""Shared test fixtures. Keep this small: module-specific fixtures live in their test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from rlm_kernel.testing import FakeAnthropic, FakeOpenAI


@pytest.fixture(autouse=True)
def _no_real_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test may reach a real model API or read a developer's keys or SDK profiles."""
    for name in list(os.environ):
        if name.startswith(("ANTHROPIC_", "OPENAI_")):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))


@pytest.fixture
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """The RLM kernelspec installed into a temporary prefix, found only through this manager."""
    prefix = tmp_path_factory.mktemp("prefix")
    subprocess.run([sys.executable, "-m", "rlm_kernel", "install", "--prefix", str(prefix)], check=True,
                   capture_output=True)
    return KernelSpecManager(kernel_dirs=[str(prefix / "share" / "jupyter" / "kernels")])
