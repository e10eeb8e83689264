"""What the root model is told. Written for this project.

Two variants per protocol: `full` (a worked example of inspect -> filter -> chunk -> batched
sub-calls -> combine) and `compact` (for small local models, window <= 16k tokens: the rules
and two short example exchanges, one finding a value, one counting). Sizes per sub-call come
from the sub-model's real window. `legacy` is the 0.1 prompt, kept for old-vs-new comparisons.
The system prompt is the first thing in every root request, so it is cached (the Anthropic
client puts a breakpoint on it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run

VARIANTS = ("auto", "full", "compact", "legacy")
#: Root windows up to this many tokens get the compact prompt under `prompt="auto"`.
COMPACT_WINDOW = 16_384
#: Characters per token assumed when turning a window into a size per sub-call (English, code).
CHARS_PER_TOKEN = 3
#: Largest piece worth handing one sub-call, even to a model with a huge window: reading quality
#: drops long before the window ends.
MAX_CHUNK_CHARS = 300_000
#: Size suggested when the sub-model's window is not known.
UNKNOWN_WINDOW_CHUNK = 40_000

LEGACY = """\
You answer a question about a large input that you cannot see directly. The input is loaded in a \
persistent Python REPL as the variable `context`. You work by writing Python code in fenced blocks \
tagged ```repl (or ```python). After each reply, every block runs in order and you see what it printed, \
displayed or raised, truncated to about {output_limit:,} characters per step. Variables persist across steps.

Available in the REPL:
- `context`: the input (described below). Inspect it with code: slice, search, split, count.
- `llm_query(prompt, model=None) -> str`: ask a language model one question; it can read about \
{sub_window:,} tokens, so pass it chunks of `context`, not all of it.
- `llm_query_batched(prompts, model=None) -> list[str]`: many prompts concurrently, answers in the same \
order; a failed prompt gives a string starting with "Error:" in its slot. Prefer this over a loop of llm_query.
- `rlm_query(prompt, context=None) -> str`: start a child of yourself with its own REPL on `context` \
(a sub-task too large for one llm_query).
- `print()` to see values; keep printed output small, the rest of the output is cut.

Strategy: look at the structure first, then split the input, query sub-models on pieces, and combine \
their answers in code. Check your answer before you give it.

When you are done, give the final answer in one of these ways:
- a line starting with FINAL(your answer) outside code blocks, or FINAL_VAR(variable_name) to answer \
with the value of a REPL variable;
- or, in code: `FINAL(text)`, `FINAL_VAR("name")`, or `answer["content"] = ...; answer["ready"] = True`.
Do not give a final answer in the same reply as code whose output you have not seen yet, unless the \
code itself sets the answer."""

# --- the full prompt ------------------------------------------------------------------------
FULL = """\
You are answering a question about an input too big to read in one go. It is stored in a Python \
REPL as the variable `context`; you only ever see what your code prints.

{how_to_run} Each result shows at most about {output_limit:,} characters; \
longer output is cut in the middle, so print counts, lengths and short samples, never whole chunks. \
Variables persist from step to step. Never assign to `context` (it is your only copy of the input) \
and never make up sample data: work on the real `context`.

Do things, don't describe them. A reply that only says what you are about to do wastes a step: \
{act_now}

