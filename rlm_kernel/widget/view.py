"""RunView: the live tree of one RLM run in a notebook, and the buttons that steer it.

One comm per run (target "rlm.run", opened by the kernel; rlm-kernel's JupyterLab extension
registers the target). The displayed output carries `application/vnd.rlm.run+json`: the comm id and
the run so far in its compact form, so a notebook reopened without the kernel still draws the full
tree (read-only), plus a static text/html tree for nbconvert, GitHub and front ends without the
extension. Everything that happens during the run goes to the browser as numbered batches of
messages holding only what is new (journal.py). The browser asks for the rest on demand: the whole
run when a view opens late (`hello`), a full output or prompt (`fetch`). Messages from the browser
call Steering, which is thread safe, so it does not matter which kernel thread (main shell or a comm
subshell) delivers them.

Kernel → browser: {"kind": "batch", "n", "items", "now"} · {"kind": "reset", "n", "items", "now",
"finished", "log_path", "exported"} · {"kind": "fetched", "req", "what", "value"} ·
{"kind": "finished", "log_path"} · {"kind": "exported", "path"} · {"kind": "error", "text"}.
Items are events in their wire form (compact.py) plus the view's own: pending, edit_queued,
note_queued and a final state (crashed/failed) for runs that end without run_finished.
Browser → kernel: hello · control(action: pause|resume|step|stop) · edit(code) · note(text) ·
fetch(req, what: output|prompt|response, run_id, step, index, n | id) · export."""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import comm

from ..engine import events as ev
from ..engine.options import RLMOptions
from ..engine.record import RunLog
from ..engine.steering import Steering
from .compact import FIELD_LIMIT, OUTPUT_TEXT_LIMIT, saved_copy, unpack_saved
from .flusher import Flusher
from .journal import Journal
from .static import render_static_html, share_images

_log = logging.getLogger(__name__)

#: The run tree's own output type, drawn by the rlm-kernel JupyterLab extension.
RUN_MIME = "application/vnd.rlm.run+json"
#: The comm target the extension registers on every kernel.
COMM_TARGET = "rlm.run"
#: Version of the RUN_MIME payload, for the extension to check. 2: the items as one JSON string
#: (`items_json`, 1 had an `items` list), images pointing into the output's text/html, the root's
#: run id and a sub-call's kind "llm" implied (compact.unpack_saved).
RUN_MIME_VERSION = 2


