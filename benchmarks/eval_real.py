"""Real-model evaluation: rlm-kernel against the same model answering directly.

    export ANTHROPIC_API_KEY=sk-ant-...
    python -m benchmarks.eval_real                       # default sizes, 2 seeds each
    python -m benchmarks.eval_real --niah-sizes 100000,1000000 --oolong-records 2000 --seeds 1
    python -m benchmarks.eval_real --fake                # offline, against a fake model that solves the tasks

Tasks (benchmarks.tasks): S-NIAH needles at growing context sizes and an OOLONG-style
classify-and-count over thousands of generated messages. For every task it runs `rlm()` and,
where the input fits the model's context window, one plain Messages API call with the whole input
in the prompt. It reports accuracy, tokens, dollars and seconds per size, and writes
eval_real.json and eval_real.md to --out.

This spends money on a real key: every direct call sends the whole input. Check the sizes first;
--max-cost caps each RLM run (the direct calls are one request each, their size is the input's)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlm_kernel.engine import pricing
from rlm_kernel.engine.options import DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL
from rlm_kernel.engine.types import Usage

from .fake_model import DIRECT_SYSTEM, FakeModel
from .tasks import Task, niah, oolong

#: Characters per token assumed when deciding whether the whole input fits a direct call.
CHARS_PER_TOKEN = 3.5
#: Tokens kept free for the question, the instructions and the answer in a direct call.
DIRECT_HEADROOM = 8_000


@dataclass
class Row:
    task: str
    kind: str
    size: int
    chars: int
    seed: int
    method: str  # "rlm" | "direct"
    score: float = 0.0
    answer: str = ""
    gold: str = ""
    seconds: float = 0.0
    input_tokens: int = 0  # every prompt token, cached or not
    cache_read_tokens: int = 0
    output_tokens: int = 0
    cost: float | None = None
    cost_complete: bool = True  # False when a model used has no known price
    steps: int | None = None
    subcalls: int | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def parse_prices(items: list[str]) -> dict[str, dict[str, float]]:
    """--price MODEL=INPUT,OUTPUT (dollars per million tokens), repeatable."""
    prices: dict[str, dict[str, float]] = {}
    for item in items:
        model, _, rest = item.partition("=")
        try:
            inp, out = (float(x) for x in rest.split(","))
        except ValueError:
            raise SystemExit(f"--price expects MODEL=INPUT,OUTPUT in $/Mtok, got {item!r}") from None
        prices[model.strip()] = {"input": inp, "output": out}
    return prices


def usage_cost(usage: dict[str, Usage], prices: dict[str, dict[str, float]]) -> tuple[float | None, bool]:
    """(dollars over the models with a price, whether every model had one)."""
    costs = [pricing.cost(model, u, prices) for model, u in usage.items()]
    known = [c for c in costs if c is not None]
    return (sum(known) if known else None), len(known) == len(costs)


def fits_directly(task: Task, model: str, max_chars: int | None) -> bool:
    if max_chars is not None:
        return len(task.context) <= max_chars
    from rlm_kernel.engine.clients.anthropic_client import context_window_for

    window = context_window_for(model) or 200_000
    return len(task.context) / CHARS_PER_TOKEN + DIRECT_HEADROOM <= window


def run_rlm(task: Task, args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> Row:
    from rlm_kernel import rlm

    row = Row(task.name, task.kind, task.size, len(task.context), task.seed, "rlm", gold=task.gold)
    t0 = time.monotonic()
    try:
        result = rlm(task.question, context=task.context, model=args.model, sub_model=args.sub_model,
                     provider="anthropic", base_url=args.base_url, api_key=args.api_key,
                     max_iterations=args.max_iterations, max_cost=args.max_cost, prices=prices or None,
                     concurrency=args.concurrency, runs_dir=args.runs_dir)
    except Exception as exc:  # one broken task must not lose the others' results
        row.error = f"{type(exc).__name__}: {exc}"
        row.seconds = time.monotonic() - t0
        return row
    row.seconds = time.monotonic() - t0
    total = result.total_usage
    row.answer, row.steps, row.subcalls = result.answer, result.steps, result.subcalls
    row.input_tokens = total.input_tokens + total.cache_read_tokens + total.cache_write_tokens
    row.cache_read_tokens, row.output_tokens = total.cache_read_tokens, total.output_tokens
    row.cost, row.cost_complete = usage_cost(result.usage, prices)
    row.score = task.score(result.answer)
    row.extra = {"status": result.status, "run_id": result.run_id}
    if result.status != "done":
        row.error = f"run ended {result.status}: {result.reason}"
    return row


def run_direct(task: Task, client: Any, args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> Row:
    row = Row(task.name, task.kind, task.size, len(task.context), task.seed, "direct", gold=task.gold)
    prompt = f"<document>\n{task.context}\n</document>\n\n{task.question}"
    t0 = time.monotonic()
    try:
        reply = client.messages.create(model=args.model, max_tokens=1024, system=DIRECT_SYSTEM,
                                       messages=[{"role": "user", "content": prompt}])
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        row.seconds = time.monotonic() - t0
        return row
    row.seconds = time.monotonic() - t0
    row.answer = "".join(b.text for b in reply.content if getattr(b, "type", "") == "text")
    u = reply.usage
    usage = Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                  cache_read_tokens=u.cache_read_input_tokens or 0,
                  cache_write_tokens=u.cache_creation_input_tokens or 0, calls=1)
    row.input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    row.cache_read_tokens, row.output_tokens = usage.cache_read_tokens, usage.output_tokens
    row.cost, row.cost_complete = usage_cost({args.model: usage}, prices)
    row.score = task.score(row.answer)
    return row


def tasks_from(args: argparse.Namespace) -> Iterator[Task]:
    for seed in range(args.seeds):
        for n in args.niah_sizes:
            yield niah(n, seed)
        for n in args.oolong_records:
            yield oolong(n, seed)


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Means per (kind, size, method)."""
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.kind, r.size, r.method)].append(r)
    out = []
    for (kind, size, method), rs in sorted(groups.items()):
        costs = [r.cost for r in rs if r.cost is not None]
        out.append({
            "kind": kind, "size": size, "chars": round(sum(r.chars for r in rs) / len(rs)), "method": method,
            "n": len(rs), "accuracy": sum(r.score for r in rs) / len(rs), "errors": sum(1 for r in rs if r.error),
            "input_tokens": round(sum(r.input_tokens for r in rs) / len(rs)),
            "output_tokens": round(sum(r.output_tokens for r in rs) / len(rs)),
            "cost": sum(costs) / len(costs) if costs else None,
            "cost_complete": all(r.cost_complete for r in rs),
            "seconds": sum(r.seconds for r in rs) / len(rs),
        })
    return out


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# Real-model evaluation", "",
             f"{meta['date']} · root model `{meta['model']}`, sub-model `{meta['sub_model']}`"
             + (" · **fake model (offline smoke run)**" if meta["fake"] else ""), "",
             "Accuracy: S-NIAH 1 when the answer contains the number; OOLONG-style 0.75^|error|. "
             "Means per size; tokens are every prompt token (cached or not) plus output.", "",
             "| task | size | method | n | accuracy | input tokens | output tokens | cost ($) | time (s) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        unit = "chars" if s["kind"] == "niah" else "records"
        cost = "—" if s["cost"] is None else f"{s['cost']:.4f}" + ("" if s["cost_complete"] else "+")
        err = f" ({s['errors']} failed)" if s["errors"] else ""
        lines.append(f"| {s['kind']} | {s['size']:,} {unit} | {s['method']} | {s['n']}{err} | {s['accuracy']:.2f} | "
                     f"{s['input_tokens']:,} | {s['output_tokens']:,} | {cost} | {s['seconds']:.1f} |")
    lines += ["", "Direct rows are missing where the input does not fit the model's context window. "
              "A cost ending in + leaves out a model with no known price (add one with --price MODEL=IN,OUT)."]
    return "\n".join(lines) + "\n"


