"""Fitting requests into a model's window: what is kept free for the answer, how much cell output a
step may feed back, and which old outputs a root prompt drops when the conversation outgrows it.

All sizes here come from the conservative estimate in engine/tokens.py, never from a fixed ratio."""

from __future__ import annotations

from typing import Any

from .tokens import estimate_messages, estimate_tokens

#: The feedback limit when the option is unset and the window is large: the old fixed default.
MAX_OUTPUT_LIMIT = 20_000
#: ... and when the window is tiny: below this the model cannot see enough to work.
MIN_OUTPUT_LIMIT = 1_000
#: A step's cell output may fill this share of the root window...
FEEDBACK_SHARE = 0.25
#: ... counted at this many characters per token (an estimate erring small, as in code and data).
FEEDBACK_CHARS_PER_TOKEN = 3.0

ELIDED = ("[Output of an earlier step removed: the conversation outgrew {model}'s window of {window:,} tokens. "
          "Its variables still exist in the REPL; print what you need again, briefly.]")


def output_reserve(window: int, max_output_tokens: int) -> int:
    """Tokens kept free for the reply: up to an eighth of the window (at least 512), never more than
    asked for. On an 8,192-token window that is 1,024; on 200k it is the usual 16,000."""
    return min(max_output_tokens, max(512, window // 8))


def feedback_limit(window: int | None) -> int:
    """Characters of cell output per step when `output_limit` is unset: a quarter of the window."""
    if window is None:
        return MAX_OUTPUT_LIMIT
    return max(MIN_OUTPUT_LIMIT, min(MAX_OUTPUT_LIMIT, int(window * FEEDBACK_SHARE * FEEDBACK_CHARS_PER_TOKEN)))


#: Preview of the context for a big root window, and for a small one (see RLMOptions.preview_chars).
PREVIEW_CHARS, SMALL_PREVIEW_CHARS, SMALL_WINDOW = 2000, 400, 16_384


def preview_chars(window: int | None) -> int:
    """Characters of head/tail preview when `preview_chars` is unset. Qwen2.5-Coder-1.5B (8k window)
    retyped a 2,000-character preview as `context = \"\"\"...\"\"\"` at 17 tokens/s instead of reading it."""
    return SMALL_PREVIEW_CHARS if window is not None and window <= SMALL_WINDOW else PREVIEW_CHARS


def reply_budget(window: int | None, prompt_tokens: int, max_output_tokens: int) -> int:
    """max_tokens to send: what was asked, cut to what the window has left after the prompt (vLLM
    refuses prompt + max_tokens over its window; llama-cpp-python silently shortens it)."""
    if window is None:
        return max_output_tokens
    return max(1, min(max_output_tokens, window - prompt_tokens))


def too_long(prompt: str, model: str, window: int | None, max_output_tokens: int) -> str | None:
    """The refusal for a sub-call prompt that cannot fit `model`'s window, or None when it fits."""
    if window is None:
        return None
    estimate = estimate_tokens(prompt)
    if estimate + output_reserve(window, max_output_tokens) <= window:
        return None
    # Characters that fit, at this text's own characters per token (digits and CJK run far fewer).
    chars = int((window - output_reserve(window, max_output_tokens)) * len(prompt) / estimate * 0.9)
    return (f"Error: prompt too long for {model} (about {estimate:,} tokens; its window is {window:,}). "
            f"Split the input into chunks of at most about {chars:,} characters and use llm_query_batched.")


def fit(system: str, messages: list[dict[str, Any]], model: str, window: int,
        max_output_tokens: int) -> tuple[list[dict[str, Any]], int, int]:
    """(messages to send, how many old outputs were removed, estimated prompt tokens). Old cell
    outputs go first, oldest first: the first message (question and context) and the latest
    feedback always stay, and so do the model's own replies. Raises ValueError when even that
    does not fit, with a message that says what to change."""
    budget = window - output_reserve(window, max_output_tokens)
    sent = list(messages)
    total = estimate_messages(system, sent)
    removed = 0
    marker = ELIDED.format(model=model, window=window)
    for i in range(1, len(sent) - 1):
        if total <= budget:
            break
        if sent[i].get("role") not in ("user", "tool") or sent[i].get("content") == marker:
            continue
        before = estimate_messages("", [sent[i]])
        sent[i] = {**sent[i], "content": _elide(sent[i].get("content"), marker)}
        if sent[i].get("tool_results"):  # our tool-use form: the outputs travel as tool results
            sent[i]["tool_results"] = [{**r, "content": marker} for r in sent[i]["tool_results"]]
        total += estimate_messages("", [sent[i]]) - before
        removed += 1
    if total > budget:
        raise ValueError(
            f"The root prompt for {model} is about {total:,} tokens even with old outputs removed, over its "
            f"window of {window:,} (less {window - budget:,} kept for the reply). Lower preview_chars or "
            f"output_limit, or set context_window if the server's window is larger."
        )
    return sent, removed, total


def _elide(content: Any, marker: str) -> Any:
    """`content` with its text replaced by `marker`, keeping the block structure (tool results stay
    tool results, so a tool-use conversation stays well formed)."""
    if not isinstance(content, list):
        return marker
    out: list[Any] = []
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            out.append({**block, "content": marker})
        elif isinstance(block, dict) and block.get("type") == "text":
            out.append({**block, "text": marker})
        else:
            out.append(block)
    return out