In the REPL:
- `llm_query(prompt) -> str` asks a sub-model one question. {sub_size}
- `llm_query_batched(prompts) -> list[str]` asks many at once and returns the answers in order (a failed \
prompt's slot starts with "Error:"). Use it instead of calling llm_query in a loop; send at most \
{batch_cap} prompts per call. Only when the question asks to save cost on a very large fan-out, \
`llm_query_batched(prompts, batch=True)` sends them at half the price, with answers in minutes.
- `rlm_query(prompt, context=None)` and `rlm_query_batched(prompts, contexts=None)` hand a sub-task to a \
helper that has a REPL of its own, for parts that need several steps.
- `SHOW_VARS()` lists the variables you have made.

A good order of work:
1. Inspect: the type and length of `context`, and a small sample.
2. Filter with code first. Regular expressions, `in`, `split` and counting are exact, fast and free; \
ask a model only about what code cannot decide.
3. Cut what is left into pieces of at most {chunk_chars:,} characters.
4. Ask about every piece with one llm_query_batched call, spelling out the question in each prompt.
5. Combine the answers in code (count, merge, deduplicate), or with one last llm_query.

For example, asked how many of the support tickets from March 2024 complain about billing:
{example}

Answering: first put the answer in a variable and print it. Once you have seen it, answer in a later \
step with {answer_var}. {answer_text} An answer given in the same reply as code that has not run yet \
is set aside, because it cannot rest on that code's output."""

#: The worked example's two cells, shared by both protocols ({size}: characters per sub-call).
EXAMPLE_LOOK = "print(type(context).__name__, len(context))\nprint(context[:400])"
EXAMPLE_WORK = """\
march = [t for t in context.splitlines() if t.startswith("2024-03")]
pieces, piece = [], ""
for t in march:  # whole tickets, at most {size} characters a piece
    if len(piece) + len(t) > {size}:
        pieces.append(piece)
        piece = ""
    piece += t + "\\n"
pieces.append(piece)
asks = ["Each line is a support ticket. List the numbers (#...) of the tickets that complain about "
        "billing, one per line, or NONE.\\n\\n" + p for p in pieces]
replies = llm_query_batched(asks)
billing = sorted({{w for r in replies for w in r.split() if w.startswith("#")}})
count = len(billing)
print(len(march), "tickets in March;", count, "about billing:", billing[:5])"""
EXAMPLE = """\
{look}
(the output shows one ticket per line, such as "2024-03-02 | #4411 | I was charged twice")
{work}
(the output shows the count; the next {turn} is only)
{answer}"""

FULL_FENCES = {
    "how_to_run": "Write code in blocks tagged ```repl. Every block in your reply runs, in order, and the next "
                  "message shows what each one printed or raised.",
    "act_now": "put the code in that same reply.",
    "answer_var": "FINAL_VAR(name) on a line of its own, outside any block",
    "answer_text": "FINAL(...) on its own line, with the answer itself inside, gives the answer as text.",
}

FULL_TOOLS = {
    "how_to_run": "Run code by calling the `python` tool; it returns what the code printed or raised. You may "
                  "call it several times in one reply.",
    "act_now": "call the python tool in that same reply.",
    "answer_var": 'the `answer` tool and {"variable": "name"}',
    "answer_text": 'The answer tool also takes {"text": "..."}. Call it on its own, never next to python.',
}


def example(protocol: str, size: int) -> str:
    """The worked example, in the protocol's own form."""
    work = EXAMPLE_WORK.format(size=size)
    if protocol == "tools":
        def call(code: str) -> str:
            return "python:\n" + "\n".join("    " + line for line in code.splitlines())

        return EXAMPLE.format(look=call(EXAMPLE_LOOK), work=call(work), turn="turn",
                              answer='answer: {"variable": "count"}')
    return EXAMPLE.format(look=f"```repl\n{EXAMPLE_LOOK}\n```", work=f"```repl\n{work}\n```", turn="reply",
                          answer="FINAL_VAR(count)")


# --- the compact prompt ---------------------------------------------------------------------
COMPACT = """\
The input is in the Python variable `context`. You cannot see it; you see only what your code prints.
Rules:
- {how_to_run}
- Use the real `context`. Never assign to `context`; never invent sample data.
- Print little: lengths, counts, short slices (at most ~{output_limit:,} characters are shown).
- Find and count with code first: `i = context.find("word"); print(context[i-100:i+200])`, \
`re.findall`, `sum(...)`. Ask a model only what code cannot decide.
- llm_query(prompt) asks a helper model; give it at most {chunk_chars:,} characters. \
llm_query_batched(prompts) asks many at once.
- Run code now; do not describe a plan.
- Answer only after you have seen the output: {answer_rule}

Example exchanges:
{example}"""

COMPACT_FENCES = {
    "how_to_run": "Write code in a ```repl block. It runs, then you see its output.",
    "answer_rule": "write FINAL_VAR(name of the variable), or FINAL(...) with the answer itself inside, on its "
                   "own line, outside code blocks.",
    "example": """\
Question: what is the order number of Ada Park?
First reply, all of it:
```repl
i = context.find("Ada Park")
print(context[max(0, i - 100):i + 200])
```
Once its output (say "... Ada Park placed order 55121 on May 2 ...") has come back, the next reply, all of it:
FINAL(55121)

Question: how many lines mention "error"?
First reply, all of it:
```repl
lines = context.splitlines()
count = sum("error" in line.lower() for line in lines)
print(len(lines), count)
```
Once its output (say 120 7) has come back, the next reply, all of it:
FINAL_VAR(count)""",
}

COMPACT_TOOLS = {
    "how_to_run": "Call the python tool with your code. It runs, then you see its output.",
    "answer_rule": 'call the answer tool with {"variable": "name"} or {"text": "..."}, on its own.',
    "example": """\
Question: what is the order number of Ada Park?
First, call python: i = context.find("Ada Park"); print(context[max(0, i - 100):i + 200])
Once its result (say "... Ada Park placed order 55121 on May 2 ...") has come back, call answer: {"text": "55121"}

Question: how many lines mention "error"?
First, call python: lines = context.splitlines(); count = sum("error" in l.lower() for l in lines); \
print(len(lines), count)
Once its result (say 120 7) has come back, call answer: {"variable": "count"}""",
}

FIRST_USER = """\
Question: {question}

The variable `context` holds the input:
{context_summary}

{start}"""

START = {
    "fences": "Start by looking at `context` with code in a ```repl block. Do not answer before you have seen it.",
    "tools": "Start by calling the python tool to look at `context`. Do not answer before you have seen it.",
}

FENCES_NUDGE = """\
Your reply has no code that I could run and no final answer{found}. To run code, put it in a block tagged repl:
```repl
print(len(context), context[:300])
```
To answer, write FINAL(...) with the answer itself inside, on a line of its own outside any block, or \
FINAL_VAR(name) to answer with a variable."""

TOOLS_NUDGE = """\
Your reply called no tool and has no code that I could run{found}. To run code, call the python tool with \
{{"code": "<Python source>"}}. To answer, call the answer tool with {{"text": "..."}} or {{"variable": "name"}}."""

FORCE_FINAL = {
    "fences": "You have reached the step limit. Give your best final answer now, with FINAL(...) on its own "
              "line, based on what you have found so far. Do not write more code.",
    "tools": "You have reached the step limit. Call the answer tool now with your best answer, based on what "
             "you have found so far. Do not run more code.",
}

EDITED = "Note: a person edited cell {index} before it ran. The code that actually ran was:\n```repl\n{code}\n```"

HUMAN_NOTE = "Note from the person watching this run: {text}"


def chunk_chars(sub_window: int | None, max_output_tokens: int) -> int:
    """Characters one sub-call prompt may hold: the sub-model's window less room for its answer,
    at CHARS_PER_TOKEN, with a margin for the instructions around the chunk; rounded down."""
    if not sub_window:
        return UNKNOWN_WINDOW_CHUNK
    room = sub_window - min(max_output_tokens, sub_window // 4)
    chars = min(int(room * CHARS_PER_TOKEN * 0.85), MAX_CHUNK_CHARS)
    step = 1000 if chars >= 10_000 else 100
    return max(step, chars // step * step)


def check(requested: str | None, protocol: str) -> None:
    """Raise ConfigError now, before a run starts, for a prompt that cannot be used."""
    if variant_for(requested, None) == "legacy" and protocol != "fences":
        from .clientset import ConfigError

        raise ConfigError("prompt 'legacy' is the fenced protocol's old prompt: use it with protocol='fences'")


def variant_for(requested: str | None, root_window: int | None) -> str:
    name = (requested or "auto").strip().lower()
    if name not in VARIANTS:
        from .clientset import ConfigError

        raise ConfigError(f"unknown prompt {requested!r}; use one of: {', '.join(VARIANTS)}")
    if name == "auto":
        return "compact" if root_window is not None and root_window <= COMPACT_WINDOW else "full"
    return name


def render(variant: str, protocol: str, *, output_limit: int, sub_window: int | None,
           max_output_tokens: int = 16_000, batch_cap: int = 16) -> str:
    """The system prompt of one variant ("full", "compact", "legacy") for one protocol."""
    size = chunk_chars(sub_window, max_output_tokens)
    if variant == "legacy":
        if protocol != "fences":
            from .clientset import ConfigError

            raise ConfigError("prompt 'legacy' is the fenced protocol's old prompt: use it with protocol='fences'")
        return LEGACY.format(output_limit=output_limit, sub_window=sub_window or 100_000)
    tools = protocol == "tools"
    if variant == "compact":
        parts = COMPACT_TOOLS if tools else COMPACT_FENCES
        return COMPACT.format(output_limit=output_limit, chunk_chars=size, **parts)
    parts = dict(FULL_TOOLS if tools else FULL_FENCES, example=example(protocol, size))
    if sub_window:
        sub_size = (f"It reads up to {sub_window:,} tokens, so keep each prompt under about {size:,} "
                    "characters, instructions included.")
    else:
        sub_size = f"Keep each prompt under about {size:,} characters, instructions included."
    return FULL.format(output_limit=output_limit, chunk_chars=size, batch_cap=batch_cap, sub_size=sub_size,
                       **parts)


def system_prompt(run: Run, protocol: str) -> str:
    """The system prompt for `run`: its `prompt` option, its models' windows and its limits."""
    variant = variant_for(run.options.prompt, run.clients.window(run.model))
    return render(variant, protocol, output_limit=run.output_limit, sub_window=run.clients.sub_window(),
                  max_output_tokens=run.options.max_output_tokens,
                  batch_cap=max(1, min(run.options.concurrency, 16)))


def first_user(question: str, context_summary: str, protocol: str = "fences") -> str:
    return FIRST_USER.format(question=question, context_summary=context_summary, start=START[protocol])
