"""RunView without a browser: what goes over the comm for a run, and what the browser's requests do.

A recording comm stands in for the kernel's comm (the run's own "rlm.run" comm), so these tests see
exactly the messages a front-end would get."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import comm
import pytest

from rlm_kernel.engine import events as ev
from rlm_kernel.engine.api import arun
from rlm_kernel.engine.options import RLMOptions
from rlm_kernel.engine.steering import PendingCell, Steering
from rlm_kernel.testing.fake_anthropic import FakeAnthropic
from rlm_kernel.widget import RunView
from rlm_kernel.widget.compact import OUTPUT_RICH_LIMIT, OUTPUT_TEXT_LIMIT, PROMPT_PREVIEW, cut_output
from rlm_kernel.widget.view import saved_items

ROOT = "claude-sonnet-5-5"


class RecordingComm(comm.DummyComm):
    """A comm that keeps what the widget publishes, like a front-end listening on IOPub would."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                    **keys: Any) -> None:
        with self._lock:
            self.sent.append({"msg_type": msg_type, "data": data})

    def custom(self) -> list[dict[str, Any]]:
        with self._lock:
            return [m["data"] for m in self.sent if m["msg_type"] == "comm_msg"]

    def from_browser(self, content: dict[str, Any]) -> None:
        """Deliver a message as the kernel does when the extension calls comm.send()."""
        self.handle_msg({"content": {"comm_id": self.comm_id, "data": content}, "buffers": []})


@pytest.fixture(autouse=True)
def recording_comm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(comm, "create_comm", RecordingComm)


class Events:
    """Builds engine-shaped events with increasing seq numbers."""

    def __init__(self, run_id: str = "root") -> None:
        self.seq = 0
        self.run_id = run_id

    def __call__(self, type_: str, run_id: str | None = None, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"v": 1, "seq": self.seq, "t": time.time(), "run_id": run_id or self.run_id, "type": type_, **fields}


def make_view(steering: Steering | None = None, **opts: Any) -> tuple[RunView, RecordingComm]:
    view = RunView(steering or Steering(), "How many widgets?", RLMOptions(model="m-root", **opts))
    assert isinstance(view.comm, RecordingComm)
    return view, view.comm


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


