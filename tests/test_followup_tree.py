"""A follow-up's run tree without a browser: the chain of earlier questions in the static HTML (what
nbconvert, VS Code and a notebook without the extension show), in the view's wire form, and the
"continued in the next run" note on the earlier run's tree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import comm
import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.record import RunLog
from rlm_kernel.testing.fake_anthropic import FakeAnthropic
from rlm_kernel.widget import RunView, render_static_html
from rlm_kernel.widget.compact import EARLIER_ANSWER, saved_copy, wire_item
from rlm_kernel.widget.view import RUN_MIME, saved_items

ROOT = "claude-sonnet-5-5"
CONTEXT = "alpha beta alpha gamma alpha beta " * 30
Q1 = ["```repl\nwords = context.split()\ncounts = {w: words.count(w) for w in set(words)}\nprint(counts)\n```",
      "FINAL_VAR(counts)"]
Q2 = ["```repl\ntop = max(counts, key=counts.get)\nprint(top, counts[top])\n```", "FINAL(top)"]
Q3 = ["```repl\nshare = counts[top] / sum(counts.values())\nprint(share)\n```", "FINAL(half)"]


def script(*runs: list[str]) -> Any:
    """A root responder: which question this is, by how many earlier ones its first message lists."""

    def respond(request: Any) -> str:
        first = request["messages"][0]["content"]
        first = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        replies = runs[min(first.count("\nQuestion "), len(runs) - 1)]
        return replies[min((len(request["messages"]) + 1) // 2, len(replies)) - 1]

    return respond


class RecordingComm(comm.DummyComm):
    """Keeps what the view sends, as a front end listening on IOPub would get it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        self.sent.append({"msg_type": msg_type, "data": data})

    def custom(self) -> list[dict[str, Any]]:
        return [m["data"] for m in self.sent if m["msg_type"] == "comm_msg"]


@pytest.fixture
def chain(tmp_path: Path) -> Any:
    """Three questions in a row on the fake server: the first and its two follow-ups."""
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=script(Q1, Q2, Q3), sub="sub")
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                    protocol="fences", model=ROOT)
        first = rlm("How often does each word occur?", context=CONTEXT, **opts)
        second = first.ask("Which word is the most common?", api_key="k")
        third = second.ask("What share of the words is it?", api_key="k")
        assert (first.status, second.status, third.status) == ("done", "done", "done")
        yield first, second, third


def section(html: str, testid: str) -> str:
    """The element with that data-testid, up to its closing tag (details or div or p)."""
    m = re.search(rf'<(\w+) data-testid="{testid}"[^>]*>', html)
    assert m, f"no {testid} in the HTML"
    end = html.index(f"</{m.group(1)}>", m.end())
    return html[m.start():end]


def test_the_static_tree_of_a_follow_up_lists_the_questions_it_continues(chain: Any) -> None:
    first, second, third = chain
    html = render_static_html(RunLog.read(third.log_path).events)
    box = section(html, "rlm-chain")
    assert box.startswith("<details")  # collapsed until opened
    summary = box[:box.index("</summary>")]
    assert "Continues 2 earlier questions" in summary
    assert f"{first.steps + second.steps} steps" in summary
    assert f"${first.cost + second.cost:,.4f}" in summary  # what the earlier questions cost together
    assert f"whole chain with this run ${first.cost + second.cost + third.cost:,.4f}" in summary
    questions = box.split('data-testid="rlm-chain-question"')[1:]
    assert len(questions) == 2
    assert "Question 1" in questions[0] and "How often does each word occur?" in questions[0]
    assert "alpha" in questions[0] and f"${first.cost:,.4f}" in questions[0]  # its answer and its cost
    assert "Question 2" in questions[1] and "Which word is the most common?" in questions[1]
    assert f"{second.steps} steps" in questions[1] and f"${second.cost:,.4f}" in questions[1]
    label = section(html, "rlm-followup-label")
    assert "Follow-up 3 of 3" in label and "this run's only" in label
    # the chain comes first, then the label, then this run's own steps; the header counts this run only
    assert html.index('data-testid="rlm-chain"') < html.index("rlm-followup-label") \
        < html.index('data-testid="rlm-step-node"')
    head = html[:html.index("<blockquote>")]
    assert f"cost ${third.cost:,.4f}" in head and "follow-up 3" in head
    assert "share = counts[top]" in html and "top = max(counts" not in html  # the earlier cells are not drawn


