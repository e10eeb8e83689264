"""The fake Messages API speaks the real wire format: checked with raw HTTP and the real SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import Any

import anthropic
import pytest

from rlm_kernel.testing import FakeAnthropic, Reply, count_tokens

HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "secret-key"}


def post(srv: FakeAnthropic, body: dict[str, Any], headers: dict[str, str] | None = None):
    """(status, headers, raw body text) of one POST /v1/messages."""
    req = urllib.request.Request(
        f"{srv.base_url}/v1/messages", data=json.dumps(body).encode(), headers=headers or HEADERS
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet-5-5", "max_tokens": 1000, "messages": [{"role": "user", "content": text}],
            **extra}


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for frame in raw.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_json_reply_through_the_sdk(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(["Paris is the capital."])
    sdk = anthropic.Anthropic(api_key="secret-key", base_url=fake_anthropic.base_url, max_retries=0)
    msg = sdk.messages.create(model="claude-sonnet-5-5", max_tokens=100,
                              messages=[{"role": "user", "content": "Capital of France?"}])
    assert msg.content[0].text == "Paris is the capital."
    assert msg.stop_reason == "end_turn"
    assert msg.usage.input_tokens == count_tokens("Capital of France?")
    assert msg.usage.output_tokens == count_tokens("Paris is the capital.")
    [rec] = fake_anthropic.requests
    assert rec.status == 200 and rec.model == "claude-sonnet-5-5"
    assert rec["messages"][0]["content"] == "Capital of France?"
    assert rec.size > 0 and "authorization" not in rec.headers and "x-api-key" not in rec.headers
    assert "secret-key" not in json.dumps(rec.headers)


def test_sse_events_come_in_the_real_order(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.chunk_chars = 5
    fake_anthropic.script(["Hello streaming world"])
    status, headers, raw = post(fake_anthropic, body(stream=True))
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = sse_events(raw)
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 5 + [
        "content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    assert "".join(d["delta"]["text"] for n, d in events if n == "content_block_delta") == "Hello streaming world"
    assert events[0][1]["message"]["usage"]["input_tokens"] == 1
    assert events[-2][1]["delta"]["stop_reason"] == "end_turn"
    assert events[-2][1]["usage"]["output_tokens"] == count_tokens("Hello streaming world")


@pytest.mark.parametrize(
    ("status", "kind"), [(429, "rate_limit_error"), (529, "overloaded_error"), (500, "api_error")]
)
def test_injected_faults_return_api_error_bodies(fake_anthropic: FakeAnthropic, status: int, kind: str) -> None:
    fake_anthropic.inject(status, times=2, retry_after=3)
    for _ in range(2):
        got, headers, raw = post(fake_anthropic, body())
        assert got == status and headers["retry-after"] == "3"
        parsed = json.loads(raw)
        assert parsed["type"] == "error" and parsed["error"]["type"] == kind and parsed["error"]["message"]
    assert post(fake_anthropic, body())[0] == 200
    assert [r.status for r in fake_anthropic.requests] == [status, status, 200]
    assert [r.error_type for r in fake_anthropic.requests] == [kind, kind, None]


def test_fault_matching_and_retry_after_ms(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.inject(429, retry_after_ms=250, match=lambda r: "boom" in r.last_user_text())
    assert post(fake_anthropic, body("fine"))[0] == 200
    status, headers, _ = post(fake_anthropic, body("boom"))
    assert status == 429 and headers["retry-after-ms"] == "250" and headers.get("retry-after") is None
    assert post(fake_anthropic, body("boom"))[0] == 200


def test_script_route_and_exhaustion(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.route(root=["root one", Reply("root two", stop_reason="max_tokens")],
                         sub=lambda r: f"sub saw {r.last_user_text()}")
    sdk = anthropic.Anthropic(api_key="k", base_url=fake_anthropic.base_url, max_retries=0)

    def ask(model: str, text: str) -> anthropic.types.Message:
        return sdk.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": text}])

    assert ask("claude-sonnet-5-5", "a").content[0].text == "root one"
    assert ask("claude-haiku-5-5", "q1").content[0].text == "sub saw q1"
    second = ask("claude-sonnet-5-5", "b")
    assert (second.content[0].text, second.stop_reason) == ("root two", "max_tokens")
    with pytest.raises(anthropic.BadRequestError, match="root script has 2 replies"):
        ask("claude-sonnet-5-5", "c")
    assert fake_anthropic.errors and "ScriptExhausted" in fake_anthropic.errors[0]


def test_validation_like_the_real_api(fake_anthropic: FakeAnthropic) -> None:
    no_version = {k: v for k, v in HEADERS.items() if k != "anthropic-version"}
    assert post(fake_anthropic, body(), no_version)[0] == 400
    assert post(fake_anthropic, {"model": "m", "messages": []})[0] == 400
    fake_anthropic.api_key = "right-key"
    status, _, raw = post(fake_anthropic, body())
    assert status == 401 and json.loads(raw)["error"]["type"] == "authentication_error"
    fake_anthropic.api_key = None
    fake_anthropic.models = {"claude-sonnet-5-5"}
    status, _, raw = post(fake_anthropic, body(model="claude-nope"))
    assert status == 404 and json.loads(raw)["error"]["type"] == "not_found_error"
    marked = [{"type": "text", "text": f"b{i}", "cache_control": {"type": "ephemeral"}} for i in range(5)]
    status, _, raw = post(fake_anthropic, body(messages=[{"role": "user", "content": marked}]))
    assert status == 400 and "Found 5" in raw
    fake_anthropic.context_window = 10
    status, _, raw = post(fake_anthropic, body("x" * 100))
    assert status == 400 and "prompt is too long: 25 tokens > 10 maximum" in raw


def test_max_tokens_and_stop_sequences(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.script(["a" * 100, "before STOP after"])
    _, _, raw = post(fake_anthropic, body(max_tokens=5))
    msg = json.loads(raw)
    assert msg["content"][0]["text"] == "a" * 20 and msg["stop_reason"] == "max_tokens"
    assert msg["usage"]["output_tokens"] == 5
    _, _, raw = post(fake_anthropic, body(stop_sequences=["STOP"]))
    msg = json.loads(raw)
    assert (msg["content"][0]["text"], msg["stop_reason"], msg["stop_sequence"]) == ("before ", "stop_sequence",
                                                                                    "STOP")


def cached_body(system: str, *turns: str) -> dict[str, Any]:
    """A conversation with breakpoints on the system block and the last user message."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    messages[-1] = {"role": "user", "content": [
        {"type": "text", "text": turns[-1], "cache_control": {"type": "ephemeral"}}]}
    return body(system=[{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
                messages=messages)


def test_prompt_cache_writes_then_reads(fake_anthropic: FakeAnthropic) -> None:
    system, question = "s" * 4000, "q" * 400  # 1000 + 100 tokens
    first = json.loads(post(fake_anthropic, cached_body(system, question))[2])["usage"]
    assert first == {"input_tokens": 0, "cache_creation_input_tokens": 1100, "cache_read_input_tokens": 0,
                     "output_tokens": 1}
    # Same system, different question: the system prefix (1000 tokens) alone is below 1024, so
    # only the longer prefix was written and nothing can be read.
    other = json.loads(post(fake_anthropic, cached_body(system, "z" * 400))[2])["usage"]
    assert other["cache_read_input_tokens"] == 0 and other["cache_creation_input_tokens"] == 1100
    # The first conversation grows: its old prefix is read, the new part written.
    grown = cached_body(system, question, "OK", "w" * 800)
    grown["messages"][0] = {"role": "user", "content": [
        {"type": "text", "text": question, "cache_control": {"type": "ephemeral"}}]}
    third = json.loads(post(fake_anthropic, grown)[2])["usage"]
    assert third["cache_read_input_tokens"] == 1100
    assert third["cache_creation_input_tokens"] == 1 + 200
    assert third["input_tokens"] == 0
    acc = fake_anthropic.accounting
    assert acc["cache_read"] == 1100 and acc["cache_write"] == 1100 + 1100 + 201
    assert acc["billed_equivalent_input"] == pytest.approx(0.1 * 1100 + 1.25 * 2401)


def test_small_prefixes_are_not_cached_and_min_is_settable() -> None:
    with FakeAnthropic(min_cacheable=10) as srv:
        usage = json.loads(post(srv, cached_body("s" * 20, "q" * 20))[2])["usage"]
        assert usage["cache_creation_input_tokens"] == 10 and usage["input_tokens"] == 0
        srv.cache.min_tokens = 1000
        usage = json.loads(post(srv, cached_body("t" * 20, "q" * 20))[2])["usage"]
        assert usage["cache_creation_input_tokens"] == 0 and usage["input_tokens"] == 10


def test_latency_is_per_request_so_concurrency_shows(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.latency = 1.0
    statuses: list[int] = []
    threads = [threading.Thread(target=lambda: statuses.append(post(fake_anthropic, body())[0]))
               for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 64
    assert fake_anthropic.peak_in_flight >= 16, fake_anthropic.peak_in_flight  # served side by side


def test_latency_function_sees_the_request(fake_anthropic: FakeAnthropic) -> None:
    fake_anthropic.latency = lambda r: 1.0 if r.last_user_text() == "slow" else 0.0
    started = time.monotonic()
    post(fake_anthropic, body("fast"))
    fast = time.monotonic() - started
    post(fake_anthropic, body("slow"))
    slow = time.monotonic() - started - fast
    assert slow >= 1.0 and fast < slow, (fast, slow)


def run_with_faults(seed: int) -> list[int | None]:
    with FakeAnthropic(fault_rate=0.5, seed=seed) as srv:
        sdk = anthropic.Anthropic(api_key="k", base_url=srv.base_url)  # the SDK's default 2 retries
        for i in range(20):
            reply = sdk.messages.create(model="claude-haiku-5-5", max_tokens=10,
                                        messages=[{"role": "user", "content": str(i)}])
            assert reply.content[0].text == "OK"
        return [r.status for r in srv.requests]


def test_random_faults_are_seeded_and_always_retryable() -> None:
    statuses = run_with_faults(seed=7)
    faults = [s for s in statuses if s != 200]
    assert statuses.count(200) == 20 and faults
    assert set(faults) <= {429, 529, 500}
    assert run_with_faults(seed=7) == statuses
    assert run_with_faults(seed=8) != statuses


def test_binds_to_loopback_only(fake_anthropic: FakeAnthropic) -> None:
    assert fake_anthropic.base_url.startswith("http://127.0.0.1:")
    assert fake_anthropic._server.server_address[0] == "127.0.0.1"


def test_stop_closes_the_port() -> None:
    srv = FakeAnthropic().start()
    url = srv.base_url
    assert post(srv, body())[0] == 200
    srv.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"{url}/v1/messages", data=b"{}", timeout=2)


def test_command_line_server() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rlm_kernel.testing.fake_anthropic", "--port", "0", "--latency", "0.01",
         "--reply", "from the CLI"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in line
        base_url = line.rsplit(" ", 1)[1].strip()
        sdk = anthropic.Anthropic(api_key="k", base_url=base_url, max_retries=0)
        msg = sdk.messages.create(model="claude-haiku-5-5", max_tokens=10,
                                  messages=[{"role": "user", "content": "hi"}])
        assert msg.content[0].text == "from the CLI"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
