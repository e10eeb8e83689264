"""The run log read back as a tree: runs → steps → cells → sub-calls → child runs.

The log is a flat, ordered event stream in which a root run and all of its children interleave.
Rendering wants the shape a reader sees instead (the exported notebook, the widget's static HTML),
so this module folds the events once, tolerating what a crash leaves behind (a turn without its
cells, a cell that never finished, no run_finished) and what a resume leaves (abandoned steps)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import events as ev
from .record import RunLog


@dataclass
class SubCall:
    id: str
    kind: str  # "llm" | "rlm"
    model: str | None
    prompt: str
    batch: str | None = None
    response: str | None = None  # None: never finished
    usage: dict[str, Any] = field(default_factory=dict)
    latency: float | None = None
    error: str | None = None
    child_run_id: str | None = None
    child: RunNode | None = None
    t0: float | None = None  # when it started and finished (epoch seconds), for the timeline
    t1: float | None = None

    @property
    def finished(self) -> bool:
        return self.response is not None


@dataclass
class Cell:
    step: int
    index: int
    code: str
    edited: bool = False
    original_code: str | None = None
    finished: dict[str, Any] | None = None  # the cell_finished event, None if the log ends first
    subcalls: list[SubCall] = field(default_factory=list)
    t0: float | None = None  # when it started (epoch seconds); it lasted finished["duration"]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list((self.finished or {}).get("outputs") or [])

    @property
    def interrupted(self) -> bool:
        """Timed out or stopped by a person: running it again would not reproduce it."""
        f = self.finished or {}
        if f.get("timed_out"):
            return True
        err = f.get("error") or {}
        return err.get("ename") == "KeyboardInterrupt"


@dataclass
class Note:
    step: int
    text: str


@dataclass
class BudgetHit:
    kind: str
    limit: Any
    value: Any


@dataclass
class Resumed:
    from_step: int


@dataclass
class Step:
    step: int
    turn: dict[str, Any] | None = None  # turn_finished, None if the log ends mid-turn
    cells: list[Cell] = field(default_factory=list)
    #: Left unfinished by a process that stopped; the run was later resumed from an earlier step,
    #: so these cells are history, not part of the namespace the resumed run built.
    abandoned: bool = False
    #: Sub-calls made outside any cell (none in practice; kept so nothing recorded is dropped).
    loose_subcalls: list[SubCall] = field(default_factory=list)
    #: When the model turn started (epoch seconds); it lasted turn["latency"].
    t0: float | None = None

    @property
    def text(self) -> str:
        return str((self.turn or {}).get("text") or "")

    @property
    def subcalls(self) -> list[SubCall]:
        return [*self.loose_subcalls, *(sc for cell in self.cells for sc in cell.subcalls)]


@dataclass
class RunNode:
    run_id: str
    started: dict[str, Any]
    finished: dict[str, Any] | None = None
    #: Steps, notes and budget hits in the order they happened.
    items: list[Step | Note | BudgetHit | Resumed] = field(default_factory=list)
    #: Child runs whose parent sub-call is not in the log (kept, rendered at the end).
    orphans: list[RunNode] = field(default_factory=list)

    @property
    def question(self) -> str:
        return str(self.started.get("question") or "")

    @property
    def steps(self) -> list[Step]:
        return [i for i in self.items if isinstance(i, Step)]

    def step(self, n: int) -> Step:
        for item in reversed(self.items):
            if isinstance(item, Step) and item.step == n and not item.abandoned:
                return item
        s = Step(n)
        self.items.append(s)
        return s

    def walk(self) -> list[RunNode]:
        """This run and every descendant, depth first."""
        out = [self]
        for s in self.steps:
            for sc in s.subcalls:
                if sc.child is not None:
                    out.extend(sc.child.walk())
        for o in self.orphans:
            out.extend(o.walk())
        return out


def fold_runs(events: Iterable[ev.Event]) -> dict[str, RunNode]:
    """Every run in `events` by id, in the order they started; a child run also hangs on the sub-call
    that started it (or among its parent's orphans). Events of a run whose start is missing are dropped."""
    nodes: dict[str, RunNode] = {}
    open_cell: dict[str, Cell] = {}
    subcalls: dict[tuple[str, str], SubCall] = {}
    for e in events:
        rid, kind = e.get("run_id"), e.get("type")
        if kind == ev.RUN_STARTED:
            node = nodes[rid] = RunNode(rid, e)
            parent = nodes.get(e.get("parent_run_id") or "")
            if parent is not None:
                sc = subcalls.get((parent.run_id, e.get("parent_subcall_id") or ""))
                if sc is not None:
                    sc.child = node
                else:
                    parent.orphans.append(node)
            continue
        node = nodes.get(rid)
        if node is None:
            continue  # events of a run whose start was lost: nothing to hang them on
        if kind == ev.TURN_STARTED:
            node.step(int(e.get("step") or 0)).t0 = _time(e)
        elif kind == ev.TURN_FINISHED:
            node.step(int(e.get("step") or 0)).turn = e
        elif kind == ev.CELL_STARTED:
            cell = Cell(int(e.get("step") or 0), int(e.get("index") or 0), str(e.get("code") or ""),
                        bool(e.get("edited")), e.get("original_code"), t0=_time(e))
            node.step(cell.step).cells.append(cell)
            open_cell[rid] = cell
        elif kind == ev.CELL_FINISHED:
            cell = open_cell.pop(rid, None)
            if cell is None or (cell.step, cell.index) != (e.get("step"), e.get("index")):
                cell = Cell(int(e.get("step") or 0), int(e.get("index") or 0), str(e.get("code") or ""),
                            bool(e.get("edited")))
                node.step(cell.step).cells.append(cell)
            cell.finished = e
        elif kind == ev.SUBCALL_STARTED:
            sc = SubCall(str(e.get("id")), str(e.get("kind") or "llm"), e.get("model"), str(e.get("prompt") or ""),
                         e.get("batch"), child_run_id=e.get("child_run_id"), t0=_time(e))
            subcalls[(rid, sc.id)] = sc
            cell = open_cell.get(rid)
            if cell is not None:
                cell.subcalls.append(sc)
            else:
                node.step(int(e.get("step") or 0)).loose_subcalls.append(sc)
        elif kind == ev.SUBCALL_FINISHED:
            sc = subcalls.get((rid, str(e.get("id"))))
            if sc is not None:
                sc.response = str(e.get("response") or "")
                sc.usage = dict(e.get("usage") or {})
                sc.latency = e.get("latency")
                sc.error = e.get("error")
                sc.child_run_id = e.get("child_run_id") or sc.child_run_id
                sc.t1 = _time(e)
        elif kind == ev.NOTE:
            node.items.append(Note(int(e.get("step") or 0), str(e.get("text") or "")))
        elif kind == ev.BUDGET_HIT:
            node.items.append(BudgetHit(str(e.get("kind")), e.get("limit"), e.get("value")))
        elif kind == ev.RUN_RESUMED:
            from_step = int(e.get("from_step") or 0)
            for item in node.items:
                if isinstance(item, Step) and item.step > from_step:
                    item.abandoned = True
            open_cell.pop(rid, None)
            node.finished = None  # a stopped run that resumed ends with its next run_finished
            node.items.append(Resumed(from_step))
        elif kind == ev.RUN_FINISHED:
            node.finished = e
    return nodes


def _time(e: ev.Event) -> float | None:
    t = e.get("t")
    return float(t) if isinstance(t, (int, float)) else None


def build_tree(log: RunLog, run_id: str | None = None) -> RunNode:
    """Fold `log` into the tree rooted at `run_id` (default: the log's root run)."""
    nodes = fold_runs(log.events)
    target = run_id or log.root_run_id
    if target is None or target not in nodes:
        known = ", ".join(nodes) or "none"
        what = f"run {target!r}" if target else "a run_started event"
        raise ValueError(f"{log.path}: no {what} in this log (runs: {known})")
    return nodes[target]
