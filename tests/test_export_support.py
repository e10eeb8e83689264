"""Real runs for the export tests, made with the engine against the demo model or the loopback fake
Anthropic server, plus helpers to compare a replayed notebook with the run it came from.

No tests live here; test_export_notebook.py and test_export_replay.py import these."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.outcome import RLMResult
from rlm_kernel.engine.record import RunLog
from rlm_kernel.engine.redaction import Redactor
from rlm_kernel.engine.steering import Steering
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"
#: A 1×1 PNG.
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082")).decode()
FAKE_KEY = "sk-" + "ant-api03-" + "Q" * 32  # built at run time so no source line holds a key

QUESTION = "Summarise the fruit inventory."
CHILD_QUESTION = "Count the cherries in this text."
FRUIT = "apple 3\nbanana 5\ncherry 7\n" * 10

#: The root model's replies, one per step. They cover a result, a printed key, an error, an image,
#: a cell a person edits, a child run, batched sub-calls and FINAL_VAR.
RICH_STEPS = [
    "I'll start by looking at the data.\n\n```repl\nlines = context.strip().splitlines()\n"
    "print(len(lines), 'lines')\nprint('token:', 'sk-' + 'ant-api03-' + 'Q' * 32)\nlines[:3]\n```",
    "Let me total it, and draw a chart.\n\n```repl\ntotal = sum(int(l.split()[1]) for l in lines)\n"
    "print(total / 0)\n```\n\n```repl\nimport base64\nclass Chart:\n    def __repr__(self):\n"
    f"        return 'Chart()'\n    def _repr_png_(self):\n        return base64.b64decode('{PNG}')\n"
    "Chart()\n```",
    "Now the model's version.\n\n```repl\nprint('model version')\n```",
    f"Ask a child and the sub-model.\n\n```repl\ncherries = rlm_query({CHILD_QUESTION!r}, context)\n"
    "notes = llm_query_batched(['Describe apples', 'Describe bananas'])\n"
    "report = f'{cherries} ' + ' / '.join(notes)\nprint(report)\n```",
    "FINAL_VAR(report)",
]
CHILD_STEPS = [
    "```repl\nn = context.count('cherry')\nverdict = llm_query(f'Is {n} a lot of cherries?')\nprint(n, verdict)\n```",
    "FINAL(There are 10 cherries.)",
]
EDITED_CODE = "print('edited by a person')"
NOTE = "Please also mention cherries."


def _first_user_text(request: Any) -> str:
    content = request["messages"][0]["content"]
    return content if isinstance(content, str) else "".join(b.get("text", "") for b in content)


def scripted_root(scripts: dict[str, list[str]]) -> Callable[[Any], str]:
    """A root responder: the script whose key appears in the run's first message, one reply per step
    (so a child run, whose first message holds its own question, follows its own script)."""

    def respond(request: Any) -> str:
        first = _first_user_text(request)
        steps = next(s for key, s in scripts.items() if key in first)
        n = sum(1 for m in request["messages"] if m["role"] == "assistant")
        return steps[min(n, len(steps) - 1)]

    return respond


def echo_sub(request: Any) -> str:
    return f"Answer about: {request.last_user_text()[:40]}"


def fake_run(srv: FakeAnthropic, runs_dir: Path, scripts: dict[str, list[str]], question: str, context: Any,
             **options: Any) -> RLMResult:
    srv.route(root=scripted_root(scripts), sub=echo_sub)
    return rlm(question, context=context, provider="anthropic", base_url=srv.base_url, api_key="test-key",
               runs_dir=str(runs_dir), max_retries=0, **options)


def rich_run(srv: FakeAnthropic, runs_dir: Path) -> RLMResult:
    """Errors, an image, a person's edit and note, a child run and sub-calls, through the real SDK."""
    steering = Steering(approve=True)  # pause before every cell, as a reviewer would

    def reviewer(event: dict[str, Any]) -> None:
        if event["type"] == ev.STATE and event["state"] == "paused" and steering.pending is not None:
            if "model version" in steering.pending.code:
                steering.edit(EDITED_CODE)
            steering.resume()
        if event["type"] == ev.CELL_FINISHED and event["step"] == 2 and event["index"] == 2:
            steering.note(NOTE)

    result = fake_run(srv, runs_dir, {CHILD_QUESTION: CHILD_STEPS, QUESTION: RICH_STEPS}, QUESTION, FRUIT,
                      steering=steering, subscribers=[reviewer])
    assert result.status == "done", result.reason
    return result


DEMO_TEXT = "The orchard grows apples. Pears ripen in autumn.\nApples are picked in September.\n" * 40


def demo_run(runs_dir: Path, context: Any = None) -> RLMResult:
    result = rlm("When are apples picked?", context=DEMO_TEXT if context is None else context, model="demo",
                 runs_dir=str(runs_dir))
    assert result.status == "done", result.reason
    return result


CRASHING_SCRIPT = textwrap.dedent("""
    import sys
    from rlm_kernel import rlm
    rlm("Crash?", context="numbers 1 2 3", provider="anthropic", base_url=sys.argv[1], api_key="test-key",
        runs_dir=sys.argv[2], max_retries=0, cell_timeout=None)
""")


def crashed_log(srv: FakeAnthropic, runs_dir: Path) -> Path:
    """Run the engine in a subprocess and SIGKILL it while a step-2 cell is running."""
    script = ["```repl\nnums = [int(t) for t in context.split()[1:]]\nprint(sum(nums))\n"
              "half = llm_query('Halve ' + str(sum(nums)))\nprint(half)\n```",
              "Now a slow step.\n\n```repl\nimport time\nprint('started', flush=True)\ntime.sleep(60)\n```",
              "FINAL(never)"]
    srv.route(root=lambda r: script[min(sum(m["role"] == "assistant" for m in r["messages"]), 2)],
              sub=lambda r: "3")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    proc = subprocess.Popen([sys.executable, "-c", CRASHING_SCRIPT, srv.base_url, str(runs_dir)], env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            logs = list(runs_dir.glob("*.jsonl"))
            if logs and '"cell_started", "step": 2' in logs[0].read_text(encoding="utf-8"):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the run never reached step 2")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    return logs[0]


# --- comparing outputs ----------------------------------------------------------------------------

def comparable(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What must be equal between a run and its replay: stream text, result and display data, and the
    error's name and message. Tracebacks differ by executor (plain vs IPython's) and are left out.
    Keys are compared redacted: the record holds them redacted, a replay prints what its code prints."""
    redactor = Redactor(env={})
    outputs = redactor.deep(outputs)
    out: list[dict[str, Any]] = []
    for o in outputs:
        kind = o["output_type"]
        if kind == "stream":
            text = o["text"] if isinstance(o["text"], str) else "".join(o["text"])
            if out and out[-1].get("name") == o["name"]:
                out[-1]["text"] += text  # executors split streams differently
            else:
                out.append({"name": o["name"], "text": text})
        elif kind in ("execute_result", "display_data"):
            out.append({"type": kind, "data": dict(o["data"])})
        elif kind == "error":
            out.append({"type": "error", "ename": o["ename"], "evalue": o["evalue"]})
    return out


def recorded_cells(log_path: Path) -> dict[tuple[int, int], dict[str, Any]]:
    """The root run's finished cells by (step, index)."""
    log = RunLog.read(log_path)
    return {(e["step"], e["index"]): e for e in log.of_run(log.root_run_id or "") if e["type"] == ev.CELL_FINISHED}


def step_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("rlm", {}).get("role") == "step"]
