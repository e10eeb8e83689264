"""`%%rlm` in a real kernel against the fake Anthropic server: the answer, the namespace after the
run, the one-line failures, interrupts (model call and blocking cell) and `%rlm resume`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_kernel.engine.record import RunLog, list_runs
from rlm_kernel.kernel.testing import Cell, KernelSession, jupyter_sandbox
from rlm_kernel.testing import FakeAnthropic, Request

KEY = "sk-ant-test-DO-NOT-LEAK-8f3a"
SUB_ANSWER = "the ledger balances"

STEP_1 = """Let me look at the data first.
```repl
words = context.split()
print("words:", len(words))
summary = llm_query("Summarise: " + context[:40])
print(summary)
```"""
STEP_2 = """```repl
result_text = f"{len(words)} words; {summary}"
```
FINAL_VAR(result_text)"""


def by_turn(*replies: str):
    """A root responder keyed on the turn number (1 message, 3 messages, ...), so retries and
    resumed runs get the reply for the step they are at."""

    def respond(request: Request) -> str:
        turn = (len(request["messages"]) + 1) // 2
        return replies[min(turn, len(replies)) - 1]

    return respond


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as srv:
        yield srv


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    with jupyter_sandbox(tmp_path_factory.mktemp("rlm-kernel")) as work:
        yield work


@pytest.fixture(scope="module")
def kernel(workdir: Path, server: FakeAnthropic) -> Iterator[KernelSession]:
    with KernelSession(workdir, env={"ANTHROPIC_API_KEY": KEY}) as session:
        cell = session.run(f"%rlm config base_url={server.base_url} provider=anthropic cell_timeout=60")
        assert "session" in cell.text
        yield session


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    server.latency = 0.0
    server.route(root=by_turn(STEP_1, STEP_2), sub=SUB_ANSWER)
    return server


def one_line_error(cell: Cell) -> str:
    """The cell failed with exactly one short error line and no traceback; return that line."""
    assert cell.status == "error", cell.text
    errors = cell.of_type("error")
    assert len(errors) == 1, cell.outputs
    assert len(errors[0]["traceback"]) == 1, errors[0]["traceback"]
    line = errors[0]["traceback"][0]
    assert "\n" not in line and "Traceback" not in line
    return line


def value(kernel: KernelSession, expr: str) -> str:
    """repr() of an expression evaluated in the kernel."""
    cell = kernel.run(f"print(repr({expr}))")
    assert cell.status == "ok", cell.text
    return cell.text.strip()


def wait_until(predicate, timeout: float = 20, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def latest_log(workdir: Path) -> RunLog:
    return list_runs(workdir / "rlm_runs")[0]


def test_answer_and_namespace(kernel: KernelSession, fake: FakeAnthropic, workdir: Path) -> None:
    kernel.run("context = 'alpha beta gamma delta ' * 50")
    cell = kernel.run("%%rlm --max-iterations 5\nHow many words, and what is it about?", timeout=60)
    assert cell.status == "ok", cell.text
    # The generated code's prints show in the cell like any output.
    # what the generated code printed is in the run tree, once, not flattened into the cell
    assert "words: 200" in cell.tree_text and SUB_ANSWER in cell.tree_text
    assert "words: 200" not in cell.text
    # The cell's value is the result, shown as Markdown.
    results = cell.of_type("execute_result")
    assert len(results) == 1
    # the tree shows the answer, so the value's Markdown is one line pointing there, not the answer again
    assert f"200 words; {SUB_ANSWER}" not in results[0]["data"]["text/markdown"]
    assert "the answer is in the tree above" in results[0]["data"]["text/markdown"]
    n = results[0]["execution_count"]

    check = value(kernel, f"(_.answer, _.status, Out[{n}].steps, words[:2], summary, 'llm_query' in dir())")
    assert check == (
        f"('200 words; {SUB_ANSWER}', 'done', 2, ['alpha', 'beta'], '{SUB_ANSWER}', False)")

    # The model saw the sub-call answer and only the second turn answered.
    assert [r.model for r in fake.requests].count("claude-haiku-5-5") == 1
    log = latest_log(workdir)
    assert log.status == "done"
    assert (log.started() or {})["options"]["max_iterations"] == 5


def test_the_key_never_leaves_the_kernel(kernel: KernelSession, fake: FakeAnthropic, workdir: Path) -> None:
    kernel.run("context = 'some text to read ' * 20")
    cells = [kernel.run("%%rlm\nWhat is this?", timeout=60), kernel.run("%rlm config"), kernel.run("%rlm runs"),
             kernel.run("%rlm show")]
    assert all(c.status == "ok" for c in cells), [c.text for c in cells]
    assert "ANTHROPIC_API_KEY is set" in cells[1].text
    for c in cells:
        assert KEY not in repr(c.messages)
    for path in (workdir / "rlm_runs").iterdir():
        assert KEY.encode() not in path.read_bytes(), path
    # ...and it did reach the server, as a bearer token.
    assert fake.requests


def test_missing_key_is_one_line(kernel: KernelSession, fake: FakeAnthropic) -> None:
    kernel.run("import os\n_saved_key = os.environ.pop('ANTHROPIC_API_KEY')\n"
               "%rlm config provider=")
    try:
        kernel.run("context = 'text'")
        cell = kernel.run("%%rlm\nWhat is this?")
        line = one_line_error(cell)
        assert "ANTHROPIC_API_KEY" in line and "demo" in line
        assert not cell.of_type("display_data")  # no empty run view left behind
        assert value(kernel, "6 * 7") == "42"  # ordinary cells work
    finally:
        kernel.run("os.environ['ANTHROPIC_API_KEY'] = _saved_key\n%rlm config provider=anthropic")
    assert not fake.requests


def test_missing_or_unsupported_context_is_one_line(kernel: KernelSession, fake: FakeAnthropic) -> None:
    kernel.run("context = 'x'\ndel context")
    assert "define a variable named `context`" in one_line_error(kernel.run("%%rlm\nWhat is this?"))
    assert "no variable named 'papers'" in one_line_error(kernel.run("%%rlm --context papers\nWhat?"))
    kernel.run("gen = (n for n in range(3))")
    line = one_line_error(kernel.run("%%rlm --context gen\nWhat?"))
    assert "generator" in line
    assert not fake.requests


def test_bad_option_is_a_usage_error(kernel: KernelSession) -> None:
    kernel.run("context = 'text'")
    cell = kernel.run("%%rlm --max-iterations lots\nWhat?")
    assert cell.status == "error"
    assert "--max-iterations" in cell.text and "integer" in cell.text
    assert "Traceback" not in cell.text


def test_interrupt_during_model_call_then_resume(kernel: KernelSession, fake: FakeAnthropic,
                                                 workdir: Path) -> None:
    kernel.run("context = 'alpha beta gamma delta ' * 50")
    fake.latency = lambda r: 30.0 if len(r["messages"]) == 1 else 0.0
    msg_id = kernel.execute("%%rlm\nHow many words?")
    wait_until(lambda: len(fake.requests) >= 1, what="the first model request")
    started = time.monotonic()
    kernel.interrupt()
    cell = kernel.collect(msg_id, timeout=15)
    assert time.monotonic() - started < 5  # it did not wait for the model's 30 s
    line = one_line_error(cell)
    assert "stopped (interrupted)" in line and "%rlm resume" in line
    assert cell.reply["ename"] == "KeyboardInterrupt"
    log = latest_log(workdir)
    assert log.status == "stopped" and (log.finished() or {})["reason"] == "interrupted"
    assert value(kernel, "1 + 1") == "2"

    fake.latency = 0.0
    resumed = kernel.run("%rlm resume", timeout=60)
    assert resumed.status == "ok", resumed.text
    assert value(kernel, "(_.status, _.run_id)") == f"('done', '{log.root_run_id}')"
    assert latest_log(workdir).status == "done"


def test_resume_finds_an_interrupted_run_logged_elsewhere(kernel: KernelSession, fake: FakeAnthropic,
                                                           workdir: Path) -> None:
    """`%rlm resume` with no run named continues this session's last run, wherever --runs-dir put it."""
    kernel.run("context = 'alpha beta gamma delta ' * 50")
    fake.latency = lambda r: 30.0 if len(r["messages"]) == 1 else 0.0
    msg_id = kernel.execute("%%rlm --runs-dir elsewhere\nHow many words?")
    wait_until(lambda: len(fake.requests) >= 1, what="the first model request")
    kernel.interrupt()
    assert "stopped (interrupted)" in one_line_error(kernel.collect(msg_id, timeout=15))
    log = list_runs(workdir / "elsewhere")[0]
    fake.latency = 0.0
    resumed = kernel.run("%rlm resume", timeout=60)
    assert resumed.status == "ok", resumed.text
    assert value(kernel, "(_.status, _.run_id)") == f"('done', '{log.root_run_id}')"


