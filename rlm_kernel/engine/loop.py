"""The RLM loop, readable on one screen. Everything it calls lives in run.py."""

from __future__ import annotations

import asyncio

from . import events as ev
from . import prompts
from .budgets import BudgetExceeded
from .outcome import RLMResult
from .parser import extract_code_blocks, find_final
from .run import Run
from .steering import StopRequested
from .types import ModelError


async def run_loop(run: Run) -> RLMResult:
    """Turn after turn: ask the root model, run its code, feed back what happened, until it answers."""
    try:
        while run.step < run.options.max_iterations:
            run.budget.check()
            await run.steering.at_step_boundary()
            run.step += 1
            reply = (await run.root_turn()).text
            feedback = []
            for index, code in enumerate(extract_code_blocks(reply), start=1):
                feedback.append(await run.run_cell(index, code))
                if run.answer["ready"]:
                    return finish(run, "done", source="code")
                run.budget.check()
            final = find_final(reply)
            if final is not None:
                try:
                    text = final.value if final.kind == "text" else run.resolve_var(final.value)
                    return finish(run, "done", answer=text, source=f"FINAL{'_VAR' if final.kind == 'var' else ''}")
                except NameError as exc:
                    feedback.append(f"Error: {exc}")
            run.budget.check()
            feed(run, "\n\n".join(feedback) if feedback else prompts.NUDGE)
        run.messages[-1]["content"] += "\n\n" + prompts.FORCE_FINAL
        run.step += 1
        final = find_final((await run.root_turn()).text)
        answer = final.value if final and final.kind == "text" else None
        if final and final.kind == "var" and final.value in run.executor.namespace:
            answer = run.resolve_var(final.value)
        return finish(run, "budget", answer=answer, source="forced",
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


def feed(run: Run, text: str) -> None:
    """Send the step's results (plus any notes from a person) as the next user message."""
    for note in run.steering.take_notes():
        run.emit(ev.NOTE, step=run.step, text=note)
        text += "\n\n" + prompts.HUMAN_NOTE.format(text=note)
    run.emit(ev.FEEDBACK, step=run.step, text=text)
    run.messages.append({"role": "user", "content": text})


def finish(run: Run, status: str, *, answer: str | None = None, source: str = "partial",
           reason: str | None = None) -> RLMResult:
    return RLMResult.record(run, status, run.best_partial() if answer is None else answer, source, reason)
