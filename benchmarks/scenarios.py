"""The scripted trajectories every system runs, and the inputs they run on.

A scenario is a list of root-model turns written once, system-neutrally (prose, Python code, how
many sequential waves of sub-calls the code makes) and rendered into each system's conventions:
```repl + FINAL_VAR for rlm-kernel, ```repl + the `answer` dict for rlms, dspy's
`[[ ## code ## ]]` field + SUBMIT for dspy.RLM. Every rendered turn carries a `#@step=N` marker;
the fake server finds the highest marker in a request to know which turn to play next, so the
same script works whatever each system puts in its prompts.

Sub-call prompts start with an instruction line (COUNT RED, SUM) that the fake server really
carries out on the rest of the prompt, so the final answer proves the system ran the whole
trajectory; it is checked against the answer computed here."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

SYSTEMS = ("ours", "rlms", "dspy")
COLOURS = ("RED", "GREEN", "BLUE", "AMBER")
STEP_MARK = re.compile(r"#@step=(\d+)")
#: Context words for the scale runs: "zq" + three letters. Nothing in any system's prompts looks like
#: this, so the characters of such runs in a root request are context characters sent to the root.
CONTEXT_WORDS = re.compile(r"(?:zq[a-z]{3} ?)+")


@dataclass(frozen=True)
class Step:
    """One root-model turn: prose, then either code to run or the name of the answer variable."""

    note: str
    code: str | None = None
    final_var: str | None = None
    #: Sequential sub-call waves the code makes (a batch is one wave: its slowest call counts).
    waves: int = 0


@dataclass
class Scenario:
    name: str
    question: str
    steps: list[Step]
    expected: str
    #: How the worker rebuilds the context: ("records", n) or ("words", n_chars).
    context_spec: tuple[str, int]

    def critical_path(self, root_latency: float, sub_latency: float) -> float:
        """Seconds a perfect orchestrator would take: every root turn plus the slowest sub-call of
        each wave, with nothing else."""
        return sum(root_latency + s.waves * sub_latency for s in self.steps)

    def root_turns(self) -> int:
        return len(self.steps)

    def render(self, system: str, index: int) -> str:
        """Turn `index` (0-based) as the root model would write it for `system`."""
        step = self.steps[min(index, len(self.steps) - 1)]
        return render_step(system, step, index + 1)


# --- inputs -------------------------------------------------------------------------------------

def _word(rng: random.Random) -> str:
    return "zq" + "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3))


def records(n: int, seed: int = 7) -> str:
    """`n` lines like "000042 RED   zqfoo zqbar zqbaz", colours drawn at random."""
    rng = random.Random(seed)
    lines = [f"{i:06d} {rng.choice(COLOURS):<5} {_word(rng)} {_word(rng)} {_word(rng)}\n" for i in range(n)]
    return "".join(lines)


def count_red(text: str) -> int:
    return sum(1 for line in text.splitlines() if " RED " in line)


def words(n_chars: int, seed: int = 11) -> str:
    """Exactly `n_chars` of context words: a 1 MB block repeated, so 100 M characters cost one
    string and no intermediate lists."""
    rng = random.Random(seed)
    block_len = min(n_chars, 1_000_000)
    parts: list[str] = []
    size = 0
    while size < block_len:
        w = _word(rng) + " "
        parts.append(w)
        size += len(w)
    block = "".join(parts)[:block_len]
    reps, rest = divmod(n_chars, block_len)
    return block * reps + block[:rest]


def build_context(spec: tuple[str, int] | list[object]) -> str:
    kind, n = spec[0], int(spec[1])  # type: ignore[call-overload]
    if kind == "records":
        return records(n)
    if kind == "words":
        return words(n)
    raise ValueError(f"unknown context kind {kind!r}")


def context_chars_in(text: str) -> int:
    """Characters of context words in `text` (a root request): context sent to the root model."""
    return sum(len(m.group(0)) for m in CONTEXT_WORDS.finditer(text))


# --- the fake sub-model -------------------------------------------------------------------------

def solve_subcall(prompt: str) -> str:
    """What the fake sub-model answers: it really does the counting the prompt asks for."""
    head, _, body = prompt.partition("\n")
    head = head.strip()
    if head == "COUNT RED":
        return str(count_red(body))
    if head == "SUM":
        return str(sum(int(x) for x in re.findall(r"-?\d+", body)))
    return "OK"


# --- rendering ----------------------------------------------------------------------------------

def render_step(system: str, step: Step, number: int) -> str:
    mark = f"#@step={number}"
    if system == "ours":
        if step.code is not None:
            return f"{step.note}\n\n```repl\n{mark}\n{step.code}\n```"
        return f"{step.note}\n{mark}\n\nFINAL_VAR({step.final_var})"
    if system == "rlms":
        code = step.code if step.code is not None else (
            f'answer["content"] = str({step.final_var})\nanswer["ready"] = True')
        return f"{step.note}\n\n```repl\n{mark}\n{code}\n```"
    if system == "dspy":
        code = step.code if step.code is not None else f"SUBMIT(str({step.final_var}))"
        return (f"[[ ## reasoning ## ]]\n{step.note}\n\n[[ ## code ## ]]\n```python\n{mark}\n{code}\n```"
                "\n\n[[ ## completed ## ]]")
    raise ValueError(f"unknown system {system!r}")


def next_step_index(request_text: str) -> int:
    """0-based index of the turn to play: one past the highest step marker already in the request."""
    marks = [int(m) for m in STEP_MARK.findall(request_text)]
    return max(marks) if marks else 0


# --- the scenarios ------------------------------------------------------------------------------

_SPLIT = """lines = context.splitlines(keepends=True)
size = -(-len(lines) // {n})
chunks = ["".join(lines[i:i + size]) for i in range(0, len(lines), size)]"""

QUESTION = "How many records are tagged RED?"


def overhead(n_records: int = 2000, batch: int = 8) -> Scenario:
    """Inspect, one batch of `batch` sub-calls, one aggregating sub-call, answer: 4 root turns, 2 waves."""
    ctx = records(n_records)
    steps = [
        Step("Let me look at the structure of the input first.",
             "print(type(context).__name__, len(context))\nprint(context[:300])"),
        Step(f"Records, one per line. I will split them into {batch} chunks and count RED in each.",
             _SPLIT.format(n=batch) + '\ncounts = llm_query_batched(["COUNT RED\\n" + c for c in chunks])'
             "\nprint(counts)", waves=1),
        Step("Now add the per-chunk counts with one more sub-call.",
             'total = llm_query("SUM\\n" + "\\n".join(counts)).strip()\nprint(total)', waves=1),
        Step("The sum is the answer.", final_var="total"),
    ]
    return Scenario("overhead", QUESTION, steps, str(count_red(ctx)), ("records", n_records))


def fanout(n: int = 64, per_chunk: int = 40) -> Scenario:
    """One batch of `n` sub-calls, timed inside the REPL: 2 root turns, 1 wave."""
    n_records = n * per_chunk
    ctx = records(n_records)
    code = ("import time\n" + _SPLIT.format(n=n) + "\nt0 = time.monotonic()\n"
            'counts = llm_query_batched(["COUNT RED\\n" + c for c in chunks])\n'
            'print(f"FANOUT_SECONDS={time.monotonic() - t0:.4f} n={len(chunks)}")\n'
            "total = str(sum(int(c) for c in counts))")
    steps = [
        Step(f"Split the records into {n} chunks and count RED in all of them at once.", code, waves=1),
        Step("The counts are in; the total is the answer.", final_var="total"),
    ]
    return Scenario(f"fanout{n}", QUESTION, steps, str(count_red(ctx)), ("records", n_records))


def long_run(n_steps: int = 20, n_records: int = 4000, slice_chars: int = 1500) -> Scenario:
    """`n_steps` root turns: read slices, count in code, answer. No sub-calls: this one is about
    what each turn sends to the root model."""
    filler = ("I am reading the next slice of the records to see how the colours are spread before "
              "I count them; nothing needs a sub-model yet, so plain Python is enough here. ")
    steps = [Step(f"Step {k + 1}. {filler * 2}", f"print(context[{k * slice_chars}:{(k + 1) * slice_chars}])")
             for k in range(n_steps - 2)]
    steps.append(Step("Count in code.", 'total = str(sum(1 for line in context.splitlines() if " RED " in line))'
                      "\nprint(total)"))
    steps.append(Step("That is the answer.", final_var="total"))
    ctx = records(n_records)
    return Scenario(f"steps{n_steps}", QUESTION, steps, str(count_red(ctx)), ("records", n_records))


def scale(n_chars: int) -> Scenario:
    """A context of `n_chars` characters and two turns that never print it."""
    steps = [
        Step("How big is the input?", "total = str(len(context))\nprint(total)"),
        Step("That is the answer.", final_var="total"),
    ]
    return Scenario(f"scale{n_chars}", "How many characters long is the input?", steps, str(n_chars),
                    ("words", n_chars))
