"""The paper's protocol: code in ```repl blocks, the answer as FINAL(...) / FINAL_VAR(...) in text.

One reply is read (recognize.py), its code runs in order, and then its FINAL is judged
(finals.py): an answer written next to code that had not run yet is set aside and the model is
told why. Mistakes that leave a run going round in circles get feedback naming them: a FINAL in
a comment or a string, a FINAL that calls a helper, a reply sent again unchanged."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .. import prompts
from ..parser import find_final
from ..types import Completion
from .base import Protocol, Step
from .finals import judge, last_cell_hint, lenient_answer, short
from .recognize import Reading, hidden_finals, only_comments, read_reply

if TYPE_CHECKING:
    from ..run import Run

FORMS = {"invoke": "<invoke> tool call", "tool_call": "[TOOL_CALL] block", "json": "tool call written as JSON text",
         "bare": "untagged ``` block", "reply": "reply (Python with no block around it)"}

#: How a traceback names the cell it ran in (`<rlm-cell-3>` headless, `Cell rlm[3]` in the kernel): a
#: new name each time, so a repeated reply's output compares equal only without it.
_CELL_NAME = re.compile(r"<rlm-cell-\d+>|Cell rlm\[\d+\]")


class FencedProtocol(Protocol):
    name = "fences"
    how = "a ```repl block"

    def __init__(self, *, inside_tools: bool = False) -> None:
        #: Reading the text of a tool-use reply that called no tool: the same rules, tool wording.
        self.inside_tools = inside_tools
        self._last_reply: str | None = None
        self._last_outputs: str | None = None

    async def act(self, run: Run, c: Completion) -> Step:
        reading = read_reply(c.text, finished=c.stop_reason not in ("max_tokens", "length"))
        outputs: list[str] = []
        notes: list[str] = []
        failed = False
        for index, code in enumerate(reading.codes, start=1):
            out = await run.run_cell(index, code.source)
            if run.answer["ready"]:
                return Step(answer=str(run.answer["content"]), source="code")
            failed = failed or bool(run.last_outcome is not None and run.last_outcome.error)
            if code.form == "unclosed":
                out = f"(Ran your last block as cell {index} although its closing ``` was missing: close it.)\n{out}"
            elif code.form != "fence":
                out = f"(Ran the code of your {FORMS[code.form]} as cell {index}. {self.hint()})\n{out}"
            outputs.append(out)
            notes += self.code_mistakes(index, code.source)
            run.budget.check()
        if reading.dropped_code:  # only then is there something to explain (a bare note confused Qwen)
            notes.append(self.invented(reading))
        if reading.final is not None:
            verdict = judge(run, reading.final, ran_code=bool(reading.codes), code_failed=failed, how=self.how,
                            form=self.answer_form("{}"))
            if verdict.answer is not None:
                return Step(answer=verdict.answer, source="FINAL_VAR" if reading.final.kind == "var" else "FINAL")
            notes.append(verdict.problem or "")
        elif not reading.codes:
            notes.append(self.nudge(run, reading))
        key, out_key = " ".join(c.text.split()), _CELL_NAME.sub("<cell>", "\n".join(outputs))
        repeated = key == self._last_reply and out_key == self._last_outputs
        self._last_reply, self._last_outputs = key, out_key
        if repeated:
            return Step(feedback=self.repeated(reading, notes, outputs, failed=failed))
        return Step(feedback="\n\n".join(outputs + notes))

    # --- feedback that names the mistake ------------------------------------------------------
    def hint(self) -> str:
        return ("Next time, call the python tool." if self.inside_tools
                else "Tool calls are not available here: write code in ```repl blocks.")

    def answer_form(self, call: str) -> str:
        if self.inside_tools:
            return "call the answer tool (text, or the name of a variable)"
        return f"write {call} on a line of its own, outside any code block"

    def code_mistakes(self, index: int, code: str) -> list[str]:
        notes = []
        for where, call in hidden_finals(code):
            notes.append(f"Note: `{call}` in cell {index} is inside a {where}, so it did nothing and no answer "
                         f"was given. To answer, {self.answer_form(call)}.")
        if not notes and only_comments(code):
            notes.append(f"Note: cell {index} holds only comments, so nothing ran.")
        return notes

    def nudge(self, run: Run, reading: Reading) -> str:
        found = f" (it has {'; '.join(reading.problems)})" if reading.problems else ""
        text = (prompts.TOOLS_NUDGE if self.inside_tools else prompts.FENCES_NUDGE).format(found=found)
        return "\n\n".join([text, *last_cell_hint(run, self.answer_form("{}"))])

    def invented(self, reading: Reading) -> str:
        """Say which code did not run: it came after output the model wrote itself."""
        blocks = "the code block" if reading.dropped_code == 1 else f"the {reading.dropped_code} code blocks"
        return (f"Note: {blocks} after `{short(reading.invented or '', 60)}` in your reply did not run: it came after "
                "output you wrote yourself. The real output is above.")

    def repeated(self, reading: Reading, notes: list[str], outputs: list[str], *, failed: bool = False) -> str:
        lines = ["You sent the same reply as in your previous step, and again it changed nothing."]
        if failed:
            lines.append("Its code raised the same error as before (below): unchanged, it will fail the same way "
                         "every time. Change the line the traceback points to, or print what that line works on "
                         "to see why it fails.")
        if notes:
            lines += [n.removeprefix("Note: ") for n in notes]
        elif failed:
            pass  # said above; "the same output as before" would read as if it had worked
        elif reading.codes and all(o.rstrip().endswith("(no output)") for o in outputs):
            lines.append("Its code ran again and printed nothing. Print the values you need to see "
                         "(print(x)), or give your final answer.")
        else:
            lines.append("Its code printed the same output as before (below); running it again tells you "
                         "nothing new. Use that output: give your final answer if it answers the question, "
                         "or write different code.")
        return "\n\n".join(lines + [o for o in outputs if not o.rstrip().endswith("(no output)")])

    def forced_answer(self, run: Run, c: Completion) -> str | None:
        reading = read_reply(c.text)
        return lenient_answer(run, reading.final or find_final(c.text, in_fences=True))
