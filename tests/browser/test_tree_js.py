"""widgets/tree.js on its own in Chromium, no JupyterLab: a stand-in model delivers the kernel's
messages, so the store's protocol rules (reset, batch numbers, gaps), the DOM it builds and its
safety helpers (Markdown, HTML sanitizing) are checked quickly and precisely."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from labkit import shot

pytestmark = pytest.mark.browser

WIDGETS = Path(__file__).resolve().parents[2] / "widgets"

HARNESS = """async (staticHtml) => {
  const mod = await import("/tree.js");
  const listeners = {};
  const sent = [];
  const state = { key: "k-" + Math.random(), header: { question: "How many widgets?", max_iterations: 9 },
                  static_html: staticHtml };
  const model = {
    get: (k) => state[k], set: (k, v) => { state[k] = v; }, save_changes() {},
    send: (m) => sent.push(JSON.parse(JSON.stringify(m))),
    on: (n, cb) => (listeners[n] ??= []).push(cb),
    off: (n, cb) => { listeners[n] = (listeners[n] || []).filter((x) => x !== cb); },
  };
  mod.default.initialize({ model });
  const el = document.createElement("div");
  document.body.append(el);
  mod.default.render({ model, el });
  window.rlm = { mod, sent, state, deliver: (msg) => (listeners["msg:custom"] || []).forEach((cb) => cb(msg)) };
}"""


def load_tree(page: Any, static_html: str = "") -> Any:
    """A page serving tree.js and tree.css with one widget rendered on a stand-in model."""
    def serve(route: Any) -> None:
        name = route.request.url.rsplit("/", 1)[-1] or "index.html"
        if name == "tree.js":
            route.fulfill(body=(WIDGETS / "tree.js").read_text(), content_type="text/javascript")
        else:
            css = (WIDGETS / "tree.css").read_text()
            route.fulfill(body=f"<!doctype html><html><head><style>{css}</style></head><body></body></html>",
                          content_type="text/html")

    page.route("http://rlm.test/**", serve)
    page.goto("http://rlm.test/index.html")
    page.evaluate(HARNESS, static_html)
    return page


@pytest.fixture
def tree(page: Any) -> Any:
    return load_tree(page)


def deliver(page: Any, msg: dict[str, Any]) -> None:
    page.evaluate("(m) => window.rlm.deliver(m)", msg)


def sent(page: Any) -> list[dict[str, Any]]:
    return page.evaluate("window.rlm.sent")


T0 = time.time()


def item(type_: str, run_id: str = "root", **fields: Any) -> dict[str, Any]:
    return {"type": type_, "run_id": run_id, "t": T0, **fields}


def base_items() -> list[dict[str, Any]]:
    return [
        item("run_started", question="How many widgets?", model="m-root", sub_model="m-sub",
             options={"max_iterations": 9}),
        item("turn_started", step=1),
        item("turn_delta", step=1, text="Let me **look**.\n```repl\nx = llm_query('hi')\n```"),
        item("turn_finished", step=1, usage={"input_tokens": 100, "output_tokens": 20, "cache_read_tokens": 7}),
        item("cell_started", step=1, index=1, code="x = llm_query('hi')", edited=False),
        item("subcall_started", step=1, id="a", kind="llm", model="m-sub", prompt="hi", prompt_chars=2),
        item("subcall_finished", step=1, id="a", kind="llm", model="m-sub", response="hello",
             response_chars=5, usage={"input_tokens": 3, "output_tokens": 1}, latency=0.2),
        item("subcall_started", step=1, id="b", kind="rlm", model="m-root", prompt="go deeper", prompt_chars=9),
        item("run_started", run_id="kid", question="go deeper", depth=1, parent_run_id="root",
             parent_subcall_id="b"),
        item("turn_started", run_id="kid", step=1),
    ]


def test_hello_then_reset_builds_the_tree_with_a_live_nested_child(tree: Any) -> None:
    assert sent(tree) == [{"kind": "hello"}]
    deliver(tree, {"kind": "reset", "n": 1, "items": base_items(), "now": time.time(), "finished": False})
    assert tree.locator("[data-testid='rlm-status']").inner_text() == "running"
    meta = tree.locator(".rlm-meta").inner_text()
    assert "step 1 of 9" in meta and "2 sub-calls (1 running)" in meta and "tokens 103 in · 21 out · 7 cached" in meta
    step = tree.locator(".rlm-tree > [data-testid='rlm-step-node'][data-step='1']")
    assert "rlm-open" in step.get_attribute("class")  # the current step is open
    assert step.locator("strong").inner_text() == "look"  # Markdown
    assert step.locator("[data-testid='rlm-subcall']").count() == 2
    # the rlm_query sub-call holds the child's own tree, open while the child runs
    assert step.locator("[data-kind='rlm'] [data-testid='rlm-step-node'][data-step='1']").count() == 1
    shot(tree, "js-1-live-child", tree.locator("[data-testid='rlm-run']"))


def test_batches_apply_in_order_and_a_gap_asks_for_everything_again(tree: Any) -> None:
    deliver(tree, {"kind": "reset", "n": 4, "items": base_items()[:2], "now": time.time()})
    deliver(tree, {"kind": "batch", "n": 3, "items": [item("turn_delta", step=1, text="OLD ")], "now": time.time()})
    deliver(tree, {"kind": "batch", "n": 5, "items": [item("turn_delta", step=1, text="Fresh")], "now": time.time()})
    step = tree.locator(".rlm-tree > [data-step='1'] .rlm-turn")
    assert step.inner_text().strip() == "Fresh"  # batch 3 was already in the reset
    deliver(tree, {"kind": "batch", "n": 7, "items": [item("turn_delta", step=1, text=" lost")], "now": time.time()})
    assert sent(tree)[-1] == {"kind": "hello"}
    assert "lost" not in step.inner_text()


def test_finished_steps_collapse_and_expand_all_opens_them(tree: Any) -> None:
    items = [*base_items()[:8], item("subcall_finished", step=1, id="b", kind="rlm", response="deep", usage={}),
             item("cell_finished", step=1, index=1, outputs=[{"output_type": "stream", "name": "stdout",
                                                             "text": "x\n"}]),
             item("turn_started", step=2), item("turn_finished", step=2, text="FINAL(12)", usage={}),
             item("run_finished", status="done", answer="There are **12**.", usage={}, cost=0.01, elapsed=3.5)]
    deliver(tree, {"kind": "reset", "n": 1, "items": items, "now": time.time(), "finished": True})
    assert tree.locator(".rlm-tree > .rlm-step.rlm-open").count() == 0
    assert tree.locator("[data-testid='rlm-answer'] strong").inner_text() == "12"
    assert tree.locator("[data-testid='rlm-pause']").is_disabled()
    assert "$0.0100" in tree.locator(".rlm-meta").inner_text() and "3.5 s" in tree.locator(".rlm-meta").inner_text()
    tree.locator("[data-testid='rlm-expand-all']").click()
    assert tree.locator(".rlm-tree > .rlm-step.rlm-open").count() == 2
    # prose code blocks point at the cell that shows them, rather than repeating the code
    assert tree.locator(".rlm-tree > [data-step='1'] .rlm-chip").count() == 1
    tree.locator("[data-testid='rlm-collapse-all']").click()
    assert tree.locator(".rlm-tree > .rlm-step.rlm-open").count() == 0


def test_paused_on_a_pending_cell_the_edit_is_sent_before_resume(tree: Any) -> None:
    items = [*base_items()[:4], item("state", state="paused"),
             item("pending", step=1, index=1, code="x = llm_query('hi')")]
    deliver(tree, {"kind": "reset", "n": 1, "items": items, "now": time.time()})
    editor = tree.locator("[data-testid='rlm-cell-editor']")
    assert editor.is_visible() and editor.input_value() == "x = llm_query('hi')"
    assert tree.locator("[data-testid='rlm-resume']").is_enabled()
    assert tree.locator("[data-testid='rlm-pause']").is_disabled()
    editor.fill("x = 'edited'")
    tree.locator("[data-testid='rlm-resume']").click()
    assert sent(tree)[-2:] == [{"kind": "edit", "code": "x = 'edited'"}, {"kind": "control", "action": "resume"}]
    assert tree.locator("[data-testid='rlm-status']").inner_text() == "running"  # said at once
    deliver(tree, {"kind": "batch", "n": 2, "now": time.time(), "items": [
        item("state", state="running"),
        item("cell_started", step=1, index=1, code="x = 'edited'", edited=True, original_code="x = llm_query('hi')")]})
    assert not editor.is_visible()
    cell = tree.locator(".rlm-tree > [data-step='1'] .rlm-cell")
    assert cell.locator("[data-testid='rlm-cell-code']").inner_text().strip() == "x = 'edited'"
    assert cell.locator(".rlm-badge-edit").inner_text() == "edited by you"


def test_pause_says_pausing_at_once(tree: Any) -> None:
    deliver(tree, {"kind": "reset", "n": 1, "items": base_items()[:2], "now": time.time()})
    tree.locator("[data-testid='rlm-pause']").click()
    assert tree.locator("[data-testid='rlm-status']").inner_text() == "pausing…"
    assert tree.locator("[data-testid='rlm-pause']").inner_text() == "pausing…"
    assert sent(tree)[-1] == {"kind": "control", "action": "pause"}


def test_a_step_that_runs_again_after_resume_replaces_its_old_attempt(tree: Any) -> None:
    items = [*base_items()[:5], item("run_finished", status="stopped", answer="", usage={}),
             item("run_resumed", from_step=0, rebuilt=True), item("turn_started", step=1),
             item("turn_delta", step=1, text="Second try")]
    deliver(tree, {"kind": "reset", "n": 1, "items": items, "now": time.time()})
    steps = tree.locator(".rlm-tree > [data-testid='rlm-step-node']")
    assert steps.count() == 1 and "Second try" in steps.inner_text() and "look" not in steps.inner_text()
    assert tree.locator("[data-testid='rlm-status']").inner_text() == "running"
    assert not tree.locator("[data-testid='rlm-answer']").is_visible()


def test_a_thousand_subcalls_in_one_batch_render_quickly(tree: Any) -> None:
    deliver(tree, {"kind": "reset", "n": 1, "items": base_items()[:5], "now": time.time()})
    many = []
    for i in range(1000):
        many.append(item("subcall_started", step=1, id=f"s{i}", kind="llm", model="m", prompt=f"p{i}", prompt_chars=4))
        many.append(item("subcall_finished", step=1, id=f"s{i}", kind="llm", model="m", response="r",
                         response_chars=1, usage={"input_tokens": 1, "output_tokens": 1}, latency=0.1))
    ms = tree.evaluate("(m) => { const t = performance.now(); window.rlm.deliver(m); return performance.now() - t; }",
                       {"kind": "batch", "n": 2, "items": many, "now": time.time()})
    assert "1,000 sub-calls" in tree.locator(".rlm-meta").inner_text()
    group = tree.locator(".rlm-tree > [data-step='1'] .rlm-group-head")
    assert "1,000 sub-calls" in group.inner_text()
    assert tree.locator("[data-testid='rlm-subcall']").count() == 0  # a long list starts closed
    assert ms < 500, f"applying 2,000 events took {ms:.0f} ms"
    group.click()
    assert tree.locator("[data-testid='rlm-subcall']").count() == 1000


def test_a_message_batch_shows_its_progress_on_its_cell(tree: Any) -> None:
    deliver(tree, {"kind": "reset", "n": 1, "items": [*base_items()[:5], item(
        "batch_created", step=1, batch="b1", api_batch_id="msgbatch_1", model="m-sub", count=500)],
        "now": time.time()})
    badge = tree.locator(".rlm-tree > [data-step='1'] [data-testid='rlm-batch-progress']")
    assert badge.inner_text() == "Message Batch · 500 processing"
    deliver(tree, {"kind": "batch", "n": 2, "now": time.time(), "items": [item(
        "batch_progress", step=1, batch="b1", status="in_progress",
        counts={"processing": 120, "succeeded": 378, "errored": 2, "canceled": 0, "expired": 0})]})
    assert badge.inner_text() == "Message Batch · 120 processing · 378 succeeded · 2 errored"
    deliver(tree, {"kind": "batch", "n": 3, "now": time.time(), "items": [
        item("cell_finished", step=1, index=1, outputs=[], duration=0.5, timed_out=True),
        item("batch_finished", step=1, batch="b1", status="ended", error=None,
             counts={"processing": 0, "succeeded": 498, "errored": 2, "canceled": 0, "expired": 0})]})
    assert badge.inner_text() == "Message Batch · ended · 498 succeeded · 2 errored"  # still on its cell
    shot(tree, "js-batch-progress", tree.locator(".rlm-tree > [data-step='1']"))


def test_long_values_are_fetched_on_demand(tree: Any) -> None:
    items = [*base_items()[:5],
             item("subcall_started", step=1, id="big", kind="llm", model="m", prompt="P" * 240, prompt_chars=9000),
             item("cell_finished", step=1, index=1, outputs=[{"output_type": "stream", "name": "stdout",
                                                             "text": "head", "cut": 9000}])]
    deliver(tree, {"kind": "reset", "n": 1, "items": items, "now": time.time()})
    tree.locator("[data-testid='rlm-show-all']").click()
    req = sent(tree)[-1]
    assert {k: req[k] for k in ("kind", "what", "run_id", "step", "index", "n")} == \
        {"kind": "fetch", "what": "output", "run_id": "root", "step": 1, "index": 1, "n": 0}
    deliver(tree, {"kind": "fetched", "req": req["req"], "value": {"output_type": "stream", "name": "stdout",
                                                                   "text": "head and the whole tail"}})
    assert "the whole tail" in tree.locator(".rlm-outputs").inner_text()
    tree.locator("[data-testid='rlm-subcall'] .rlm-sub-head").click()
    req = sent(tree)[-1]
    assert req["what"] == "prompt" and req["id"] == "big"


@pytest.mark.parametrize("html, gone, kept", [
    ('<img src=x onerror="alert(1)"><b>ok</b>', "onerror", "<b>ok</b>"),
    ('<a href="java\tscript:alert(1)">x</a>', "script:", ">x</a>"),
    ('<a href="https://example.org">x</a>', "", 'href="https://example.org"'),
    ("<svg><animate attributeName=href to=javascript:alert(1) /><a><text>t</text></a></svg>", "animate", "<text>"),
    ("<script>alert(1)</script><table><tr><td>cell</td></tr></table>", "script", "<td>cell</td>"),
    ('<iframe srcdoc="<script>1</script>"></iframe><p>after</p>', "iframe", "<p>after</p>"),
])
def test_generated_html_is_sanitized(tree: Any, html: str, gone: str, kept: str) -> None:
    out = tree.evaluate("(h) => window.rlm.mod.sanitizeHtml(h)", html)
    assert kept in out
    if gone:
        assert gone not in out


def test_markdown_escapes_html_and_only_links_to_http(tree: Any) -> None:
    out = tree.evaluate("(s) => window.rlm.mod.markdownToHtml(s)",
                        "# Title\n<script>x</script> **b** [ok](https://a.org) [bad](javascript:alert(1))\n"
                        "```python\nprint('hi')  # c\n```\n- one\n- two")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert '<a href="https://a.org"' in out and 'href="javascript' not in out
    assert '<span class="rlm-hl-builtin">print</span>' in out and "rlm-hl-comment" in out
    assert "<ul><li>one</li><li>two</li></ul>" in out and "<strong>b</strong>" in out


def test_ansi_colours_become_spans(tree: Any) -> None:
    out = tree.evaluate("(s) => window.rlm.mod.ansiToHtml(s)", "\x1b[0;31mZeroDivisionError\x1b[0m: <x>")
    assert out == '<span class="rlm-ansi-red">ZeroDivisionError</span>: &lt;x&gt;'


def test_without_a_kernel_the_saved_static_tree_is_shown(page: Any) -> None:
    load_tree(page, static_html='<div data-testid="rlm-answer">saved answer</div>')
    page.locator(".rlm-static-box [data-testid='rlm-answer']").wait_for(timeout=5_000)
    assert "No kernel is attached" in page.locator(".rlm-static-box").inner_text()
