"""ModelClient for OpenAI-compatible chat-completions servers (vLLM, Ollama, llama.cpp server,
OpenAI itself) through the official `openai` SDK, an optional dependency.

Calls are streamed with `stream_options.include_usage` so token counts arrive in the last chunk;
servers that cache prefixes report `prompt_tokens_details.cached_tokens`, which becomes
`cache_read_tokens`. There are no cache breakpoints to send: such caching is automatic."""

from __future__ import annotations

import os
import time
from types import ModuleType
from typing import Any

import httpx2

from ..types import Completion, TextCallback, ToolCall, ToolCallback, ToolSpec, Usage
from .errors import retries_taken
from .sdk import SDKClient
from .tooluse import ToolInputs, openai_messages, openai_tools

#: Local servers ignore the key, but the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"


def import_openai() -> ModuleType:
    try:
        import openai
    except ImportError as err:
        raise ImportError(
            'The OpenAI-compatible provider needs the openai package: pip install "rlm-kernel[openai]"'
        ) from err
    return openai


class OpenAICompatClient(SDKClient):
    """An OpenAI-compatible server at `base_url` (usually ending in /v1). `api_key` defaults to
    OPENAI_API_KEY, then a placeholder. `context_windows` maps model ids to their input window,
    since these servers host arbitrary models."""

    label = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        max_retries: int = 4,
        timeout: float = 600.0,
        context_windows: dict[str, int] | None = None,
    ) -> None:
        self._openai = import_openai()
        super().__init__(api_key, max_retries, timeout)
        self.base_url = base_url.rstrip("/")
        self.context_windows = dict(context_windows or {})

    @property
    def _key(self) -> str:
        return self._api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY

    def _new_sdk(self, timeout: httpx2.Timeout) -> Any:
        return self._openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._key, max_retries=self.max_retries, timeout=timeout
        )

    async def complete(
        self,
        *,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        max_output_tokens: int,
        on_text: TextCallback | None = None,
        cache: bool = True,
        tools: list[ToolSpec] | None = None,
        on_tool: ToolCallback | None = None,
    ) -> Completion:
        sdk = self._client()
        msgs = ([{"role": "system", "content": system}] if system else []) + openai_messages(messages)
        extra: dict[str, Any] = {"tools": openai_tools(tools)} if tools else {}
        calls = ToolInputs(on_tool)
        parts: list[str] = []
        usage: Any = None
        finish: str | None = None
        started = time.perf_counter()
        try:
            stream = await sdk.chat.completions.create(
                model=model,
                messages=msgs,
                max_tokens=max_output_tokens,
                stream=True,
                stream_options={"include_usage": True},
                **extra,
            )
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta is not None else None
                        if text:
                            parts.append(text)
                            if on_text is not None:
                                on_text(text)
                        for tc in (choice.delta.tool_calls if choice.delta is not None else None) or []:
                            calls.start(tc.index, tc.id, tc.function.name if tc.function else None)
                            calls.feed(tc.index, (tc.function.arguments if tc.function else None) or "")
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except self._openai.OpenAIError as err:
            raise self._error(self._explain(err, model)) from None
        except httpx2.HTTPError as err:
            raise self._broken(err) from None
        return Completion(
            text="".join(parts),
            model=model,
            usage=_usage(usage),
            stop_reason=finish,
            latency=time.perf_counter() - started,
            tool_calls=[ToolCall(*call) for call in calls.finished()],
        )

    def context_window(self, model: str) -> int | None:
        return self.context_windows.get(model)

    def _secrets(self) -> list[str | None]:
        return [self._key if self._key != PLACEHOLDER_KEY else None]

    def _explain(self, err: Exception, model: str) -> str:
        o, base = self._openai, self.base_url
        if isinstance(err, o.APITimeoutError):
            return self._timed_out(err.request)
        if isinstance(err, o.APIConnectionError):
            return (
                f"Could not connect to the OpenAI-compatible server at {base}{retries_taken(err.request)}. "
                "Is it running, and does base_url point at it (usually ending in /v1)?"
            )
        if not isinstance(err, o.APIStatusError):
            if isinstance(err, o.APIError):
                return f"The server at {base} reported an error during the streamed response: {err.message}"
            return f"OpenAI-compatible request failed: {type(err).__name__}: {err}"
        status = err.status_code
        body = err.body if isinstance(err.body, dict) else {}
        detail = str(body.get("message") or err.message).strip().rstrip(".")
        tries = retries_taken(err.response.request)
        if status == 401:
            return (
                f"The server at {base} rejected the API key (401). "
                "Check the api_key option or OPENAI_API_KEY."
            )
        if status == 404:
            return (
                f"Model {model!r} was not found at {base} (404): {detail}. "
                "Check the model name the server serves and that base_url ends in /v1."
            )
        lowered = detail.lower()
        if status in (400, 413) and (
            err.code == "context_length_exceeded" or "context length" in lowered or "too long" in lowered
        ):
            return f"The prompt is too long for {model} ({detail}). Send less in one call."
        if status == 429:
            return f"Rate limited by {base} (429){tries}: {detail}. Lower `concurrency` or wait and retry."
        if status >= 500:
            return f"Server error from {base} ({status}){tries}: {detail}"
        return f"The server at {base} rejected the request ({status}): {detail}"


def _usage(u: Any) -> Usage:
    """Map chat-completions usage: prompt_tokens include cached ones, our input_tokens do not."""
    if u is None:
        return Usage(calls=1)
    details = getattr(u, "prompt_tokens_details", None)
    cached = (getattr(details, "cached_tokens", None) or 0) if details is not None else 0
    prompt = u.prompt_tokens or 0
    return Usage(
        input_tokens=max(0, prompt - cached),
        output_tokens=u.completion_tokens or 0,
        cache_read_tokens=cached,
        calls=1,
    )

