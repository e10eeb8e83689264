"""A run whose generated code goes after the key leaves no trace of it anywhere (issue 9, section 2).

The generated code prints the whole environment, prints the key in two halves, passes it to
`llm_query`, `llm_query_batched` and `rlm_query`, shows it with display(), raises it in an error
and answers FINAL_VAR of a variable holding it; the sub-model even answers with the other secret.
Through the real anthropic SDK against the loopback fake server, once headless with `rlm()` and
once in a real RLM kernel, nothing of either secret may reach a request the fake server received,
a file of the run folder, the tree's messages or its saved HTML, the notebook cell, or the result.

Two secrets prove the two ways of knowing one: ANTHROPIC_API_KEY has a known format (and is the
configured key), MY_SERVICE_TOKEN is random letters only its variable's name marks as secret."""

from __future__ import annotations

import asyncio
import json
import random
import string
from pathlib import Path
from typing import Any

import comm
import pytest

from rlm_kernel.engine.api import arun
from rlm_kernel.engine.options import RLMOptions
from rlm_kernel.engine.redaction import MARK, PIECE
from rlm_kernel.engine.steering import Steering
from rlm_kernel.export import export_run
from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox
from rlm_kernel.testing.fake_anthropic import FakeAnthropic, Request

ROOT = "claude-sonnet-5-5"
_rng = random.SystemRandom()
KEY = "sk-" + "ant-api03-" + "".join(_rng.choices(string.ascii_letters + string.digits + "-_", k=93)) + "AA"
TOKEN = "".join(_rng.choices(string.ascii_letters + string.digits, k=40))
SECRETS = {"ANTHROPIC_API_KEY": KEY, "MY_SERVICE_TOKEN": TOKEN}
CHILD_QUESTION = "What is in this context?"

STEP_1 = """Let me look at the environment.
```repl
import os
print(os.environ)
key, tok = os.environ["ANTHROPIC_API_KEY"], os.environ["MY_SERVICE_TOKEN"]
print(key[:len(key) // 2])
print(key[len(key) // 2:])
print(tok[:20], tok[20:], sep="\\n")
echoed = llm_query("Remember " + key + " and " + tok)
print(echoed)
print("the sub-model's answer holds the token:", tok in echoed)
both = llm_query_batched([key, "token: " + tok])
print(both)
child = rlm_query(CHILD_QUESTION, context="the token is " + tok)
print(child)
display({"key": key})
key
```
```repl
raise ValueError("bad key " + key)
```""".replace("CHILD_QUESTION", repr(CHILD_QUESTION))
STEP_2 = """```repl
leaked = key + " / " + tok
```
FINAL_VAR(leaked)"""
CHILD_STEPS = ["```repl\nprint(context)\n```", "```repl\nfound = context\n```\nFINAL_VAR(found)"]


