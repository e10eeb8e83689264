"""The run tree as rlm-kernel's JupyterLab extension: generated outputs drawn by JupyterLab's own
renderers inside the tree, shown once, and the saved tree coming back read-only after the kernel
that ran it is gone, in JupyterLab and in Notebook 7."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import PNG_1PX, ROOT, FakeAnthropic, magic, open_notebook, run_cell, scripted, step_node

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
        # the saved tree is searchable too: a match in a closed step opens it
        again.locator("[data-testid='rlm-collapse-all']").click()
        again.locator("[data-testid='rlm-find']").fill("printed once")
        expect(again.locator("[data-testid='rlm-find-count']")).to_have_text("1 of 2")  # the code, its output
        expect(head).to_have_attribute("aria-expanded", "true")
        expect(first.locator(".rlm-hit [data-testid='rlm-cell-code']")).to_contain_text("print('printed once')")
        shot(page, f"labext-2-reopened-{name}", again)
        lab.end_sessions()
        if name == "lab":  # Notebook 7 logs errors of its own here (a settings schema, filebrowser:open-path)
            assert not page.console_errors, page.console_errors


# A windowed list draws the rows in its 420 px box plus 260 px above and below: about 40 rows of 26 px.
MAX_ROWS_DRAWN = 60
MAX_LIST_NODES = 1_000  # the open 1,000-row list (issue 10 counted 10,088 nodes for it unwindowed)
MAX_RUN_NODES = 4_000  # the whole run view, its timeline's 1,000 bars included
FOCUSED_ROW = """(() => { const el = document.activeElement;
  const row = el.classList.contains('rlm-sub-head')
    && el.closest("[data-testid='rlm-row-window'] [data-testid='rlm-subcall']");
  return row ? row.dataset.key : null; })()"""
TREE_NODES = """() => { const run = document.querySelector("[data-testid='rlm-run']");
  return { run: run.querySelectorAll('*').length,
           list: run.querySelector('.rlm-sublist').querySelectorAll('*').length }; }"""


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
        # the list opens windowed: a few dozen rows in the DOM, the first ones; the failure is far below
        step1 = step_node(page, 1)
        step1.locator(".rlm-step-head").click()
        step1.locator(".rlm-group-head").click()
        rows = step1.locator("[data-testid='rlm-subcall']")
        expect(rows.first).to_contain_text("item 0")
        assert rows.count() <= MAX_ROWS_DRAWN, rows.count()
        expect(step1.locator(".rlm-sub-failed")).to_have_count(0)
        nodes = page.evaluate(TREE_NODES)
        print("DOM nodes with the batch open:", nodes)
        assert nodes["list"] < MAX_LIST_NODES and nodes["run"] < MAX_RUN_NODES, nodes
        # "next error" scrolls the window to the failed row, outside what was drawn, and opens it
        run.locator("[data-testid='rlm-next-error']").click()
        failed = run.locator(".rlm-sub-failed")
        expect(failed).to_have_count(1)
        expect(failed).to_contain_text("item 737")
        expect(failed.locator(".rlm-sub-head")).to_have_attribute("aria-expanded", "true")
        expect(failed.locator(".rlm-err")).to_contain_text("item 737 is bad")
        expect(failed).to_be_in_viewport()
        assert rows.count() <= MAX_ROWS_DRAWN, rows.count()
        group = step1.locator(".rlm-group-head")
        expect(group).to_contain_text(re.compile(r"1,000 sub-calls · 1 failed · p50 .* · p95 "))
        # the filters: failed only, slowest first, all again (from the top)
        step1.locator("[data-testid='rlm-filter-failed']").click()
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("item 737")
        step1.locator("[data-testid='rlm-filter-slowest']").click()
        assert MAX_ROWS_DRAWN >= rows.count() > 10, rows.count()
        step1.locator("[data-testid='rlm-filter-all']").click()
        expect(rows.first).to_contain_text("item 0")
        # scrolled to the end, the window draws the last rows (no spacer left below) and still only a few dozen
        window = step1.locator("[data-testid='rlm-row-window']")
        window.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        expect(rows.filter(has_text="item 0")).to_have_count(0)
        expect(window.locator(".rlm-window-spacer").last).to_have_attribute("style", re.compile(r"height: 0px"))
        assert rows.count() <= MAX_ROWS_DRAWN, rows.count()
        assert page.evaluate(TREE_NODES)["list"] < MAX_LIST_NODES
        # keyboard: Tab walks row after row past the ones first drawn, the window following the focus
        window.evaluate("el => { el.scrollTop = 0; }")
        expect(rows.first).to_contain_text("item 0")
        first_drawn = rows.evaluate_all("els => els.map(e => e.dataset.key)")
        rows.first.locator(".rlm-sub-head").focus()
        for _ in range(MAX_ROWS_DRAWN + 20):
            page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_ROW)
        assert focused and focused not in first_drawn, (focused, page.evaluate(FOCUSED))
        assert rows.count() <= MAX_ROWS_DRAWN, rows.count()
        # search reaches a row far down the list: the window scrolls to it and it opens
        page.keyboard.press("Control+f")
        page.keyboard.type("item 512")
        expect(run.locator("[data-testid='rlm-find-count']")).to_have_text("1 of 1")
        hit = step1.locator("[data-testid='rlm-subcall'].rlm-hit")
        expect(hit).to_contain_text("item 512")
        expect(hit.locator(".rlm-sub-head")).to_have_attribute("aria-expanded", "true")
        expect(hit).to_be_in_viewport()
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


FOCUSED = "document.activeElement.dataset.testid || document.activeElement.className"


@pytest.mark.parametrize("lab", ["perCommTarget"], indirect=True, ids=["subshells"])
def test_search_finds_text_in_collapsed_sub_calls_and_opens_them(lab: Lab, page: Any) -> None:
    from playwright.sync_api import expect

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=scripted, sub=lambda r: "4 widgets")
        srv.latency = 0.0
        url = lab.notebook("find.ipynb", ["context = 'box A: 4 widgets|box B: 4 widgets|box C: 4 widgets'",
                                          magic(srv, "How many widgets are there?")])
        open_notebook(page, url)
        run_cell(page, 0, wait=True)
        run_cell(page, 1)
        run = page.locator("[data-testid='rlm-run']")
        expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("There are 12 widgets.", timeout=60_000)
        run.locator("[data-testid='rlm-collapse-all']").click()
        expect(run.locator(".rlm-tree > .rlm-step.rlm-open")).to_have_count(0)

        # keyboard only: Ctrl+F on a step's toggle goes to the run's search box, not the notebook's
        head = step_node(page, 2).locator(".rlm-step-head")
        head.focus()
        page.keyboard.press("Control+f")
        assert page.evaluate(FOCUSED) == "rlm-find", page.evaluate(FOCUSED)
        expect(page.locator(".jp-DocumentSearch-overlay")).to_have_count(0)
        # text of a child run, inside the collapsed rlm_query row of step 2: the pointer to its cell in
        # the step's prose, the cell's code, its output
        page.keyboard.type("child step")
        count = run.locator("[data-testid='rlm-find-count']")
        expect(count).to_have_text("1 of 3")
        row = step_node(page, 2).locator("[data-testid='rlm-subcall'][data-kind='rlm']")
        expect(row.locator(".rlm-sub-head").first).to_have_attribute("aria-expanded", "true")
        child_step = row.locator("[data-testid='rlm-step-node']").first
        expect(child_step.locator(".rlm-step-head")).to_have_attribute("aria-expanded", "true")
        current = run.locator(".rlm-hit")
        expect(current).to_have_count(1)
        expect(current.locator(".rlm-turn")).to_contain_text("child step")
        page.keyboard.press("Enter")
        expect(count).to_have_text("2 of 3")
        expect(current.locator("[data-testid='rlm-cell-code']")).to_contain_text("print('child step'")
        # read-only code is highlighted by JupyterLab's CodeMirror languages (through its Markdown renderer)
        expect(current.locator("[data-testid='rlm-cell-code'] code.language-python span").first).to_be_visible()
        expect(current).to_be_in_viewport()
        page.keyboard.press("Enter")
        expect(count).to_have_text("3 of 3")
        expect(current.locator(".rlm-outputs")).to_contain_text("child step")
        page.keyboard.press("Shift+Enter")
        expect(count).to_have_text("2 of 3")
        shot(page, "labext-5-search", run)

        # a prompt of one of step 1's three llm_query calls: the step, its list and the row open
        run.locator("[data-testid='rlm-collapse-all']").click()
        page.keyboard.press("Control+f")  # from the button just clicked: back in the box, its text selected
        page.keyboard.type("box B")
        expect(count).to_have_text("1 of 1")
        hit = step_node(page, 1).locator("[data-testid='rlm-subcall'].rlm-hit")
        expect(hit).to_have_count(1)
        expect(hit.locator(".rlm-sub-head")).to_have_attribute("aria-expanded", "true")
        expect(hit.locator(".rlm-sub-body pre").first).to_contain_text("How many widgets in: box B")
        page.keyboard.press("Control+a")
        page.keyboard.type("no such text anywhere")
        expect(count).to_have_text("no matches")
        # Escape hands focus back to where Ctrl+F was pressed
        page.keyboard.press("Escape")
        assert page.evaluate(FOCUSED) == "rlm-collapse-all", page.evaluate(FOCUSED)
        assert not page.console_errors, page.console_errors
