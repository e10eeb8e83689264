"""What every protocol shares: the step it hands back to the loop, the live view of a reply as it
streams, and the conversation messages it makes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..types import Completion, ToolSpec

if TYPE_CHECKING:
    from ..run import Run


@dataclass
class Step:
    """The outcome of one reply: an answer that ends the run, or what to tell the model next
    (`feedback` text and, with native tool use, one result per tool call)."""

    answer: str | None = None
    source: str = ""
    feedback: str = ""
    results: list[dict[str, Any]] = field(default_factory=list)


class LiveTurn:
    """Turns a streaming reply into the text people watch: prose as it comes, and the code of each
    python tool call as a ```python block growing with the tool's streamed input. `text` is all of
    it, so the record's turn text equals what was streamed."""

    def __init__(self, emit: Callable[[str], None], code_tool: str = "python") -> None:
        self._emit, self._code_tool = emit, code_tool
        self._parts: list[str] = []
        self._shown: dict[int, str] = {}  # call position -> code shown so far
        self._open: int | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def _put(self, piece: str) -> None:
        if piece:
            self._parts.append(piece)
            self._emit(piece)

    def _close(self) -> None:
        if self._open is not None:
            self._put("\n```\n")
            self._open = None

    def on_text(self, delta: str) -> None:
        self._close()
        self._put(delta)

    def on_tool(self, position: int, name: str, snapshot: dict[str, Any]) -> None:
        code = snapshot.get("code")
        if name != self._code_tool or not isinstance(code, str):
            return
        if self._open != position:
            self._close()
            self._put(("\n\n" if self._parts else "") + "```python\n")
            self._open = position
            self._shown.setdefault(position, "")
        shown = self._shown[position]
        if code.startswith(shown) and len(code) > len(shown):
            self._put(code[len(shown):])
            self._shown[position] = code

    def finish(self, c: Completion) -> str:
        """Complete the view with whatever the stream did not show (servers that send a call whole)."""
        for position, call in enumerate(c.tool_calls):
            if call.name == self._code_tool and isinstance(call.input.get("code"), str):
                self.on_tool(position, call.name, call.input)
            elif call.name != self._code_tool:
                self._close()
                shown = ", ".join(f"{k}={v!r}" for k, v in call.input.items())
                self._put(f"\n\n`{call.name}({shown})`")
        self._close()
        return self.text


class Protocol:
    """How the root model runs code and answers. Subclasses: fences.FencedProtocol (code in
    ```repl blocks, FINAL(...) in text) and tools.ToolProtocol (native tool use)."""

    name = ""
    #: How this protocol runs code, as the feedback says it.
    how = "a ```repl block"
    tools: ClassVar[list[ToolSpec] | None] = None

    def live(self, emit: Callable[[str], None]) -> LiveTurn:
        return LiveTurn(emit)

    def assistant_message(self, c: Completion) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": c.text}
        if c.tool_calls:
            message["tool_calls"] = [call.to_dict() for call in c.tool_calls]
        return message

    def user_message(self, step: Step, text: str) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "user", "content": text}
        if step.results:
            message["tool_results"] = step.results
        return message

    def system_prompt(self, run: Run) -> str:
        from .. import prompts

        return prompts.system_prompt(run, self.name)

    def first_user(self, run: Run, question: str, summary: str) -> str:
        from .. import prompts

        return prompts.first_user(question, summary, self.name)

    async def act(self, run: Run, c: Completion) -> Step:
        raise NotImplementedError

    def forced_answer(self, run: Run, c: Completion) -> str | None:
        raise NotImplementedError
