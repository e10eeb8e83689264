"""The public entry points: `rlm()` for scripts, `arun()` for callers with an event loop (the kernel),
`aresume()` to continue a recorded run."""

from __future__ import annotations

import asyncio
import contextlib
import filecmp
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from . import batches
from . import events as ev
from .budgets import Budget
from .clientset import ClientSet, ConfigError, make_clients
from .context import check_context, shows_all
from .datasets import resolve_context
from .events import EventBus
from .executor import HeadlessExecutor
from .followup import earlier_logs, earlier_questions, finished_cells, missing_log
from .loop import run_loop
from .modelio import ModelIO, default_io, run_on_new_thread
from .options import RLMOptions
from .outcome import RLMResult
from .record import RunLog, RunLogWriter
from .redaction import Redactor
from .replay import RecordedAnswers
from .run import NO_VALUE, Run
from .snapshot import context_snapshot_path, load_context, save_context
from .steering import Steering, interrupts_noted, note_interrupt
from .types import Executor

__all__ = ["ConfigError", "RLMResult", "aresume", "arun", "rlm"]

Subscriber = Callable[[ev.Event], None]
_MISSING: Any = object()


#: Events a run emits before its first root request has left; any other event releases the snapshot.
_BEFORE_FIRST_REPLY = frozenset({ev.RUN_STARTED, ev.TURN_STARTED, ev.STATE})


def _prepare(options: RLMOptions | None, overrides: dict[str, Any]) -> RLMOptions:
    opts = (options or RLMOptions()).merged(**overrides)
    batches.batch_mode(opts.batch_api)  # a bad value is an error before anything starts
    return opts


async def _with_batches(run: Run) -> RLMResult:
    """The loop, then the run tree's Message Batches closed: cancelled remotely when the run ended
    (nobody will collect them), only no longer polled when it was interrupted (resume collects them)."""
    try:
        result = await run_loop(run)
    except BaseException:
        if run.budget.batches is not None:
            run.io.submit(run.budget.batches.aclose(None, cancel_remote=False))
        raise
    if run.budget.batches is not None:
        await run.io.call(run.budget.batches.aclose(batches.api_for(run), cancel_remote=True))
    return result


async def arun(question: str, context: Any, *, options: RLMOptions | None = None, executor: Executor | None = None,
               steering: Steering | None = None, subscribers: Sequence[Subscriber] = (),
               bind_name: str = "context", io: ModelIO | None = None,
               continue_from: RLMResult | RunLog | str | Path | None = None, **overrides: Any) -> RLMResult:
    """Run an RLM on `context` to answer `question`. Config and context errors raise before anything starts.

    `continue_from` (an earlier result or its log) makes this a follow-up in the same REPL: the model is
    told the earlier questions, answers and code (followup.py), and their variables are still there."""
    opts = _prepare(options, overrides)
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty: pass the question as the first argument (or the %%rlm cell body)")
    context = resolve_context(context)
    earlier = None
    if continue_from is not None:
        prev = continue_from.run if isinstance(continue_from, RLMResult) else (
            continue_from if isinstance(continue_from, RunLog) else RunLog.read(continue_from))
        earlier = earlier_questions(prev)
        if executor is None and isinstance(continue_from, RLMResult):
            executor = continue_from.executor
    check_context(context)
    io, clients, steering, bus = await _connect(opts, io, steering)
    run = Run(question.strip(), context, opts, bus=bus, io=io, clients=clients, steering=steering,
              budget=Budget(opts), executor=executor)
    run.earlier = earlier
    run.log_path = opts.resolved_runs_dir() / f"{run.run_id}.jsonl"
    writer = RunLogWriter(run.log_path)
    bus.subscribe(writer)
    for fn in subscribers:
        bus.subscribe(fn)
    bus.watched = bool(subscribers)
    steering.on_state = lambda state: run.emit(ev.STATE, state=state, step=run.step)
    snapshot = None
    replying = threading.Event()  # the first root request has left (its reply, or the run's end, is coming)
    bus.subscribe(lambda e: None if e["type"] in _BEFORE_FIRST_REPLY else replying.set())
    try:
        run.start(bind_name)
        snapshot = save_context(context, run.log_path, after=replying)
        return await _with_batches(run)
    finally:
        replying.set()
        run.end_children("the run ended")  # normally none left; their ends must reach the log
        run.unbind()
        steering.on_state = None
        writer.close()
        if snapshot is not None:  # the record is complete when the run returns (export reads it)
            await asyncio.shield(asyncio.to_thread(snapshot.join))


