"""The background warm-up: the first run reuses what it built, it never reaches the configured
host, and with nothing configured it only imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlm_kernel.engine.api import rlm
from rlm_kernel.engine.modelio import ModelIO
from rlm_kernel.engine.warmup import warmup
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing import FakeAnthropic

KEY = "sk-ant-test-warmup"


def test_warmup_builds_the_client_the_first_run_uses_without_calling_the_host(
        fake_anthropic: FakeAnthropic, tmp_path: Path) -> None:
    io = ModelIO()
    timings = warmup(io=io, provider="anthropic", base_url=fake_anthropic.base_url, api_key=KEY).result(timeout=60)
    assert "error" not in timings, timings
    assert {"import", "io_thread", "client", "first_request", "parser"} <= set(timings)
    assert fake_anthropic.requests == []  # the first-request path ran against a responder in this process
    [(ident, built)] = io.clients().items()
    assert built.sdk is not None  # the SDK client itself exists, not only our wrapper

    fake_anthropic.route(root=["FINAL(42)"])
    result = rlm("what?", context="x", io=io, provider="anthropic", base_url=fake_anthropic.base_url,
                 api_key=KEY, runs_dir=str(tmp_path))
    assert result.answer == "42"
    assert list(io.clients().items()) == [(ident, built)]  # reused, not rebuilt


def test_warmup_with_nothing_configured_only_imports() -> None:
    io = ModelIO()
    timings = warmup(io=io).result(timeout=60)
    assert "error" not in timings, timings
    assert set(timings) == {"import", "io_thread"}
    assert io.clients() == {}


def test_warmup_skips_the_probe_request_behind_a_proxy(monkeypatch: pytest.MonkeyPatch,
                                                        fake_anthropic: FakeAnthropic) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    io = ModelIO()
    timings = warmup(io=io, provider="anthropic", base_url=fake_anthropic.base_url, api_key=KEY).result(timeout=60)
    assert "client" in timings and "first_request" not in timings, timings


def test_warmup_never_raises_on_bad_options() -> None:
    assert set(warmup(io=ModelIO(), provider="no-such-provider").result(timeout=60)) == {"import", "io_thread"}
    timings = warmup(io=ModelIO(), max_iterations=0).result(timeout=60)  # an invalid value: recorded, not raised
    assert set(timings) == {"error"}, timings


PROBE = """
import json, sys, threading
from rlm_kernel.engine.modelio import default_io
timings = get_ipython().kernel.rlm_warmup.result(timeout=60)
print(json.dumps({"timings": timings, "sdk": "anthropic" in sys.modules,
                  "io_thread": any(t.name == "rlm-model-io" for t in threading.enumerate()),
                  "clients": [list(k)[:2] for k in default_io().clients()]}))
"""


def _probe(session: KernelSession) -> dict:
    cell = session.run(PROBE)
    assert cell.status == "ok", cell.text
    return json.loads(cell.text.strip().splitlines()[-1])


def test_kernel_warms_up_the_configured_client_at_start(tmp_path: Path, fake_anthropic: FakeAnthropic) -> None:
    with jupyter_sandbox(tmp_path) as work, KernelSession(
            work, env={"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake_anthropic.base_url}) as session:
        state = _probe(session)
        assert "error" not in state["timings"], state
        assert state["sdk"] and state["io_thread"]
        assert state["clients"] == [["anthropic", fake_anthropic.base_url]]
        assert fake_anthropic.requests == []
        fake_anthropic.route(root=["FINAL(7)"])
        assert session.run("context = 'some text'").status == "ok"
        cell = session.run("%%rlm\nwhat is it?")
        assert cell.status == "ok" and "7" in cell.text, cell.text
        assert _probe(session)["clients"] == [["anthropic", fake_anthropic.base_url]]  # the first run reused it


def test_kernel_without_configuration_starts_and_only_imports(tmp_path: Path) -> None:
    with jupyter_sandbox(tmp_path) as work, KernelSession(work) as session:
        state = _probe(session)
        assert set(state["timings"]) == {"import", "io_thread"}, state
        assert state["sdk"] and state["clients"] == []
