"""How each system under test is started against the fake server, in its own documented way.

Each adapter has `prepare()` (imports and one-time setup, kept out of the timed region: the first
`import anthropic` alone takes over a second here and is not what is being compared) and `run()`
(one complete RLM call, timed). Adapters run inside benchmarks.worker, one process per trial."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

API_KEY = "bench-key"
ROOT_MODEL = "claude-sonnet-5-5"
SUB_MODEL = "claude-haiku-5-5"
MAX_ITERATIONS = 30
PEERS_VENV = Path(__file__).resolve().parent / ".peers-venv"


@dataclass
class Settings:
    base_url: str  # the fake server's root, without /v1
    concurrency: int | None = None  # None: the system's default
    runs_dir: str | None = None


class System(Protocol):
    name: str

    def prepare(self, settings: Settings) -> None: ...

    def run(self, question: str, context: str, settings: Settings) -> str: ...


class Ours:
    """rlm-kernel's `rlm()` with the Anthropic provider."""

    name = "ours"

    def prepare(self, settings: Settings) -> None:
        import anthropic  # noqa: F401

        import rlm_kernel.engine.api
        import rlm_kernel.engine.clients.anthropic_client  # noqa: F401
        from rlm_kernel import warmup

        # What the kernel does as it starts (a script can call it too): the client, the I/O thread and
        # the first-request path, against a responder inside this process. Not timed, like the imports.
        warmup(provider="anthropic", base_url=settings.base_url, api_key=API_KEY).result(timeout=60)

    def run(self, question: str, context: str, settings: Settings) -> str:
        from rlm_kernel import rlm

        extra: dict[str, Any] = {}
        if settings.concurrency is not None:
            extra["concurrency"] = settings.concurrency
        # The fake model writes ```repl text for every system alike: compare on the fenced protocol.
        result = rlm(question, context=context, model=ROOT_MODEL, sub_model=SUB_MODEL, provider="anthropic",
                     base_url=settings.base_url, api_key=API_KEY, max_iterations=MAX_ITERATIONS,
                     runs_dir=settings.runs_dir, protocol="fences", **extra)
        return str(result.answer)


class Rlms:
    """The paper authors' `rlms` package (import name `rlm`), Anthropic backend, local REPL.

    Its AnthropicClient takes no base URL; the SDK reads ANTHROPIC_BASE_URL. Its batch
    concurrency (16, LMHandler.batch_max_concurrent) is not reachable from RLM(...)."""

    name = "rlms"

    def prepare(self, settings: Settings) -> None:
        os.environ["ANTHROPIC_BASE_URL"] = settings.base_url
        import anthropic  # noqa: F401
        import rlm
        import rlm.clients.anthropic
        import rlm.environments.local_repl  # noqa: F401

    def run(self, question: str, context: str, settings: Settings) -> str:
        from rlm import RLM

        engine = RLM(backend="anthropic", backend_kwargs={"model_name": ROOT_MODEL, "api_key": API_KEY},
                     other_backends=["anthropic"], other_backend_kwargs=[{"model_name": SUB_MODEL, "api_key": API_KEY}],
                     environment="local", max_iterations=MAX_ITERATIONS)
        try:
            return str(engine.completion(context, root_prompt=question).response)
        finally:
            engine.close()


class Dspy:
    """`dspy.RLM` with dspy's LocalInterpreter (a Python subprocess): its default Deno/Pyodide
    sandbox cannot start here (see deno_probe). Its batch concurrency (8 threads) is fixed."""

    name = "dspy"

    def prepare(self, settings: Settings) -> None:
        os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no metadata download at first call
        import dspy
        from dspy.primitives.local_interpreter import LocalInterpreter  # noqa: F401

        dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
        from dspy.clients import model_metadata

        model_metadata.source_info()  # load the bundled price snapshot now, not inside the timed call

    def run(self, question: str, context: str, settings: Settings) -> str:
        import dspy
        from dspy.primitives.local_interpreter import LocalInterpreter

        api_base = settings.base_url.rstrip("/") + "/v1"
        root = dspy.LM(f"anthropic/{ROOT_MODEL}", api_base=api_base, api_key=API_KEY, cache=False)
        sub = dspy.LM(f"anthropic/{SUB_MODEL}", api_base=api_base, api_key=API_KEY, cache=False)
        program = dspy.RLM("context, query -> answer", max_iters=MAX_ITERATIONS, max_llm_calls=1000,
                           sub_lm=sub, interpreter_factory=LocalInterpreter)
        with dspy.context(lm=root):
            return str(program(context=context, query=question).answer)


ADAPTERS: dict[str, type] = {"ours": Ours, "rlms": Rlms, "dspy": Dspy}


def get(name: str) -> System:
    return ADAPTERS[name]()


def available(name: str, python: str) -> str | None:
    """None if `python` can import what system `name` needs, else the reason it cannot."""
    module = {"ours": "rlm_kernel.engine.api", "rlms": "rlm.core.rlm", "dspy": "dspy.predict.rlm"}[name]
    probe = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True, timeout=120)
    if probe.returncode == 0:
        return None
    lines = (probe.stderr or probe.stdout).strip().splitlines()
    return f"{python} cannot import {module}: {lines[-1] if lines else 'unknown error'}"


def deno_probe(timeout: float = 60.0) -> dict[str, Any]:
    """Try to start dspy's default interpreter (Deno + Pyodide) the way dspy does, and say what
    happened: dspy.RLM is only measured with LocalInterpreter when this fails."""
    deno = shutil.which("deno") or str(PEERS_VENV / "deno" / "node_modules" / ".bin" / "deno")
    runner = next(PEERS_VENV.glob("lib/python*/site-packages/dspy/primitives/runner.js"), None)
    if not Path(deno).exists() or runner is None:
        return {"ok": False, "reason": "Deno or dspy's runner.js is not installed (run benchmarks/setup_peers.sh)"}
    version = subprocess.run([deno, "--version"], capture_output=True, text=True).stdout.splitlines()[:1]
    try:
        proc = subprocess.run([deno, "run", "--no-config", "--no-lock", "--node-modules-dir=false",
                               f"--allow-read={runner}", str(runner)], input="", capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "deno": version, "reason": f"runner.js did not start within {timeout:.0f} s"}
    errors = [line for line in (proc.stderr or "").splitlines() if "error" in line.lower()]
    if proc.returncode == 0 and not errors:
        return {"ok": True, "deno": version}
    import re

    reason = re.sub(r"\x1b\[[0-9;]*m", "", errors[0] if errors else f"exit status {proc.returncode}")
    return {"ok": False, "deno": version, "reason": reason.strip()}