def test_a_run_that_is_no_follow_up_has_no_chain(chain: Any) -> None:
    first, _, _ = chain
    html = render_static_html(RunLog.read(first.log_path).events)
    assert "rlm-chain" not in html and "Follow-up" not in html and "rlm-continued" not in html


def test_the_view_gets_the_chain_compactly(chain: Any) -> None:
    _, second, third = chain
    started = RunLog.read(third.log_path).started()
    item = wire_item(started)
    assert item["continues"] == second.run_id
    assert [q["question"] for q in item["earlier"]] == ["How often does each word occur?",
                                                          "Which word is the most common?"]
    assert all("cells" not in q for q in item["earlier"])  # the model's account has the code; the tree does not
    assert item["earlier"][1]["cost"] == second.cost and item["earlier"][1]["steps"] == second.steps
    big = wire_item({**started, "earlier": [{**started["earlier"][0], "answer": "x" * 10_000}]})
    assert len(big["earlier"][0]["answer"]) == EARLIER_ANSWER + 1


def test_the_earlier_tree_says_a_follow_up_continued_it(chain: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    first, second, _ = chain
    view = RunView.from_log(first.log_path)
    assert "rlm-continued" not in view.static_html
    started = RunLog.read(second.log_path).started()
    view.mark_continued({**started, "continues": "some-other-run"})  # not this run's follow-up: nothing
    assert view.continued_by is None
    view.mark_continued(started)
    note = section(view.static_html, "rlm-continued")
    assert "Continued in the next run" in note and "Which word is the most common?" in note
    last = view.comm.custom()[-1]  # open views hear it at once
    assert last["kind"] == "batch" and [i["type"] for i in last["items"]] == ["continued"]
    assert last["items"][0]["by"] == second.run_id
    saved = saved_copy(view.journal.saved_items())
    assert saved[-1]["type"] == "continued"  # and the copy saved with the notebook keeps it
    assert saved_items(view.run_state())[-1]["question"] == "Which word is the most common?"
    assert RUN_MIME in view._bundle(view.static_html)


def test_a_follow_up_cell_in_a_kernel_marks_the_earlier_cell(tmp_path: Path) -> None:
    """%%rlm then %%rlm --continue in a real kernel: the first cell's output is updated in place."""
    from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox

    with FakeAnthropic(root_model=ROOT) as srv, jupyter_sandbox(tmp_path) as work:
        srv.route(root=script(Q1, Q2), sub="sub")
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as kernel:
            kernel.run(f"%rlm config base_url={srv.base_url} provider=anthropic model={ROOT} protocol=fences\n"
                       f"context = {CONTEXT!r}")
            assert kernel.run("%%rlm\nHow often does each word occur?", timeout=60).status == "ok"
            cell = kernel.run("%%rlm --continue\nWhich word is the most common?", timeout=60)
            assert cell.status == "ok", cell.text
        updates = [m for m in cell.messages if m["msg_type"] == "update_display_data"]
        notes = [m for m in updates if "Continued in the next run" in m["content"]["data"]["text/html"]]
        assert len(notes) == 1
        items = saved_items(notes[0]["content"]["data"][RUN_MIME])
        assert items[0]["question"] == "How often does each word occur?" and items[-1]["type"] == "continued"
        final = [m for m in updates if "Follow-up 2 of 2" in m["content"]["data"]["text/html"]]
        assert final, "the follow-up's own tree shows its chain"
        assert ev.RUN_STARTED in {i["type"] for i in saved_items(final[-1]["content"]["data"][RUN_MIME])}
