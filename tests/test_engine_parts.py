"""Engine pieces a user relies on indirectly: the import boundary, the executor, timeouts off the
main thread, steering, crash safety of the log, and resume."""

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

import pytest

from rlm_kernel.engine import events as ev
from rlm_kernel.engine.api import aresume, arun, rlm
from rlm_kernel.engine.executor import HeadlessExecutor
from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.engine.steering import Steering
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"
JUPYTER_MODULES = ("IPython", "ipykernel", "ipywidgets", "jupyter_client", "nbformat", "anywidget", "traitlets")


def test_engine_imports_nothing_from_jupyter(tmp_path):
    code = ("import sys, rlm_kernel\nfrom rlm_kernel import rlm\nimport rlm_kernel.engine.api\n"
            "r = rlm('q?', context='some text here', model='demo', runs_dir=sys.argv[1])\n"
            f"bad = [m for m in sys.modules if m.split('.')[0] in {JUPYTER_MODULES!r}]\nprint(bad)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "runs")], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_headless_executor_outputs_are_nbformat_shaped():
    ex = HeadlessExecutor()
    out = asyncio.run(ex.run_cell("x = 2\nprint('hi')\nimport sys; print('oops', file=sys.stderr)\nx * 21",
                                  timeout=None))
    kinds = [(o["output_type"], o.get("name")) for o in out.outputs]
    assert kinds == [("stream", "stdout"), ("stream", "stderr"), ("execute_result", None)]
    assert out.outputs[2]["data"]["text/plain"] == "42"
    err = asyncio.run(ex.run_cell("def f():\n    raise ValueError('bad value')\nf()", timeout=None))
    assert err.error["ename"] == "ValueError"
    tb = "\n".join(err.error["traceback"])
    assert "raise ValueError('bad value')" in tb and "executor.py" not in tb
    import nbformat  # a dependency; the engine itself never imports it

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x", outputs=[
        nbformat.from_dict(o) for o in out.outputs + err.outputs])])
    nbformat.validate(nb)


def test_cell_timeout_works_off_the_main_thread():
    ex = HeadlessExecutor()
    box = {}

    def work():
        box["out"] = asyncio.run(ex.run_cell("n = 0\nwhile True:\n    n += 1", timeout=0.5))

    t0 = time.monotonic()
    t = threading.Thread(target=work)
    t.start()
    t.join(10)
    assert not t.is_alive()
    assert box["out"].timed_out and time.monotonic() - t0 < 5
    assert ex.namespace["n"] > 0


def test_prints_from_concurrent_threads_stay_apart():
    a, b = HeadlessExecutor(), HeadlessExecutor()
    results = {}

    def work(name, ex):
        results[name] = asyncio.run(ex.run_cell(f"import time\nfor i in range(20):\n    print('{name}', i)\n"
                                                f"    time.sleep(0.001)", timeout=None))

    threads = [threading.Thread(target=work, args=(n, e)) for n, e in (("A", a), ("B", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert "B" not in results["A"].outputs[0]["text"] and "A" not in results["B"].outputs[0]["text"]


def test_pause_edit_note_and_resume_through_steering(tmp_path):
    """Pause before a cell, replace its code, leave a note, resume: the edited code runs and the model
    is told about both."""
    steering = Steering(approve=True)
    seen = []

    def on_event(e):
        seen.append(e)
        if e["type"] == ev.STATE and e["state"] == "paused" and steering.pending:
            steering.edit("value = 'edited'\nprint(value)")
            steering.note("please be brief")
            steering.resume()
            steering.approve = False

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["```repl\nvalue = 'original'\nprint(value)\n```", "FINAL_VAR(value)"])
        result = asyncio.run(arun("q", "ctx", steering=steering, subscribers=[on_event], provider="anthropic",
                                  base_url=srv.base_url, api_key="k", runs_dir=str(tmp_path)))
        second = srv.requests[-1]["messages"][-1]["content"]
        text = second if isinstance(second, str) else "".join(b["text"] for b in second)
    assert result.answer == "edited"
    assert "a person edited cell 1" in text and "value = 'edited'" in text
    assert "please be brief" in text
    cell = next(e for e in seen if e["type"] == ev.CELL_FINISHED)
    assert cell["edited"] and "edited" in cell["outputs"][0]["text"]


def test_stop_during_a_model_call_ends_at_once_with_the_partial_answer(tmp_path):
    steering = Steering()
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["```repl\nanswer['content'] = 'half done'\n```", "FINAL(too late)"])
        srv.latency = lambda r: 5.0 if len(r["messages"]) > 1 else 0.0
        threading.Timer(0.8, steering.stop).start()
        t0 = time.monotonic()
        result = asyncio.run(arun("q", "ctx", steering=steering, provider="anthropic", base_url=srv.base_url,
                                  api_key="k", runs_dir=str(tmp_path)))
    assert time.monotonic() - t0 < 3
    assert result.status == "stopped" and result.answer == "half done"


def test_step_runs_exactly_one_more_step(tmp_path):
    steering = Steering()
    steering.pause()
    turns = []

    def on_event(e):
        if e["type"] == ev.TURN_FINISHED:
            turns.append(e["step"])

    async def drive():
        task = asyncio.ensure_future(arun("q", "ctx", steering=steering, subscribers=[on_event],
                                          provider="anthropic", base_url=srv.base_url, api_key="k",
                                          runs_dir=str(tmp_path)))
        await asyncio.sleep(0.3)
        assert turns == []
        steering.step()
        await asyncio.sleep(0.5)
        assert turns == [1]
        steering.resume()
        return await task

    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["```repl\nprint(1)\n```", "```repl\nprint(2)\n```", "FINAL(x)"])
        result = asyncio.run(drive())
    assert result.answer == "x" and turns == [1, 2, 3]


