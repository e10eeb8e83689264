"""`rlm()` end to end on each backend a user can pick: an OpenAI-compatible server and the demo."""

from __future__ import annotations

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import events as ev
from rlm_kernel.testing.fake_openai import FakeOpenAI


def test_openai_compatible_server_runs_a_whole_rlm(tmp_path):
    root_replies = iter([
        "```python\nparts = context.split(';')\n"
        "res = llm_query_batched([f'upper: {p}' for p in parts])\nprint(res)\n```",
        "FINAL_VAR(res)",
    ])

    def respond(request):
        if request["model"] == "local-root":
            return next(root_replies)
        return request["messages"][-1]["content"].removeprefix("upper: ").upper()

    with FakeOpenAI() as srv:
        srv.responder = respond
        result = rlm("Shout the parts", context="a;b;c", provider="openai", base_url=srv.base_url,
                     model="local-root", sub_model="local-sub", runs_dir=str(tmp_path), max_retries=1)
        streamed = [r for r in srv.requests if r.get("stream")]
    assert result.status == "done"
    assert result.answer == "['A', 'B', 'C']"
    assert result.usage["local-root"].input_tokens > 0
    assert result.cost is None  # a local model has no price: tokens only
    assert streamed, "root turns are streamed"
    assert result.run.started()["provider"] == "openai-compatible"


def test_openai_provider_needs_a_model_name(tmp_path):
    from rlm_kernel.engine.clientset import ConfigError

    with pytest.raises(ConfigError, match="needs model="):
        rlm("q", context="c", provider="openai", base_url="http://127.0.0.1:9/v1", runs_dir=str(tmp_path))


@pytest.mark.parametrize("context", [
    "The meeting is on Tuesday. " * 5 + "The secret code is 7421. " + "Nothing else here. " * 500,
    ["Nothing here."] * 300 + ["The secret code is 7421."] + ["Nothing again."] * 300,
    {f"doc{i}": "Nothing here." for i in range(200)} | {"docX": "The secret code is 7421."},
    ("The secret code is 7421. " + "Filler text. " * 100).encode(),
])
def test_demo_model_handles_every_context_type(tmp_path, context):
    result = rlm("What is the secret code?", context=context, model="demo", runs_dir=str(tmp_path))
    assert result.status == "done"
    assert "7421" in result.answer
    log = result.run
    assert log.started()["demo"] is True
    assert any(e["type"] == ev.SUBCALL_FINISHED for e in log.events)


def test_temperature_reaches_every_request_and_unset_leaves_the_default(tmp_path):
    """`temperature=0` (repeatable runs on a local server) goes on root turns and sub-calls alike;
    unset, no request carries one, so the server's default applies."""

    seen = {}
    for temperature in (0.0, None):
        replies = iter(["```repl\nx = llm_query('hi')\nprint(x)\n```", "FINAL_VAR(x)"])

        def respond(request, replies=replies):
            return next(replies) if request["model"] == "root-m" else "ok"

        with FakeOpenAI() as srv:
            srv.responder = respond
            result = rlm("q", context="c", provider="openai", base_url=srv.base_url, model="root-m",
                         sub_model="sub-m", protocol="fences", runs_dir=str(tmp_path), temperature=temperature)
            seen[temperature] = [(r["model"], r.get("temperature")) for r in srv.requests if "messages" in r]
        assert result.answer == "ok"
    assert {m for m, _ in seen[0.0]} == {"root-m", "sub-m"}
    assert all(t == 0.0 for _, t in seen[0.0])
    assert all(t is None for _, t in seen[None])


def test_temperature_with_anthropic_says_why_not(tmp_path):
    from rlm_kernel.engine.clientset import ConfigError

    with pytest.raises(ConfigError, match="Anthropic Messages API takes no sampling parameters"):
        rlm("q", context="c", provider="anthropic", api_key="k", base_url="http://127.0.0.1:9",
            runs_dir=str(tmp_path), temperature=0.0)
