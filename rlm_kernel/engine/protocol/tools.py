"""Native tool use: the root model runs code by calling a `python` tool (code in, the cell's output
out) and ends by calling an `answer` tool (text, or the name of a REPL variable).

An answer called in the same turn as python is set aside, like a FINAL next to unrun code. A
reply that calls no tool is read with the fenced protocol's rules, so code written as text still
runs and the model is reminded to use the tools."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from ..types import Completion, ToolCall, ToolSpec
from .base import Protocol, Step
from .fences import FencedProtocol
from .finals import UNSEEN, Verdict, lenient_answer, unseen
from .recognize import read_reply

if TYPE_CHECKING:
    from ..run import Run

PYTHON = ToolSpec(
    "python",
    "Run Python code in the persistent REPL that holds `context` and the helpers (llm_query, "
    "llm_query_batched, rlm_query, SHOW_VARS). Returns what the code printed and the value of its last "
    "line, or its traceback. Variables persist between calls.",
    {"type": "object", "properties": {"code": {"type": "string", "description": "Python source to run."}},
     "required": ["code"]},
)
ANSWER = ToolSpec(
    "answer",
    "Give the final answer and end the run: `text` is the answer itself, or `variable` names the REPL "
    "variable that holds it. Call it on its own, once you have seen the output the answer rests on.",
    {"type": "object", "properties": {
        "text": {"type": "string", "description": "The final answer."},
        "variable": {"type": "string", "description": "Name of a REPL variable holding the final answer."}}},
)


class ToolProtocol(Protocol):
    name = "tools"
    how = "the python tool"
    tools: ClassVar[list[ToolSpec]] = [PYTHON, ANSWER]

    def __init__(self) -> None:
        self.text_reader = FencedProtocol(inside_tools=True)
        self._last_python: list[tuple[str, str]] | None = None  # (code, result) of the previous turn

    async def act(self, run: Run, c: Completion) -> Step:
        if not c.tool_calls:
            return await self.text_reader.act(run, c)
        has_python = any(call.name == PYTHON.name for call in c.tool_calls)
        cut = c.stop_reason in ("max_tokens", "length")
        results: list[dict[str, Any]] = []
        ran: list[tuple[str, str]] = []
        index = 0
        for call in c.tool_calls:
            if call.name == PYTHON.name:
                code = call.input.get("code")
                if not isinstance(code, str) or not code.strip() or (cut and call is c.tool_calls[-1]):
                    why = ("Your reply was cut off at the output-token limit while writing this call, so its code "
                           "did not run. Send shorter code." if cut else
                           'The python tool needs {"code": "<Python source>"}; nothing ran.')
                    results.append(_error(call, why))
                    continue
                index += 1
                out = await run.run_cell(index, code)
                if run.answer["ready"]:
                    return Step(answer=str(run.answer["content"]), source="code")
                notes = self.text_reader.code_mistakes(index, code)
                ran.append((code.strip(), out))
                if self._last_python and ran[-1] in self._last_python:
                    notes.append("Note: this is the same code as in your previous step, with the same output. "
                                 "Running it again tells you nothing new: use the output, or try other code.")
                failed = bool(run.last_outcome is not None and run.last_outcome.error)
                results.append({"id": call.id, "content": "\n\n".join([out, *notes]), "is_error": failed})
                run.budget.check()
            elif call.name == ANSWER.name:
                if has_python:
                    results.append(_error(call, "Set aside: you called answer in the same turn as python, before "
                                                "you could see its output. Read the output, then call answer "
                                                "again on its own."))
                    continue
                if unseen(run):
                    results.append(_error(call, f"Set aside: {UNSEEN} Call python to look at `context` first."))
                    continue
                verdict = self.answer_from(run, call)
                if verdict.answer is not None:
                    return Step(answer=verdict.answer, source="answer")
                results.append(_error(call, verdict.problem or ""))
            else:
                results.append(_error(call, f"There is no tool named {call.name!r}. The tools are python (run "
                                            "code) and answer (give the final answer)."))
        self._last_python = ran
        return Step(results=results)

    def answer_from(self, run: Run, call: ToolCall) -> Verdict:
        variable, text = call.input.get("variable"), call.input.get("text")
        if isinstance(variable, str) and variable.strip():
            try:
                return Verdict(answer=run.resolve_var(variable))
            except NameError as exc:
                return Verdict(problem=f"Error: {exc}")
        if text is not None and str(text).strip():
            return Verdict(answer=str(text))
        return Verdict(problem='The answer tool needs {"text": "<the answer>"} or {"variable": "<name>"}.')

    def forced_answer(self, run: Run, c: Completion) -> str | None:
        for call in c.tool_calls:
            if call.name == ANSWER.name:
                verdict = self.answer_from(run, call)
                if verdict.answer is not None:
                    return verdict.answer
        return lenient_answer(run, read_reply(c.text).final) if c.text else None


def _error(call: ToolCall, text: str) -> dict[str, Any]:
    return {"id": call.id, "content": text, "is_error": True}