CRASHY = textwrap.dedent("""
    import sys
    from rlm_kernel import rlm
    from rlm_kernel.testing.fake_anthropic import FakeAnthropic
    srv = FakeAnthropic(root_model="claude-sonnet-5-5").start()
    replies = ["```repl\\nfound = 'alpha'\\nprint('step', 1)\\n```",
               "```repl\\nfound += '-beta'\\nprint('step', 2)\\n```",
               "```repl\\nimport time\\nprint('slow step', flush=True)\\ntime.sleep(60)\\n```"]
    srv.route(root=replies + ["FINAL_VAR(found)"])
    print("ready", flush=True)
    rlm("q", context="the context", provider="anthropic", base_url=srv.base_url, api_key="k",
        runs_dir=sys.argv[1])
""")


def test_killed_process_loses_no_finished_step_and_resume_continues(tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", CRASHY, str(runs)], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    log_path = None
    while time.monotonic() < deadline:
        logs = list(runs.glob("*.jsonl")) if runs.exists() else []
        if logs and any(json.loads(line)["type"] == ev.CELL_STARTED and "slow step" in json.loads(line)["code"]
                        for line in logs[0].read_text().splitlines() if line.strip()):
            log_path = logs[0]
            break
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert log_path is not None
    log = RunLog.read(log_path)
    assert log.status == "crashed"
    assert [e["step"] for e in log.events if e["type"] == ev.FEEDBACK] == [1, 2]
    assert [r.status for r in list_runs(runs)] == ["crashed"]

    # A fresh process resumes: the namespace is rebuilt from the recording, then the run goes on.
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=["FINAL_VAR(found)"])
        result = asyncio.run(aresume(log_path, provider="anthropic", base_url=srv.base_url, api_key="k"))
        assert len(srv.requests) == 1
        sent = srv.requests[0]["messages"]
    assert result.status == "done" and result.answer == "alpha-beta"
    assert len(sent) == 5  # first question, two turns with their feedback
    assert RunLog.read(log_path).status == "done"


@pytest.mark.parametrize("context", ["line one\r\nline two\r", "lone \udc80 surrogate", (1, "tuple"),
                                     {"k": [1, 2.5, None]}, b"\x00\xff"])
def test_context_snapshot_gives_back_an_equal_object(tmp_path, context):
    from rlm_kernel.engine.snapshot import load_context, save_context

    log = tmp_path / "run.jsonl"
    save_context(context, log).join()
    assert load_context(log) == context


def test_replay_repeats_how_a_failed_subcall_failed(tmp_path):
    """A lone llm_query that failed raised into the code, a failed batch slot held an error string:
    answering from the recording must do the same, or replayed cells take another path."""
    from rlm_kernel import rlm
    from rlm_kernel.engine.replay import RecordedAnswers
    from rlm_kernel.engine.types import ModelError

    code = ("```repl\nslots = llm_query_batched(['bad one', 'fine'])\n"
            "try:\n    llm_query('bad two')\nexcept Exception as exc:\n    caught = type(exc).__name__\n```")
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=[code, "FINAL_VAR(caught)"], sub="ok")
        srv.inject(400, times=2, match=lambda r: "bad" in r.last_user_text(), message="malformed")
        result = rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k",
                     runs_dir=str(tmp_path), max_retries=0)
    assert result.answer == "ModelError"
    ns: dict = {}
    RecordedAnswers.from_log(result.run).bind(ns)
    assert ns["llm_query_batched"](["bad one", "fine"])[0].startswith("Error:")
    with pytest.raises(ModelError, match="malformed"):
        ns["llm_query"]("bad two")


