"""A follow-up (`%%rlm --continue`) in a real JupyterLab: its tree presents itself as the continuation
of the questions before it, and the earlier tree says it was continued. The model is the loopback fake
server, scripted."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from labkit import Lab, shot
from test_run_tree import ROOT, magic, open_notebook, run_cell, run_view

from rlm_kernel.testing import by_question
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

pytestmark = pytest.mark.browser

CONTEXT = "alpha beta alpha gamma alpha beta " * 30
Q1 = ["Counting.\n```repl\nwords = context.split()\ncounts = {w: words.count(w) for w in set(words)}\n"
      "print(counts)\n```", "FINAL(alpha 90, beta 60, gamma 30)"]
# the follow-up builds on `counts`, made by the first question's code
Q2 = ["Using the counts from before.\n```repl\ntop = max(counts, key=counts.get)\nprint(top, counts[top])\n```",
      "FINAL(alpha is the most common word)"]


@pytest.fixture
def srv() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(root_model=ROOT) as s:
        # a follow-up's first message lists the questions before it
        s.route(root=by_question(Q1, {"\nQuestion 1:": Q2}), sub=lambda r: "A:" + r.last_user_text())
        s.latency = lambda r: 0.3
        yield s


def cell_run(page: Any, n: int) -> Any:
    return page.locator(".jp-Notebook .jp-Cell").nth(n).locator("[data-testid='rlm-run']")


def test_a_follow_up_shows_the_chain_it_continues(lab: Lab, page: Any, srv: FakeAnthropic) -> None:
    from playwright.sync_api import expect

    tag = lab.comms
    url = lab.notebook("followup.ipynb", [f"context = {CONTEXT!r}",
                                          magic(srv, "How often does each word occur?"),
                                          magic(srv, "Which word is the most common?", "--continue")])
    open_notebook(page, url)
    run_cell(page, 0, wait=True)
    run_cell(page, 1, wait=True)
    first = run_view(page, 1)
    expect(first.locator("[data-testid='rlm-answer']")).to_contain_text("alpha 90")
    expect(first.locator("[data-testid='rlm-followup-label']")).to_be_hidden()  # the first question is no follow-up
    expect(first.locator("[data-testid='rlm-chain-toggle']")).to_be_hidden()
    run_cell(page, 2, wait=True)
    second = run_view(page, 2)
    expect(second.locator("[data-testid='rlm-answer']")).to_contain_text("alpha is the most common word")

    # the follow-up says where it stands, and that its header's figures are its own
    expect(second.locator("[data-testid='rlm-followup-label']")).to_have_text("Follow-up 2 of 2")
    expect(second.locator(".rlm-question")).to_have_text("Which word is the most common?")
    expect(second.locator("[data-testid='rlm-meta']")).to_contain_text("this run: 0 sub-calls")
    expect(second.locator("[data-testid='rlm-steps-label']")).to_contain_text("Follow-up 2: this run's steps")
    # the earlier question sits in a collapsed section above this run's steps
    toggle = second.locator("[data-testid='rlm-chain-toggle']")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(toggle).to_contain_text(re.compile(r"Continues 1 earlier question · 2 steps · \$\d+\.\d{4} · "
                                              r"whole chain with this run \$\d+\.\d{4}"))
    expect(second.locator("[data-testid='rlm-chain-question']")).to_have_count(0)
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    earlier = second.locator("[data-testid='rlm-chain-question']")
    expect(earlier).to_have_count(1)
    expect(earlier).to_contain_text("Question 1")
    expect(earlier.locator(".rlm-question")).to_have_text("How often does each word occur?")
    expect(earlier.locator(".rlm-chain-answer")).to_contain_text("alpha 90, beta 60, gamma 30")
    expect(earlier).to_contain_text(re.compile(r"2 steps · 0 sub-calls · \$\d+\.\d{4}"))
    # the chain comes before this run's steps, which are the follow-up's own
    box = second.locator(".rlm-chain-box").bounding_box()
    steps = second.locator(".rlm-tree > [data-testid='rlm-step-node']")
    expect(steps).to_have_count(2)
    assert box["y"] < steps.first.bounding_box()["y"]
    steps.first.locator(".rlm-step-head").click()
    expect(steps.first.locator("[data-testid='rlm-cell-code']")).to_contain_text("top = max(counts")
    expect(second.locator("[data-testid='rlm-cell-code']").filter(has_text="words = context.split()")).to_have_count(0)
    shot(page, f"followup-{tag}-1-chain", second)
    # keyboard: Enter on the toggle closes the section again
    toggle.focus()
    page.keyboard.press("Enter")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    expect(earlier).to_have_count(0)

    # the earlier cell's tree was told that a follow-up continued it
    note = first.locator("[data-testid='rlm-continued']")
    expect(note).to_have_text("Continued in the next run: “Which word is the most common?”")
    shot(page, f"followup-{tag}-2-earlier", first)

    # after a reload both come back as they were
    page.locator(".jp-Notebook").click()
    page.keyboard.press("Control+s")
    page.wait_for_timeout(500)
    page.reload()
    page.locator(".jp-Notebook").wait_for()
    expect(cell_run(page, 2).locator("[data-testid='rlm-followup-label']")).to_have_text("Follow-up 2 of 2",
                                                                                        timeout=30_000)
    expect(cell_run(page, 1).locator("[data-testid='rlm-continued']")).to_contain_text("Which word is the most common?")
    assert not page.console_errors, page.console_errors
