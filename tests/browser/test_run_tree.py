"""The live run tree in a real JupyterLab: watch a run, steer it, stop it, interrupt it, reload.

Every test runs twice, with JupyterLab sending widget messages over kernel subshells (its default)
and without. The model is the loopback fake server with latency, scripted per conversation."""

from __future__ import annotations

import base64
import re
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import Lab, shot

from rlm_kernel.testing.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.browser

ROOT = "claude-sonnet-5-5"

MAIN = [
    "I'll ask about each part.\n```repl\nparts = context.split('|')\n"
    "answers = llm_query_batched([f'How many widgets in: {p}' for p in parts])\nprint(answers)\n```",
    "A child run will check the counts.\n```repl\nchecked = rlm_query('Check the widget counts', "
    "context=str(answers))\nprint('child said:', checked)\n```",
    "Now the **total**.\n```repl\nprint('model step 3')\n```",
    "FINAL(There are 12 widgets.)",
]
CHILD = ["Looking at the counts.\n```repl\nprint('child step', len(context))\n```", "FINAL(the counts look right)"]
ENDLESS = "Still counting.\n```repl\nimport time\ntime.sleep(0.4)\nanswer['content'] = 'partial: 7 so far'\n" \
          "print('counted a bit more')\n```"


PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def png(width: int, height: int) -> str:
    """A real RGB PNG (a colour gradient) as base64, written with zlib alone."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                            + chunk(b"IEND", b"")).decode()


PNG_16x8 = png(16, 8)
OUTPUTS = [
    "Let me show some outputs.\n```repl\nimport base64\nfrom IPython.display import HTML, Image, display\n"
    "display(HTML('<table><tr><td>html table cell</td></tr></table><script>document.title=\"pwned\"</script>'"
    "'<img src=x onerror=\"document.title=1\">'))\n"
    f"display(Image(data=base64.b64decode('{PNG_16x8}'), width=64))\n"
    "print('\\n'.join(f'line {i}' for i in range(2000)))\n1/0\n```",
    "FINAL(done with outputs)",
]


MANY = ["Fan out.\n```repl\nres = llm_query_batched([f'item {i}' for i in range(1000)])\n"
        "print(len(res), 'answers')\n```", "FINAL(1000 answers in)"]


def scripted(request: Any) -> str:
    """Answer by conversation: the child's first message names its task; turns count replies so far."""
    first = request["messages"][0]["content"]
    first = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
    turn = sum(1 for m in request["messages"] if m["role"] == "assistant")
    if "Keep counting" in first:
        return ENDLESS
    if "Resume me" in first:
        return ENDLESS if turn == 0 else "FINAL(resumed to the end)"
    if "Fan out" in first:
        return MANY[min(turn, len(MANY) - 1)]
    if "Show outputs" in first:
        return OUTPUTS[min(turn, len(OUTPUTS) - 1)]
    script = CHILD if "Check the widget counts" in first else MAIN
    return script[min(turn, len(script) - 1)]


@pytest.fixture
def srv() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(root_model=ROOT) as s:
        s.route(root=scripted, sub=lambda r: "4 widgets")
        s.latency = lambda r: 0.8 if r.model == ROOT else 0.3
        s.stream_delay = 0.02
        yield s


def magic(srv: FakeAnthropic, question: str, extra: str = "") -> str:
    return f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT} --max-retries 1 {extra}\n{question}"


def open_notebook(page: Any, url: str) -> None:
    page.goto(url + "?reset")
    page.locator(".jp-Notebook").wait_for()
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for(timeout=60_000)
    page.locator(".jp-NotebookPanel-toolbar").get_by_text("RLM (Python 3)").wait_for()


def run_cell(page: Any, n: int, wait: bool = False) -> None:
    """Select cell n and press the toolbar's run button; retried if the click did not take."""
    from playwright.sync_api import expect

    cell = page.locator(".jp-Notebook .jp-Cell").nth(n)
    prompt = cell.locator(".jp-InputPrompt")
    for _ in range(3):
        cell.locator(".jp-InputArea-editor").click()
        page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='run']").click()
        try:
            expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=3_000)
            break
        except AssertionError:
            continue
    else:
        focus = page.evaluate("document.activeElement.outerHTML")[:300]
        raise AssertionError(f"cell {n} did not start; focus is on {focus}")
    if wait:
        expect(prompt).to_have_text(re.compile(r"\[\d+\]"), timeout=30_000)


