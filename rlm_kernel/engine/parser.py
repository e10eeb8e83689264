"""Reading a model's reply: which code blocks to run, and whether it gave a final answer.

The rules are chosen against the parser bugs people hit with other RLM implementations:

* Only fences tagged ``repl``, ``python`` or ``py`` run. Untagged fences and other languages are
  examples or quotations, and a block cut off by the output-token limit is half a program.
* ``FINAL(...)`` / ``FINAL_VAR(...)`` (in any case) count only outside fenced blocks (inside one they are calls
  the REPL will make) and only when the call starts a line, so prose such as "I will call
  FINAL(x) once I know" is not mistaken for an answer.
* The argument is found by a balanced-parenthesis scan that knows about quoted strings, so nested
  parentheses and multi-line answers survive; an answer cut off before its ``)`` still counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

#: Fence tags (case-insensitive) whose blocks are run.
RUNNABLE_TAGS = frozenset({"repl", "python", "py"})

_OPEN_FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)")
_CLOSE_FENCE = re.compile(r"[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*")
# A FINAL call at the start of a line, after optional indentation and markdown decoration:
# emphasis (** __), quotes (>), bullets (- * +), numbered items (1. 2)), headings (#), inline code.
# The name in any case: small models write Final(...) and final_var(...).
_FINAL_START = re.compile(r"^(?:[ \t*_>`#+\-]|\d+[.)])*(?P<name>(?i:final_var|final))[ \t]*\(", re.MULTILINE)
_QUOTES = "\"'"


@dataclass(frozen=True)
class FinalAnswer:
    """A final answer found in a reply.

    `kind` "text": `value` is the answer itself. `kind` "var": `value` names the REPL variable that
    holds it (normally an identifier; the caller checks it exists, and tells the model if not)."""

    kind: Literal["text", "var"]
    value: str
    #: The argument as written (quotes and all), for telling an expression from literal text.
    raw: str = field(default="", compare=False)


@dataclass(frozen=True)
class _Fence:
    start: int  # offset of the opening fence line
    end: int  # offset just past the closing fence line (len(text) when unterminated)
    tag: str  # info string, stripped and lower-cased
    body: str
    closed: bool


def _scan_fences(text: str) -> list[_Fence]:
    """Every fenced block, CommonMark style: the closing fence uses the same character, is at least
    as long as the opening one and carries nothing else. Content lines lose the opening fence's
    indentation (a fence inside a list item)."""
    fences: list[_Fence] = []
    char = tag = ""
    start = length = indent = 0
    body: list[str] = []
    in_fence = False
    offset = 0
    for raw in text.split("\n"):
        line = raw.removesuffix("\r")
        next_offset = offset + len(raw) + 1
        if not in_fence:
            m = _OPEN_FENCE.fullmatch(line)
            if m and not (m["fence"][0] == "`" and "`" in m["info"]):
                in_fence, start, body = True, offset, []
                char, length, indent = m["fence"][0], len(m["fence"]), len(m["indent"])
                tag = m["info"].strip().lower()
        else:
            m = _CLOSE_FENCE.fullmatch(line)
            if m and m["fence"][0] == char and len(m["fence"]) >= length:
                fences.append(_Fence(start, min(next_offset, len(text)), tag, "\n".join(body), True))
                in_fence = False
            else:
                cut = len(line) - len(line.lstrip(" \t"))
                body.append(line[min(cut, indent):])
        offset = next_offset
    if in_fence:
        fences.append(_Fence(start, len(text), tag, "\n".join(body), False))
    return fences


def extract_code_blocks(text: str) -> list[str]:
    """The code of every complete ```repl / ```python / ```py block (``` or ~~~ fences), in order.
    Blocks with nothing but whitespace are left out."""
    return [f.body for f in _scan_fences(text) if f.closed and f.tag in RUNNABLE_TAGS and f.body.strip()]


def strip_code_blocks(text: str) -> str:
    """The reply's prose: every fenced block (runnable or not, finished or not) removed."""
    pieces: list[str] = []
    pos = 0
    for fence in _scan_fences(text):
        pieces.append(text[pos : fence.start])
        pos = fence.end
    pieces.append(text[pos:])
    prose = "".join(pieces)
    return re.sub(r"\n[ \t]*\n(?:[ \t]*\n)+", "\n\n", prose).strip()


