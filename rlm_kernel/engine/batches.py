"""Fan-outs through the Anthropic Message Batches API: half the price, answers within minutes (at
most 24 hours) instead of seconds.

`llm_query_batched(prompts, batch=True)` comes here, and so does any fan-out of `batch_threshold`
prompts or more when the run's `batch_api` is "auto". The answers land as for an ordinary batch: in
input order, "Error: ..." in a failed slot, one sub-call per prompt in the run log, memoised, counted
by `max_subcalls`, and charged at the batch price (pricing.batch_key).

A batch, once sent, is never paid for twice. Its id and the custom_id → sub-call mapping are in the
run log (fsynced) as soon as it exists, and its answers go into the run tree's `BatchBook`, filled by
a collector task that polls independently of the code that asked. So a cell that times out or is
interrupted leaves the batch running, and asking the same prompts again (the model retrying, or
`%rlm resume` in a new process, which restarts the collectors from the log) waits for those answers
instead of sending the prompts again. Stop cancels the batch (the SDK's cancel); Pause holds the
answers back until the run continues; progress goes out as `batch_progress` events for the tree."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import events as ev
from .budgets import BudgetExceeded
from .pricing import batch_key
from .steering import POLL, StopRequested
from .types import ModelError, Usage

if TYPE_CHECKING:
    from .clients.anthropic_batches import AnthropicBatches
    from .record import RunLog
    from .run import Run

MODES = ("on", "auto", "off")
#: Consecutive failed progress checks (each after the SDK's retries) before a batch is given up.
RETRIEVE_FAILURES = 3
Key = tuple[str, str]  # (model, prompt)


def batch_mode(value: Any) -> str:
    """The `batch_api` option as one of MODES (True is "on", False is "off"); a clear error otherwise."""
    if isinstance(value, bool):
        return "on" if value else "off"
    mode = str(value).strip().lower()
    if mode not in MODES:
        raise ValueError(f"batch_api must be one of {', '.join(MODES)} (or True/False), not {value!r}")
    return mode


def api_for(run: Run) -> AnthropicBatches | None:
    from .clients.anthropic_batches import batches_for

    return batches_for(run.clients.sub)


def wants_api(run: Run, count: int, batch: bool | None) -> tuple[bool, str | None]:
    """(send these `count` prompts through the Batches API?, a one-line note when asked but not possible)."""
    mode = batch_mode(run.options.batch_api)
    want = (mode == "auto" and count >= run.options.batch_threshold) if batch is None else bool(batch)
    if not want or count == 0:
        return False, None
    if mode == "off":
        return False, "Note: batch_api is off for this run; the prompts ran as ordinary concurrent calls."
    if api_for(run) is None:
        return False, (f"Note: {run.clients.label} has no Message Batches API; the prompts ran as ordinary "
                       "concurrent calls.")
    return True, None


@dataclass
class Answer:
    text: str | None
    usage: Usage = field(default_factory=Usage)
    error: str | None = None
    #: The first sub-call to take a succeeded answer is charged for it; later ones are memo hits.
    claimed: bool = False


class BatchBook:
    """The Message Batches of one run tree (on its Budget): answers by (model, prompt), the batch
    each waits on, and the collector tasks. Used on the model I/O loop only."""

    def __init__(self) -> None:
        self.pending: dict[Key, asyncio.Future[Answer]] = {}
        self.batch_of: dict[Key, str] = {}
        self.collectors: dict[str, asyncio.Task[None]] = {}
        self.canceled: set[str] = set()
        #: api batch id → (the run that sent it, its batch id in events, its step), for closing words.
        self.sent: dict[str, tuple[Run, str, int]] = {}

    @staticmethod
    def of(run: Run) -> BatchBook:
        if run.budget.batches is None:
            run.budget.batches = BatchBook()
        return run.budget.batches

    def expect(self, run: Run, key: Key, api_id: str) -> asyncio.Future[Answer]:
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self.pending[key], self.batch_of[key] = fut, api_id
        if run.options.memoize and key not in run.budget.memo:
            run.budget.memo[key] = text = asyncio.get_running_loop().create_future()
            fut.add_done_callback(lambda f, k=key, t=text: _settle_memo(run, k, t, f))
        return fut

    def start(self, run: Run, api: AnthropicBatches, api_id: str, bid: str, keys: dict[str, Key], step: int) -> None:
        task = asyncio.ensure_future(_collect(run, api, api_id, bid, keys, self, step))
        self.collectors[api_id] = task
        self.sent[api_id] = (run, bid, step)

    async def cancel(self, api: AnthropicBatches, api_id: str) -> None:
        """Cancel one batch on the server (once; a failure to cancel is not the run's failure)."""
        if api_id not in self.canceled:
            self.canceled.add(api_id)
            with contextlib.suppress(ModelError):
                await api.cancel(api_id)

    async def aclose(self, api: AnthropicBatches | None, cancel_remote: bool) -> None:
        """The run ended: stop polling; with `cancel_remote`, cancel batches nobody will collect, and
        say so (batch_finished, status "canceled"), so the tree does not show them processing."""
        for api_id, task in list(self.collectors.items()):
            if not task.done():
                task.cancel()
                if cancel_remote and api is not None:
                    await self.cancel(api, api_id)
                    run, bid, step = self.sent[api_id]
                    run.emit(ev.BATCH_FINISHED, step=step, batch=bid, api_batch_id=api_id, status="canceled",
                             counts=None, error="the run ended before the batch did: canceled")


def _settle_memo(run: Run, key: Key, text: asyncio.Future[str], done: asyncio.Future[Answer]) -> None:
    if text.done():
        return
    ans = None if done.cancelled() else done.result()
    if ans is not None and ans.text is not None:
        text.set_result(ans.text)
    else:
        run.budget.memo.pop(key, None)  # a failure is not remembered: the next ask tries again
        text.set_exception(ModelError(ans.error if ans else "the batch was abandoned"))
        text.exception()


async def send(run: Run, prompts: list[str], model: str | None) -> list[str]:
    """llm_query_batched through the Batches API (on the model I/O loop)."""
    api = api_for(run)
    if api is None:
        raise ModelError(f"{run.clients.label} has no Message Batches API")
    model = model or run.sub_model
    run.budget.take_subcall(len(prompts))
    book, bid, t0 = BatchBook.of(run), uuid.uuid4().hex[:8], time.perf_counter()
    sids = [uuid.uuid4().hex[:10] for _ in prompts]
    for sid, prompt in zip(sids, prompts, strict=True):
        run.emit(ev.SUBCALL_STARTED, step=run.step, id=sid, kind="llm", model=model, prompt=prompt, batch=bid,
                 batch_api=True)
    with run._lock:
        run.subcalls += len(prompts)
    waits: dict[int, asyncio.Future[Any]] = {}
    refused: dict[int, str] = {}
    to_send: dict[Key, int] = {}  # key → index of its first prompt
    for i, prompt in enumerate(prompts):
        key = (model, prompt)
        refusal = run._preflight(prompt, model)
        if refusal:
            refused[i] = refusal
        elif key in book.pending:
            waits[i] = book.pending[key]
        elif run.options.memoize and key in run.budget.memo:
            waits[i] = run.budget.memo[key]
        else:
            to_send.setdefault(key, i)
    failed: asyncio.Future[Any] | None = None
    if to_send:
        cids = {f"r{i}": key for key, i in to_send.items()}
        try:
            api_id = await api.create(model, {cid: key[1] for cid, key in cids.items()},
                                      run.options.max_output_tokens)
        except ModelError as exc:  # every slot says why, as an ordinary batch's failed slots do
            failed = asyncio.get_running_loop().create_future()
            failed.set_result(Answer(None, error=str(exc)))
        else:
            run.emit(ev.BATCH_CREATED, step=run.step, batch=bid, api_batch_id=api_id, model=model, count=len(cids),
                     requests={cid: sids[to_send[key]] for cid, key in cids.items()})
            for key in to_send:
                book.expect(run, key, api_id)
            book.start(run, api, api_id, bid, cids, run.step)
    for i, prompt in enumerate(prompts):
        if i not in refused and i not in waits:
            waits[i] = failed or book.pending[(model, prompt)]
    await _wait_steered(run, waits)
    return _deliver(run, model, prompts, sids, refused, waits, time.perf_counter() - t0)


async def _wait_steered(run: Run, waits: dict[int, asyncio.Future[Any]]) -> None:
    """Wait for every answer, or until Stop (the run's end then cancels the batches); Pause holds
    the answers back until the run continues."""
    left = {f for f in waits.values() if not f.done()}
    while left:
        if run.steering.stop_requested:
            raise StopRequested()
        _, left = await asyncio.wait(left, timeout=POLL)
    await run.steering.wait_while_paused()


def _deliver(run: Run, model: str, prompts: list[str], sids: list[str], refused: dict[int, str],
             waits: dict[int, asyncio.Future[Any]], latency: float) -> list[str]:
    out: list[str] = []
    for i, sid in enumerate(sids):
        usage, cached, error = Usage(), False, None
        if i in refused:
            response, error = refused[i], "context_window"
        else:
            fut = waits[i]
            got = None if fut.cancelled() else (fut.exception() or fut.result())
            if isinstance(got, Answer):
                if got.text is None:
                    error = got.error or "no result"
                    response = f"Error: {error}"
                else:
                    response, cached = got.text, got.claimed
                    if not got.claimed:
                        got.claimed, usage = True, got.usage
                        with contextlib.suppress(BudgetExceeded):  # paid already; the loop ends the run
                            run.charge(batch_key(model), usage)
            elif isinstance(got, str):
                response, cached = got, True
            else:
                error = str(got) if got is not None else "the batch was abandoned"
                response = f"Error: {error}"
        run.emit(ev.SUBCALL_FINISHED, step=run.step, id=sid, kind="llm", model=model, response=response,
                 usage=usage.to_dict(), latency=round(latency, 4), error=error, child_run_id=None, cached=cached,
                 raised=False, batch_api=True)
        out.append(response)
    return out


async def _collect(run: Run, api: AnthropicBatches, api_id: str, bid: str, keys: dict[str, Key],
                   book: BatchBook, step: int) -> None:
    """Poll one batch until it ends, announcing progress, then settle its answers."""
    last: Any = None
    status, counts, error, failures = "in_progress", {}, "collection stopped", 0
    try:
        while True:
            try:
                st = await api.retrieve(api_id)
            except ModelError:  # after the SDK's own retries; a few more polls before giving up
                failures += 1
                if failures >= RETRIEVE_FAILURES:
                    raise
                await asyncio.sleep(run.options.batch_poll)
                continue
            failures, status, counts = 0, st.status, st.counts
            if (status, counts) != last:
                last = (status, counts)
                run.emit(ev.BATCH_PROGRESS, step=step, batch=bid, api_batch_id=api_id, status=status, counts=counts)
            if status == "ended":
                break
            await asyncio.sleep(run.options.batch_poll)
        async for res in api.results(api_id):
            key = keys.get(res.custom_id)
            fut = book.pending.pop(key, None) if key else None
            if fut is not None and not fut.done():
                fut.set_result(Answer(res.text, res.usage, res.error))
        error = "the batch returned no result for this prompt"
    except ModelError as exc:
        error = str(exc)
    finally:
        for key in keys.values():
            fut = book.pending.get(key)
            if fut is not None and book.batch_of.get(key) == api_id:
                book.pending.pop(key, None)
                if not fut.done():
                    fut.set_result(Answer(None, error=error))
        book.collectors.pop(api_id, None)
    run.emit(ev.BATCH_FINISHED, step=step, batch=bid, api_batch_id=api_id, status=status, counts=counts,
             error=None if status == "ended" else error)


async def recover(run: Run, log: RunLog) -> int:
    """Resume: restart the collectors of batches the log shows sent but not collected; how many."""
    finished = {e.get("api_batch_id") for e in log.events if e["type"] == ev.BATCH_FINISHED}
    prompts = {e["id"]: e.get("prompt") for e in log.events if e["type"] == ev.SUBCALL_STARTED}
    api, book, n = api_for(run), BatchBook.of(run), 0
    for e in log.events:
        if e["type"] != ev.BATCH_CREATED or e.get("api_batch_id") in finished or api is None:
            continue
        model, api_id = str(e["model"]), str(e["api_batch_id"])
        keys = {cid: (model, str(prompts[sid])) for cid, sid in (e.get("requests") or {}).items() if sid in prompts}
        for key in keys.values():
            book.expect(run, key, api_id)
        book.start(run, api, api_id, str(e.get("batch")), keys, int(e.get("step") or 0))
        n += 1
    return n