def items_of(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [i for m in messages if m["kind"] in ("batch", "reset") for i in m["items"]]


def started(e: Events, question: str = "How many widgets?", **extra: Any) -> dict[str, Any]:
    return e(ev.RUN_STARTED, question=question, options={"max_iterations": 7, "api_key_never": "x"},
             context={"type": "str", "length": 123}, model="m-root", sub_model="m-sub", provider="fake",
             demo=False, depth=0, parent_run_id=None, parent_step=None, parent_subcall_id=None,
             root_run_id="root", system="SYSTEM PROMPT " * 500, first_message="FIRST " * 500, **extra)


# --- traffic --------------------------------------------------------------------------------

def test_a_burst_of_1000_subcalls_goes_out_as_a_few_small_batches():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    view.on_event(e(ev.TURN_STARTED, step=1))
    view.on_event(e(ev.CELL_STARTED, step=1, index=1, code="llm_query_batched(chunks)", edited=False))
    big_prompt = "chunk text " * 2_000
    for i in range(1000):
        view.on_event(e(ev.SUBCALL_STARTED, step=1, id=f"s{i}", kind="llm", model="m-sub", prompt=big_prompt,
                        batch="b1"))
    for i in range(1000):
        view.on_event(e(ev.SUBCALL_FINISHED, step=1, id=f"s{i}", kind="llm", model="m-sub", response=f"answer {i}",
                        usage={"input_tokens": 5, "output_tokens": 2}, latency=0.1, error=None,
                        child_run_id=None))
    wait_for(lambda: sum(len(m["items"]) for m in c.custom() if m["kind"] == "batch") >= 2003)
    batches = [m for m in c.custom() if m["kind"] == "batch"]
    assert len(batches) <= 5, "events sent one by one instead of coalesced"
    assert [b["n"] for b in batches] == list(range(1, len(batches) + 1))
    subs = [i for i in items_of(batches) if i["type"] == ev.SUBCALL_STARTED]
    assert len(subs) == 1000
    assert all(len(s["prompt"]) == PROMPT_PREVIEW and s["prompt_chars"] == len(big_prompt) for s in subs)
    # nothing close to the whole prompts went out: 1000 × 22 KB would be 22 MB
    assert sum(len(repr(b)) for b in batches) < 1_000_000
    # the copy saved in the notebook holds each sub-call once, its prompt folded into its result
    import json

    saved = saved_items(view.run_state())
    assert [i["type"] for i in saved].count(ev.SUBCALL_STARTED) == 0
    finished = [i for i in saved if i["type"] == ev.SUBCALL_FINISHED]
    assert len(finished) == 1000 and finished[0]["prompt"].startswith("chunk text") and "seq" not in finished[0]
    assert len(json.dumps(saved)) < 450_000  # under half a kilobyte per sub-call
    view.close()


def test_the_saved_copy_leaves_out_what_the_tree_does_not_read_or_already_has():
    view, _c = make_view()
    e = Events()
    tb = ["\x1b[31mTraceback\x1b[0m " * 50, "ZeroDivisionError: division by zero"]
    for event in [started(e), e(ev.TURN_STARTED, step=1), e(ev.CELL_STARTED, step=1, index=1, code="1/0"),
                  e(ev.SUBCALL_STARTED, step=1, id="ok", kind="llm", model="m-sub", prompt="short prompt"),
                  e(ev.SUBCALL_FINISHED, step=1, id="ok", kind="llm", model="m-sub", response="r" * 1000,
                    usage={"input_tokens": 3, "output_tokens": 0, "calls": 1}, latency=0.1),
                  e(ev.SUBCALL_STARTED, step=1, id="bad", kind="llm", model="m-sub", prompt="p" * 500),
                  e(ev.SUBCALL_FINISHED, step=1, id="bad", kind="llm", model="m-sub", error="400: bad prompt",
                    response="Error: 400: bad prompt", usage={}, latency=0.1),
                  e(ev.CELL_FINISHED, step=1, index=1, duration=0.1,
                    outputs=[{"output_type": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
                              "traceback": tb}],
                    error={"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": tb})]:
        view.on_event(event)
    saved = saved_items(view.run_state())
    ok, bad = (next(i for i in saved if i.get("id") == k) for k in ("ok", "bad"))
    # an uncut prompt needs no length; a cut response keeps its whole length for "show all"
    assert ok["prompt"] == "short prompt" and "prompt_chars" not in ok
    assert len(ok["response"]) < 1000 and ok["response_chars"] == 1000
    assert ok["usage"] == {"input_tokens": 3}
    # a failed sub-call: its error once, its prompt's whole length
    assert bad["error"] == "400: bad prompt" and "response" not in bad and "usage" not in bad
    assert bad["prompt_chars"] == 500
    # a failed cell: the traceback is in its error output only
    cell = next(i for i in saved if i["type"] == ev.CELL_FINISHED)
    assert cell["error"] == {"ename": "ZeroDivisionError", "evalue": "division by zero"}
    assert cell["outputs"][0]["traceback"] == tb
    # the saved items are one compact JSON string, not a list the notebook format would indent,
    # and the root's run id and kind "llm" are implied there and put back when read
    raw = view.run_state()["items_json"]
    assert isinstance(raw, str) and "\n" not in raw
    packed = json.loads(raw)
    assert [i["type"] for i in packed if "run_id" in i] == [ev.RUN_STARTED]
    assert not any("kind" in i for i in packed if i["type"] == ev.SUBCALL_FINISHED)
    assert {i["run_id"] for i in saved} == {"root"} and ok["kind"] == bad["kind"] == "llm"
    view.close()


def test_a_running_cells_prints_go_live_once_and_new_views_get_the_finished_cell():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    view.on_event(e(ev.TURN_STARTED, step=1))
    view.stream("stdout", "before any cell\n")  # not a cell's output: dropped
    view.on_event(e(ev.CELL_STARTED, step=1, index=1, code="print(...)", edited=False))
    for k in range(50):
        view.stream("stdout", f"progress {k}\n")
    wait_for(lambda: any(i["type"] == "cell_stream" for i in items_of(c.custom())))
    wait_for(lambda: "progress 49" in "".join(i["text"] for i in items_of(c.custom()) if i["type"] == "cell_stream"))
    live = [i for i in items_of(c.custom()) if i["type"] == "cell_stream"]
    assert len(live) <= 5, "each print went out as its own item"
    assert {(i["step"], i["index"]) for i in live} == {(1, 1)}
    assert "before any cell" not in "".join(i["text"] for i in live)
    view.stream("stdout", "x" * 20_000)  # a flood is capped at the view's output limit

    def live_chars() -> int:
        return sum(len(i["text"]) for i in items_of(c.custom()) if i["type"] == "cell_stream")

    wait_for(lambda: live_chars() >= OUTPUT_TEXT_LIMIT)
    assert live_chars() == OUTPUT_TEXT_LIMIT
    view.on_event(e(ev.CELL_FINISHED, step=1, index=1, duration=0.1,
                    outputs=[{"output_type": "stream", "name": "stdout", "text": "progress 0\n"}]))
    c.from_browser({"kind": "hello"})
    reset = c.custom()[-1]
    assert reset["kind"] == "reset" and not any(i["type"] == "cell_stream" for i in reset["items"])
    assert not any(i["type"] == "cell_stream" for i in saved_items(view.run_state()))
    view.close()


def test_streamed_text_goes_as_deltas_and_is_not_sent_again():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    view.on_event(e(ev.TURN_STARTED, step=1))
    for part in ["Let me ", "look at ", "the data."]:
        view.on_event(e(ev.TURN_DELTA, step=1, text=part))
    wait_for(lambda: any(m["kind"] == "batch" for m in c.custom()))
    view.on_event(e(ev.TURN_FINISHED, step=1, text="Let me look at the data.", model="m-root",
                    usage={"input_tokens": 10, "output_tokens": 6}, latency=0.5, stop_reason="end_turn"))
    view.finish(None)
    items = items_of(c.custom())
    deltas = [i["text"] for i in items if i["type"] == ev.TURN_DELTA]
    assert "".join(deltas) == "Let me look at the data."
    assert len(deltas) <= 2, "deltas within one flush should be merged"
    finished = next(i for i in items if i["type"] == ev.TURN_FINISHED)
    assert "text" not in finished and finished["usage"]["output_tokens"] == 6


def test_run_started_sends_metadata_only_never_system_prompt_or_keys():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    view.finish(None)
    item = next(i for i in items_of(c.custom()) if i["type"] == ev.RUN_STARTED)
    text = repr(item)
    assert "SYSTEM PROMPT" not in text and "FIRST" not in text and "api_key_never" not in text
    assert item["context"] == {"type": "str", "length": 123}
    assert item["options"] == {"max_iterations": 7}


def test_a_new_view_catches_up_with_one_reset_and_batches_continue_after_it():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    view.on_event(e(ev.TURN_STARTED, step=1))
    view.on_event(e(ev.TURN_DELTA, step=1, text="Thinking"))
    wait_for(lambda: any(m["kind"] == "batch" for m in c.custom()))
    view.on_event(e(ev.TURN_DELTA, step=1, text=" hard"))
    c.from_browser({"kind": "hello"})
    reset = [m for m in c.custom() if m["kind"] == "reset"][-1]
    types = [i["type"] for i in reset["items"]]
    assert types == [ev.RUN_STARTED, ev.TURN_STARTED, ev.TURN_DELTA]
    assert reset["items"][2]["text"] == "Thinking hard"  # the streamed text so far, in one piece
    assert reset["finished"] is False
    view.on_event(e(ev.TURN_DELTA, step=1, text="."))
    wait_for(lambda: c.custom()[-1]["kind"] == "batch")
    nxt = c.custom()[-1]
    assert nxt["n"] == reset["n"] + 1 and nxt["items"][0]["text"] == "."
    view.close()


def test_long_outputs_are_cut_and_show_all_fetches_them():
    view, c = make_view()
    e = Events()
    long_text = "".join(f"line {i}\n" for i in range(5_000))
    view.on_event(started(e))
    view.on_event(e(ev.CELL_FINISHED, step=1, index=1, code="print(x)", error=None, duration=0.1, timed_out=False,
                    execution_count=3, feedback="...", outputs=[
                        {"output_type": "stream", "name": "stdout", "text": long_text},
                        {"output_type": "display_data", "data": {"text/plain": "<Figure>", "image/png": "iVBORw0K"},
                         "metadata": {}}]))
    view.finish(None)
    cell = next(i for i in items_of(c.custom()) if i["type"] == ev.CELL_FINISHED)
    stream, image = cell["outputs"]
    assert len(stream["text"]) == OUTPUT_TEXT_LIMIT and stream["cut"] == len(long_text)
    assert image["data"]["image/png"] == "iVBORw0K" and "cut" not in image
    c.from_browser({"kind": "fetch", "req": 7, "what": "output", "run_id": "root", "step": 1, "index": 1, "n": 0})
    reply = c.custom()[-1]
    assert reply["kind"] == "fetched" and reply["req"] == 7
    assert reply["value"]["text"] == long_text


def test_an_images_size_and_background_hint_reach_the_tree_with_it():
    """Image(..., width=40) and matplotlib's needs_background travel with the output, so the tree's
    renderers draw it as a native cell would; metadata of a part left out goes with it."""
    out = {"output_type": "display_data",
           "data": {"image/png": "iVBORw0K", "text/plain": "<Image>", "text/html": "x" * (OUTPUT_RICH_LIMIT + 1)},
           "metadata": {"image/png": {"width": 40, "height": 20}, "needs_background": "light",
                        "text/html": {"isolated": True}}}
    small = cut_output(out)
    assert small["metadata"] == {"image/png": {"width": 40, "height": 20}, "needs_background": "light"}
    assert "text/html" not in small["data"]
    assert "metadata" not in cut_output({"output_type": "display_data", "data": {"text/plain": "1"}, "metadata": {}})


def test_full_prompt_and_response_are_fetched_on_demand():
    view, c = make_view()
    e = Events()
    prompt = "P" * 10_000
    view.on_event(started(e))
    view.on_event(e(ev.SUBCALL_STARTED, step=1, id="abc", kind="llm", model="m-sub", prompt=prompt, batch=None))
    view.on_event(e(ev.SUBCALL_FINISHED, step=1, id="abc", kind="llm", model="m-sub", response="R" * 9_000,
                    usage={}, latency=0.2, error=None, child_run_id=None))
    view.finish(None)
    c.from_browser({"kind": "fetch", "req": 1, "what": "prompt", "run_id": "root", "id": "abc"})
    c.from_browser({"kind": "fetch", "req": 2, "what": "response", "run_id": "root", "id": "abc"})
    c.from_browser({"kind": "fetch", "req": 3, "what": "prompt", "run_id": "root", "id": "nope"})
    replies = {m["req"]: m["value"] for m in c.custom() if m["kind"] == "fetched"}
    assert replies == {1: prompt, 2: "R" * 9_000, 3: None}


def test_events_from_many_threads_all_arrive_once_in_order_per_thread():
    view, c = make_view()
    e = Events()
    view.on_event(started(e))
    lock = threading.Lock()

    def worker(k: int) -> None:
        for i in range(200):
            with lock:
                event = e(ev.SUBCALL_STARTED, step=1, id=f"{k}-{i}", kind="llm", model="m", prompt="p", batch=None)
            view.on_event(event)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    view.finish(None)
    ids = [i["id"] for i in items_of(c.custom()) if i["type"] == ev.SUBCALL_STARTED]
    assert len(ids) == 1600 and len(set(ids)) == 1600
    for k in range(8):
        mine = [int(x.split("-")[1]) for x in ids if x.startswith(f"{k}-")]
        assert mine == sorted(mine)


def test_the_flusher_thread_ends_when_idle_and_comes_back_for_new_events():
    from rlm_kernel.widget.flusher import Flusher

    flushed: list[float] = []
    f = Flusher(lambda: flushed.append(time.monotonic()), interval=0.01, idle_exit=0.1)
    f.poke()
    wait_for(lambda: len(flushed) == 1)
    wait_for(lambda: f._thread is None)  # gone while idle: nothing pins a view nobody finished
    f.poke()
    wait_for(lambda: len(flushed) == 2)
    f.close()
    assert f._thread is None or not f._thread.is_alive()


# --- steering from the browser ------------------------------------------------------------------

def test_control_messages_steer_the_run():
    steering = Steering()
    _view, c = make_view(steering)
    c.from_browser({"kind": "control", "action": "pause"})
    assert steering.paused
    c.from_browser({"kind": "control", "action": "resume"})
    assert not steering.paused
    c.from_browser({"kind": "control", "action": "stop"})
    assert steering.stop_requested
    c.from_browser({"kind": "control", "action": "dance"})
    assert c.custom()[-1] == {"kind": "error", "text": "ValueError: unknown control 'dance'"}


def test_step_runs_one_more_step_then_pauses():
    steering = Steering()
    _view, c = make_view(steering)
    c.from_browser({"kind": "control", "action": "step"})

    async def boundaries() -> int:
        passed = 0
        for _ in range(3):
            try:
                await asyncio.wait_for(steering.at_step_boundary(), 0.3)
            except TimeoutError:
                return passed
            passed += 1
        return passed

    assert asyncio.run(boundaries()) == 1


def test_edit_while_paused_replaces_the_pending_cell_and_the_view_is_told():
    steering = Steering(approve=True)
    view, c = make_view(steering)
    e = Events()
    view.on_event(started(e))
    steering.on_state = lambda state: view.on_event(e(ev.STATE, state=state, step=1))

    async def scenario() -> tuple[str, bool]:
        task = asyncio.ensure_future(steering.before_cell(PendingCell(1, 1, "print('model')", "root")))
        while steering.pending is None or not steering.paused:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)
        c.from_browser({"kind": "edit", "code": "print('person')"})
        c.from_browser({"kind": "control", "action": "resume"})
        return await task

    assert asyncio.run(scenario()) == ("print('person')", True)
    view.finish(None)
    items = items_of(c.custom())
    pending = next(i for i in items if i["type"] == "pending")
    assert pending == {"type": "pending", "run_id": "root", "step": 1, "index": 1, "code": "print('model')"}
    assert any(i["type"] == "edit_queued" and i["code"] == "print('person')" for i in items)
    states = [i["state"] for i in items if i["type"] == ev.STATE]
    assert states[:2] == ["paused", "running"]


