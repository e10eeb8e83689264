"""What a reply in the fenced protocol asks to run, read the way models really write it.

Besides ```repl / ```python blocks, models trained on tool use write tool calls as text: XML
(`<function_calls><invoke name="repl"><parameter name="code">...`), MiniMax-style
`[TOOL_CALL] {tool => "repl", args => {--code "..."}}` blocks, or a bare ``` fence of Python.
A call that carries code runs as that code; a lone untagged block runs when it parses as Python
and does something (not a lone value, which is more likely quoted output). Anything else of that
shape becomes a `problem`, so the nudge can quote the exact format expected."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field

from ..parser import FinalAnswer, _scan_fences, extract_code_blocks, find_final

#: Parameter names under which tool-call text carries code.
CODE_PARAMS = ("code", "source", "cell", "python", "program")
#: Tool names a model uses for "this is my final answer".
ANSWER_TOOLS = {"final": "text", "final_answer": "text", "answer": "text", "submit": "text", "final_var": "var"}

_INVOKE = re.compile(r"<(?:\w+:)?invoke\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)</(?:\w+:)?invoke\s*>", re.S)
_PARAM = re.compile(r"<(?:\w+:)?parameter\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)</(?:\w+:)?parameter\s*>", re.S)
_CALLS_WRAPPER = re.compile(r"</?(?:\w+:)?function_calls\s*>")
_TOOL_CALL = re.compile(r"\[TOOL_CALL\](.*?)(?:\[/TOOL_CALL\]|\Z)", re.S)
_TOOL_NAME = re.compile(r"""tool\s*(?:=>|:|=)\s*["']?([\w.-]+)""")
_CODE_ARG = re.compile(r"""(?:--|["']?)(?:""" + "|".join(CODE_PARAMS) + r""")["']?\s*(?:=>|:|=|\s)\s*(?=["'])""")
_HIDDEN_FINAL = re.compile(r"FINAL(?:_VAR)?\s*\(.*\)|FINAL(?:_VAR)?\s*\(.*")


@dataclass
class Code:
    """One piece of code to run, and the shape it came in ("fence", "invoke", "tool_call", "bare")."""

    source: str
    form: str = "fence"
    tool: str = ""


@dataclass
class Reading:
    codes: list[Code] = field(default_factory=list)
    final: FinalAnswer | None = None
    #: Shapes that looked like code or tool calls but could not run, described for the nudge.
    problems: list[str] = field(default_factory=list)


def read_reply(text: str) -> Reading:
    reading = Reading(codes=[Code(c) for c in extract_code_blocks(text)])
    masked = text
    fences = _scan_fences(text)

    def in_fence(pos: int) -> bool:
        return any(f.start <= pos < f.end for f in fences)

    for m in _INVOKE.finditer(text):
        if in_fence(m.start()):
            continue
        masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end():]
        name, params = m.group(1).strip(), dict((k.strip(), v) for k, v in _PARAM.findall(m.group(2)))
        _take_call(reading, name, params, "invoke")
    for m in _TOOL_CALL.finditer(text):
        if in_fence(m.start()):
            continue
        masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end():]
        body = m.group(1)
        named = _TOOL_NAME.search(body)
        name = named.group(1) if named else ""
        code = _code_argument(body)
        _take_call(reading, name, {"code": code} if code is not None else {}, "tool_call")
    masked = _CALLS_WRAPPER.sub(lambda w: " " * len(w.group(0)), masked)
    found = find_final(masked)
    if found is not None:
        reading.final = found
    if not reading.codes:
        bare = [f.body for f in fences if f.closed and not f.tag and does_something(f.body)]
        if len(bare) == 1:
            reading.codes.append(Code(bare[0], "bare"))
        elif bare:
            reading.problems.append(f"{len(bare)} code blocks without a tag (```); untagged blocks do not run")
    return reading


def _take_call(reading: Reading, name: str, params: dict[str, str], form: str) -> None:
    code = next((params[p] for p in CODE_PARAMS if p in params), None)
    kind = ANSWER_TOOLS.get(name.lower())
    if kind is not None and params:
        value = next(iter(params.values())).strip()
        reading.final = FinalAnswer("var" if kind == "var" else "text", value, value)
    elif code is not None and code.strip():
        reading.codes.append(Code(code.strip("\n"), form, name))
    else:
        what = "an <invoke> call" if form == "invoke" else "a [TOOL_CALL] block"
        reading.problems.append(f"{what} to a tool named {name or '(none)'!r} with no code in it")


def _code_argument(body: str) -> str | None:
    """The string literal after `--code` / `"code":` / `code =>` in a [TOOL_CALL] body, decoded."""
    m = _CODE_ARG.search(body)
    if m is None:
        return None
    start = m.end()
    quote = body[start]
    delim = quote * 3 if body.startswith(quote * 3, start) else quote
    i = start + len(delim)
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body.startswith(delim, i):
            literal = body[start : i + len(delim)]
            try:
                value = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                return literal[len(delim) : -len(delim)]
            return value if isinstance(value, str) else None
        i += 1
    return body[start + len(delim):]  # cut off: run what came


def does_something(code: str) -> bool:
    """Python that parses and is more than one bare value (`19`, `x`), which reads as quoted output."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return False
    if not tree.body:
        return False
    return not (len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr)
                and isinstance(tree.body[0].value, ast.Constant | ast.Name))


def hidden_finals(code: str) -> list[tuple[str, str]]:
    """FINAL(...) calls that sit in a comment or a string of `code`, where they do nothing:
    (where, the call as written)."""
    found: list[tuple[str, str]] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        tokens = [tokenize.TokenInfo(tokenize.COMMENT, ln.strip(), (0, 0), (0, 0), ln)
                  for ln in code.splitlines() if ln.strip().startswith("#")]
    for tok in tokens:
        if tok.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        for line in tok.string.splitlines():
            m = _HIDDEN_FINAL.search(line)
            if m:
                found.append(("comment" if tok.type == tokenize.COMMENT else "string", m.group(0).strip()))
    return found


def only_comments(code: str) -> bool:
    try:
        return not ast.parse(code).body
    except SyntaxError:
        return False
