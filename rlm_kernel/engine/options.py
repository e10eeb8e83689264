"""Run options. The names are the ones `%%rlm` uses (with dashes there), so the same words work
in `rlm(...)`, in the magic, in traitlets config and in the run record."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_ROOT_MODEL = "claude-sonnet-5-5"
DEFAULT_SUB_MODEL = "claude-haiku-5-5"


def default_runs_dir() -> Path:
    """`RLM_RUNS_DIR`, else ./rlm_runs, so a notebook's runs sit next to it."""
    return Path(os.environ.get("RLM_RUNS_DIR") or "rlm_runs")


@dataclass
class RLMOptions:
    #: Root model id. "demo" selects the offline demo model.
    model: str | None = None
    #: Model for llm_query / llm_query_batched and for children at the depth limit.
    sub_model: str | None = None
    #: "anthropic", "openai" (any OpenAI-compatible server) or "demo"; None picks from the
    #: environment: ANTHROPIC_API_KEY → anthropic, RLM_OPENAI_BASE_URL → openai, else an error.
    provider: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    max_iterations: int = 30
    max_depth: int = 2
    max_subcalls: int | None = 1000
    #: Budget on total tokens (input + output + cache) over the whole run tree.
    max_tokens: int | None = None
    #: Budget in dollars; only enforced for models with a known price.
    max_cost: float | None = None
    #: Seconds a single generated cell may run before it is interrupted.
    cell_timeout: float | None = 120.0
    #: Wall-clock seconds for the whole run.
    timeout: float | None = None
    #: Characters of cell output fed back to the model per step (head + tail).
    output_limit: int = 20_000
    #: Concurrent sub-calls in llm_query_batched (64 prompts at 32 take two rounds of latency).
    concurrency: int = 32
    #: Answer an identical sub-call (same model and prompt) once per run tree.
    memoize: bool = True
    #: Characters of the context shown to the root model as a head/tail preview (0: none).
    preview_chars: int = 2000
    #: Per-response output limit sent to the model; current models think adaptively and their thinking
    #: counts toward it, so it is generous (it bounds, it does not bill).
    max_output_tokens: int = 16_000
    #: Retries left to the SDK (it backs off and honours retry-after).
    max_retries: int = 4
    #: Per-request timeout in seconds handed to the SDK.
    request_timeout: float = 600.0
    #: Where run logs (JSON lines) go.
    runs_dir: str | None = None
    #: Pause before every generated cell for review (kernel/widget).
    approve: bool = False
    #: Prompt caching breakpoints (Anthropic).
    cache: bool = True
    #: Price overrides: {model: {"input": $/Mtok, "output": ..., "cache_read": ..., "cache_write": ...}}.
    prices: dict[str, dict[str, float]] | None = None

    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def merged(self, **overrides: Any) -> RLMOptions:
        """A copy with the given non-None overrides; unknown names are an error that lists the known ones."""
        unknown = sorted(set(overrides) - set(self.names()))
        if unknown:
            raise TypeError(f"unknown RLM option(s) {', '.join(unknown)}; known: {', '.join(self.names())}")
        data = asdict(self)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return RLMOptions(**data)

    @classmethod
    def from_recorded(cls, recorded: dict[str, Any] | None) -> RLMOptions:
        """The options a run log recorded (`run_started.options`); names this version does not know are
        skipped, so older and newer logs still load."""
        known = set(cls.names())
        return cls().merged(**{k: v for k, v in (recorded or {}).items() if k in known})

    def public_dict(self) -> dict[str, Any]:
        """Options as recorded: never the key."""
        d = asdict(self)
        d.pop("api_key", None)
        return d

    def resolved_runs_dir(self) -> Path:
        return Path(self.runs_dir) if self.runs_dir else default_runs_dir()
