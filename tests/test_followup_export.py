"""A follow-up and the questions before it: exported as one notebook that replays (Run All, no model,
in another folder) and resumed in a fresh kernel with the earlier questions' variables rebuilt."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from test_export_support import comparable, recorded_cells, step_cells
from test_followup import CONTEXT, ROOT, script

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.api import aresume
from rlm_kernel.engine.executor import HeadlessExecutor
from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.export import export_run
from rlm_kernel.kernel.runs import run_markdown
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

Q1 = ["```repl\nwords = context.split()\ncounts = {w: words.count(w) for w in set(words)}\n"
      "note = llm_query('Describe ' + str(len(words)) + ' words')\nprint(sorted(counts.items()), note)\n```",
      "FINAL_VAR(counts)"]
# Every cell of the follow-up uses what the first question's cells made (counts, note).
Q2 = ["```repl\ntop = max(counts, key=counts.get)\nwhy = llm_query('Why is ' + top + ' common?')\n"
      "print(top, counts[top], why)\n```",
      "```repl\nprint(top.upper(), note)\n```",
      "FINAL(top)"]


def sub(request) -> str:
    return f"Answer about: {request.last_user_text()[:40]}"


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        s.route(root=script(Q1, Q2), sub=sub)
        yield s


def two_questions(srv: FakeAnthropic, runs: Path):
    first = rlm("How often does each word occur?", context=CONTEXT, provider="anthropic", base_url=srv.base_url,
                api_key="k", runs_dir=str(runs), protocol="fences", max_retries=0)
    second = first.ask("Which word is the most common?", api_key="k")
    assert first.status == "done" and second.status == "done" and second.answer == "alpha", second.reason
    return first, second


def test_a_follow_up_exports_with_the_question_before_it_and_replays_elsewhere(srv, tmp_path, kernels) -> None:
    first, second = two_questions(srv, tmp_path / "runs")
    path = second.export(tmp_path / "nb" / "follow.ipynb")
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    heads = [c.source.splitlines()[0] for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "question"]
    assert heads == ["## Question 1: How often does each word occur?", "## Question 2: Which word is the most common?"]
    assert "Follow-up to: How often does each word occur?" in nb.cells[0].source
    runs_of_steps = [c.metadata.rlm.run_id for c in step_cells(nb)]
    assert runs_of_steps == [first.run_id, second.run_id, second.run_id]  # the earlier question's cells first
    recording = [json.loads(line) for line in (path.parent / "follow.rlm.jsonl").read_text().splitlines()]
    answered = {e["response"] for e in recording if e["type"] == ev.SUBCALL_FINISHED}
    assert answered == {"Answer about: Describe 180 words", "Answer about: Why is alpha common?"}

    want = [comparable(recorded_cells(log)[key]["outputs"]) for log, key in
            [(first.log_path, (1, 1)), (second.log_path, (1, 1)), (second.log_path, (2, 1))]]
    assert "ALPHA Answer about: Describe 180 words" in str(want[2])
    moved = tmp_path / "elsewhere"  # the notebook and the files it names, without the runs dir
    shutil.copytree(path.parent, moved)
    shutil.rmtree(tmp_path / "runs")
    executed = nbformat.read(moved / "follow.ipynb", as_version=4)
    km = KernelManager(kernel_name=executed.metadata.kernelspec.name, kernel_spec_manager=kernels)
    NotebookClient(executed, km=km, timeout=60, resources={"metadata": {"path": str(moved)}}).execute()
    assert [comparable(c.outputs) for c in step_cells(executed)] == want


def test_a_missing_earlier_log_is_named_in_one_line(srv, tmp_path) -> None:
    first, second = two_questions(srv, tmp_path / "runs")
    first.log_path.unlink()
    path = export_run(second.log_path, tmp_path / "nb")
    meta = nbformat.read(path, as_version=4).metadata.rlm
    assert len(meta.missing_logs) == 1
    assert f"({first.run_id}.jsonl) is not in {tmp_path / 'runs'}" in meta.missing_logs[0]
    assert "\n" not in meta.missing_logs[0]
    assert "Follow-up to: How often" in run_markdown(RunLog.read(second.log_path))


def test_resume_rebuilds_the_earlier_questions_in_a_fresh_kernel(tmp_path: Path) -> None:
    """Both questions stop at a one-step budget; each resumes in a kernel that never saw them."""
    with FakeAnthropic(root_model=ROOT) as srv, jupyter_sandbox(tmp_path / "j") as work:
        srv.route(root=script(Q1, Q2), sub=sub)
        setup = f"%rlm config base_url={srv.base_url} provider=anthropic protocol=fences\ncontext = {CONTEXT!r}"
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as k:
            k.run(setup)
            one = k.run("%%rlm --max-iterations 1\nHow often does each word occur?", timeout=120)
            two = k.run("%%rlm --continue --max-iterations 1\nWhich word is the most common?", timeout=120)
            assert one.status == "ok" and two.status == "ok", two.text
        logs = {(log.started() or {}).get("question"): log for log in list_runs(work / "rlm_runs")}
        follow = logs["Which word is the most common?"]
        assert follow.status == "budget" and (follow.started() or {}).get("continues")
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as fresh:
            fresh.run(setup)
            resumed = fresh.run(f"%rlm resume {follow.root_run_id} --max-iterations 5", timeout=120)
            check = fresh.run("print(_.answer, sorted(counts), top)")
        assert resumed.status == "ok", resumed.text
        assert "ALPHA Answer about: Describe 180 words" in resumed.tree_text  # note (question 1) and top (question 2)
        assert "alpha ['alpha', 'beta', 'gamma'] alpha" in check.text
        assert RunLog.read(follow.path).status == "done"
        earlier = logs["How often does each word occur?"]
        with KernelSession(work, env={"ANTHROPIC_API_KEY": "k"}) as again:
            again.run(setup)
            resumed = again.run(f"%rlm resume {earlier.root_run_id} --max-iterations 5", timeout=120)
        assert resumed.status == "ok", resumed.text
        assert RunLog.read(earlier.path).status == "done"


def test_an_earlier_questions_final_in_code_does_not_answer_the_resumed_follow_up(tmp_path: Path) -> None:
    """Rebuilding question 1 runs its FINAL_VAR cell again; the resumed follow-up must still ask its model."""
    q1 = ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\nFINAL_VAR('counts')\n```"]
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=script(q1, [*Q2[:1], "```repl\nprint(top.upper())\n```", "FINAL(top)"]), sub=sub)
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                    protocol="fences", max_retries=0)
        first = rlm("How often?", context=CONTEXT, **opts)
        stopped = first.ask("Which is most common?", api_key="k", max_iterations=1)
        assert first.status == "done" and stopped.status == "budget"
        resumed = asyncio.run(aresume(stopped.log_path, api_key="k", base_url=srv.base_url, max_iterations=5))
    assert resumed.status == "done" and resumed.answer == "alpha", (resumed.status, resumed.answer)


def test_a_follow_up_about_another_input_binds_it_in_its_section(tmp_path: Path, kernels) -> None:
    """`rlm(q, context=other, continue_from=r)`: the section of the follow-up loads its own input."""
    q1 = ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\nprint(len(counts))\n```",
          "FINAL_VAR(counts)"]
    q2 = ["```repl\nprint(len(context.split()), sorted(counts))\n```", "FINAL(ok)"]
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=script(q1, q2), sub=sub)
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                    protocol="fences", max_retries=0)
        first = rlm("How often?", context=CONTEXT, **opts)
        second = rlm("And here?", context="one two three " * 2_000, continue_from=first, **opts)
    assert second.status == "done", second.reason
    path = second.export(tmp_path / "nb" / "other.ipynb")
    nb = nbformat.read(path, as_version=4)
    assert [c.metadata.rlm.get("question") for c in nb.cells if c.metadata.get("rlm", {}).get("role") == "context"] \
        == [None, 2]
    assert nb.metadata.rlm.files == ["other.rlm.jsonl", "other-q2.context.txt"]  # too big to inline
    want = [comparable(recorded_cells(log)[(1, 1)]["outputs"]) for log in (first.log_path, second.log_path)]
    assert "6000 ['alpha', 'beta', 'gamma']" in str(want[1])
    NotebookClient(nb, km=KernelManager(kernel_name="rlm", kernel_spec_manager=kernels), timeout=60,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    assert [comparable(c.outputs) for c in step_cells(nb)] == want


def test_resuming_a_follow_up_whose_earlier_log_is_gone_says_which(tmp_path: Path) -> None:
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=script(Q1, Q2), sub=sub)
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                    protocol="fences", max_retries=0)
        first = rlm("How often?", context=CONTEXT, **opts)
        stopped = first.ask("Which?", api_key="k", max_iterations=1)
    first.log_path.unlink()
    with pytest.raises(FileNotFoundError, match=rf"cannot rebuild the namespace: .*\({first.run_id}\.jsonl\) is not"):
        asyncio.run(aresume(stopped.log_path, api_key="k", base_url="http://127.0.0.1:9"))


def test_resume_rebuilds_an_earlier_question_on_its_own_input(tmp_path: Path) -> None:
    """Question 2 was asked about another input; rebuilding question 1 must use question 1's."""
    q1 = ["```repl\ncounts = {w: context.split().count(w) for w in set(context.split())}\nprint(len(counts))\n```",
          "FINAL_VAR(counts)"]
    q2 = ["```repl\nn = len(context.split())\nprint(n)\n```", "```repl\nprint(sorted(counts), n)\n```", "FINAL(n)"]
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=script(q1, q2), sub=sub)
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path / "runs"),
                    protocol="fences", max_retries=0)
        first = rlm("How often?", context=CONTEXT, **opts)
        stopped = rlm("And here?", context="one two three", continue_from=first, max_iterations=1, **opts)
        assert stopped.status == "budget"
        executor = HeadlessExecutor()
        resumed = asyncio.run(aresume(stopped.log_path, executor=executor, api_key="k", max_iterations=5))
    assert resumed.status == "done" and resumed.answer == "3"
    assert sorted(executor.namespace["counts"]) == ["alpha", "beta", "gamma"]
    assert executor.namespace["context"] == "one two three"
