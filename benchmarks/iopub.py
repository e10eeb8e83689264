"""Kernel and widget traffic: bytes on IOPub per step over a long `%%rlm` run, and whether they grow.

A real RLM kernel (rlm_kernel.kernel.testing: sandboxed Jupyter directories, jupyter_client)
runs `%%rlm` against the fake server; the scripted root model takes `steps` small steps, each
printing one short line. Every IOPub message of the cell is weighed (its JSON frames plus
buffers, as sent) and assigned to the step whose root request came last before it arrived."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from queue import Empty
from typing import Any

from rlm_kernel.testing.fake_anthropic import FakeAnthropic, Request

from .scenarios import Step, next_step_index, render_step

ROOT_MODEL = "claude-sonnet-5-5"


def _size(msg: dict[str, Any]) -> int:
    """Bytes of one message on the wire (JSON frames and buffers; the signature and ids aside)."""
    frames = (msg.get("header"), msg.get("parent_header"), msg.get("metadata"), msg.get("content"))
    n = sum(len(json.dumps(f, default=str, separators=(",", ":")).encode()) for f in frames)
    return n + sum(len(b) for b in msg.get("buffers") or [])


def script(steps: int) -> list[Step]:
    """`steps` root turns; every step's code and output have the same length (four-digit numbers),
    so any growth in traffic comes from the kernel or the widget, not from the script."""
    body = [Step(f"Step {k + 1000}.", f"v = {k + 1000} * 2\nprint('step {k + 1000}:', v)")
            for k in range(1, steps - 1)]
    return [*body, Step("Done.", "total = str(v)"), Step("Answer.", final_var="total")]


def measure(steps: int = 200, root_latency: float = 0.2) -> dict[str, Any]:
    from rlm_kernel.kernel.testing import KernelSession, jupyter_sandbox

    plan = script(steps)

    def respond(request: Request) -> str:
        index = next_step_index(json.dumps(request))
        return render_step("ours", plan[min(index, len(plan) - 1)], index + 1)

    with tempfile.TemporaryDirectory(prefix="rlm-iopub-") as tmp, jupyter_sandbox(Path(tmp)) as work, \
            FakeAnthropic(root_model=ROOT_MODEL, latency=root_latency) as srv:
        srv.responder = respond
        env = {"ANTHROPIC_API_KEY": "bench-key", "RLM_RUNS_DIR": str(Path(tmp) / "runs")}
        with KernelSession(work, env=env) as ks:
            assert ks.run("context = 'a small input'").status == "ok"
            t0 = time.monotonic()
            msg_id = ks.execute(f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT_MODEL} "
                                f"--max-iterations {len(plan) + 5}\nWhat is v at the end?")
            # Read IOPub here rather than with ks.collect(): each message's arrival time is needed.
            received: list[tuple[float, int, str]] = []
            deadline = t0 + 60 + len(plan) * (root_latency + 1.0)
            while time.monotonic() < deadline:
                try:
                    msg = ks.kc.get_iopub_msg(timeout=1.0)
                except Empty:
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                received.append((time.monotonic(), _size(msg), msg["msg_type"]))
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
            wall = time.monotonic() - t0
        starts = sorted(r.time for r in srv.requests if r.model == ROOT_MODEL)
    if len(starts) != steps:
        raise RuntimeError(f"the scripted {steps}-step run made {len(starts)} root requests; see the run log")
    return summarize(received, starts, wall, steps, root_latency)


def summarize(received: list[tuple[float, int, str]], starts: list[float], wall: float, steps: int,
              root_latency: float) -> dict[str, Any]:
    per_step = [0] * len(starts)
    by_type: Counter[str] = Counter()
    before = 0
    for t, size, kind in received:
        by_type[kind] += size
        k = sum(1 for s in starts if s <= t) - 1
        if k < 0:
            before += size
        else:
            per_step[k] += size
    # The first window also holds the widget's start-up traffic (messages arrive just after the next
    # request) and the last one the final answer and the finished tree, so neither counts for growth.
    body = per_step[1:-1] if len(per_step) > 3 else per_step
    n = len(body)
    mean_x, mean_y = (n - 1) / 2, sum(body) / max(1, n)
    slope = (sum((i - mean_x) * (y - mean_y) for i, y in enumerate(body))
             / max(1e-9, sum((i - mean_x) ** 2 for i in range(n))))
    window = max(1, n // 10)
    first, last = sum(body[:window]) / window, sum(body[-window:]) / window
    return {
        "steps": steps, "root_requests": len(starts), "root_latency": root_latency, "wall_s": wall,
        "messages": len(received), "total_bytes": sum(s for _, s, _ in received),
        "bytes_before_first_request": before, "bytes_per_step": per_step,
        "mean_bytes_per_step": mean_y, "first_tenth_mean": first, "last_tenth_mean": last,
        "growth_last_vs_first": last / first if first else None, "slope_bytes_per_step": slope,
        "final_step_bytes": per_step[-1] if per_step else 0, "bytes_by_type": dict(by_type),
    }


def describe(r: dict[str, Any]) -> str:
    grow = r["growth_last_vs_first"]
    flat = grow is not None and grow <= 1.2
    return (f"{r['steps']}-step `%%rlm` run in a real kernel with the run widget ({r['root_latency']} s per root "
            f"turn): {r['messages']:,} IOPub messages, {r['total_bytes']:,} bytes. Per step: mean "
            f"{r['mean_bytes_per_step']:,.0f} bytes; first tenth {r['first_tenth_mean']:,.0f}, last tenth "
            f"{r['last_tenth_mean']:,.0f} ({grow:.2f}×), slope {r['slope_bytes_per_step']:+.1f} bytes per step — "
            f"{'flat' if flat else '**grows with the run**'}. Before the first request (widget and its code): "
            f"{r['bytes_before_first_request']:,} bytes; the last step (final answer and the finished tree as "
            f"static HTML): {r['final_step_bytes']:,} bytes. By message type: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(r["bytes_by_type"].items(), key=lambda kv: -kv[1])) + ".")
