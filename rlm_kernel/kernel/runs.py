"""Run logs on disk as `%rlm runs / show / resume / export` see them: finding one from what a
person types (an id, a unique prefix, a path, or nothing for the latest) and describing it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import events as ev
from ..engine.record import RunLog, list_runs, run_log_paths
from ..engine.text import outputs_to_text, truncate
from ..export.markdown import fence, quote

RESUMABLE = frozenset({"stopped", "crashed", "failed", "budget"})


class RunNotFound(LookupError):
    """No run matches; the message says what was looked for and where."""


def find_run(ref: str | None, runs_dir: Path, *, latest: Path | None = None,
             want: Callable[[RunLog], bool] | None = None, what: str = "run") -> RunLog:
    """The run `ref` names (id, unique id prefix or log path); without `ref`, this session's
    latest run if it qualifies, else the newest one on disk that does."""
    if ref:
        path = Path(ref).expanduser()
        if path.suffix == ".jsonl" or path.is_file():
            if not path.is_file():
                raise RunNotFound(f"no run log at {path}")
            return RunLog.read(path)
        matches = sorted(run_log_paths(runs_dir, ref))
        exact = [p for p in matches if p.stem == ref]
        if exact or len(matches) == 1:
            return RunLog.read((exact or matches)[0])
        if not matches:
            raise RunNotFound(f"no run {ref!r} in {runs_dir}/ (%rlm runs lists them)")
        raise RunNotFound(f"{ref!r} matches {len(matches)} runs in {runs_dir}/; give more of the id")
    if latest is not None and latest.is_file():
        log = RunLog.read(latest)
        if want is None or want(log):
            return log
    for log in list_runs(runs_dir):
        if log.root_run_id and (want is None or want(log)):
            return log
    raise RunNotFound(f"no {what} in {runs_dir}/")


def summary_row(log: RunLog) -> dict[str, Any]:
    started = log.started() or {}
    fin = log.finished()
    root = log.root_run_id
    turns = [e for e in log.events if e["run_id"] == root and e["type"] == ev.TURN_FINISHED]
    subcalls = sum(1 for e in log.events if e["type"] == ev.SUBCALL_FINISHED)
    return {
        "run_id": root or log.path.stem,
        "status": log.status,
        "steps": fin["steps"] if fin else len(turns),
        "subcalls": fin["subcalls"] if fin else subcalls,
        "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(started.get("t", log.path.stat().st_mtime))),
        "model": started.get("model", "?"),
        "question": " ".join(str(started.get("question", "")).split()),
    }


def runs_table(logs: list[RunLog], runs_dir: Path) -> str:
    """What `%rlm runs` prints: one line per run, newest first."""
    if not logs:
        return f"No runs yet in {runs_dir}/."
    rows = [summary_row(log) for log in logs]
    head = ("run", "status", "steps", "sub-calls", "started", "model", "question")
    cells = [(r["run_id"], r["status"], str(r["steps"]), str(r["subcalls"]), r["started"], r["model"],
              _clip(r["question"], 60)) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths[:-1]) + "  {}"
    lines = [fmt.format(*head), *(fmt.format(*c) for c in cells)]
    lines.append(f"\n{len(rows)} run(s) in {runs_dir}/ · %rlm show RUN · %rlm resume RUN · %rlm export PATH RUN")
    return "\n".join(lines)


def run_markdown(log: RunLog, *, output_chars: int = 2000) -> str:
    """A readable account of a run from its log (used by `%rlm show` when no widget is available)."""
    root = log.root_run_id
    started = log.started() or {}
    fin = log.finished()
    parts = [f"### RLM run `{root}` · {log.status}", f"**Question:** {started.get('question', '')}",
             f"Model {started.get('model', '?')}, sub-model {started.get('sub_model', '?')}."]
    earlier = started.get("earlier") or []
    if earlier:
        last = earlier[-1]
        parts.insert(1, f"Follow-up to: {' '.join(str(last.get('question', '')).split())} "
                        f"(run `{started.get('continues')}`)")
    for e in log.events:
        if e["run_id"] != root:
            continue
        if e["type"] == ev.TURN_FINISHED:
            parts.append(f"#### Step {e['step']}\n\n{quote(e['text'].strip() or '(empty)')}")
        elif e["type"] == ev.CELL_FINISHED:
            mark = " (edited by a person)" if e.get("edited") else ""
            parts.append(f"Cell {e['index']}{mark}:\n\n{fence(e['code'], 'python')}")
            text = outputs_to_text(e.get("outputs") or []).strip()
            if text:
                parts.append(fence(truncate(text, output_chars), "text"))
        elif e["type"] == ev.NOTE:
            parts.append(f"*Note from a person:* {e['text']}")
    if fin:
        reason = f" ({fin['reason']})" if fin.get("reason") else ""
        parts.append(f"#### Answer · {fin['status']}{reason}\n\n{fin.get('answer', '')}")
    else:
        parts.append("*The run did not finish (the kernel stopped mid-run); `%rlm resume` continues it.*")
    return "\n\n".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"
