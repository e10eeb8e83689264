"""The run tree as rlm-kernel's JupyterLab extension: generated outputs drawn by JupyterLab's own
renderers inside the tree, shown once, and the saved tree coming back read-only after the kernel
that ran it is gone, in JupyterLab and in Notebook 7."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import PNG_1PX, ROOT, FakeAnthropic, magic, open_notebook, run_cell, step_node

pytestmark = pytest.mark.browser

RUN_MIME = "application/vnd.rlm.run+json"

# Scroll the notebook until the tree's top is 150 px above the view, then report where its header is.
STICKY = """async () => {
  const run = document.querySelector("[data-testid='rlm-run']");
  const scroller = run.closest('.jp-WindowedPanel-outer') || run.closest('.jp-Notebook');
  const top = () => scroller.getBoundingClientRect().top;
  scroller.scrollTop += run.getBoundingClientRect().top - top() + 150;
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return { tree: run.getBoundingClientRect().top - top(),
           head: run.querySelector('.rlm-head').getBoundingClientRect().top - top() };
}"""

NATIVE = [
    "Let me look.\n```repl\nimport base64\nfrom IPython.display import HTML, Image, Markdown, display\n"
    "display(HTML('<table class=\"dataframe\"><thead><tr><th>box</th><th>widgets</th></tr></thead>'"
    "'<tbody><tr><td>A</td><td>4</td></tr></tbody></table>'))\n"
    f"display(Image(data=base64.b64decode('{PNG_1PX}'), width=40))\n"
    "display(Markdown('| col | n |\\n|---|---|\\n| md table cell | 1 |'))\n"
    "print('printed once')\n1/0\n```",
    "FINAL(Counted **4** widgets.)",
]


@pytest.fixture
def srv() -> Any:
    with FakeAnthropic(root_model=ROOT) as s:
        s.route(root=lambda r: NATIVE[min(sum(m["role"] == "assistant" for m in r["messages"]), 1)],
                sub=lambda r: "ok")
        s.latency = 0.2
        yield s


@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True, ids=["subshells"])
def test_outputs_render_natively_once_and_the_saved_tree_reopens_read_only(lab: Lab, page: Any,
                                                                          srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    url = lab.notebook("native.ipynb", ["context = 'box A: 4 widgets'", magic(srv, "Count the widgets.")])
    open_notebook(page, url)
    run_cell(page, 0, wait=True)
    run_cell(page, 1)
    run = page.locator("[data-testid='rlm-run']")
    expect(run.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=60_000)
    expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("Counted 4 widgets.")
    expect(run.locator("[data-testid='rlm-answer'] strong")).to_have_text("4")  # Markdown, rendered
    # a finished run opens with its timeline: both model turns, the cell (failed: drawn as an error)
    timeline = run.locator("[data-testid='rlm-timeline']")
    expect(timeline.locator(".rlm-tl-turn")).to_have_count(2)
    expect(timeline.locator(".rlm-tl-fail")).to_have_count(1)
    # the failed cell is counted in the header, and "next error" opens the step and shows it
    expect(run.locator("[data-testid='rlm-errors']")).to_have_text("1 failed cell")
    run.locator("[data-testid='rlm-next-error']").click()
    step1 = step_node(page, 1)
    expect(step1.locator(".rlm-step-head")).to_have_attribute("aria-expanded", "true")

    # every output drawn by JupyterLab's own renderers, inside the tree
    outputs = step1.locator(".rlm-outputs")
    expect(outputs.locator(".jp-RenderedHTMLCommon table.dataframe td").first).to_have_text("A")
    expect(outputs.locator(".jp-RenderedImage img")).to_be_visible()
    expect(outputs.locator(".jp-RenderedMarkdown table td").first).to_have_text("md table cell")
    traceback = outputs.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")
    expect(traceback).to_contain_text("ZeroDivisionError")
    assert traceback.locator("span[class*='ansi-']").count() > 0, "the traceback's colours were not rendered"
    expect(step1.locator("[data-testid='rlm-cell-code'] pre")).to_contain_text("display(HTML(")
    shot(page, "labext-1-native", run)
    # scrolled past, the header and its controls stay at the top of the notebook view
    where = page.evaluate(STICKY)
    assert where["tree"] < -100 and abs(where["head"]) <= 2, where
    shot(page, "labext-1b-sticky-header")

    # each thing once: the outputs only in the tree, the answer only in the tree
    cell = page.locator(".jp-Notebook .jp-Cell").nth(1)
    stdout = cell.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stdout']")
    expect(stdout.filter(has_text="printed once")).to_have_count(1)
    expect(cell.locator("table.dataframe")).to_have_count(1)
    expect(cell.locator(".jp-OutputArea-output:not(.rlm-renderer)",
                        has_text="Counted 4 widgets.")).to_have_count(0)
    expect(cell.locator(".jp-OutputArea-executeResult")).to_contain_text("the answer is in the tree above")

    # save, end the kernel, reopen: the saved tree is drawn by the extension, read-only
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    expect(page.locator(".jp-mod-dirty")).to_have_count(0, timeout=10_000)
    saved = json.loads((lab.work / "native.ipynb").read_text())
    size = (lab.work / "native.ipynb").stat().st_size
    print(f"saved notebook: {size:,} bytes")
    bundle = next(o["data"] for o in saved["cells"][1]["outputs"] if RUN_MIME in o.get("data", {}))
    assert bundle[RUN_MIME]["finished"] is True and "text/html" in bundle
    lab.end_sessions()
    for name, path in (("lab", "/lab/tree/native.ipynb?reset"), ("notebook7", "/notebooks/native.ipynb")):
        page.goto(lab.url + path)
        again = page.locator("[data-testid='rlm-run']")
        expect(again.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=60_000)
        expect(again.locator("[data-testid='rlm-readonly']")).to_be_visible()
        expect(again.locator("[data-testid='rlm-pause']")).to_be_disabled()
        expect(again.locator(".rlm-tree > [data-testid='rlm-step-node']")).to_have_count(2)
        again.locator("[data-testid='rlm-expand-all']").click()
        first = again.locator(".rlm-tree > [data-testid='rlm-step-node'][data-step='1']")
        expect(first.locator(".jp-RenderedHTMLCommon table.dataframe td").first).to_have_text("A")
        expect(first.locator(".jp-RenderedImage img")).to_be_visible()
        again.locator("[data-testid='rlm-collapse-all']").click()
        expect(again.locator(".rlm-tree > .rlm-step.rlm-open")).to_have_count(0)
        # keyboard only: a step's toggle takes focus and Enter opens it; the state is announced politely
        head = first.locator(".rlm-step-head")
        head.focus()
        page.keyboard.press("Enter")
        expect(head).to_have_attribute("aria-expanded", "true")
        page.keyboard.press(" ")
        expect(head).to_have_attribute("aria-expanded", "false")
        expect(again.locator("[role='status'][aria-live='polite']")).to_have_text("Run done")
        shot(page, f"labext-2-reopened-{name}", again)
        lab.end_sessions()
        if name == "lab":  # Notebook 7 logs errors of its own here (a settings schema, filebrowser:open-path)
            assert not page.console_errors, page.console_errors


@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True, ids=["subshells"])
def test_a_thousand_prompt_batch_opens_bounded_and_next_error_finds_the_failure(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["Fan out.\n```repl\nres = llm_query_batched([f'item {i}' for i in range(1000)])\n"
                        "print(len(res), 'answers')\n```", "FINAL(batch done)"], sub="fine")
        srv.latency = 0.0
        srv.inject(400, times=1, message="item 737 is bad", match=lambda r: r.last_user_text().strip() == "item 737")
        url = lab.notebook("batch.ipynb", ["context = 'x'", magic(srv, "Fan out over everything.",
                                                                    "--max-subcalls 5000")])
        open_notebook(page, url)
        run_cell(page, 0, wait=True)
        run_cell(page, 1)
        run = page.locator("[data-testid='rlm-run']")
        expect(run.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=90_000)
        expect(run.locator("[data-testid='rlm-meta']")).to_contain_text("1,000 sub-calls")
        expect(run.locator("[data-testid='rlm-errors']")).to_contain_text("1 failed sub-call")
        # the timeline packs the thousand sub-calls into a few lanes and marks the failed one
        timeline = run.locator("[data-testid='rlm-timeline']")
        expect(timeline.locator(".rlm-tl-fail")).to_have_count(1)
        expect(timeline.locator(".rlm-tl-sub")).to_have_count(999)
        assert timeline.locator("g").count() <= 2 + 2 + 6, "sub-calls were not packed into lanes"
        # collapsed, the step already says a sub-call failed
        expect(step_node(page, 1).locator(".rlm-step-head")).to_contain_text("1 failed sub-call")
        run.locator("[data-testid='rlm-next-error']").click()
        failed = run.locator(".rlm-sub-failed")
        expect(failed).to_have_count(1)
        expect(failed).to_contain_text("item 737")
        group = step_node(page, 1).locator(".rlm-group-head")
        expect(group).to_contain_text(re.compile(r"1,000 sub-calls · 1 failed · p50 .* · p95 "))
        # the list shows one page of rows, not a thousand
        step_node(page, 1).locator("[data-testid='rlm-filter-all']").click()
        rows = step_node(page, 1).locator("[data-testid='rlm-subcall']")
        expect(rows).to_have_count(200)
        nodes = page.evaluate("document.querySelector(\"[data-testid='rlm-run']\").querySelectorAll('*').length")
        print("DOM nodes in the tree with the batch open:", nodes)
        assert nodes < 6000, nodes
        shot(page, "labext-3-batch", run)


@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True, ids=["subshells"])
def test_approve_mode_says_so_and_runs_one_cell_per_click(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["Two cells.\n```repl\nprint('first cell ran')\n```\n```repl\nprint('second cell ran')\n```",
                        "FINAL(approved both)"])
        srv.latency = 0.0
        url = lab.notebook("approve.ipynb", ["context = 'x'", magic(srv, "Go carefully.", "--approve")])
        open_notebook(page, url)
        run_cell(page, 0, wait=True)
        run_cell(page, 1)
        run = page.locator("[data-testid='rlm-run']")
        expect(run.locator("[data-testid='rlm-mode']")).to_have_text("Approve mode: pauses before every cell",
                                                                     timeout=30_000)
        resume = run.locator("[data-testid='rlm-resume']")
        expect(run.locator("[data-testid='rlm-status']")).to_have_text("paused", timeout=30_000)
        expect(resume).to_have_text("Run this cell")
        expect(run.locator("[data-testid='rlm-cell-editor']")).to_contain_text("first cell ran")
        resume.click()
        # one click ran one cell: the run stops again before the second
        expect(run.locator("[data-testid='rlm-cell-editor']")).to_contain_text("second cell ran", timeout=30_000)
        expect(run.locator("[data-testid='rlm-status']")).to_have_text("paused")
        expect(step_node(page, 1).locator("[data-testid='rlm-live-output'], .rlm-outputs")
               .filter(has_text="first cell ran").first).to_be_visible()
        expect(step_node(page, 1).locator("[data-testid='rlm-cell-code']")).to_have_count(1)
        resume.click()
        expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("approved both", timeout=30_000)
        shot(page, "labext-4-approve", run)
