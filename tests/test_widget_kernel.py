"""The run widget's comm protocol against a real RLM kernel, driven by jupyter_client.

These send exactly what the browser sends (comm messages on the shell channel) while
`%%rlm` runs against the loopback fake server, so pause, edit, resume and stop are tested end to
end without a browser: model call in flight, kernel event loop, Steering, engine, run log."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from queue import Empty
from typing import Any

import pytest

from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing.fake_anthropic import FakeAnthropic
from rlm_kernel.widget.view import COMM_TARGET, RUN_MIME

ROOT = "claude-sonnet-5-5"


class WidgetDriver:
    """Reads one execute request's IOPub traffic, finds the run widget's comm, and talks to it."""

    def __init__(self, ks: KernelSession, msg_id: str) -> None:
        self.ks, self.msg_id = ks, msg_id
        self.comm_id: str | None = None
        self.custom: list[dict[str, Any]] = []
        self.iopub: list[dict[str, Any]] = []
        self.idle = False

    @property
    def items(self) -> list[dict[str, Any]]:
        return [i for m in self.custom if m["kind"] in ("batch", "reset") for i in m["items"]]

    def pump(self, until: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                kinds = [(m["kind"], [i["type"] for i in m.get("items", [])]) for m in self.custom]
                raise AssertionError(f"timed out; widget messages so far: {kinds}")
            try:
                msg = self.ks.kc.get_iopub_msg(timeout=0.1)
            except Empty:
                continue
            self.iopub.append(msg)
            kind, content = msg["msg_type"], msg["content"]
            if kind == "comm_open" and content["target_name"] == COMM_TARGET:
                self.comm_id = content["comm_id"]
            elif kind == "comm_msg" and content["comm_id"] == self.comm_id:
                self.custom.append(content["data"])
            elif kind == "status" and content["execution_state"] == "idle" \
                    and msg["parent_header"].get("msg_id") == self.msg_id:
                self.idle = True

    def send(self, content: dict[str, Any]) -> None:
        assert self.comm_id, "the run widget has not opened its comm yet"
        msg = self.ks.kc.session.msg("comm_msg", {"comm_id": self.comm_id, "data": content})
        self.ks.kc.shell_channel.send(msg)

    def has_item(self, type_: str, **fields: Any) -> bool:
        return any(i["type"] == type_ and all(i.get(k) == v for k, v in fields.items()) for i in self.items)

    def outputs(self, kind: str) -> list[dict[str, Any]]:
        return [m["content"] for m in self.iopub if m["msg_type"] == kind
                and m["parent_header"].get("msg_id") == self.msg_id]

    def text(self) -> str:
        """What the generated cells printed, as the tree shows it (their cell_finished outputs)."""
        return "".join(o.get("text", "") for i in self.items if i["type"] == "cell_finished"
                       for o in i["outputs"] if o["output_type"] == "stream")

    def cell_text(self) -> str:
        """What the notebook cell itself printed: its own stream outputs."""
        return "".join(c["text"] for c in self.outputs("stream"))


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    root = tmp_path_factory.mktemp("widget-kernel")
    with jupyter_sandbox(root) as work, \
            KernelSession(work, env={"ANTHROPIC_API_KEY": "test-key", "RLM_RUNS_DIR": str(root / "runs")}) as ks:
        assert ks.run("context = 'the widget count is 12'").status == "ok"
        yield ks


@pytest.fixture
def srv() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


def ask(ks: KernelSession, srv: FakeAnthropic, question: str = "How many widgets?") -> WidgetDriver:
    msg_id = ks.execute(f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT} --max-retries 1\n"
                        f"{question}")
    return WidgetDriver(ks, msg_id)


def root_user_texts(srv: FakeAnthropic) -> list[str]:
    out = []
    for r in srv.requests:
        if r.model == ROOT and r.status == 200:
            out.append(r.last_user_text())
    return out


def test_pause_during_a_model_call_then_edit_and_resume(kernel, srv):
    srv.route(root=["Let me count.\n```repl\nprint('model wrote this')\n```", "FINAL(12 widgets)"])
    srv.latency = 1.0  # the pause arrives while the first root call is in flight
    w = ask(kernel, srv)
    w.pump(lambda: w.comm_id is not None)
    w.send({"kind": "control", "action": "pause"})
    w.pump(lambda: w.has_item("pending"))
    pending = next(i for i in w.items if i["type"] == "pending")
    assert pending["code"].strip() == "print('model wrote this')" and pending["step"] == 1
    states = [i["state"] for i in w.items if i["type"] == "state"]
    assert states[:2] == ["pausing", "paused"]
    assert len(srv.requests) == 1, "the run went on while paused"

    w.send({"kind": "edit", "code": "print('a person wrote this')"})
    w.send({"kind": "control", "action": "resume"})
    w.pump(lambda: w.idle)

    started = next(i for i in w.items if i["type"] == "cell_started")
    assert started["edited"] is True and started["code"] == "print('a person wrote this')"
    assert "a person wrote this" in w.text() and "model wrote this" not in w.text()
    assert w.cell_text() == "", "generated output was shown twice: in the tree and flattened below it"
    told = root_user_texts(srv)[-1]
    assert "edited" in told and "print('a person wrote this')" in told
    final = next(i for i in w.items if i["type"] == "run_finished")
    assert final["status"] == "done" and final["answer"] == "12 widgets"
    # the output carries a static copy, replaced by the finished tree when the run ends
    shown = w.outputs("display_data")[0]
    assert shown["data"][RUN_MIME]["comm_id"] == w.comm_id and "text/html" in shown["data"]
    updated = w.outputs("update_display_data")[-1]
    assert updated["transient"]["display_id"] == shown["transient"]["display_id"]
    assert "12 widgets" in updated["data"]["text/html"] and "edited by a person" in updated["data"]["text/html"]


def test_stop_mid_run_ends_with_the_best_partial_answer(kernel, srv):
    step = "```repl\nimport time\ntime.sleep(0.2)\nanswer['content'] = 'partial: 7 so far'\nprint('working')\n```"
    srv.route(root=[step] * 30)
    srv.latency = 0.3
    w = ask(kernel, srv)
    w.pump(lambda: w.has_item("cell_finished"))
    w.send({"kind": "control", "action": "stop"})
    w.pump(lambda: w.idle)
    final = next(i for i in w.items if i["type"] == "run_finished")
    assert final["status"] == "stopped" and final["answer"] == "partial: 7 so far"
    assert final["steps"] < 10
    assert w.custom[-1]["kind"] == "finished"
    # A person's stop is a result, not an error: Run All goes on past the cell, which shows its status.
    assert not w.outputs("error")
    (result,) = w.outputs("execute_result")
    assert "status='stopped'" in result["data"]["text/plain"]


def test_step_runs_one_step_then_a_new_view_catches_up(kernel, srv):
    srv.route(root=["```repl\nprint('s1')\n```", "```repl\nprint('s2')\n```", "```repl\nprint('s3')\n```",
                    "FINAL(three steps)"])
    srv.latency = 0.5
    w = ask(kernel, srv)
    w.pump(lambda: w.comm_id is not None)
    w.send({"kind": "control", "action": "pause"})
    w.pump(lambda: w.has_item("pending"))
    w.send({"kind": "control", "action": "step"})
    w.pump(lambda: [i["state"] for i in w.items if i["type"] == "state"][-1:] == ["paused"]
           and w.has_item("cell_finished", step=1))
    time.sleep(0.8)
    w.pump(lambda: True)
    assert not w.has_item("cell_started", step=3), "Step ran more than one step"

    # a browser that (re)connects now asks for everything and gets it in one reset
    w.send({"kind": "hello"})
    w.pump(lambda: w.custom[-1]["kind"] == "reset")
    reset = w.custom[-1]
    assert {i["type"] for i in reset["items"]} >= {"run_started", "turn_finished", "cell_finished", "state"}
    assert reset["finished"] is False
    w.send({"kind": "control", "action": "resume"})
    w.pump(lambda: w.idle)
    assert "s1" in w.text() and "s2" in w.text() and "s3" in w.text()
    assert next(i for i in w.items if i["type"] == "run_finished")["answer"] == "three steps"


def test_approve_pauses_before_every_generated_cell(kernel, srv):
    srv.route(root=["```repl\nprint('first')\n```\n```repl\nprint('second')\n```", "FINAL(approved)"])
    srv.latency = 0.0
    msg_id = kernel.execute(f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT} --approve\n"
                            "Go")
    w = WidgetDriver(kernel, msg_id)
    for expected in ("print('first')", "print('second')"):
        w.pump(lambda expected=expected: any(i["type"] == "pending" and i["code"].strip() == expected
                                             for i in w.items))
        assert not w.has_item("cell_started", code=expected), "the cell ran before it was approved"
        w.send({"kind": "control", "action": "resume"})
    w.pump(lambda: w.idle)
    assert "first" in w.text() and "second" in w.text()
    assert next(i for i in w.items if i["type"] == "run_finished")["answer"] == "approved"
