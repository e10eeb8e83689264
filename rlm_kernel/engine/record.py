"""The run log: one append-only JSON-lines file per root run, written as events happen.

Each finished step is flushed and fsynced before the next one starts, so a crashed kernel
loses nothing that finished. Readers (`%rlm runs`, show, resume, export) use RunLog.read."""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import events as ev

#: Events after which the log is fsynced: a step's end (its feedback, or the run's end when the step
#: answered), once per step, since each fsync sits between two paid requests. Everything else is
#: flushed, which survives a killed kernel; only a machine crash mid-step loses that step's reply.
#: A Message Batch is durable once created: resume collects it instead of paying for it twice.
_DURABLE = frozenset({ev.FEEDBACK, ev.RUN_FINISHED, ev.BUDGET_HIT, ev.NOTE, ev.BATCH_CREATED,
                      ev.BATCH_FINISHED})


def _json_default(obj: Any) -> Any:
    return repr(obj)


class RunLogWriter:
    """Subscriber that appends every non-ephemeral event to `<runs_dir>/<root_run_id>.jsonl`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the run
        self._lock = threading.Lock()

    def __call__(self, event: ev.Event) -> None:
        if event["type"] in ev.EPHEMERAL:
            return
        line = json.dumps(event, ensure_ascii=False, default=_json_default)
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(line + "\n")
            self._fh.flush()
            if event["type"] in _DURABLE:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.close()


@dataclass
class RunLog:
    """A parsed log: all events of one root run and its children, in order."""

    path: Path
    events: list[ev.Event] = field(default_factory=list)
    #: Lines that could not be parsed (a torn last line after a crash), kept for diagnosis.
    bad_lines: int = 0

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunLog:
        p = Path(path)
        log = cls(path=p)
        with open(p, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if not line:
                    continue
                try:
                    log.events.append(json.loads(line))
                except json.JSONDecodeError:
                    log.bad_lines += 1
        return log

    @property
    def root_run_id(self) -> str | None:
        for e in self.events:
            if e["type"] == ev.RUN_STARTED and not e.get("parent_run_id"):
                return e["run_id"]
        return None

    def of_run(self, run_id: str) -> list[ev.Event]:
        return [e for e in self.events if e["run_id"] == run_id]

    def started(self, run_id: str | None = None) -> ev.Event | None:
        run_id = run_id or self.root_run_id
        return next((e for e in self.events if e["run_id"] == run_id and e["type"] == ev.RUN_STARTED), None)

    def finished(self, run_id: str | None = None) -> ev.Event | None:
        run_id = run_id or self.root_run_id
        return next((e for e in reversed(self.events)
                     if e["run_id"] == run_id and e["type"] == ev.RUN_FINISHED), None)

    @property
    def status(self) -> str:
        """done/stopped/failed/budget from the log, or "crashed" when the run never finished."""
        fin = self.finished()
        return fin["status"] if fin else "crashed"


#: An exported notebook's recording (`run.ipynb` + `run.rlm.jsonl`, see export/recording.py): a trimmed
#: run log for replay, which may sit in a runs folder (the tree's Export button writes there) but is no run.
RECORDING_SUFFIX = ".rlm.jsonl"


def run_log_paths(runs_dir: str | os.PathLike[str], prefix: str = "") -> list[Path]:
    """The run logs in a directory whose names start with `prefix`: its *.jsonl files but recordings."""
    d = Path(runs_dir)
    if not d.is_dir():
        return []
    return [p for p in d.glob(f"{prefix}*.jsonl") if not p.name.endswith(RECORDING_SUFFIX)]


def list_runs(runs_dir: str | os.PathLike[str]) -> list[RunLog]:
    """Every run log in a directory, newest first."""
    paths = sorted(run_log_paths(runs_dir), key=lambda p: p.stat().st_mtime, reverse=True)
    return [RunLog.read(p) for p in paths]
