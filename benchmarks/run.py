"""Run every benchmark in one go and write benchmarks/results/{results.json, results.md, *.png}.

    benchmarks/.peers-venv/bin/python -m benchmarks.run            # full run, all three systems
    python -m benchmarks.run --quick --systems ours --out /tmp/b     # seconds-long smoke run

One FakeAnthropic server on loopback answers all systems (1 s per root turn and 0.5 s per
sub-call by default). Each trial is a fresh worker process (benchmarks.worker); the systems take
turns within every section, in a rotating order, so drift on the machine hits them alike."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from rlm_kernel.testing.fake_anthropic import FakeAnthropic, Request, prompt_blocks

from . import report, systems
from .analysis import iopub_target, summarize
from .scenarios import (
    SYSTEMS,
    Scenario,
    context_chars_in,
    fanout,
    long_run,
    next_step_index,
    overhead,
    scale,
    solve_subcall,
)

ROOT = Path(__file__).resolve().parent.parent
FANOUT_RE = re.compile(r"FANOUT_SECONDS=(\d+(?:\.\d+)?)")
TRIAL_TIMEOUT = 900.0


@dataclass
class Config:
    systems: list[str]
    root_latency: float = 1.0
    sub_latency: float = 0.5
    repeats: int = 3
    fanout: int = 64
    steps: int = 20
    sizes: list[int] = field(default_factory=lambda: [1_000_000, 10_000_000, 100_000_000])
    iopub_steps: int = 200
    iopub_latency: float = 0.2
    quick: bool = False
    python: str = sys.executable


def request_text(request: Request) -> str:
    return json.dumps(request, ensure_ascii=False)


def prompt_tokens(request: Request) -> int:
    """Prompt tokens of one request as the fake server counts them, cached or not."""
    return sum(tokens for _, tokens, _ in prompt_blocks(request))


class Bench:
    """The fake server plus the bookkeeping of one benchmark run."""

    def __init__(self, cfg: Config, workdir: Path) -> None:
        self.cfg = cfg
        self.workdir = workdir
        self.server = FakeAnthropic(root_model=systems.ROOT_MODEL, latency=self._latency)
        self.trials: list[dict[str, Any]] = []
        self._count = 0

    def _latency(self, request: Request) -> float:
        return self.cfg.root_latency if request.model == systems.ROOT_MODEL else self.cfg.sub_latency

    def responder(self, system: str, scenario: Scenario) -> Callable[[Request], str]:
        def respond(request: Request) -> str:
            if request.model != systems.ROOT_MODEL:
                return solve_subcall(request.last_user_text())
            return scenario.render(system, next_step_index(request_text(request)))

        return respond

    def trial(self, section: str, system: str, scenario: Scenario, *, label: str | None = None,
              concurrency: int | None = None, memory: bool = False, runs: int = 1) -> list[dict[str, Any]]:
        """Run `system` on `scenario` in a fresh worker, `runs` calls in a row; one row per call."""
        self._count += 1
        srv = self.server
        srv.reset()
        srv.responder = self.responder(system, scenario)
        spec_path = self.workdir / f"trial{self._count}.json"
        out_path = self.workdir / f"trial{self._count}.out.json"
        spec = {"system": system, "context_spec": list(scenario.context_spec), "question": scenario.question,
                "base_url": srv.base_url, "concurrency": concurrency, "memory": memory, "runs": runs,
                "out": str(out_path), "runs_dir": str(self.workdir / "runs")}
        spec_path.write_text(json.dumps(spec))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "RLM_"))}
        env["PYTHONUNBUFFERED"] = "1"
        try:
            proc = subprocess.run([self.cfg.python, "-m", "benchmarks.worker", str(spec_path)], cwd=ROOT, env=env,
                                  capture_output=True, text=True, timeout=TRIAL_TIMEOUT)
            result = json.loads(out_path.read_text()) if out_path.exists() else {
                "ok": False, "error": f"worker exited {proc.returncode}: {proc.stderr[-2000:]}"}
        except subprocess.TimeoutExpired:
            result = {"ok": False, "error": f"trial timed out after {TRIAL_TIMEOUT:.0f} s"}
        base: dict[str, Any] = {
            "section": section, "system": system, "label": label or system, "scenario": scenario.name,
            "concurrency": concurrency, "expected": scenario.expected,
            "critical_path": scenario.critical_path(self.cfg.root_latency, self.cfg.sub_latency),
            "script_root_turns": scenario.root_turns(), "server_errors": list(srv.errors),
        }
        for key in ("error", "context_chars", "rss_before", "rss_peak_tree", "rss_peak_self", "peak_reset"):
            if key in result:
                base[key] = result[key]
        calls = result.get("runs") or [None]
        rows = []
        for i, call in enumerate(calls):
            row = dict(base, phase="cold" if i == 0 else "warm", ok=call is not None)
            if call is not None:
                self._measure(row, scenario, call, whole_trial=len(calls) == 1)
            row["correct"] = row["ok"] and str(row.get("answer", "")).strip() == scenario.expected
            status = "ok" if row["correct"] else f"FAILED: {row.get('error') or row.get('answer')!r}"
            print(f"  {section:<9} {row['label']:<14} {row['phase']:<5} wall {row.get('wall', float('nan')):7.3f} s"
                  f"  {status}", flush=True)
            rows.append(row)
        self.trials.extend(rows)
        return rows

    def _measure(self, row: dict[str, Any], scenario: Scenario, call: dict[str, Any], whole_trial: bool) -> None:
        """Fill `row` from one call's times and the requests that arrived during it."""
        reqs = [r for r in self.server.requests if call["t_start"] <= r.time <= call["t_end"]]
        roots = sorted((r for r in reqs if r.model == systems.ROOT_MODEL), key=lambda r: r.time)
        subs = [r for r in reqs if r.model != systems.ROOT_MODEL]
        wall, critical = call["wall"], row["critical_path"]
        row.update(answer=call["answer"], wall=wall, overhead_s=wall - critical,
                   overhead_ratio=(wall - critical) / critical, root_requests=len(roots), sub_requests=len(subs))
        if roots:
            row["first_root_request_s"] = roots[0].time - call["t_start"]
        texts = [request_text(r) for r in roots]
        per_request = [context_chars_in(t) for t in texts]
        row["context_chars_to_root"] = sum(per_request)
        row["context_chars_per_request"] = max(per_request, default=0)
        row["root_prompt_tokens"] = [prompt_tokens(r) for r in roots]
        found = [float(m) for t in texts for m in FANOUT_RE.findall(t)]
        if found:
            row["fanout_in_repl_s"] = found[-1]
        if subs:
            row["fanout_server_span_s"] = max(r.time for r in subs) + self.cfg.sub_latency - min(r.time for r in subs)
        if whole_trial:  # the server's counters cover the whole trial, so only a one-call trial owns them
            acct = self.server.accounting
            row["tokens"] = {
                "input_uncached_equivalent": acct["input"] + acct["cache_read"] + acct["cache_write"],
                "input": acct["input"], "cache_read": acct["cache_read"], "cache_write": acct["cache_write"],
                "billed_equivalent_input": acct["billed_equivalent_input"], "output": acct["output"],
            }


