"""The RLM loop, readable on one screen. Everything it calls lives in run.py."""

from __future__ import annotations

import asyncio

from . import events as ev
from . import prompts
from .budgets import BudgetExceeded
from .outcome import RLMResult
from .protocol import Step
from .run import Run
from .steering import StopRequested
from .types import ModelError


async def run_loop(run: Run) -> RLMResult:
    """Turn after turn: ask the root model, run its code, feed back what happened, until it answers.
    How code is written and answers are given (fences or tool calls) is `run.protocol`'s business."""
    try:
        while run.step < run.options.max_iterations:
            run.budget.check()
            await run.steering.at_step_boundary()
            run.step += 1
            step = await run.protocol.act(run, await run.root_turn())
            if step.answer is not None:
                return finish(run, "done", answer=step.answer, source=step.source)
            run.budget.check()
            feed(run, step)
        last = run.messages[-1]
        last["content"] = (last["content"] + "\n\n" + prompts.FORCE_FINAL[run.protocol.name]).strip()
        run.step += 1
        answer = run.protocol.forced_answer(run, await run.root_turn())
        return finish(run, "budget", answer=answer, source="forced" if answer is not None else "partial",
                      reason=f"max_iterations ({run.options.max_iterations}) reached")
    except BudgetExceeded as exc:
        run.emit(ev.BUDGET_HIT, kind=exc.kind, limit=exc.limit, value=exc.value)
        return finish(run, "budget", reason=str(exc))
    except StopRequested:
        return finish(run, "stopped", reason="stopped by user")
    except ModelError as exc:
        return finish(run, "failed", reason=str(exc))
    except (KeyboardInterrupt, asyncio.CancelledError):
        finish(run, "stopped", reason=run.cancelled or "interrupted")
        raise


def feed(run: Run, step: Step) -> None:
    """Send the step's results (plus any notes from a person) as the next user message."""
    text = step.feedback
    for note in run.steering.take_notes():
        run.emit(ev.NOTE, step=run.step, text=note)
        text = (text + "\n\n" + prompts.HUMAN_NOTE.format(text=note)).strip()
    message = run.protocol.user_message(step, text)
    shown = "\n\n".join([r["content"] for r in step.results] + ([text] if text else []))
    sent = run.emit(ev.FEEDBACK, step=run.step, text=shown, **({"message": message} if step.results else {}))
    # What the model is sent is what was recorded: redacted (tool results travel inside the message).
    run.messages.append(sent["message"] if step.results else {**message, "content": sent["text"]})


def finish(run: Run, status: str, *, answer: str | None = None, source: str = "partial",
           reason: str | None = None) -> RLMResult:
    return RLMResult.record(run, status, run.best_partial() if answer is None else answer, source, reason)
