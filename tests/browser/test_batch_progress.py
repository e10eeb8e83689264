"""A Message Batch in a real JupyterLab: the tree shows its progress (processing / succeeded /
errored) while the run waits on it, then its end; Stop while waiting cancels it on the server. The
model and the Batches API are the loopback fake server, scripted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import ROOT, magic, open_notebook, run_cell, run_view, step_node

from rlm_kernel.testing import by_question
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.browser

BATCH = ["Asking every part at batch price.\n```repl\nimport json\n"
         "answers = llm_query_batched(['one', 'two', 'bad', 'three', 'four', 'five'], batch=True)\n"
         "print(json.dumps(answers))\n```", "FINAL(five answers and one error)"]
SLOW = ["A slow batch.\n```repl\nslow = llm_query_batched(['six', 'seven'], batch=True)\nprint(slow)\n```",
        "FINAL(never)"]


@pytest.fixture
def srv() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(root_model=ROOT) as s:
        s.route(root=by_question(BATCH, {"slow batch": SLOW}), sub=lambda r: "A:" + r.last_user_text())
        s.latency = lambda r: 0.3
        yield s


def test_a_message_batch_shows_its_progress_and_stop_cancels_it(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    tag = lab.comms
    srv.batches.duration = 6.0
    srv.inject(500, match=lambda r: r.last_user_text() == "bad", message="exploded")
    url = lab.notebook("batch.ipynb", ["%rlm config batch_poll=0.2\ncontext = 'parts'",
                                       magic(srv, "Ask every part at batch price."),
                                       magic(srv, "Ask in a slow batch.")])
    open_notebook(page, url)
    run_cell(page, 0, wait=True)
    run_cell(page, 1)
    run = run_view(page, 1)
    badge = run.locator("[data-testid='rlm-batch-progress']")
    # while the batch runs: requests still processing, some already answered, the badge marked live
    expect(badge).to_have_text(re.compile(r"^Message Batch · [1-5] processing · [1-5] succeeded"), timeout=30_000)
    expect(badge).to_have_class(re.compile("rlm-batch-live"))
    expect(run.locator("[data-testid='rlm-status']")).to_have_text("running")
    shot(page, f"batch-{tag}-1-processing", run)
    # when it is done: what succeeded and what errored, on the closed step's line, then on its cell
    expect(run.locator("[data-testid='rlm-answer']")).to_contain_text("five answers and one error", timeout=30_000)
    step1 = step_node(page, 1).first
    expect(step1.locator(".rlm-step-head [data-testid='rlm-batch-progress']")) \
        .to_have_text("Message Batch · ended · 5 succeeded · 1 errored")
    expect(badge).not_to_have_class(re.compile("rlm-batch-live"))
    step1.locator(".rlm-step-head").click()
    expect(badge).to_have_count(1)  # an open step shows it on the cell that sent it, not twice
    expect(step1.locator(".rlm-cell-head [data-testid='rlm-batch-progress']")) \
        .to_have_text("Message Batch · ended · 5 succeeded · 1 errored")
    expect(step1.locator(".rlm-outputs")).to_contain_text('"A:one", "A:two", "Error:')
    shot(page, f"batch-{tag}-2-ended", run)
    assert len(srv.batches.created) == 1 and srv.batches.cancels == 0

    # a batch that would take a minute: Stop while waiting cancels it on the server
    srv.batches.duration = 60.0
    run_cell(page, 2)
    slow = run_view(page, 2)
    slow_badge = slow.locator("[data-testid='rlm-batch-progress']")
    expect(slow_badge).to_have_text("Message Batch · 2 processing", timeout=30_000)
    slow.locator("[data-testid='rlm-stop']").click()
    expect(slow.locator("[data-testid='rlm-status']")).to_have_text("stopped", timeout=15_000)
    expect(slow_badge).to_have_text("Message Batch · canceled", timeout=15_000)
    expect(slow_badge).not_to_have_class(re.compile("rlm-batch-live"))
    expect(slow.locator("[data-testid='rlm-meta']")).to_contain_text("2 sub-calls (2 unfinished)")
    assert srv.batches.cancels == 1 and srv.batches.created[1].cancel_at is not None
    shot(page, f"batch-{tag}-3-canceled", slow)
    assert not page.console_errors, page.console_errors