@contextmanager
def fake_server(model: str) -> Iterator[str]:
    from rlm_kernel.testing.fake_anthropic import FakeAnthropic

    with FakeAnthropic(root_model=model) as srv:
        srv.responder = FakeModel(model)
        yield srv.base_url


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    def ints(text: str) -> list[int]:
        return [int(float(x)) for x in text.split(",") if x.strip()]

    p = argparse.ArgumentParser(prog="python -m benchmarks.eval_real", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=DEFAULT_ROOT_MODEL, help="root model, also used for the direct answers")
    p.add_argument("--sub-model", default=DEFAULT_SUB_MODEL)
    p.add_argument("--niah-sizes", type=ints, default=[50_000, 200_000, 1_000_000, 4_000_000],
                   help="S-NIAH context sizes in characters (comma-separated)")
    p.add_argument("--oolong-records", type=ints, default=[1_000, 4_000, 16_000],
                   help="OOLONG-style record counts (comma-separated; about 100 characters each)")
    p.add_argument("--seeds", type=int, default=2, help="tasks per size")
    p.add_argument("--no-direct", action="store_true", help="skip the direct baseline")
    p.add_argument("--direct-max-chars", type=int, help="answer directly only up to this many characters "
                   "(default: whatever fits the model's context window)")
    p.add_argument("--max-iterations", type=int, default=20)
    p.add_argument("--max-cost", type=float, help="dollar cap per RLM run (models with a known price)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="price in $ per million tokens for a model without a listed price (repeatable)")
    p.add_argument("--base-url", default=None, help="Anthropic-compatible endpoint (default: the SDK's)")
    p.add_argument("--api-key", default=None, help="default: $ANTHROPIC_API_KEY")
    p.add_argument("--fake", action="store_true", help="run offline against a fake model that solves the tasks")
    p.add_argument("--runs-dir", default=None, help="where the RLM run logs go (default: a temporary directory)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "eval_real")
    return p.parse_args(argv)


def evaluate(args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> list[Row]:
    import anthropic

    client = anthropic.Anthropic(api_key=args.api_key, base_url=args.base_url, max_retries=4, timeout=600.0)
    rows: list[Row] = []
    for task in tasks_from(args):
        todo = ["rlm"]
        if not args.no_direct and fits_directly(task, args.model, args.direct_max_chars):
            todo.append("direct")
        for method in todo:
            row = run_rlm(task, args, prices) if method == "rlm" else run_direct(task, client, args, prices)
            rows.append(row)
            cost = "" if row.cost is None else f" ${row.cost:.4f}"
            note = f"  ({row.error})" if row.error else ""
            print(f"{task.name:<32} {method:<6} score {row.score:.2f}  {row.seconds:6.1f} s"
                  f"  {row.input_tokens:>9,} tok in{cost}{note}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prices = parse_prices(args.price)
    with ExitStack() as stack:
        if args.runs_dir is None:
            args.runs_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="rlm-eval-"))
        if args.fake:
            for key in [k for k in os.environ if k.startswith("ANTHROPIC_")]:
                del os.environ[key]
            args.base_url, args.api_key = stack.enter_context(fake_server(args.model)), "fake-key"
        args.api_key = args.api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not args.api_key:
            raise SystemExit("set ANTHROPIC_API_KEY (or pass --api-key), or use --fake for an offline run")
        rows = evaluate(args, prices)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model": args.model, "sub_model": args.sub_model,
            "fake": args.fake, "seeds": args.seeds, "niah_sizes": args.niah_sizes,
            "oolong_records": args.oolong_records}
    summary = summarize(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "eval_real.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                        "rows": [asdict(r) for r in rows]}, indent=1))
    (args.out / "eval_real.md").write_text(markdown(summary, meta))
    print(f"wrote {args.out / 'eval_real.json'} and {args.out / 'eval_real.md'}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
