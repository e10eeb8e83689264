"""What real local servers do, reproduced by the fakes and met by the clients and the run, through
the real `openai` and `anthropic` SDKs on loopback: windows read from the server (vLLM, llama.cpp)
or assumed (llama-cpp-python), empty 200 streams over the window, replies cut off by another
request (`interrupt_requests`), and streams without usage."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import openai
import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.engine.clients.anthropic_client import AnthropicClient
from rlm_kernel.engine.clients.openai_client import OpenAICompatClient
from rlm_kernel.engine.clientset import ASSUMED_WINDOW, make_clients
from rlm_kernel.engine.modelio import ModelIO
from rlm_kernel.engine.options import RLMOptions
from rlm_kernel.engine.types import Completion, ModelError
from rlm_kernel.engine.window import feedback_limit
from rlm_kernel.testing import FakeAnthropic, FakeOpenAI, Reply

MODEL = "qwen2.5-coder-1.5b-instruct"


def ask(client: Any, text: str = "hello", model: str = MODEL, **kwargs: Any) -> Completion:
    async def go() -> Completion:
        try:
            return await client.complete(model=model, system="", messages=[{"role": "user", "content": text}],
                                         max_output_tokens=kwargs.pop("max_output_tokens", 200), **kwargs)
        finally:
            await client.aclose()

    return asyncio.run(go())


def discover(client: OpenAICompatClient, *models: str) -> None:
    asyncio.run(client.discover(models or [MODEL]))


def run_on(srv: FakeOpenAI, tmp_path: Any, **options: Any) -> Any:
    options = {"provider": "openai", "base_url": srv.base_url, "model": MODEL, "runs_dir": str(tmp_path),
               "max_retries": 0} | options
    return rlm(options.pop("question", "What is it?"), context=options.pop("context", "some text"), **options)


# --- windows ----------------------------------------------------------------------------------
def test_vllm_reports_max_model_len_in_its_model_list() -> None:
    with FakeOpenAI() as srv:
        srv.like("vllm").context_window = 32_768
        srv.models = {MODEL, "other"}
        client = OpenAICompatClient(srv.base_url)
        discover(client)
        assert client.context_window(MODEL) == 32_768 and client.context_window("other") == 32_768
        assert client.window_source(MODEL) == "server: /v1/models max_model_len"
        assert [r.path for r in srv.requests] == ["/v1/models"]


def test_llama_cpp_server_reports_n_ctx_in_props() -> None:
    with FakeOpenAI() as srv:
        srv.like("llama.cpp").context_window = 4_096
        client = OpenAICompatClient(srv.base_url)
        discover(client)
        assert client.context_window(MODEL) == 4_096 and client.window_source(MODEL) == "server: /props n_ctx"
        assert [r.path for r in srv.requests] == ["/v1/models", "/props"]


def test_llama_cpp_python_reports_no_window_so_one_is_assumed_and_recorded(tmp_path) -> None:
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python").context_window = 8_192
        srv.script(["FINAL(done)"])
        result = run_on(srv, tmp_path)
    started = result.run.started()
    assert started["windows"][MODEL] == {"tokens": ASSUMED_WINDOW, "source": "assumed"}
    assert "100,000" not in started["system"], "the prompt must not make a window up"
    assert started["output_limit"] == feedback_limit(ASSUMED_WINDOW)


def test_the_context_window_option_reaches_client_prompt_and_preflight(tmp_path) -> None:
    options = RLMOptions(provider="openai", base_url="http://127.0.0.1:9/v1", model=MODEL, context_window=2_048)
    clients = make_clients(options, ModelIO())
    assert clients.root.context_windows == {MODEL: 2_048}
    assert clients.window_info(MODEL) == (2_048, "option") and clients.sub_window() == 2_048
    code = "```repl\nprint(llm_query('summarise: ' + 'word ' * 3000))\n```"
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python")
        srv.script([code, "FINAL(ok)"])
        result = run_on(srv, tmp_path, context_window=2_048)
        # Two root turns, no probe (the option says it) and no sub-call: it was refused before sending.
        assert [r.path for r in srv.requests] == ["/v1/chat/completions"] * 2
    [sub] = [e for e in result.run.events if e["type"] == ev.SUBCALL_FINISHED]
    assert sub["error"] == "context_window" and "2,048" in sub["response"]
    assert result.run.started()["windows"][MODEL] == {"tokens": 2_048, "source": "option"}


@pytest.mark.parametrize("window, options, shown", [(8_192, {}, 400), (200_000, {}, 2_000),
                                                    (8_192, {"preview_chars": 1_200}, 1_200)])
def test_a_small_root_window_gets_a_short_preview_of_the_context(tmp_path, window, options, shown) -> None:
    # Qwen2.5-Coder-1.5B (8k) retyped a 2,000-character preview into `context = """..."""`.
    text = "".join(f"sentence {i:05d}. " for i in range(5_000))
    with FakeOpenAI() as srv:
        srv.script(["FINAL(ok)"])
        result = run_on(srv, tmp_path, context=text, context_window=window, **options)
    first = result.run.started()["first_message"]
    preview = first.split("preview:\n", 1)[1].split("\n\n")[0]
    content = re.sub(r"\n?\[\.\.\. [\d,]+ characters omitted \.\.\.\]\n?", "", preview)
    assert shown * 0.9 <= len(content) <= shown


def test_a_context_length_error_teaches_the_client_the_window() -> None:
    with FakeOpenAI() as srv:
        srv.context_window = 100
        client = OpenAICompatClient(srv.base_url, max_retries=0)
        with pytest.raises(ModelError, match="too long"):
            ask(client, "z" * 2_000)
        assert client.context_window(MODEL) == 100
        assert client.window_source(MODEL) == "server: context-length error"


# --- empty and cut-short replies --------------------------------------------------------------
def test_an_empty_200_stream_over_the_window_becomes_the_real_error() -> None:
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python").context_window = 100
        with pytest.raises(ModelError) as info:
            ask(OpenAICompatClient(srv.base_url, max_retries=0), "z" * 2_000)
        first, retry = srv.requests
    assert first.stream and first.cut and first.status == 200
    assert not retry.stream and retry.status == 400
    assert "too long" in str(info.value) and "maximum context length is 100" in str(info.value)


def test_an_empty_reply_twice_fails_with_the_likely_causes() -> None:
    with FakeOpenAI() as srv:
        srv.script([Reply("", cut=True), Reply("", cut=True)])  # streamed, then not streamed
        with pytest.raises(ModelError) as info:
            ask(OpenAICompatClient(srv.base_url, max_retries=0))
    message = str(info.value)
    assert "empty reply with no finish reason" in message and "--interrupt_requests false" in message
    assert "window" in message and len(srv.requests) == 2


def test_a_cut_stream_is_asked_again_without_streaming() -> None:
    with FakeOpenAI() as srv:
        srv.script([Reply("The ans", cut=True), "The answer is 42."])
        seen: list[str] = []
        done = ask(OpenAICompatClient(srv.base_url, max_retries=0), on_text=seen.append)
        assert [r.stream for r in srv.requests] == [True, False]
    assert done.text == "The answer is 42." and done.stop_reason == "stop"
    assert "".join(seen) == "The answer is 42."


def test_interrupt_requests_symptom_is_reproduced_and_recovered() -> None:
    """llama-cpp-python's default cuts a streamed reply off when another request waits: with the
    plain SDK two of three concurrent streams come back '' with no finish reason and no error."""
    text = "one two three four five six seven eight nine ten"
    with FakeOpenAI(reply=text) as srv:
        srv.like("llama-cpp-python").interrupt_requests = True
        srv.stream_delay, srv.chunk_chars = 0.05, 4

        async def plain() -> list[tuple[str, str | None]]:
            sdk = openai.AsyncOpenAI(base_url=srv.base_url, api_key="x", max_retries=0)

            async def one(i: int) -> tuple[str, str | None]:
                stream = await sdk.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": str(i)}], stream=True)
                parts, finish = [], None
                async for chunk in stream:
                    for choice in chunk.choices:
                        parts.append(choice.delta.content or "")
                        finish = choice.finish_reason or finish
                return "".join(parts), finish

            try:
                return list(await asyncio.gather(*(one(i) for i in range(3))))
            finally:
                await sdk.close()

        raw = asyncio.run(plain())
        assert sum(1 for t, f in raw if f is None and t != text) == 2

        client = OpenAICompatClient(srv.base_url, max_retries=0)

        async def ours() -> list[Completion]:
            try:
                return list(await asyncio.gather(*(client.complete(
                    model=MODEL, system="", messages=[{"role": "user", "content": str(i)}],
                    max_output_tokens=100) for i in range(3))))
            finally:
                await client.aclose()

        srv.reset()
        assert [c.text for c in asyncio.run(ours())] == [text] * 3
        assert sum(1 for r in srv.requests if r.cut) >= 2


# --- usage --------------------------------------------------------------------------------------
def test_a_stream_without_usage_gets_an_estimate_marked_as_such() -> None:
    with FakeOpenAI(reply="Forty-two.") as srv:
        srv.like("llama-cpp-python")
        done = ask(OpenAICompatClient(srv.base_url), "What is six times seven?")
        [rec] = srv.requests
    assert rec["stream_options"] == {"include_usage": True}
    assert done.usage.estimated and done.usage.input_tokens >= 6 and done.usage.output_tokens >= 3
    assert done.usage.to_dict()["estimated"] is True


def test_estimated_usage_lets_a_token_budget_trip(tmp_path) -> None:
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python")
        srv.responder = lambda r: "```repl\nprint(len(context))\n```"
        result = run_on(srv, tmp_path, max_tokens=1_500, max_iterations=30, context="x" * 3_000)
    assert result.status == "budget" and "tokens" in (result.reason or "")
    assert result.total_usage.estimated and "estimated" in result.summary()


# --- the root window ----------------------------------------------------------------------------
def test_root_feedback_is_cut_to_the_window_and_old_outputs_make_room(tmp_path) -> None:
    replies = ["```repl\nprint(context[:40000])\n```"] * 6 + ["FINAL(seen)"]  # six outputs of ~1k tokens each
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python").context_window = 4_096
        srv.script(replies)
        result = run_on(srv, tmp_path, context="abc def " * 10_000, context_window=4_096)
        requests = srv.requests
    assert result.status == "done" and result.answer == "seen"
    assert not any(r.cut for r in requests), "no root prompt went over the server's window"
    feedback = [e["text"] for e in result.run.events if e["type"] == ev.FEEDBACK]
    assert all(len(t) < feedback_limit(4_096) + 400 for t in feedback)
    last = requests[-1]["messages"]
    assert any("outgrew" in str(m["content"]) for m in last)
    assert any(e.get("outputs_removed") for e in result.run.events if e["type"] == ev.TURN_STARTED)


def test_a_root_prompt_that_cannot_fit_fails_the_run_with_a_reason(tmp_path) -> None:
    with FakeOpenAI() as srv:
        srv.like("llama-cpp-python")
        result = run_on(srv, tmp_path, question="q " * 5_000, context_window=2_048)
        assert srv.requests == [], "nothing was sent"
    assert result.status == "failed" and "2,048" in (result.reason or "")


# --- Anthropic ------------------------------------------------------------------------------------
def test_anthropic_empty_stream_is_retried_then_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL"):
        monkeypatch.delenv(key, raising=False)
    watched: list[str] = []  # a streamed reply (a root turn); a plain sub-call cannot come back cut short
    with FakeAnthropic() as srv:
        srv.script([Reply("", cut=True), "Hello."])
        done = ask(AnthropicClient(api_key="k", base_url=srv.url, max_retries=0), model="claude-haiku-5-5",
                   on_text=watched.append)
        assert done.text == "Hello." and len(srv.requests) == 2
        srv.script([Reply("", cut=True), Reply("", cut=True)])
        with pytest.raises(ModelError, match="empty reply with no stop reason"):
            ask(AnthropicClient(api_key="k", base_url=srv.url, max_retries=0), model="claude-haiku-5-5",
                on_text=watched.append)


def test_a_rescued_reply_warns_once_about_the_server(caplog: pytest.LogCaptureFixture) -> None:
    with FakeOpenAI() as srv:
        srv.script([Reply("", cut=True), "first", Reply("", cut=True), "second"])
        client = OpenAICompatClient(srv.base_url, max_retries=0)

        async def twice() -> list[str]:
            try:
                return [(await client.complete(model=MODEL, system="", max_output_tokens=50,
                                               messages=[{"role": "user", "content": "hi"}])).text for _ in "ab"]
            finally:
                await client.aclose()

        with caplog.at_level("WARNING", logger="rlm_kernel.engine.clients.openai_client"):
            assert asyncio.run(twice()) == ["first", "second"]
    [warning] = [r.getMessage() for r in caplog.records]
    assert "--interrupt_requests false" in warning and "empty" in warning
