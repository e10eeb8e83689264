"""The system prompt: sizes from the sub-model's real window, variants, protocol wording, cost."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from rlm_kernel import rlm
from rlm_kernel.engine import prompts
from rlm_kernel.engine.clientset import ConfigError
from rlm_kernel.testing import FakeAnthropic, FakeOpenAI, count_tokens


def full(protocol: str = "fences", sub_window: int | None = 8192) -> str:
    return prompts.render("full", protocol, output_limit=20_000, sub_window=sub_window)


@pytest.mark.parametrize("window, chars", [(8192, 15_000), (32_768, 62_000), (200_000, 300_000),
                                           (1_000_000, 300_000), (None, 40_000), (2048, 3900)])
def test_size_per_subcall_comes_from_the_sub_models_window(window, chars):
    assert prompts.chunk_chars(window, 16_000) == chars
    text = full(sub_window=window)
    assert f"{chars:,} characters" in text and f"i + {chars}" not in text
    assert "100,000" not in text  # the made-up window of 0.1 is gone
    if window:
        assert f"reads up to {window:,} tokens" in text


def test_the_worked_example_runs_and_finds_the_answer():
    """The example's code is real Python that does what it says on a small ticket log."""
    tickets = "\n".join([f"2024-03-{d:02d} | #{4400 + d} | I was charged twice on my invoice" for d in range(1, 8)]
                        + [f"2024-03-{d:02d} | #{4400 + d} | The app crashes on start" for d in range(8, 20)]
                        + ["2024-04-01 | #5000 | charged twice again"])
    ns = {"context": tickets}

    def llm_query_batched(asks):
        return ["\n".join(w for line in a.splitlines() if "charged" in line for w in line.split() if w[0] == "#")
                or "NONE" for a in asks]

    ns["llm_query_batched"] = llm_query_batched
    size = 300  # small pieces: several sub-calls
    code = prompts.EXAMPLE_LOOK + "\n" + prompts.EXAMPLE_WORK.format(size=size)
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(code, ns)
    assert ns["count"] == 7 and len(ns["pieces"]) > 1
    assert "19 tickets in March; 7 about billing" in out.getvalue()


@pytest.mark.parametrize("protocol", ["fences", "tools"])
def test_full_prompt_teaches_the_habits_in_the_protocols_words(protocol):
    text = full(protocol)
    for habit in ("Never assign to `context`", "don't describe them", "print counts, lengths",
                  "Filter with code first", "llm_query_batched", "at most 16 prompts per call", "SHOW_VARS()",
                  "in a later step"):
        assert habit in text
    if protocol == "tools":
        assert "`python` tool" in text and '"variable": "count"' in text and "```repl" not in text
    else:
        assert "```repl" in text and "FINAL_VAR(count)" in text and "answer tool" not in text


@pytest.mark.parametrize("protocol", ["fences", "tools"])
def test_compact_prompt_has_one_example_exchange_and_never_rebinds_context(protocol):
    text = prompts.render("compact", protocol, output_limit=4000, sub_window=8192)
    assert "Example exchanges" in text and text.count("Once its ") == 2  # one finding a value, one counting
    # No chat-role labels: a small model copies them and writes the next turn itself (eval_local_partial).
    assert "Assistant" not in text and "User:" not in text
    assert "Never assign to `context`" in text and "context =" not in text
    assert "15,000 characters" in text


def test_token_cost_of_each_variant():
    """Measured with the fake servers' token count (chars / 4); the compact one fits a small window."""
    cost = {(v, p): count_tokens(prompts.render(v, p, output_limit=20_000, sub_window=8192))
            for v in ("full", "compact") for p in ("fences", "tools")}
    assert all(t <= 900 for (v, _), t in cost.items() if v == "full")
    assert all(t <= 360 for (v, _), t in cost.items() if v == "compact")


def test_variants_and_their_errors():
    assert prompts.variant_for("auto", 8192) == "compact"
    assert prompts.variant_for("auto", 16_384) == "compact"
    assert prompts.variant_for("auto", 200_000) == "full"
    assert prompts.variant_for(None, None) == "full"
    assert prompts.variant_for("legacy", 8192) == "legacy"
    with pytest.raises(ConfigError, match="unknown prompt 'short'; use one of: auto, full, compact, legacy"):
        prompts.variant_for("short", None)
    legacy = prompts.render("legacy", "fences", output_limit=20_000, sub_window=None)
    assert legacy.startswith("You answer a question about a large input") and len(legacy) == 1715  # as in 0.1
    with pytest.raises(ConfigError, match="use it with protocol='fences'"):
        prompts.render("legacy", "tools", output_limit=20_000, sub_window=None)


def test_a_bad_prompt_option_fails_before_the_run_starts(tmp_path: Path):
    with FakeAnthropic() as srv:
        for opts, message in (({"prompt": "short"}, "unknown prompt 'short'"),
                              ({"prompt": "legacy", "protocol": "tools"}, "use it with protocol='fences'")):
            with pytest.raises(ConfigError, match=message):
                rlm("q?", context="data", provider="anthropic", base_url=srv.base_url, api_key="k",
                    runs_dir=str(tmp_path), **opts)
        assert srv.requests == []
    assert not list(tmp_path.glob("*.jsonl"))


def test_runs_send_the_chosen_prompt_cached(tmp_path: Path):
    with FakeAnthropic() as srv:
        for variant, marker in (("compact", "Example exchanges"), ("full", "For example"),
                                ("legacy", "You answer a question")):
            srv.reset()
            srv.route(root=["FINAL(x)"], sub="s")
            rlm("q?", context="data", provider="anthropic", base_url=srv.base_url, api_key="k", max_retries=0,
                runs_dir=str(tmp_path), prompt=variant, protocol="fences")
            system = srv.requests[0]["system"]
            assert marker in system[0]["text"] and system[-1]["cache_control"] == {"type": "ephemeral"}


def test_openai_run_gets_the_window_it_is_given(tmp_path: Path, monkeypatch):
    """The prompt reads the window through the client set (clients.sub_window), whatever fills it."""
    from rlm_kernel.engine.clients.openai_client import OpenAICompatClient

    monkeypatch.setattr(OpenAICompatClient, "context_window", lambda self, model: 8192)
    with FakeOpenAI() as srv:
        srv.script(["FINAL(x)"])
        rlm("q?", context="data", provider="openai", base_url=srv.base_url, model="m", max_retries=0,
            runs_dir=str(tmp_path))
        system = srv.requests[0]["messages"][0]["content"]
    assert "Example exchanges" in system and "15,000 characters" in system
