"""ShellExecutor: the engine's Executor on the kernel's own IPython shell.

Generated code runs exactly like a cell the person typed (magics, rich display, plots, tracebacks,
the user's namespace), and a copy of each output is kept as an nbformat v4 output dict for the
model, the run record, the run tree and the export. With `quiet` (the run tree is on screen) the
outputs go only there; otherwise they also appear in the notebook as ordinary cell output. The copy is taken
where the kernel publishes (display publisher and displayhook hooks, a stdout/stderr tee on the
cell's thread, the traceback sender); output widgets are not used because their capture happens in
the browser and headless runs would see nothing."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ..engine.steering import interrupts_noted
from ..engine.text import is_binary, strip_ansi
from ..engine.types import CellOutcome
from ..engine.watchdog import CellTimeout, time_limit


class OutputCollector:
    """Builds the nbformat outputs of one cell from kernel messages, the way a notebook would
    (streams merged, clear_output and update_display_data applied)."""

    def __init__(self, execution_count: int) -> None:
        self.execution_count = execution_count
        self._outputs: list[dict[str, Any]] = []
        self._chunks: dict[int, list[str]] = {}  # stream output index -> its text, joined on read
        self._clear_pending = False
        self._display_ids: dict[str, list[int]] = {}

    @property
    def outputs(self) -> list[dict[str, Any]]:
        for i, chunks in self._chunks.items():
            if len(chunks) > 1:
                chunks[:] = ["".join(chunks)]
            self._outputs[i]["text"] = chunks[0]
        return self._outputs

    def _append(self, out: dict[str, Any], display_id: str | None = None) -> None:
        if self._clear_pending:
            self.clear()
        if display_id:
            self._display_ids.setdefault(display_id, []).append(len(self._outputs))
        self._outputs.append(out)

    def clear(self) -> None:
        self._outputs.clear()
        self._chunks.clear()
        self._display_ids.clear()
        self._clear_pending = False

    def stream(self, name: str, text: str) -> None:
        if not text:
            return
        if self._clear_pending:
            self.clear()
        last = len(self._outputs) - 1
        if last >= 0 and self._outputs[last]["output_type"] == "stream" and self._outputs[last]["name"] == name:
            self._chunks[last].append(text)  # joined once on read: many small prints stay linear
        else:
            self._append({"output_type": "stream", "name": name, "text": ""})
            self._chunks[last + 1] = [text]

    def message(self, msg: dict[str, Any]) -> None:
        """A display_data / update_display_data / clear_output / execute_result message."""
        kind = msg["header"]["msg_type"]
        content = msg["content"]
        display_id = (content.get("transient") or {}).get("display_id")
        if kind == "clear_output":
            if content.get("wait"):
                self._clear_pending = True
            else:
                self.clear()
        elif kind == "update_display_data":
            for i in self._display_ids.get(display_id or "", []):
                self._outputs[i]["data"] = _wire_form(content["data"])
                self._outputs[i]["metadata"] = content.get("metadata") or {}
        elif kind == "display_data":
            self._append({"output_type": "display_data", "data": _wire_form(content["data"]),
                          "metadata": content.get("metadata") or {}}, display_id)
        elif kind == "execute_result":
            self._append({"output_type": "execute_result", "execution_count": self.execution_count,
                          "data": _wire_form(content["data"]), "metadata": content.get("metadata") or {}})

    def error(self, ename: str, evalue: str, traceback: list[str]) -> None:
        self._append({"output_type": "error", "ename": ename, "evalue": evalue, "traceback": list(traceback)})


def _wire_form(data: dict[str, Any]) -> dict[str, Any]:
    """The bundle as the notebook receives it: a hook sees the message before serialisation, when
    binary payloads (image/png from a _repr_png_) can still be bytes; the wire carries base64."""
    return {mime: base64.b64encode(value).decode("ascii") if isinstance(value, bytes | bytearray) else value
            for mime, value in data.items()}


def _unchanged(text: str) -> str:
    return text


def _redacted_msg(msg: dict[str, Any], redact: Callable[[str], str]) -> dict[str, Any]:
    """A display message as the notebook should show it: its text parts redacted (a copy; binary
    parts such as base64 images are left alone)."""
    content = msg.get("content") or {}
    data = content.get("data")
    if redact is _unchanged or not isinstance(data, dict):
        return msg
    clean = {mime: redact(v) if isinstance(v, str) and not is_binary(mime) else v for mime, v in data.items()}
    return {**msg, "content": {**content, "data": clean}}


class _Shown:
    """An exception's text for display only (ipykernel's traceback sender calls str() on it)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text


