"""The public entry points: `rlm()` for scripts, `arun()` for callers with an event loop (the kernel),
`aresume()` to continue a recorded run."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from . import events as ev
from .budgets import Budget
from .clientset import ConfigError, make_clients
from .context import check_context
from .events import EventBus
from .executor import HeadlessExecutor
from .loop import run_loop
from .modelio import ModelIO, default_io, run_on_new_thread
from .options import RLMOptions
from .outcome import RLMResult
from .record import RunLog, RunLogWriter
from .replay import RecordedAnswers
from .run import Run
from .snapshot import load_context, save_context
from .steering import Steering
from .types import Executor

__all__ = ["ConfigError", "RLMResult", "aresume", "arun", "rlm"]

Subscriber = Callable[[ev.Event], None]
_MISSING: Any = object()


def _prepare(options: RLMOptions | None, overrides: dict[str, Any]) -> RLMOptions:
    return (options or RLMOptions()).merged(**overrides)


async def arun(question: str, context: Any, *, options: RLMOptions | None = None, executor: Executor | None = None,
               steering: Steering | None = None, subscribers: Sequence[Subscriber] = (),
               bind_name: str = "context", io: ModelIO | None = None, **overrides: Any) -> RLMResult:
    """Run an RLM on `context` to answer `question`. Config and context errors raise before anything starts."""
    opts = _prepare(options, overrides)
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the question is empty: pass the question as the first argument (or the %%rlm cell body)")
    check_context(context)
    io = io or default_io()
    clients = make_clients(opts, io)
    await clients.discover(io)
    steering = steering or Steering(approve=opts.approve)
    bus = EventBus()
    run = Run(question.strip(), context, opts, bus=bus, io=io, clients=clients, steering=steering,
              budget=Budget(opts), executor=executor)
    run.log_path = opts.resolved_runs_dir() / f"{run.run_id}.jsonl"
    writer = RunLogWriter(run.log_path)
    bus.subscribe(writer)
    for fn in subscribers:
        bus.subscribe(fn)
    steering.on_state = lambda state: run.emit(ev.STATE, state=state, step=run.step)
    snapshot = None
    try:
        run.start(bind_name)
        snapshot = save_context(context, run.log_path)
        return await run_loop(run)
    finally:
        run.unbind()
        steering.on_state = None
        writer.close()
        if snapshot is not None:  # the record is complete when the run returns (export reads it)
            await asyncio.shield(asyncio.to_thread(snapshot.join))


async def aresume(log: RunLog | str | Path, *, executor: Executor | None = None, steering: Steering | None = None,
                  subscribers: Sequence[Subscriber] = (), rebuild_namespace: bool = True, io: ModelIO | None = None,
                  context: Any = _MISSING, **overrides: Any) -> RLMResult:
    """Continue a stopped, interrupted or crashed run from its last finished step, in the same log.

    With `rebuild_namespace`, the finished steps' cells run again first, their sub-calls answered
    from the recording, so variables the model made exist again (needed in a fresh process)."""
    log = log if isinstance(log, RunLog) else RunLog.read(log)
    started = log.started()
    if started is None:
        raise ValueError(f"{log.path} has no run_started event: it is not an RLM run log")
    opts = RLMOptions.from_recorded(started["options"]).merged(**overrides)
    if context is _MISSING:
        context = load_context(log.path)
    io = io or default_io()
    clients = make_clients(opts, io)
    await clients.discover(io)
    steering = steering or Steering(approve=opts.approve)
    bus = EventBus()
    root_id = started["run_id"]
    run = Run(started["question"], context, opts, bus=bus, io=io, clients=clients, steering=steering,
              budget=Budget(opts), executor=executor, run_id=root_id)
    run.log_path = log.path
    run.system = started.get("system") or ""
    run.messages = [{"role": "user", "content": started["first_message"]}]
    mine = log.of_run(root_id)
    finished_steps = sorted({e["step"] for e in mine if e["type"] == ev.FEEDBACK})
    last = finished_steps[-1] if finished_steps else 0
    for e in mine:
        if e["type"] == ev.TURN_FINISHED and e["step"] <= last:
            run.messages.append({"role": "assistant", "content": e["text"]})
            run.last_reply = e["text"]
        elif e["type"] == ev.FEEDBACK and e["step"] <= last:
            run.messages.append({"role": "user", "content": e["text"]})
    run.step = last
    writer = RunLogWriter(log.path)
    for fn in (writer, *subscribers):
        bus.subscribe(fn)
    steering.on_state = lambda state: run.emit(ev.STATE, state=state, step=run.step)
    try:
        run.bind()
        if rebuild_namespace:
            await _rebuild(run, log, last)
        run.emit(ev.RUN_RESUMED, from_step=last, rebuilt=rebuild_namespace)
        return await run_loop(run)
    finally:
        run.unbind()
        steering.on_state = None
        writer.close()


async def _rebuild(run: Run, log: RunLog, last_step: int) -> None:
    """Re-run the finished steps' cells with recorded sub-call answers, silently (no events)."""
    recorded = RecordedAnswers.from_log(log)
    ns = run.executor.namespace
    live = {name: ns[name] for name in ("llm_query", "llm_query_batched", "rlm_query")}
    recorded.bind(ns)
    try:
        for e in log.of_run(run.run_id):
            if e["type"] == ev.CELL_FINISHED and e["step"] <= last_step:
                await run.executor.run_cell(e["code"], timeout=run.options.cell_timeout)
    finally:
        ns.update(live)
        run.protect()


def rlm(question: str, context: Any = _MISSING, **options: Any) -> RLMResult:
    """Answer `question` about `context` with a Recursive Language Model, from any Python process.

    Options are the `%%rlm` names: model, sub_model, max_iterations, max_depth, max_subcalls,
    max_tokens, max_cost, cell_timeout, timeout, output_limit, concurrency, provider, base_url,
    context_window (the model's window in tokens, for servers that do not report it), ..."""
    if context is _MISSING:
        raise TypeError("rlm() needs the input: rlm(question, context=your_data)")
    subscribers = options.pop("subscribers", ())
    steering = options.pop("steering", None)
    executor = options.pop("executor", None) or HeadlessExecutor()

    def go() -> RLMResult:
        return asyncio.run(arun(question, context, executor=executor, steering=steering,
                                subscribers=subscribers, **options))

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        in_loop = False  # not calling go() here: its errors would show "during handling of RuntimeError"
    else:
        in_loop = True
    # Inside a running loop (a notebook cell), the run needs a thread and a loop of its own.
    return run_on_new_thread(go, "rlm-run") if in_loop else go()

