"""Two questions in a row about the same data: a follow-up (`result.ask`) against a second fresh run.

    python -m benchmarks.followup            # writes benchmarks/results/followup.{json,md}

A scripted fake Anthropic server (prompt-cache simulation on, 0.2 s per root turn) plays a model that
works the way RLM trajectories do: the first question inspects the records, counts them per category with
batched sub-calls and answers; the second asks which category leads and by how much. Fresh, the second
run must do the counting again; as a follow-up it reads the `counts` the first run left in the REPL. Cost
is what the run reports (published prices, cache reads and writes included). Also measured: the compact
account the follow-up sends, against the first run's transcript it replaces."""

from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from rlm_kernel import rlm
from rlm_kernel.testing.fake_anthropic import FakeAnthropic, Request

ROOT = "claude-sonnet-5-5"
SUB = "claude-haiku-5-5"
RESULTS = Path(__file__).resolve().parent / "results"
CATEGORIES = ["billing", "shipping", "returns", "account", "other"]

INSPECT = "```repl\nprint(len(context))\nprint(context[:3])\n```"
COUNT = ("```repl\nchunks = [context[i:i + 200] for i in range(0, len(context), 200)]\n"
         "prompts = ['Categorise each ticket (billing, shipping, returns, account, other); reply as "
         "category=count lines.\\n' + '\\n'.join(c) for c in chunks]\nreplies = llm_query_batched(prompts)\n"
         "counts = {}\nfor r in replies:\n    for line in r.splitlines():\n        k, _, v = line.partition('=')\n"
         "        if v.strip().isdigit():\n            counts[k.strip()] = counts.get(k.strip(), 0) + int(v)\n"
         "print(counts)\n```")
ANSWER_COUNTS = "FINAL_VAR(counts)"
LEAD = ("```repl\nlead = max(counts, key=counts.get)\nshare = counts[lead] / sum(counts.values())\n"
        "summary = f'{lead} leads with {counts[lead]} tickets ({share:.0%})'\nprint(summary)\n```")
ANSWER_LEAD = "FINAL_VAR(summary)"
FRESH_Q2 = [INSPECT, COUNT, LEAD, ANSWER_LEAD]
FOLLOW_Q2 = [LEAD, ANSWER_LEAD]
Q1 = [INSPECT, COUNT, ANSWER_COUNTS]


def tickets(n: int, seed: int = 7) -> list[str]:
    rnd = random.Random(seed)
    return [f"#{i} [{rnd.choice(CATEGORIES)}] customer wrote: " + " ".join(rnd.choice(["my", "order", "card",
            "late", "refund", "login", "please", "help", "again", "box"]) for _ in range(40)) for i in range(n)]


def sub_reply(request: Request) -> str:
    text = request["messages"][-1]["content"]
    text = text if isinstance(text, str) else "".join(b.get("text", "") for b in text)
    counts: dict[str, int] = {}
    for c in CATEGORIES:
        counts[c] = text.count(f"[{c}]")
    return "\n".join(f"{k}={v}" for k, v in counts.items() if v)


def root_script(fresh_second: bool):
    def respond(request: Request) -> str:
        first = request["messages"][0]["content"]
        first = first if isinstance(first, str) else "".join(b.get("text", "") for b in first)
        second = "leads" in first or "Question 1:" in first
        turn = (len(request["messages"]) + 1) // 2
        replies = (FRESH_Q2 if fresh_second else FOLLOW_Q2) if second else Q1
        return replies[min(turn, len(replies)) - 1]

    return respond


def session(fresh_second: bool, context: list[str], runs_dir: str) -> dict[str, Any]:
    with FakeAnthropic(root_model=ROOT, latency=0.2) as srv:
        srv.route(root=root_script(fresh_second), sub=sub_reply)
        opts = dict(provider="anthropic", base_url=srv.base_url, api_key="bench", runs_dir=runs_dir,
                    protocol="fences", model=ROOT, sub_model=SUB, max_retries=0)
        t0 = time.monotonic()
        one = rlm("How many tickets are there per category?", context=context, **opts)
        if fresh_second:
            two = rlm("Which category leads, and by how much?", context=context, **opts)
        else:
            two = one.ask("Which category leads, and by how much?", api_key="bench")
        wall = time.monotonic() - t0
        roots = [r for r in srv.requests if r.model == ROOT]
    transcript = sum(len(json.dumps(m)) for m in roots[len(Q1) - 1]["messages"])
    follow_first = roots[len(Q1)]["messages"][0]["content"]
    follow_first = follow_first if isinstance(follow_first, str) else \
        "".join(b.get("text", "") for b in follow_first)
    q1_first = roots[0]["messages"][0]["content"]
    q1_first = q1_first if isinstance(q1_first, str) else "".join(b.get("text", "") for b in q1_first)
    account = len(follow_first) - len(q1_first)  # what the follow-up's first message adds (questions differ)
    return {"answers": [str(one.value), two.answer], "cost": [one.cost, two.cost], "steps": [one.steps, two.steps],
            "subcalls": [one.subcalls, two.subcalls], "wall_s": round(wall, 2),
            "account_chars": account if not fresh_second else None,
            "q1_transcript_chars": transcript}


def main() -> None:
    context = tickets(2000)
    with tempfile.TemporaryDirectory() as tmp:
        fresh = session(True, context, tmp)
        follow = session(False, context, tmp)
    total = {k: sum(v["cost"]) for k, v in (("fresh", fresh), ("follow", follow))}
    out = {"when": time.strftime("%Y-%m-%d %H:%M"), "fresh": fresh, "follow_up": follow,
           "ratio_two_questions": round(total["follow"] / total["fresh"], 3),
           "ratio_second_question": round(follow["cost"][1] / fresh["cost"][1], 3)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "followup.json").write_text(json.dumps(out, indent=1))
    md = f"""# Follow-up questions ({out['when']})

Two questions about 2,000 support tickets, scripted fake Anthropic server with prompt caching, published
prices for {ROOT} (root). {SUB} has no single published price (tiered), so sub-calls are not in the cost: the
fresh second run's 10 sub-calls are free here, and the ratio understates what a follow-up saves.

| | second question fresh | second question as a follow-up |
|---|---:|---:|
| cost of both questions | ${total['fresh']:.4f} | ${total['follow']:.4f} |
| cost of the second question | ${fresh['cost'][1]:.4f} | ${follow['cost'][1]:.4f} |
| steps / sub-calls of the second | {fresh['steps'][1]} / {fresh['subcalls'][1]} | {follow['steps'][1]} / \
{follow['subcalls'][1]} |
| wall time of both | {fresh['wall_s']:.1f} s | {follow['wall_s']:.1f} s |

Both questions as a follow-up cost **{out['ratio_two_questions']:.2f}×** two fresh runs (the second question
alone {out['ratio_second_question']:.2f}×). The follow-up's account of the first run adds about
{follow['account_chars']:,} characters to its first message, against the first run's transcript of
{follow['q1_transcript_chars']:,} characters (as sent in its last request) that it replaces.
Answers: {follow['answers'][1]!r} (follow-up) and {fresh['answers'][1]!r} (fresh).
"""
    (RESULTS / "followup.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