class _Tee:
    """Stands in for sys.stdout/stderr during a generated cell: text written on the cell's thread
    is copied to the collector; everything still goes where it went before (the notebook), redacted
    piece by piece (the collector's whole text is redacted again by the run)."""

    def __init__(self, name: str, target: TextIO, collector: OutputCollector, thread: int, quiet: bool,
                 redact: Callable[[str], str] = _unchanged,
                 on_stream: Callable[[str, str], None] | None = None) -> None:
        self._name, self._target, self._collector = name, target, collector
        self._thread, self._quiet, self._redact, self._on_stream = thread, quiet, redact, on_stream
        self.active = True

    def write(self, s: str) -> int:
        mine = self.active and threading.get_ident() == self._thread
        if mine:
            self._collector.stream(self._name, s)
            if self._on_stream is not None and s:
                self._on_stream(self._name, self._redact(s))
            if self._quiet:
                return len(s)
            self._target.write(self._redact(s))
            return len(s)
        return self._target.write(s)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return False

    def __getattr__(self, item: str) -> Any:
        return getattr(self._target, item)


class ShellExecutor:
    """Runs generated code through `shell.run_cell_async` in the shell's user namespace.

    `blocking` is true while synchronous generated code runs: the kernel's interrupt handler then
    raises KeyboardInterrupt in it rather than cancelling the run's task. `quiet` keeps outputs
    out of the notebook's cell output: the run tree shows them (and a resumed run re-runs its
    recorded cells silently). `redact` is set by the run to its redactor, so what the notebook and
    the live tree show carries no secret either."""

    def __init__(self, shell: Any, *, quiet: bool = False) -> None:
        self.shell = shell
        self.namespace: dict[str, Any] = shell.user_ns
        self.quiet = quiet
        self.blocking = False
        self.cells_run = 0
        self.redact: Callable[[str], str] = _unchanged
        #: Called with (stream name, text) as a generated cell prints, on the cell's thread: the run
        #: tree shows a running cell's output live.
        self.on_stream: Callable[[str, str], None] | None = None

    async def run_cell(self, code: str, *, timeout: float | None) -> CellOutcome:
        self.cells_run += 1
        collector = OutputCollector(self.cells_run)
        outcome = CellOutcome(execution_count=self.cells_run)
        label = getattr(self.shell.compile, "label", None)  # the RLM kernel's compiler (kernel/compiler.py)
        if label is not None:
            label(code, f"rlm[{self.cells_run}]")
        start = time.perf_counter()
        with self._capture(collector):
            result, stop = await self._execute(code, timeout, outcome)
        outcome.duration = time.perf_counter() - start
        err = None if result is None else (result.error_before_exec or result.error_in_exec)
        if isinstance(err, CellTimeout):
            outcome.timed_out = True
        elif stop is None and (isinstance(err, KeyboardInterrupt)
                               or (isinstance(err, asyncio.CancelledError) and not outcome.timed_out)):
            stop = err  # the interrupt landed in the code and IPython reported it as the cell's error
        if stop is not None:
            outcome.interrupted = True
            if not any(o["output_type"] == "error" for o in collector.outputs):
                collector.error("KeyboardInterrupt", "", ["KeyboardInterrupt"])
        elif outcome.timed_out and err is None:
            note = f"cell timed out after {timeout:g} s"
            collector.error("CellTimeout", note, [f"CellTimeout: {note}"])
        outcome.outputs = collector.outputs
        outcome.error = _error_of(outcome.outputs, err)
        if stop is not None:
            interrupt = stop if isinstance(stop, KeyboardInterrupt) else KeyboardInterrupt()
            interrupt.outcome = outcome  # type: ignore[attr-defined]  # for callers that want the partial cell
            raise interrupt
        return outcome

    async def _execute(self, code: str, timeout: float | None,
                       outcome: CellOutcome) -> tuple[Any, BaseException | None]:
        """Run the code as IPython would run a cell; returns (ExecutionResult or None, interrupt or None).

        Synchronous code gets a SIGALRM time limit and `blocking`; code with top-level await yields to
        the loop, so it gets an asyncio timeout instead (a signal there would hit the event loop)."""
        shell = self.shell
        transformed, pre_exc = _transform(shell, code)
        is_async = shell.should_run_async(code, transformed_cell=transformed, preprocessing_exc_tuple=pre_exc)
        run = shell.run_cell_async(code, store_history=False, silent=False, transformed_cell=transformed,
                                   preprocessing_exc_tuple=pre_exc)
        result = None
        try:
            if is_async:
                async with asyncio.timeout(timeout) as limit:
                    result = await run
                outcome.timed_out = limit.expired()
            else:
                self.blocking = True
                try:
                    with time_limit(timeout):
                        result = await run
                finally:
                    self.blocking = False
            shell.events.trigger("post_execute")  # flushes inline plots, as after any cell
            shell.events.trigger("post_run_cell", result)
        except (CellTimeout, TimeoutError):
            outcome.timed_out = True  # fired just after the code, inside IPython's bookkeeping
        except (KeyboardInterrupt, asyncio.CancelledError) as exc:
            return result, exc
        finally:
            run.close()  # no-op once awaited; avoids a "never awaited" warning otherwise
        return result, None

    @contextlib.contextmanager
    def _capture(self, collector: OutputCollector) -> Iterator[None]:
        """Hook every output path of the shell for the duration of one cell, then undo it all."""
        shell = self.shell
        quiet, redact = self.quiet, self.redact
        thread = threading.get_ident()
        pub, hook = shell.display_pub, shell.displayhook

        def on_display(msg: dict[str, Any]) -> dict[str, Any] | None:
            collector.message(msg)
            # A generated cell must never wipe the notebook cell that holds the run's view.
            if quiet or msg["header"]["msg_type"] == "clear_output":
                return None
            return _redacted_msg(msg, redact)

        def on_result(msg: dict[str, Any]) -> dict[str, Any] | None:
            collector.message(msg)
            return None if quiet else _redacted_msg(msg, redact)

        original_showtraceback = shell._showtraceback

        noted = interrupts_noted()

        def showtraceback(etype: type, evalue: BaseException, stb: list[str]) -> None:
            collector.error(etype.__name__, str(evalue), stb)
            # A person's interrupt ends the whole run with one line from the magic; its traceback
            # through the generated cell stays in the record only. One the code raised is shown.
            if not quiet and not (issubclass(etype, KeyboardInterrupt) and interrupts_noted() != noted):
                original_showtraceback(etype, _Shown(redact(str(evalue))), [redact(line) for line in stb])

        tees = {name: _Tee(name, getattr(sys, name), collector, thread, quiet, redact, self.on_stream)
                for name in ("stdout", "stderr")}
        saved_cache, saved_exec_result = hook.cache_size, hook.exec_result
        _register(pub, on_display)
        _register(hook, on_result)
        # Values of generated expressions must not shift `_`/`Out` under the person's own cell.
        hook.cache_size = 0
        for name, tee in tees.items():
            setattr(sys, name, tee)
        try:
            with _patched(shell, "_showtraceback", showtraceback), \
                    _patched(hook, "log_output", lambda format_dict: None):
                yield
        finally:
            for name, tee in tees.items():
                tee.active = False
                if getattr(sys, name) is tee:
                    setattr(sys, name, tee._target)
            hook.cache_size = saved_cache
            hook.exec_result = saved_exec_result
            _unregister(pub, on_display)
            _unregister(hook, on_result)


