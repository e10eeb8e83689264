"""Native tool use end to end: scripted tool calls through the real anthropic and openai SDKs
against the loopback fake servers, which check the APIs' tool-use rules and record the results."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nbformat
import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.api import aresume
from rlm_kernel.engine.record import RunLog
from rlm_kernel.export import export_run
from rlm_kernel.testing import FakeAnthropic, FakeOpenAI, Reply, tool_call

ROOT = "claude-sonnet-5-5"
CONTEXT = "The secret access code is 4721. Keep it safe."


def python(code: str, text: str = "") -> Reply:
    return Reply(text, tool_calls=[tool_call("python", code=code)])


def answer(**given: str) -> Reply:
    return Reply("", tool_calls=[tool_call("answer", **given)])


@pytest.fixture
def anth():
    with FakeAnthropic(root_model=ROOT) as s:
        yield s


@pytest.fixture
def oai():
    with FakeOpenAI() as s:
        yield s


def ask_anthropic(srv: FakeAnthropic, tmp_path: Path, root: Any, sub: Any = "sub", **opts: Any):
    srv.route(root=root, sub=sub)
    return rlm("What is the secret access code?", context=CONTEXT, provider="anthropic", base_url=srv.base_url,
               api_key="k", max_retries=0, runs_dir=str(tmp_path / "runs"), **opts)


def ask_openai(srv: FakeOpenAI, tmp_path: Path, root: list[Any], **opts: Any):
    srv.script(root)
    return rlm("What is the secret access code?", context=CONTEXT, provider="openai", base_url=srv.base_url,
               model="local-model", max_retries=0, runs_dir=str(tmp_path / "runs"), **opts)


def roots(srv: FakeAnthropic) -> list:
    return [r for r in srv.requests if r.model == ROOT and r.status == 200]


# --- Anthropic ---------------------------------------------------------------------------------

def test_anthropic_defaults_to_tools_and_ends_with_the_answer_tool(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("code = context.split()[5].rstrip('.')\nprint(code)"),
                                            answer(variable="code")])
    assert result.status == "done" and result.answer == "4721" and result.answer_source == "answer"
    first = roots(anth)[0]
    assert [t["name"] for t in first["tools"]] == ["python", "answer"]
    [res] = anth.tool_results
    assert res["content"].endswith("4721") and not res["is_error"]


def test_answer_in_the_same_turn_as_python_is_set_aside(anth, tmp_path):
    both = Reply("", tool_calls=[tool_call("python", code="print(context[:30])"),
                                 tool_call("answer", text="not mentioned")])
    result = ask_anthropic(anth, tmp_path, [both, answer(text="4721")])
    assert result.answer == "4721" and result.steps == 2
    out, aside = anth.tool_results
    assert "The secret access code" in out["content"]
    assert aside["is_error"] and "Set aside" in aside["content"]


def test_answer_variable_that_does_not_exist_lists_those_that_do(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("words = context.split()"), answer(variable="code"),
                                            answer(variable="words")])
    assert result.status == "done" and result.answer.startswith("['The'")
    err = anth.tool_results[1]
    assert err["is_error"] and "no variable named 'code'" in err["content"] and "exist: words" in err["content"]


def test_unknown_tool_and_empty_python_get_a_clear_result(anth, tmp_path):
    odd = Reply("", tool_calls=[tool_call("search", query="code"), tool_call("python", code="  ")])
    result = ask_anthropic(anth, tmp_path, [odd, answer(text="4721")])
    assert result.answer == "4721"
    unknown, empty = anth.tool_results
    assert "no tool named 'search'" in unknown["content"] and 'needs {"code"' in empty["content"]


def test_fenced_text_in_tools_mode_still_runs_and_is_reminded(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, ["```repl\nprint(context.split()[5])\n```", answer(text="4721")])
    assert result.answer == "4721"
    told = roots(anth)[1].last_user_text()
    assert "4721" in told and "Next time, call the python tool" not in told  # a real fence needs no reminder
    xml = '<invoke name="repl"><parameter name="code">print(2+2)</parameter></invoke>'
    result = ask_anthropic(anth, tmp_path, [xml, answer(text="4")])
    assert result.answer == "4"
    assert "Next time, call the python tool" in roots(anth)[-1].last_user_text()


def test_the_same_tool_call_twice_is_told_so(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("print(len(context))")] * 2 + [answer(text="45")])
    assert result.answer == "45"
    first, second = anth.tool_results
    assert "same code as in your previous step" in second["content"] and "same code" not in first["content"]


def test_a_tool_call_cut_off_at_the_token_limit_does_not_run(anth, tmp_path):
    cut = Reply("", stop_reason="max_tokens", tool_calls=[tool_call("python", code="print('half")])
    result = ask_anthropic(anth, tmp_path, [cut, answer(text="ok")])
    assert result.answer == "ok"
    assert "cut off at the output-token limit" in anth.tool_results[0]["content"]
    assert not any(e for e in RunLog.read(result.log_path).events if e["type"] == ev.CELL_STARTED)


def test_protocol_and_prompt_are_magic_flags():
    from rlm_kernel.kernel.magics import cell_parser

    args = cell_parser().parse_args(["--protocol", "tools", "--prompt", "compact"])
    assert (args.protocol, args.prompt) == ("tools", "compact")


def test_code_that_sets_the_answer_through_the_tool_ends_the_run(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("FINAL(context.split()[5].rstrip('.'))")])
    assert result.answer == "4721" and result.answer_source == "code"


def test_comment_final_in_tool_code_names_the_answer_tool(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("# FINAL(4721)"), answer(text="4721")])
    assert result.answer == "4721"
    assert "inside a comment" in anth.tool_results[0]["content"] and "answer tool" in anth.tool_results[0]["content"]


def test_streamed_tool_input_shows_live_and_the_record_keeps_it(anth, tmp_path):
    anth.chunk_chars = 4
    code = "words = context.split()\nprint(words[5])"
    seen: list[dict] = []
    result = ask_anthropic(anth, tmp_path, [python(code, text="Looking."), answer(text="4721")],
                           subscribers=[seen.append])
    assert result.answer == "4721"
    deltas = [e["text"] for e in seen if e["type"] == ev.TURN_DELTA and e["step"] == 1]
    assert len(deltas) > 5  # the code arrived in pieces
    shown = "".join(deltas)
    assert shown == f"Looking.\n\n```python\n{code}\n```\n"
    finished = next(e for e in seen if e["type"] == ev.TURN_FINISHED and e["step"] == 1)
    assert finished["text"] == shown and finished["tool_calls"][0]["input"] == {"code": code}


def test_cache_breakpoints_cover_tools_and_stay_within_four(anth, tmp_path):
    anth.cache.min_tokens = 50
    pad = "# " + "x" * 400
    replies = [python(f"{pad}\nprint({i})") for i in range(4)] + [answer(text="done")]
    result = ask_anthropic(anth, tmp_path, replies)
    assert result.answer == "done"
    for r in roots(anth):
        marks = json.dumps(r.get("system")).count("cache_control") + json.dumps(r["messages"]).count("cache_control")
        marks += json.dumps(r["tools"]).count("cache_control")
        assert marks <= 4
        assert r["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert result.usage[ROOT].cache_read_tokens > 0


def test_export_shows_the_tool_calls_as_cells(anth, tmp_path):
    result = ask_anthropic(anth, tmp_path, [python("x = 6 * 7\nprint(x)"), python("print(x + 1)"),
                                            answer(variable="x")])
    nb = nbformat.read(export_run(result.log_path, tmp_path / "out.ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "x = 6 * 7\nprint(x)" in code and "print(x + 1)" in code


def test_resume_rebuilds_tool_messages_the_api_accepts(anth, tmp_path):
    anth.route(root=[python("x = 41\nprint(x)"), python("x += 1\nprint(x)")], sub="s")
    result = rlm("q?", context=CONTEXT, provider="anthropic", base_url=anth.base_url, api_key="k", max_retries=0,
                 runs_dir=str(tmp_path / "runs"), max_iterations=2)
    assert result.status in ("budget", "failed")
    log = RunLog.read(result.log_path)
    anth.reset()
    anth.route(root=[answer(variable="x")], sub="s")
    resumed = asyncio.run(aresume(log, api_key="k", max_iterations=5))
    assert resumed.answer == "42"
    [req] = roots(anth)
    kinds = [b["type"] for m in req["messages"] if isinstance(m["content"], list) for b in m["content"]]
    assert kinds.count("tool_use") == 2 and kinds.count("tool_result") == 2


# --- OpenAI-compatible ---------------------------------------------------------------------------

def chats(oai) -> list:
    """The chat requests (the client may first ask the server for its window with a GET)."""
    return [r for r in oai.requests if r.path.endswith("/chat/completions")]


def test_openai_defaults_to_fences_and_sends_no_tools(oai, tmp_path):
    result = ask_openai(oai, tmp_path, ["```repl\nprint(context.split()[5])\n```", "FINAL(4721)"])
    assert result.answer == "4721"
    assert "tools" not in chats(oai)[0]


def test_openai_tools_when_asked(oai, tmp_path):
    oai.chunk_chars = 5
    seen: list[dict] = []
    result = ask_openai(oai, tmp_path, [python("code = context.split()[5].rstrip('.')\nprint(code)"),
                                        answer(variable="code")], protocol="tools", subscribers=[seen.append])
    assert result.answer == "4721" and result.answer_source == "answer"
    assert [t["function"]["name"] for t in chats(oai)[0]["tools"]] == ["python", "answer"]
    [res] = oai.tool_results
    assert res["content"].endswith("4721")
    second = chats(oai)[1]["messages"]
    assert second[-2]["tool_calls"][0]["function"]["name"] == "python" and second[-1]["role"] == "tool"
    shown = "".join(e["text"] for e in seen if e["type"] == ev.TURN_DELTA and e["step"] == 1)
    assert "```python\ncode = context.split()" in shown


def test_openai_answer_next_to_python_is_set_aside(oai, tmp_path):
    both = Reply("", tool_calls=[tool_call("python", code="print(1)"), tool_call("answer", text="guess")])
    result = ask_openai(oai, tmp_path, [both, answer(text="4721")], protocol="tools")
    assert result.answer == "4721"
    assert "Set aside" in oai.tool_results[1]["content"]


def test_unknown_protocol_is_one_clear_error(oai, tmp_path):
    with pytest.raises(ValueError, match="unknown protocol 'xml'; use one of: auto, tools, fences"):
        ask_openai(oai, tmp_path, ["FINAL(x)"], protocol="xml")


# --- the demo model --------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["fences", "tools"])
def test_demo_model_answers_in_both_protocols(tmp_path, protocol):
    text = "The lighthouse keeper's log. On the third night the lamp failed because the wick was cut. " * 40
    result = rlm("Why did the lamp fail?", context=text, model="demo", protocol=protocol,
                 runs_dir=str(tmp_path / "runs"))
    assert result.status == "done" and "wick was cut" in result.answer


# --- tool calls written as text (Qwen2.5-Coder-1.5B on llama-cpp-python, eval_local_partial) -------

QWEN_DOUBLED = ('{{"name": "python", "arguments": {"code": "words = context.split(); code = words[5].rstrip(\'.\'); '
                'print(len(words), code)"}}')
QWEN_TRIPLE = ('```json\n{\n  "name": "python",\n  "arguments": {\n    "code": """\nwords = context.split()\n'
               'code = words[5].rstrip(\'.\')\nprint(code)\n"""\n  }\n}\n```\n\nAssistant:\n```json\n'
               '{\n  "text": "14821.0",\n  "variable": "code"\n}\n```')