def find_final(text: str, *, in_fences: bool = False) -> FinalAnswer | None:
    """The last FINAL(...) / FINAL_VAR(...) that starts a line outside fenced blocks, or None.
    With `in_fences`, lines inside blocks count too (a last-chance reading of a forced answer)."""
    fences = [] if in_fences else _scan_fences(text)
    found: FinalAnswer | None = None
    resume = 0
    for m in _FINAL_START.finditer(text):
        if m.start() < resume or any(f.start <= m.start() < f.end for f in fences):
            continue
        arg, resume, closed = _call_argument(text, m.end() - 1)
        value = _unquote(arg, closed)
        kind: Literal["text", "var"] = "var" if m["name"].upper() == "FINAL_VAR" else "text"
        found = FinalAnswer(kind, value.strip() if kind == "var" else value, arg.strip())
    return found


def _call_argument(text: str, paren: int) -> tuple[str, int, bool]:
    """The raw argument of the call whose "(" is at `paren`, the offset just past its ")", and
    whether it closed. Tries a lone quoted literal first, then a quote-aware scan, then a plain
    parenthesis count; when nothing closes, the argument is the rest of the text."""
    begin = paren + 1
    literal_end = _lone_literal_end(text, begin)
    if literal_end is not None:
        return text[begin:literal_end], literal_end + 1, True
    for quote_aware in (True, False):
        close = _matching_paren(text, begin, quote_aware)
        if close is not None:
            return text[begin:close], close + 1, True
    return text[begin:], len(text), False


def _lone_literal_end(text: str, begin: int) -> int | None:
    """If the argument starting at `begin` is exactly one quoted string, the offset of its ")"."""
    i = _skip_space(text, begin)
    if i >= len(text) or text[i] not in _QUOTES:
        return None
    end = _string_end(text, i, multiline=True)
    if end is None:
        return None
    j = _skip_space(text, end)
    return j if j < len(text) and text[j] == ")" else None


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _string_end(text: str, i: int, multiline: bool = False) -> int | None:
    """Offset just past the string literal opening at `i`, or None if it does not close. Unless
    `multiline`, a one-quote string must close on its line; backslash escapes the next character."""
    q = text[i]
    delim = q * 3 if text.startswith(q * 3, i) else q
    j = i + len(delim)
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "\n" and len(delim) == 1 and not multiline:
            return None
        if text.startswith(delim, j):
            return j + len(delim)
        j += 1
    return None


def _matching_paren(text: str, begin: int, quote_aware: bool) -> int | None:
    """Offset of the ")" that closes a "(" just before `begin`, or None.

    Quote-aware: a quoted span that closes on its line is skipped whole, so parentheses inside
    strings do not count. An apostrophe after a letter or digit (it's, Bob's) is not a quote, a
    quote that never closes is an ordinary character, and backticks delimit inline code."""
    depth = 1
    i = begin
    while i < len(text):
        c = text[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        elif quote_aware and c in "\"'`" and not (c == "'" and text[i - 1].isalnum()):
            end = _inline_code_end(text, i) if c == "`" else _string_end(text, i)
            if end is not None:
                i = end
                continue
        i += 1
    return None


def _inline_code_end(text: str, i: int) -> int | None:
    line_end = text.find("\n", i)
    close = text.find("`", i + 1, len(text) if line_end == -1 else line_end)
    return None if close == -1 else close + 1


def _unquote(arg: str, closed: bool) -> str:
    """The argument as text: one layer of matching quotes removed when the whole argument is a
    single quoted literal (triple-quoted text is also trimmed of surrounding whitespace). For a
    call that never closed (a cut-off answer) a leading quote without its partner is dropped."""
    s = arg.strip()
    if not s or s[0] not in _QUOTES:
        return s
    q = s[0]
    delim = q * 3 if s.startswith(q * 3) else q
    end = _string_end(s, 0, multiline=True)
    if end == len(s):
        inner = s[len(delim) : -len(delim)]
        return inner.strip() if len(delim) == 3 else inner.replace("\\" + q, q)
    if end is None and not closed:
        return s[len(delim) :].strip()
    return s
