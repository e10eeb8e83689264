"""The adaptive concurrency limiter: it finds a server's limit from its 429s while the SDK retries,
and a run's fan-out goes through it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine.clients.anthropic_client import AnthropicClient
from rlm_kernel.engine.concurrency import AdaptiveLimiter, retry_after
from rlm_kernel.testing import FakeAnthropic

SUB = "claude-haiku-5-5"


async def fan_out(srv: FakeAnthropic, n: int, limiter: AdaptiveLimiter, max_retries: int = 4) -> list[str]:
    """n sub-model requests, each inside a limiter slot (as Run.subcall sends them)."""
    client = AnthropicClient(api_key="test", base_url=srv.base_url, max_retries=max_retries)

    async def one(i: int) -> str:
        async with limiter.slot():
            try:
                c = await client.complete(model=SUB, system="", messages=[{"role": "user", "content": f"p{i}"}],
                                          max_output_tokens=100, cache=False)
            except Exception as exc:
                return f"Error: {exc}"
            return c.text

    try:
        return list(await asyncio.gather(*(one(i) for i in range(n))))
    finally:
        await client.aclose()


def limited_server(limit: int, latency: float) -> FakeAnthropic:
    srv = FakeAnthropic(latency=latency)
    srv.max_in_flight = limit
    srv.in_flight_retry_after = 0.2
    srv.route(sub=lambda r: "a:" + r.last_user_text())
    return srv


def refusals(srv: FakeAnthropic) -> int:
    return sum(1 for r in srv.requests if r.status == 429)


def test_fake_server_refuses_beyond_its_concurrency_limit() -> None:
    with limited_server(2, 0.3) as srv:
        out = asyncio.run(fan_out(srv, 4, AdaptiveLimiter(4, adaptive=False), max_retries=0))
    assert sorted(o.startswith("a:") for o in out) == [False, False, True, True]
    refused = [r for r in srv.requests if r.status == 429]
    assert len(refused) == 2 and refused[0].error_type == "rate_limit_error"


def test_adaptive_limiter_converges_with_fewer_429s_and_every_answer() -> None:
    n = 48
    with limited_server(4, 0.15) as srv:
        fixed = AdaptiveLimiter(32, adaptive=False)
        fixed_out = asyncio.run(fan_out(srv, n, fixed))
        fixed_429 = refusals(srv)
        srv.reset()
        adaptive = AdaptiveLimiter(32)
        out = asyncio.run(fan_out(srv, n, adaptive))
        adaptive_429 = refusals(srv)
    assert out == [f"a:p{i}" for i in range(n)]
    assert adaptive.lowest <= 4 < adaptive.ceiling  # it narrowed to what the server holds
    assert adaptive_429 < fixed_429 / 2, (adaptive_429, fixed_429)
    assert adaptive.overloads == adaptive_429  # it saw every 429 the SDK retried
    assert len(fixed_out) == n


def test_ceiling_is_never_exceeded_and_growth_resumes_after_success() -> None:
    peak = 0
    with FakeAnthropic(latency=0.05) as srv:
        def count(request: Any) -> str:
            nonlocal peak
            peak = max(peak, srv._in_flight)
            return "ok"

        srv.route(sub=count)
        limiter = AdaptiveLimiter(3)
        limiter.limit = 1.0  # as after a storm of 429s
        out = asyncio.run(fan_out(srv, 30, limiter))
    assert out == ["ok"] * 30
    assert peak <= 3
    assert limiter.limit == 3  # grown back to the ceiling as calls succeeded


def test_retry_after_is_honoured_for_new_requests() -> None:
    async def scenario() -> float:
        limiter = AdaptiveLimiter(4)
        async with limiter.slot() as slot:
            limiter.overloaded(slot, 0.3)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        async with limiter.slot():
            return loop.time() - t0

    assert asyncio.run(scenario()) >= 0.25


def test_retry_after_headers() -> None:
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after({}) is None


def test_a_run_fans_out_through_the_limiter(tmp_path: Any) -> None:
    code = ("```repl\nr = llm_query_batched([f'p{i}' for i in range(24)])\n"
            "print(sum(x.startswith('a:') for x in r))\n```")
    with limited_server(4, 0.1) as srv:
        srv.route(root=[code, "FINAL(ok)"], sub=lambda r: "a:" + r.last_user_text())
        res = rlm("q", context="x", api_key="test", base_url=srv.base_url, runs_dir=str(tmp_path),
                  max_retries=4, concurrency=24)
        n429 = refusals(srv)
    cell = next(e for e in res.run.events if e["type"] == "cell_finished")
    assert res.answer == "ok"
    assert cell["outputs"][0]["text"].strip() == "24"  # every answer arrived
    assert n429 < 24  # a fixed width of 24 would be refused 20 times in the first round alone


@pytest.mark.parametrize("bad", [0, -3])
def test_a_ceiling_below_one_is_one(bad: int) -> None:
    assert AdaptiveLimiter(bad).width == 1
