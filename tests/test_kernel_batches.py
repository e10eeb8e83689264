"""A Message Batch from `%%rlm` in a real kernel: killed mid-wait, `%rlm resume` in a new kernel
collects the batch the first one sent instead of sending the prompts again."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing import FakeAnthropic, Request

KEY = "sk-ant-test-batch-3c1d"
ASK = """```repl
answers = llm_query_batched(["alpha", "beta", "gamma"], batch=True)
print(json.dumps(answers))
```"""
DONE = "FINAL_VAR(answers)"


def by_turn(*replies: str) -> Callable[[Request], str]:
    def respond(request: Request) -> str:
        turn = (len(request["messages"]) + 1) // 2
        return replies[min(turn, len(replies)) - 1]

    return respond


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_kernel_loses_no_batch(tmp_path: Path) -> None:
    with FakeAnthropic() as fake, jupyter_sandbox(tmp_path) as work:
        fake.batches.duration = 3.0
        fake.route(root=by_turn("```repl\nimport json\n```", ASK, DONE), sub=lambda r: "A:" + r.last_user_text())
        setup = f"%rlm config base_url={fake.base_url} provider=anthropic batch_poll=0.05\ncontext = 'x ' * 10"
        first = KernelSession(work, env={"ANTHROPIC_API_KEY": KEY})
        try:
            first.run(setup)
            first.execute("%%rlm\nAsk the three words at batch price.")

            def created() -> bool:
                logs = list_runs(work / "rlm_runs")
                return bool(logs) and any(e["type"] == "batch_created" for e in logs[0].events)

            wait_until(created, "the batch_created event on disk")
        finally:
            first.kill_hard()
        log = list_runs(work / "rlm_runs")[0]
        assert log.status == "crashed" and len(fake.batches.created) == 1

        with KernelSession(work, env={"ANTHROPIC_API_KEY": KEY}) as second:
            cell = second.run(f"{setup}\n%rlm resume {log.root_run_id}", timeout=90)
            assert cell.status == "ok", cell.text
            assert json.dumps(["A:alpha", "A:beta", "A:gamma"]) in cell.tree_text  # printed by the cell, in the tree
        assert len(fake.batches.created) == 1  # collected, not sent again
        assert RunLog.read(log.path).status == "done"


def test_the_magic_takes_the_batch_options(tmp_path: Path) -> None:
    with FakeAnthropic() as fake, jupyter_sandbox(tmp_path) as work:
        fake.batches.duration = 0.1
        fake.route(root=by_turn("```repl\nimport json\nr = llm_query_batched(['a', 'b'])\nprint(json.dumps(r))\n```",
                                "FINAL_VAR(r)"), sub=lambda r: "A:" + r.last_user_text())
        with KernelSession(work, env={"ANTHROPIC_API_KEY": KEY}) as kernel:
            kernel.run(f"%rlm config base_url={fake.base_url} provider=anthropic batch_poll=0.05\ncontext = 'x'")
            cell = kernel.run("%%rlm --batch-api auto --batch-threshold 2\nAsk two.", timeout=60)
            assert cell.status == "ok", cell.text
            assert '["A:a", "A:b"]' in cell.tree_text
        assert len(fake.batches.created) == 1


def _open_run(kernel: KernelSession, question: str) -> tuple[str, str]:
    """Start a %%rlm cell; (its msg id, its run view's comm id) once the view shows."""
    msg_id = kernel.execute(f"%%rlm\n{question}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        msg = kernel.kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "display_data":
            comm_id = msg["content"]["data"].get("application/vnd.rlm.run+json", {}).get("comm_id")
            if comm_id:
                return msg_id, comm_id
    raise AssertionError("the run view was not shown")


@contextlib.contextmanager
def _waiting_on_a_batch(tmp_path: Path, duration: float
                        ) -> Iterator[tuple[FakeAnthropic, KernelSession, Path, str, str]]:
    """A %%rlm cell in a real kernel whose second step has sent a Message Batch taking `duration`
    seconds: (the fake, the kernel, its folder, the cell's msg id, its run view's comm id)."""
    with FakeAnthropic() as fake, jupyter_sandbox(tmp_path) as work:
        fake.batches.duration = duration
        fake.route(root=by_turn("```repl\nimport json\n```", ASK, DONE), sub=lambda r: "A:" + r.last_user_text())
        with KernelSession(work, env={"ANTHROPIC_API_KEY": KEY}) as kernel:
            kernel.run(f"%rlm config base_url={fake.base_url} provider=anthropic batch_poll=0.05\ncontext = 'x'")
            msg_id, comm_id = _open_run(kernel, "Ask the three words at batch price.")
            wait_until(lambda: len(fake.batches.created) == 1, "the batch to be created")
            yield fake, kernel, work, msg_id, comm_id


def _click(kernel: KernelSession, comm_id: str, action: str) -> None:
    """What the tree's button sends."""
    kernel.kc.shell_channel.send(kernel.kc.session.msg(
        "comm_msg", {"comm_id": comm_id, "data": {"kind": "control", "action": action}}))


def test_stop_from_the_tree_reaches_a_cell_waiting_on_a_batch(tmp_path: Path) -> None:
    """The generated cell holds the main shell while it waits for the batch; the tree's Stop still
    gets through (the run views' messages go to a subshell) and the batch is canceled."""
    with _waiting_on_a_batch(tmp_path, duration=120.0) as (fake, kernel, _, msg_id, comm_id):
        time.sleep(0.5)  # the cell is now waiting in llm_query_batched
        t0 = time.monotonic()
        _click(kernel, comm_id, "stop")
        wait_until(lambda: fake.batches.cancels == 1, "the batch to be canceled", timeout=20)
        assert time.monotonic() - t0 < 10
        cell = kernel.collect(msg_id, timeout=30)
        assert cell.status == "ok", cell.text
        assert "stopped" in cell.text
    assert fake.batches.created[0].cancel_at is not None


def test_pause_from_the_tree_holds_a_batch_cell_and_resume_finishes_it(tmp_path: Path) -> None:
    """Pause while the cell waits on the batch: the answers are held back when they come, the run
    says paused, and Resume carries on to the answer."""
    with _waiting_on_a_batch(tmp_path, duration=2.0) as (fake, kernel, work, msg_id, comm_id):
        _click(kernel, comm_id, "pause")
        time.sleep(4)  # the batch has ended meanwhile; the paused run holds its answers
        log = list_runs(work / "rlm_runs")[0]
        states = [e["state"] for e in log.events if e["type"] == "state"]
        assert states[-1] == "paused", states
        assert not any(e["type"] == "cell_finished" and e["step"] == 2 for e in log.events)
        _click(kernel, comm_id, "resume")
        cell = kernel.collect(msg_id, timeout=30)
        assert cell.status == "ok", cell.text
        assert json.dumps(["A:alpha", "A:beta", "A:gamma"]) in cell.tree_text
    assert fake.batches.cancels == 0
