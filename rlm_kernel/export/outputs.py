"""Recorded cell outputs turned into valid, shareable nbformat outputs.

The run record keeps outputs in nbformat v4 shape, but written by executors that do not import
nbformat, so fields may be missing or lists of lines. Here each output is normalised, redacted,
and cut to a size a notebook can carry (with a note saying what was cut)."""

from __future__ import annotations

import ast
import base64
import json
from typing import Any

from nbformat import NotebookNode, from_dict

from ..engine.redaction import Redactor
from ..engine.text import is_binary, joined


def base64_payload(value: Any) -> str:
    """A binary output as nbformat stores it (base64 text). Bytes that reached the log unencoded are
    written as their repr by the log writer; both forms are turned back into base64 here."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    text = joined(value)
    if text.startswith(("b'", 'b"')):
        try:
            raw = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
        if isinstance(raw, bytes):
            return base64.b64encode(raw).decode("ascii")
    return text


def cut(text: str, limit: int) -> str:
    """`text` if it fits in `limit` characters, else its head and tail around a note."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    note = (f"\n[… {len(text) - limit:,} characters cut from this output by the notebook export "
            f"(max_output_chars={limit:,}); the full text is in the run log …]\n")
    return text[:head] + note + (text[-tail:] if tail else "")


class OutputCleaner:
    """Normalises, redacts and cuts outputs; remembers whether anything was cut."""

    def __init__(self, redactor: Redactor, max_chars: int) -> None:
        self.redactor = redactor
        self.max_chars = max_chars
        self.cut_count = 0

    def text(self, s: str) -> str:
        s = self.redactor.text(s)
        if len(s) > self.max_chars:
            self.cut_count += 1
            return cut(s, self.max_chars)
        return s

    def output(self, out: dict[str, Any], execution_count: int | None) -> NotebookNode | None:
        kind = out.get("output_type")
        if kind == "stream":
            name = out.get("name") if out.get("name") in ("stdout", "stderr") else "stdout"
            return from_dict({"output_type": "stream", "name": name, "text": self.text(joined(out.get("text", "")))})
        if kind in ("display_data", "update_display_data", "execute_result"):
            node: dict[str, Any] = {"output_type": "display_data" if kind != "execute_result" else kind,
                                    "data": self.bundle(out.get("data") or {}),
                                    "metadata": dict(out.get("metadata") or {})}
            if kind == "execute_result":
                node["execution_count"] = out.get("execution_count", execution_count)
            return from_dict(node)
        if kind == "error":
            tb = out.get("traceback") or []
            tb_lines = [self.redactor.text(joined(line)) for line in (tb if isinstance(tb, list) else [tb])]
            total = sum(len(line) for line in tb_lines)
            if total > self.max_chars:
                self.cut_count += 1
                tb_lines = cut("\n".join(tb_lines), self.max_chars).split("\n")
            return from_dict({"output_type": "error", "ename": self.redactor.text(str(out.get("ename", "Error"))),
                              "evalue": self.text(str(out.get("evalue", ""))), "traceback": tb_lines})
        return None  # clear_output and unknown kinds carry nothing worth keeping

    def bundle(self, data: dict[str, Any]) -> dict[str, Any]:
        """A mimebundle with text redacted and cut; binary payloads that are too large are left
        out and named in text/plain, so a reader knows something was there."""
        clean: dict[str, Any] = {}
        notes: list[str] = []
        for mime, value in data.items():
            if is_binary(mime):
                raw = base64_payload(value)
                if len(raw) > self.max_chars:
                    self.cut_count += 1
                    notes.append(f"[{mime} output of about {len(raw) * 3 // 4:,} bytes left out by the notebook "
                                 f"export (max_output_chars={self.max_chars:,})]")
                else:
                    clean[mime] = raw
            elif mime.endswith("json") and not isinstance(value, str):
                if len(json.dumps(value, ensure_ascii=False)) > self.max_chars:
                    self.cut_count += 1
                    notes.append(f"[{mime} output left out by the notebook export: larger than "
                                 f"max_output_chars={self.max_chars:,}]")
                else:
                    clean[mime] = self.redactor.deep(value)
            else:
                clean[mime] = self.text(joined(value))
        if notes:
            plain = clean.get("text/plain", "")
            clean["text/plain"] = "\n".join([plain, *notes] if plain else notes)
        return clean

    def outputs(self, outs: list[dict[str, Any]], execution_count: int | None) -> list[NotebookNode]:
        cleaned = (self.output(o, execution_count) for o in outs if isinstance(o, dict))
        return [o for o in cleaned if o is not None]
