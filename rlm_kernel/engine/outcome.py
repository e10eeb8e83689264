"""RLMResult: what a run returns, and the `run_finished` event that records it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import events as ev
from .record import RunLog
from .types import Usage

if TYPE_CHECKING:
    from .run import Run


@dataclass
class RLMResult:
    answer: str
    status: str  # done | stopped | failed | budget
    reason: str | None
    run_id: str
    question: str
    steps: int
    subcalls: int
    elapsed: float
    usage: dict[str, Usage] = field(default_factory=dict)
    cost: float | None = None
    demo: bool = False
    answer_source: str = "partial"
    log_path: Path | None = None
    #: The answer as the Python object it was read from (FINAL_VAR(df) -> the DataFrame), else the answer
    #: text itself. In memory only: the run record keeps the text.
    value: Any = field(default=None, repr=False, compare=False)
    #: Where the run's code ran, so a follow-up (`ask`) continues in the same namespace. In memory only.
    executor: Any = field(default=None, repr=False, compare=False)
    #: A run tree on screen already shows the answer: the cell's value then shows one line, not it again.
    answer_shown: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def record(cls, run: Run, status: str, answer: str, source: str, reason: str | None) -> RLMResult:
        """Build the result and write `run_finished`; a root run reports the usage of its whole tree."""
        usage = dict(run.budget.usage) if run.parent is None else dict(run.usage)
        cost = run.budget.cost() if run.parent is None else None
        elapsed = round(time.time() - run.started_at, 3)
        done = run.emit(ev.RUN_FINISHED, status=status, answer=answer, answer_source=source, reason=reason,
                        usage={m: u.to_dict() for m, u in usage.items()}, cost=cost, elapsed=elapsed,
                        steps=run.step, subcalls=run.subcalls)
        # The answer as recorded, secrets redacted: FINAL_VAR of a variable holding a key returns no key.
        return cls(answer=done["answer"], status=status, reason=done["reason"], run_id=run.run_id,
                   question=run.question, steps=run.step, subcalls=run.subcalls, elapsed=elapsed, usage=usage,
                   cost=cost, demo=run.clients.demo, answer_source=source, log_path=run.log_path,
                   value=_value(run, done["answer"]), executor=run.executor)

    @property
    def run(self) -> RunLog:
        """The full run record, read back from its log."""
        if self.log_path is None:
            raise ValueError("this run was not recorded to a log")
        return RunLog.read(self.log_path)

    @property
    def total_usage(self) -> Usage:
        return Usage.sum(self.usage.values())

    def ask(self, question: str, **options: Any) -> RLMResult:
        """A follow-up question in the same REPL: the model is told this run's question, answer and code,
        and the variables its code made are still there. Options as for rlm(); the run's own options
        (model, provider, ...) are the defaults."""
        from .api import rlm
        from .options import RLMOptions

        started = self.run.started() or {}
        recorded = RLMOptions.from_recorded(started.get("options")).public_dict()
        merged = {**{k: v for k, v in recorded.items() if v is not None}, **options}
        return rlm(question, continue_from=self, **merged)

    def export(self, path: str | Path) -> Path:
        """Write the run as a replayable notebook (the export room reads only the log)."""
        from ..export.notebook import export_run  # lazy: the engine never needs the export room

        return export_run(self.run, path, run_id=self.run_id)

    def summary(self) -> str:
        u = self.total_usage
        parts = [f"{self.status}", f"{self.steps} steps", f"{self.subcalls} sub-calls",
                 f"{'≈' if u.estimated else ''}{u.input_tokens + u.cache_read_tokens + u.cache_write_tokens:,} in / "
                 f"{u.output_tokens:,} out tokens{' (estimated)' if u.estimated else ''}"]
        if u.cache_read_tokens:
            parts.append(f"{u.cache_read_tokens:,} cached")
        if self.cost is not None:
            parts.append(f"${self.cost:.4f}")
        parts.append(f"{self.elapsed:.1f} s")
        if self.demo:
            parts.append("demo model (offline)")
        return " · ".join(parts)

    def __str__(self) -> str:
        return self.answer

    def _repr_markdown_(self) -> str:
        if self.answer_shown:
            return f"<small>RLM · {self.summary()} · run `{self.run_id}` · the answer is in the tree above " \
                   f"(`_.answer`)</small>"
        note = f"\n\n*{self.reason}*" if self.reason and self.status != "done" else ""
        return f"{self.answer}{note}\n\n<small>RLM · {self.summary()} · run `{self.run_id}`</small>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(f"RLMResult(status={self.status!r}, steps={self.steps}, answer={self.answer[:200]!r})")


def _value(run: Run, answer: str) -> Any:
    """The object behind `answer`, if the answer is that object's text (a redacted or rewritten answer
    keeps no object: its text is all that may leave the run). Plain text answers are their own value."""
    from .run import NO_VALUE

    value = run.answer_value
    if value is NO_VALUE and run.answer.get("ready") and not isinstance(run.answer.get("content"), str):
        value = run.answer["content"]  # answer["content"] = df; answer["ready"] = True
    if value is NO_VALUE or value is None or isinstance(value, str):
        return answer
    try:
        return value if str(value) == answer else answer
    except Exception:
        return answer