def test_replay_answers_a_repeated_prompt_in_the_order_it_was_answered(tmp_path):
    """Three identical prompts got three different answers (memoize off): replayed, in the engine and
    in an exported notebook's helpers, they come back in that order, and a fourth ask repeats the last."""
    from rlm_kernel import rlm
    from rlm_kernel.engine.replay import RecordedAnswers
    from rlm_kernel.export import install_replay

    answers = iter(["first", "second", "third"])
    code = "```repl\ngot = [llm_query('roll a die') for _ in range(3)]\n```"
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.route(root=[code, "FINAL_VAR(got)"], sub=lambda r: next(answers))
        result = rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k",
                     runs_dir=str(tmp_path), memoize=False)
    assert eval(result.answer) == ["first", "second", "third"]
    engine_ns: dict = {}
    RecordedAnswers.from_log(result.run).bind(engine_ns)
    export_ns: dict = {}
    install_replay(export_ns, result.log_path)
    for ns in (engine_ns, export_ns):
        assert [ns["llm_query"]("roll a die") for _ in range(4)] == ["first", "second", "third", "third"]


@pytest.mark.parametrize("code, kept, skipped", [
    ('context = """a\nb"""\nprint(len(context))', "print(len(context))", [1, 2]),
    ("x = 1\ncontext = ['a', 'b']\nprint(x)", "x = 1\nprint(x)", [2]),
    ("context_0 = f'{1}'\nprint(1)", "print(1)", [1]),
    ("context = context.lower()\nprint(1)", "context = context.lower()\nprint(1)", []),  # real work: left alone
    ("context = json.loads(context)\n", "context = json.loads(context)\n", []),
    ("context = None\nprint(1)", "print(1)", [1]),  # not the input either
    ("import re\ncontext = str(12009)\nprint(re.findall('x', context))", "import re\nprint(re.findall('x', context))",
     [2]),  # Qwen's stand-in for a 12,009-character string
    ("import re\ncontext = str of 12,009 characters, 1 lines\nm = re.search('n', context)\n",
     "import re\nm = re.search('n', context)\n", [2]),  # the description retyped: the rest parses and runs
    ("def f():\n    context = 'local'\n", "def f():\n    context = 'local'\n", []),  # not top level
    ("context = '" + "''unclosed", "context = '" + "''unclosed", []),  # nothing else to run: as written, and fails
    ("context = str of it\nprint(", "context = str of it\nprint(", []),  # the rest does not parse either
])
def test_what_is_not_the_input_is_not_assigned_to_context(code, kept, skipped):
    from rlm_kernel.engine.habits import drop_retyped_context

    assert drop_retyped_context(code) == (kept, skipped)


def test_each_step_is_fsynced_once_before_the_next_request(tmp_path, monkeypatch):
    """A step's end is on disk before the next paid request leaves; fsyncs are one per step (each sits
    between two requests), not one per event."""
    import rlm_kernel.engine.record as record

    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        real_fsync(fd)
        with open(f"/proc/self/fd/{fd}", encoding="utf-8") as fh:
            synced.append(json.loads(fh.read().splitlines()[-1])["type"])

    monkeypatch.setattr(record.os, "fsync", fsync)
    at_request: list[list[str]] = []
    with FakeAnthropic(root_model=ROOT) as srv:
        replies = iter(["```repl\nx = 1\nprint(x)\n```", "```repl\ny = llm_query('two')\n```", "FINAL(done)"])

        def respond(request):
            if request.model == ROOT:
                at_request.append(list(synced))
                return next(replies)
            return "sub"

        srv.responder = respond
        result = rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="k",
                     runs_dir=str(tmp_path), protocol="fences")
    assert result.answer == "done"
    assert synced == [ev.FEEDBACK, ev.FEEDBACK, ev.RUN_FINISHED]
    assert at_request == [[], [ev.FEEDBACK], [ev.FEEDBACK, ev.FEEDBACK]]
