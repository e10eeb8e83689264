"""The offline demo model: no network, no key, deterministic.

The root "model" follows a fixed policy (look at the context, split it, ask one sub-call per chunk,
combine, answer) written as ordinary ```repl code, so everything downstream (the REPL, sub-calls,
the tree, export) runs for real. The sub-model is extractive: it returns the sentences that share
the most words with the question. It is labelled as a demo wherever it shows."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from ..parser import extract_code_blocks, find_final, strip_code_blocks
from ..types import Completion, TextCallback, ToolCall, ToolCallback, ToolSpec, Usage

DEMO_ROOT = "demo"
DEMO_SUB = "demo-extractive"
LABEL = "demo (offline)"

_STOP = frozenset(
    "a an and are as at be by for from has have how i in is it its of on or that the this to was "
    "were what when where which who why will with do does did about into their they them there these "
    "those than then key main most more some any all can could would should may might our your we "
    "you he she his her not no"
    .split()
)

_STEP1 = '''```repl
# Demo model, step 1: look at the input before touching it.
if hasattr(context, "sql") or hasattr(context, "search"):  # data on disk: describe it, read nothing
    print(repr(context))
    print(context.schema if hasattr(context, "sql") else context.names()[:10])
else:
    unit = "characters" if isinstance(context, (str, bytes)) else "items"
    print(type(context).__name__, "with", f"{len(context):,}", unit)
    print(repr(context[:300]) if isinstance(context, (str, bytes, list, tuple)) else repr(list(context)[:10]))
```'''

_STEP2 = '''```repl
# Demo model, step 2: split the input into chunks and ask a sub-model about each, concurrently.
def as_text(x):
    if isinstance(x, (bytes, bytearray)):
        return x.decode("utf-8", "replace")
    return x if isinstance(x, str) else str(x)

question = {question!r}
if isinstance(context, (str, bytes, bytearray)):
    text = as_text(context)
    pieces = [text[i:i + {chunk}] for i in range(0, len(text), {chunk})]
else:
    if hasattr(context, "search"):  # text files on disk: filter with a streaming search, read only the hits
        import re
        words = sorted({{w.lower() for w in re.findall(r"[A-Za-z]{{4,}}", question)}} - {{"which", "what", "where"}})
        items = [str(h) for h in context.search("|".join(words), max_hits=2000, ignore_case=True)] if words else []
    elif hasattr(context, "sql"):  # a table on disk: read a sample of rows through SQL
        frame = context.sql("SELECT * FROM context USING SAMPLE 1000 ROWS")
        items = [", ".join(f"{{k}}={{v}}" for k, v in row.items()) for row in frame.to_dict("records")]
    elif isinstance(context, dict):
        items = [f"{{k}}: {{as_text(v)}}" for k, v in context.items()]
    else:
        items = [as_text(v) for v in context]
    pieces, current = [], ""
    for item in items:
        if current and len(current) + len(item) > {chunk}:
            pieces.append(current)
            current = ""
        current += item + "\\n"
    if current:
        pieces.append(current)
ask = "Quote the sentences that answer the question, or NONE."
prompts = [f"Question: {{question}}\\n\\nExcerpt:\\n{{p}}\\n\\n{{ask}}" for p in pieces]
notes = llm_query_batched(prompts)
relevant = [n for n in notes if n.strip() != "NONE" and not n.startswith("Error:")]
print(f"{{len(pieces)}} chunks, {{len(relevant)}} with relevant sentences")
print(relevant[:3])
```'''

_STEP3 = '''```repl
# Demo model, step 3: combine the notes into one answer.
if relevant:
    combine = f"Question: {{question}}\\n\\nCombine these notes into an answer:\\n" + "\\n".join(relevant)
    final_answer = llm_query(combine)
else:
    final_answer = "The input does not seem to answer this question."
print(final_answer[:500])
```
FINAL_VAR(final_answer)'''


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9']+", text.lower()) if w not in _STOP and len(w) > 2}


def extract(question: str, text: str, k: int = 3) -> str:
    """The k sentences of `text` that share the most words with `question`, in their original order."""
    q = _words(question)
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]
    scored = [(len(q & _words(s)), i, s) for i, s in enumerate(sentences)]
    best = sorted((t for t in scored if t[0] > 0), key=lambda t: (-t[0], t[1]))[:k]
    if not best:
        return "NONE"
    return " ".join(s for _, _, s in sorted(best, key=lambda t: t[1]))


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


class DemoClient:
    label = LABEL

    def __init__(self, chunk_chars: int = 20_000, latency: float = 0.0) -> None:
        self.chunk_chars = chunk_chars
        self.latency = latency

    async def complete(self, *, model: str, system: str, messages: list[dict[str, Any]], max_output_tokens: int,
                       on_text: TextCallback | None = None, cache: bool = True, tools: list[ToolSpec] | None = None,
                       on_tool: ToolCallback | None = None, temperature: float | None = None) -> Completion:
        t0 = time.perf_counter()  # a scripted policy: the same reply at any temperature
        if self.latency:
            await asyncio.sleep(self.latency)
        prompt = str(messages[-1]["content"])
        text = self._root(messages) if model == DEMO_ROOT else self._sub(prompt)
        calls = self._as_tool_calls(text, messages) if tools and model == DEMO_ROOT else []
        if calls:
            text = strip_code_blocks(text)
        if on_text:
            for i in range(0, len(text), 80):
                on_text(text[i:i + 80])
        for position, call in enumerate(calls):
            if on_tool:
                on_tool(position, call.name, call.input)
        sent = len(system) + sum(len(str(m["content"])) + len(str(m.get("tool_results", ""))) for m in messages)
        usage = Usage(input_tokens=_tokens(" " * sent), output_tokens=_tokens(text), calls=1)
        return Completion(text=text, model=model, usage=usage, stop_reason="tool_use" if calls else "end_turn",
                          latency=time.perf_counter() - t0, tool_calls=calls)

    @staticmethod
    def _as_tool_calls(text: str, messages: list[dict[str, Any]]) -> list[ToolCall]:
        """The same policy through tools: each block a python call; the answer its own, later turn."""
        turn = sum(1 for m in messages if m["role"] == "assistant")
        codes = extract_code_blocks(text)
        calls = [ToolCall(f"demo_{turn}_{i}", "python", {"code": c}) for i, c in enumerate(codes)]
        final = find_final(text)
        if turn >= 3 or (final is not None and not codes):
            calls = [ToolCall(f"demo_{turn}_answer", "answer",
                              {"variable": "final_answer"} if turn >= 3 else {"text": final.value if final else ""})]
        return calls

    def _root(self, messages: list[dict[str, Any]]) -> str:
        first = str(messages[0]["content"])
        match = re.search(r"Question: (.*?)\n\nThe variable `context`", first, re.S)
        question = match.group(1).strip() if match else first[:200]
        turn = sum(1 for m in messages if m["role"] == "assistant")
        last = str(messages[-1]["content"])
        if "step limit" in last:
            return "FINAL(The demo model stopped at the step limit before finishing.)"
        if turn == 0:
            return "Let me look at the input first.\n\n" + _STEP1
        if turn == 1:
            return ("Now I split it and ask a sub-model about each chunk.\n\n"
                    + _STEP2.format(chunk=self.chunk_chars, question=question))
        if turn == 2:
            return "I combine what the sub-calls found.\n\n" + _STEP3.format()
        return "FINAL(The demo model could not finish: its scripted policy has three steps.)"

    def _sub(self, prompt: str) -> str:
        question = re.search(r"Question: (.*?)\n\n", prompt, re.S)
        q = question.group(1) if question else prompt[:200]
        if "Combine these notes" in prompt:
            notes = prompt.split("Combine these notes into an answer:\n", 1)[-1]
            return extract(q, notes, k=5)
        body = prompt.split("Excerpt:\n", 1)[-1]
        return extract(q, body)

    def context_window(self, model: str) -> int | None:
        return None

    async def aclose(self) -> None:
        return None
