"""Run options. The names are the ones `%%rlm` uses (with dashes there), so the same words work
in `rlm(...)`, in the magic, in traitlets config and in the run record."""

from __future__ import annotations

import getpass
import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_ROOT_MODEL = "claude-sonnet-5-5"
DEFAULT_SUB_MODEL = "claude-haiku-5-5"


def default_runs_dir() -> Path:
    """`RLM_RUNS_DIR`, else ./rlm_runs, so a notebook's runs sit next to it. A kernel started in a folder
    it cannot write (a remote kernel's image, a read-only share) records to a temporary folder instead
    and says so once: set RLM_RUNS_DIR to a persistent volume there."""
    if os.environ.get("RLM_RUNS_DIR"):
        return Path(os.environ["RLM_RUNS_DIR"])
    local = Path("rlm_runs")
    if os.access(local if local.is_dir() else Path.cwd(), os.W_OK):
        return local
    fallback = Path(tempfile.gettempdir()) / f"rlm_runs-{getpass.getuser()}"
    if fallback not in _WARNED:
        _WARNED.add(fallback)
        warnings.warn(f"rlm: {Path.cwd()} is not writable, so runs are recorded in {fallback}; set RLM_RUNS_DIR "
                      "to a persistent folder to keep them", stacklevel=2)
    return fallback


_WARNED: set[Path] = set()


class OptionError(ValueError):
    """An option's value is out of its range or of the wrong type; the message names the option."""


