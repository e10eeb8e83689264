"""One RLM run: its namespace, its model calls, its sub-calls and its events.

The loop (loop.py) says *what* happens in a run; this class says *how*: it records every event,
charges every budget, and keeps the helpers the generated code calls. A child run (rlm_query) is
another Run sharing the root's bus, steering, budget and model I/O."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from . import batches, prompts, window
from . import events as ev
from .budgets import Budget, BudgetExceeded
from .clientset import ClientSet
from .compat import missing_variable, run_children, show_vars
from .context import context_summary, describe_context, shows_all
from .events import EventBus
from .executor import HeadlessExecutor
from .followup import account
from .habits import drop_retyped_context
from .modelio import ModelIO, run_on_new_thread
from .options import RLMOptions
from .parser import strip_code_blocks
from .protocol import choose as choose_protocol
from .steering import PendingCell, Steering, interrupts_noted
from .text import outputs_to_text, truncate
from .tokens import estimate_tokens
from .types import CellOutcome, Completion, Executor, ModelError, Usage
from .watchdog import CellTimeout, expire

#: Largest text kept per output in the run record; the rest is cut with a note.
RECORD_OUTPUT_LIMIT = 1_000_000
#: Seconds a parent waits for a cancelled child run to record its end.
CHILD_END_WAIT = 5.0


#: `answer_value` before anything answered (None is a value an answer can have).
NO_VALUE: Any = object()



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
        self.messages: list[dict[str, Any]] = []
        self.answer: dict[str, Any] = {"content": "", "ready": False}
        #: The object the answer was read from (FINAL_VAR(df) -> the DataFrame), for `result.value`.
        self.answer_value: Any = NO_VALUE
        self.last_reply = ""
        self.subcalls = 0
        self.usage: dict[str, Usage] = {}
        self.started_at = time.time()
        self.log_path: Path | None = parent.log_path if parent else None
        self.system = ""
        #: Whether the first message's preview showed all of `context` (an answer before any cell then
        #: rests on what the model saw).
        self.preview_whole = False
        #: The questions before this one when it is a follow-up (followup.earlier_questions), else None.
        self.earlier: list[dict[str, Any]] | None = None
        self.protocol = choose_protocol(options.protocol, clients.label)
        prompts.check(options.prompt, self.protocol.name)
        self.last_outcome: CellOutcome | None = None
        #: (index, code, what the model was shown) of the latest cell, for feedback that quotes it.
        self.last_cell: tuple[int, str, str] | None = None
        #: Characters of cell output fed back per step: the option, else derived from the root window.
        self.output_limit = options.output_limit or window.feedback_limit(clients.window(clients.root_model))
        self._helpers = self._make_helpers()
        self._displaced: dict[str, Any] = {}
        self._lock = threading.Lock()
        #: Why this run must end now (its parent's cell timed out, was interrupted or stopped), or None.
        self.cancelled: str | None = None
        self.children: list[Run] = []
        self.ended = threading.Event()  # set when a child run's thread is done
        self._home: tuple[int, asyncio.AbstractEventLoop, asyncio.Task[Any]] | None = None
        self._memo_hits = self._asked = 0  # sub-call prompts in the current cell, and repeats among them

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
        preview = self.options.preview_chars
        if preview is None:
            preview = window.preview_chars(self.clients.window(self.clients.root_model))
        meta = describe_context(self.context, preview_chars=preview)
        system = self.protocol.system_prompt(self)
        first = self.protocol.first_user(self, self.question, context_summary(meta))
        continued: dict[str, Any] = {}
        if self.earlier:
            first = account(self.earlier, self.executor.namespace, set(self._helpers)) + "\n\n" + first
            continued = {"continues": self.earlier[-1]["run_id"], "earlier": self.earlier}
        parent = self.parent
        started = self.emit(
            ev.RUN_STARTED, question=self.question, options=self.options.public_dict(), context=meta,
            model=self.model, sub_model=self.sub_model, provider=self.clients.label, demo=self.clients.demo,
            depth=self.depth, root_run_id=self.root_run_id, parent_run_id=parent.run_id if parent else None,
            parent_step=parent.step if parent else None, parent_subcall_id=self.parent_subcall_id, system=system,
            first_message=first, bind_name=bind_name, protocol=self.protocol.name,
            output_limit=self.output_limit, windows=self.windows(), **continued)
        # From here on the run works with what the record says: secrets redacted (EventBus.emit).
        self.question, self.system = started["question"], started["system"]
        self.preview_whole = shows_all(started["context"])
        self.messages = [{"role": "user", "content": started["first_message"]}]
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
        """Put context and helpers into the namespace, remembering what they displace. An executor
        that shows outputs as they happen (the kernel's) gets the redactor for them too."""
        if hasattr(self.executor, "redact"):
            self.executor.redact = self.bus.redactor.text
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

        def llm_query_batched(prompts: list[str], model: str | None = None, batch: bool | None = None) -> list[str]:
            """Ask many prompts concurrently; answers in input order, "Error: ..." in a failed slot.
            batch=True sends them through the Message Batches API (half price, minutes to answer)."""
            texts = [str(p) for p in prompts]
            use_api, note = batches.wants_api(run, len(texts), batch)
            if note:
                print(note, file=sys.stderr)
            return run.io.call_sync(batches.send(run, texts, model) if use_api else run.batch(texts, model))

        def rlm_query(prompt: str, context: Any = None) -> str:
            """Start a child RLM on `context` (default: the prompt itself); returns its final answer."""
            return run.child_query(str(prompt), context)

        def rlm_query_batched(prompts: list[str], contexts: list[Any] | None = None) -> list[str]:
            """One child RLM per prompt (with its context), several at once; answers in input order."""
            return run.child_batch(list(prompts), None if contexts is None else list(contexts))

        def FINAL(text: Any) -> None:
            run.answer_value = text
            run.answer.update(content=str(text), ready=True)

        def FINAL_VAR(name: Any) -> None:
            ns = run.executor.namespace
            key = name.strip().strip("\"'") if isinstance(name, str) else ""
            if isinstance(name, str) and key not in ns and (
                    not key.isidentifier() or any(v is name for k, v in ns.items() if k not in run._helpers)):
                # In code, FINAL_VAR(code) or FINAL_VAR(m.group(1)) passes a value, not a name: answer with
                # it. A bare word that names nothing is more likely a misspelt name: that still fails.
                run.answer_value = name
                run.answer.update(content=name, ready=True)
                return
            run.answer.update(content=run.resolve_var(name), ready=True)

        def SHOW_VARS() -> str:
            """The variables your code has made, with their types and sizes."""
            return show_vars(run.executor.namespace, run._helpers)

        return {"context": self.context, "context_0": self.context, "llm_query": llm_query,
                "llm_query_batched": llm_query_batched, "rlm_query": rlm_query,
                "rlm_query_batched": rlm_query_batched, "FINAL": FINAL, "FINAL_VAR": FINAL_VAR,
                "SHOW_VARS": SHOW_VARS, "answer": self.answer}

    @property
    def helper_names(self) -> set[str]:
        """Names the run puts in the REPL that are tools, not data."""
        return set(self._helpers) - {"context", "context_0"}

    def resolve_var(self, name: Any) -> str:
        """The answer FINAL_VAR(name) gives, as text; the object itself is kept as `answer_value`."""
        if not isinstance(name, str):
            self.answer_value = name  # FINAL_VAR(value) is a common slip: answer with the value
            return str(name)
        key = name.strip().strip("\"'")
        ns = self.executor.namespace
        if key not in ns:
            raise NameError(missing_variable(key, ns, self._helpers))
        self.answer_value = ns[key]
        return str(ns[key])

    # --- root turns ---------------------------------------------------------------------------
    async def root_turn(self) -> Completion:
        self.check_cancelled()
        messages, removed, max_tokens = self.fit_root_prompt()
        self.emit(ev.TURN_STARTED, step=self.step, **({"outputs_removed": removed} if removed else {}))
        step = self.step
        live = self.protocol.live(lambda delta: self.emit(ev.TURN_DELTA, step=step, text=delta))
        watched = self.bus.watched  # unwatched, the reply comes whole: a stream's deltas cost CPU for nobody
        tools = ({"tools": self.protocol.tools, "on_tool": live.on_tool if watched else None}
                 if self.protocol.tools else {})
        request = self.clients.root.complete(model=self.model, system=self.system, messages=messages,
                                             max_output_tokens=max_tokens, on_text=live.on_text if watched else None,
                                             cache=self.options.cache, temperature=self.options.temperature,
                                             **tools)
        remaining = self.budget.remaining_time()
        try:
            async with asyncio.timeout(remaining):
                c = await self.steering.guard(self.io.call(request))
        except TimeoutError:
            self.budget.check_time()
            raise
        if not watched and c.text:
            live.on_text(c.text)
        shown, message = live.finish(c), self.protocol.assistant_message(c)
        calls = {"tool_calls": message["tool_calls"], "message": message} if c.tool_calls else {}
        finished = self.emit(ev.TURN_FINISHED, step=step, text=shown, model=c.model, usage=c.usage.to_dict(),
                             latency=round(c.latency, 4), stop_reason=c.stop_reason, **calls)
        # From here on the turn is what the record says: secrets redacted (EventBus.emit).
        c = dataclasses.replace(c, text=self.bus.redactor.text(c.text))
        self.last_reply = finished["text"]
        self.messages.append(finished["message"] if c.tool_calls else {**message, "content": c.text})
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
        code, skipped = drop_retyped_context(code)
        code_to_run, edited = await self.steering.before_cell(PendingCell(self.step, index, code, self.run_id))
        self.check_cancelled()
        self.emit(ev.CELL_STARTED, step=self.step, index=index, code=code_to_run, edited=edited,
                  original_code=code if edited else None)
        timeout = self.options.cell_timeout
        remaining = self.budget.remaining_time()
        if remaining is not None:
            timeout = min(timeout or remaining, max(remaining, 0.01))
        interrupted = False
        noted = interrupts_noted()
        with self._lock:
            self._memo_hits = self._asked = 0
        try:
            outcome = await self.executor.run_cell(code_to_run, timeout=timeout)
        except KeyboardInterrupt as exc:  # executors attach what the cell did before it
            outcome = getattr(exc, "outcome", None) or CellOutcome(error={
                "ename": "KeyboardInterrupt", "evalue": "", "traceback": ["KeyboardInterrupt"]})
            # Only a person's interrupt (or a stop) ends the run; `raise KeyboardInterrupt` in the
            # model's code is an error it reads like any other.
            interrupted = interrupts_noted() != noted or self.steering.stop_requested or self.cancelled is not None
            outcome.interrupted = interrupted
        if self.cancelled:
            outcome.timed_out, outcome.interrupted = False, True
        restored = self.protect()
        self.last_outcome = outcome
        text = self.cell_feedback(index, outcome, restored, timeout, skipped)
        if edited:
            text = prompts.EDITED.format(index=index, code=code_to_run) + "\n" + text
        finished = self.emit(ev.CELL_FINISHED, step=self.step, index=index, code=code_to_run, edited=edited,
                             outputs=_cap_outputs(outcome.outputs), error=outcome.error,
                             duration=round(outcome.duration, 4), timed_out=outcome.timed_out,
                             execution_count=outcome.execution_count, feedback=text)
        self.last_cell = (index, code_to_run, finished["feedback"])
        self.check_cancelled()
        if interrupted:
            raise KeyboardInterrupt
        return finished["feedback"]

    def cell_feedback(self, index: int, outcome: CellOutcome, restored: list[str], timeout: float | None,
                      skipped: list[int] | None = None) -> str:
        body = outputs_to_text(outcome.outputs).strip() or "(no output)"
        head = f"Output of cell {index}:"
        if outcome.timed_out:
            head = (f"Cell {index} timed out after {timeout:g} s and was interrupted. Work on smaller pieces "
                    f"or use llm_query_batched. Output before the timeout:")
        notes = "".join(f"\nNote: your code rebound `{n}`; it has been restored." for n in restored)
        if skipped:
            contiguous = skipped == list(range(skipped[0], skipped[-1] + 1))
            where = (f"line {skipped[0]}" if len(skipped) == 1 else f"lines {skipped[0]}-{skipped[-1]}" if contiguous
                     else "lines " + ", ".join(map(str, skipped)))
            notes += (f"\nNote: {where} of your cell assigned `context` something that is not the input, and did "
                      "not run: `context` already holds the whole input (the preview showed only a part). The rest "
                      "of the cell ran on the real `context`. Never assign to it.")
        if self._memo_hits:
            notes += (f"\nNote: {self._memo_hits} of {self._asked} prompts repeated an earlier prompt and were "
                      "answered once from memory; vary them if you wanted independent samples, or run with "
                      "memoize=False.")
        return f"{head}\n{truncate(body, self.output_limit)}{notes}"

    # --- sub-calls (run on the model I/O loop) ------------------------------------------------
    def _preflight(self, prompt: str, model: str) -> str | None:
        return window.too_long(prompt, model, self.clients.window(model), self.options.max_output_tokens)

    async def subcall(self, kind: str, prompt: str, model: str | None, batch: str | None = None,
                      reserved: bool = False) -> str:
        """One sub-call, sent when the run tree's concurrency limiter has room for it."""
        async with self.budget.limiter.slot():
            return await self._subcall(kind, prompt, model, batch, reserved)

    async def _subcall(self, kind: str, prompt: str, model: str | None, batch: str | None,
                       reserved: bool) -> str:
        model = model or self.sub_model
        sid = uuid.uuid4().hex[:10]
        # The model is sent the prompt as recorded, secrets redacted (generated code can pass it a key).
        prompt = self.emit(ev.SUBCALL_STARTED, step=self.step, id=sid, kind=kind, model=model, prompt=prompt,
                           batch=batch)["prompt"]
        t0, usage, error, response, cached = time.perf_counter(), Usage(), None, "", False
        try:
            if not reserved:
                self.budget.take_subcall()
            with self._lock:
                self.subcalls += 1
            ended = self.end_reason()
            refusal = None if ended else self._preflight(prompt, model)
            if ended:
                error, response = f"not sent: {ended}", f"Error: not sent: {ended}"
            elif refusal:
                error, response = "context_window", refusal
            else:
                response, usage, cached = await self._ask_sub(model, prompt)
                with self._lock:
                    self._asked += 1
                    self._memo_hits += cached
        except ModelError as exc:
            error, response = str(exc), f"Error: {exc}"
        except BudgetExceeded as exc:
            error = str(exc)
            raise
        finally:
            # A lone call raises its failure into the generated code; a batch slot and a refusal for
            # length return their message as the answer instead. Replay repeats whichever happened.
            raised = error is not None and batch is None and error != "context_window"
            done = self.emit(ev.SUBCALL_FINISHED, step=self.step, id=sid, kind=kind, model=model, response=response,
                             usage=usage.to_dict(), latency=round(time.perf_counter() - t0, 4), error=error,
                             child_run_id=None, cached=cached, raised=raised)
        if raised:
            raise ModelError(done["error"])
        return done["response"]

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
                max_output_tokens=max_tokens, cache=False, temperature=self.options.temperature)
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
        bid = uuid.uuid4().hex[:8]

        async def one(p: str) -> str:
            try:
                return await self.subcall("llm", p, model, batch=bid, reserved=True)
            except BudgetExceeded as exc:
                return f"Error: {exc}"

        return list(await asyncio.gather(*(one(p) for p in prompts)))

    def child_query(self, prompt: str, context: Any) -> str:
        """rlm_query: a child run on its own thread and loop; at the depth limit, a plain sub-call.
        If this cell times out or is interrupted while the child works, the child is ended too."""
        if self.depth + 1 >= self.options.max_depth:
            text = prompt if context is None else f"{prompt}\n\n{context}"
            return self.io.call_sync(self.subcall("rlm", text, None))
        self.budget.take_subcall()
        sid = uuid.uuid4().hex[:10]
        child = Run(prompt, prompt if context is None else context, self.options, bus=self.bus, io=self.io,
                    clients=self.clients, steering=self.steering, budget=self.budget, depth=self.depth + 1,
                    parent=self, parent_subcall_id=sid)
        with self._lock:
            self.children.append(child)
        self.emit(ev.SUBCALL_STARTED, step=self.step, id=sid, kind="rlm", model=self.model, prompt=prompt,
                  batch=None, child_run_id=child.run_id)
        t0 = time.perf_counter()

        async def main() -> Any:
            from .loop import run_loop

            child._home = (threading.get_ident(), asyncio.get_running_loop(), asyncio.current_task())  # type: ignore[assignment]
            child.start()
            return await run_loop(child)

        def work() -> Any:
            try:
                return asyncio.run(main())
            finally:
                child.ended.set()

        def abort(exc: BaseException) -> None:
            why = "its parent's cell timed out" if isinstance(exc, CellTimeout) else "its parent was interrupted"
            child.cancel(why)
            child.wait_ended(CHILD_END_WAIT)

        try:
            response, err = run_on_new_thread(work, f"rlm-child-{child.run_id}", abort).answer, None
        except BaseException as exc:
            response, err = "", exc
        with self._lock:
            self.subcalls += 1
        done = self.emit(ev.SUBCALL_FINISHED, step=self.step, id=sid, kind="rlm", model=self.model,
                         response=response, usage={}, latency=round(time.perf_counter() - t0, 4),
                         error=None if err is None else f"{type(err).__name__}: {err}", child_run_id=child.run_id,
                         raised=err is not None)
        if err is not None:
            raise err
        return done["response"]

    def child_batch(self, prompts: list[str], contexts: list[Any] | None) -> list[str]:
        """rlm_query_batched: the children run at once on their own threads (one at a time when every
        cell waits for approval), each charged to the shared budgets like one rlm_query."""
        workers = 1 if self.options.approve else max(1, min(self.options.concurrency, 8))
        return run_children(self.child_query, prompts, contexts, workers)

    # --- ending early ---------------------------------------------------------------------------
    def end_reason(self) -> str | None:
        """Why no more model requests may go out for this run, or None."""
        if self.cancelled:
            return f"the run was stopped ({self.cancelled})"
        if self.steering.stop_requested:
            return "the run was stopped"
        return None

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise asyncio.CancelledError(self.cancelled)

    def cancel(self, reason: str) -> None:
        """End this run and its children soon, from any thread: whatever runs in it is interrupted
        (its cell as by a timeout, its model call cancelled) and it records `stopped` with `reason`."""
        with self._lock:
            if self.cancelled or self.ended.is_set():
                return
            self.cancelled = reason
            children = list(self.children)
        for child in children:
            child.cancel(reason)
        if self._home is not None:
            thread_id, loop, task = self._home
            expire(thread_id, f"cell interrupted: {reason}")
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: the run is over
                loop.call_soon_threadsafe(task.cancel)

    def wait_ended(self, timeout: float) -> bool:
        """Wait for a cancelled child run to record its end. Strikes of this thread's own cell
        timeout keep arriving meanwhile; they must not cut the wait short."""
        deadline = time.monotonic() + timeout
        while not self.ended.is_set() and time.monotonic() < deadline:
            try:
                self.ended.wait(0.05)
            except CellTimeout:
                continue
        return self.ended.is_set()

    def end_children(self, reason: str) -> None:
        """Cancel children still running (a parent's wait for them was cut short) and wait for them."""
        for child in list(self.children):
            child.cancel(reason)
            child.wait_ended(CHILD_END_WAIT)

    def charge(self, model: str, usage: Usage) -> None:
        with self._lock:
            self.usage.setdefault(model, Usage()).add(usage)
        self.budget.record(model, usage)

    # --- answers ------------------------------------------------------------------------------
    def best_partial(self) -> str:
        """What a run that did not finish can still show: the answer being built, else the last reply's
        prose (a FINAL_VAR of a name that never existed is not prose: it is dropped)."""
        if self.answer.get("content"):
            return str(self.answer["content"])
        return _UNRESOLVED_VAR.sub("", strip_code_blocks(self.last_reply)).strip()


#: A line that is only FINAL_VAR(...): by the time best_partial runs it gave no answer.
_UNRESOLVED_VAR = re.compile(r"^[ \t]*FINAL_VAR\([^\n]*\)[ \t]*$", re.MULTILINE | re.IGNORECASE)


def _cap_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    capped = []
    for out in outputs:
        text = out.get("text")
        if isinstance(text, str) and len(text) > RECORD_OUTPUT_LIMIT:
            out = {**out, "text": text[:RECORD_OUTPUT_LIMIT] + f"\n[... {len(text) - RECORD_OUTPUT_LIMIT:,} "
                   "characters not recorded ...]\n"}
        capped.append(out)
    return capped