def saved_items(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The items of a RUN_MIME payload, of either version, implied fields put back (images still
    as pointers: see static.share_images)."""
    if "items_json" in state:
        return unpack_saved(json.loads(state["items_json"]))
    return list(state.get("items") or [])


class RunView:
    def __init__(self, steering: Steering, question: str, options: RLMOptions | None = None,
                 **kwargs: Any) -> None:
        options = options or RLMOptions()
        #: Fixed facts shown before the first event arrives.
        self.header = {"question": question, "model": options.model, "sub_model": options.sub_model,
                       "max_iterations": options.max_iterations, "approve": bool(options.approve)}
        self.static_html = ""
        self.comm = comm.create_comm(target_name=COMM_TARGET, data={"version": RUN_MIME_VERSION})
        self.comm.on_msg(self._on_comm_message)
        self.steering = steering
        self.question = question
        self.options = options
        self.journal = Journal()
        self.log_path: Path | None = None
        self.exported: Path | None = None
        self._root_run_id: str | None = None
        self._display_id = f"rlm-{uuid.uuid4().hex}"
        self._displayed = False
        self._finished = False
        self._send_lock = threading.Lock()  # a snapshot or batch is numbered and sent as one
        self._flusher = Flusher(self._flush)
        #: The question of the follow-up that continued this run (`%%rlm --continue`), once one started.
        self.continued_by: str | None = None
        self._running_cell: dict[str, Any] | None = None  # run_id, step, index of the cell running now
        self._streamed = 0  # characters of it sent live

    @property
    def comm_id(self) -> str:
        return str(self.comm.comm_id)

    @property
    def cell_running(self) -> bool:
        """Whether a generated cell of the run is running now (the kernel's main shell is held)."""
        return self._running_cell is not None

    # --- engine side (any thread) -----------------------------------------------------------
    def on_event(self, event: ev.Event) -> None:
        """EventBus subscriber: record the event and have it sent within one flush interval."""
        t = event.get("type")
        if self._root_run_id is None and not event.get("parent_run_id"):
            self._root_run_id = str(event.get("run_id"))  # run_started, or a resumed run's first event
        if t == ev.CELL_STARTED:
            self._running_cell = {k: event.get(k) for k in ("run_id", "step", "index")}
            self._streamed = 0
        elif t == ev.CELL_FINISHED:
            self._running_cell = None
        self.journal.add(event)
        if t == ev.STATE and event.get("state") == "paused":
            pending = self.steering.pending
            if pending is not None:
                self.journal.add_local({"type": "pending", "run_id": pending.run_id, "step": pending.step,
                                        "index": pending.index, "code": pending.code})
        self._flusher.poke()

    def stream(self, name: str, text: str) -> None:
        """Text a running generated cell printed (its thread): sent live, up to the view's output
        limit; cell_finished then carries the output for good."""
        cell = self._running_cell
        if cell is None or self._finished or self._streamed >= OUTPUT_TEXT_LIMIT:
            return
        text = text[:OUTPUT_TEXT_LIMIT - self._streamed]
        self._streamed += len(text)
        self.journal.add_transient({"type": "cell_stream", **cell, "name": name, "text": text})
        self._flusher.poke()

    def load(self, events: Iterable[ev.Event]) -> None:
        """Feed recorded events (a log being shown again, or the steps before a resume)."""
        for event in events:
            self.on_event(event)

    @classmethod
    def from_log(cls, log: RunLog | str | Path) -> RunView:
        """A finished view of a recorded run (`%rlm show`); a run that never finished shows as crashed."""
        run_log = log if isinstance(log, RunLog) else RunLog.read(log)
        started = run_log.started() or {}
        view = cls(Steering(), str(started.get("question") or ""), RLMOptions.from_recorded(started.get("options")))
        view.log_path = run_log.path
        view.load(run_log.events)
        view.finish(None)
        return view

    def finish(self, result: Any = None) -> None:
        """The run is over (call on the kernel thread, also after an error or interrupt): send what
        is left, stop the flusher, and put the finished tree into the displayed output's text/html
        for readers without a kernel. `result` is the RLMResult, an exception, or None."""
        log_path = getattr(result, "log_path", None)
        if log_path is not None:
            self.log_path = Path(log_path)
        elif self.log_path is None:
            self.log_path = self._guess_log_path()
        if not self._root_finished():
            state = "crashed" if result is None and self._root_run_id else "failed"
            self.journal.add_local({"type": "state", "run_id": self._root_run_id, "state": state,
                                    "reason": f"{type(result).__name__}: {result}"
                                    if isinstance(result, BaseException) else None})
        self._finished = True
        self._flusher.close()
        html = self.static_html_now()
        self.static_html = html
        self._post({"kind": "finished", "log_path": str(self.log_path) if self.log_path else None})
        if self._displayed:
            from IPython.display import update_display

            update_display(self._bundle(html), raw=True, display_id=self._display_id)

    def mark_continued(self, started: ev.Event) -> None:
        """A follow-up of this run started (its run_started event): this tree says so, live in open
        views, in the saved copy and in the static HTML. Call on the kernel thread."""
        if self._root_run_id is None or str(started.get("continues")) != self._root_run_id:
            return
        self.continued_by = str(started.get("question") or "")
        self.journal.add_local({"type": "continued", "run_id": self._root_run_id, "by": started.get("run_id"),
                                "question": self.continued_by[:FIELD_LIMIT]})
        self._flush()  # a finished view's flusher is closed: send it now
        if self._finished:
            self.static_html = self.static_html_now()
        if self._displayed:
            from IPython.display import update_display

            update_display(self._bundle(self.static_html or self.static_html_now()), raw=True,
                           display_id=self._display_id)

    def _root_finished(self) -> bool:
        """Whether the root's last word is run_finished (a resumed run's old one does not count)."""
        for e in reversed(self.journal.events()):
            if str(e.get("run_id")) == self._root_run_id and e.get("type") in (ev.RUN_FINISHED, ev.RUN_RESUMED):
                return e["type"] == ev.RUN_FINISHED
        return False

    def static_html_now(self) -> str:
        return render_static_html(self.journal.events(), question=self.question,
                                  log_path=str(self.log_path) if self.log_path else None,
                                  continued_by=self.continued_by)

    # --- display ----------------------------------------------------------------------------
    def _bundle(self, html: str) -> dict[str, Any]:
        html, items = share_images(html, saved_copy(self.journal.saved_items()))
        return {
            "text/plain": f"RLM run: {self.question[:100]}",
            "text/html": html,
            RUN_MIME: self.run_state(items),
        }

    def run_state(self, items: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The RUN_MIME payload: enough for the extension to draw the whole tree with no kernel.
        The items go as one compact JSON string: the notebook format indents every nested key on
        a line of its own, which made up a third of a 1,000-prompt batch's saved copy."""
        if items is None:
            items = saved_copy(self.journal.saved_items())
        return {"version": RUN_MIME_VERSION, "comm_id": self.comm_id, "header": self.header,
                "finished": self._finished, "log_path": str(self.log_path) if self.log_path else None,
                "items_json": json.dumps(items, separators=(",", ":"), ensure_ascii=False)}

    def _ipython_display_(self) -> None:
        """Display with a display id, so finish() can swap in the final static HTML."""
        from IPython.display import display

        self._displayed = True
        # a finished view (`%rlm show`) already holds its final tree; a live one shows the tree so far
        display(self._bundle(self.static_html or self.static_html_now()), raw=True, display_id=self._display_id)

    # --- browser side -----------------------------------------------------------------------
    def _flush(self) -> None:
        with self._send_lock:
            batch = self.journal.take_batch()
            if batch is not None:
                n, items = batch
                self._post({"kind": "batch", "n": n, "items": items, "now": time.time()})

    def _post(self, content: dict[str, Any]) -> None:
        self.comm.send(content)

    def _on_comm_message(self, msg: dict[str, Any]) -> None:
        self._on_front_message((msg.get("content") or {}).get("data"))

    def _on_front_message(self, content: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("kind")
        try:
            handler = _HANDLERS.get(str(kind))
            if handler is None:
                self._post({"kind": "error", "text": f"unknown request {kind!r}"})
            else:
                handler(self, content)
        except Exception as exc:  # report in the view; never raise into the kernel's dispatcher
            _log.exception("rlm view: handling %r failed", kind)
            self._post({"kind": "error", "text": f"{type(exc).__name__}: {exc}"})

    def _hello(self, _content: dict[str, Any]) -> None:
        with self._send_lock:
            n, items = self.journal.snapshot()
            self._post({"kind": "reset", "n": n, "items": items, "now": time.time(),
                        "finished": self._finished,
                        "log_path": str(self.log_path) if self.log_path else None,
                        "exported": str(self.exported) if self.exported else None,
                        "exported_relpath": _below_cwd(self.exported) if self.exported else None})

    def _control(self, content: dict[str, Any]) -> None:
        if self._finished:
            return
        action = content.get("action")
        if action == "pause":
            self.steering.pause()
        elif action == "resume":
            self.steering.resume()
        elif action == "step":
            self.steering.step()
        elif action == "stop":
            self.steering.stop()
        else:
            raise ValueError(f"unknown control {action!r}")

    def _edit(self, content: dict[str, Any]) -> None:
        pending = self.steering.pending
        code = str(content.get("code", ""))
        if self._finished or pending is None:
            self._post({"kind": "error", "text": "There is no pending cell to edit right now."})
            return
        self.steering.edit(code)
        self.journal.add_local({"type": "edit_queued", "run_id": pending.run_id, "step": pending.step,
                                "index": pending.index, "code": code})
        self._flusher.poke()

    def _note(self, content: dict[str, Any]) -> None:
        text = str(content.get("text", "")).strip()
        if not text or self._finished:
            return
        self.steering.note(text)
        self.journal.add_local({"type": "note_queued", "run_id": self._root_run_id, "text": text})
        self._flusher.poke()

    def _fetch(self, content: dict[str, Any]) -> None:
        what = str(content.get("what"))
        value = self.journal.fetch(what, content)
        self._post({"kind": "fetched", "req": content.get("req"), "what": what, "value": value})

    def _export(self, _content: dict[str, Any]) -> None:
        from ..export.notebook import export_run  # the export room; imported only when asked

        log_path = self.log_path or self._guess_log_path()
        if log_path is None or not log_path.exists():
            self._post({"kind": "error", "text": "The run log is not written yet; try again in a moment."})
            return
        try:  # beside the notebook (the kernel's folder), where the file browser shows it and a link opens it
            written = Path(export_run(log_path, Path.cwd()))
        except OSError:  # a read-only folder: next to the run log instead
            written = Path(export_run(log_path, log_path.parent))
        self.exported = written
        self._post({"kind": "exported", "path": str(written), "relpath": _below_cwd(written)})

    def _guess_log_path(self) -> Path | None:
        if self._root_run_id is None:
            return None
        return self.options.resolved_runs_dir() / f"{self._root_run_id}.jsonl"

    def close(self) -> None:
        flusher = getattr(self, "_flusher", None)  # close() also runs from __del__ of a half-made view
        if flusher is not None:
            flusher.close()
        self.comm.close()


_HANDLERS = {
    "hello": RunView._hello,
    "control": RunView._control,
    "edit": RunView._edit,
    "note": RunView._note,
    "fetch": RunView._fetch,
    "export": RunView._export,
}


def _below_cwd(path: Path) -> str | None:
    """`path` relative to the kernel's working directory (the notebook's folder, where the front end
    can open it), or None when it lies outside."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except (ValueError, OSError):  # elsewhere, or the folder itself is gone
        return None
