"""Follow-up questions in the same REPL: `result.ask`, `rlm(continue_from=...)`, `%%rlm --continue`."""

from __future__ import annotations

from pathlib import Path

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine.record import RunLog
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing.fake_anthropic import FakeAnthropic, Request

ROOT = "claude-sonnet-5-5"
CONTEXT = "alpha beta alpha gamma alpha beta " * 30

Q1 = ["```repl\nwords = context.split()\ncounts = {w: words.count(w) for w in set(words)}\nprint(counts)\n```",
      "FINAL_VAR(counts)"]
# The follow-up builds on `counts` (made by the first run) instead of splitting the context again.
Q2 = ["```repl\ntop = max(counts, key=counts.get)\nprint(top, counts[top])\n```", "FINAL(top)"]


def first_message_text(request: Request) -> str:
    content = request["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def script(*runs: list[str]):
    """A root responder: the run is told by how many questions its first message lists."""

    def respond(request: Request) -> str:
        first = first_message_text(request)
        run = first.count("\nQuestion ")  # 0 for a fresh run, 1 for the first follow-up, ...
        turn = (len(request["messages"]) + 1) // 2
        replies = runs[min(run, len(runs) - 1)]
        return replies[min(turn, len(replies)) - 1]

    return respond


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


def test_result_ask_continues_in_the_same_repl(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.route(root=script(Q1, Q2), sub="sub")
    opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                protocol="fences")
    first = rlm("How often does each word occur?", context=CONTEXT, **opts)
    assert first.value == {"alpha": 90, "beta": 60, "gamma": 30}
    n_before = len(srv.requests)
    second = first.ask("Which word is the most common?", api_key="k")
    assert second.status == "done" and second.answer == "alpha"
    follow = next(r for r in srv.requests[n_before:] if r.model == ROOT)
    told = first_message_text(follow)
    assert "Question 1: How often does each word occur?" in told
    assert "Answer 1: {'alpha': 90" in told or "Answer 1: {" in told
    assert "counts = {w: words.count(w)" in told  # the code that ran, in short
    assert "counts (dict, 3 items)" in told  # the variables still there
    assert "Output of cell" not in told  # not the transcript
    started = RunLog.read(second.log_path).started()
    assert started["continues"] == first.run_id and started["earlier"][0]["question"].startswith("How often")


def test_a_chain_of_follow_ups_lists_every_question(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.route(root=script(Q1, Q2, ["FINAL(done)"]), sub="sub")
    opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                protocol="fences")
    third = rlm("Q1?", context=CONTEXT, **opts).ask("Q2?", api_key="k").ask("Q3?", api_key="k")
    told = first_message_text([r for r in srv.requests if r.model == ROOT][-1])
    assert "Question 1: Q1?" in told and "Question 2: Q2?" in told and "Answer 2: alpha" in told
    assert third.answer == "done"


def test_without_continue_a_run_starts_fresh(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.route(root=script(Q1, Q2), sub="sub")
    opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                protocol="fences")
    rlm("How often?", context=CONTEXT, **opts)
    fresh = rlm("Again, how often?", context=CONTEXT, **opts)  # a new REPL: counts is made again
    assert fresh.value == {"alpha": 90, "beta": 60, "gamma": 30}
    assert "continues" not in RunLog.read(fresh.log_path).started()


def test_kernel_continue_flag(tmp_path: Path) -> None:
    with FakeAnthropic(root_model=ROOT) as srv, jupyter_sandbox(tmp_path / "j") as work:
        srv.route(root=script(Q1, Q2), sub="sub")
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as k:
            k.run(f"%rlm config base_url={srv.base_url} provider=anthropic protocol=fences")
            nothing = k.run("context = 'x y'\n")
            early = k.run("%%rlm --continue\nWhich word?")
            k.run(f"context = {CONTEXT!r}")
            one = k.run("%%rlm\nHow often does each word occur?", timeout=120)
            two = k.run("%%rlm --continue\nWhich word is the most common?", timeout=120)
            check = k.run("print(_.answer, top, sorted(counts))")
    assert nothing.status == "ok"
    assert early.status == "error" and "no earlier run in this session" in early.text
    assert one.status == "ok" and two.status == "ok", two.text
    assert "alpha ['alpha', 'beta', 'gamma']" in check.text
