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
