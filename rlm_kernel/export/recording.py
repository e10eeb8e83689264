"""The recording an exported notebook replays from, written next to it and named after it
(`run.ipynb` + `run.rlm.jsonl`), so the notebook replays wherever the two are copied.

It is a small run log holding only what replay needs: the root run's start (question, models,
options, for `--live`) and every sub-call's answer, keyed by a digest of its prompt. Prompts are not
kept (the notebook's code computes them again), so no piece of the context or the environment
travels in it but the answers themselves, which are redacted like the rest of the export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..engine import events as ev
from ..engine.record import RECORDING_SUFFIX, RunLog
from ..engine.redaction import Redactor
from ..engine.replay import prompt_digest

_STARTED = ("type", "run_id", "parent_run_id", "t", "question", "model", "sub_model", "provider", "demo", "options")
_FINISHED = ("type", "run_id", "id", "kind", "response", "error", "raised")


def recording_path(notebook: Path) -> Path:
    return notebook.with_name(notebook.stem + RECORDING_SUFFIX)


def recording_events(log: RunLog, redactor: Redactor) -> list[dict[str, Any]]:
    """The events of `log` that replay reads, trimmed to the fields it reads."""
    out: list[dict[str, Any]] = []
    for e in log.events:
        kind = e["type"]
        if kind == ev.RUN_STARTED and e["run_id"] == log.root_run_id:
            out.append(redactor.deep({k: e[k] for k in _STARTED if k in e}))
        elif kind == ev.SUBCALL_STARTED:
            out.append({"type": kind, "run_id": e["run_id"], "id": e["id"], "kind": e.get("kind", "llm"),
                        "prompt_sha256": prompt_digest(e["prompt"])})
        elif kind == ev.SUBCALL_FINISHED:
            out.append(redactor.deep({k: e[k] for k in _FINISHED if k in e}))
    return out


def write_recording(logs: RunLog | list[RunLog], notebook: Path, redactor: Redactor) -> Path:
    """Write the recording of `logs` (a follow-up's: the earlier questions' logs first) next to
    `notebook` and return its path. Replay reads the first run's start and every log's answers."""
    path = recording_path(notebook)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for log in logs if isinstance(logs, list) else [logs]:
            for event in recording_events(log, redactor):
                fh.write(json.dumps(event, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
