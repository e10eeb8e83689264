"""Budgets shared by a whole run tree: sub-calls, tokens, dollars and wall-clock time.

Iterations and depth are per run and live in the loop. Every check that trips records the first
reason, so the run can end cleanly with it and with the best partial answer."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import pricing
from .concurrency import AdaptiveLimiter
from .options import RLMOptions
from .types import Usage


class BudgetExceeded(Exception):
    """Raised where a budget is hit; inside generated code it surfaces as an error for that cell,
    and the loop then ends the run with the budget's reason."""

    def __init__(self, kind: str, limit: float, value: float) -> None:
        self.kind, self.limit, self.value = kind, limit, value
        super().__init__(f"{kind} budget exhausted: {value:g} of {limit:g}")


@dataclass
class Budget:
    options: RLMOptions
    started: float = field(default_factory=time.monotonic)
    subcalls: int = 0
    usage: dict[str, Usage] = field(default_factory=lambda: defaultdict(Usage))
    tripped: BudgetExceeded | None = None
    #: Sub-call answers shared by the whole run tree, keyed by (model, prompt); see Run._ask_sub.
    memo: dict[tuple[str, str], Any] = field(default_factory=dict)
    #: Sub-calls in flight over the whole run tree, at most `concurrency` (see concurrency.py).
    limiter: AdaptiveLimiter = field(init=False)
    #: Message Batches sent by this run tree and not yet collected (see batches.py).
    batches: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.limiter = AdaptiveLimiter(self.options.concurrency)

    # --- accounting --------------------------------------------------------------------------
    def record(self, model: str, usage: Usage) -> None:
        with self._lock:
            self.usage[model].add(usage)
        self.check_tokens_and_cost()

    def take_subcall(self, n: int = 1) -> None:
        """Reserve n sub-calls or raise before any is sent."""
        limit = self.options.max_subcalls
        with self._lock:
            if limit is not None and self.subcalls + n > limit:
                self._trip(BudgetExceeded("subcalls", limit, self.subcalls + n))
            self.subcalls += n

    # --- derived ----------------------------------------------------------------------------
    @property
    def total_usage(self) -> Usage:
        return Usage.sum(self.usage.values())

    def cost(self) -> float | None:
        """Dollars over models with a known price; None when no model used has a price."""
        costs = [pricing.cost(m, u, self.options.prices) for m, u in list(self.usage.items())]
        known = [c for c in costs if c is not None]
        return sum(known) if known else None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining_time(self) -> float | None:
        if self.options.timeout is None:
            return None
        return max(0.0, self.options.timeout - self.elapsed())

    # --- checks -----------------------------------------------------------------------------
    def check_tokens_and_cost(self) -> None:
        o = self.options
        if o.max_tokens is not None:
            total = self.total_usage.total_tokens
            if total > o.max_tokens:
                self._trip(BudgetExceeded("tokens", o.max_tokens, total))
        if o.max_cost is not None:
            c = self.cost()
            if c is not None and c > o.max_cost:
                self._trip(BudgetExceeded("cost", o.max_cost, round(c, 6)))

    def check_time(self) -> None:
        rem = self.remaining_time()
        if rem is not None and rem <= 0:
            self._trip(BudgetExceeded("time", self.options.timeout or 0, round(self.elapsed(), 3)))

    def check(self) -> None:
        """Raise the tripped budget (if any) at a step boundary."""
        self.check_time()
        if self.tripped is not None:
            raise self.tripped

    def _trip(self, exc: BudgetExceeded) -> None:
        if self.tripped is None:
            self.tripped = exc
        raise exc
