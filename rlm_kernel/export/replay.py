"""`%rlm replay LOG [--live]`: give a namespace the helpers a recorded run's code expects.

An exported notebook's cells call llm_query, llm_query_batched, rlm_query, FINAL, FINAL_VAR and
`answer` exactly as the model wrote them. In replay mode the three sub-call helpers answer from the
run's log (engine.replay.RecordedAnswers: no model, no key, no network; an unrecorded prompt raises
ReplayMiss). In live mode they call the models the run was configured with. FINAL, FINAL_VAR and
`answer` are the engine's own, so a cell that failed on them during the run fails the same way."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.budgets import Budget
from ..engine.clientset import make_clients
from ..engine.events import EventBus
from ..engine.modelio import default_io
from ..engine.options import RLMOptions
from ..engine.record import RunLog
from ..engine.replay import RecordedAnswers, ReplayMiss
from ..engine.run import Run
from ..engine.steering import Steering

__all__ = ["ReplayMiss", "ReplaySession", "install_replay"]

SUBCALL_HELPERS = ("llm_query", "llm_query_batched", "rlm_query", "rlm_query_batched")


@dataclass
class ReplaySession:
    """What install_replay did; str() is the one line `%rlm replay` prints."""

    log_path: Path
    run_id: str
    live: bool
    recorded: int  # sub-call answers in the recording
    model: str | None = None
    sub_model: str | None = None

    def __str__(self) -> str:
        if self.live:
            return (f"Live mode for run {self.run_id}: sub-calls go to {self.sub_model or 'the sub-model'} "
                    f"(root model {self.model}); answers may differ from the recording.")
        return (f"Replaying run {self.run_id} from {self.log_path}: {self.recorded:,} recorded sub-call "
                "answers; no model, no key and no network are used.")


class _Namespace:
    """The part of the Executor protocol a Run needs outside the loop: a namespace."""

    def __init__(self, namespace: dict[str, Any]) -> None:
        self.namespace = namespace

    async def run_cell(self, code: str, *, timeout: float | None) -> Any:  # pragma: no cover - never called
        raise RuntimeError("replay helpers do not run cells")


def _namespace_of(target: Any) -> dict[str, Any]:
    ns = getattr(target, "user_ns", None)  # an IPython shell
    if ns is None:
        ns = getattr(target, "namespace", None)  # an Executor
    if ns is None and isinstance(target, dict):
        ns = target
    if not isinstance(ns, dict):
        raise TypeError(f"install_replay needs an IPython shell or a namespace dict, not {type(target).__name__}")
    return ns


def recorded_options(log: RunLog) -> RLMOptions:
    """The run's options as recorded (the key never is; live mode finds it in the environment)."""
    started = log.started()
    if started is None:
        raise ValueError(f"{log.path} has no run_started event: it is not an RLM run log")
    return RLMOptions.from_recorded(started.get("options"))


def install_replay(target: Any, log_path: str | Path, *, live: bool = False) -> ReplaySession:
    """Bind the run's helpers into `target` (an IPython shell or a namespace dict).

    `context` itself is left alone: the notebook's context cell binds it. Raises FileNotFoundError
    for a missing log, ValueError for a file that is not a run log, and (live mode) the engine's
    ConfigError when no model is configured."""
    path = Path(log_path)
    if not path.exists():
        raise FileNotFoundError(f"{path.name} is not in {path.resolve().parent}: copy it next to this notebook "
                                "(it holds the run's recorded sub-call answers), then run this cell again")
    log = RunLog.read(path)
    options = recorded_options(log)
    started = log.started() or {}
    ns = _namespace_of(target)
    io = default_io()
    # Replay never calls a model; the offline demo client stands in so no key is needed.
    clients = make_clients(options if live else RLMOptions(provider="demo"), io)
    run = Run(str(started.get("question") or ""), None, options, bus=EventBus(), io=io, clients=clients,
              steering=Steering(), budget=Budget(options), executor=_Namespace(ns),
              run_id=str(started.get("run_id")))
    run.log_path = None  # live child runs must not append to the recorded log
    before = {name: ns[name] for name in ("context", "context_0") if name in ns}
    run.bind()
    for name in ("context", "context_0"):  # the notebook's context cell binds them
        if name in before:
            ns[name] = before[name]
        else:
            ns.pop(name, None)
    answers = RecordedAnswers.from_log(log)
    if not live:
        answers.bind(ns)
    return ReplaySession(path, run.run_id, live, len(answers), clients.root_model if live else started.get("model"),
                         clients.sub_model if live else started.get("sub_model"))
