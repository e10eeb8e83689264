"""The RLM loop end to end through the real anthropic SDK against the loopback fake server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.record import RunLog
from rlm_kernel.testing.fake_anthropic import FakeAnthropic

ROOT = "claude-sonnet-5-5"


@pytest.fixture
def srv():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


def ask(srv: FakeAnthropic, tmp_path: Path, root: Any, sub: Any = "sub-answer", context: Any = "hello world",
        question: str = "What is it?", **opts: Any):
    srv.route(root=root, sub=sub)
    opts.setdefault("max_retries", 2)
    opts.setdefault("api_key", "test-key")
    opts.setdefault("protocol", "fences")  # scripted as text; tests/test_protocol_tools.py scripts tool calls
    return rlm(question, context=context, provider="anthropic", base_url=srv.base_url,
               runs_dir=str(tmp_path / "runs"), **opts)


def root_requests(srv: FakeAnthropic) -> list:
    return [r for r in srv.requests if r.model == ROOT and r.status == 200]



# --- final answers in every form ------------------------------------------------------------

@pytest.mark.parametrize("reply, expected", [
    ("Done.\nFINAL(The answer is 42)", "The answer is 42"),
    ("FINAL(f(x) = (a + (b)) for all x)", "f(x) = (a + (b)) for all x"),
    ("**FINAL(line one\nline two)**", "line one\nline two"),
    ('```repl\nFINAL("from code")\n```', "from code"),
    ('```repl\nanswer["content"] = "dict form"\nanswer["ready"] = True\n```', "dict form"),
    ('```repl\nresult = 6 * 7\n```\nFINAL_VAR(result)', "42"),
    ('```repl\nres = "via var in code"\nFINAL_VAR("res")\n```', "via var in code"),
])
def test_final_answer_forms(srv, tmp_path, reply, expected):
    result = ask(srv, tmp_path, [reply])
    assert result.status == "done"
    assert result.answer == expected


def test_rebinding_answer_to_a_new_dict_counts(srv, tmp_path):
    """`answer = {...}` replaces the name, not the run's dict: the run still takes it as the answer."""
    result = ask(srv, tmp_path, ['```repl\nanswer = {"content": "rebound dict", "ready": True}\n```',
                                 "FINAL(not this)"])
    assert result.status == "done" and result.answer == "rebound dict"
    assert result.steps == 1


def test_final_inline_in_prose_is_not_an_answer(srv, tmp_path):
    result = ask(srv, tmp_path, ["I will call FINAL(x) once I know more.\n```repl\nx = 1\nprint(x)\n```",
                                 "FINAL(real answer)"])
    assert result.answer == "real answer"
    assert result.steps == 2


def test_final_var_of_missing_name_is_fed_back(srv, tmp_path):
    fixed = "```repl\nnothing_here = 'made'\n```\nFINAL_VAR(nothing_here)"
    result = ask(srv, tmp_path, ["FINAL_VAR(nothing_here)", fixed])
    assert result.answer == "made"
    second = root_requests(srv)[1]
    assert "no variable named 'nothing_here'" in second.user_texts()[-1]


def test_reply_without_code_or_answer_gets_a_nudge(srv, tmp_path):
    result = ask(srv, tmp_path, ["Let me think about it.", "FINAL(ok)"])
    assert result.answer == "ok"
    assert "no code that I could run and no final answer" in root_requests(srv)[1].user_texts()[-1]


def test_iteration_cap_forces_one_final_call(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint(1)\n```"] * 3 + ["FINAL(forced)"], max_iterations=3)
    assert result.status == "budget"
    assert result.answer == "forced"
    assert "step limit" in root_requests(srv)[-1].user_texts()[-1]
    assert len(root_requests(srv)) == 4


# --- the REPL -----------------------------------------------------------------------------

def test_state_persists_and_tracebacks_are_fed_back(srv, tmp_path):
    result = ask(srv, tmp_path, [
        "```repl\ncounter = 41\n```",
        "```repl\ncounter += 1\n1 / 0\n```",
        "```repl\nprint('counter is', counter)\n```",
        "FINAL_VAR(counter)",
    ])
    assert result.answer == "42"
    fed = [r.user_texts()[-1] for r in root_requests(srv)]
    assert "ZeroDivisionError" in fed[2] and "Traceback" in fed[2] and "1 / 0" in fed[2]
    assert "counter is 42" in fed[3]


def test_output_is_truncated_head_and_tail(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint('HEAD' + 'x' * 50_000 + 'TAIL')\n```", "FINAL(ok)"],
                 output_limit=2000)
    assert result.status == "done"
    fed = root_requests(srv)[1].user_texts()[-1]
    assert "HEAD" in fed and "TAIL" in fed and "characters omitted" in fed
    assert len(fed) < 2600


