"""Run events: the one stream that the run log, the widget and the export all read.

Every event is a JSON-able dict with at least::

    {"v": 1, "seq": int, "t": unix_time, "run_id": str, "type": <one of the names below>}

`run_id` is the run the event belongs to; a child run (rlm_query) has its own run_id and
writes into its root's log file, so one file holds one whole tree. Fields by type:

run_started     question, options (no key), context (metadata), model, sub_model, provider,
                demo (bool), depth, parent_run_id, parent_step, parent_subcall_id, root_run_id,
                protocol ("tools"|"fences")
turn_started    step
turn_delta      step, text                       (ephemeral: not written to the log; a python tool
                                                  call's code streams in as a ```python block)
turn_finished   step, text, model, usage, latency, stop_reason; with tool use also tool_calls
                ({id, name, input}) and message (the assistant message as sent, for resume).
                `text` is the reply as shown: prose, and each python call as a ```python block
cell_started    step, index, code, edited (bool), original_code (when edited)
cell_finished   step, index, code, outputs (nbformat dicts), error, duration, timed_out,
                execution_count, feedback (the text the model will see for this cell)
subcall_started step, id, kind ("llm"|"rlm"), model, prompt, batch (id or None)
subcall_finished step, id, kind, model, response, usage, latency, error, child_run_id,
                cached (answered from an identical earlier sub-call, no tokens spent),
                raised (the failure was raised into the generated code, not returned)
batch_created   step, batch (the sub-calls' batch id), api_batch_id, model, count, requests
                ({custom_id: sub-call id}; the prompts are in those subcall_started events)
batch_progress  step, batch, api_batch_id, status (in_progress|canceling|ended), counts (processing,
                succeeded, errored, canceled, expired)
batch_finished  step, batch, api_batch_id, status, counts, error (the batch could not be collected)
feedback        step, text                       (the user message for the next turn; with tool
                                                  use also message, carrying the tool results)
note            step, text                       (a person's note for the next turn)
state           state (running|pausing|paused|stopping|stopped|done|failed), step
budget_hit      kind, limit, value
run_resumed     from_step, rebuilt (bool)           (a stopped or crashed run continues)
run_finished    status (done|stopped|failed|budget), answer, answer_source, reason,
                usage (per model), cost (or None), elapsed, steps, subcalls
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .redaction import Redactor

RUN_STARTED = "run_started"
TURN_STARTED = "turn_started"
TURN_DELTA = "turn_delta"
TURN_FINISHED = "turn_finished"
CELL_STARTED = "cell_started"
CELL_FINISHED = "cell_finished"
SUBCALL_STARTED = "subcall_started"
SUBCALL_FINISHED = "subcall_finished"
FEEDBACK = "feedback"
NOTE = "note"
STATE = "state"
BUDGET_HIT = "budget_hit"
RUN_FINISHED = "run_finished"
RUN_RESUMED = "run_resumed"
BATCH_CREATED = "batch_created"
BATCH_PROGRESS = "batch_progress"
BATCH_FINISHED = "batch_finished"

#: Events that only live subscribers see; the log keeps the finished form instead.
EPHEMERAL = frozenset({TURN_DELTA})

SCHEMA_VERSION = 1

log = logging.getLogger(__name__)

Event = dict[str, Any]
Subscriber = Callable[[Event], None]


class EventBus:
    """Fans events out to subscribers, synchronously, on whatever thread emits them.

    Every string in an event passes through `redactor` first, so no secret reaches the run log,
    the tree or its saved HTML; the run feeds the model and returns the emitted (redacted) values
    (see Run), so the model sees what the record says. Subscribers that must act on another thread
    (a widget on the kernel's loop) hop there themselves. A failing subscriber is dropped from that
    event only, never the run."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        self.redactor = redactor if redactor is not None else Redactor()
        #: Someone shows the run as it happens (a run tree): root replies stream to them. A script's
        #: rlm() has only the log, which keeps no deltas, so its root turns are plain requests.
        self.watched = False
        self._subscribers: list[Subscriber] = []
        self._seq = itertools.count(1)
        self._lock = threading.RLock()

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(fn)

        def unsubscribe() -> None:
            with self._lock:
                if fn in self._subscribers:
                    self._subscribers.remove(fn)

        return unsubscribe

    def emit(self, run_id: str, type_: str, **fields: Any) -> Event:
        """Send an event to every subscriber and return it, redacted."""
        fields = self.redactor.deep(fields)
        with self._lock:
            event: Event = {"v": SCHEMA_VERSION, "seq": next(self._seq), "t": time.time(),
                            "run_id": run_id, "type": type_, **fields}
            subscribers = list(self._subscribers)
            for fn in subscribers:
                try:
                    fn(event)
                except Exception:  # a broken view must not break the run, but must not vanish either
                    log.exception("rlm: an event subscriber failed on %s", type_)
        return event
