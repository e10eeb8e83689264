"""ModelClient for OpenAI-compatible chat-completions servers (vLLM, Ollama, llama.cpp server,
llama-cpp-python, OpenAI itself) through the official `openai` SDK, an optional dependency.

Calls are streamed with `stream_options.include_usage` so token counts arrive in the last chunk;
servers that cache prefixes report `prompt_tokens_details.cached_tokens`, which becomes
`cache_read_tokens`. There are no cache breakpoints to send: such caching is automatic.

Local servers bend the protocol, and this client says so instead of passing the damage on:
- a stream that ends without a finish reason (llama-cpp-python answers a prompt over its window
  with HTTP 200 and an empty stream, and with `interrupt_requests` on it cuts a streamed reply
  short when another request arrives) is retried once without streaming, where such a server
  reports the real error or answers in full; a second empty reply is a ModelError saying why;
- a stream without usage gets an estimate (engine/tokens.py), marked `Usage.estimated`;
- the window is read from the server where it says (`discover`): vLLM's `/v1/models`
  `max_model_len`, llama.cpp server's `/props` `default_generation_settings.n_ctx`, or the
  "maximum context length is N tokens" of a context-length error."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx2

from ..tokens import estimate_messages, estimate_tokens
from ..types import Completion, TextCallback, ToolCall, ToolCallback, ToolSpec, Usage
from .errors import retries_taken
from .sdk import SDKClient
from .tooluse import ToolInputs, openai_messages, openai_tools

log = logging.getLogger(__name__)

#: Local servers ignore the key, but the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"
#: Seconds each window probe (GET /v1/models, GET /props) may take: a local server answers at once.
PROBE_TIMEOUT = 5.0
_MAX_CONTEXT = re.compile(r"maximum context length is (\d[\d,]*) tokens", re.IGNORECASE)


def import_openai() -> ModuleType:
    try:
        import openai
    except ImportError as err:
        raise ImportError(
            'The OpenAI-compatible provider needs the openai package: pip install "rlm-kernel[openai]"'
        ) from err
    return openai


@dataclass
class _Reply:
    """What one attempt produced, streamed or not."""

    text: str = ""
    finish: str | None = None
    usage: Any = None
    parts: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.finish is not None


class OpenAICompatClient(SDKClient):
    """An OpenAI-compatible server at `base_url` (usually ending in /v1). `api_key` defaults to
    OPENAI_API_KEY, then a placeholder. `context_windows` maps model ids to their input window
    (the caller's settings win over what `discover` reads from the server)."""

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
        #: model -> (window, where it was read), filled by `discover` and by context-length errors.
        self.discovered: dict[str, tuple[int, str]] = {}
        self._probed = False
        self._warned_cut = False

    @property
    def _key(self) -> str:
        return self._api_key or os.environ.get("OPENAI_API_KEY") or PLACEHOLDER_KEY

    def _new_sdk(self, timeout: httpx2.Timeout) -> Any:
        return self._openai.AsyncOpenAI(
            base_url=self.base_url, api_key=self._key, max_retries=self.max_retries, timeout=timeout
        )

    # -- windows --
    def context_window(self, model: str) -> int | None:
        if model in self.context_windows:
            return self.context_windows[model]
        found = self.discovered.get(model)
        return found[0] if found else None

    def window_source(self, model: str) -> str | None:
        if model in self.context_windows:
            return "option"
        found = self.discovered.get(model)
        return found[1] if found else None

    async def discover(self, models: Iterable[str]) -> None:
        """Read the windows the server reports, once per client: vLLM lists `max_model_len` per model
        in /v1/models; llama.cpp's server has `n_ctx` in /props. llama-cpp-python and Ollama report
        neither (their window then comes from an option, an error message, or the caller's default)."""
        wanted = [m for m in models if self.context_window(m) is None]
        if self._probed or not wanted:
            return
        self._probed = True
        headers = {"authorization": f"Bearer {self._key}"}
        async with httpx2.AsyncClient(timeout=PROBE_TIMEOUT, headers=headers) as http:
            listing = await _get_json(http, f"{self.base_url}/models")
            entries = listing.get("data") if isinstance(listing, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                n = _positive_int(entry.get("max_model_len")) if isinstance(entry, dict) else None
                if n is not None and isinstance(entry.get("id"), str):
                    self.discovered[entry["id"]] = (n, "server: /v1/models max_model_len")
            if all(self.context_window(m) is not None for m in wanted):
                return
            root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
            props = await _get_json(http, f"{root}/props")
            settings = props.get("default_generation_settings") if isinstance(props, dict) else None
            n = _positive_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
            if n is not None:  # llama.cpp serves one model (or one per slot): the same window for all
                for m in wanted:
                    self.discovered.setdefault(m, (n, "server: /props n_ctx"))

    # -- requests --
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
        msgs = ([{"role": "system", "content": system}] if system else []) + openai_messages(messages)
        params: dict[str, Any] = {"model": model, "messages": msgs, "max_tokens": max_output_tokens}
        if temperature is not None:
            params["temperature"] = temperature
        if tools:
            params["tools"] = openai_tools(tools)
        started = time.perf_counter()
        reply = await self._attempt(self._stream, params, model, on_text, on_tool)
        if not reply.complete:
            # Cut short or empty with no finish reason: ask once more without streaming, where
            # llama-cpp-python reports a prompt over its window as an error and is never interrupted.
            first = reply
            reply = await self._attempt(self._whole, params, model, None, None)
            if not reply.text and not reply.tool_calls and not reply.complete:
                raise self._error(self._empty_reply(model, msgs))
            if not self._warned_cut:
                self._warned_cut = True
                log.warning("%s ended a streamed reply with no finish reason (%s); asked again without "
                            "streaming, it answered. llama-cpp-python does this when requests overlap, unless "
                            "started with --interrupt_requests false.", self.base_url,
                            "cut short" if first.text else "empty")
            if on_text is not None and reply.text.startswith(first.text):
                on_text(reply.text[len(first.text):])
            elif on_text is not None and reply.text:
                on_text(reply.text)  # the live text so far was a false start; the record has the final text
        return Completion(
            text=reply.text,
            model=model,
            usage=_usage(reply.usage) if reply.usage is not None else _estimated(system, messages, reply),
            stop_reason=reply.finish,
            latency=time.perf_counter() - started,
            tool_calls=reply.tool_calls,
        )

    async def _attempt(self, how: Any, params: dict[str, Any], model: str,
                       on_text: TextCallback | None, on_tool: ToolCallback | None) -> _Reply:
        try:
            return await how(params, on_text, on_tool)
        except self._openai.OpenAIError as err:
            self._learn_window(err, model)
            raise self._error(self._explain(err, model)) from None
        except httpx2.HTTPError as err:
            raise self._broken(err) from None

    async def _stream(self, params: dict[str, Any], on_text: TextCallback | None,
                      on_tool: ToolCallback | None) -> _Reply:
        reply, calls = _Reply(), ToolInputs(on_tool)
        stream = await self._client().chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        async with stream:
            async for chunk in stream:
                if chunk.usage is not None:
                    reply.usage = chunk.usage
                for choice in chunk.choices:
                    text = choice.delta.content if choice.delta is not None else None
                    if text:
                        reply.parts.append(text)
                        if on_text is not None:
                            on_text(text)
                    for tc in (choice.delta.tool_calls if choice.delta is not None else None) or []:
                        calls.start(tc.index, tc.id, tc.function.name if tc.function else None)
                        calls.feed(tc.index, (tc.function.arguments if tc.function else None) or "")
                    if choice.finish_reason:
                        reply.finish = choice.finish_reason
        reply.text = "".join(reply.parts)
        reply.tool_calls = [ToolCall(*call) for call in calls.finished()]
        return reply

    async def _whole(self, params: dict[str, Any], on_text: TextCallback | None,
                     on_tool: ToolCallback | None) -> _Reply:
        done = await self._client().chat.completions.create(**params)
        choice = done.choices[0] if done.choices else None
        message = choice.message if choice is not None else None
        text = (message.content or "") if message is not None else ""
        calls = ToolInputs(None)
        for index, tc in enumerate(getattr(message, "tool_calls", None) or []):
            calls.start(index, tc.id, tc.function.name if tc.function else None)
            calls.feed(index, (tc.function.arguments if tc.function else None) or "")
        return _Reply(text=text, finish=choice.finish_reason if choice is not None else None, usage=done.usage,
                      tool_calls=[ToolCall(*call) for call in calls.finished()])

    def _learn_window(self, err: Exception, model: str) -> None:
        """A context-length error names the window ("maximum context length is 8192 tokens"): keep it."""
        m = _MAX_CONTEXT.search(str(getattr(err, "message", "") or err))
        if m and model not in self.context_windows:
            self.discovered[model] = (int(m.group(1).replace(",", "")), "server: context-length error")

    def _empty_reply(self, model: str, msgs: list[dict[str, Any]]) -> str:
        estimate = estimate_messages("", msgs)
        window = self.context_window(model)
        over = window is not None and estimate >= window
        size = f"about {estimate:,} tokens" + (f", its window is {window:,}" if window else "")
        causes = [
            f"the prompt ({size}) is over the server's window: llama-cpp-python answers that with an empty "
            "stream; send less, or start the server with a larger --n_ctx",
            "the request was cut off by another one: llama-cpp-python does this by default; start it with "
            "--interrupt_requests false, or lower `concurrency`",
        ]
        return (f"{self.base_url} returned an empty reply with no finish reason for {model}, streamed and then "
                f"not streamed. Likely {'; or '.join(causes if over else causes[::-1])}.")

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


async def _get_json(http: httpx2.AsyncClient, url: str) -> Any:
    """The JSON at `url`, or None when the server has no such endpoint or does not answer."""
    try:
        response = await http.get(url)
        return response.json() if response.status_code == 200 else None
    except (httpx2.HTTPError, ValueError):
        return None


def _positive_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _estimated(system: str, messages: list[dict[str, Any]], reply: _Reply) -> Usage:
    """Usage for a server that reported none (llama-cpp-python never does in streams)."""
    written = reply.text + "".join(str(call.input) for call in reply.tool_calls)
    return Usage(input_tokens=estimate_messages(system, messages), output_tokens=estimate_tokens(written),
                 calls=1, estimated=True)


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