RUN_SHOWN_OR_CELL_DONE = r"""(n) => {
  const cell = document.querySelectorAll(".jp-Notebook .jp-Cell")[n];
  return !!cell && (!!cell.querySelector("[data-testid='rlm-run']")
                    || /\[\d+\]/.test(cell.querySelector(".jp-InputPrompt").textContent)); }"""


def run_view(page: Any, n: int) -> Any:
    """The run view of cell n, once the kernel has shown it.

    The view appears at the run's first event, and a fresh kernel's first %%rlm imports the model SDK
    before that: seconds on a busy machine (5.7 s seen on 2 loaded cores). So this waits on the cell's
    state, not on a clock: until the view is there or the cell has ended without one (then it fails
    with what the cell printed). The timeout only guards against a hung kernel."""
    page.wait_for_function(RUN_SHOWN_OR_CELL_DONE, arg=n, timeout=120_000)
    cell = page.locator(".jp-Notebook .jp-Cell").nth(n)
    view = cell.locator("[data-testid='rlm-run']")
    if view.count() == 0:
        raise AssertionError(f"cell {n} ended without a run view: {cell.locator('.jp-OutputArea').inner_text()}")
    return view


def start_run(page: Any, url: str) -> Any:
    """Open the notebook, run its first cell (the context), start its second (a %%rlm cell) and
    return that cell's run view once it shows."""
    open_notebook(page, url)
    run_cell(page, 0, wait=True)
    run_cell(page, 1)
    return run_view(page, 1)


def step_node(page: Any, n: int) -> Any:
    """A step of the root run (child steps sit inside sub-calls)."""
    return page.locator(f".rlm-tree > [data-testid='rlm-step-node'][data-step='{n}']")


FOCUS_IN_EDITOR = "!!document.activeElement.closest(\"[data-testid='rlm-cell-editor']\")"
FOCUSED = "document.activeElement.dataset.testid || document.activeElement.className"


