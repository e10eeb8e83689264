"""Runaway generated code is contained: a cell timeout the code cannot swallow (and that puts back
the user's own timer), child runs that end with their parent, KeyboardInterrupt raised by the code
fed back as an error, output capture that stays linear, and repeated prompts made visible."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.executor import HeadlessExecutor
from rlm_kernel.engine.record import RunLog
from rlm_kernel.engine.steering import Steering
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"

def _loop(body: str) -> str:
    return textwrap.dedent(body).strip("\n")


SWALLOWERS = {
    "except Exception": _loop("""
        while True:
            try:
                n = sum(range(50))
            except Exception:
                pass"""),
    "except BaseException": _loop("""
        while True:
            try:
                n = sum(range(50))
            except BaseException:
                pass"""),
    "bare except around sleep": _loop("""
        import time
        while True:
            try:
                time.sleep(0.05)
            except:
                pass"""),
    "nested loops": _loop("""
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass"""),
    "in a function, caught twice": _loop("""
        import time
        def work():
            while True:
                try:
                    time.sleep(0.01)
                except BaseException:
                    retry = True
        while True:
            try:
                work()
            except BaseException:
                pass"""),
    "finally that loops": _loop("""
        while True:
            try:
                pass
            finally:
                try:
                    n = 1
                except BaseException:
                    pass"""),
}


def run_cell(code: str, timeout: float | None, *, on_thread: bool) -> tuple[Any, float]:
    ex = HeadlessExecutor()
    box: dict[str, Any] = {}

    def go() -> None:
        t0 = time.monotonic()
        box["outcome"] = asyncio.run(ex.run_cell(code, timeout=timeout))
        box["took"] = time.monotonic() - t0

    if on_thread:
        t = threading.Thread(target=go, daemon=True)
        t.start()
        t.join(10)
        assert not t.is_alive(), "the cell was never stopped"
    else:
        go()
    return box["outcome"], box["took"]


# A cell that is never stopped would hang the main thread: the thread method still ends the test.
@pytest.mark.timeout(30, method="thread")
@pytest.mark.parametrize("on_thread", [False, True], ids=["main thread", "child thread"])
@pytest.mark.parametrize("name", sorted(SWALLOWERS))
def test_a_cell_timeout_cannot_be_swallowed(name, on_thread):
    outcome, took = run_cell(SWALLOWERS[name], 0.5, on_thread=on_thread)
    assert outcome.timed_out and outcome.error["ename"] == "CellTimeout"
    assert took < 1.5, f"a 0.5 s limit ran {took:.2f} s"
    assert sys.gettrace() is None and sys.getprofile() is None  # nothing left switched on


@pytest.mark.parametrize("on_thread", [False, True], ids=["main thread", "child thread"])
def test_except_exception_does_not_see_the_timeout(on_thread):
    code = "try:\n    while True:\n        pass\nexcept Exception:\n    print('swallowed')"
    outcome, _ = run_cell(code, 0.3, on_thread=on_thread)
    assert outcome.timed_out and "swallowed" not in str(outcome.outputs)


@pytest.mark.timeout(30, method="thread")
def test_a_timed_out_cell_gives_back_the_users_alarm_and_handler():
    fired: list[float] = []

    def mine(signum, frame):
        fired.append(time.monotonic())

    previous = signal.signal(signal.SIGALRM, mine)
    try:
        signal.setitimer(signal.ITIMER_REAL, 3.0)
        t0 = time.monotonic()
        outcome, _ = run_cell("while True:\n    pass", 0.3, on_thread=False)
        assert outcome.timed_out
        assert signal.getsignal(signal.SIGALRM) is mine
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 2.0 < left <= 3.0 - (time.monotonic() - t0) + 0.05  # the time it had left, not wiped
        # A cell that ends in time gives it back too; an alarm due during a cell fires when it ends.
        signal.setitimer(signal.ITIMER_REAL, 1.0)  # due well inside the cell, not before it starts
        outcome, _ = run_cell("import time\ntime.sleep(2.0)", 5, on_thread=False)
        assert not outcome.timed_out and not fired
        time.sleep(0.1)
        assert len(fired) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_many_small_prints_are_kept_whole_and_merged():
    code = ("import sys\nfor i in range(250_000):\n    print(i)\nprint('to stderr', file=sys.stderr)\n"
            "print('after')")
    outcome, _ = run_cell(code, None, on_thread=False)
    kinds = [(o["output_type"], o["name"]) for o in outcome.outputs]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("stream", "stdout")]
    assert outcome.outputs[0]["text"] == "".join(f"{i}\n" for i in range(250_000))
    assert outcome.outputs[1]["text"] == "to stderr\n" and outcome.outputs[2]["text"] == "after\n"


# --- runs: the fake server ------------------------------------------------------------------

@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s



def is_child(request) -> bool:
    return "Question: child task" in request.user_texts()[0]


def fed_back(srv: FakeAnthropic) -> list[str]:
    """What the root run's model was told, turn by turn."""
    return [r.user_texts()[-1] for r in srv.requests if r.model == ROOT and r.status == 200 and not is_child(r)]