async def _connect(opts: RLMOptions, io: ModelIO | None,
                   steering: Steering | None) -> tuple[ModelIO, ClientSet, Steering, EventBus]:
    """What a run talks through: its clients (windows discovered), its steering, and an event bus
    that redacts the key in use and the environment's credentials, as of now."""
    io = io or default_io()
    clients = make_clients(opts, io)
    await clients.discover(io)
    steering = steering or Steering()
    if steering.approve is None:
        steering.approve = opts.approve
    return io, clients, steering, EventBus(Redactor(clients.keys))


async def aresume(log: RunLog | str | Path, *, executor: Executor | None = None, steering: Steering | None = None,
                  subscribers: Sequence[Subscriber] = (), rebuild_namespace: bool = True, io: ModelIO | None = None,
                  context: Any = _MISSING, trust: bool = False, **overrides: Any) -> RLMResult:
    """Continue a stopped, interrupted or crashed run from its last finished step, in the same log.

    With `rebuild_namespace`, the finished steps' cells run again first, their sub-calls answered
    from the recording, so variables the model made exist again (needed in a fresh process); for a
    follow-up, the earlier questions' cells run before them, from their own logs next to this one. A
    context saved as a pickle by another process is loaded only with `trust=True` (it can run code)."""
    log = log if isinstance(log, RunLog) else RunLog.read(log)
    started = log.started()
    if started is None:
        raise ValueError(f"{log.path} has no run_started event: it is not an RLM run log")
    opts = _prepare(RLMOptions.from_recorded(started["options"]), overrides)
    earlier = earlier_logs(log) if rebuild_namespace else []
    for q, found in earlier:
        if found is None:
            raise FileNotFoundError(f"cannot rebuild the namespace: {missing_log(q, log)}")
    if context is _MISSING:
        context = load_context(log.path, trust=trust)
    io, clients, steering, bus = await _connect(opts, io, steering)
    redact = bus.redactor.text  # a log written before redaction at the source existed may hold secrets
    root_id = started["run_id"]
    run = Run(started["question"], context, opts, bus=bus, io=io, clients=clients, steering=steering,
              budget=Budget(opts), executor=executor, run_id=root_id)
    run.log_path = log.path
    run.system = started.get("system") or ""
    run.preview_whole = shows_all(started.get("context") or {})
    run.messages = [{"role": "user", "content": redact(started["first_message"])}]
    mine = log.of_run(root_id)
    finished_steps = sorted({e["step"] for e in mine if e["type"] == ev.FEEDBACK})
    last = finished_steps[-1] if finished_steps else 0
    for e in mine:
        if e["type"] == ev.TURN_FINISHED and e["step"] <= last:  # tool use records the message as sent
            run.last_reply = redact(e["text"])
            run.messages.append(bus.redactor.deep(e.get("message") or {"role": "assistant", "content": e["text"]}))
        elif e["type"] == ev.FEEDBACK and e["step"] <= last:
            run.messages.append(bus.redactor.deep(e.get("message") or {"role": "user", "content": e["text"]}))
    run.step = last
    writer = RunLogWriter(log.path)
    for fn in (writer, *subscribers):
        bus.subscribe(fn)
    bus.watched = bool(subscribers)
    steering.on_state = lambda state: run.emit(ev.STATE, state=state, step=run.step)
    try:
        run.bind()
        if rebuild_namespace:
            for _, found in earlier:  # a follow-up's code uses what the earlier questions' code made
                await _rebuild(run, found, finished_cells(found), context=_other_context(found, log, trust))
            run.answer.update(content="", ready=False)  # an earlier question's FINAL is not this run's
            run.answer_value = NO_VALUE
            await _rebuild(run, log, finished_cells(log, root_id, last))
        run.emit(ev.RUN_RESUMED, from_step=last, rebuilt=rebuild_namespace)
        await io.call(batches.recover(run, log))  # batches sent before the stop are collected, not re-sent
        return await _with_batches(run)
    finally:
        run.end_children("the run ended")
        run.unbind()
        steering.on_state = None
        writer.close()


