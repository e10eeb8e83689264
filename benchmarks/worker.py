"""One trial in a fresh process: build the context, run one system once, write what was measured.

    python -m benchmarks.worker SPEC.json

SPEC holds system, context_spec, question, base_url, concurrency, runs_dir, runs (how many
calls one after another: the first is "cold", paying one-time costs such as creating the SDK
client; later ones are "warm"), memory (bool: sample RSS during the first call) and out (where
to write the result JSON). Times are time.monotonic(), which on Linux is one clock
for every process on the machine, so they line up with the fake server's request times."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path

from . import procmem
from .scenarios import build_context
from .systems import Settings, get


def clean_environment() -> None:
    """No real credentials or endpoints can leak into a trial."""
    for key in list(os.environ):
        if key.startswith(("ANTHROPIC_", "OPENAI_", "RLM_")):
            del os.environ[key]


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    clean_environment()
    settings = Settings(base_url=spec["base_url"], concurrency=spec.get("concurrency"), runs_dir=spec.get("runs_dir"))
    out: dict[str, object] = {"system": spec["system"], "pid": os.getpid()}
    try:
        system = get(spec["system"])
        system.prepare(settings)
        context = build_context(spec["context_spec"])
        out["context_chars"] = len(context)
        gc.collect()
        memory = bool(spec.get("memory"))
        if memory:
            out["peak_reset"] = procmem.reset_peak()
            out["rss_before"] = procmem.tree_rss()
        runs = []
        for i in range(int(spec.get("runs", 1))):
            sampler = procmem.PeakSampler() if memory and i == 0 else None
            with sampler or contextlib.nullcontext():
                t0 = time.monotonic()
                answer = system.run(spec["question"], context, settings)
                t1 = time.monotonic()
            if sampler is not None:
                out["rss_peak_tree"] = sampler.peak
                out["rss_peak_self"] = procmem.own_peak()
            runs.append({"answer": answer, "t_start": t0, "t_end": t1, "wall": t1 - t0})
        out.update(ok=True, runs=runs)
    except BaseException as exc:  # report, never hang the orchestrator
        out.update(ok=False, error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()[-4000:])
    Path(spec["out"]).write_text(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
