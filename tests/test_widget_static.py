"""The run tree without a live kernel: the static HTML renderer, and what a headless run (nbclient)
leaves in the saved notebook for nbconvert, GitHub and JupyterLab without a kernel."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from rlm_kernel.engine import events as ev
from rlm_kernel.engine.record import RunLog
from rlm_kernel.kernel.testing import jupyter_sandbox
from rlm_kernel.widget import render_static_html
from rlm_kernel.widget.static import STATIC_IMAGE
from rlm_kernel.widget.view import RUN_MIME, RunView, saved_items

_seq = iter(range(1, 1_000_000))


def e(type_: str, run_id: str = "root", **fields: Any) -> dict[str, Any]:
    return {"v": 1, "seq": next(_seq), "t": time.time(), "run_id": run_id, "type": type_, **fields}


def tree_events() -> list[dict[str, Any]]:
    return [
        e(ev.RUN_STARTED, question="Count <widgets> & gadgets", model="m-root", sub_model="m-sub",
          options={"max_iterations": 5}, depth=0, parent_run_id=None),
        e(ev.TURN_STARTED, step=1),
        e(ev.TURN_FINISHED, step=1, text="Plan:\n\n```repl\nprint('<b>hi</b>')\n```", usage={"input_tokens": 100,
          "output_tokens": 20, "cache_read_tokens": 50}, latency=1.0),
        e(ev.CELL_STARTED, step=1, index=1, code="print('<b>edited</b>')", edited=True,
          original_code="print('<b>hi</b>')"),
        e(ev.SUBCALL_STARTED, step=1, id="s1", kind="llm", model="m-sub", prompt="Summarise: " + "x" * 1000),
        e(ev.SUBCALL_FINISHED, step=1, id="s1", kind="llm", model="m-sub", response="a summary",
          usage={"input_tokens": 300, "output_tokens": 7}, latency=0.4, error=None),
        e(ev.SUBCALL_STARTED, step=1, id="s2", kind="rlm", model="m-root", prompt="Go deeper", child_run_id="kid"),
        e(ev.RUN_STARTED, run_id="kid", question="Go deeper", depth=1, parent_run_id="root", parent_step=1,
          parent_subcall_id="s2"),
        e(ev.TURN_STARTED, run_id="kid", step=1),
        e(ev.TURN_FINISHED, run_id="kid", step=1, text="FINAL(deep result)", usage={"input_tokens": 10,
          "output_tokens": 2}),
        e(ev.RUN_FINISHED, run_id="kid", status="done", answer="deep result"),
        e(ev.SUBCALL_FINISHED, step=1, id="s2", kind="rlm", model="m-root", response="deep result", usage={},
          latency=2.0, error=None, child_run_id="kid"),
        e(ev.CELL_FINISHED, step=1, index=1, code="print('<b>edited</b>')", error=None, duration=0.1,
          outputs=[{"output_type": "stream", "name": "stdout", "text": "<b>edited</b>\n"},
                   {"output_type": "display_data", "data": {"text/html": "<script>alert(1)</script>",
                                                            "text/plain": "<IPython.core.display.HTML object>"}},
                   {"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                    "traceback": ["\x1b[31mZeroDivisionError\x1b[0m: division by zero"]}]),
        e(ev.NOTE, step=1, text="Check chapter 3"),
        e(ev.RUN_FINISHED, status="done", answer="There are **3** widgets.", reason=None,
          usage={"m-root": {"input_tokens": 110, "output_tokens": 22, "cache_read_tokens": 50},
                 "m-sub": {"input_tokens": 300, "output_tokens": 7}}, cost=0.0123, elapsed=4.2, steps=1,
          subcalls=2),
    ]


def test_static_tree_shows_steps_cells_subcalls_child_and_answer():
    html = render_static_html(tree_events())
    assert html.count('data-testid="rlm-step-node"') == 2  # root step 1 and the child's step 1
    assert html.count('data-testid="rlm-subcall"') == 2
    # the answer is Markdown, rendered (the static copy used to show raw **bold**)
    assert 'data-testid="rlm-answer"' in html and "There are <strong>3</strong> widgets." in html
    assert "edited by a person" in html
    assert "Count &lt;widgets&gt; &amp; gadgets" in html
    assert "deep result" in html and "Child run" in html
    assert "Note to the model:</b> Check chapter 3" in html
    assert "tokens 410 in / 29 out / 50 cached" in html and "$0.0123" in html and "4.2 s" in html


def test_static_tree_escapes_everything_the_model_made():
    html = render_static_html(tree_events())
    assert "<script>" not in html and "alert(1)" not in html  # model HTML is never embedded
    assert "&lt;b&gt;edited&lt;/b&gt;" in html and "<b>edited</b>" not in html
    assert "\x1b[" not in html and "ZeroDivisionError: division by zero" in html


def test_a_run_that_restarts_a_step_after_resume_shows_the_new_attempt_only():
    events = [
        *tree_events()[:4],
        e(ev.RUN_RESUMED, from_step=0, rebuilt=True),
        e(ev.TURN_STARTED, step=1),
        e(ev.TURN_FINISHED, step=1, text="Second attempt", usage={}),
        e(ev.RUN_FINISHED, status="done", answer="ok"),
    ]
    html = render_static_html(events)
    assert "Second attempt" in html and "Plan:" not in html and "edited by a person" not in html


def test_an_interrupted_run_never_shows_the_models_prose_as_its_answer():
    events = [
        *tree_events()[:3],  # step 1: "Plan:" and a code block, then the interrupt
        e(ev.RUN_FINISHED, status="stopped", answer="Plan:", answer_source="partial", reason="interrupted"),
    ]
    html = render_static_html(events)
    answer = html[html.index('data-testid="rlm-answer"'):]
    assert "No final answer" in answer and "interrupted" in answer and "Plan:" not in answer
    # a partial answer the code did put in `answer` is shown, as partial
    events[-1] = e(ev.RUN_FINISHED, status="stopped", answer="7 so far", answer_source="partial", reason="stopped")
    answer = render_static_html(events).split('data-testid="rlm-answer"')[1]
    assert "Best partial answer" in answer and "7 so far" in answer


def test_steps_a_resume_abandoned_are_hidden_even_when_not_run_again():
    events = [
        *tree_events()[:4],  # step 1 started a cell, then the process stopped
        e(ev.RUN_RESUMED, from_step=0, rebuilt=True),
        e(ev.RUN_FINISHED, status="budget", answer="", reason="max_cost"),  # ended before a new turn
    ]
    html = render_static_html(events)
    assert 'data-testid="rlm-step-node"' not in html and "Plan:" not in html
    assert 'data-testid="rlm-status">budget<' in html


def test_from_log_of_a_crashed_run_is_finished_and_says_so(tmp_path: Path):
    log = tmp_path / "r.jsonl"
    log.write_text("\n".join(__import__("json").dumps(x) for x in tree_events()[:5]) + "\n")
    view = RunView.from_log(RunLog.read(log))
    assert view.static_html and "Count &lt;widgets&gt;" in view.static_html
    _, items = view.journal.snapshot()
    assert items[-1] == {"type": "state", "run_id": "root", "state": "crashed", "reason": None}
    assert view.header["max_iterations"] == 5


def test_a_thousand_subcalls_keep_the_static_tree_small():
    events = tree_events()[:4]
    for i in range(1000):
        events.append(e(ev.SUBCALL_STARTED, step=1, id=f"q{i}", kind="llm", model="m-sub", prompt=f"prompt {i} " * 100))
        events.append(e(ev.SUBCALL_FINISHED, step=1, id=f"q{i}", kind="llm", model="m-sub", response="r" * 5000,
                        usage={}, latency=0.1, error=None))
    html = render_static_html(events)
    assert html.count('data-testid="rlm-subcall"') == 25
    assert "975 more llm_query calls" in html and "prompt 999" in html
    assert len(html) < 100_000


@pytest.fixture
def sandbox(tmp_path: Path):
    with jupyter_sandbox(tmp_path / "jupyter") as work:
        yield work


def test_headless_run_leaves_the_finished_tree_in_the_saved_notebook(sandbox: Path, tmp_path: Path):
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("context = 'The widget count is 12. ' * 50"),
        nbformat.v4.new_code_cell("%%rlm --model demo\nWhat is the widget count?"),
    ])
    nb.metadata["kernelspec"] = {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}
    NotebookClient(nb, timeout=120, kernel_name="rlm", resources={"metadata": {"path": str(sandbox)}}).execute()
    outputs = nb.cells[1].outputs
    shown = next(o for o in outputs if o["output_type"] == "display_data" and RUN_MIME in o["data"])
    html = shown["data"]["text/html"]
    assert 'data-testid="rlm-answer"' in html, "the display was not updated with the finished tree"
    assert 'data-testid="rlm-step-node"' in html and "data-testid=\"rlm-status\">done<" in html
    # the extension's copy of the run is in the same output: the whole finished tree, no kernel needed
    state = shown["data"][RUN_MIME]
    assert state["finished"] is True
    finished = [i for i in saved_items(state) if i["type"] == "run_finished"]
    assert finished and finished[0]["status"] == "done"
    assert any(i["type"] == "cell_finished" for i in saved_items(state))
    # the generated cells' outputs are in the tree only, not flattened into the cell's output
    assert [o["output_type"] for o in outputs if o["output_type"] != "execute_result"] == ["display_data"]
    # nbconvert (nbviewer) shows the static tree
    HTMLExporter = pytest.importorskip("nbconvert").HTMLExporter
    exported, _ = HTMLExporter().from_notebook_node(nb)
    assert 'data-testid="rlm-answer"' in exported


CHART = ("A chart.\n```repl\nimport random, struct, zlib\nfrom IPython.display import Image, display\n"
         "rnd = random.Random(7)\n"
         "rows = b''.join(b'\\x00' + bytes(rnd.randrange(256) for _ in range(90)) for _ in range(30))\n"
         "def chunk(k, d):\n    return struct.pack('>I', len(d)) + k + d + struct.pack('>I', zlib.crc32(k + d))\n"
         "png = (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 30, 30, 8, 2, 0, 0, 0))\n"
         "       + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))\ndisplay(Image(data=png))\n```")


def test_each_image_is_saved_once_in_the_notebook(sandbox: Path, monkeypatch: pytest.MonkeyPatch):
    from widget_fixtures import magic, run_notebook, tree_output

    from rlm_kernel.testing.fake_anthropic import FakeAnthropic

    with FakeAnthropic(root_model="claude-sonnet-5-5") as srv:
        srv.route(root=[CHART, "FINAL(one chart)"], sub="ok")
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        nb = run_notebook(["context = 'x'", magic(srv, "Draw it.")], sandbox)
    bundle = tree_output(nb)
    images = [o["data"]["image/png"] for o in RunLog.read(next((sandbox / "rlm_runs").glob("*.jsonl"))).events
              if o.get("type") == "cell_finished" for o in o["outputs"] if "image/png" in o.get("data", {})]
    assert len(images) == 1 and len(images[0]) > 1000
    saved = nbformat.writes(nb)  # as Jupyter saves it
    piece = images[0][len(images[0]) // 2:][:200]  # the code never holds it: the image is made at run time
    assert saved.count(piece) == 1, "an image is saved more than once"
    assert piece in "".join(bundle["text/html"]), "the static tree (nbconvert, GitHub) lost the image"
    # the run state points at the static copy's image instead of carrying it
    state = bundle[RUN_MIME]
    out = next(o for i in saved_items(state) if i["type"] == "cell_finished" for o in i["outputs"]
               if "image/png" in o.get("data", {}))
    assert out["data"]["image/png"] == {STATIC_IMAGE: 0}
    assert 'data-rlm-img="0"' in "".join(bundle["text/html"])