def rotate(items: list[str], k: int) -> list[str]:
    k %= max(1, len(items))
    return items[k:] + items[:k]


def run_iopub(cfg: Config) -> dict[str, Any]:
    """Section 5 in this process (it drives a real kernel through jupyter_client)."""
    if cfg.iopub_steps <= 0:
        return {"note": "Not measured (--iopub-steps 0)."}
    print(f"5. kernel IOPub bytes per step over a {cfg.iopub_steps}-step run", flush=True)
    try:
        from . import iopub

        result = iopub.measure(cfg.iopub_steps, cfg.iopub_latency)
    except Exception as exc:  # the kernel room missing or broken must not lose sections 1-4
        return {"note": f"Not measured: {type(exc).__name__}: {exc}"}
    result["summary"] = iopub.describe(result)
    print("  " + result["summary"][:200] + " ...", flush=True)
    return result


def run_sections(bench: Bench) -> None:
    cfg = bench.cfg
    print("1. orchestration overhead (4 root turns, a batch of 8, one more sub-call)", flush=True)
    for rep in range(cfg.repeats):
        for system in rotate(cfg.systems, rep):
            bench.trial("overhead", system, overhead(), runs=2)

    print(f"2. fan-out: {cfg.fanout} sub-calls in one batch", flush=True)
    variants: list[tuple[str, str, int | None]] = []
    for system in cfg.systems:
        if system == "ours":
            variants.append(("ours", f"ours c={cfg.fanout}", cfg.fanout))
            variants.append(("ours", "ours default", None))
        else:
            variants.append((system, f"{system} default", None))
    for rep in range(cfg.repeats):
        for k in range(len(variants)):
            system, label, conc = variants[(k + rep) % len(variants)]
            bench.trial("fanout", system, fanout(cfg.fanout), label=label, concurrency=conc, runs=2)

    print(f"3. tokens over a {cfg.steps}-step run", flush=True)
    for system in cfg.systems:
        bench.trial("tokens", system, long_run(cfg.steps))

    print("4. context scale", flush=True)
    for k, size in enumerate(cfg.sizes):
        for system in rotate(cfg.systems, k):
            bench.trial("scale", system, scale(size), memory=True)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                            "python": platform.python_version()}
    try:
        cpu = Path("/proc/cpuinfo").read_text()
        m = re.search(r"model name\s*:\s*(.+)", cpu)
        info["cpu"] = m.group(1).strip() if m else platform.processor()
        mem = re.search(r"MemTotal:\s*(\d+)", Path("/proc/meminfo").read_text())
        info["memory_gib"] = round(int(mem.group(1)) / 2**20, 1) if mem else None
    except OSError:
        pass
    return info


