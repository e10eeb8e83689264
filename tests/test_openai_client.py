"""OpenAICompatClient and FakeOpenAI through the real `openai` SDK over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import urllib.request
from typing import Any

import openai
import pytest

from rlm_kernel.engine.clients.openai_client import OpenAICompatClient
from rlm_kernel.engine.types import Completion, ModelClient, ModelError
from rlm_kernel.testing import FakeOpenAI, Reply, count_tokens

KEY = "sk-proj-TESTKEYtestkey0123456789abcdef"
MODEL = "qwen3-8b"


def client_for(srv: FakeOpenAI, **kwargs: Any) -> OpenAICompatClient:
    return OpenAICompatClient(srv.base_url, **kwargs)


def ask(client: OpenAICompatClient, text: str = "hello", **kwargs: Any) -> Completion:
    async def go() -> Completion:
        try:
            return await client.complete(
                model=kwargs.pop("model", MODEL), system=kwargs.pop("system", "Be brief."),
                messages=kwargs.pop("messages", [{"role": "user", "content": text}]),
                max_output_tokens=kwargs.pop("max_output_tokens", 500), **kwargs,
            )
        finally:
            await client.aclose()

    return asyncio.run(go())


def model_error(client: OpenAICompatClient, **kwargs: Any) -> str:
    with pytest.raises(ModelError) as info:
        ask(client, **kwargs)
    message = str(info.value)
    assert KEY not in message and "TESTKEY" not in message
    return message


def test_json_reply_through_the_sdk(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(["Bonjour."])
    sdk = openai.OpenAI(base_url=fake_openai.base_url, api_key="anything", max_retries=0)
    done = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Say hello in French"}])
    assert done.choices[0].message.content == "Bonjour." and done.choices[0].finish_reason == "stop"
    assert done.usage.prompt_tokens == count_tokens("Say hello in French")
    assert done.usage.completion_tokens == count_tokens("Bonjour.")
    [rec] = fake_openai.requests
    assert rec.status == 200 and "authorization" not in rec.headers


def test_sse_chunks_usage_and_done(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(["abcdefghij"])
    fake_openai.chunk_chars = 4
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "stream_options": {"include_usage": True}}
    req = urllib.request.Request(f"{fake_openai.base_url}/chat/completions", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        frames = resp.read().decode().strip().split("\n\n")
    assert all(f.startswith("data: ") for f in frames) and frames[-1] == "data: [DONE]"
    chunks = [json.loads(f[6:]) for f in frames[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "abcdefghij"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])


def test_streams_deltas_and_maps_usage(fake_openai: FakeOpenAI) -> None:
    fake_openai.script(["Forty-two is the answer you are looking for."])
    fake_openai.chunk_chars = 9
    seen: list[str] = []
    done = ask(client_for(fake_openai), "six times seven?", on_text=seen.append)
    assert "".join(seen) == done.text == "Forty-two is the answer you are looking for."
    assert len(seen) == 5 and done.stop_reason == "stop" and done.model == MODEL
    assert done.usage.input_tokens == count_tokens("Be brief.") + count_tokens("six times seven?")
    assert done.usage.output_tokens == count_tokens(done.text) and done.usage.cache_read_tokens == 0
    rec = fake_openai.requests[0]
    assert rec["messages"][0] == {"role": "system", "content": "Be brief."}
    assert rec["stream_options"] == {"include_usage": True} and rec["max_tokens"] == 500
    assert isinstance(client_for(fake_openai), ModelClient)


def test_length_limit_is_reported(fake_openai: FakeOpenAI) -> None:
    fake_openai.script([Reply("y" * 400)])
    done = ask(client_for(fake_openai), max_output_tokens=8)
    assert done.stop_reason == "length" and done.usage.output_tokens == 8


def test_cached_prefix_tokens_become_cache_reads(fake_openai: FakeOpenAI) -> None:
    fake_openai.prefix_caching = True
    client = client_for(fake_openai)
    long_question = "q" * 6000  # 1500 tokens: over the 1024-token minimum

    async def run() -> tuple[Completion, Completion]:
        messages = [{"role": "user", "content": long_question}]
        first = await client.complete(model=MODEL, system="", messages=messages, max_output_tokens=50)
        messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "and then?"}]
        second = await client.complete(model=MODEL, system="", messages=messages, max_output_tokens=50)
        await client.aclose()
        return first, second

    first, second = asyncio.run(run())
    assert first.usage.cache_read_tokens == 0 and first.usage.input_tokens == 1500
    assert second.usage.cache_read_tokens == 1500
    assert second.usage.input_tokens == count_tokens("OK") + count_tokens("and then?")
    assert fake_openai.accounting["cached_tokens"] == 1500


def test_retry_after_then_success(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(429, retry_after=1)
    fake_openai.inject(503, retry_after_ms=50)
    assert ask(client_for(fake_openai)).text == "OK"
    statuses = [r.status for r in fake_openai.requests]
    assert statuses == [429, 503, 200]
    first, second, _ = fake_openai.requests
    assert 0.95 <= second.time - first.time < 1.5


def test_exhausted_retries(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(500, times=10, retry_after_ms=5)
    message = model_error(client_for(fake_openai, api_key=KEY, max_retries=2))
    assert "Server error" in message and "500" in message and "after 2 retries" in message
    assert len(fake_openai.requests) == 3


def test_rejected_key(fake_openai: FakeOpenAI) -> None:
    fake_openai.api_key = "right"
    message = model_error(client_for(fake_openai, api_key=KEY))
    assert "401" in message and "api_key" in message


def test_a_key_echoed_by_the_server_is_redacted(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(400, message=f"Incorrect API key provided: {KEY}.")
    message = model_error(client_for(fake_openai, api_key=KEY))
    assert "[REDACTED]" in message and "400" in message


def test_placeholder_key_when_none_is_set(fake_openai: FakeOpenAI) -> None:
    assert ask(client_for(fake_openai)).text == "OK"  # conftest cleared OPENAI_API_KEY


def test_unknown_model_and_too_long_prompt(fake_openai: FakeOpenAI) -> None:
    fake_openai.models = {MODEL}
    message = model_error(client_for(fake_openai), model="llama-404")
    assert "'llama-404'" in message and "404" in message
    fake_openai.context_window = 10
    message = model_error(client_for(fake_openai), text="z" * 400)
    assert "too long" in message and MODEL in message


def test_error_inside_the_stream(fake_openai: FakeOpenAI) -> None:
    fake_openai.inject(500, in_stream=True, message="engine crashed")
    message = model_error(client_for(fake_openai))
    assert "engine crashed" in message and len(fake_openai.requests) == 1


def test_connection_failure_names_the_server() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    message = model_error(OpenAICompatClient(f"http://127.0.0.1:{port}/v1", max_retries=0))
    assert f"127.0.0.1:{port}/v1" in message and "running" in message


def test_random_faults_stay_retryable(fake_openai: FakeOpenAI) -> None:
    fake_openai.fault_rate = 0.5
    fake_openai.fault_retry_after_ms = 1
    client = client_for(fake_openai, max_retries=2)

    async def run() -> list[str]:
        out = [(await client.complete(model=MODEL, system="", max_output_tokens=10,
                                      messages=[{"role": "user", "content": str(i)}])).text for i in range(16)]
        await client.aclose()
        return out

    assert asyncio.run(run()) == ["OK"] * 16
    assert {r.status for r in fake_openai.requests} - {200} <= {429, 500, 503}
    assert len(fake_openai.requests) > 16


def test_context_windows_come_from_the_caller() -> None:
    client = OpenAICompatClient("http://127.0.0.1:1/v1", context_windows={MODEL: 32_768})
    assert client.context_window(MODEL) == 32_768 and client.context_window("other") is None
    assert client.label == "openai-compatible"


def test_missing_openai_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openai", None)
    with pytest.raises(ImportError, match=r'pip install "rlm-kernel\[openai\]"'):
        OpenAICompatClient("http://127.0.0.1:1/v1")
