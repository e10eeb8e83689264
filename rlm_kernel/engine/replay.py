"""Answer sub-calls from a recording, so a run's cells can run again with no model and no network
(resume in a fresh process; exported notebooks)."""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from typing import Any

from . import events as ev
from .record import RunLog
from .types import ModelError


def prompt_digest(prompt: str) -> str:
    """What a recording keys an answer by: the prompt's SHA-256, so a recording that travels with an
    exported notebook need not carry the prompts (pieces of the context) themselves."""
    return hashlib.sha256(prompt.encode("utf-8", "surrogatepass")).hexdigest()


class ReplayMiss(LookupError):
    """Generated code asked a sub-call that the recording does not have."""


class RecordedAnswers:
    """Recorded sub-call responses keyed by (kind, prompt digest). Repeated prompts answer in recorded order."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], deque[tuple[str, str | None]]] = defaultdict(deque)
        self._last: dict[tuple[str, str], tuple[str, str | None]] = {}

    @classmethod
    def from_log(cls, log: RunLog) -> RecordedAnswers:
        rec = cls()
        started = {e["id"]: e for e in log.events if e["type"] == ev.SUBCALL_STARTED}
        for e in log.events:
            if e["type"] != ev.SUBCALL_FINISHED:
                continue
            start = started.get(e["id"])
            if start is None:
                continue
            # A call that raised in the run raises again; a batch slot that held an error string returns it.
            # An exported notebook's recording has digests, not prompts.
            digest = start.get("prompt_sha256") or prompt_digest(start["prompt"])
            rec._answers[(e.get("kind", "llm"), digest)].append(
                (e.get("response") or "", e.get("error") if e.get("raised") else None))
        return rec

    def add(self, kind: str, prompt: str, response: str, error: str | None = None) -> None:
        self._answers[(kind, prompt_digest(prompt))].append((response, error))

    def answer(self, kind: str, prompt: str, model: str | None = None) -> str:
        key = (kind, prompt_digest(prompt))
        queue = self._answers.get(key)
        if queue:
            self._last[key] = queue.popleft()
        if key in self._last:  # asked more often than recorded: the same answer again
            response, error = self._last[key]
            if error:
                raise ModelError(error)
            return response
        start = prompt[:120].replace("\n", " ")
        raise ReplayMiss(f"{'rlm_query' if kind == 'rlm' else 'llm_query'} prompt not in the recording: "
                         f"{start!r}{'...' if len(prompt) > 120 else ''}. The code changed since the run was "
                         f"recorded; replay with live models instead (--live).")

    def __len__(self) -> int:
        return sum(len(q) for q in self._answers.values())

    def bind(self, namespace: dict[str, Any]) -> None:
        """Put replaying llm_query / llm_query_batched / rlm_query / rlm_query_batched into `namespace`."""

        def llm_query(prompt: str, model: str | None = None) -> str:
            return self.answer("llm", str(prompt), model)

        def llm_query_batched(prompts: list[str], model: str | None = None, batch: bool | None = None) -> list[str]:
            return [self.answer("llm", str(p), model) for p in prompts]

        def rlm_query(prompt: str, context: Any = None) -> str:
            try:
                return self.answer("rlm", str(prompt))
            except ReplayMiss:
                if context is None:
                    raise
                return self.answer("rlm", f"{prompt}\n\n{context}")

        def rlm_query_batched(prompts: list[str], contexts: list[Any] | None = None) -> list[str]:
            pairs = zip(prompts, contexts if contexts is not None else [None] * len(prompts), strict=True)
            return [rlm_query(p, c) for p, c in pairs]

        namespace.update(llm_query=llm_query, llm_query_batched=llm_query_batched, rlm_query=rlm_query,
                         rlm_query_batched=rlm_query_batched)
