"""A stand-in model that really solves the generated tasks, for running eval_real offline (CI).

Served by FakeAnthropic (or FakeOpenAI), it plays three parts, told apart by the request:

* the RLM root model (the run's system prompt is the engine's): turn 1 writes REPL code that
  splits `context` and asks the sub-model about every piece with llm_query_batched, then
  combines the replies in code; turn 2 answers with FINAL_VAR(result);
* the sub-model (any other model id): finds the needle or classifies and counts the messages in
  the prompt it was given;
* the direct baseline (system prompt DIRECT_SYSTEM): reads the whole input from the prompt.

So an eval run against it exercises the engine, the REPL, the sub-calls and the scoring for real;
the accuracy it reports is computed from what came back, not assumed."""

from __future__ import annotations

import json
import re
from collections import Counter

from rlm_kernel.testing import Request, content_text

from .tasks import NEEDLE_RE, OOLONG_QUESTION_RE, classify

DIRECT_SYSTEM = "Answer the question about the document the user gives you. Reply with the answer only."
NIAH_SUB = "Find the special magic number for {key} in the text below. Reply with the number only, or NONE."
OOLONG_SUB = ("Classify each customer message below into one of: {cats}. Reply with a JSON object mapping "
              "each category to how many messages belong to it.")
_KEY_RE = re.compile(r"special magic number for ([a-z]+-[a-z]+)")
_CATS_RE = re.compile(r"categories: ([a-z, ]+)\.")

NIAH_CODE = '''\
size, overlap = 100_000, 200
pieces = [context[i:i + size + overlap] for i in range(0, len(context), size)]
prompt = {prompt!r}
replies = llm_query_batched([prompt + "\\n\\n" + p for p in pieces])
hits = [r.strip() for r in replies if r.strip() and r.strip() != "NONE"]
result = hits[0] if hits else "NONE"
print(len(pieces), "pieces; hits:", hits)'''

OOLONG_CODE = '''\
import json
lines = context.splitlines()
batches = ["\\n".join(lines[i:i + 400]) for i in range(0, len(lines), 400)]
prompt = {prompt!r}
replies = llm_query_batched([prompt + "\\n\\n" + b for b in batches])
counts = {{}}
for r in replies:
    for cat, n in json.loads(r).items():
        counts[cat] = counts.get(cat, 0) + int(n)
result = str(counts.get({target!r}, 0))
print(counts)'''


def find_needle(text: str, key: str) -> str:
    for m in NEEDLE_RE.finditer(text):
        if m.group(1) == key:
            return m.group(2)
    return "NONE"


def count_categories(text: str) -> dict[str, int]:
    found = Counter(classify(line) for line in text.splitlines() if "Instance:" in line)
    found.pop(None, None)
    return dict(found)


def system_text(request: Request) -> str:
    """The system prompt, as the Messages API sends it or as chat completions' first message."""
    messages = request.get("messages") or []
    if messages and messages[0].get("role") == "system":
        return content_text(messages[0].get("content"))
    return content_text(request.get("system"))


class FakeModel:
    """Responder for FakeAnthropic or FakeOpenAI; `root_model` is the id the RLM root and the
    baseline use (the sub-model may have the same id, as on a local server serving one model)."""

    def __init__(self, root_model: str) -> None:
        self.root_model = root_model

    def __call__(self, request: Request) -> str:
        system = system_text(request)
        if request.model != self.root_model or not system:  # sub-calls carry no system prompt
            return self.sub(request.last_user_text())
        if system == DIRECT_SYSTEM:
            return self.direct(request.last_user_text())
        return self.root(request)

    def root(self, request: Request) -> str:
        question = request.first_user_text()
        if request.turn:
            return "The code has combined the sub-model answers.\n\nFINAL_VAR(result)"
        key = _KEY_RE.search(question)
        if key:
            code = NIAH_CODE.format(prompt=NIAH_SUB.format(key=key.group(1)))
        else:
            target, cats = OOLONG_QUESTION_RE.search(question), _CATS_RE.search(question)
            if not (target and cats):
                return "FINAL(I cannot tell what this task is.)"
            code = OOLONG_CODE.format(prompt=OOLONG_SUB.format(cats=cats.group(1)), target=target.group(1))
        return f"I will split the input and ask the sub-model about every piece.\n\n```repl\n{code}\n```"

    def sub(self, prompt: str) -> str:
        head, _, body = prompt.partition("\n\n")
        key = _KEY_RE.search(head)
        if key and head.startswith("Find the special magic number"):
            return find_needle(body, key.group(1))
        if head.startswith("Classify each customer message"):
            return json.dumps(count_categories(body))
        return "I do not know."

    def direct(self, prompt: str) -> str:
        key = _KEY_RE.search(prompt)
        target = OOLONG_QUESTION_RE.search(prompt)
        if target:  # count the document only: the question itself names the categories
            return str(count_categories(prompt.split("</document>")[0]).get(target.group(1), 0))
        if key:
            return find_needle(prompt, key.group(1))
        return "I do not know."
