"""ModelClient for the Anthropic Messages API, through the official SDK.

Streams every call someone watches (text deltas go to `on_text` as they arrive) and every long one;
a sub-call nobody watches is one plain request, which costs the model-I/O thread about half the CPU
of a stream (a 64-way fan-out's spread is that CPU, serialised). Leaves retries to the SDK
(it backs off and honours retry-after), marks prompt-cache breakpoints so each turn of a growing
conversation reads the previous turn's prefix, and turns the SDK's final failure into a
ModelError a person can act on, never carrying the API key."""

from __future__ import annotations

import re
import time
from typing import Any

import anthropic
import httpx2

from ..concurrency import EVENT_HOOKS
from ..pricing import alias
from ..types import Completion, ModelError, TextCallback, ToolCall, ToolCallback, ToolSpec, Usage
from .errors import retries_taken
from .sdk import SDKClient
from .tooluse import ToolInputs, anthropic_messages, anthropic_tools

EPHEMERAL = {"type": "ephemeral"}
#: The API accepts at most this many cache_control blocks per request.
MAX_BREAKPOINTS = 4
#: Replies allowed more output tokens than this are streamed even when nobody watches: events keep a
#: minutes-long request's connection alive. Below the SDK's own non-streaming ceiling (~21k tokens).
STREAM_ABOVE_TOKENS = 16_384
_FAMILY = re.compile(r"^claude-[a-z]+-(\d+)(?:-\d+)?$")


def context_window_for(model: str) -> int | None:
    """Input window in tokens: 1M for the Claude 5 family (claude-*-5, claude-*-5-5, ...),
    200k for Claude 4.5 and older or any other claude-* id, None for non-Claude ids."""
    name = alias(model)
    if not name.startswith("claude-"):
        return None
    m = _FAMILY.match(name)
    if m and int(m.group(1)) == 5:
        return 1_000_000
    return 200_000


def _mark_last_block(message: dict[str, Any]) -> bool:
    """Put a breakpoint on the message's last content block; False when it has none to mark."""
    content = message.get("content")
    if isinstance(content, str):
        if not content:
            return False
        message["content"] = [{"type": "text", "text": content, "cache_control": EPHEMERAL}]
        return True
    if isinstance(content, list) and content:
        blocks = [dict(b) for b in content]
        last = blocks[-1]
        if "cache_control" in last or (last.get("type") == "text" and not last.get("text")):
            return False
        last["cache_control"] = EPHEMERAL
        message["content"] = blocks
        return True
    return False


def _marks(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict) and "cache_control" in b
    )


def build_request(
    system: str, messages: list[dict[str, Any]], cache: bool
) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """(system, messages) as sent. With `cache`: the system prompt becomes a cached text block,
    and the last block of the last two user messages carry breakpoints, so turn n writes the
    prefix that turn n+1 reads. Never more than MAX_BREAKPOINTS in all. Tool definitions come
    before the system prompt in the API's prefix order, so the system breakpoint caches them too."""
    msgs = anthropic_messages(messages)
    if not cache:
        return system, msgs
    sys_param: str | list[dict[str, Any]] = (
        [{"type": "text", "text": system, "cache_control": EPHEMERAL}] if system else system
    )
    budget = MAX_BREAKPOINTS - (1 if system else 0) - _marks(msgs)
    users = [i for i, m in enumerate(msgs) if m.get("role") == "user"][-2:]
    for i in reversed(users):
        if budget <= 0:
            break
        if _mark_last_block(msgs[i]):
            budget -= 1
    return sys_param, msgs