CHILD_LOOP = "```repl\nfor i in range(200):\n    llm_query(f'part {i}')\n```"


def parent_and_child(parent_code: str, parent_final: str = "FINAL(parent done)"):
    """A root script: the parent runs `parent_code` then answers; the child loops on sub-calls."""

    def respond(request) -> str:
        turns = sum(1 for m in request["messages"] if m["role"] == "assistant")
        if is_child(request):
            return CHILD_LOOP if turns == 0 else "FINAL(child done)"
        return parent_code if turns == 0 else parent_final

    return respond


def quiet_afterwards(srv: FakeAnthropic, seconds: float = 1.0) -> None:
    """No request of the run tree reaches the server once the run has returned."""
    count = len(srv.requests)
    time.sleep(seconds)
    late = srv.requests[count:]
    assert not late, f"{len(late)} requests after the run ended: {[r.last_user_text()[:30] for r in late]}"


def child_finished(log: RunLog) -> dict:
    children = {e["run_id"] for e in log.events if e["type"] == ev.RUN_STARTED and e.get("parent_run_id")}
    assert len(children) == 1
    [fin] = [e for e in log.events if e["type"] == ev.RUN_FINISHED and e["run_id"] in children]
    return fin


def test_a_child_run_ends_when_its_parents_cell_times_out(srv, tmp_path):
    srv.route(root=parent_and_child("```repl\nout = rlm_query('child task', context=context)\n```"),
              sub=lambda r: "piece")
    # The child's first turn is slow, so its own cell starts well after the parent's.
    srv.latency = lambda r: 0.4 if r.model == ROOT and is_child(r) else (0.1 if r.model != ROOT else 0.0)
    result = rlm("q", context="some text", provider="anthropic", base_url=srv.base_url, api_key="k",
                 runs_dir=str(tmp_path), cell_timeout=1.5)
    quiet_afterwards(srv)
    assert result.status == "done" and result.answer == "parent done"
    assert "timed out after 1.5 s" in fed_back(srv)[1]
    fin = child_finished(result.run)
    assert fin["status"] == "stopped" and "parent's cell timed out" in fin["reason"]
    assert 0 < len([r for r in srv.requests if r.model != ROOT]) < 200


def test_a_child_run_ends_when_the_run_is_stopped(srv, tmp_path):
    srv.route(root=parent_and_child("```repl\nout = rlm_query('child task', context=context)\n"
                                    "more = [llm_query(f'parent {i}') for i in range(50)]\n```"),
              sub=lambda r: "piece")
    srv.latency = lambda r: 0.05 if r.model != ROOT else 0.0
    steering = Steering()
    threading.Timer(1.0, steering.stop).start()
    result = rlm("q", context="some text", provider="anthropic", base_url=srv.base_url, api_key="k",
                 runs_dir=str(tmp_path), steering=steering)
    quiet_afterwards(srv)
    assert result.status == "stopped"
    fin = child_finished(result.run)
    assert fin["status"] == "stopped"
    subs = [r for r in srv.requests if r.model != ROOT]
    assert len(subs) < 40 and not any("parent" in r.last_user_text() for r in subs)


def test_keyboard_interrupt_raised_by_generated_code_is_an_error_for_the_model(srv, tmp_path):
    srv.route(root=["```repl\nprint('before')\nraise KeyboardInterrupt('from the code')\n```", "FINAL(carried on)"])
    result = rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path))
    assert result.status == "done" and result.answer == "carried on"
    feedback = fed_back(srv)[1]
    assert "before" in feedback and "KeyboardInterrupt: from the code" in feedback
    cell = next(e for e in result.run.events if e["type"] == ev.CELL_FINISHED)
    assert cell["error"]["ename"] == "KeyboardInterrupt"


CTRL_C = textwrap.dedent("""
    import signal
    import sys
    # A shell starts background jobs with Ctrl-C ignored, and children inherit that: this script is the
    # person's terminal program, so it takes Ctrl-C as a terminal would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from rlm_kernel import rlm
    from rlm_kernel.testing.fake_anthropic import FakeAnthropic
    srv = FakeAnthropic(root_model="claude-sonnet-5-5").start()
    looping = sys.argv[1] + ".looping"  # the cell says when its loop runs, so Ctrl-C lands inside it
    srv.route(root=["```repl\\nimport time\\n"
                    f"open({looping!r}, 'w').close()\\n"
                    "while True:\\n    try:\\n        time.sleep(0.05)\\n    except ValueError:\\n        pass\\n```",
                    "FINAL(should not get here)"])
    rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k", runs_dir=sys.argv[1],
        cell_timeout=60)
    print("rlm returned", flush=True)
""")