def test_cell_timeout_interrupts_a_runaway_cell(srv, tmp_path):
    t0 = time.monotonic()
    result = ask(srv, tmp_path, ["```repl\nwhile True:\n    pass\n```", "FINAL(recovered)"], cell_timeout=1)
    assert time.monotonic() - t0 < 10
    assert result.answer == "recovered"
    assert "timed out after 1 s" in root_requests(srv)[1].user_texts()[-1]


def test_clobbered_helpers_and_context_are_restored(srv, tmp_path):
    result = ask(srv, tmp_path, [
        "```repl\ncontext = context[:2]\ndel llm_query\nllm_query_batched = 3\n```",
        "```repl\nprint(len(context), llm_query('hi'), callable(llm_query_batched))\n```",
        "FINAL(ok)",
    ], context="abcdef", sub="pong")
    assert result.answer == "ok"
    fed = [r.user_texts()[-1] for r in root_requests(srv)]
    assert "rebound `context`" in fed[1]
    assert "6 pong True" in fed[2]


# --- sub-calls --------------------------------------------------------------------------------

def test_batched_subcalls_run_concurrently_in_order(srv, tmp_path):
    srv.latency = lambda r: 1.0 if r.model != ROOT else 0.0  # long enough for the others to arrive
    code = "```repl\nres = llm_query_batched([f'echo {i}' for i in range(64)])\nprint(res[:3], len(res))\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(res)"], sub=lambda r: r.last_user_text().upper(), concurrency=64)
    assert result.subcalls == 64
    assert eval(result.answer) == [f"ECHO {i}" for i in range(64)]
    assert srv.peak_in_flight >= 16, srv.peak_in_flight  # held together, not one after another


def test_failed_prompt_in_a_batch_gives_an_error_string_in_its_slot(srv, tmp_path):
    srv.inject(400, times=1, match=lambda r: r.model != ROOT and "bad" in r.last_user_text(),
               message="prompt is malformed")
    code = "```repl\nres = llm_query_batched(['good', 'bad', 'good too'])\nprint(res)\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(res)"], sub=lambda r: "fine")
    answers = eval(result.answer)
    assert answers[0] == "fine" and answers[2] == "fine"
    assert answers[1].startswith("Error:")


def test_oversized_subcall_is_refused_before_sending(srv, tmp_path):
    code = "```repl\nr = llm_query('x' * 5_000_000)\nprint(r)\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(r)"], sub="never sent")
    assert "prompt too long" in result.answer and "Split the input" in result.answer
    assert not [r for r in srv.requests if r.model != ROOT]


def recursive_root(request) -> str:
    """A root script that works for the parent and its children: children answer from their context."""
    first = request.user_texts()[0]
    n_turns = sum(1 for m in request["messages"] if m["role"] == "assistant")
    if "Question: child task" in first:
        if n_turns == 0:
            return "```repl\nleaf = rlm_query('child task', context=context[:3])\nprint(leaf)\n```"
        return "FINAL_VAR(leaf)"
    if n_turns == 0:
        return "```repl\nout = rlm_query('child task', context=context)\nprint(out)\n```"
    return "FINAL_VAR(out)"


def test_recursion_nests_children_and_depth_limit_falls_back_to_llm_query(srv, tmp_path):
    result = ask(srv, tmp_path, recursive_root, sub=lambda r: "leaf:" + r.last_user_text()[-3:],
                 context="abcdefgh", max_depth=2)
    # root (depth 0) → child (depth 1) → at the limit rlm_query is a plain sub-call on context[:3]
    assert result.answer == "leaf:abc"
    log = result.run
    children = [e for e in log.events if e["type"] == ev.RUN_STARTED and e["parent_run_id"]]
    assert len(children) == 1 and children[0]["depth"] == 1
    sub = [e for e in log.events if e["type"] == ev.SUBCALL_FINISHED]
    assert {e["kind"] for e in sub} == {"rlm"}
    assert any(e["child_run_id"] == children[0]["run_id"] for e in sub)


# --- budgets ----------------------------------------------------------------------------------

def test_subcall_budget_ends_the_run_with_its_reason(srv, tmp_path):
    code = "```repl\nanswer['content'] = 'partial'\nres = llm_query_batched(['a'] * 5)\n```"
    result = ask(srv, tmp_path, [code, "FINAL(never)"], max_subcalls=3)
    assert result.status == "budget"
    assert "subcalls" in result.reason
    assert result.answer == "partial"


