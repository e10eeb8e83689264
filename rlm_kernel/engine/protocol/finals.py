"""Deciding what a FINAL(...) / FINAL_VAR(...) written in a reply means.

The rule (stated in the README too): FINAL_VAR(name) answers with the REPL variable `name`
(FINAL_VAR(expression) is read as FINAL(expression)).
FINAL(x) where x is a Python expression over names that exist in the REPL (a variable, an index,
a call such as `len(rows)`) is evaluated there and answers with its value; anything else is the
literal text of the answer, unless it is a template's placeholder (`FINAL(your answer)`,
`FINAL(answer)`, `FINAL(...)`) or a bare snake_case name that no variable has
(`FINAL(access_code)`; `FINAL("access_code")` is text), which are refused with the last cell's
output quoted. At the step limit nothing is refused. An expression that calls a model helper
(llm_query, rlm_query, ...) is never run as an answer: nobody would have seen what it returned.
An answer in the same reply as code is only taken when it is read from the REPL after that code
ran cleanly, and with the compact prompt (small models) not even then; literal text written next
to code is set aside, since it was written before the code's output existed."""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..compat import existing_variables
from ..parser import FinalAnswer

if TYPE_CHECKING:
    from ..run import Run

#: What small models copy from instructions instead of an answer (compared after `_plain`).
PLACEHOLDERS = frozenset({"answer", "your answer", "the answer", "final answer", "your final answer", "answer here",
                          "the answer itself", "answer itself", "result", "value", "text", "...", "…", ""})
MODEL_HELPERS = ("llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched")
_CALLS_HELPER = re.compile(r"\b(" + "|".join(MODEL_HELPERS) + r")\s*\(")
#: Printed output that is one value (E715-5882, 27409, Paris): offered back as FINAL(value).
_ONE_VALUE = re.compile(r"\S{1,40}")
#: A bare snake_case name (FINAL(access_code)): a variable the model meant, not the answer's text.
_VARIABLE_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+")


@dataclass
class Verdict:
    answer: str | None = None
    #: Why the answer was not taken, and what to do instead (fed back to the model).
    problem: str | None = None


