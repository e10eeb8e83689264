"""The token estimate (engine/tokens.py) and the window arithmetic built on it (engine/window.py)."""

from __future__ import annotations

import base64
import random

import pytest

from rlm_kernel.engine import window
from rlm_kernel.engine.tokens import estimate_messages, estimate_tokens

ENGLISH = ("The committee met on Tuesday to review the budget for the coming year. After a long discussion, "
           "the members agreed to postpone the decision until the auditors had finished their report. ") * 20
# Ordinary modern Chinese and Japanese, not rare characters.
CHINESE = "我们今天去公园散步，天气很好，阳光明媚。他说这个问题很重要，需要认真考虑。" * 30
JAPANESE = "今日は天気がいいので、公園に散歩に行きました。とても楽しかったです。" * 30


def test_english_is_about_four_characters_a_token() -> None:
    chars_per_token = len(ENGLISH) / estimate_tokens(ENGLISH)
    assert 3.0 <= chars_per_token <= 5.0


@pytest.mark.parametrize("text", [CHINESE, JAPANESE, "한국어 문장은 이렇게 씁니다. " * 40])
def test_cjk_counts_at_least_a_token_a_character(text: str) -> None:
    # Three characters a token (the old fixed ratio) would call this a third of its size.
    assert estimate_tokens(text) >= len(text.replace(" ", ""))


def test_base64_counts_at_least_a_token_per_two_characters() -> None:
    blob = base64.b64encode(random.Random(1).randbytes(6000)).decode()
    assert estimate_tokens(blob) >= len(blob) / 2
    hexed = random.Random(2).randbytes(3000).hex()
    assert estimate_tokens(hexed) >= len(hexed) / 2


def test_digits_and_emoji_are_not_cheap() -> None:
    digits = " ".join(str(random.Random(3).randrange(10**6)) for _ in range(500))
    assert estimate_tokens(digits) >= len(digits) * 0.9  # tokenizers that split digits (Qwen, Llama 2)
    assert estimate_tokens("🚀" * 100) >= 200


def test_messages_count_their_blocks_and_framing() -> None:
    plain = estimate_messages("Be brief.", [{"role": "user", "content": ENGLISH}])
    blocks = estimate_messages("Be brief.", [{"role": "user", "content": [{"type": "text", "text": ENGLISH}]}])
    assert plain == blocks > estimate_tokens(ENGLISH)
    tool = [{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "python",
                                               "input": {"code": "print(len(context))"}}]}]
    assert estimate_messages("", tool) > estimate_tokens("print(len(context))")
    assert estimate_tokens("") == 0


def test_feedback_limit_is_a_quarter_of_the_window() -> None:
    assert window.feedback_limit(8_192) == 6_144
    assert window.feedback_limit(1_000_000) == window.feedback_limit(None) == 20_000
    assert window.feedback_limit(1_024) == 1_000


def test_reply_reserve_and_budget_fit_a_small_window() -> None:
    assert window.output_reserve(8_192, 16_000) == 1_024
    assert window.output_reserve(200_000, 16_000) == 16_000
    assert window.reply_budget(8_192, 5_000, 16_000) == 3_192
    assert window.reply_budget(None, 5_000, 16_000) == 16_000


def test_preflight_refuses_cjk_that_a_character_ratio_would_let_through() -> None:
    prompt = (CHINESE * 3)[:3_000]
    assert len(prompt) / 3 + window.output_reserve(4_096, 16_000) < 4_096  # the old estimate: fits
    refusal = window.too_long(prompt, "qwen", 4_096, 16_000)
    assert refusal is not None and "qwen" in refusal and "4,096" in refusal and "characters" in refusal
    assert window.too_long(ENGLISH[:3_000], "qwen", 4_096, 16_000) is None


def test_fit_removes_the_oldest_outputs_first_and_keeps_the_question_and_the_latest() -> None:
    first = {"role": "user", "content": "Question: what is X?"}
    out = "x" * 8_000
    messages = [first]
    for step in range(4):
        messages += [{"role": "assistant", "content": f"```repl\nprint(chunk{step})\n```"},
                     {"role": "user", "content": f"Output {step}: {out}"}]
    sent, removed, total = window.fit("system", messages, "m", 4_096, 16_000)
    assert removed >= 1 and total <= 4_096 - 512
    assert sent[0] == first and sent[-1] == messages[-1]
    assert "outgrew m's window of 4,096" in sent[2]["content"]
    assert [m["content"] for m in sent if m["role"] == "assistant"] == \
        [m["content"] for m in messages if m["role"] == "assistant"]
    assert messages[2]["content"].startswith("Output 0"), "the run's own history is left whole"


def test_fit_keeps_tool_results_well_formed() -> None:
    big = [{"type": "tool_result", "tool_use_id": "t1", "content": "y" * 20_000}]
    messages = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"},
                {"role": "user", "content": big}, {"role": "assistant", "content": "b"},
                {"role": "user", "content": "latest"}]
    sent, removed, _ = window.fit("", messages, "m", 2_048, 500)
    assert removed == 1 and sent[2]["content"][0]["type"] == "tool_result"
    assert sent[2]["content"][0]["tool_use_id"] == "t1"


def test_fit_fails_with_a_reason_when_even_the_question_is_too_long() -> None:
    with pytest.raises(ValueError, match="preview_chars") as info:
        window.fit("", [{"role": "user", "content": "z" * 40_000}], "m", 2_048, 500)
    assert "2,048" in str(info.value)


def test_the_refusal_suggests_a_chunk_size_that_fits_this_kind_of_text() -> None:
    digits = "7" * 20_000
    refusal = window.too_long(digits, "qwen", 8_192, 16_000)
    assert refusal is not None
    suggested = int(refusal.split("at most about ")[1].split(" characters")[0].replace(",", ""))
    assert window.too_long(digits[:suggested], "qwen", 8_192, 16_000) is None
    assert window.too_long(digits[: suggested * 2], "qwen", 8_192, 16_000) is not None


def test_a_long_text_is_estimated_without_being_kept_alive():
    """Estimates of conversation-sized texts are remembered; a prompt far over any window (one the
    preflight will refuse) is not held in memory by that cache."""
    import gc
    import weakref

    from rlm_kernel.engine import tokens

    class Text(str):  # a str that can be weakly referenced
        pass

    long = Text("word " * 100_000)
    short = "a conversation so far " * 10
    assert tokens.estimate_tokens(long) == tokens.estimate_tokens(str(long)) > 0
    assert tokens.estimate_tokens(short) == tokens.estimate_tokens(short)
    gone = weakref.ref(long)
    del long
    gc.collect()
    assert gone() is None
