"""One eval_real task run by a peer (`rlms` 0.1.3 or `dspy.RLM` 3.4.1) against an OpenAI-compatible
server, in the peers' venv. benchmarks.eval_real starts it once per run and kills it at the time limit:

    benchmarks/.peers-venv/bin/python -m benchmarks.eval_peer '{"system": "rlms", "kind": "niah", ...}'

The task is regenerated from (kind, size, seed) by benchmarks.tasks, so both sides score the same
input. Prints one JSON line (answer, turns, sub-calls, tokens, seconds, error) and writes the
peer's own trajectory to `transcript`. Each peer is driven in its documented way, with the same
turn limit as ours; neither is told the window (neither has such a setting)."""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from .tasks import make


def run_rlms(task: Any, spec: dict[str, Any]) -> dict[str, Any]:
    from rlm import RLM
    from rlm.logger import RLMLogger

    kwargs: dict[str, Any] = {"base_url": spec["base_url"], "api_key": spec["api_key"]}
    if spec.get("temperature") is not None:
        kwargs["sampling_args"] = {"temperature": spec["temperature"]}
    logger = RLMLogger()
    engine = RLM(backend="openai", backend_kwargs={"model_name": spec["model"], **kwargs},
                 other_backends=["openai"], other_backend_kwargs=[{"model_name": spec["sub_model"], **kwargs}],
                 environment="local", max_iterations=spec["max_iterations"], max_timeout=spec.get("timeout"),
                 logger=logger)
    try:
        done = engine.completion(task.context, root_prompt=task.question)
    finally:
        engine.close()
    trajectory = logger.get_trajectory() or {}
    iterations = trajectory.get("iterations") or []
    subcalls = sum(len((block.get("result") or {}).get("rlm_calls") or [])
                   for it in iterations for block in it.get("code_blocks") or [])
    usage = done.usage_summary.model_usage_summaries.values()
    return {"answer": str(done.response), "turns": len(iterations), "subcalls": subcalls,
            "input_tokens": sum(u.total_input_tokens for u in usage),
            "output_tokens": sum(u.total_output_tokens for u in usage), "trajectory": trajectory}


def run_dspy(task: Any, spec: dict[str, Any]) -> dict[str, Any]:
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    import dspy
    from dspy.primitives.local_interpreter import LocalInterpreter

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    lm = {"api_base": spec["base_url"], "api_key": spec["api_key"], "cache": False}
    if spec.get("temperature") is not None:
        lm["temperature"] = spec["temperature"]
    root = dspy.LM(f"openai/{spec['model']}", **lm)
    sub = dspy.LM(f"openai/{spec['sub_model']}", **lm)
    program = dspy.RLM("context, query -> answer", max_iters=spec["max_iterations"], sub_lm=sub,
                       interpreter_factory=LocalInterpreter)
    with dspy.context(lm=root):
        done = program(context=task.context, query=task.question)
    steps = getattr(done, "trajectory", None) or []
    usage = [h.get("usage") or {} for h in root.history + sub.history]
    return {"answer": str(done.answer), "turns": len(root.history), "subcalls": len(sub.history),
            "input_tokens": sum(int(u.get("prompt_tokens") or 0) for u in usage),
            "output_tokens": sum(int(u.get("completion_tokens") or 0) for u in usage),
            "trajectory": json.loads(json.dumps(steps, default=str))}


def main(argv: list[str]) -> int:
    spec = json.loads(argv[0])
    task = make(spec["kind"], spec["size"], spec["seed"])
    t0 = time.monotonic()
    out: dict[str, Any] = {"answer": "", "turns": None, "subcalls": None, "error": None}
    try:
        out |= {"rlms": run_rlms, "dspy": run_dspy}[spec["system"]](task, spec)
    except Exception as exc:  # the row records it; the harness goes on with the next run
        out["error"] = f"{type(exc).__name__}: {exc}"
        out["traceback"] = traceback.format_exc(limit=6)
    out["seconds"] = round(time.monotonic() - t0, 3)
    Path(spec["transcript"]).write_text(json.dumps({"spec": spec, "question": task.question, **out}, indent=1,
                                                   default=str))
    out.pop("trajectory", None)
    out.pop("traceback", None)
    print(json.dumps(out, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
