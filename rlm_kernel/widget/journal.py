"""The view's record of a run: what has been sent, what is waiting to be sent, and what a newly
opened browser view needs to catch up.

Events arrive from any thread (the model I/O thread streams text, batch threads finish
sub-calls, the kernel thread runs cells). They are turned into wire items at once and queued;
a flusher takes the queue as one numbered batch. A snapshot is the whole run so far in its
shortest form (streamed text joined per step) with a batch number of its own, so the browser
can drop batches it already has and ask again when it sees a gap."""

from __future__ import annotations

import threading
from typing import Any

from ..engine import events as ev
from .compact import FullStore, coalesce, wire_item

Item = dict[str, Any]


class Journal:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.full = FullStore()
        self._history: list[Item] = []  # every item but turn_delta, turn texts whole
        self._streaming: dict[tuple[str, int], list[str]] = {}  # text of turns still streaming
        self._pending: list[Item] = []
        self._batch = 0

    def add(self, event: ev.Event) -> None:
        """Record one event (any thread; cheap: no I/O under the lock)."""
        item = wire_item(event)
        with self._lock:
            self.full.add(event)
            if item is None:
                return
            t = item["type"]
            if t == ev.TURN_DELTA:
                self._streaming.setdefault((str(item["run_id"]), int(item["step"] or 0)), []).append(item["text"])
                self._pending.append(item)
                return
            if t == ev.TURN_FINISHED:
                streamed = "".join(self._streaming.pop((str(item["run_id"]), int(item.get("step") or 0)), []))
                self._history.append(item)
                if streamed == item["text"]:
                    live = dict(item)
                    del live["text"]  # the browser already has it, delta by delta
                    self._pending.append(live)
                    return
            else:
                self._history.append(item)
            self._pending.append(item)

    def add_local(self, item: Item) -> None:
        """An item made by the view itself (a pending cell, a queued note), kept for new views."""
        with self._lock:
            self._history.append(item)
            self._pending.append(item)

    def add_transient(self, item: Item) -> None:
        """An item only for views open now (live output of a running cell): not kept for new views,
        which get the finished cell instead."""
        with self._lock:
            self._pending.append(item)

    def take_batch(self) -> tuple[int, list[Item]] | None:
        """The queued items as the next numbered batch, or None when nothing is queued."""
        with self._lock:
            if not self._pending:
                return None
            items, self._pending = self._pending, []
            self._batch += 1
            return self._batch, coalesce(items)

    def snapshot(self) -> tuple[int, list[Item]]:
        """Everything so far as one numbered message. It takes the queue too, so the next batch
        follows on from it; custom messages reach every open front-end, so none is left behind."""
        with self._lock:
            self._pending = []
            self._batch += 1
            items = list(self._history)
            items += [{"type": ev.TURN_DELTA, "run_id": k[0], "step": k[1], "text": "".join(v)}
                      for k, v in self._streaming.items()]
            return self._batch, items

    def saved_items(self) -> list[Item]:
        """Everything so far, like snapshot() but without taking the queue or a batch number: the
        copy that goes into the displayed output."""
        with self._lock:
            items = list(self._history)
            items += [{"type": ev.TURN_DELTA, "run_id": k[0], "step": k[1], "text": "".join(v)}
                      for k, v in self._streaming.items()]
            return items

    def events(self) -> list[ev.Event]:
        """The full events recorded so far (for the static HTML)."""
        with self._lock:
            return list(self.full.events)

    def fetch(self, what: str, req: dict[str, Any]) -> Any:
        with self._lock:
            return self.full.fetch(what, req)
