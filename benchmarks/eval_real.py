"""Real-model evaluation: rlm-kernel, the same model answering directly, and (optionally) the peers
`rlms` and `dspy.RLM` driven against the same model.

    # Anthropic (spends money: direct calls send the whole input)
    export ANTHROPIC_API_KEY=sk-ant-...
    python -m benchmarks.eval_real                       # default sizes, 2 seeds each
    python -m benchmarks.eval_real --fake                # offline, against a fake model that solves the tasks

    # A local OpenAI-compatible server (../shared/localmodel/serve.sh 1.5b 8765)
    python -m benchmarks.eval_real --provider openai --base-url http://127.0.0.1:8765/v1 \\
        --model qwen2.5-coder-1.5b-instruct --systems ours,direct,rlms,dspy

Tasks (benchmarks.tasks): S-NIAH needles, OOLONG-style classify-and-count, aggregation over sales
records, and lookup in a dict. With --provider openai the default sizes suit an 8k window (two of
the four fit a direct call, two do not). Every run records accuracy, turns, sub-calls, tokens and
seconds and keeps its transcript (the run log) under --out/transcripts. Options the engine may not
have yet (--protocol, --prompt, --option KEY=VALUE) are passed to rlm() only when given. The peers
run in benchmarks/.peers-venv (setup_peers.sh), one subprocess per run (benchmarks.eval_peer).

Writes eval_real.json and eval_real.md to --out."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rlm_kernel.engine import pricing
from rlm_kernel.engine.options import DEFAULT_ROOT_MODEL, DEFAULT_SUB_MODEL
from rlm_kernel.engine.tokens import estimate_tokens
from rlm_kernel.engine.types import Usage

from .fake_model import DIRECT_SYSTEM, FakeModel
from .systems import PEERS_VENV
from .tasks import UNITS, Task, make

#: Tokens kept free for the question, the instructions and the answer in a direct call (Anthropic).
DIRECT_HEADROOM = 8_000
#: ... and on a small local window, where the answer is short.
DIRECT_HEADROOM_LOCAL = 512
#: Sizes per task kind: for Claude's windows, and for an 8k local model.
CLOUD_SIZES = {"niah": [50_000, 200_000, 1_000_000, 4_000_000], "oolong": [1_000, 4_000, 16_000],
               "records": [], "lookup": []}
LOCAL_SIZES = {"niah": [12_000], "oolong": [60], "records": [600], "lookup": [800]}
PEERS = ("rlms", "dspy")
REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    task: str
    kind: str
    size: int
    chars: int
    seed: int
    method: str  # "rlm" (ours) | "direct" | "rlms" | "dspy"
    score: float = 0.0
    answer: str = ""
    gold: str = ""
    seconds: float = 0.0
    input_tokens: int = 0  # every prompt token, cached or not
    cache_read_tokens: int = 0
    output_tokens: int = 0
    tokens_estimated: bool = False
    cost: float | None = None
    cost_complete: bool = True  # False when a model used has no known price
    steps: int | None = None
    subcalls: int | None = None
    error: str | None = None
    transcript: str | None = None  # path under --out
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


def parse_options(items: list[str]) -> dict[str, Any]:
    """--option KEY=VALUE (repeatable): VALUE as JSON when it parses (numbers, true/false), else text."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"--option expects KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def usage_cost(usage: dict[str, Usage], prices: dict[str, dict[str, float]]) -> tuple[float | None, bool]:
    """(dollars over the models with a price, whether every model had one)."""
    costs = [pricing.cost(model, u, prices) for model, u in usage.items()]
    known = [c for c in costs if c is not None]
    return (sum(known) if known else None), len(known) == len(costs)


def direct_prompt(task: Task) -> str:
    return f"<document>\n{task.text}\n</document>\n\n{task.question}"


