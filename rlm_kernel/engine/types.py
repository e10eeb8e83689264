"""Plain data types shared by every room: usage, model completions, cell outcomes, and the
two protocols (ModelClient, Executor) that the loop talks to.

Nothing here imports Jupyter; the kernel and the headless runner each supply an Executor."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Usage:
    """Token counts for one call or a sum of calls. `input_tokens` excludes cached tokens,
    as the Messages API reports them. `estimated` is True when any part was estimated from the
    text (engine/tokens.py) because the server reported no usage."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    calls: int = 0
    estimated: bool = False

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.calls += other.calls
        self.estimated = self.estimated or other.estimated

    @classmethod
    def sum(cls, usages: Iterable[Usage]) -> Usage:
        """One Usage adding up many (e.g. the per-model usages of a run)."""
        total = cls()
        for u in list(usages):
            total.add(u)
        return total

    def to_dict(self) -> dict[str, Any]:
        """The counts; `estimated` only when True, so records of measured usage look as before."""
        d: dict[str, Any] = asdict(self)
        if not self.estimated:
            d.pop("estimated")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> Usage:
        d = d or {}
        counts = {k: int(d.get(k, 0) or 0) for k in cls.__dataclass_fields__ if k != "estimated"}
        return cls(**counts, estimated=bool(d.get("estimated")))


@dataclass
class ToolCall:
    """One tool call in a reply (native tool use): the API's call id, the tool's name, its parsed input."""

    id: str
    name: str
    input: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "input": self.input}


@dataclass
class ToolSpec:
    """A tool offered to the root model: a name, what it is for, and a JSON schema of its input."""

    name: str
    description: str
    schema: dict[str, Any]


@dataclass
class Completion:
    """What a model client returns for one request. `text` is the reply's prose; `tool_calls` the
    tool calls it made (native tool use), in order."""

    text: str
    model: str
    usage: Usage
    stop_reason: str | None = None
    latency: float = 0.0
    tool_calls: list[ToolCall] = field(default_factory=list)


class ModelError(RuntimeError):
    """A model call failed for good (after the SDK's own retries). The message is for people."""


# Streaming callback: receives each text delta as it arrives (called on the model I/O thread).
TextCallback = Callable[[str], None]
# Streaming callback for tool input: (call's position in the reply, tool name, the input parsed so far,
# its last string cut off where the stream is), called as input arrives.
ToolCallback = Callable[[int, str, dict[str, Any]], None]


@runtime_checkable
class ModelClient(Protocol):
    """One backend (Anthropic, OpenAI-compatible, demo). Clients are created and used on the
    model I/O thread's event loop only (see engine.modelio)."""

    #: Short label shown to people, e.g. "anthropic", "openai-compatible", "demo (offline)".
    label: str

    async def complete(
        self,
        *,
        model: str,
        system: str,
        messages: list[dict[str, Any]],
        max_output_tokens: int,
        on_text: TextCallback | None = None,
        cache: bool = True,
        tools: list[ToolSpec] | None = None,
        on_tool: ToolCallback | None = None,
        temperature: float | None = None,
    ) -> Completion:
        """Send one request. `messages` are `{"role": "user"|"assistant", "content": str}`; with
        native tool use an assistant message may add `tool_calls` (ToolCall dicts) and a user message
        `tool_results` (`{"id", "content", "is_error"}`), which the client puts in its API's shape.
        With `cache`, the client marks cache breakpoints where its API supports them; `temperature`
        None leaves the provider's default."""
        ...

    def context_window(self, model: str) -> int | None:
        """Input window in tokens, or None when unknown (then no preflight check is made)."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class CellOutcome:
    """The result of running one generated code block.

    `outputs` are nbformat v4 output dicts (stream, display_data, execute_result, error)
    built without importing nbformat, so the record and the export share one shape."""

    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None  # {"ename", "evalue", "traceback": [str]}
    duration: float = 0.0
    timed_out: bool = False
    interrupted: bool = False
    execution_count: int | None = None


@runtime_checkable
class Executor(Protocol):
    """Runs generated code in a namespace that persists across steps. One that shows outputs as
    they happen (the kernel's) also has a `redact` attribute (str -> str), which the run sets to
    its redactor so that what it shows carries no secret either."""

    namespace: dict[str, Any]

    async def run_cell(self, code: str, *, timeout: float | None) -> CellOutcome:
        """Run `code`; never raises for errors in the code itself (they go in the outcome).
        KeyboardInterrupt (a person's interrupt) propagates after the outcome is recorded."""
        ...