def _other_context(earlier: RunLog, log: RunLog, trust: bool) -> Any:
    """An earlier question's own input when it was not the one `log`'s run got (`context` rebound
    between questions), else _MISSING. Snapshots are compared, not loaded, when they are equal."""
    mine, theirs = context_snapshot_path(log.path), context_snapshot_path(earlier.path)
    if theirs is None or (mine is not None and filecmp.cmp(mine, theirs, shallow=False)):
        return _MISSING
    return load_context(earlier.path, trust=trust)


async def _rebuild(run: Run, log: RunLog, cells: list[ev.Event], *, context: Any = _MISSING) -> None:
    """Re-run recorded cells with `log`'s recorded sub-call answers, silently (no events); `context`
    (when given) is bound while they run, then the run's own is back (protect)."""
    recorded = RecordedAnswers.from_log(log)
    ns = run.executor.namespace
    if context is not _MISSING:
        ns["context"] = ns["context_0"] = context
    live = {name: ns[name] for name in ("llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched")}
    recorded.bind(ns)
    try:
        for e in cells:
            noted = interrupts_noted()
            try:
                await run.executor.run_cell(e["code"], timeout=run.options.cell_timeout)
            except KeyboardInterrupt:
                if interrupts_noted() != noted:
                    raise  # a person's interrupt; one the recorded code raised was its error then too
    finally:
        ns.update(live)
        run.protect()


def rlm(question: str, context: Any = _MISSING, **options: Any) -> RLMResult:
    """Answer `question` about `context` with a Recursive Language Model, from any Python process.

    Options are the `%%rlm` names: model, sub_model, max_iterations, max_depth, max_subcalls,
    max_tokens, max_cost, cell_timeout, timeout, output_limit, concurrency, provider, base_url,
    context_window (the model's window in tokens, for servers that do not report it), ..."""
    previous = options.get("continue_from")
    if context is _MISSING and isinstance(previous, RLMResult) and previous.executor is not None:
        context = previous.executor.namespace.get("context", _MISSING)
    if context is _MISSING:
        raise TypeError("rlm() needs the input: rlm(question, context=your_data)")
    subscribers = options.pop("subscribers", ())
    steering = options.pop("steering", None) or Steering()
    executor = options.pop("executor", None) or (previous.executor if isinstance(previous, RLMResult) else None) \
        or HeadlessExecutor()

    def go() -> RLMResult:
        return asyncio.run(arun(question, context, executor=executor, steering=steering,
                                subscribers=subscribers, **options))

    def abort(exc: BaseException) -> None:  # the caller's cell was interrupted: so is the run
        note_interrupt()
        steering.stop()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False  # not calling go() here: its errors would show "during handling of RuntimeError"
    else:
        in_loop = True
    # Inside a running loop (a notebook cell), the run needs a thread and a loop of its own.
    if in_loop:
        return run_on_new_thread(go, "rlm-run", abort)
    with _noting_sigint():
        return go()


@contextlib.contextmanager
def _noting_sigint() -> Iterator[None]:
    """While a script's run goes on, Ctrl-C is noted as a person's interrupt before it raises
    KeyboardInterrupt, so the run can tell it from a KeyboardInterrupt its generated code raised."""
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or not callable(previous):
        yield
        return

    def on_sigint(signum: int, frame: Any) -> Any:
        note_interrupt()
        return previous(signum, frame)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