QWEN_TAGGED = '<tool_call>\n{"name": "python", "arguments": {"code": "print(context.split()[5])"}}\n</tool_call>'


@pytest.mark.parametrize("reply", [QWEN_DOUBLED, QWEN_TRIPLE.split("\n\nAssistant:")[0], QWEN_TAGGED])
def test_a_tool_call_written_as_json_text_runs(oai, tmp_path, reply):
    result = ask_openai(oai, tmp_path, [reply, '{"text": "4721"}'], protocol="tools")
    assert result.status == "done" and result.answer == "4721"
    told = chats(oai)[1]["messages"][-1]["content"]
    assert "Ran the code of your tool call written as JSON text as cell 1" in told and "4721" in told


def test_an_answer_written_as_json_text_ends_the_run(oai, tmp_path):
    result = ask_openai(oai, tmp_path, [python("code = context.split()[5].rstrip('.')"),
                                        '```json\n{"text": "a guess", "variable": "code"}\n```'], protocol="tools")
    assert result.answer == "4721" and result.steps == 2  # the variable wins over the text, as with the tool


def test_an_invented_json_answer_after_code_waits_for_the_output_then_reads_the_variable(oai, tmp_path):
    # A small model's window gets the compact prompt, which holds an answer next to code (fences-v7).
    result = ask_openai(oai, tmp_path, [QWEN_TRIPLE, '{"variable": "code"}'], protocol="tools")
    assert result.answer == "4721" and result.steps == 2
    told = chats(oai)[1]["messages"][-1]["content"]
    assert "4721" in told and "set aside: it came in the same reply as the code" in told