def fits_directly(task: Task, args: argparse.Namespace) -> bool:
    if args.direct_max_chars is not None:
        return len(task.text) <= args.direct_max_chars
    if args.provider == "openai":
        window = args.window or getattr(args, "server_window", None) or 8_192
        return estimate_tokens(DIRECT_SYSTEM + direct_prompt(task)) + DIRECT_HEADROOM_LOCAL <= window
    from rlm_kernel.engine.clients.anthropic_client import context_window_for

    window = context_window_for(args.model) or 200_000
    return estimate_tokens(direct_prompt(task)) + DIRECT_HEADROOM <= window


def transcript_path(args: argparse.Namespace, method: str, task: Task, ext: str = "jsonl") -> Path:
    folder = args.out / "transcripts"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{method}-{task.kind}-{task.size}-s{task.seed}.{ext}"


def rlm_options(args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> dict[str, Any]:
    """What every rlm() call gets: the provider's settings, the budgets, and the passthrough
    options only when they were given (so an engine without them still runs the rest)."""
    opts: dict[str, Any] = {"model": args.model, "sub_model": args.sub_model, "provider": args.provider,
                            "base_url": args.base_url, "api_key": args.api_key,
                            "max_iterations": args.max_iterations, "concurrency": args.concurrency,
                            "runs_dir": args.runs_dir, "timeout": args.timeout}
    if args.provider == "anthropic":
        opts.update(max_cost=args.max_cost, prices=prices or None)
    if args.window:
        opts["context_window"] = args.window
    for name in ("protocol", "prompt", "temperature"):
        if getattr(args, name) is not None:
            opts[name] = getattr(args, name)
    opts.update(args.options)
    return {k: v for k, v in opts.items() if v is not None}


def run_rlm(task: Task, args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> Row:
    from rlm_kernel import rlm

    row = Row(task.name, task.kind, task.size, len(task.text), task.seed, "rlm", gold=task.gold)
    t0 = time.monotonic()
    try:
        result = rlm(task.question, context=task.context, **rlm_options(args, prices))
    except Exception as exc:  # one broken task must not lose the others' results
        row.error = f"{type(exc).__name__}: {exc}"
        row.seconds = time.monotonic() - t0
        return row
    row.seconds = time.monotonic() - t0
    total = result.total_usage
    row.answer, row.steps, row.subcalls = result.answer, result.steps, result.subcalls
    row.input_tokens = total.input_tokens + total.cache_read_tokens + total.cache_write_tokens
    row.cache_read_tokens, row.output_tokens = total.cache_read_tokens, total.output_tokens
    row.tokens_estimated = total.estimated
    row.cost, row.cost_complete = usage_cost(result.usage, prices)
    row.score = task.score(result.answer)
    row.extra = {"status": result.status, "run_id": result.run_id, "answer_source": result.answer_source}
    if result.log_path is not None and Path(result.log_path).exists():
        dest = transcript_path(args, "ours", task)
        shutil.copyfile(result.log_path, dest)
        row.transcript = str(dest.relative_to(args.out))
    if result.status != "done":
        row.error = f"run ended {result.status}: {result.reason}"
    return row


def run_direct(task: Task, client: Any, args: argparse.Namespace, prices: dict[str, dict[str, float]]) -> Row:
    row = Row(task.name, task.kind, task.size, len(task.text), task.seed, "direct", gold=task.gold)
    prompt = direct_prompt(task)
    t0 = time.monotonic()
    try:
        if args.provider == "openai":
            sampling = {"temperature": args.temperature} if args.temperature is not None else {}
            reply = client.chat.completions.create(
                model=args.model, max_tokens=256, timeout=args.timeout or 600.0, **sampling,
                messages=[{"role": "system", "content": DIRECT_SYSTEM}, {"role": "user", "content": prompt}])
            row.answer = reply.choices[0].message.content or ""
            u = reply.usage
            usage = Usage(input_tokens=u.prompt_tokens, output_tokens=u.completion_tokens, calls=1) if u else Usage(
                input_tokens=estimate_tokens(DIRECT_SYSTEM + prompt), output_tokens=estimate_tokens(row.answer),
                calls=1, estimated=True)
        else:
            reply = client.messages.create(model=args.model, max_tokens=1024, system=DIRECT_SYSTEM,
                                           messages=[{"role": "user", "content": prompt}])
            row.answer = "".join(b.text for b in reply.content if getattr(b, "type", "") == "text")
            u = reply.usage
            usage = Usage(input_tokens=u.input_tokens, output_tokens=u.output_tokens,
                          cache_read_tokens=u.cache_read_input_tokens or 0,
                          cache_write_tokens=u.cache_creation_input_tokens or 0, calls=1)
    except Exception as exc:
        row.error = f"{type(exc).__name__}: {exc}"
        row.seconds = time.monotonic() - t0
        return row
    row.seconds = time.monotonic() - t0
    row.steps, row.subcalls = 1, 0
    row.input_tokens = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
    row.cache_read_tokens, row.output_tokens = usage.cache_read_tokens, usage.output_tokens
    row.tokens_estimated = usage.estimated
    row.cost, row.cost_complete = usage_cost({args.model: usage}, prices)
    row.score = task.score(row.answer)
    dest = transcript_path(args, "direct", task, "json")
    dest.write_text(json.dumps({"system": DIRECT_SYSTEM, "prompt": prompt, "answer": row.answer}, indent=1))
    row.transcript = str(dest.relative_to(args.out))
    return row


def run_peer(peer: str, task: Task, args: argparse.Namespace) -> Row:
    """One run of `rlms` or `dspy.RLM` in the peers' venv (benchmarks.eval_peer), killed at the time limit."""
    row = Row(task.name, task.kind, task.size, len(task.text), task.seed, peer, gold=task.gold)
    python = Path(args.peers_python)
    dest = transcript_path(args, peer, task, "json")
    spec = {"system": peer, "kind": task.kind, "size": task.size, "seed": task.seed, "model": args.model,
            "sub_model": args.sub_model, "base_url": args.base_url, "api_key": args.api_key or "not-needed",
            "max_iterations": args.max_iterations, "timeout": args.timeout, "transcript": str(dest),
            "temperature": args.temperature}
    t0 = time.monotonic()
    limit = (args.timeout or 600.0) + 60.0
    try:
        proc = subprocess.run([str(python), "-m", "benchmarks.eval_peer", json.dumps(spec)], cwd=REPO,
                              capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        row.seconds, row.error = time.monotonic() - t0, f"out of time ({limit:.0f} s, killed)"
        return row
    except OSError as exc:
        row.seconds, row.error = time.monotonic() - t0, f"cannot start {python}: {exc}"
        return row
    row.seconds = time.monotonic() - t0
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    try:
        out = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        row.error = f"{peer} exited {proc.returncode}: {' | '.join(tail) or 'no output'}"
        return row
    row.answer = str(out.get("answer") or "")
    row.steps, row.subcalls, row.error = out.get("turns"), out.get("subcalls"), out.get("error")
    row.input_tokens, row.output_tokens = out.get("input_tokens") or 0, out.get("output_tokens") or 0
    row.seconds = out.get("seconds") or row.seconds
    row.score = task.score(row.answer)
    if dest.exists():
        row.transcript = str(dest.relative_to(args.out))
    return row


def tasks_from(args: argparse.Namespace) -> Iterator[Task]:
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for kind in ("niah", "oolong", "records", "lookup"):
            for n in args.sizes[kind]:
                yield make(kind, n, seed)


def summarize(rows: list[Row]) -> list[dict[str, Any]]:
    """Means per (kind, size, method)."""
    groups: dict[tuple[str, int, str], list[Row]] = defaultdict(list)
    for r in rows:
        groups[(r.kind, r.size, r.method)].append(r)
    out = []
    for (kind, size, method), rs in sorted(groups.items()):
        costs = [r.cost for r in rs if r.cost is not None]

        def mean(values: list[Any]) -> float | None:
            known = [v for v in values if v is not None]
            return sum(known) / len(known) if known else None

        out.append({
            "kind": kind, "size": size, "chars": round(sum(r.chars for r in rs) / len(rs)), "method": method,
            "n": len(rs), "accuracy": sum(r.score for r in rs) / len(rs), "wins": sum(1 for r in rs if r.score >= 1),
            "errors": sum(1 for r in rs if r.error),
            "turns": mean([r.steps for r in rs]), "subcalls": mean([r.subcalls for r in rs]),
            "input_tokens": round(sum(r.input_tokens for r in rs) / len(rs)),
            "output_tokens": round(sum(r.output_tokens for r in rs) / len(rs)),
            "tokens_estimated": any(r.tokens_estimated for r in rs),
            "cost": sum(costs) / len(costs) if costs else None,
            "cost_complete": all(r.cost_complete for r in rs),
            "seconds": sum(r.seconds for r in rs) / len(rs),
        })
    return out


def markdown(summary: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    def num(v: float | None, fmt: str = "{:.1f}") -> str:
        return "—" if v is None else fmt.format(v)

    lines = ["# Real-model evaluation", "",
             f"{meta['date']} · provider `{meta['provider']}` · root model `{meta['model']}`, "
             f"sub-model `{meta['sub_model']}`" + (" · **fake model (offline smoke run)**" if meta["fake"] else ""),
             "", f"rlm() options: `{json.dumps(meta['rlm_options'])}`", "",
             "Accuracy: S-NIAH, lookup and records 1 when right; OOLONG-style 0.75^|error|. Means per size; "
             "tokens are every prompt token (cached or not) plus output; ≈ marks estimates (a server that "
             "reports no usage).", "",
             "| task | size | method | n | accuracy | wins | turns | sub-calls | input tokens | output tokens "
             "| cost ($) | time (s) |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in summary:
        cost = "—" if s["cost"] is None else f"{s['cost']:.4f}" + ("" if s["cost_complete"] else "+")
        err = f" ({s['errors']} failed)" if s["errors"] else ""
        approx = "≈" if s["tokens_estimated"] else ""
        lines.append(f"| {s['kind']} | {s['size']:,} {UNITS[s['kind']]} | {s['method']} | {s['n']}{err} | "
                     f"{s['accuracy']:.2f} | {s['wins']}/{s['n']} | {num(s['turns'])} | {num(s['subcalls'])} | "
                     f"{approx}{s['input_tokens']:,} | {approx}{s['output_tokens']:,} | {cost} | {s['seconds']:.1f} |")
    lines += ["", "Direct rows are missing where the input does not fit the model's context window. "
              "A cost ending in + leaves out a model with no known price (add one with --price MODEL=IN,OUT). "
              "A failed run still counts, with its answer scored (a run out of turns may answer anyway)."]
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
    p.add_argument("--provider", choices=("anthropic", "openai"), default="anthropic",
                   help="anthropic (Messages API) or openai (any OpenAI-compatible server, with --base-url)")
    p.add_argument("--model", default=None, help="root model, also used for the direct answers "
                   f"(default: {DEFAULT_ROOT_MODEL} for anthropic; required for openai)")
    p.add_argument("--sub-model", default=None, help=f"default: {DEFAULT_SUB_MODEL} for anthropic, --model for openai")
    p.add_argument("--systems", default="ours,direct",
                   help="comma-separated: ours, direct, rlms, dspy (the peers need benchmarks/.peers-venv)")
    for kind, flag, unit in (("niah", "--niah-sizes", "characters"), ("oolong", "--oolong-records", "records"),
                             ("records", "--record-counts", "sales records"), ("lookup", "--lookup-keys", "keys")):
        p.add_argument(flag, dest=f"{kind}_sizes", type=ints, default=None,
                       help=f"{kind} task sizes in {unit}, comma-separated (0 or '' for none)")
    p.add_argument("--seeds", type=int, default=2, help="tasks per size")
    p.add_argument("--first-seed", type=int, default=0, help="seed of the first task (to run seeds in parts)")
    p.add_argument("--combine", type=Path, nargs="+", metavar="DIR",
                   help="write one table to --out from the rows of these earlier --out folders, and run nothing")
    p.add_argument("--no-direct", action="store_true", help="skip the direct baseline")
    p.add_argument("--direct-max-chars", type=int, help="answer directly only up to this many characters "
                   "(default: whatever fits the model's context window)")
    p.add_argument("--max-iterations", type=int, default=None, help="root turns (default 20; 8 for openai)")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run (default none; 300 for openai)")
    p.add_argument("--window", type=int, default=None,
                   help="the model's context window in tokens, passed as context_window (openai: default what "
                        "the server reports, else 8,192)")
    p.add_argument("--protocol", default=None, help="passed to rlm(protocol=...) when given (tools|fences)")
    p.add_argument("--prompt", default=None, help="passed to rlm(prompt=...) when given")
    p.add_argument("--temperature", type=float, default=None,
                   help="sampling temperature for every system (openai only; default: the server's)")
    p.add_argument("--option", dest="option_items", action="append", default=[], metavar="KEY=VALUE",
                   help="any other rlm() option, passed through (repeatable)")
    p.add_argument("--max-cost", type=float, help="dollar cap per RLM run (models with a known price)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--price", action="append", default=[], metavar="MODEL=IN,OUT",
                   help="price in $ per million tokens for a model without a listed price (repeatable)")
    p.add_argument("--base-url", default=None, help="the server (openai: ends in /v1; anthropic: default the SDK's)")
    p.add_argument("--api-key", default=None, help="default: $ANTHROPIC_API_KEY (openai: none needed locally)")
    p.add_argument("--peers-python", default=str(PEERS_VENV / "bin" / "python"),
                   help="the python of the peers' venv (benchmarks/setup_peers.sh)")
    p.add_argument("--fake", action="store_true", help="run offline against a fake model that solves the tasks")
    p.add_argument("--runs-dir", default=None, help="where the RLM run logs go (default: a temporary directory)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "eval_real")
    args = p.parse_args(argv)
    local = args.provider == "openai"
    if local and not (args.base_url and args.model) and not args.fake:
        p.error("--provider openai needs --base-url and --model")
    args.model = args.model or DEFAULT_ROOT_MODEL
    args.sub_model = args.sub_model or (args.model if local else DEFAULT_SUB_MODEL)
    defaults = LOCAL_SIZES if local else CLOUD_SIZES
    args.sizes = {k: [n for n in (getattr(args, f"{k}_sizes") if getattr(args, f"{k}_sizes") is not None
                                  else defaults[k]) if n > 0] for k in defaults}
    args.max_iterations = args.max_iterations or (8 if local else 20)
    args.timeout = args.timeout if args.timeout is not None else (300.0 if local else None)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - {"ours", "direct", *PEERS}
    if unknown:
        p.error(f"unknown system(s) {', '.join(sorted(unknown))}; use ours, direct, rlms, dspy")
    if args.no_direct and "direct" in args.systems:
        args.systems.remove("direct")
    args.options = parse_options(args.option_items)
    return args


def evaluate(args: argparse.Namespace, prices: dict[str, dict[str, float]],
             done: Callable[[list[Row]], None] = lambda rows: None) -> list[Row]:
    """Every run of every system on every task; `done` gets the rows so far after each run, so a
    run stopped part-way keeps its table."""
    if args.provider == "openai":
        import openai

        client: Any = openai.OpenAI(base_url=args.base_url, api_key=args.api_key or "not-needed", max_retries=2)
    else:
        import anthropic

        client = anthropic.Anthropic(api_key=args.api_key, base_url=args.base_url, max_retries=4, timeout=600.0)
    rows: list[Row] = []
    for task in tasks_from(args):
        for method in args.systems:
            if method == "direct" and not fits_directly(task, args):
                continue
            if method == "ours":
                row = run_rlm(task, args, prices)
            elif method == "direct":
                row = run_direct(task, client, args, prices)
            else:
                row = run_peer(method, task, args)
            rows.append(row)
            done(rows)
            cost = "" if row.cost is None else f" ${row.cost:.4f}"
            note = f"  ({row.error})" if row.error else ""
            print(f"{task.name:<28} {row.method:<6} score {row.score:.2f}  {row.seconds:6.1f} s  turns "
                  f"{row.steps if row.steps is not None else '-'}  sub-calls "
                  f"{row.subcalls if row.subcalls is not None else '-'}{cost}{note}", flush=True)
    return rows


def server_window(args: argparse.Namespace) -> int | None:
    """The window the OpenAI-compatible server reports (vLLM, llama.cpp), read the way rlm() reads it."""
    import asyncio

    from rlm_kernel.engine.clients.openai_client import OpenAICompatClient

    client = OpenAICompatClient(args.base_url, api_key=args.api_key)
    asyncio.run(client.discover([args.model]))
    return client.context_window(args.model)


def write(args: argparse.Namespace, meta: dict[str, Any], rows: list[Row]) -> None:
    summary = summarize(rows)
    (args.out / "eval_real.json").write_text(json.dumps({"meta": meta, "summary": summary,
                                                        "rows": [asdict(r) for r in rows]}, indent=1))
    (args.out / "eval_real.md").write_text(markdown(summary, meta))


def combine(args: argparse.Namespace) -> int:
    """One table from the rows of earlier runs of this eval (seeds run in parts, systems run apart)."""
    rows, metas = [], []
    for folder in args.combine:
        data = json.loads((folder / "eval_real.json").read_text())
        metas.append(data["meta"])
        for r in data["rows"]:
            row = Row(**r)
            if row.transcript:  # kept where it is, named from the new table's folder
                row.transcript = os.path.relpath((folder / row.transcript).resolve(), args.out.resolve())
            rows.append(row)
    meta = dict(metas[0], combined=[str(f) for f in args.combine], date=" + ".join(m["date"] for m in metas),
                systems=sorted({s for m in metas for s in m["systems"]}), seeds=len({r.seed for r in rows}))
    args.out.mkdir(parents=True, exist_ok=True)
    write(args, meta, rows)
    print(f"wrote {args.out / 'eval_real.json'} and {args.out / 'eval_real.md'} from {len(rows)} rows")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.combine:
        return combine(args)
    prices = parse_prices(args.price)
    with ExitStack() as stack:
        if args.runs_dir is None:
            args.runs_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="rlm-eval-"))
        if args.fake:
            if args.provider != "anthropic":
                raise SystemExit("--fake plays an Anthropic model; drop --provider openai")
            for key in [k for k in os.environ if k.startswith("ANTHROPIC_")]:
                del os.environ[key]
            args.base_url, args.api_key = stack.enter_context(fake_server(args.model)), "fake-key"
        if args.provider == "anthropic":
            args.api_key = args.api_key or os.environ.get("ANTHROPIC_API_KEY")
            if not args.api_key:
                raise SystemExit("set ANTHROPIC_API_KEY (or pass --api-key), or use --fake for an offline run")
        elif args.window is None:
            args.server_window = server_window(args)
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "provider": args.provider, "model": args.model,
                "sub_model": args.sub_model, "fake": args.fake, "seeds": args.seeds, "first_seed": args.first_seed,
                "sizes": args.sizes, "systems": args.systems, "max_iterations": args.max_iterations,
                "timeout": args.timeout, "window": args.window or getattr(args, "server_window", None),
                "rlm_options": {k: v for k, v in rlm_options(args, prices).items()
                                if k not in ("api_key", "runs_dir", "base_url", "prices")}}
        rows = evaluate(args, prices, done=lambda rows: write(args, meta, rows))
    write(args, meta, rows)
    print(f"wrote {args.out / 'eval_real.json'} and {args.out / 'eval_real.md'}")
    return 1 if any(r.error for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
