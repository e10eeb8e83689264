"""AnthropicClient through the real SDK against the loopback fake: streaming, usage, caching,
retries, error messages, concurrency."""

from __future__ import annotations

import asyncio
import socket
import threading
import warnings
from typing import Any

import anthropic
import pytest

from rlm_kernel.engine.clients.anthropic_client import AnthropicClient, build_request, context_window_for
from rlm_kernel.engine.clients.openai_client import OpenAICompatClient
from rlm_kernel.engine.clientset import ConfigError, make_clients, resolve_provider
from rlm_kernel.engine.modelio import ModelIO
from rlm_kernel.engine.options import DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL, RLMOptions
from rlm_kernel.engine.types import Completion, ModelClient, ModelError
from rlm_kernel.testing import FakeAnthropic, count_tokens

KEY = "sk-ant-api03-TESTKEYtestkey0123456789abcdef"
MODEL = DEFAULT_ROOT_MODEL


def client_for(srv: FakeAnthropic, **kwargs: Any) -> AnthropicClient:
    return AnthropicClient(api_key=KEY, base_url=srv.base_url, **kwargs)


def ask(client: AnthropicClient, text: str = "hello", **kwargs: Any) -> Completion:
    async def go() -> Completion:
        try:
            return await client.complete(
                model=kwargs.pop("model", MODEL), system=kwargs.pop("system", "You are terse."),
                messages=kwargs.pop("messages", [{"role": "user", "content": text}]),
                max_output_tokens=kwargs.pop("max_output_tokens", 500), **kwargs,
            )
        finally:
            await client.aclose()

    return asyncio.run(go())


def model_error(client: AnthropicClient, **kwargs: Any) -> str:
    with pytest.raises(ModelError) as info:
        ask(client, **kwargs)
    message = str(info.value)
    assert KEY not in message and "TESTKEY" not in message
    return message


def test_only_watched_or_long_replies_are_streamed(fake_anthropic: FakeAnthropic) -> None:
    """A sub-call nobody watches is one plain request (half the client CPU of a stream, which a wide
    fan-out pays serially); a reply with a live view, or allowed a long output, streams."""
    fake_anthropic.script(["quiet", "watched", "long"])
    quiet = ask(client_for(fake_anthropic))
    seen: list[str] = []
    ask(client_for(fake_anthropic), on_text=seen.append)
    ask(client_for(fake_anthropic), max_output_tokens=32_000)
    assert [r.stream for r in fake_anthropic.requests] == [False, True, True]
    assert quiet.text == "quiet" and quiet.stop_reason == "end_turn" and quiet.usage.output_tokens > 0
    assert "".join(seen) == "watched"


