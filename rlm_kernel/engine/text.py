"""Turning cell outputs into the plain text a model reads, and keeping that text short.

Models see terminals' worth of text, not mimebundles: text/plain wins, rich outputs become a short
placeholder, colour codes and progress-bar redraws are removed, and long text keeps its head and
tail (where the headline and the traceback usually are) with a note of what was cut."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from typing import Any

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks), and two-byte escapes.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")


def strip_ansi(s: str) -> str:
    """`s` without terminal escape sequences (IPython colours its tracebacks)."""
    return _ANSI.sub("", s)


def omitted_note(count: int, unit: str = "characters") -> str:
    """The one-line marker put where text was cut, e.g. "[... 123,456 characters omitted ...]"."""
    if count == 1 and unit.endswith("s"):
        unit = unit[:-1]
    return f"[... {count:,} {unit} omitted ...]"


def truncate(text: str, limit: int) -> str:
    """`text` unchanged if it has at most `limit` characters; else its head and tail around an
    omitted-count note on a line of its own. The two newlines come out of `limit`, so the result
    is never longer than `limit` plus the note."""
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if len(text) <= limit:
        return text
    kept = max(0, limit - 2)
    note = omitted_note(len(text) - kept)
    if not kept:
        return note
    head = (kept + 1) // 2
    tail = kept - head
    return f"{text[:head]}\n{note}\n{text[len(text) - tail :] if tail else ''}"


def outputs_to_text(outputs: list[dict[str, Any]]) -> str:
    """The text a model sees for nbformat v4 outputs (stream, display_data, execute_result, error).

    Consecutive chunks of one stream are joined before progress-bar redraws are resolved; every
    other output starts on a fresh line."""
    pieces: list[tuple[str, str]] = []  # (stream name or output type, text)
    for out in outputs:
        kind = out.get("output_type")
        if kind == "stream":
            key, text = "stream:" + str(out.get("name", "stdout")), joined(out.get("text", ""))
            if pieces and pieces[-1][0] == key:
                text = pieces.pop()[1] + text
        elif kind in ("display_data", "execute_result", "update_display_data"):
            key, text = str(kind), bundle_to_text(out.get("data") or {})
        elif kind == "error":
            key, text = "error", _error_text(out)
        else:
            continue
        pieces.append((key, text))
    parts: list[str] = []
    for key, text in pieces:
        if key.startswith("stream:"):
            text = _apply_carriage_returns(strip_ansi(text))
        if not text:
            continue
        if parts and not parts[-1].endswith("\n"):
            parts.append("\n")
        parts.append(text)
    return "".join(parts)


#: Mimetypes whose payload is base64 text (never scanned, cut or reduced to text as if it were prose).
BINARY_MIME_PREFIXES = ("image/", "audio/", "video/", "application/pdf", "application/octet-stream")


def is_binary(mime: str) -> bool:
    """Whether a mimebundle entry is a binary payload (image/png) rather than text (image/svg+xml)."""
    return mime.startswith(BINARY_MIME_PREFIXES) and not mime.endswith(("+xml", "+json"))


def bundle_to_text(data: dict[str, Any]) -> str:
    """One mimebundle as text: text/plain, else markdown, else HTML reduced to its text, else JSON,
    else a placeholder such as "<image/png 12 KB>"."""
    if "text/plain" in data:
        return strip_ansi(joined(data["text/plain"]))
    if "text/markdown" in data:
        return joined(data["text/markdown"])
    if "text/html" in data:
        return html_to_text(joined(data["text/html"]))
    for mime in ("application/json", "text/latex"):
        if mime in data:
            value = data[mime]
            return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    for mime, value in data.items():
        return f"<{mime} {_human_size(_payload_bytes(mime, value))}>"
    return ""


def html_to_text(html: str) -> str:
    """Visible text of an HTML fragment: scripts and styles dropped, each block element (paragraph,
    table row, list item) on a line of its own, blank lines removed."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = (re.sub(r"[ \t]+", " ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset({"p", "div", "br", "tr", "li", "ul", "ol", "table", "thead", "tbody", "pre",
                        "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "blockquote", "hr"})
    _CELL = frozenset({"td", "th"})
    _HIDDEN = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in self._CELL:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _error_text(out: dict[str, Any]) -> str:
    traceback = out.get("traceback") or []
    if traceback:
        return strip_ansi("\n".join(traceback)).rstrip("\n") + "\n"
    return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}\n"


def joined(value: Any) -> str:
    """nbformat stores multi-line strings either whole or as a list of lines; None is empty."""
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _apply_carriage_returns(text: str) -> str:
    """What a terminal would show: a bare "\\r" rewinds the line (progress bars redraw this way)."""
    if "\r" not in text:
        return text
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rsplit("\r", 1)[-1] if "\r" in line else line for line in lines)


def _payload_bytes(mime: str, value: Any) -> int:
    raw = joined(value) if not isinstance(value, dict) else json.dumps(value)
    if is_binary(mime):  # stored base64-encoded
        b64 = raw.replace("\n", "").replace(" ", "")
        return max(0, len(b64) * 3 // 4 - b64[-2:].count("="))
    return len(raw.encode("utf-8"))


def _human_size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 1024 * 1024:
        return f"{round(n / 1024)} KB"
    return f"{n / (1024 * 1024):.1f} MB"

def plural(n: int, word: str, many: str | None = None) -> str:
    """ "1 step", "1,000 sub-calls": counts as the tree, the static HTML and the export write them."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