def test_token_budget(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint('x')\n```"] * 5, max_tokens=1)
    assert result.status == "budget" and "tokens" in result.reason
    assert result.steps == 1


def test_cost_budget_uses_known_prices(srv, tmp_path):
    result = ask(srv, tmp_path, ["```repl\nprint('x')\n```"] * 5, max_cost=1e-9)
    assert result.status == "budget" and "cost" in result.reason
    assert result.cost is not None and result.cost > 0


def test_wall_clock_budget(srv, tmp_path):
    srv.latency = 0.4
    t0 = time.monotonic()
    result = ask(srv, tmp_path, ["```repl\nprint('x')\n```"] * 20, timeout=1.0)
    assert result.status == "budget" and "time" in result.reason
    assert time.monotonic() - t0 < 5


# --- caching, request sizes, faults ---------------------------------------------------------

def test_cache_breakpoints_sent_and_reads_reported(srv, tmp_path):
    pad = "\n".join(f"# padding line {i} " + "x" * 60 for i in range(120))  # > 1024 tokens per turn
    replies = [f"```repl\n{pad}\nprint({i})\n```" for i in range(3)] + ["FINAL(done)"]
    result = ask(srv, tmp_path, replies)
    reqs = root_requests(srv)
    system = reqs[0]["system"]
    assert isinstance(system, list) and system[-1].get("cache_control") == {"type": "ephemeral"}
    last_user = reqs[2]["messages"][-1]["content"]
    assert isinstance(last_user, list) and last_user[-1].get("cache_control") == {"type": "ephemeral"}
    usage = result.usage[ROOT]
    assert usage.cache_read_tokens > 0 and usage.cache_write_tokens > 0
    assert srv.accounting["cache_read"] == usage.cache_read_tokens


def test_multi_megabyte_context_never_reaches_a_root_request(srv, tmp_path):
    context = "".join(f"record {i}: value {i * 7}\n" for i in range(250_000))  # ~5 MB
    assert len(context) > 5_000_000
    code = ("```repl\nprint(len(context))\n"
            "hits = [l for l in context.splitlines() if l.startswith('record 12345:')]\n```")
    result = ask(srv, tmp_path, [code, "FINAL_VAR(hits)"], context=context)
    assert "value 86415" in result.answer
    for r in root_requests(srv):
        assert r.size < 20_000, r.size


def test_thirty_percent_injected_faults_still_give_the_right_answer(srv, tmp_path):
    srv.fault_rate = 0.3
    srv.fault_retry_after_ms = 1
    code = "```repl\nres = llm_query_batched([f'n={i}' for i in range(20)])\ntotal = sum(int(x) for x in res)\n```"
    result = ask(srv, tmp_path, [code, "FINAL_VAR(total)"], sub=lambda r: r.last_user_text().split("=")[1],
                 max_retries=4)
    assert result.answer == str(sum(range(20)))
    assert any(r.status != 200 for r in srv.requests)


def test_root_call_that_keeps_failing_ends_the_run_and_keeps_finished_steps(srv, tmp_path):
    srv.route(root=["```repl\nx = 1\nprint('step one done')\n```", "never"])
    srv.inject(529, times=50, match=lambda r: len(r["messages"]) > 1)
    result = rlm("q", context="c", provider="anthropic", base_url=srv.base_url, api_key="test-key",
                 runs_dir=str(tmp_path / "runs"), max_retries=1)
    assert result.status == "failed"
    assert "overloaded" in result.reason.lower() or "529" in result.reason
    assert "test-key" not in result.reason
    cells = [e for e in result.run.events if e["type"] == ev.CELL_FINISHED]
    assert cells and "step one done" in cells[0]["outputs"][0]["text"]


# --- contexts -------------------------------------------------------------------------------

@pytest.mark.parametrize("context, probe, expected", [
    ("plain text", "context.upper()", "PLAIN TEXT"),
    (b"raw bytes", "context.decode()", "raw bytes"),
    (["a", "bb", "ccc"], "sum(len(x) for x in context)", "6"),
    ([{"id": 1, "v": "x"}, {"id": 2, "v": "y"}], "','.join(r['v'] for r in context)", "x,y"),
    ({"k1": "v1", "k2": "v2"}, "sorted(context)", "['k1', 'k2']"),
])
def test_context_types(srv, tmp_path, context, probe, expected):
    result = ask(srv, tmp_path, [f"```repl\nout = {probe}\n```", "FINAL_VAR(out)"], context=context)
    assert result.answer == expected
    meta = result.run.started()["context"]
    assert meta["type"] == type(context).__name__