def test_edit_without_a_pending_cell_is_refused_in_the_view():
    steering = Steering()
    _view, c = make_view(steering)
    c.from_browser({"kind": "edit", "code": "x = 1"})
    assert c.custom()[-1]["kind"] == "error" and "no pending cell" in c.custom()[-1]["text"]


def test_note_reaches_the_steering_and_is_shown_as_queued():
    steering = Steering()
    view, c = make_view(steering)
    c.from_browser({"kind": "note", "text": "  Look at chapter 3 first.  "})
    assert steering.take_notes() == ["Look at chapter 3 first."]
    view.finish(None)
    assert any(i["type"] == "note_queued" and i["text"] == "Look at chapter 3 first." for i in items_of(c.custom()))


def test_controls_after_the_run_do_nothing():
    steering = Steering()
    view, c = make_view(steering)
    view.finish(None)
    c.from_browser({"kind": "control", "action": "pause"})
    assert not steering.paused


# --- a real run through the engine and the fake server -------------------------------------------

SCRIPT = [
    "I'll split the text.\n```repl\nparts = [context[i:i+10000] for i in range(0, len(context), 10000)]\n"
    "answers = llm_query_batched([f'Count widgets in: {p}' for p in parts])\nprint(len(answers), 'answers')\n```",
    "Now a child run.\n```repl\nsub = rlm_query('Summarise the answers', context='\\n'.join(answers))\n"
    "print('child said', sub)\n```",
    "FINAL(There are 12 widgets.)",
]
CHILD = ["Child looks.\n```repl\nprint('child sees', len(context))\n```", "FINAL(child summary)"]


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


