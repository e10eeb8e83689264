"""Fixtures for the browser tests: a JupyterLab server per module and `commsOverSubshells` setting,
and a headless Chromium page per test. Without chromium or playwright every test here is skipped, and
pytest -ra reports them on one line that says how to enable them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import CHROMIUM_FLAGS, Lab, find_chromium, shot, skip_reason

UNAVAILABLE = skip_reason()


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """Session-scoped, so it runs before any server or browser starts."""
    if UNAVAILABLE:
        pytest.skip(UNAVAILABLE)


@pytest.fixture(scope="module", params=["perCommTarget", "disabled"], ids=["subshells", "no-subshells"])
def lab(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """One server per module and setting; each test opens its own notebook (and kernel)."""
    root = tmp_path_factory.mktemp(f"lab-{request.param}")
    server = Lab(root / "lab", request.param, env={"ANTHROPIC_API_KEY": "test-key",
                                                  "RLM_RUNS_DIR": str(root / "runs")})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_kernels(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "lab" in request.fixturenames:
        request.getfixturevalue("lab").end_sessions()


@pytest.fixture
def page(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium"), executable_path=find_chromium(), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000})
        pg = ctx.pages[0] if ctx.pages else ctx.new_page()
        pg.set_default_timeout(30_000)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.console_errors = errors  # type: ignore[attr-defined]
        try:
            yield pg
        finally:
            if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
                shot(pg, f"{request.node.name}-FAILED")
            ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)
    if UNAVAILABLE and rep.skipped and isinstance(rep.longrepr, tuple) and rep.longrepr[2].endswith(UNAVAILABLE):
        rep.longrepr = (__file__, None, rep.longrepr[2])  # one place, so -ra folds these skips into one line