def test_an_answer_json_next_to_code_is_set_aside(oai, tmp_path):
    # QWEN_TRIPLE's invented answer names a variable its own code made: judged after the code ran.
    result = ask_openai(oai, tmp_path, [QWEN_TRIPLE.replace('"variable": "code"', '"variable": "nothing"'),
                                        '{"text": "4721"}'], protocol="tools")
    assert result.answer == "4721" and result.steps == 2
    told = chats(oai)[1]["messages"][-1]["content"]
    assert "no variable named 'nothing'" in told


def test_a_placeholder_echoed_from_the_nudge_is_not_an_answer(oai, tmp_path):
    result = ask_openai(oai, tmp_path, [python("print(context.split()[5])"), '{"text": "..."}', answer(text="4721")],
                        protocol="tools")
    assert result.answer == "4721" and result.steps == 3
    assert "placeholder" in chats(oai)[2]["messages"][-1]["content"]


QWEN_UNCLOSED = ('{{"name": "python", "arguments": {"code": "i = context.find(\'code is\'); '
                 'print(context[i:i+12])}}}')  # the code string's closing quote is missing
QWEN_ECHOED = ('<tools>\n{"type": "function", "function": {"name": "answer", "description": "Give the final answer", '
               '"parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}\n</tools>')


def test_a_json_tool_call_whose_code_string_never_closes_still_runs(oai, tmp_path):
    result = ask_openai(oai, tmp_path, [QWEN_UNCLOSED, '{"text": "4721"}'], protocol="tools")
    assert result.answer == "4721"
    told = chats(oai)[1]["messages"][-1]["content"]
    assert "Ran the code of your tool call written as JSON text" in told and "code is 4721" in told


def test_a_tool_definition_echoed_back_is_neither_code_nor_an_answer(oai, tmp_path):
    # Qwen once replied with the answer tool's own schema; we answered "object" from its parameters.
    result = ask_openai(oai, tmp_path, [QWEN_ECHOED, answer(text="4721")], protocol="tools")
    assert result.answer == "4721" and result.steps == 2
    assert "called no tool" in chats(oai)[1]["messages"][-1]["content"]


def test_the_answer_tool_before_any_python_is_set_aside_when_the_preview_was_partial(anth, tmp_path):
    long = " ".join(["Nothing to see here."] * 400 + ["The secret access code is 4721."] + ["More filler."] * 400)
    anth.route(root=[answer(text="not mentioned"), python("print(context[context.find('secret'):][:40])"),
                     answer(text="4721")], sub="sub")
    result = rlm("What is the secret access code?", context=long, provider="anthropic", base_url=anth.base_url,
                 api_key="k", max_retries=0, runs_dir=str(tmp_path / "runs"))
    assert (result.answer, result.steps) == ("4721", 3)
    [first] = roots(anth)[1].tool_results()
    assert first["is_error"] and "no code has run yet" in first["content"]
