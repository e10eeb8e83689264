"""llm_query_batched(..., batch=True) through the Message Batches API: the real SDK against the fake
server's batch endpoints, in runs that are steered, budgeted, killed and resumed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import pricing
from rlm_kernel.engine.api import aresume
from rlm_kernel.engine.record import RunLog
from rlm_kernel.engine.replay import RecordedAnswers
from rlm_kernel.engine.steering import Steering
from rlm_kernel.testing import FakeAnthropic, FakeOpenAI

ROOT, SUB = "claude-sonnet-5-5", "claude-opus-5-5"  # both with a list price


def batch_code(prompts: list[str], batch: str = "True") -> str:
    return f"```repl\nr = llm_query_batched({prompts!r}, batch={batch})\nprint(json.dumps(r))\n```"


def answer(request: Any) -> str:
    return "A:" + request.last_user_text()


@pytest.fixture
def srv() -> Any:
    with FakeAnthropic(root_model=ROOT) as server:
        server.batches.duration = 0.2
        yield server


def go(srv: FakeAnthropic, tmp_path: Path, root: list[str], **opts: Any) -> Any:
    srv.route(root=root, sub=answer)
    options = {"api_key": "test", "base_url": srv.base_url, "runs_dir": str(tmp_path), "model": ROOT,
               "sub_model": SUB, "batch_poll": 0.02, **opts}
    return rlm("q", context="ctx", **options)


def printed(result: Any) -> list[str]:
    """What the last cell printed, as JSON."""
    cell = [e for e in result.run.events if e["type"] == "cell_finished"][-1]
    text = "".join(o.get("text", "") for o in cell["outputs"] if o.get("name") == "stdout")
    return json.loads(text)


def of_type(result: Any, kind: str) -> list[dict[str, Any]]:
    return [e for e in result.run.events if e["type"] == kind]


# --- the fake endpoints, through the SDK ------------------------------------------------------------

def test_fake_batch_endpoints_progress_and_settle_every_request(srv: FakeAnthropic) -> None:
    srv.models = {SUB}
    srv.route(sub=answer)
    srv.inject(500, match=lambda r: r.last_user_text() == "boom", message="kaput")

    async def scenario() -> tuple[list[Any], dict[str, Any]]:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=srv.base_url)
        reqs = [{"custom_id": f"c{i}", "params": {"model": SUB, "max_tokens": 50,
                                                 "messages": [{"role": "user", "content": f"q{i}"}]}}
                for i in range(4)]
        reqs.append({"custom_id": "boom", "params": {"model": SUB, "max_tokens": 50,
                                                    "messages": [{"role": "user", "content": "boom"}]}})
        reqs.append({"custom_id": "nomodel", "params": {"model": "claude-nope", "max_tokens": 50,
                                                       "messages": [{"role": "user", "content": "x"}]}})
        b = await client.messages.batches.create(requests=reqs)
        seen = [b.request_counts.processing]
        while b.processing_status != "ended":
            await asyncio.sleep(0.03)
            b = await client.messages.batches.retrieve(b.id)
            seen.append(b.request_counts.processing)
        results = {r.custom_id: r.result async for r in await client.messages.batches.results(b.id)}
        return seen, results

    seen, results = asyncio.run(scenario())
    assert seen[0] == 6 and seen[-1] == 0 and len(set(seen)) > 2  # counts move while it runs
    assert {k: v.type for k, v in results.items()} == {
        "c0": "succeeded", "c1": "succeeded", "c2": "succeeded", "c3": "succeeded", "boom": "errored",
        "nomodel": "errored"}
    assert results["c2"].message.content[0].text == "A:q2"
    assert results["boom"].error.error.message == "kaput"
    assert results["nomodel"].error.error.type == "not_found_error"
    assert srv.accounting["batch_requests"] == 4 and srv.accounting["requests"] == 0


def test_fake_batch_cancel_and_expiry(srv: FakeAnthropic) -> None:
    srv.batches.duration = 30.0

    async def scenario() -> tuple[str, dict[str, int], dict[str, int]]:
        client = anthropic.AsyncAnthropic(api_key="k", base_url=srv.base_url)
        req = [{"custom_id": "a", "params": {"model": SUB, "max_tokens": 5,
                                            "messages": [{"role": "user", "content": "x"}]}}]
        b = await client.messages.batches.create(requests=req)
        canceling = (await client.messages.batches.cancel(b.id)).processing_status
        canceled = (await client.messages.batches.retrieve(b.id)).request_counts.model_dump()
        srv.batches.expire_after = 0.05
        b2 = await client.messages.batches.create(requests=req)
        await asyncio.sleep(0.1)
        expired = (await client.messages.batches.retrieve(b2.id)).request_counts.model_dump()
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.batches.retrieve("msgbatch_nope")
        return canceling, canceled, expired

    canceling, canceled, expired = asyncio.run(scenario())
    assert canceling == "canceling"
    assert canceled["canceled"] == 1 and canceled["processing"] == 0
    assert expired["expired"] == 1


# --- runs ----------------------------------------------------------------------------------------

def test_batch_answers_land_in_input_order_with_errors_in_failed_slots(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.inject(500, match=lambda r: r.last_user_text() == "bad", message="exploded")
    prompts = ["one", "two", "bad", "three", "one"]
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(prompts), "FINAL(ok)"])
    assert res.status == "done"
    got = printed(res)
    assert got[:2] == ["A:one", "A:two"] and got[3:] == ["A:three", "A:one"]
    assert got[2].startswith("Error: ") and "exploded" in got[2]
    (batch,) = srv.batches.created
    assert len(batch.requests) == 4  # the repeated prompt is sent once
    assert srv.accounting["requests"] == 3  # root turns only: no prompt went out as an ordinary call
    finished = [e for e in of_type(res, "subcall_finished") if e.get("batch_api")]
    assert len(finished) == 5 and sum(bool(e["cached"]) for e in finished) == 1


def test_batch_cost_is_half_price_and_max_cost_uses_it(srv: FakeAnthropic, tmp_path: Path) -> None:
    big = ["x" * 800 + str(i) for i in range(8)]  # ~200 input tokens each
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(big), "FINAL(ok)"])
    batch_usage = res.usage[pricing.batch_key(SUB)]
    assert batch_usage.calls == 8 and batch_usage.input_tokens >= 1600
    full = pricing.cost(SUB, batch_usage)
    root_cost = pricing.cost(ROOT, res.usage[ROOT])
    assert res.cost == pytest.approx(root_cost + full / 2)
    # A budget the batch fits at its price but would not fit at the standard price.
    srv.reset()
    srv.batches.duration = 0.2
    cap = root_cost + 0.75 * full
    res2 = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(big), "FINAL(ok)"], max_cost=cap)
    assert res2.status == "done", res2.reason


def test_max_subcalls_counts_the_prompts(srv: FakeAnthropic, tmp_path: Path) -> None:
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["a", "b", "c", "d"]), "FINAL(x)"],
             max_subcalls=3)
    assert res.status == "budget" and "subcalls" in (res.reason or "")
    assert srv.batches.created == []


def test_progress_events_follow_the_batch(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.batches.duration = 0.4
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code([f"p{i}" for i in range(8)]), "FINAL(ok)"])
    (created,) = of_type(res, "batch_created")
    assert created["count"] == 8 and created["api_batch_id"] == srv.batches.created[0].id
    assert sorted(created["requests"]) == [f"r{i}" for i in range(8)]
    progress = of_type(res, "batch_progress")
    processing = [e["counts"]["processing"] for e in progress]
    assert processing[0] > processing[-1] == 0 and len(progress) >= 3
    assert progress[-1]["status"] == "ended" and progress[-1]["counts"]["succeeded"] == 8
    (finished,) = of_type(res, "batch_finished")
    assert finished["error"] is None


def test_stop_while_waiting_cancels_the_batch(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.batches.duration = 60.0
    steering = Steering()

    def on_event(e: dict[str, Any]) -> None:
        if e["type"] == "batch_progress":
            steering.stop()

    t0 = time.monotonic()
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["a", "b"]), "FINAL(never)"],
             steering=steering, subscribers=[on_event])
    assert res.status == "stopped"
    assert time.monotonic() - t0 < 15
    assert srv.batches.cancels == 1
    assert srv.batches.created[0].cancel_at is not None
    (finished,) = of_type(res, "batch_finished")  # the tree is told, so it no longer shows it processing
    assert finished["status"] == "canceled" and "canceled" in finished["error"]


def test_pause_holds_the_answers_until_the_run_continues(srv: FakeAnthropic, tmp_path: Path) -> None:
    steering = Steering()
    seen: dict[str, float] = {}

    def on_event(e: dict[str, Any]) -> None:
        if e["type"] == "batch_created":
            steering.pause()
        if e["type"] == "batch_finished":
            seen["finished"] = time.monotonic()
            threading.Timer(0.6, steering.resume).start()
        if e["type"] == "cell_finished" and "finished" in seen:
            seen["cell"] = time.monotonic()

    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["a", "b"]), "FINAL(ok)"],
             steering=steering, subscribers=[on_event])
    assert res.status == "done"
    assert seen["cell"] - seen["finished"] >= 0.5
    assert printed(res) == ["A:a", "A:b"]


def test_auto_uses_batches_from_the_threshold(srv: FakeAnthropic, tmp_path: Path) -> None:
    code = ("```repl\nimport json\nsmall = llm_query_batched(['a', 'b'])\nbig = llm_query_batched(['c', 'd', 'e'])\n"
            "print(json.dumps(small + big))\n```")
    res = go(srv, tmp_path, [code, "FINAL(ok)"], batch_api="auto", batch_threshold=3)
    assert printed(res) == ["A:a", "A:b", "A:c", "A:d", "A:e"]
    (batch,) = srv.batches.created
    assert [r["params"]["messages"][0]["content"] for r in batch.requests] == ["c", "d", "e"]


def test_batch_api_off_runs_ordinary_calls_with_a_note(srv: FakeAnthropic, tmp_path: Path) -> None:
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["a", "b"]), "FINAL(ok)"], batch_api="off")
    assert printed(res) == ["A:a", "A:b"]
    assert srv.batches.created == []
    cell = of_type(res, "cell_finished")[1]
    notes = [o["text"] for o in cell["outputs"] if o.get("name") == "stderr"]
    assert notes == ["Note: batch_api is off for this run; the prompts ran as ordinary concurrent calls.\n"]


def test_other_providers_fall_back_with_a_note(fake_openai: FakeOpenAI, tmp_path: Path) -> None:
    root = iter(["```repl\nimport json\n```", batch_code(["a", "b"]), "FINAL(ok)"])
    fake_openai.responder = lambda r: next(root) if r.model == "big" else "B:" + r.last_user_text()
    res = rlm("q", context="ctx", provider="openai", base_url=fake_openai.base_url, model="big", sub_model="small",
              runs_dir=str(tmp_path))
    assert printed(res) == ["B:a", "B:b"]
    cell = of_type(res, "cell_finished")[1]
    assert "has no Message Batches API" in "".join(o.get("text", "") for o in cell["outputs"])


def test_a_bad_batch_api_value_is_one_clear_error(srv: FakeAnthropic, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_api must be one of on, auto, off"):
        go(srv, tmp_path, ["FINAL(x)"], batch_api="sometimes")


def test_replay_accepts_batch_true() -> None:
    rec = RecordedAnswers()
    rec.add("llm", "a", "A:a")
    ns: dict[str, Any] = {}
    rec.bind(ns)
    assert ns["llm_query_batched"](["a"], batch=True) == ["A:a"]


def test_a_timed_out_cell_leaves_the_batch_and_asking_again_collects_it(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.batches.duration = 1.2
    code = batch_code(["a", "b", "c"])
    res = go(srv, tmp_path, ["```repl\nimport json\n```", code, code, code, code, "FINAL(ok)"], cell_timeout=0.5)
    assert res.status == "done"
    cells = of_type(res, "cell_finished")
    assert cells[1]["timed_out"] and not cells[-1]["timed_out"]
    assert printed(res) == ["A:a", "A:b", "A:c"]
    assert len(srv.batches.created) == 1
    assert res.usage[pricing.batch_key(SUB)].calls == 3  # charged once


CHILD = """
import sys
from rlm_kernel import rlm
rlm("q", context="ctx", api_key="test", base_url=sys.argv[1], runs_dir=sys.argv[2], model=sys.argv[3],
    sub_model=sys.argv[4], batch_poll=0.05)