def root_replies(srv: FakeAnthropic):
    """Root and child runs share the root model: answer by what each conversation has seen."""
    def reply(request):
        first = request["messages"][0]["content"]
        first = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        turn = sum(1 for m in request["messages"] if m["role"] == "assistant")
        script = CHILD if "Summarise the answers" in first else SCRIPT
        return script[min(turn, len(script) - 1)]
    return reply


def test_a_real_run_streams_steps_subcalls_and_a_nested_child(srv, tmp_path):
    srv.route(root=root_replies(srv), sub=lambda r: "3 widgets")
    context = "widget " * 100 + "SECRET-TAIL-MARKER" + " pad" * 20_000
    view, c = make_view()
    options = RLMOptions(provider="anthropic", base_url=srv.base_url, api_key="test-key", model=ROOT,
                         runs_dir=str(tmp_path / "runs"), max_retries=1)
    result = asyncio.run(arun("How many widgets?", context, options=options, subscribers=[view.on_event]))
    view.finish(result)
    assert result.status == "done"
    msgs = c.custom()
    items = items_of(msgs)
    types = {i["type"] for i in items}
    assert {ev.RUN_STARTED, ev.TURN_STARTED, ev.CELL_STARTED, ev.CELL_FINISHED, ev.SUBCALL_STARTED,
            ev.SUBCALL_FINISHED, ev.RUN_FINISHED} <= types
    child = next(i for i in items if i["type"] == ev.RUN_STARTED and i.get("parent_run_id"))
    rlm_call = next(i for i in items if i["type"] == ev.SUBCALL_STARTED and i["kind"] == "rlm")
    assert child["parent_subcall_id"] == rlm_call["id"] and child["parent_run_id"] == result.run_id
    assert any(i["type"] == ev.CELL_STARTED and i["run_id"] == child["run_id"] for i in items)
    final = [i for i in items if i["type"] == ev.RUN_FINISHED and i["run_id"] == result.run_id]
    assert final[0]["answer"] == "There are 12 widgets." and final[0]["status"] == "done"
    assert msgs[-1] == {"kind": "finished", "log_path": str(result.log_path)}
    # the context itself never went to the browser
    assert "SECRET-TAIL-MARKER" not in repr(msgs)
    assert sum(len(repr(m)) for m in msgs) < len(context)
    # the static fallback has the whole tree
    html = view.static_html
    assert html.count('data-testid="rlm-step-node"') >= 5  # 3 root steps + 2 child steps
    assert "There are 12 widgets." in html and "child summary" in html and "llm_query_batched" in html


