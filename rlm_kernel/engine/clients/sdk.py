"""What the two SDK-backed clients (Anthropic, OpenAI-compatible) share: an SDK client made on
first use on the loop that uses it (and remade when a later call comes from another loop), closed
by `aclose`, and failures turned into a ModelError that never carries a key."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import httpx2

from ..redaction import Redactor
from ..types import ModelError
from .errors import retries_taken


class SDKClient:
    """Base of AnthropicClient and OpenAICompatClient. Subclasses build their SDK in `_new_sdk`
    and name the keys to keep out of messages in `_secrets`."""

    base_url: str

    def __init__(self, api_key: str | None, max_retries: int, timeout: float) -> None:
        self._api_key = api_key
        self.max_retries = max_retries
        self.timeout = timeout
        self._sdk: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r}, max_retries={self.max_retries})"

    def _new_sdk(self, timeout: httpx2.Timeout) -> Any:
        raise NotImplementedError

    @property
    def sdk(self) -> Any:
        """The SDK client (anthropic.AsyncAnthropic, openai.AsyncOpenAI) once built, else None: a
        warm client has one before its first request."""
        return self._sdk

    def _secrets(self) -> Iterable[str | None]:
        return [self._api_key]

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._loop is not loop:
            self._sdk = self._new_sdk(httpx2.Timeout(self.timeout, connect=min(self.timeout, 10.0)))
            self._loop = loop
        return self._sdk

    async def aclose(self) -> None:
        sdk, loop = self._sdk, self._loop
        self._sdk = self._loop = None
        if sdk is not None and loop is asyncio.get_running_loop():
            await sdk.close()

    # -- errors --
    def _error(self, message: str) -> ModelError:
        return ModelError(Redactor(self._secrets(), env={}).text(message))

    def _broken(self, err: Exception) -> ModelError:
        """The connection broke while the body was streaming (after the SDK's retries apply)."""
        return self._error(
            f"The connection to {self.base_url} broke during the response ({type(err).__name__}); try again."
        )

    def _timed_out(self, request: httpx2.Request | None) -> str:
        return f"The request to {self.base_url} timed out (timeout {self.timeout:g} s{retries_taken(request)})."
