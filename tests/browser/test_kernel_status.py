"""JupyterLab says the kernel is Busy for as long as a %%rlm run is running, paused included, and
Idle once it has ended, with comm messages sent over kernel subshells (JupyterLab's default) and
without. The status bar's kernel item and the notebook toolbar's execution indicator are read in the
page every 50 ms and on every change of the status bar, while a slow scripted run goes on and is
paused and resumed by a click."""

from __future__ import annotations

from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import ROOT, FakeAnthropic, magic, open_notebook, run_cell, run_view

pytestmark = pytest.mark.browser

SLOW = ["Step one.\n```repl\nimport time\ntime.sleep(0.3)\nprint('one')\n```",
        "Step two.\n```repl\ntime.sleep(0.3)\nprint('two')\n```",
        "Step three.\n```repl\nprint('three')\n```",
        "FINAL(three steps)"]

SAMPLE = """() => { window.__rlmSamples = [];
  const read = () => {
    const bar = [...document.querySelectorAll('.jp-StatusBar-Item')].map(e => e.textContent)
      .find(t => t.includes('RLM (Python 3) |')) || null;
    const indicator = document.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status || null;
    const run = document.querySelector("[data-testid='rlm-status']")?.textContent || null;
    window.__rlmSamples.push({ t: performance.now(), bar, indicator, run });
  };
  window.__rlmSampler = setInterval(read, 50);
  // and every change of the status bar's kernel item, however short
  window.__rlmWatch = new MutationObserver(read);
  window.__rlmWatch.observe(document.querySelector('.jp-StatusBar-Widget') || document.body,
                            { subtree: true, childList: true, characterData: true }); }"""
LIVE = {"running", "pausing…", "paused"}


def test_the_kernel_reads_busy_during_a_run_and_idle_after(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=lambda r: SLOW[min(sum(m["role"] == "assistant" for m in r["messages"]), len(SLOW) - 1)])
        srv.latency = 0.8
        url = lab.notebook("status.ipynb", ["context = 'x'", magic(srv, "Take your time.")])
        open_notebook(page, url)
        run_cell(page, 0, wait=True)
        status_bar = page.locator(".jp-StatusBar-Item", has_text="RLM (Python 3) |")
        expect(status_bar).to_contain_text("Idle")
        page.evaluate(SAMPLE)
        run_cell(page, 1)
        run = run_view(page, 1)
        state = run.locator("[data-testid='rlm-status']")
        expect(state).to_have_text("running")
        expect(run.locator(".rlm-tree > [data-testid='rlm-step-node']")).to_have_count(2, timeout=30_000)
        # a click sends a comm message to the kernel in the middle of the run (over a subshell when on)
        run.locator("[data-testid='rlm-pause']").click()
        expect(state).to_have_text("paused", timeout=15_000)
        page.wait_for_timeout(1_000)
        shot(page, f"status-{lab.comms}-1-paused")
        run.locator("[data-testid='rlm-resume']").click()
        expect(state).to_have_text("done", timeout=30_000)
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_have_count(1, timeout=15_000)
        expect(status_bar).to_contain_text("Idle", timeout=15_000)
        page.wait_for_timeout(500)
        samples = page.evaluate("() => { clearInterval(window.__rlmSampler); return window.__rlmSamples; }")

    live = [s for s in samples if s["run"] in LIVE]
    assert len(live) > 40, f"too few samples while the run was live: {len(live)}"
    wrong = [s for s in live if "Busy" not in (s["bar"] or "") or s["indicator"] != "busy"]
    print(f"{lab.comms}: {len(live)} samples while live, {len(wrong)} not busy; first wrong: {wrong[:3]}")
    assert not wrong, f"{len(wrong)} of {len(live)} samples during the run did not say Busy: {wrong[:5]}"
    after = [s for s in samples if s["run"] == "done"][-3:]
    assert after and all("Idle" in s["bar"] and s["indicator"] == "idle" for s in after), after