def test_missing_or_unsupported_context_is_a_clear_error(tmp_path):
    from rlm_kernel.engine.context import ContextError

    with pytest.raises(TypeError, match="needs the input"):
        rlm("q", model="demo")
    with pytest.raises(ContextError, match="context"):
        rlm("q", context=None, model="demo", runs_dir=str(tmp_path))
    with pytest.raises(ContextError):
        rlm("q", context=(x for x in range(3)), model="demo", runs_dir=str(tmp_path))


def test_no_key_is_one_clear_line(tmp_path):
    from rlm_kernel.engine.clientset import ConfigError

    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY") as info:
        rlm("q", context="c", runs_dir=str(tmp_path))
    assert "\n" not in str(info.value) and "demo" in str(info.value)


# --- the record -----------------------------------------------------------------------------

def test_run_log_records_every_event_kind_without_the_key(srv, tmp_path, monkeypatch):
    key = "sk-ant-api03-" + "Zq7vLm2XwR9tYp4K" * 5 + "-AA"
    monkeypatch.setenv("ANTHROPIC_API_KEY", key)
    code = ("```repl\nimport os\nprint('the key is', os.environ['ANTHROPIC_API_KEY'])\nprint(dict(os.environ))\n"
            "r = llm_query('ping')\nprint(r)\n```")
    result = ask(srv, tmp_path, [code, "FINAL_VAR(r)"], sub="pong", api_key=key)
    assert result.answer == "pong"
    raw = Path(result.log_path).read_text()
    assert "the key is" in raw  # the generated code did print it, and its output was recorded
    assert key not in raw and key[:20] not in raw and key[-20:] not in raw
    types = [json.loads(line)["type"] for line in raw.splitlines()]
    for t in (ev.RUN_STARTED, ev.TURN_STARTED, ev.TURN_FINISHED, ev.CELL_STARTED, ev.CELL_FINISHED,
              ev.SUBCALL_STARTED, ev.SUBCALL_FINISHED, ev.FEEDBACK, ev.RUN_FINISHED):
        assert t in types, t
    assert ev.TURN_DELTA not in types
    log = RunLog.read(result.log_path)
    assert log.status == "done"
    started = log.started()
    assert started["options"].get("api_key") is None and "hello world" in json.dumps(started["context"])


def test_demo_model_answers_offline(tmp_path):
    text = " ".join(f"Line {i} is about the weather." for i in range(2000))
    text += " The treasure is buried under the old oak tree."
    result = rlm("Where is the treasure buried?", context=text, model="demo", runs_dir=str(tmp_path))
    assert result.status == "done" and result.demo
    assert "old oak tree" in result.answer
    assert result.subcalls >= 2
    assert "demo" in result.summary()


def test_identical_subcalls_are_answered_once(srv, tmp_path):
    code = ("```repl\na = llm_query('same question')\nb = llm_query_batched(['same question', 'other', 'other'])\n"
            "print(a, b)\n```")
    result = ask(srv, tmp_path, [code, "FINAL_VAR(b)"], sub=lambda r: "answer to " + r.last_user_text())
    assert eval(result.answer) == ["answer to same question", "answer to other", "answer to other"]
    sub_requests = [r for r in srv.requests if r.model != ROOT]
    assert sorted(r.last_user_text() for r in sub_requests) == ["other", "same question"]
    finished = [e for e in result.run.events if e["type"] == ev.SUBCALL_FINISHED]
    assert sum(e["cached"] for e in finished) == 2 and len(finished) == 4


def test_memoize_off_sends_every_subcall(srv, tmp_path):
    code = "```repl\nb = llm_query_batched(['x', 'x', 'x'])\n```"
    ask(srv, tmp_path, [code, "FINAL_VAR(b)"], sub="y", memoize=False)
    assert len([r for r in srv.requests if r.model != ROOT]) == 3


def test_root_replies_stream_only_when_someone_watches(srv, tmp_path):
    """A run tree (a subscriber) sees the reply as it is written; a script's rlm() has nobody to show
    deltas to, so its root turns are plain requests, and its record is the same."""
    script = ["```repl\nx = 6 * 7\nprint(x)\n```", "FINAL_VAR(x)"]
    plain = ask(srv, tmp_path, list(script))
    assert [r.stream for r in root_requests(srv)] == [False, False]
    deltas: list[str] = []
    watched = ask(srv, tmp_path, list(script),
                  subscribers=[lambda e: deltas.append(e["text"]) if e["type"] == ev.TURN_DELTA else None])
    assert [r.stream for r in root_requests(srv)][2:] == [True, True]
    assert plain.answer == watched.answer == "42"
    assert "".join(deltas) == "".join(script)
    turns = [[e["text"] for e in r.run.events if e["type"] == ev.TURN_FINISHED] for r in (plain, watched)]
    assert turns[0] == turns[1] == script
