"""Fake model servers on loopback for tests and benchmarks: they speak the real Anthropic and
OpenAI-compatible wire formats, so code under test runs through the official SDKs.

Names are imported on first use, so `python -m rlm_kernel.testing.fake_anthropic` runs cleanly."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._fakeserver import Fault, Reply, Request, ScriptExhausted, by_question, content_text, count_tokens, tool_call
    from .fake_anthropic import FakeAnthropic
    from .fake_openai import FakeOpenAI

_HOMES = {
    "FakeAnthropic": ".fake_anthropic",
    "FakeOpenAI": ".fake_openai",
    "Fault": "._fakeserver",
    "Reply": "._fakeserver",
    "Request": "._fakeserver",
    "ScriptExhausted": "._fakeserver",
    "by_question": "._fakeserver",
    "content_text": "._fakeserver",
    "count_tokens": "._fakeserver",
    "tool_call": "._fakeserver",
}
__all__ = ["FakeAnthropic", "FakeOpenAI", "Fault", "Reply", "Request", "ScriptExhausted", "by_question",
           "content_text", "count_tokens", "tool_call"]


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
