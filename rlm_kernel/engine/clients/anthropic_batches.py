"""Message Batches through the SDK's own methods (`messages.batches.create/retrieve/results/cancel`
on AsyncAnthropic), for llm_query_batched(..., batch=True). Failures become ModelErrors worded by
AnthropicClient, with the key kept out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx2

from ..types import ModelError, Usage
from .anthropic_client import AnthropicClient, build_request

#: What a request that did not run says, by result type.
NOT_RUN = {
    "expired": "the batch expired (24 h) before this request ran",
    "canceled": "the batch was canceled before this request ran",
}


@dataclass
class BatchStatus:
    status: str  # in_progress | canceling | ended
    counts: dict[str, int]  # processing, succeeded, errored, canceled, expired


@dataclass
class BatchResult:
    custom_id: str
    text: str | None  # None: it failed, see error
    usage: Usage
    error: str | None = None


class AnthropicBatches:
    """The batch side of one AnthropicClient (same SDK client, key, base URL and retries)."""

    def __init__(self, client: AnthropicClient) -> None:
        self.client = client

    async def create(self, model: str, prompts: dict[str, str], max_output_tokens: int) -> str:
        """Send one batch, a request per custom_id; returns the batch id."""
        requests = []
        for custom_id, prompt in prompts.items():
            _, messages = build_request("", [{"role": "user", "content": prompt}], cache=False)
            requests.append({"custom_id": custom_id,
                             "params": {"model": model, "max_tokens": max_output_tokens, "messages": messages}})
        batch = await self._call(model, lambda sdk: sdk.messages.batches.create(requests=requests))
        return str(batch.id)

    async def retrieve(self, batch_id: str) -> BatchStatus:
        b = await self._call(None, lambda sdk: sdk.messages.batches.retrieve(batch_id))
        return BatchStatus(str(b.processing_status), b.request_counts.model_dump())

    async def results(self, batch_id: str) -> AsyncIterator[BatchResult]:
        """One BatchResult per request of an ended batch, in the order the API sends them."""
        lines = await self._call(None, lambda sdk: sdk.messages.batches.results(batch_id))
        try:
            async for line in lines:
                yield self._result(line)
        except anthropic.AnthropicError as err:
            raise self.client._error(self.client._explain(err, "")) from None
        except httpx2.HTTPError as err:
            raise self.client._broken(err) from None

    async def cancel(self, batch_id: str) -> None:
        await self._call(None, lambda sdk: sdk.messages.batches.cancel(batch_id))

    # -- helpers --
    async def _call(self, model: str | None, fn: Any) -> Any:
        sdk = self.client._client()
        try:
            return await fn(sdk)
        except anthropic.AnthropicError as err:
            raise self.client._error(self.client._explain(err, model or "the batch")) from None
        except httpx2.HTTPError as err:
            raise self.client._broken(err) from None

    @staticmethod
    def _result(line: Any) -> BatchResult:
        res = line.result
        if res.type == "succeeded":
            msg, u = res.message, res.message.usage
            usage = Usage(input_tokens=u.input_tokens or 0, output_tokens=u.output_tokens or 0,
                          cache_read_tokens=u.cache_read_input_tokens or 0,
                          cache_write_tokens=u.cache_creation_input_tokens or 0, calls=1)
            text = "".join(b.text for b in msg.content if b.type == "text")
            return BatchResult(line.custom_id, text, usage)
        if res.type == "errored":
            err = res.error.error
            return BatchResult(line.custom_id, None, Usage(), f"{err.type}: {err.message}")
        return BatchResult(line.custom_id, None, Usage(), NOT_RUN.get(res.type, f"no result ({res.type})"))


def batches_for(client: Any) -> AnthropicBatches | None:
    """The Message Batches API behind `client`, or None when its provider has none."""
    return AnthropicBatches(client) if isinstance(client, AnthropicClient) else None


__all__ = ["AnthropicBatches", "BatchResult", "BatchStatus", "ModelError", "batches_for"]
