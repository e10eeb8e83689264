"""How many sub-calls a run tree keeps in flight: as many as the server takes, found as it goes.

A fixed width either leaves speed unused or, against a rate limit, turns a fan-out into a storm of
429s. `AdaptiveLimiter` starts at the user's `concurrency` (the ceiling), narrows when the server
answers 429 or 529, and widens again by about one slot per round of successful calls (AIMD).

Retries stay with the model SDK (its backoff, retry-after and x-should-retry rules are the API's
own); the limiter only needs to *see* each attempt. It does so through httpx event hooks on the
SDK's HTTP client (`EVENT_HOOKS`): each sub-call holds a `Slot` in a context variable, which the
hooks (awaited inside the caller's task) read. On a 429/529 the response hook

- narrows the limit, once per round (an overload from a request sent before the last narrowing says
  nothing new) by at least one slot and at most a factor BETA, and never above the number of
  requests the server is still holding, which against a concurrency limit is that limit; growth
  back to the width that overloaded is then PROBE times slower, so it probes rarely;
- holds back new requests until the retry-after the server asked for has passed;
- parks the refused call's slot, so the SDK's retry of it (re-admitted by the request hook) waits
  for a free slot like any new request instead of joining a herd of retries.

The limiter lives on the run tree's Budget, so llm_query, llm_query_batched and child runs share it.
Requests without a slot (root turns) pass through the hooks untouched. Only the Anthropic client
installs the hooks so far; behind another client the limiter stays at its ceiling (a fixed width)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

#: Statuses that mean "too much": rate limited, overloaded.
OVERLOAD = frozenset({429, 529})
#: Multiplicative decrease per round of overloads.
BETA = 0.7
#: How much slower the limit grows past the width that last overloaded (probing for room).
PROBE = 8
#: Longest hold honoured from one retry-after (the SDK itself caps its waits at 60 s).
MAX_HOLD = 60.0

_current: ContextVar[Slot | None] = ContextVar("rlm_limiter_slot", default=None)


class AdaptiveLimiter:
    """AIMD concurrency limit between 1 and `ceiling`; `limit` starts at `start` (default: the ceiling).
    With `adaptive=False` it only counts (a fixed width, for comparison)."""

    def __init__(self, ceiling: int, start: int | None = None, *, adaptive: bool = True) -> None:
        self.adaptive = adaptive
        self.ceiling = max(1, int(ceiling))
        self.limit = float(min(self.ceiling, start or self.ceiling))
        self.active = 0
        self.epoch = 0
        self.hold_until = 0.0
        #: What the limiter saw: 429/529 responses, successful responses, the lowest limit reached.
        self.overloads = 0
        self.successes = 0
        self.lowest = self.limit
        #: Requests in flight when the last round of overloads began; growth up to it is slow.
        self.refused_at = float("inf")
        self._waiters: deque[asyncio.Future[None]] = deque()

    def __repr__(self) -> str:
        return (f"AdaptiveLimiter(limit={self.limit:.2f}, ceiling={self.ceiling}, active={self.active}, "
                f"overloads={self.overloads})")

    @property
    def width(self) -> int:
        return max(1, int(self.limit))

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """Hold one slot for the block; the SDK calls made inside it report to this limiter."""
        slot = Slot(self)
        await slot.acquire()
        token = _current.set(slot)
        try:
            yield slot
        finally:
            _current.reset(token)
            slot.release()

    # --- admission ----------------------------------------------------------------------------
    async def _admit(self) -> int:
        loop = asyncio.get_running_loop()
        while True:
            wait = self.hold_until - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.active < self.width:
                self.active += 1
                return self.epoch
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._waiters:
                    self._waiters.remove(fut)

    def _free(self) -> None:
        self.active -= 1
        self._wake()

    def _wake(self) -> None:
        room = self.width - self.active
        while room > 0 and self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                room -= 1

    # --- signals ------------------------------------------------------------------------------
    def succeeded(self) -> None:
        self.successes += 1
        if self.adaptive and self.limit < self.ceiling:
            # About one slot per round of calls; near the width that last overloaded, PROBE times slower.
            step = 1.0 / self.limit if self.limit + 1.0 < self.refused_at else 1.0 / (self.limit * PROBE)
            self.limit = min(float(self.ceiling), self.limit + step)
            self._wake()

    def overloaded(self, slot: Slot, retry_after: float | None) -> None:
        """A 429/529 answered `slot`'s request (the SDK will retry it)."""
        self.overloads += 1
        if not self.adaptive:
            return
        width = self.limit
        slot.park()
        held = float(self.active)  # the requests the server was still holding when it refused this one
        if slot.epoch == self.epoch:  # a new round: narrow at least one slot, at most by BETA
            self.refused_at = held + 1.0
            self.limit = min(width - 1.0, max(width * BETA, held))
            self.epoch += 1
        self.limit = max(1.0, min(self.limit, held))
        self.lowest = min(self.lowest, self.limit)
        if retry_after:
            self.hold_until = max(self.hold_until, time.monotonic() + min(retry_after, MAX_HOLD))


class Slot:
    """One sub-call's place in the limiter; parked while the SDK waits to retry a refused request."""

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self.limiter = limiter
        self.held = False
        self.epoch = -1

    async def acquire(self) -> None:
        self.epoch = await self.limiter._admit()
        self.held = True

    def park(self) -> None:
        if self.held:
            self.held = False
            self.limiter._free()

    def release(self) -> None:
        self.park()


def retry_after(headers: Any) -> float | None:
    """Seconds the server asked to wait (retry-after-ms, then retry-after in seconds), or None."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                seconds = float(value) * scale
            except ValueError:
                continue  # an HTTP date: leave it to the SDK
            if seconds > 0:
                return seconds
    return None


async def _on_request(request: Any) -> None:
    slot = _current.get()
    if slot is not None and not slot.held:
        await slot.acquire()  # the SDK's retry of a refused request waits for room like a new one


async def _on_response(response: Any) -> None:
    slot = _current.get()
    if slot is None:
        return
    if response.status_code in OVERLOAD:
        slot.limiter.overloaded(slot, retry_after(response.headers))
    elif response.status_code < 400:
        slot.limiter.succeeded()


#: Pass as `event_hooks=` to the SDK's HTTP client (anthropic.DefaultAsyncHttpxClient).
EVENT_HOOKS: dict[str, list[Any]] = {"request": [_on_request], "response": [_on_response]}
