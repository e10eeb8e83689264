"""Tool use on the fake servers and in the two clients: the wire shapes the real SDKs parse, the
APIs' pairing rules, and tool input streamed in pieces."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import openai
import pytest
from test_fake_anthropic import body, post, sse_events

from rlm_kernel.engine.clients.anthropic_client import AnthropicClient
from rlm_kernel.engine.clients.openai_client import OpenAICompatClient
from rlm_kernel.engine.clients.tooluse import parse_partial
from rlm_kernel.engine.protocol.tools import ANSWER, PYTHON
from rlm_kernel.testing import FakeAnthropic, FakeOpenAI, Reply, tool_call

CODE = 'rows = context.split("\\n")\nprint(len(rows), "rows")'


@pytest.fixture
def anth():
    with FakeAnthropic() as s:
        yield s


@pytest.fixture
def oai():
    with FakeOpenAI() as s:
        yield s


def test_anthropic_tool_use_streams_as_input_json_delta(anth):
    anth.chunk_chars = 7
    anth.script([Reply("Let me look.", tool_calls=[tool_call("python", "toolu_1", code=CODE)])])
    status, _, raw = post(anth, body(stream=True))
    assert status == 200
    events = sse_events(raw)
    starts = [d["content_block"] for n, d in events if n == "content_block_start"]
    assert [b["type"] for b in starts] == ["text", "tool_use"] and starts[1]["input"] == {}
    pieces = [d["delta"]["partial_json"] for n, d in events if n == "content_block_delta" and d["index"] == 1]
    assert len(pieces) > 3 and json.loads("".join(pieces)) == {"code": CODE}
    assert next(d for n, d in events if n == "message_delta")["delta"]["stop_reason"] == "tool_use"


def test_the_sdk_accumulates_the_fake_tool_input(anth):
    anth.script([Reply("", tool_calls=[tool_call("python", "toolu_1", code=CODE)])])
    sdk = anthropic.Anthropic(base_url=anth.base_url, api_key="k", max_retries=0)
    with sdk.messages.stream(model="claude-sonnet-5-5", max_tokens=100, messages=[{"role": "user", "content": "x"}],
                             tools=[{"name": "python", "input_schema": PYTHON.schema}]) as stream:
        final = stream.get_final_message()
    [use] = final.content
    assert (use.type, use.id, use.input) == ("tool_use", "toolu_1", {"code": CODE})


@pytest.mark.parametrize("messages, error", [
    ([{"role": "user", "content": "q"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "python", "input": {}}]},
      {"role": "user", "content": "no result"}], "without `tool_result` blocks"),
    ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "nope", "content": "x"}]}],
     "unexpected `tool_use_id`"),
    ([{"role": "user", "content": "q"},
      {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "python", "input": {}}]},
      {"role": "user", "content": [{"type": "text", "text": "first"},
                                   {"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}],
     "must come first"),
])
def test_fake_anthropic_enforces_tool_pairing(anth, messages, error):
    status, _, raw = post(anth, body(messages=messages))
    assert status == 400 and error in raw


def test_fake_records_the_tool_results_it_receives(anth):
    anth.script(["ok"])
    messages = [{"role": "user", "content": "q"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "python", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "4721",
                                              "is_error": True}]}]
    assert post(anth, body(messages=messages))[0] == 200
    assert anth.tool_results == [{"id": "t1", "content": "4721", "is_error": True}]


def test_openai_tool_calls_stream_through_the_sdk(oai):
    oai.chunk_chars = 5
    oai.script([Reply("", tool_calls=[tool_call("python", "call_1", code=CODE)])])
    sdk = openai.OpenAI(base_url=oai.base_url, api_key="k", max_retries=0)
    chunks = list(sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    pieces = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert pieces[0].id == "call_1" and pieces[0].function.name == "python"
    assert json.loads("".join(p.function.arguments or "" for p in pieces)) == {"code": CODE}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_fake_openai_enforces_tool_pairing(oai):
    sdk = openai.OpenAI(base_url=oai.base_url, api_key="k", max_retries=0)
    call = {"id": "c1", "type": "function", "function": {"name": "python", "arguments": "{}"}}
    with pytest.raises(openai.BadRequestError, match="must be followed by tool messages"):
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"},
                                                         {"role": "assistant", "tool_calls": [call]},
                                                         {"role": "user", "content": "no result"}])
    with pytest.raises(openai.BadRequestError, match="role 'tool' must be a response"):
        sdk.chat.completions.create(model="m", messages=[{"role": "tool", "tool_call_id": "x", "content": "r"}])


def complete(client: Any, messages: list[dict[str, Any]], seen: list) -> Any:
    async def go() -> Any:
        try:
            return await client.complete(model="claude-sonnet-5-5", system="s", messages=messages,
                                         max_output_tokens=200, tools=[PYTHON, ANSWER],
                                         on_tool=lambda i, name, snap: seen.append((i, name, dict(snap))))
        finally:
            await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
def test_clients_report_growing_tool_input_and_send_results_back(anth, oai, kind):
    srv = anth if kind == "anthropic" else oai
    srv.chunk_chars = 6
    srv.script([Reply("", tool_calls=[tool_call("python", "id_1", code=CODE)]), "done"])
    client = AnthropicClient(api_key="k", base_url=anth.base_url, max_retries=0) if kind == "anthropic" \
        else OpenAICompatClient(oai.base_url, max_retries=0)
    seen: list = []
    first = complete(client, [{"role": "user", "content": "q"}], seen)
    [call] = first.tool_calls
    assert (call.id, call.name, call.input) == ("id_1", "python", {"code": CODE})
    codes = [snap.get("code", "") for _, _, snap in seen]
    assert len(codes) > 3 and codes[-1] == CODE and all(CODE.startswith(c) for c in codes)  # partial, growing
    history = [{"role": "user", "content": "q"},
               {"role": "assistant", "content": "", "tool_calls": [call.to_dict()]},
               {"role": "user", "content": "and a note", "tool_results": [{"id": "id_1", "content": "3 rows"}]}]
    assert complete(client, history, []).text == "done"
    assert srv.tool_results == [{"id": "id_1", "content": "3 rows", "is_error": False}]
    assert srv.requests[-1].last_user_text() == "and a note"


def test_partial_json_shows_a_string_as_far_as_it_came():
    assert parse_partial('{"code": "print(1') == {"code": "print(1"}
    assert parse_partial('{"co') in ({}, None)
    assert parse_partial("") is None and parse_partial("[1, 2") is None