def short(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def judge(run: Run, final: FinalAnswer, *, ran_code: bool, code_failed: bool, how: str,
          form: str = "write {} on a line of its own, outside any code block", forced: bool = False) -> Verdict:
    """The answer `final` gives, or the problem with it. `how` names the way to run code in this
    protocol ("a ```repl block", "the python tool") and `form` the way to answer, for the messages.
    `forced`: the step limit's last answer, which is never set aside for being unseen."""
    written = f"FINAL_VAR({final.value})" if final.kind == "var" else f"FINAL({short(final.raw or final.value)})"
    final = quoted_value(final)
    if final.kind == "text":
        helper = _CALLS_HELPER.search(final.raw or final.value)
        if helper:
            return Verdict(problem=(
                f"{written} was not taken as your answer: FINAL takes the answer itself, and nothing inside it "
                f"runs, so {helper.group(1)} was never called and no model has answered it. Run the call with "
                f"{how} first, e.g. `result = {helper.group(1)}(...)` then `print(result)`; read what it "
                "returns, and answer with FINAL_VAR(result) in a later reply."))
    if not (ran_code or forced) and unseen(run):
        return Verdict(problem=(f"{written} was set aside: {UNSEEN} Look at `context` with {how} first (search it "
                                "for the words of the question and print what is around them), then answer in a "
                                "later reply."))
    if code_failed:
        return Verdict(problem=(f"{written} was set aside: your code in this reply raised an error, so the "
                                "answer cannot rest on it. Fix the error first."))
    if final.kind == "var":
        key = final.value.strip().strip("\"'")
        if not key.isidentifier() and repl_expression(key, run.executor.namespace, run.helper_names) is not None:
            final = FinalAnswer("text", key, key)  # FINAL_VAR(match.group(1)): the rule for FINAL(expression)
        else:
            try:
                value = run.resolve_var(final.value)
            except NameError as exc:
                return Verdict(problem="\n\n".join([f"Error: {exc}", *last_cell_hint(run, form)]))
            return held(run, written, value, ran_code=ran_code, forced=forced) or Verdict(answer=value)
    expr = repl_expression(final.raw, run.executor.namespace, run.helper_names)
    if expr is not None:
        try:
            value = eval(compile(expr, "<FINAL>", "eval"), run.executor.namespace)
        except Exception as exc:
            return Verdict(problem=(f"{written} names REPL variables, so it was evaluated there, and that "
                                    f"raised {type(exc).__name__}: {exc}. Check the expression, or answer with "
                                    "FINAL_VAR(name) of a variable that holds the answer."))
        run.answer_value = value
        return held(run, written, str(value), ran_code=ran_code, forced=forced) or Verdict(answer=str(value))
    if final.kind == "text" and is_placeholder(final.value):
        return Verdict(problem="\n\n".join([
            f"{written} is a placeholder, not an answer, so the run goes on. Put the answer itself inside "
            "FINAL(...).", *last_cell_hint(run, form)]))
    name = (final.raw or final.value).strip()  # raw: FINAL("access_code") is quoted, so it is text
    if final.kind == "text" and _VARIABLE_LIKE.fullmatch(name) and name not in run.executor.namespace:
        have = existing_variables(run.executor.namespace, run.helper_names)
        return Verdict(problem="\n\n".join([
            f"{written} was not taken as your answer: `{name}` reads like a variable's name, but there is no "
            f"variable named {name!r}. {have} If `{name}` is the answer's own text, write "
            f'FINAL("{name}").', *last_cell_hint(run, form)]))
    if ran_code and seen_before(run, final.value):
        return Verdict(answer=final.value)  # written after output that already showed it, a step ago
    if ran_code:
        return Verdict(problem=(
            f"{written} was set aside: it came in the same reply as code, before that code's output existed. "
            "The output is above: check that it supports your answer, then give the final answer again in a "
            "reply of its own."))
    return Verdict(answer=final.value)


def held(run: Run, written: str, value: str, *, ran_code: bool, forced: bool) -> Verdict | None:
    """With the compact prompt (small models), an answer read from the REPL in the same reply as the
    code that made it is set aside until the model has seen that code's output: Qwen2.5-Coder-1.5B
    copied the prompt's counting example with its FINAL_VAR(count) and answered a count for a
    number (eval_local/fences-v7). Strong models, on the full prompt, keep the saved turn."""
    if forced or not ran_code or seen_before(run, value) or not small_model_prompt(run):
        return None
    from ..run import NO_VALUE

    run.answer_value = NO_VALUE
    return Verdict(problem=(
        f"{written} was set aside: it came in the same reply as the code, before you saw that code's output "
        f"(above). It would answer {short(value, 80)!r}. Check that this answers the question "
        f"({short(run.question, 200)}). If it does, give the final answer in a reply of its own; if not, write "
        "new code."))


def small_model_prompt(run: Run) -> bool:
    from .. import prompts

    return prompts.variant_for(run.options.prompt, run.clients.window(run.model)) == "compact"


#: Why an answer before any cell ran is set aside (both protocols say it).
UNSEEN = ("no code has run yet in this run and the preview showed only part of `context`, so the answer rests "
          "on nothing you have seen.")


def unseen(run: Run) -> bool:
    """Whether an answer now would rest on nothing the model saw: no cell has run, the preview left
    part of `context` out, and this is not a follow-up (whose earlier cells the model did see)."""
    return run.last_cell is None and not run.preview_whole and not run.earlier


def _plain(text: str) -> str:
    return " ".join(text.strip().strip("\"'`<>[]{}*").replace("_", " ").lower().split())


def is_placeholder(value: str) -> bool:
    return _plain(value) in PLACEHOLDERS


def last_cell_hint(run: Run, form: str) -> list[str]:
    """What the latest cell showed, and a ready-made way to answer with it: FINAL_VAR of the last
    variable it made, else FINAL of what it printed when that is one value (a code, a number; never
    a slice of prose, which Qwen then answered with). `form` says how an answer is written."""
    if run.last_cell is None:
        return []
    index, code, shown = run.last_cell
    made = [n for n in assigned_names(code) if n in run.executor.namespace and n not in run.helper_names]
    body = shown.split("\n", 1)[1] if shown.startswith("Output of cell") and "\n" in shown else shown
    hint = f"Your last cell (cell {index}) showed: {short(body, 300)}"
    printed = body.strip()
    if made:
        hint += (f"\nIf that answers the question, {form.format(f'FINAL_VAR({made[-1]})')} "
                 f"({made[-1]} is a variable that cell made).")
    elif _ONE_VALUE.fullmatch(printed):  # never "(no output)": it has a space
        hint += f"\nIf that is the answer, {form.format(f'FINAL({printed})')}."
    return [hint]


def assigned_names(code: str) -> list[str]:
    """Top-level names `code` assigns, in order (the variables a cell made)."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return []
    names: list[str] = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        for t in targets:
            for n in ast.walk(t) if t is not None else []:
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in names:
                    names.append(n.id)
    return names


def repl_expression(raw: str, namespace: dict[str, Any], helpers: set[str]) -> ast.Expression | None:
    """`raw` parsed as an expression when every name it reads exists (in the REPL or as a builtin)
    and at least one is data the REPL holds (not a helper); else None (literal text)."""
    try:
        tree = ast.parse(raw.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return None
    loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    loads -= bound
    data = {n for n in loads if n in namespace and n not in helpers}
    if not data or any(n not in namespace and not hasattr(builtins, n) for n in loads):
        return None
    return tree


def quoted_value(final: FinalAnswer) -> FinalAnswer:
    """FINAL_VAR('F291-7189') - a quoted value that cannot be a name - is FINAL('F291-7189')."""
    raw = (final.raw or "").strip()
    if final.kind == "var" and raw[:1] in "\"'" and raw and not final.value.strip().isidentifier():
        return FinalAnswer("text", final.value.strip(), raw)
    return final


def seen_before(run: Run, answer: str) -> bool:
    """Whether `answer` (a distinctive one: four characters or more) stood in output the model was
    shown before this reply. Such an answer next to code rests on that output, not on a guess."""
    text = answer.strip()
    if len(text) < 4 or "\n" in text:
        return False
    pattern = re.compile(r"(?<![\w-])" + re.escape(text) + r"(?![\w-])")
    for m in run.messages[1:]:  # what came back from cells; the first message is the question and preview
        if m.get("role") == "user":
            shown = [str(m.get("content", ""))] + [str(r.get("content", "")) for r in m.get("tool_results") or []]
            if any(pattern.search(part) for part in shown):
                return True
    return False


def lenient_answer(run: Run, final: FinalAnswer | None) -> str | None:
    """The forced last answer: whatever the FINAL can give, without setting anything aside."""
    if final is None:
        return None
    final = quoted_value(final)
    if final.kind == "var":
        return run.resolve_var(final.value) if final.value.strip("\"' ") in run.executor.namespace else None
    verdict = judge(run, final, ran_code=False, code_failed=False, how="code", forced=True)
    if verdict.answer is not None:
        return verdict.answer
    return None if _CALLS_HELPER.search(final.raw or final.value) else final.value