def versions(python: str) -> dict[str, str | None]:
    code = ("import json, importlib.metadata as m\nout = {}\nfor n in ('rlm-kernel', 'rlms', 'dspy', 'anthropic'):\n"
            "    try: out[n] = m.version(n)\n    except m.PackageNotFoundError: out[n] = None\nprint(json.dumps(out))")
    try:
        return json.loads(subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60).stdout)
    except (ValueError, subprocess.SubprocessError):
        return {"rlm-kernel": metadata.version("rlm-kernel")}


def parse_args(argv: list[str] | None) -> tuple[Config, Path, list[str] | None]:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny latencies, one repeat, small sizes (CI smoke)")
    p.add_argument("--systems", help=f"comma-separated subset of {','.join(SYSTEMS)} (default: all that import)")
    p.add_argument("--repeats", type=int, help="trials per system in sections 1 and 2 (default 3; quick 1)")
    p.add_argument("--root-latency", type=float, help="seconds per root turn (default 1.0; quick 0.05)")
    p.add_argument("--sub-latency", type=float, help="seconds per sub-call (default 0.5; quick 0.025)")
    p.add_argument("--fanout", type=int, help="sub-calls in the fan-out batch (default 64; quick 16)")
    p.add_argument("--steps", type=int, help="root turns in the token run (default 20; quick 6)")
    p.add_argument("--sizes", help="context sizes in characters, comma-separated (default 1e6,1e7,1e8; quick 1e5)")
    p.add_argument("--iopub-steps", type=int, help="steps of the kernel IOPub run (default 200; quick 8; 0 skips)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the trials (default: this one)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results",
                   help="output directory (default benchmarks/results)")
    a = p.parse_args(argv)
    cfg = Config(systems=[], python=a.python, quick=a.quick)
    if a.quick:
        cfg.root_latency, cfg.sub_latency, cfg.repeats, cfg.fanout, cfg.steps = 0.05, 0.025, 1, 16, 6
        cfg.iopub_steps = 8
        cfg.sizes = [100_000]
    for name in ("repeats", "root_latency", "sub_latency", "fanout", "steps", "iopub_steps"):
        if getattr(a, name) is not None:
            setattr(cfg, name, getattr(a, name))
    if a.sizes:
        cfg.sizes = [int(float(s)) for s in a.sizes.split(",")]
    wanted = a.systems.split(",") if a.systems else None
    return cfg, a.out, wanted


def main(argv: list[str] | None = None) -> int:
    cfg, out_dir, wanted = parse_args(argv)
    skipped: dict[str, str] = {}
    for name in wanted or list(SYSTEMS):
        if name not in SYSTEMS:
            raise SystemExit(f"unknown system {name!r}; choose from {', '.join(SYSTEMS)}")
        reason = systems.available(name, cfg.python)
        if reason is None:
            cfg.systems.append(name)
        elif wanted:
            raise SystemExit(reason)
        else:
            skipped[name] = reason
    if "ours" not in cfg.systems:
        raise SystemExit("rlm-kernel itself cannot be imported: " + skipped.get("ours", "?"))
    deno = systems.deno_probe() if "dspy" in cfg.systems else None
    started = time.time()
    load_start = os.getloadavg()
    print(f"systems: {', '.join(cfg.systems)}; root {cfg.root_latency} s, sub-call {cfg.sub_latency} s; "
          f"{cfg.repeats} repeat(s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="rlm-bench-") as tmp:
        bench = Bench(cfg, Path(tmp))
        with bench.server:
            run_sections(bench)
    io = run_iopub(cfg)
    summary = summarize(bench.trials, cfg)
    if (row := iopub_target(io)) is not None:
        summary["targets"].append(row)
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": machine(), "versions": versions(cfg.python),
        "settings": {"root_latency": cfg.root_latency, "sub_latency": cfg.sub_latency, "repeats": cfg.repeats,
                     "fanout": cfg.fanout, "steps": cfg.steps, "sizes": cfg.sizes, "quick": cfg.quick,
                     "root_model": systems.ROOT_MODEL, "sub_model": systems.SUB_MODEL},
        "skipped": skipped, "dspy_deno_sandbox": deno, "iopub": io,
        "load_average": {"start": load_start, "end": os.getloadavg()},
        "summary": summary, "trials": bench.trials,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    written = report.write(results, out_dir)
    print(f"wrote {', '.join(str(p) for p in [out_dir / 'results.json', *written])}")
    failed = [t for t in bench.trials if not t["correct"]]
    if failed:
        print(f"{len(failed)} trial(s) did not give the expected answer; see results.json", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