def test_interrupt_during_blocking_generated_cell(kernel: KernelSession, fake: FakeAnthropic,
                                                  workdir: Path) -> None:
    kernel.run("context = 'text ' * 10")
    fake.route(root=by_turn("```repl\nimport time\nprint('working', flush=True)\ntime.sleep(60)\n```",
                            "FINAL(done)"))
    msg_id = kernel.execute("%%rlm\nDo the slow thing.")
    kernel.wait_for_output(msg_id, "working")
    started = time.monotonic()
    kernel.interrupt()
    cell = kernel.collect(msg_id, timeout=15)
    assert time.monotonic() - started < 5
    line = one_line_error(cell)
    assert "stopped (interrupted) at step 1" in line
    log = latest_log(workdir)
    assert log.status == "stopped"
    cells = [e for e in log.events if e["type"] == "cell_finished"]
    assert cells[-1]["error"]["ename"] == "KeyboardInterrupt"
    assert value(kernel, "'still here'") == "'still here'"


def test_resume_after_the_kernel_was_killed(workdir: Path, fake: FakeAnthropic) -> None:
    """Step 1 finishes and is on disk; the kernel dies in step 2's model call; a new kernel
    resumes, rebuilding `x` from the recorded step so step 2's code can use it."""
    crash_dir = workdir / "crash"
    crash_dir.mkdir()
    fake.route(root=by_turn("```repl\nx = 41\nprint('x is', x)\n```",
                            "```repl\ny = x + 1\nprint('y is', y)\n```\nFINAL_VAR(y)"))
    hang = {"once": True}

    def latency(request: Request) -> float:
        if len(request["messages"]) == 3 and hang["once"]:
            hang["once"] = False
            return 30.0
        return 0.0

    fake.latency = latency
    first = KernelSession(crash_dir, env={"ANTHROPIC_API_KEY": KEY})
    try:
        first.run(f"%rlm config base_url={fake.base_url}\ncontext = 'numbers ' * 30")
        first.execute("%%rlm\nWhat is x plus one?")
        wait_until(lambda: len(fake.requests) >= 2, what="the second model turn")
    finally:
        first.kill_hard()
    log = list_runs(crash_dir / "rlm_runs")[0]
    assert log.status == "crashed"

    with KernelSession(crash_dir, env={"ANTHROPIC_API_KEY": KEY}) as second:
        assert value(second, "'x' in dir()") == "False"
        assert "crashed" in second.run("%rlm runs").text
        shown = second.run("%rlm show")  # a crashed run can be looked at before it is resumed
        assert any("x = 41" in o["data"].get("text/html", "") for o in shown.of_type("display_data"))
        cell = second.run(f"%rlm config base_url={fake.base_url}\n%rlm resume {log.root_run_id}", timeout=60)
        assert cell.status == "ok", cell.text
        assert "x is 41" not in cell.text  # the rebuild re-ran step 1 quietly
        assert "y is 42" in cell.tree_text and "y is 42" not in cell.text
        assert value(second, "(_.answer, _.status, x, y)") == "('42', 'done', 41, 42)"
    assert RunLog.read(log.path).status == "done"


