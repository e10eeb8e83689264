"""The figures a run's header shows (models, steps, sub-calls, tokens, cost, status), taken from
`run_finished` when the run finished and recomputed from the events when it did not. Shared by the
export's title cell and the widget's static tree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import pricing
from .runtree import RunNode
from .text import plural
from .types import Usage

SOURCES = {
    "FINAL": "answered with FINAL",
    "FINAL_VAR": "answered with FINAL_VAR",
    "code": "answered from code (FINAL / answer dict)",
    "forced": "answer forced at the step limit",
    "partial": "best partial answer",
}


@dataclass
class RunSummary:
    status: str  # done | stopped | failed | budget | crashed
    reason: str | None
    answer: str | None
    answer_source: str | None
    steps: int
    subcalls: int
    child_runs: int
    usage: dict[str, Usage] = field(default_factory=dict)
    cost: float | None = None
    unpriced: list[str] = field(default_factory=list)
    started_at: float | None = None
    elapsed: float | None = None
    last_step: int = 0

    @property
    def total(self) -> Usage:
        return Usage.sum(self.usage.values())

    def status_text(self) -> str:
        reason = f": {self.reason}" if self.reason else ""
        if self.status == "done":
            return "done" + (f" ({SOURCES.get(self.answer_source or '', self.answer_source)})"
                             if self.answer_source else "")
        if self.status == "budget":
            return f"ended by a budget{reason}"
        if self.status == "crashed":
            return (f"did not finish: the log ends in step {self.last_step} (the process stopped before "
                    f"the run could record its end)")
        if self.reason and self.reason.lower().startswith(self.status):
            return self.reason  # "stopped by user", not "stopped: stopped by user"
        return f"{self.status}{reason}"

    def tokens_text(self) -> str:
        u = self.total
        parts = [f"{u.input_tokens:,} input", f"{u.output_tokens:,} output"]
        if u.cache_read_tokens:
            parts.append(f"{u.cache_read_tokens:,} cache reads")
        if u.cache_write_tokens:
            parts.append(f"{u.cache_write_tokens:,} cache writes")
        if u.estimated:
            parts.append("partly estimated: a server reported no usage")
        return f"{u.total_tokens:,} ({' · '.join(parts)})"

    def cost_text(self) -> str:
        missing = f"no price known for {', '.join(f'`{m}`' for m in self.unpriced)}" if self.unpriced else ""
        if self.cost is None:
            return f"unknown ({missing})" if missing else "unknown"
        return f"${self.cost:,.4f}" + (f" ({missing})" if missing else "")

    def subcalls_text(self) -> str:
        text = f"{self.subcalls:,}"
        return text + (f" (including {plural(self.child_runs, 'child run')})" if self.child_runs else "")

    def date_text(self) -> str:
        if self.started_at is None:
            return "unknown"
        return datetime.fromtimestamp(self.started_at, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _tree_usage(node: RunNode) -> dict[str, Usage]:
    """Usage over every model reply and plain sub-call in the tree (child runs count through their turns)."""
    usage: dict[str, Usage] = {}

    def add(model: Any, u: dict[str, Any] | None) -> None:
        if u:
            usage.setdefault(str(model), Usage()).add(Usage.from_dict(u))

    for run in node.walk():
        for step in run.steps:
            if step.turn:
                add(step.turn.get("model"), step.turn.get("usage"))
            for sc in step.subcalls:
                if sc.child is None:
                    add(sc.model, sc.usage)
    return usage


def summarize(node: RunNode) -> RunSummary:
    fin = node.finished or {}
    runs = node.walk()
    subcalls = [sc for r in runs for s in r.steps for sc in s.subcalls]
    usage = {m: Usage.from_dict(u) for m, u in fin["usage"].items()} if fin.get("usage") else _tree_usage(node)
    prices = (node.started.get("options") or {}).get("prices")
    costs = {m: pricing.cost(m, u, prices) for m, u in usage.items() if u.total_tokens}
    known = [c for c in costs.values() if c is not None]
    cost = fin.get("cost") if fin.get("cost") is not None else (sum(known) if known else None)
    steps = fin.get("steps")
    if steps is None:
        steps = max((s.step for s in node.steps if s.turn is not None), default=0)
    return RunSummary(
        status=str(fin.get("status") or "crashed"), reason=fin.get("reason"), answer=fin.get("answer"),
        answer_source=fin.get("answer_source"), steps=int(steps), subcalls=len(subcalls),
        child_runs=len(runs) - 1, usage=usage, cost=cost,
        unpriced=sorted(m for m, c in costs.items() if c is None),
        started_at=node.started.get("t"), elapsed=fin.get("elapsed"),
        last_step=max((s.step for s in node.steps), default=0))