def _opt(default: Any, help: str, *, least: float | None = None, above: float | None = None, **kw: Any) -> Any:
    """A field whose help text is read by the kernel's config traits and `%%rlm --help`. A number
    option says its range here: `least` (value >= least) or `above` (value > above)."""
    meta: dict[str, Any] = {"help": help}
    if least is not None:
        meta["least"] = least
    if above is not None:
        meta["above"] = above
    return field(default=default, metadata=meta, **kw)


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
    protocol: str = _opt("auto", "How the root model runs code and answers: 'tools' (native tool use: a python "
                                 "tool and an answer tool) or 'fences' (```repl blocks and FINAL(...) in text); "
                                 "'auto' uses tools for Anthropic models and fences elsewhere.")
    prompt: str = _opt("auto", "System prompt: 'full' (with a worked example), 'compact' (for small models; 'auto' "
                               "picks it when the root model's window is 16k tokens or less) or 'legacy' (the "
                               "0.1 prompt, fences only).")
    max_iterations: int = _opt(30, "Root model turns before one forced call for the answer.", least=1)
    max_depth: int = _opt(2, "Levels of rlm_query children; at the limit rlm_query acts as llm_query.", least=0)
    max_subcalls: int | None = _opt(1000, "Sub-calls over the whole run tree.", least=1)
    max_tokens: int | None = _opt(None, "Budget on total tokens (input + output + cache) over the run tree.",
                                  least=1)
    max_cost: float | None = _opt(None, "Dollar budget; enforced for models with a known price.", above=0)
    cell_timeout: float | None = _opt(120.0, "Seconds one generated cell may run before it is interrupted.",
                                      above=0)
    timeout: float | None = _opt(None, "Wall-clock seconds for the whole run.", above=0)
    output_limit: int | None = _opt(None, "Characters of cell output the model sees per step (head + tail); "
                                          "unset: a quarter of the root model's window, at most 20,000.", least=1)
    context_window: int | None = _opt(None, "Input window of the root model in tokens; unset: known for Claude, "
                                            "read from an OpenAI-compatible server that reports it (vLLM, "
                                            "llama.cpp), else 8,192 is assumed.", least=1)
    sub_context_window: int | None = _opt(None, "Input window of the sub-model in tokens; unset: as for "
                                                "context_window (which it defaults to for the same model).",
                                          least=1)
    concurrency: int = _opt(32, "Most sub-calls in flight over the run tree (llm_query_batched, llm_query, "
                                "children). A ceiling: it narrows on 429/529 rate limits and widens again as "
                                "calls succeed.", least=1)
    batch_api: str = _opt("on", "Anthropic Message Batches API (half price; answers in minutes, at most 24 h): "
                                "'on' for llm_query_batched(..., batch=True), 'auto' also for any fan-out of "
                                "batch_threshold prompts or more, 'off' never (batch=True runs ordinary calls).")
    batch_threshold: int = _opt(1000, "Prompts in one llm_query_batched from which batch_api='auto' uses the "
                                      "Message Batches API.", least=1)
    batch_poll: float = _opt(10.0, "Seconds between progress checks of a running Message Batch.", above=0)
    memoize: bool = _opt(True, "Answer an identical sub-call (same model and prompt) once per run tree.")
    preview_chars: int | None = _opt(None, "Characters of the context shown to the root model as a head/tail "
                                           "preview (0: none; unset: 2,000, or 400 for a root window of 16k "
                                           "tokens or less, where small models copy a long preview into code).",
                                     least=0)
    max_output_tokens: int = _opt(16_000, "Output tokens per model response; adaptive thinking counts toward "
                                          "it, so it is generous (it bounds, it does not bill).",
                                  least=1)
    temperature: float | None = _opt(None, "Sampling temperature of an OpenAI-compatible server, root model and "
                                           "sub-calls (0: greedy sampling; unset: the server's default). "
                                           "The Anthropic Messages API takes no sampling parameters.", least=0)
    max_retries: int = _opt(4, "Retries left to the model SDK (it backs off and honours retry-after).", least=0)
    request_timeout: float = _opt(600.0, "Seconds per model request, handed to the SDK.", above=0)
    runs_dir: str | None = _opt(None, "Directory for run logs (default: $RLM_RUNS_DIR, else ./rlm_runs).")
    approve: bool = _opt(False, "Pause before every generated cell for review.")
    cache: bool = _opt(True, "Prompt caching breakpoints (Anthropic).")
    prices: dict[str, dict[str, float]] | None = _opt(  # noqa: RUF009 - _opt is dataclasses.field
        None, 'Price overrides: {model: {"input": $/Mtok, "output": ..., "cache_read": ..., "cache_write": ...}}.')

    def __post_init__(self) -> None:
        for f in fields(self):
            check_option(f.name, getattr(self, f.name))

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
        skipped, and so are values out of range (an older version let them through), so any log loads."""
        known = set(cls.names())
        return cls().merged(**{k: v for k, v in (recorded or {}).items() if k in known and _allowed(k, v)})

    def public_dict(self) -> dict[str, Any]:
        """Options as recorded: never the key."""
        d = asdict(self)
        d.pop("api_key", None)
        return d

    def resolved_runs_dir(self) -> Path:
        return Path(self.runs_dir) if self.runs_dir else default_runs_dir()


_FIELDS = {f.name: f for f in fields(RLMOptions)}


def _optional(name: str) -> bool:
    return "None" in str(_FIELDS[name].type)  # annotations are strings here: "int | None"


def _whole(name: str) -> bool:
    return str(_FIELDS[name].type).startswith("int")


def range_text(name: str) -> str | None:
    """The allowed values of a number option in words ("a whole number of at least 1"), else None."""
    meta = _FIELDS[name].metadata
    if "least" not in meta and "above" not in meta:
        return None
    kind = "a whole number" if _whole(name) else "a number"
    bound = f"of at least {meta['least']:g}" if "least" in meta else f"above {meta['above']:g}"
    return f"{kind} {bound}{' (or None for no limit)' if _optional(name) else ''}"


def check_option(name: str, value: Any) -> None:
    """Raise OptionError, one line naming the option and its range, when `value` is outside it."""
    rule = range_text(name) if name in _FIELDS else None
    if rule is None or (value is None and _optional(name)):
        return
    meta = _FIELDS[name].metadata
    number = (int,) if _whole(name) else (int, float)
    ok = isinstance(value, number) and not isinstance(value, bool) and value == value and (
        value >= meta["least"] if "least" in meta else value > meta["above"])
    if not ok:
        raise OptionError(f"{name} must be {rule}, got {value!r}")


def _allowed(name: str, value: Any) -> bool:
    try:
        check_option(name, value)
    except OptionError:
        return False
    return True