def test_export_writes_a_notebook_and_reports_its_path(srv, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the kernel's folder
    srv.route(root=["```repl\nprint(1 + 1)\n```", "FINAL(two)"])
    view, c = make_view()
    options = RLMOptions(provider="anthropic", base_url=srv.base_url, api_key="test-key", model=ROOT,
                         runs_dir=str(tmp_path / "runs"), max_retries=1)
    result = asyncio.run(arun("Add", "ctx", options=options, subscribers=[view.on_event]))
    view.finish(result)
    c.from_browser({"kind": "export"})
    reply = c.custom()[-1]
    assert reply["kind"] == "exported", reply
    path = Path(reply["path"])
    assert path.is_file() and path.suffix == ".ipynb" and "print(1 + 1)" in path.read_text()
    assert path.name.startswith("add-20") and path.parent == tmp_path  # the question, then the time
    assert reply["relpath"] == path.name  # beside the notebook: the front end links to it
    c.from_browser({"kind": "hello"})
    assert c.custom()[-1]["exported"] == str(path)


def test_an_export_goes_next_to_the_run_log_when_the_kernels_folder_is_gone(srv, tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    srv.route(root=["FINAL(two)"])
    view, c = make_view()
    options = RLMOptions(provider="anthropic", base_url=srv.base_url, api_key="test-key", model=ROOT,
                         runs_dir=str(tmp_path / "runs"), max_retries=1)
    view.finish(asyncio.run(arun("What is one plus one?", "ctx", options=options, subscribers=[view.on_event])))
    work.rmdir()  # the notebook's folder was deleted while the kernel ran in it
    c.from_browser({"kind": "export"})
    reply = c.custom()[-1]
    path = Path(reply["path"])
    assert path.parent == tmp_path / "runs" and path.name.startswith("what-is-one-plus-one-20")
    assert reply["relpath"] is None and path.is_file()


def test_a_resumed_run_continues_in_a_view_preloaded_from_its_log(srv, tmp_path):
    from rlm_kernel.engine.api import aresume
    from rlm_kernel.engine.record import RunLog

    srv.route(root=["```repl\nprint('step one')\n```", "```repl\nprint('step two')\n```", "FINAL(resumed fine)"])
    options = RLMOptions(provider="anthropic", base_url=srv.base_url, api_key="test-key", model=ROOT,
                         runs_dir=str(tmp_path / "runs"), max_retries=1)
    steering = Steering()

    def stop_after_first_cell(event):
        if event["type"] == ev.CELL_FINISHED:
            steering.stop()

    first = asyncio.run(arun("Go", "ctx", options=options, steering=steering, subscribers=[stop_after_first_cell]))
    assert first.status == "stopped"
    log = RunLog.read(first.log_path)
    view, c = make_view()
    view.load(log.events)
    result = asyncio.run(aresume(log, subscribers=[view.on_event], api_key="test-key"))
    view.finish(result)
    assert result.status == "done"
    c.from_browser({"kind": "hello"})
    items = c.custom()[-1]["items"]
    types = [i["type"] for i in items]
    assert types.count(ev.RUN_FINISHED) == 2 and "run_resumed" in types
    assert types.index("run_resumed") > types.index(ev.RUN_FINISHED)
    assert not any(i["type"] == ev.STATE and i.get("state") in ("crashed", "failed") for i in items)
    assert "resumed fine" in view.static_html and 'data-testid="rlm-status">done<' in view.static_html


def test_memoised_subcalls_are_marked_for_the_tree():
    from rlm_kernel.widget.compact import wire_item

    base = {"v": 1, "seq": 1, "t": 0.0, "run_id": "r", "type": ev.SUBCALL_FINISHED, "step": 1, "id": "s",
            "kind": "llm", "model": "m", "response": "same answer", "usage": {}, "latency": 0.0, "error": None,
            "child_run_id": None}
    assert wire_item({**base, "cached": True})["cached"] is True
    assert "cached" not in wire_item(base)