@contextlib.contextmanager
def _patched(obj: Any, name: str, value: Any) -> Iterator[None]:
    """Shadow a method on one instance, then put back exactly what was there."""
    missing = object()
    before = obj.__dict__.get(name, missing)
    setattr(obj, name, value)
    try:
        yield
    finally:
        if before is missing:
            obj.__dict__.pop(name, None)
        else:
            setattr(obj, name, before)


def _transform(shell: Any, code: str) -> tuple[str, Any]:
    try:
        return shell.transform_cell(code), None
    except Exception:
        return code, sys.exc_info()


def _register(target: Any, hook: Any) -> None:
    """ipykernel's display publisher and displayhook take message hooks; plain IPython's do not,
    and there the tee and traceback capture still see prints and errors."""
    if hasattr(target, "register_hook"):
        target.register_hook(hook)


def _unregister(target: Any, hook: Any) -> None:
    if hasattr(target, "unregister_hook"):
        target.unregister_hook(hook)


def _error_of(outputs: list[dict[str, Any]], err: BaseException | None) -> dict[str, Any] | None:
    """The cell's error for the model: the last error output, in plain text."""
    errors = [o for o in outputs if o["output_type"] == "error"]
    if errors:
        last = errors[-1]
        return {"ename": last["ename"], "evalue": last["evalue"],
                "traceback": [strip_ansi(line) for line in last["traceback"]]}
    if err is not None:  # e.g. a UsageError, which IPython reports on stderr only
        return {"ename": type(err).__name__, "evalue": str(err), "traceback": [f"{type(err).__name__}: {err}"]}
    return None
