"""One RLM run: its namespace, its model calls, its sub-calls and its events.

The loop (loop.py) says *what* happens in a run; this class says *how*: it records every event,
charges every budget, and keeps the helpers the generated code calls. A child run (rlm_query) is
another Run sharing the root's bus, steering, budget and model I/O."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import events as ev
from . import prompts, window
from .budgets import Budget, BudgetExceeded
from .clientset import ClientSet
from .context import context_summary, describe_context
from .events import EventBus
from .executor import HeadlessExecutor
from .modelio import ModelIO, run_on_new_thread
from .options import RLMOptions
from .parser import strip_code_blocks
from .steering import PendingCell, Steering
from .text import outputs_to_text, truncate
from .tokens import estimate_tokens
from .types import CellOutcome, Completion, Executor, ModelError, Usage

#: Largest text kept per output in the run record; the rest is cut with a note.
RECORD_OUTPUT_LIMIT = 1_000_000


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


class Run:
    def __init__(self, question: str, context: Any, options: RLMOptions, *, bus: EventBus, io: ModelIO,
                 clients: ClientSet, steering: Steering, budget: Budget, executor: Executor | None = None,
                 depth: int = 0, parent: Run | None = None, parent_subcall_id: str | None = None,
                 run_id: str | None = None) -> None:
        self.question, self.context, self.options = question, context, options
        self.bus, self.io, self.clients, self.steering, self.budget = bus, io, clients, steering, budget
        self.executor: Executor = executor if executor is not None else HeadlessExecutor(name=f"rlm-d{depth}")
        self.depth, self.parent, self.parent_subcall_id = depth, parent, parent_subcall_id
        self.run_id = run_id or new_id()
        self.root_run_id: str = parent.root_run_id if parent else self.run_id
        self.step = 0
        self.messages: list[dict[str, str]] = []
        self.answer: dict[str, Any] = {"content": "", "ready": False}
        self.last_reply = ""
        self.subcalls = 0
        self.usage: dict[str, Usage] = {}
        self.started_at = time.time()
        self.log_path: Path | None = parent.log_path if parent else None
        self.system = ""
        #: Characters of cell output fed back per step: the option, else derived from the root window.
        self.output_limit = options.output_limit or window.feedback_limit(clients.window(clients.root_model))
        self._helpers = self._make_helpers()
        self._displaced: dict[str, Any] = {}
        self._lock = threading.Lock()

    # --- events -----------------------------------------------------------------------------
    def emit(self, type_: str, **fields: Any) -> ev.Event:
        return self.bus.emit(self.run_id, type_, **fields)

    @property
    def model(self) -> str:
        return self.clients.root_model

    @property
    def sub_model(self) -> str:
        return self.clients.sub_model

    def start(self, bind_name: str = "context") -> None:
        meta = describe_context(self.context, preview_chars=self.options.preview_chars)
        system = prompts.system_prompt(self.output_limit, self.clients.sub_window())
        first = prompts.first_user(self.question, context_summary(meta))
        self.messages = [{"role": "user", "content": first}]
        self.system = system
        parent = self.parent
        self.emit(ev.RUN_STARTED, question=self.question, options=self.options.public_dict(), context=meta,
                  model=self.model, sub_model=self.sub_model, provider=self.clients.label,
                  demo=self.clients.demo, depth=self.depth, root_run_id=self.root_run_id,
                  parent_run_id=parent.run_id if parent else None, parent_step=parent.step if parent else None,
                  parent_subcall_id=self.parent_subcall_id, system=system, first_message=first,
                  bind_name=bind_name, output_limit=self.output_limit, windows=self.windows())
        self.bind()

    def windows(self) -> dict[str, dict[str, Any]]:
        """The root and sub-model windows and where each came from, for the run record."""
        out = {}
        for model in dict.fromkeys((self.model, self.sub_model)):
            tokens, source = self.clients.window_info(model)
            out[model] = {"tokens": tokens, "source": source}
        return out

    # --- namespace ----------------------------------------------------------------------------
    def bind(self) -> None:
        """Put context and helpers into the namespace, remembering what they displace."""
        ns = self.executor.namespace
        for name, value in self._helpers.items():
            if name in ns and name not in self._displaced and ns[name] is not value:
                self._displaced[name] = ns[name]
            ns[name] = value

    def protect(self) -> list[str]:
        """Restore helpers and `context` that generated code deleted or rebound; say which."""
        ns, restored = self.executor.namespace, []
        for name, value in self._helpers.items():
            if ns.get(name) is not value:
                if name == "answer" and isinstance(ns.get(name), dict):
                    self.answer.update(ns[name])  # `answer = {...}` counts, then the original is back
                restored.append(name)
                ns[name] = value
        return [n for n in restored if n != "answer"]

    def unbind(self) -> None:
        ns = self.executor.namespace
        for name, value in self._helpers.items():
            if name == "context" or ns.get(name) is not value:
                continue
            if name in self._displaced:
                ns[name] = self._displaced[name]
            else:
                ns.pop(name, None)

    def _make_helpers(self) -> dict[str, Any]:
        run = self

        def llm_query(prompt: str, model: str | None = None) -> str:
            """Ask a sub-model one question; returns its answer as a str."""
            return run.io.call_sync(run.subcall("llm", str(prompt), model))

        def llm_query_batched(prompts: list[str], model: str | None = None) -> list[str]:
            """Ask many prompts concurrently; answers in input order, "Error: ..." in a failed slot."""
            return run.io.call_sync(run.batch([str(p) for p in prompts], model))

        def rlm_query(prompt: str, context: Any = None) -> str:
            """Start a child RLM on `context` (default: the prompt itself); returns its final answer."""
            return run.child_query(str(prompt), context)

        def FINAL(text: Any) -> None:
            run.answer.update(content=str(text), ready=True)

        def FINAL_VAR(name: Any) -> None:
            run.answer.update(content=run.resolve_var(name), ready=True)

        return {"context": self.context, "llm_query": llm_query, "llm_query_batched": llm_query_batched,
                "rlm_query": rlm_query, "FINAL": FINAL, "FINAL_VAR": FINAL_VAR, "answer": self.answer}

    def resolve_var(self, name: Any) -> str:
        if not isinstance(name, str):
            return str(name)  # FINAL_VAR(value) is a common slip: answer with the value
        key = name.strip().strip("\"'")
        ns = self.executor.namespace
        if key not in ns:
            raise NameError(f"FINAL_VAR({key!r}): no variable named {key!r} exists yet. "
                            f"Create it in a ```repl block first, then call FINAL_VAR.")
        return str(ns[key])

    # --- root turns ---------------------------------------------------------------------------
    async def root_turn(self) -> Completion:
        messages, removed, max_tokens = self.fit_root_prompt()
        self.emit(ev.TURN_STARTED, step=self.step, **({"outputs_removed": removed} if removed else {}))
        step = self.step

        def on_text(delta: str) -> None:
            self.emit(ev.TURN_DELTA, step=step, text=delta)

        request = self.clients.root.complete(model=self.model, system=self.system, messages=messages,
                                             max_output_tokens=max_tokens, on_text=on_text, cache=self.options.cache)
        remaining = self.budget.remaining_time()
        try:
            async with asyncio.timeout(remaining):
                c = await self.steering.guard(self.io.call(request))
        except TimeoutError:
            self.budget.check_time()
            raise
        self.emit(ev.TURN_FINISHED, step=step, text=c.text, model=c.model, usage=c.usage.to_dict(),
                  latency=round(c.latency, 4), stop_reason=c.stop_reason)
        self.last_reply = c.text
        self.messages.append({"role": "assistant", "content": c.text})
        self.charge(self.model, c.usage)
        return c

    def fit_root_prompt(self) -> tuple[list[dict[str, Any]], int, int]:
        """(messages, old outputs removed, max_tokens) for the next root turn, checked against the root
        window before anything is sent: a prompt over it would come back as an error, or from some
        local servers as an empty reply. Old outputs go first (the model saw them, and the variables
        they printed persist); when even the question and the latest output do not fit, the run fails
        with a reason that says what to change."""
        size = self.clients.window(self.model)
        if size is None:
            return list(self.messages), 0, self.options.max_output_tokens
        try:
            messages, removed, estimate = window.fit(self.system, self.messages, self.model, size,
                                                     self.options.max_output_tokens)
        except ValueError as exc:
            raise ModelError(str(exc)) from None
        return messages, removed, window.reply_budget(size, estimate, self.options.max_output_tokens)

    # --- cells --------------------------------------------------------------------------------
    async def run_cell(self, index: int, code: str) -> str:
        """Run one block (after any pause/edit) and return the text the model will see for it."""
        code_to_run, edited = await self.steering.before_cell(PendingCell(self.step, index, code, self.run_id))
        self.emit(ev.CELL_STARTED, step=self.step, index=index, code=code_to_run, edited=edited,
                  original_code=code if edited else None)
        timeout = self.options.cell_timeout
        remaining = self.budget.remaining_time()
        if remaining is not None:
            timeout = min(timeout or remaining, max(remaining, 0.01))
        interrupted = False
        try:
            outcome = await self.executor.run_cell(code_to_run, timeout=timeout)
        except KeyboardInterrupt as exc:  # executors may attach what the cell did before it
            outcome = getattr(exc, "outcome", None) or CellOutcome(error={
                "ename": "KeyboardInterrupt", "evalue": "", "traceback": ["KeyboardInterrupt"]})
            outcome.interrupted = interrupted = True
        restored = self.protect()
        text = self.cell_feedback(index, outcome, restored, timeout)
        if edited:
            text = prompts.EDITED.format(index=index, code=code_to_run) + "\n" + text
        self.emit(ev.CELL_FINISHED, step=self.step, index=index, code=code_to_run, edited=edited,
                  outputs=_cap_outputs(outcome.outputs), error=outcome.error, duration=round(outcome.duration, 4),
                  timed_out=outcome.timed_out, execution_count=outcome.execution_count, feedback=text)
        if interrupted or outcome.interrupted:
            raise KeyboardInterrupt
        return text

    def cell_feedback(self, index: int, outcome: CellOutcome, restored: list[str], timeout: float | None) -> str:
        body = outputs_to_text(outcome.outputs).strip() or "(no output)"
        head = f"Output of cell {index}:"
        if outcome.timed_out:
            head = (f"Cell {index} timed out after {timeout:g} s and was interrupted. Work on smaller pieces "
                    f"or use llm_query_batched. Output before the timeout:")
        notes = "".join(f"\nNote: your code rebound `{n}`; it has been restored." for n in restored)
        return f"{head}\n{truncate(body, self.output_limit)}{notes}"

    # --- sub-calls (run on the model I/O loop) ------------------------------------------------
    def _preflight(self, prompt: str, model: str) -> str | None:
        return window.too_long(prompt, model, self.clients.window(model), self.options.max_output_tokens)

    async def subcall(self, kind: str, prompt: str, model: str | None, batch: str | None = None,
                      reserved: bool = False) -> str:
        model = model or self.sub_model
        sid = uuid.uuid4().hex[:10]
        self.emit(ev.SUBCALL_STARTED, step=self.step, id=sid, kind=kind, model=model, prompt=prompt, batch=batch)
        t0, usage, error, response, cached = time.perf_counter(), Usage(), None, "", False
        try:
            if not reserved:
                self.budget.take_subcall()
            with self._lock:
                self.subcalls += 1
            refusal = self._preflight(prompt, model)
            if refusal:
                error, response = "context_window", refusal
            else:
                response, usage, cached = await self._ask_sub(model, prompt)
        except ModelError as exc:
            error, response = str(exc), f"Error: {exc}"
        except BudgetExceeded as exc:
            error = str(exc)
            raise
        finally:
            # A lone call raises its failure into the generated code; a batch slot and a refusal for
            # length return their message as the answer instead. Replay repeats whichever happened.
            raised = error is not None and batch is None and error != "context_window"
            self.emit(ev.SUBCALL_FINISHED, step=self.step, id=sid, kind=kind, model=model, response=response,
                      usage=usage.to_dict(), latency=round(time.perf_counter() - t0, 4), error=error,
                      child_run_id=None, cached=cached, raised=raised)
        if raised:
            raise ModelError(error)
        return response

    async def _ask_sub(self, model: str, prompt: str) -> tuple[str, Usage, bool]:
        """One sub-model request. With `memoize`, an identical (model, prompt) asked anywhere in the run
        tree, earlier or at the same time, is answered once: (response, usage, answered from memo)."""
        memo = self.budget.memo
        key = (model, prompt)
        if self.options.memoize and key in memo:
            return await asyncio.shield(memo[key]), Usage(), True
        shared: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        if self.options.memoize:
            memo[key] = shared
        try:
            max_tokens = window.reply_budget(self.clients.window(model), estimate_tokens(prompt) + 4,
                                             self.options.max_output_tokens)
            c = await self.clients.sub.complete(
                model=model, system="", messages=[{"role": "user", "content": prompt}],
                max_output_tokens=max_tokens, cache=False)
        except BaseException as exc:
            memo.pop(key, None)  # a failure is not remembered: the next ask tries again
            shared.set_exception(exc if isinstance(exc, Exception) else ModelError("sub-call cancelled"))
            shared.exception()  # retrieved: waiters get it, nobody else needs to
            raise
        shared.set_result(c.text)
        self.charge(model, c.usage)
        return c.text, c.usage, False

    async def batch(self, prompts: list[str], model: str | None) -> list[str]:
        self.budget.take_subcall(len(prompts))
        sem = asyncio.Semaphore(max(1, self.options.concurrency))
        bid = uuid.uuid4().hex[:8]

        async def one(p: str) -> str:
            async with sem:
                try:
                    return await self.subcall("llm", p, model, batch=bid, reserved=True)
                except BudgetExceeded as exc:
                    return f"Error: {exc}"

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    def child_query(self, prompt: str, context: Any) -> str:
        """rlm_query: a child run on its own thread and loop; at the depth limit, a plain sub-call."""
        if self.depth + 1 >= self.options.max_depth:
            text = prompt if context is None else f"{prompt}\n\n{context}"
            return self.io.call_sync(self.subcall("rlm", text, None))
        self.budget.take_subcall()
        sid = uuid.uuid4().hex[:10]
        child = Run(prompt, prompt if context is None else context, self.options, bus=self.bus, io=self.io,
                    clients=self.clients, steering=self.steering, budget=self.budget, depth=self.depth + 1,
                    parent=self, parent_subcall_id=sid)
        self.emit(ev.SUBCALL_STARTED, step=self.step, id=sid, kind="rlm", model=self.model, prompt=prompt,
                  batch=None, child_run_id=child.run_id)
        t0 = time.perf_counter()

        def work() -> Any:
            from .loop import run_loop

            child.start()
            return asyncio.run(run_loop(child))

        try:
            response, err = run_on_new_thread(work, f"rlm-child-{child.run_id}").answer, None
        except BaseException as exc:
            response, err = "", exc
        with self._lock:
            self.subcalls += 1
        self.emit(ev.SUBCALL_FINISHED, step=self.step, id=sid, kind="rlm", model=self.model, response=response,
                  usage={}, latency=round(time.perf_counter() - t0, 4),
                  error=None if err is None else f"{type(err).__name__}: {err}", child_run_id=child.run_id,
                  raised=err is not None)
        if err is not None:
            raise err
        return response

    def charge(self, model: str, usage: Usage) -> None:
        with self._lock:
            self.usage.setdefault(model, Usage()).add(usage)
        self.budget.record(model, usage)

    # --- answers ------------------------------------------------------------------------------
    def best_partial(self) -> str:
        if self.answer.get("content"):
            return str(self.answer["content"])
        return strip_code_blocks(self.last_reply).strip()


def _cap_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    capped = []
    for out in outputs:
        text = out.get("text")
        if isinstance(text, str) and len(text) > RECORD_OUTPUT_LIMIT:
            out = {**out, "text": text[:RECORD_OUTPUT_LIMIT] + f"\n[... {len(text) - RECORD_OUTPUT_LIMIT:,} "
                   "characters not recorded ...]\n"}
        capped.append(out)
    return capped