def test_watch_pause_edit_resume_then_reload(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    tag = lab.comms
    url = lab.notebook("tree.ipynb", ["context = 'box A: 4 widgets|box B: 4 widgets|box C: 4 widgets'",
                                      magic(srv, "How many widgets are there?")])
    run = start_run(page, url)
    expect(run).to_be_visible()
    expect(page.locator("[data-testid='rlm-status']")).to_have_text(re.compile("running"))
    expect(run.locator(".rlm-question")).to_have_text("How many widgets are there?")
    # step 1: three sub-calls from llm_query_batched (counted in the step's header line)
    expect(step_node(page, 1).locator(".rlm-step-head")).to_contain_text("3 sub-calls", timeout=30_000)
    # step 2: an rlm_query child appears, live, as a nested tree of its own steps
    child_steps = page.locator("[data-testid='rlm-subcall'][data-kind='rlm'] [data-testid='rlm-step-node']")
    expect(child_steps.first).to_be_visible(timeout=30_000)
    shot(page, f"tree-{tag}-1-child")

    # step 3: pause while its model call is in flight
    expect(step_node(page, 3)).to_be_visible(timeout=30_000)
    page.locator("[data-testid='rlm-pause']").click()
    expect(page.locator("[data-testid='rlm-status']")).to_have_text(re.compile("pausing…|paused"), timeout=500)
    expect(page.locator("[data-testid='rlm-status']")).to_have_text("paused", timeout=15_000)
    editor = page.locator("[data-testid='rlm-cell-editor']")
    expect(editor).to_be_visible()
    expect(editor).to_contain_text("print('model step 3')")
    # JupyterLab's own CodeMirror editor, Python highlighted (the string is a token of its own)
    expect(editor.locator(".cm-editor .cm-content")).to_be_visible()
    expect(editor.locator(".cm-line span", has_text="'model step 3'")).to_have_count(1)
    # the status bar says so too (JupyterLab only; Notebook 7 has no status bar)
    expect(page.locator("[data-testid='rlm-statusbar']")).to_contain_text("RLM paused · step 3")
    assert srv.requests[-1].model == ROOT  # nothing more was asked while paused
    asked = len(srv.requests)
    shot(page, f"tree-{tag}-2-paused")

    # keyboard only: Tab from Resume into the editor, replace the code, Shift+Enter applies, Escape leaves
    cells = page.locator(".jp-Notebook .jp-Cell").count()
    page.locator("[data-testid='rlm-resume']").focus()
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate(FOCUS_IN_EDITOR):
            break
    else:
        raise AssertionError(f"Tab never reached the editor; focus: {page.evaluate(FOCUSED)}")
    page.keyboard.press("Control+a")
    page.keyboard.type("print('a person edited step 3')")
    page.keyboard.press("Shift+Enter")
    expect(page.locator(".rlm-pending-title")).to_contain_text("edit applied")
    expect(editor.locator(".cm-line")).to_have_count(1)  # Shift+Enter applied; it added no line
    page.keyboard.press("Escape")
    assert page.evaluate(FOCUSED) == "rlm-apply-edit", page.evaluate(FOCUSED)
    page.keyboard.press("Shift+Tab")  # and back in with the keyboard: focus is not trapped either way
    assert page.evaluate(FOCUS_IN_EDITOR), page.evaluate(FOCUSED)
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(cells)  # no notebook shortcut fired on the way
    page.locator("[data-testid='rlm-resume']").click()
    answer = page.locator("[data-testid='rlm-answer']")
    expect(answer).to_contain_text("There are 12 widgets.", timeout=30_000)
    expect(page.locator("[data-testid='rlm-status']")).to_have_text("done")
    assert len(srv.requests) == asked + 1
    assert "a person edited step 3" in srv.requests[-1].last_user_text()

    # the edited code is what ran: in the tree (marked) and in the notebook's own output
    step3 = step_node(page, 3)
    step3.locator(".rlm-step-head").click()
    expect(step3.locator("[data-testid='rlm-cell-code']")).to_contain_text("a person edited step 3")
    expect(step3.locator(".rlm-badge-edit").first).to_be_visible()
    expect(step3.locator(".rlm-outputs")).to_contain_text("a person edited step 3")
    stdout = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stdout']")
    expect(stdout.filter(has_text="a person edited step 3")).to_have_count(1)
    expect(stdout.filter(has_text="model step 3")).to_have_count(0)
    shot(page, f"tree-{tag}-3-done")

    # expand-all opens every step, collapse-all closes them; sub-calls and the child stay in the tree
    page.locator("[data-testid='rlm-expand-all']").click()
    expect(page.locator(".rlm-tree > .rlm-step.rlm-open")).to_have_count(4)
    expect(step_node(page, 1).locator("[data-testid='rlm-subcall']")).to_have_count(3)
    expect(step_node(page, 1).locator("[data-testid='rlm-subcall']").first).to_contain_text("llm_query")
    expect(step_node(page, 2).locator("[data-kind='rlm'] [data-testid='rlm-step-node']")).to_have_count(2)
    expect(step_node(page, 2).locator("[data-kind='rlm']")).to_contain_text("the counts look right")
    shot(page, f"tree-{tag}-4-expanded")
    page.locator("[data-testid='rlm-collapse-all']").click()
    expect(page.locator(".rlm-tree > .rlm-step.rlm-open")).to_have_count(0)

    # save, reload the page: the finished tree comes back from the kernel
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    page.wait_for_timeout(500)
    page.reload()
    page.locator(".jp-Notebook").wait_for()
    expect(page.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=30_000)
    expect(page.locator("[data-testid='rlm-answer']")).to_contain_text("There are 12 widgets.")
    expect(page.locator(".rlm-tree > [data-testid='rlm-step-node']")).to_have_count(4)
    expect(page.locator("[data-testid='rlm-pause']")).to_be_disabled()
    shot(page, f"tree-{tag}-5-reloaded")
    assert not page.console_errors, page.console_errors


def test_stop_interrupt_from_the_toolbar_and_resume(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    tag = lab.comms
    url = lab.notebook("stop.ipynb", ["context = 'lots of widgets'",
                                      magic(srv, "Keep counting widgets."),
                                      magic(srv, "Resume me after an interrupt."),
                                      "print('kernel alive', 1 + 1)",
                                      "%rlm resume"])
    first = start_run(page, url)
    expect(first.locator(".rlm-tree > [data-testid='rlm-step-node']")).to_have_count(2, timeout=30_000)
    first.locator("[data-testid='rlm-stop']").click()
    expect(first.locator("[data-testid='rlm-status']")).to_have_text("stopped", timeout=15_000)
    expect(first.locator("[data-testid='rlm-answer']")).to_contain_text("partial: 7 so far")
    expect(first.locator("[data-testid='rlm-answer']")).to_contain_text("stopped by user")
    shot(page, f"stop-{tag}-1-stopped")

    run_cell(page, 2)
    second = page.locator("[data-testid='rlm-run']").nth(1)
    expect(second.locator("[data-testid='rlm-step-node']")).to_have_count(1, timeout=30_000)
    page.locator(".jp-NotebookPanel-toolbar [data-jp-item-name='interrupt']").click()
    expect(second.locator("[data-testid='rlm-status']")).to_have_text("stopped", timeout=15_000)
    expect(second.locator("[data-testid='rlm-answer']")).to_contain_text("interrupted")
    # the model's prose is not presented as an answer after an interrupt
    expect(second.locator("[data-testid='rlm-answer']")).not_to_contain_text("Still counting")
    expect(page.locator(".jp-Cell").nth(2).locator(".jp-OutputArea")).to_contain_text("stopped (interrupted)")
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").wait_for()
    run_cell(page, 3, wait=True)
    expect(page.locator(".jp-Cell").nth(3).locator(".jp-OutputArea")).to_contain_text("kernel alive 2")
    shot(page, f"stop-{tag}-2-interrupted")

    # %rlm resume: a new view shows the recorded steps, then the run going on to its answer
    run_cell(page, 4, wait=True)
    third = page.locator("[data-testid='rlm-run']").nth(2)
    expect(third.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=30_000)
    expect(third.locator("[data-testid='rlm-answer']")).to_contain_text("resumed to the end")
    expect(third.locator(".rlm-question")).to_have_text("Resume me after an interrupt.")
    expect(third.locator(".rlm-tree > [data-testid='rlm-step-node'][data-step='1']")).to_have_count(1)
    expect(third.locator(".rlm-tree > [data-testid='rlm-step-node'][data-step='2']")).to_have_count(1)
    shot(page, f"stop-{tag}-3-resumed", third)
    assert not page.console_errors, page.console_errors


def test_outputs_note_and_export(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    tag = lab.comms
    url = lab.notebook("outputs.ipynb", ["context = 'anything'", magic(srv, "Show outputs, please.")])
    run = start_run(page, url)
    expect(run).to_be_visible()
    run.locator("[data-testid='rlm-pause']").click()
    expect(run.locator("[data-testid='rlm-status']")).to_have_text("paused", timeout=15_000)

    # a note while paused goes into the model's next turn
    run.locator("[data-testid='rlm-note']").click()
    # typed key by key: JupyterLab's command-mode shortcuts (a, b, d d…) must not fire in the box
    run.locator("[data-testid='rlm-note-input']").press_sequentially("Mind the table, please.")
    run.locator("[data-testid='rlm-note-send']").click()
    expect(run.locator(".rlm-notebox")).to_contain_text("Queued for the next turn")
    run.locator("[data-testid='rlm-resume']").click()
    expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("done with outputs", timeout=30_000)
    assert "Mind the table, please." in srv.requests[-1].last_user_text()
    expect(page.locator(".jp-Notebook .jp-Cell")).to_have_count(3)  # no cells added by stray shortcuts

    step1 = step_node(page, 1)
    step1.locator(".rlm-step-head").click()
    expect(step1.locator(".rlm-note")).to_contain_text("Mind the table, please.")
    # outputs drawn by JupyterLab's own renderers, as in a native cell of the same notebook (trusted
    # kernel output there too; a reopened untrusted notebook gets JupyterLab's sanitiser)
    expect(step1.locator(".rlm-outputs .jp-RenderedHTMLCommon td")).to_have_text("html table cell")
    image = step1.locator(".rlm-outputs .jp-RenderedImage img")
    expect(image).to_be_visible()
    # the picture itself, decoded, at the width the code asked for (as a native cell draws it)
    assert image.evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight, img.width]") == [True, 16, 8, 64]
    expect(step1.locator(".rlm-outputs .jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")) \
        .to_contain_text("ZeroDivisionError")
    # a long output is cut; "show all" fetches the rest from the kernel
    stream = step1.locator(".rlm-output", has_text="line 10")
    expect(stream).not_to_contain_text("line 1999")
    shot(page, f"outputs-{tag}-1-rendered", step1)
    stream.locator("[data-testid='rlm-show-all']").click()
    expect(stream).to_contain_text("line 1999")

    # export writes a notebook beside this one, named after the question and time, and links to it
    run.locator("[data-testid='rlm-export']").click()
    link = run.locator("[data-testid='rlm-export-link']")
    expect(link).to_contain_text("show-outputs-please-", timeout=15_000)
    written = lab.work / link.inner_text().strip()
    assert written.is_file() and "Show outputs, please." in written.read_text()
    link.click()  # opens the exported notebook in a new tab of the application
    expect(page.locator(".lm-TabBar-tabLabel", has_text=written.name)).to_be_visible(timeout=15_000)
    # its timeline, under the title, is drawn (an SVG in a Markdown cell of an untrusted notebook)
    picture = page.locator(".jp-RenderedMarkdown img[alt^='Timeline of the run']")
    expect(picture).to_be_visible(timeout=15_000)
    assert picture.evaluate("img => img.complete && img.naturalWidth") == 900
    shot(page, f"outputs-{tag}-2-exported-timeline")
    assert not page.console_errors, page.console_errors


LONG_TASKS = """() => { window.__rlmLong = [];
  new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__rlmLong.push(e.duration); })
    .observe({ entryTypes: ["longtask"] }); }"""


def test_a_thousand_subcalls_stay_smooth(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    srv.latency = lambda r: 0.3 if r.model == ROOT else 0.02
    url = lab.notebook("many.ipynb", ["context = 'x'", magic(srv, "Fan out over everything.", "--max-subcalls 5000")])
    open_notebook(page, url)
    run_cell(page, 0, wait=True)
    page.evaluate(LONG_TASKS)
    run_cell(page, 1)
    run = run_view(page, 1)
    # the header counts sub-calls as they happen
    expect(run.locator(".rlm-meta")).to_contain_text(re.compile(r"[1-9][\d,]* sub-calls \(\d+ running\)"),
                                                     timeout=30_000)
    expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("1000 answers in", timeout=60_000)
    expect(run.locator(".rlm-meta")).to_contain_text("1,000 sub-calls")
    long_tasks = page.evaluate("window.__rlmLong")
    print("long tasks (ms):", sorted(long_tasks)[-8:])
    step1 = step_node(page, 1)
    step1.locator(".rlm-step-head").click()
    expect(step1.locator(".rlm-group-head")).to_contain_text("1,000 sub-calls")
    step1.locator(".rlm-group-head").click()  # long lists start closed; open, only the rows in view are drawn
    rows = step1.locator("[data-testid='rlm-subcall']")
    expect(rows.first).to_be_visible()
    assert 10 < rows.count() <= 60, rows.count()
    first = rows.first.inner_text()
    step1.locator("[data-testid='rlm-row-window']").evaluate("el => { el.scrollTop = el.scrollHeight / 2; }")
    expect(rows.first).not_to_have_text(first)  # scrolled: other rows, as many
    assert 10 < rows.count() <= 60, rows.count()
    shot(page, f"many-{lab.comms}-1-done")
    # no frame-blocking work beyond what one batch of 100 ms worth of events costs
    assert max(long_tasks, default=0) < 300, sorted(long_tasks)[-5:]
