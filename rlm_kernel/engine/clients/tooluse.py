"""Native tool use in the two APIs' shapes, shared by the SDK clients.

The engine keeps one neutral conversation: an assistant message may carry `tool_calls`
(`{"id", "name", "input"}`) and a user message `tool_results` (`{"id", "content", "is_error"}`).
Here that becomes Anthropic content blocks (tool_use / tool_result) or OpenAI chat messages
(`tool_calls` on the assistant, one `role: "tool"` message per result), and streamed tool input
is parsed as it grows, so the tree can show code while the model is still writing it."""

from __future__ import annotations

import json
from typing import Any

import jiter

from ..types import ToolCallback, ToolSpec


# --- tool definitions -----------------------------------------------------------------------
def anthropic_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"name": t.name, "description": t.description, "input_schema": t.schema} for t in tools]


def openai_tools(tools: list[ToolSpec]) -> list[dict[str, Any]]:
    return [{"type": "function", "function": {"name": t.name, "description": t.description,
                                              "parameters": t.schema}} for t in tools]


# --- conversations --------------------------------------------------------------------------
def anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages as Messages API messages: tool results first in their user message, as the
    API requires, then any text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        calls, results = m.get("tool_calls") or [], m.get("tool_results") or []
        text = m.get("content") or ""
        if not calls and not results:
            out.append({"role": m["role"], "content": text})
            continue
        blocks: list[dict[str, Any]] = []
        for r in results:
            block: dict[str, Any] = {"type": "tool_result", "tool_use_id": r["id"], "content": r["content"]}
            if r.get("is_error"):
                block["is_error"] = True
            blocks.append(block)
        if text:
            blocks.append({"type": "text", "text": text})
        blocks += [{"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["input"]} for c in calls]
        out.append({"role": m["role"], "content": blocks})
    return out


def openai_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages as chat-completions messages: an assistant's calls in `tool_calls`, each
    result as a `tool` message, a user message's own text after its results."""
    out: list[dict[str, Any]] = []
    for m in messages:
        calls, results = m.get("tool_calls") or [], m.get("tool_results") or []
        text = m.get("content") or ""
        if calls:
            out.append({"role": "assistant", "content": text or None, "tool_calls": [
                {"id": c["id"], "type": "function",
                 "function": {"name": c["name"], "arguments": json.dumps(c["input"])}} for c in calls]})
            continue
        out += [{"role": "tool", "tool_call_id": r["id"], "content": r["content"]} for r in results]
        if text or not results:
            out.append({"role": m["role"], "content": text})
    return out


# --- streamed input -------------------------------------------------------------------------
class ToolInputs:
    """Tool calls being streamed: their ids, names and raw JSON so far, by the API's index.

    `feed` reports each grown input to `on_tool`, parsed leniently (an unfinished string shows
    as far as it has come); `calls` gives the finished (position, id, name, input) in order."""

    def __init__(self, on_tool: ToolCallback | None) -> None:
        self.on_tool = on_tool
        self._calls: dict[int, list[Any]] = {}  # index -> [id, name, raw json]

    def start(self, index: int, call_id: str | None, name: str | None) -> None:
        entry = self._calls.setdefault(index, ["", "", ""])
        if call_id:
            entry[0] = call_id
        if name and not entry[1]:  # sent once, in the call's first chunk
            entry[1] = name

    def feed(self, index: int, piece: str) -> None:
        entry = self._calls.setdefault(index, ["", "", ""])
        entry[2] += piece
        if self.on_tool is not None and piece:
            snapshot = parse_partial(entry[2])
            if snapshot is not None:
                self.on_tool(self.position(index), entry[1], snapshot)

    def position(self, index: int) -> int:
        return sorted(self._calls).index(index)

    def finished(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(id, name, input) of every call, in reply order; input that is not a JSON object is kept
        under "_raw" so the protocol can tell the model what was wrong with it."""
        out = []
        for index in sorted(self._calls):
            call_id, name, raw = self._calls[index]
            try:
                value = json.loads(raw) if raw.strip() else {}
            except ValueError:
                value = None
            out.append((call_id or f"call_{index}", name, value if isinstance(value, dict) else {"_raw": raw}))
        return out


def parse_partial(raw: str) -> dict[str, Any] | None:
    """A JSON object that may be cut off anywhere, as far as it goes; None if not an object (yet)."""
    if not raw.strip():
        return None
    try:
        value = jiter.from_json(raw.encode(), partial_mode="trailing-strings")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
