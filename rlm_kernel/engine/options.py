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


def _opt(default: Any, help: str, **kw: Any) -> Any:
    """A field whose help text is read by the kernel's config traits and `%%rlm --help`."""
    return field(default=default, metadata={"help": help}, **kw)


@dataclass
class RLMOptions:
    model: str | None = _opt(None, "Root model id; 'demo' selects the offline demo model.")
    sub_model: str | None = _opt(None, "Model for llm_query / llm_query_batched and for children at the "
                                       "depth limit.")
    provider: str | None = _opt(None, "'anthropic', 'openai' (any OpenAI-compatible server) or 'demo'; unset "
                                      "picks from the environment: ANTHROPIC_API_KEY -> anthropic, "
                                      "RLM_OPENAI_BASE_URL -> openai.")
    base_url: str | None = _opt(None, "API base URL (a local or proxy server).")
    api_key: str | None = _opt(None, "API key; never recorded (the kernel reads it from the environment only).",
                               repr=False)
    max_iterations: int = _opt(30, "Root model turns before one forced call for the answer.")
    max_depth: int = _opt(2, "Levels of rlm_query children; at the limit rlm_query acts as llm_query.")
    max_subcalls: int | None = _opt(1000, "Sub-calls over the whole run tree.")
    max_tokens: int | None = _opt(None, "Budget on total tokens (input + output + cache) over the run tree.")
    max_cost: float | None = _opt(None, "Dollar budget; enforced for models with a known price.")
    cell_timeout: float | None = _opt(120.0, "Seconds one generated cell may run before it is interrupted.")
    timeout: float | None = _opt(None, "Wall-clock seconds for the whole run.")
    output_limit: int | None = _opt(None, "Characters of cell output the model sees per step (head + tail); "
                                          "unset: a quarter of the root model's window, at most 20,000.")
    context_window: int | None = _opt(None, "Input window of the root model in tokens; unset: known for Claude, "
                                            "read from an OpenAI-compatible server that reports it (vLLM, "
                                            "llama.cpp), else 8,192 is assumed.")
    sub_context_window: int | None = _opt(None, "Input window of the sub-model in tokens; unset: as for "
                                                "context_window (which it defaults to for the same model).")
    concurrency: int = _opt(32, "Concurrent sub-calls in llm_query_batched (64 prompts at 32 take two rounds).")
    memoize: bool = _opt(True, "Answer an identical sub-call (same model and prompt) once per run tree.")
    preview_chars: int = _opt(2000, "Characters of the context shown to the root model as a head/tail "
                                    "preview (0: none).")
    max_output_tokens: int = _opt(16_000, "Output tokens per model response; adaptive thinking counts toward "
                                          "it, so it is generous (it bounds, it does not bill).")
    max_retries: int = _opt(4, "Retries left to the model SDK (it backs off and honours retry-after).")
    request_timeout: float = _opt(600.0, "Seconds per model request, handed to the SDK.")
    runs_dir: str | None = _opt(None, "Directory for run logs (default: $RLM_RUNS_DIR, else ./rlm_runs).")
    approve: bool = _opt(False, "Pause before every generated cell for review.")
    cache: bool = _opt(True, "Prompt caching breakpoints (Anthropic).")
    prices: dict[str, dict[str, float]] | None = _opt(  # noqa: RUF009 - _opt is dataclasses.field
        None, 'Price overrides: {model: {"input": $/Mtok, "output": ..., "cache_read": ..., "cache_write": ...}}.')

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