class AnthropicClient(SDKClient):
    """Anthropic via `anthropic.AsyncAnthropic`. `api_key`/`base_url` default to the SDK's own
    sources (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL). The SDK client is made on first use, on the
    loop that uses it, and remade if a later call comes from a different loop."""

    label = "anthropic"

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        max_retries: int = 4,
        timeout: float = 600.0,
    ) -> None:
        super().__init__(api_key, max_retries, timeout)
        self._base_url = base_url

    def _new_sdk(self, timeout: httpx2.Timeout) -> anthropic.AsyncAnthropic:
        # The hooks let the run's concurrency limiter see each 429/529 while the SDK does the retries.
        http = anthropic.DefaultAsyncHttpxClient(event_hooks=EVENT_HOOKS)
        return anthropic.AsyncAnthropic(
            api_key=self._api_key, base_url=self._base_url, max_retries=self.max_retries, timeout=timeout,
            http_client=http,
        )

    def _client(self) -> anthropic.AsyncAnthropic:
        sdk = super()._client()
        if not (sdk.api_key or sdk.auth_token or sdk.credentials):
            raise ModelError(
                "No Anthropic API key: set ANTHROPIC_API_KEY or pass api_key= "
                "(or use the offline demo model, model='demo')."
            )
        return sdk

    async def warm(self) -> None:
        """Build the SDK client (its TLS context and CA bundle) before the first request needs it."""
        self._client()

    @property
    def base_url(self) -> str:
        if self._sdk is not None:
            return str(self._sdk.base_url).rstrip("/")
        return (self._base_url or "https://api.anthropic.com").rstrip("/")

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
        temperature: float | None = None,
    ) -> Completion:
        sdk = self._client()
        system_param, msgs = build_request(system, messages, cache)
        params: dict[str, Any] = {"model": model, "max_tokens": max_output_tokens, "messages": msgs}
        # `temperature`: the Messages API (SDK 2.x) takes no sampling parameters; make_clients refuses it.
        if system_param:
            params["system"] = system_param
        if tools:
            params["tools"] = anthropic_tools(tools)
            if cache and not system_param:  # no system block to carry the breakpoint: the tools do
                params["tools"][-1]["cache_control"] = EPHEMERAL
        started = time.perf_counter()
        watched = on_text is not None or on_tool is not None or max_output_tokens > STREAM_ABOVE_TOKENS
        attempt = self._attempt if watched else self._plain
        final = await attempt(sdk, params, model, on_text, on_tool)
        if final is None or final.stop_reason is None:
            # The stream ended before the reply did (a proxy or a local server dropped it): once more.
            final = await attempt(sdk, params, model, on_text, on_tool) or final
            if final is None or (final.stop_reason is None and not final.content):
                raise self._error(
                    f"{self.base_url} returned an empty reply with no stop reason for {model}, twice: the stream "
                    "ended before the reply began. A proxy or local server may have dropped the request "
                    "(a prompt over its window, or a request cut off by another); check its log."
                )
        u = final.usage
        usage = Usage(
            input_tokens=u.input_tokens or 0,
            output_tokens=u.output_tokens or 0,
            cache_read_tokens=u.cache_read_input_tokens or 0,
            cache_write_tokens=u.cache_creation_input_tokens or 0,
            calls=1,
        )
        return Completion(
            text="".join(block.text for block in final.content if block.type == "text"),
            model=model,
            usage=usage,
            stop_reason=final.stop_reason,
            latency=time.perf_counter() - started,
            tool_calls=[ToolCall(b.id, b.name, b.input if isinstance(b.input, dict) else {"_raw": b.input})
                        for b in final.content if b.type == "tool_use"],
        )

    async def _attempt(self, sdk: anthropic.AsyncAnthropic, params: dict[str, Any], model: str,
                       on_text: TextCallback | None, on_tool: ToolCallback | None) -> Any:
        """One streamed request: its final message, or None when the stream carried no message at all.
        Text goes to `on_text` as it streams and each tool call's input to `on_tool` as it grows (the SDK
        accumulates input_json_delta into the final message)."""
        live = ToolInputs(on_tool)
        try:
            async with sdk.messages.stream(**params) as stream:
                async for event in stream:
                    if event.type == "text" and on_text is not None:
                        on_text(event.text)
                    elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                        live.start(event.index, event.content_block.id, event.content_block.name)
                    elif event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                        live.feed(event.index, event.delta.partial_json)
                try:
                    return await stream.get_final_message()
                except AssertionError:  # the SDK's way of saying no message_start ever came
                    return None
        except anthropic.AnthropicError as err:
            raise self._error(self._explain(err, model)) from None
        except httpx2.HTTPError as err:
            raise self._broken(err) from None

    async def _plain(self, sdk: anthropic.AsyncAnthropic, params: dict[str, Any], model: str,
                     on_text: TextCallback | None, on_tool: ToolCallback | None) -> Any:
        """One non-streamed request (nobody watches its text): the message, as `_attempt` gives it."""
        try:
            return await sdk.messages.create(**params)
        except anthropic.AnthropicError as err:
            raise self._error(self._explain(err, model)) from None
        except httpx2.HTTPError as err:
            raise self._broken(err) from None

    def context_window(self, model: str) -> int | None:
        return context_window_for(model)

    # -- errors --
    def _secrets(self) -> list[str | None]:
        return [self._api_key, self._sdk.api_key if self._sdk else None]

    def _explain(self, err: anthropic.AnthropicError, model: str) -> str:
        base = self.base_url
        if isinstance(err, anthropic.APITimeoutError):
            return self._timed_out(err.request)
        if isinstance(err, anthropic.APIConnectionError):
            return (f"Could not connect to the Anthropic API at {base}{retries_taken(err.request)}. "
                    "Check the network and base_url.")
        if not isinstance(err, anthropic.APIStatusError):
            return f"Anthropic request failed: {type(err).__name__}: {err}"
        status, kind = err.status_code, err.type or ""
        detail = (err.api_message or "").strip().rstrip(".")
        # An `event: error` inside a 200 stream: the SDK raises at once, without retrying.
        tries = " during the streamed response (not retried)" if status == 200 else retries_taken(
            err.response.request
        )
        code = kind if status == 200 else status
        if status == 401 or kind == "authentication_error":
            return "Anthropic rejected the API key (401). Check ANTHROPIC_API_KEY or the api_key option."
        if status == 403 or kind == "permission_error":
            return f"The API key may not use {model} (403): {detail}"
        if status == 404 or kind == "not_found_error":
            return (
                f"Model {model!r} was not found at {base} (404): {detail}. Check the model id "
                "(for example claude-sonnet-5-5 or claude-haiku-5-5) and that base_url has no /v1 suffix."
            )
        if status == 413 or kind == "request_too_large" or (status == 400 and "too long" in detail.lower()):
            return (
                f"The prompt is too long for {model} ({detail or status}). Send less in one call: "
                "slice the context and query the parts with llm_query."
            )
        if status == 429 or kind == "rate_limit_error":
            return (
                f"Rate limited by Anthropic ({code}){tries}: {detail}. "
                "Lower `concurrency` or wait and retry."
            )
        if status == 529 or kind == "overloaded_error":
            return f"Anthropic is overloaded ({code}){tries}. Try again in a few minutes."
        if status >= 500 or kind == "api_error":
            return f"Anthropic server error ({code}){tries}: {detail}"
        if status == 400:
            return f"Anthropic rejected the request (400): {detail}"
        return f"Anthropic API error ({code}): {detail or err.message}"
