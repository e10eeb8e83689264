"""Follow-up questions in the same REPL: what the model is told about the questions before.

A follow-up starts a new run (its own log, linked by `continues`) on the same namespace, so every
variable the earlier runs made is still there. The model does not get the earlier transcripts, which
grow with every step and would mostly repeat outputs it no longer needs; it gets a compact account:
each earlier question and answer, the code that ran (each cell cut to its first lines), and the
variables the REPL holds now with their types and sizes. benchmarks/followup.py measures its size
against the transcript it replaces."""

from __future__ import annotations

from typing import Any

from . import events as ev
from .compat import show_vars
from .record import RunLog

#: Earlier questions told in full (question, answer, cells); older ones keep question and answer only.
FULL_QUESTIONS = 3
ANSWER_CHARS = 1_500
CELL_LINES = 4
CELL_CHARS = 400
CELLS_PER_RUN = 12


def _cut(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _cell_gist(code: str) -> str:
    lines = [ln for ln in code.strip().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    gist = "\n".join(lines[:CELL_LINES])
    more = len(lines) - CELL_LINES
    if more > 0:
        gist += f"\n… ({more} more line{'s' if more != 1 else ''})"
    return _cut(gist, CELL_CHARS)


def earlier_questions(log: RunLog) -> list[dict[str, Any]]:
    """The chain of questions that led to `log`'s run, oldest first: each with its answer, cells and
    cost (None when unknown), for the model's account and the tree's continuation section. Earlier
    links come from the `earlier` field the run recorded when it started."""
    started = log.started() or {}
    finished = log.finished() or {}
    root = started.get("run_id")
    cells = [e["code"] for e in log.of_run(root) if e["type"] == ev.CELL_FINISHED] if root else []
    this = {"question": started.get("question", ""), "answer": finished.get("answer", ""),
            "status": finished.get("status", "unknown"), "steps": finished.get("steps", 0),
            "subcalls": finished.get("subcalls", 0), "cost": finished.get("cost"), "cells": cells, "run_id": root}
    return [*started.get("earlier", []), this]


def account(chain: list[dict[str, Any]], namespace: dict[str, Any], helpers: set[str]) -> str:
    """The text the model reads before a follow-up question."""
    parts = ["This is a follow-up. Earlier in this session you answered the questions below, in this same "
             "REPL: everything your code made is still defined, so build on it instead of recomputing."]
    for n, q in enumerate(chain, start=1):
        full = n > len(chain) - FULL_QUESTIONS
        parts.append(f"\nQuestion {n}: {_cut(q['question'], 600)}")
        status = "" if q["status"] == "done" else f" (the run ended {q['status']}, so this may be partial)"
        parts.append(f"Answer {n}{status}: {_cut(q['answer'] or '(none)', ANSWER_CHARS if full else 300)}")
        if full and q["cells"]:
            shown = q["cells"][-CELLS_PER_RUN:]
            skipped = len(q["cells"]) - len(shown)
            parts.append(f"Code that ran ({q['steps']} steps, {q['subcalls']} sub-calls"
                         + (f"; the first {skipped} cells left out" if skipped else "") + "):")
            parts.extend(f"[{i}] " + _cell_gist(code).replace("\n", "\n    ")
                         for i, code in enumerate(shown, start=skipped + 1))
    variables = str(show_vars(namespace, helpers)).strip()
    parts.append("\nVariables in the REPL now:\n" + (variables or "(none besides context)"))
    return "\n".join(parts)


def earlier_logs(log: RunLog) -> list[tuple[dict[str, Any], RunLog | None]]:
    """The earlier questions of a follow-up with their logs, oldest first, looked up next to `log`
    (`<runs dir>/<run_id>.jsonl`); None where a log is not there. Empty for a run that is no follow-up."""
    found: list[tuple[dict[str, Any], RunLog | None]] = []
    for q in (log.started() or {}).get("earlier") or []:
        path = log.path.parent / f"{q.get('run_id')}.jsonl"
        found.append((q, RunLog.read(path) if q.get("run_id") and path.is_file() else None))
    return found


def missing_log(q: dict[str, Any], log: RunLog) -> str:
    """One line saying which earlier log is not there and what that costs."""
    return (f"the log of the earlier question {_cut(q.get('question') or '', 60)!r} ({q.get('run_id')}.jsonl) is "
            f"not in {log.path.parent}: copy it back there so its cells run first (the follow-up's code uses "
            "the variables they made)")


def finished_cells(log: RunLog, run_id: str | None = None, last_step: int | None = None) -> list[dict[str, Any]]:
    """The root run's cell_finished events that made its namespace: up to `last_step`, and without the
    cells of steps a later resume left behind (it went on from an earlier step)."""
    cells: list[dict[str, Any]] = []
    for e in log.of_run(run_id or log.root_run_id or ""):
        if e["type"] == ev.RUN_RESUMED:
            cells = [c for c in cells if c["step"] <= e.get("from_step", 0)]
        elif e["type"] == ev.CELL_FINISHED and (last_step is None or e["step"] <= last_step):
            cells.append(e)
    return cells
