"""Fixtures for the browser tests: a JupyterLab server per module and `commsOverSubshells` setting,
and a headless Chromium page per test. Every test here is skipped, with the reason, when chromium
or playwright is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import CHROMIUM, CHROMIUM_FLAGS, Lab, shot, skip_reason


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    for item in items:
        if reason and "browser" in item.nodeid.split("::")[0].split("/"):
            item.add_marker(pytest.mark.skip(reason=reason))


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
            str(tmp_path / "chromium"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
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