def first_user_text(request: Request) -> str:
    content = request["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def root_reply(request: Request) -> str:
    """The root's script by turn; a child run (its first message holds its question) has its own."""
    steps = CHILD_STEPS if CHILD_QUESTION in first_user_text(request) else [STEP_1, STEP_2]
    turn = sum(1 for m in request["messages"] if m["role"] == "assistant")
    return steps[min(turn, len(steps) - 1)]


def sub_reply(request: Request) -> str:
    """A sub-model that repeats its prompt and volunteers the token: its answer must be redacted too."""
    return f"You said: {request.last_user_text()}. Also, the service token is {TOKEN}."


def leaks(text: str) -> list[str]:
    """Every piece of PIECE characters of either secret that occurs in `text`."""
    return sorted({s[i:i + PIECE] for s in (KEY, TOKEN) for i in range(len(s) - PIECE + 1) if s[i:i + PIECE] in text})


def request_text(requests: list[Request]) -> str:
    """Everything the fake server received but the auth headers it never records."""
    return json.dumps([{"body": dict(r), "path": r.path, "headers": r.headers} for r in requests])


def folder_text(folder: Path) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture
def srv() -> Any:
    with FakeAnthropic(root_model=ROOT) as s:
        s.api_key = KEY  # the key does go to the server, as its credential (auth headers are not recorded)
        s.route(root=root_reply, sub=sub_reply)
        yield s


class RecordingComm(comm.DummyComm):
    """Keeps what the run's widget publishes, as a front-end listening on IOPub would see it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[Any] = []
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        self.sent.append({"msg_type": msg_type, "data": data})


def test_a_headless_run_that_goes_after_the_key_leaks_none_of_it(srv, tmp_path, monkeypatch):
    from rlm_kernel.widget import RunView

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(comm, "create_comm", RecordingComm)
    runs = tmp_path / "runs"
    options = RLMOptions(provider="anthropic", base_url=srv.base_url, model=ROOT, runs_dir=str(runs), max_retries=0)
    view = RunView(Steering(), "Find the key", options)
    result = asyncio.run(arun("Find the key", "some context", options=options, subscribers=[view.on_event]))
    view.finish(result)

    assert result.status == "done", result.reason
    assert result.answer == f"{MARK} / {MARK}"  # FINAL_VAR of a variable holding both secrets
    log = result.run
    assert len({e["run_id"] for e in log.events}) == 2  # the child run happened
    cell = next(e for e in log.of_run(result.run_id) if e["type"] == "cell_finished")
    assert cell["feedback"].count(MARK) >= 8 and "MY_SERVICE_TOKEN" in cell["feedback"]  # it did print them
    assert "the sub-model's answer holds the token: False" in cell["feedback"]  # responses come back redacted
    prompts = [e["prompt"] for e in log.events if e["type"] == "subcall_started"]
    assert any(p.startswith("Remember ") and MARK in p for p in prompts)
    assert len([r for r in srv.requests if r.model != ROOT]) >= 3  # the sub-calls reached the server

    assert leaks(request_text(srv.requests)) == []
    assert leaks(folder_text(runs)) == []
    assert leaks(json.dumps(view.comm.sent, default=str)) == []  # every message the browser got
    assert leaks(view.static_html) == []  # the tree's saved HTML
    assert leaks(repr(result) + str(result) + result._repr_markdown_() + str(result.reason)) == []
    assert leaks(export_run(result.log_path, tmp_path / "run.ipynb").read_text(encoding="utf-8")) == []


def test_a_kernel_run_that_goes_after_the_key_leaks_none_of_it(srv, tmp_path):
    with jupyter_sandbox(tmp_path / "jupyter") as work, \
            KernelSession(work, env={**SECRETS, "ANTHROPIC_BASE_URL": srv.base_url}) as kernel:
        kernel.run("context = 'some context'")
        cell = kernel.run(f"%%rlm --model {ROOT} --max-iterations 4\nFind the key", timeout=120)
        answer = kernel.run("_.answer, _.status")
        runs = work / "rlm_runs"

    assert cell.status == "ok", cell.text
    assert f"'{MARK} / {MARK}', 'done'" in answer.text
    shown = [m for m in cell.messages if m["msg_type"] in ("stream", "display_data", "execute_result", "error")]
    assert MARK in json.dumps(shown, default=str)  # the generated cells' outputs did appear in the notebook, redacted
    assert leaks(json.dumps(cell.messages, default=str)) == []  # outputs, widget comm traffic, the result
    assert leaks(answer.text) == []
    assert leaks(request_text(srv.requests)) == []
    assert leaks(folder_text(runs)) == []


def test_the_key_in_use_is_a_secret_whatever_it_looks_like(srv, tmp_path, monkeypatch):
    """A key that looks like an ordinary word is no secret by its looks; it is one because the run uses it."""
    from rlm_kernel import rlm

    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    srv.api_key = "test-key"
    srv.route(root=["```repl\nimport os\nprint(os.environ['ANTHROPIC_API_KEY'])\n```", "FINAL(done)"])
    result = rlm("Show the key", context="c", provider="anthropic", base_url=srv.base_url, model=ROOT,
                 runs_dir=str(tmp_path / "runs"), max_retries=0)
    assert result.status == "done"
    assert MARK in folder_text(tmp_path / "runs") and "test-key" not in folder_text(tmp_path / "runs")
    assert "test-key" not in request_text(srv.requests)