def test_a_plain_request_keeps_the_sdk_retries(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.inject(529, times=1, retry_after_ms=5)
    fake_anthropic.script(["after a retry"])
    assert ask(client_for(fake_anthropic)).text == "after a retry"
    assert [r.stream for r in fake_anthropic.requests] == [False, False]


def test_is_a_model_client() -> None:
    assert isinstance(AnthropicClient(api_key=KEY), ModelClient)
    assert AnthropicClient().label == "anthropic"


def test_streams_text_deltas_in_order_and_maps_usage(fake_anthropic: FakeAnthropic) -> None:
    reply = "The answer is forty-two, as computed by the REPL."
    fake_anthropic.script([reply])
    fake_anthropic.chunk_chars = 7
    fake_anthropic.stream_hold = threading.Event()  # the rest of the reply waits for the first delta here
    deltas: list[str] = []

    def on_text(t: str) -> None:
        deltas.append(t)
        fake_anthropic.stream_hold.set()

    done = ask(client_for(fake_anthropic), "What is six times seven?", on_text=on_text)
    assert deltas == [reply[i:i + 7] for i in range(0, len(reply), 7)]
    assert fake_anthropic.stream_hold_expired == 0  # the first delta came while the reply was still open
    assert done.text == reply and done.model == MODEL and done.stop_reason == "end_turn"
    assert done.usage.output_tokens == count_tokens(reply)
    assert done.usage.input_tokens == count_tokens("You are terse.") + count_tokens("What is six times seven?")
    assert done.usage.calls == 1 and done.latency > 0
    [rec] = fake_anthropic.requests
    assert rec.stream and rec["max_tokens"] == 500
    assert "authorization" not in rec.headers


def test_max_tokens_stop_reason_is_reported(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(["x" * 400])
    done = ask(client_for(fake_anthropic), max_output_tokens=10)
    assert done.stop_reason == "max_tokens" and done.usage.output_tokens == 10


def conversation(turns: int) -> list[dict[str, str]]:
    messages = []
    for i in range(turns):
        messages.append({"role": "user", "content": f"turn {i} " + "u" * 2000})
        if i < turns - 1:
            messages.append({"role": "assistant", "content": f"reply {i}"})
    return messages


def breakpoints(rec: dict[str, Any]) -> list[str]:
    """Where cache_control marks are: 'system' or 'message N'."""
    found = [f"system {i}" for i, b in enumerate(rec.get("system") or []) if "cache_control" in b]
    for n, m in enumerate(rec["messages"]):
        if isinstance(m["content"], list):
            found += [f"message {n}" for b in m["content"] if "cache_control" in b]
    return found


def test_cache_breakpoints_on_system_and_last_two_user_messages(fake_anthropic: FakeAnthropic) -> None:
    client = client_for(fake_anthropic)
    ask(client, system="S" * 4000, messages=conversation(3))
    rec = fake_anthropic.requests[-1]
    assert rec["system"] == [{"type": "text", "text": "S" * 4000, "cache_control": {"type": "ephemeral"}}]
    assert breakpoints(rec) == ["system 0", "message 2", "message 4"]
    assert rec["messages"][4]["content"][-1]["text"].startswith("turn 2")
    assert rec["messages"][1] == {"role": "assistant", "content": "reply 0"}


def test_no_breakpoints_without_cache(fake_anthropic: FakeAnthropic) -> None:
    ask(client_for(fake_anthropic), system="S" * 4000, messages=conversation(3), cache=False)
    rec = fake_anthropic.requests[-1]
    assert rec["system"] == "S" * 4000 and breakpoints(rec) == []
    assert all(isinstance(m["content"], str) for m in rec["messages"])


def test_never_more_than_four_breakpoints() -> None:
    marked = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    messages = [{"role": "user", "content": [dict(marked), dict(marked)]}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "last"}]
    system, msgs = build_request("sys", messages, cache=True)
    total = sum(1 for b in system if "cache_control" in b) + sum(
        1 for m in msgs if isinstance(m["content"], list) for b in m["content"] if "cache_control" in b)
    assert total == 4
    assert msgs[2]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert messages[2]["content"] == "last"  # the caller's messages are not modified


def test_marks_already_present_and_the_system_prompt_count_toward_the_four(fake_anthropic: FakeAnthropic) -> None:
    """Two marks the caller set, the system prompt, and the last two user messages would be five:
    the API rejects that (the fake does as the API does), so the oldest new mark is left out."""
    marked = {"type": "text", "text": "kept", "cache_control": {"type": "ephemeral"}}
    messages = [{"role": "user", "content": [dict(marked), dict(marked)]}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": "second"}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "last"}]
    done = ask(client_for(fake_anthropic), system="S" * 4000, messages=messages)
    assert done.text
    [rec] = fake_anthropic.requests
    assert rec.status == 200
    assert breakpoints(rec) == ["system 0", "message 0", "message 0", "message 4"]
    assert rec["messages"][2]["content"] == "second"
    # With no system prompt the freed breakpoint goes to the second-last user message.
    ask(client_for(fake_anthropic), system="", messages=messages)
    assert breakpoints(fake_anthropic.requests[-1]) == ["message 0", "message 0", "message 2", "message 4"]


def test_second_turn_reads_the_first_turns_prefix(fake_anthropic: FakeAnthropic) -> None:
    client = client_for(fake_anthropic)
    system = "You are an RLM. " * 300  # ~1200 tokens: cacheable on its own

    async def run() -> list[Completion]:
        messages: list[dict[str, str]] = [{"role": "user", "content": "Question: " + "q" * 400}]
        results = []
        for step in range(3):
            done = await client.complete(model=MODEL, system=system, messages=messages, max_output_tokens=200)
            results.append(done)
            messages += [{"role": "assistant", "content": done.text},
                         {"role": "user", "content": f"Output of step {step}: " + "o" * 800}]
        await client.aclose()
        return results

    first, second, third = asyncio.run(run())
    assert first.usage.cache_read_tokens == 0 and first.usage.cache_write_tokens > 1000
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens
    assert third.usage.cache_read_tokens == second.usage.cache_read_tokens + second.usage.cache_write_tokens
    for done in (second, third):
        assert done.usage.input_tokens == 0  # everything is either read or newly written
    acc = fake_anthropic.accounting
    assert acc["cache_read"] == second.usage.cache_read_tokens + third.usage.cache_read_tokens
    assert acc["billed_equivalent_input"] < acc["cache_read"] + acc["cache_write"]


@pytest.mark.parametrize(
    ("status", "header", "wait"),
    [(429, {"retry_after": 1}, 1.0), (529, {"retry_after_ms": 700}, 0.7), (500, {}, None)],
)
def test_retries_honour_retry_after(fake_anthropic: FakeAnthropic, status: int, header: dict, wait: float | None,
                                    ) -> None:
    fake_anthropic.inject(status, times=1, **header)
    done = ask(client_for(fake_anthropic), "retry me")
    assert done.text == "OK"
    failed, succeeded = fake_anthropic.requests
    assert (failed.status, succeeded.status) == (status, 200)
    assert succeeded.retry_count == 1
    gap = succeeded.time - failed.time
    if wait is None:  # the SDK's own backoff: 0.5 s less up to 25 % jitter
        assert 0.3 <= gap < 0.9, gap
    else:
        assert wait - 0.05 <= gap < wait + 0.5, gap


def test_exhausted_retries_give_an_actionable_error(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.inject(429, times=10, retry_after_ms=5)
    message = model_error(client_for(fake_anthropic, max_retries=2))
    assert "Rate limited" in message and "429" in message and "after 2 retries" in message
    assert "concurrency" in message
    assert len(fake_anthropic.requests) == 3


def test_overloaded_after_retries(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.inject(529, times=10, retry_after_ms=5)
    message = model_error(client_for(fake_anthropic, max_retries=1))
    assert "overloaded" in message and "after 1 retry" in message


def test_error_inside_the_stream_is_not_retried(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(["partial text that will be cut"])
    fake_anthropic.inject(529, in_stream=True)
    seen: list[str] = []
    with pytest.raises(ModelError, match=r"overloaded.*not retried"):
        ask(client_for(fake_anthropic), on_text=seen.append)
    assert len(fake_anthropic.requests) == 1 and seen  # some text had arrived before the error


def test_rejected_key_says_which_variable(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.api_key = "the-right-key"
    message = model_error(client_for(fake_anthropic))
    assert "401" in message and "ANTHROPIC_API_KEY" in message
    assert len(fake_anthropic.requests) == 1  # 401 is not retried


def test_a_key_echoed_by_the_server_is_redacted(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.inject(400, message=f"bad request from {KEY} (Authorization: Bearer {KEY[::-1]})")
    message = model_error(client_for(fake_anthropic))
    assert message.count("[REDACTED]") == 2 and "Bearer [REDACTED]" in message


def test_unknown_model_is_named(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.models = {MODEL}
    message = model_error(client_for(fake_anthropic), model="claude-sonnet-9-9")
    assert "'claude-sonnet-9-9'" in message and "404" in message and "not found" in message


def test_prompt_too_long_says_so(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.context_window = 100
    message = model_error(client_for(fake_anthropic), text="x" * 2000)
    assert "too long" in message and MODEL in message


def test_connection_failure_names_the_base_url() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = AnthropicClient(api_key=KEY, base_url=f"http://127.0.0.1:{port}", max_retries=1)
    message = model_error(client)
    assert f"127.0.0.1:{port}" in message and "connect" in message.lower()


def test_missing_key_is_reported_before_any_request(fake_anthropic: FakeAnthropic) -> None:
    message = model_error(AnthropicClient(base_url=fake_anthropic.base_url))
    assert "ANTHROPIC_API_KEY" in message
    assert fake_anthropic.requests == []


def test_reads_key_and_base_url_from_the_environment(fake_anthropic: FakeAnthropic,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    fake_anthropic.api_key = KEY
    assert ask(AnthropicClient()).text == "OK"


def test_default_models_raise_no_deprecation_warning(fake_anthropic: FakeAnthropic) -> None:
    """Our default ids, sent through our client, make the installed SDK warn about nothing. (Which ids the
    SDK deprecates is its business and changes between releases; the test only asks about ours.)"""
    client = client_for(fake_anthropic)
    for model in (DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL):
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # a warning fails the call, and so the test
            ask(client, model=model)
        assert fake_anthropic.requests[-1].model == model  # the id went through the SDK's request path


def test_sixty_four_concurrent_streams_overlap(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.latency = 1.0  # each request is held long enough for the others to arrive
    fake_anthropic.responder = lambda r: f"answer to {r.last_user_text()}"
    client = client_for(fake_anthropic)

    async def run() -> list[Completion]:
        results = await asyncio.gather(*[
            client.complete(model=DEFAULT_SUB_MODEL, system="", messages=[{"role": "user", "content": f"q{i}"}],
                            max_output_tokens=50)
            for i in range(64)
        ])
        await client.aclose()
        return results

    results = asyncio.run(run())
    assert [r.text for r in results] == [f"answer to q{i}" for i in range(64)]
    assert len(fake_anthropic.requests) == 64
    assert fake_anthropic.peak_in_flight >= 16, fake_anthropic.peak_in_flight  # together, not one by one


def test_client_survives_a_new_event_loop(fake_anthropic: FakeAnthropic) -> None:
    client = client_for(fake_anthropic)
    for _ in range(2):  # asyncio.run makes a fresh loop each time
        assert asyncio.run(client.complete(model=MODEL, system="", max_output_tokens=10,
                                           messages=[{"role": "user", "content": "hi"}])).text == "OK"
    asyncio.run(client.aclose())


def test_sdk_client_is_closed_by_aclose(fake_anthropic: FakeAnthropic) -> None:
    client = client_for(fake_anthropic)

    async def run() -> anthropic.AsyncAnthropic:
        await client.complete(model=MODEL, system="", max_output_tokens=10,
                              messages=[{"role": "user", "content": "hi"}])
        sdk = client.sdk
        await client.aclose()
        return sdk

    assert asyncio.run(run()).is_closed()


@pytest.mark.parametrize(
    ("model", "window"),
    [
        ("claude-sonnet-5-5", 1_000_000), ("claude-haiku-5-5", 1_000_000), ("claude-opus-5-5", 1_000_000),
        ("claude-sonnet-5", 1_000_000), ("claude-opus-5", 1_000_000),
        ("claude-sonnet-4-5", 200_000), ("claude-sonnet-4-5-20250929", 200_000), ("claude-haiku-4-5", 200_000),
        ("claude-3-5-sonnet-20241022", 200_000), ("claude-something-new", 200_000),
        ("gpt-4o", None), ("llama3.1:8b", None),
    ],
)
def test_context_window_table(model: str, window: int | None) -> None:
    assert context_window_for(model) == window
    assert AnthropicClient().context_window(model) == window


def test_make_clients_builds_the_configured_provider() -> None:
    io = ModelIO()
    clients = make_clients(RLMOptions(provider="anthropic", api_key=KEY, base_url="http://127.0.0.1:1",
                                      max_retries=7, request_timeout=30.0), io)
    client = clients.root
    assert isinstance(client, AnthropicClient) and client.max_retries == 7 and client.timeout == 30.0
    assert KEY not in repr(client)
    assert (clients.root_model, clients.sub_model) == ("claude-sonnet-5-5", "claude-haiku-5-5")
    compat = make_clients(RLMOptions(provider="openai", base_url="http://127.0.0.1:2/v1", model="m"), io).root
    assert isinstance(compat, OpenAICompatClient) and compat.base_url == "http://127.0.0.1:2/v1"
    with pytest.raises(ConfigError, match="needs base_url"):
        make_clients(RLMOptions(provider="openai", model="m"), io)
    with pytest.raises(ConfigError, match="use one of: anthropic, openai, demo"):
        make_clients(RLMOptions(provider="bedrock"), io)


def test_provider_is_picked_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RLM_OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        resolve_provider(RLMOptions())
    assert resolve_provider(RLMOptions(model="demo")) == "demo"
    monkeypatch.setenv("RLM_OPENAI_BASE_URL", "http://127.0.0.1:2/v1")
    assert resolve_provider(RLMOptions()) == "openai"
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert resolve_provider(RLMOptions()) == "anthropic"