def test_ctrl_c_still_stops_a_script_run(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", CTRL_C, str(runs)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        looping = Path(str(runs) + ".looping")
        while not looping.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "the cell never started its loop"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "rlm returned" not in out and "KeyboardInterrupt" in err
    [log_path] = runs.glob("*.jsonl")
    finished = [json.loads(line) for line in log_path.read_text().splitlines() if '"run_finished"' in line]
    assert [(e["status"], e["reason"]) for e in finished] == [("stopped", "interrupted")]


# --- memoised sub-calls -----------------------------------------------------------------------

def ask(srv: FakeAnthropic, tmp_path: Path, root: Any, sub: Any = "sub-answer", **opts: Any):
    srv.route(root=root, sub=sub)
    return rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k",
               runs_dir=str(tmp_path / "runs"), **opts)


def test_repeated_prompts_are_answered_once_and_the_model_is_told(srv, tmp_path):
    code = "```repl\nres = llm_query_batched(['same', 'same', 'other', 'same'])\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(res)"], sub=lambda r: "to " + r.last_user_text())
    assert eval(result.answer) == ["to same", "to same", "to other", "to same"]
    note = fed_back(srv)[1]
    assert "Note: 2 of 4 prompts repeated an earlier prompt and were answered once from memory" in note
    assert "memoize=False" in note
    assert len([r for r in srv.requests if r.model != ROOT]) == 2


def test_no_note_when_every_prompt_is_new(srv, tmp_path):
    ask(srv, tmp_path, ["```repl\nres = llm_query_batched(['a', 'b'])\n```", "FINAL_VAR(res)"])
    assert "answered once from memory" not in fed_back(srv)[1]


def test_a_failed_subcall_is_not_remembered(srv, tmp_path):
    """The first ask fails; the same prompt asked again goes to the model again and gets its answer."""
    srv.inject(400, times=1, match=lambda r: r.model != ROOT, message="malformed")
    code = ("```repl\ntry:\n    llm_query('flaky')\nexcept Exception as exc:\n    first = type(exc).__name__\n"
            "second = llm_query('flaky')\nslots = llm_query_batched(['flaky'])\n```")
    result = ask(srv, tmp_path, [code, "FINAL_VAR(second)"], sub="good answer", max_retries=0)
    assert result.answer == "good answer"
    assert [r.status for r in srv.requests if r.model != ROOT] == [400, 200]  # the batch slot: from memory


def test_a_cancelled_subcall_is_not_remembered(srv, tmp_path):
    """A sub-call cut off by the cell timeout is asked again, not answered with its cancellation."""
    slow = {"first": True}

    def latency(r) -> float:
        if r.model != ROOT and slow["first"]:
            slow["first"] = False
            return 3.0
        return 0.0

    srv.latency = latency
    steps = ["```repl\nr = llm_query('same prompt')\n```", "```repl\nr = llm_query('same prompt')\n```",
             "FINAL_VAR(r)"]
    result = ask(srv, tmp_path, steps, sub="the answer", cell_timeout=0.5)
    assert "timed out" in fed_back(srv)[1]
    assert result.answer == "the answer"


def test_a_refused_subcall_is_not_remembered(srv, tmp_path):
    """A prompt refused before sending (too long) is an "Error:" answer, never a remembered one."""
    long = "x" * 5_000_000
    code = f"```repl\nfirst = llm_query('{'x' * 10}' * 500_000)\nsecond = llm_query('{'x' * 10}' * 500_000)\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(second)"])
    assert result.answer.startswith("Error: prompt too long")
    finished = [e for e in result.run.events if e["type"] == ev.SUBCALL_FINISHED]
    assert [e["cached"] for e in finished] == [False, False] and len(long) == 5_000_000


def test_resume_rebuilds_past_a_cell_that_raised_keyboard_interrupt(srv, tmp_path):
    from rlm_kernel.engine.api import aresume

    first = ask(srv, tmp_path, ["```repl\nmade = 'yes'\nraise KeyboardInterrupt\n```", "FINAL(first run)"])
    assert first.answer == "first run"
    srv.reset()
    srv.route(root=["FINAL_VAR(made)"])
    again = asyncio.run(aresume(first.log_path, provider="anthropic", base_url=srv.base_url, api_key="k"))
    assert again.status == "done" and again.answer == "yes"