def test_keyboard_interrupt_raised_by_generated_code_does_not_stop_the_run(kernel: KernelSession,
                                                                           fake: FakeAnthropic) -> None:
    kernel.run("context = 'text ' * 10")
    fake.route(root=by_turn("```repl\nprint('trying')\nraise KeyboardInterrupt\n```", "FINAL(went on)"))
    cell = kernel.run("%%rlm\nDo it.", timeout=60)
    assert cell.status == "ok", cell.text
    assert value(kernel, "(_.status, _.answer)") == "('done', 'went on')"
    assert "trying" in cell.tree_text  # the tree shows the cell's output, and its error like any other
    assert value(kernel, "[e['error']['ename'] for e in _.run.events if e['type'] == 'cell_finished' "
                         "and e.get('error')]") == "['KeyboardInterrupt']"
    second = [r for r in fake.requests if r.model != "claude-haiku-5-5"][1]
    assert "KeyboardInterrupt" in second.last_user_text()


def test_interrupt_ends_the_child_run_too(kernel: KernelSession, fake: FakeAnthropic, workdir: Path) -> None:
    """The stop button while the root's cell waits on rlm_query: the child stops, records that it
    stopped, and no request of the run reaches the server afterwards."""

    def respond(request: Request) -> str:
        child = "Question: child task" in str(request["messages"][0]["content"])
        if child:
            return "```repl\nfor i in range(500):\n    llm_query(f'part {i}')\n```"
        return "```repl\nout = rlm_query('child task', context=context)\n```"

    kernel.run("context = 'text ' * 10")
    fake.route(root=respond, sub="piece")
    fake.latency = lambda r: 0.05 if r.model == "claude-haiku-5-5" else 0.0
    msg_id = kernel.execute("%%rlm\nDelegate it.")
    wait_until(lambda: sum(r.model == "claude-haiku-5-5" for r in fake.requests) >= 3, what="the child's sub-calls")
    kernel.interrupt()
    cell = kernel.collect(msg_id, timeout=15)
    assert "stopped (interrupted)" in one_line_error(cell)
    count = len(fake.requests)
    time.sleep(1.0)
    assert len(fake.requests) == count, "requests reached the server after the run ended"
    log = latest_log(workdir)
    finished = {e["run_id"]: e for e in log.events if e["type"] == "run_finished"}
    children = [e["run_id"] for e in log.events if e["type"] == "run_started" and e.get("parent_run_id")]
    assert len(children) == 1 and finished[children[0]]["status"] == "stopped"
    assert finished[log.root_run_id]["status"] == "stopped"
    assert value(kernel, "'still here'") == "'still here'"