"""


def test_a_killed_process_loses_no_batch_resume_collects_it(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.batches.duration = 2.0
    code = batch_code(["a", "b", "c"])
    srv.route(root=["```repl\nimport json\n```", code, code, "FINAL(collected)"], sub=answer)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1]), *sys.path])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, srv.base_url, str(tmp_path), ROOT, SUB], env=env)
    try:
        deadline = time.monotonic() + 60
        log_path = None
        while time.monotonic() < deadline and child.poll() is None:
            logs = list(tmp_path.glob("*.jsonl"))
            if logs and "batch_created" in logs[0].read_text():
                log_path = logs[0]
                break
            time.sleep(0.02)
        assert log_path is not None, "the child never created its batch"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert RunLog.read(log_path).status == "crashed"
    res = asyncio.run(aresume(log_path, api_key="test", batch_poll=0.05))
    assert res.status == "done" and res.answer == "collected"
    assert len(srv.batches.created) == 1  # collected, not sent again
    cells = [e for e in RunLog.read(log_path).events if e["type"] == "cell_finished"]
    assert json.loads(cells[-1]["outputs"][0]["text"]) == ["A:a", "A:b", "A:c"]
    assert res.usage[pricing.batch_key(SUB)].calls == 3


def test_the_widget_gets_batch_progress_without_the_request_mapping() -> None:
    from rlm_kernel.widget.compact import wire_item

    created = {"v": 1, "seq": 1, "t": 0.0, "run_id": "r", "type": "batch_created", "step": 1, "batch": "b",
               "api_batch_id": "msgbatch_1", "model": SUB, "count": 2, "requests": {"r0": "s0", "r1": "s1"}}
    assert wire_item(created) == {"type": "batch_created", "run_id": "r", "seq": 1, "t": 0.0, "step": 1,
                                  "batch": "b", "api_batch_id": "msgbatch_1", "model": SUB, "count": 2}


def test_a_batch_answer_is_remembered_for_later_sub_calls(srv: FakeAnthropic, tmp_path: Path) -> None:
    later = "```repl\nprint(json.dumps([llm_query('two'), *llm_query_batched(['one', 'new'])]))\n```"
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["one", "two"]), later, "FINAL(ok)"])
    assert printed(res) == ["A:two", "A:one", "A:new"]
    sent = [r.last_user_text() for r in srv.requests if r.model == SUB]
    assert sent == ["new"]  # only the prompt no batch had answered went out as an ordinary call
    assert len(srv.batches.created) == 1


def test_a_refused_batch_gives_every_slot_its_reason(srv: FakeAnthropic, tmp_path: Path) -> None:
    srv.inject(413, match=lambda r: r.path == "/v1/messages/batches", message="batch too large (fake)")
    res = go(srv, tmp_path, ["```repl\nimport json\n```", batch_code(["a", "b"]), "FINAL(ok)"])
    got = printed(res)
    assert len(got) == 2 and all(g.startswith("Error: ") and "batch too large (fake)" in g for g in got)
    assert srv.batches.created == []
