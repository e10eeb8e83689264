"""What a reply in the fenced protocol asks to run, read the way models really write it.

Besides ```repl / ```python blocks, models trained on tool use write tool calls as text: XML
(`<function_calls><invoke name="repl"><parameter name="code">...`), MiniMax-style
`[TOOL_CALL] {tool => "repl", args => {--code "..."}}` blocks, JSON objects such as
`{"name": "python", "arguments": {"code": "..."}}` (Qwen's own tool-call shape, often with doubled
braces or Python triple quotes), a bare ``` fence of Python, or a whole reply that is Python with
no fence at all. A call that carries code runs as that code; a lone untagged block runs when it
parses as Python and does something (not a lone value, which is more likely quoted output).
Anything else of that shape becomes a `problem`, so the nudge can quote the exact format expected.

Small models also write the conversation's next turns themselves: after their code they invent
its output ("Output of cell 1: ...", "User: ...", "Assistant: FINAL(...)"). Everything from the
first such line after code is dropped (`Reading.invented`), so only the REPL's real output counts."""

from __future__ import annotations

import ast
import io
import json
import re
import tokenize
from dataclasses import dataclass, field

from ..parser import RUNNABLE_TAGS, FinalAnswer, _scan_fences, find_final

#: Parameter names under which tool-call text carries code.
CODE_PARAMS = ("code", "source", "cell", "python", "program")
#: Tool names a model uses for "this is my final answer".
ANSWER_TOOLS = {"final": "text", "final_answer": "text", "answer": "text", "submit": "text", "final_var": "var"}
#: Argument names of an answer written as a bare JSON object ({"text": ...} / {"variable": ...}).
ANSWER_PARAMS = ("variable", "text", "answer")

_INVOKE = re.compile(r"<(?:\w+:)?invoke\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)</(?:\w+:)?invoke\s*>", re.S)
_PARAM = re.compile(r"<(?:\w+:)?parameter\s+name\s*=\s*[\"']([^\"']+)[\"']\s*>(.*?)</(?:\w+:)?parameter\s*>", re.S)
_CALLS_WRAPPER = re.compile(r"</?(?:\w+:)?function_calls\s*>")
_TOOL_CALL = re.compile(r"\[TOOL_CALL\](.*?)(?:\[/TOOL_CALL\]|\Z)", re.S)
_TOOL_NAME = re.compile(r"""tool\s*(?:=>|:|=)\s*["']?([\w.-]+)""")
_CODE_ARG = re.compile(r"""(?:--|["']?)(?:""" + "|".join(CODE_PARAMS) + r""")["']?\s*(?:=>|:|=|\s)\s*(?=["'])""")
_HIDDEN_FINAL = re.compile(r"FINAL(?:_VAR)?\s*\(.*\)|FINAL(?:_VAR)?\s*\(.*", re.I)
#: A line where a model starts writing the next turn itself: invented output, or a role label.
_INVENTED_TURN = re.compile(
    r"^[ \t]*(?:\*\*)?(?:User|Human|Assistant|Output(?: of cell \d+)?|REPL output|Tool result"
    r"|(?:First|Your|The next|Next) (?:next )?reply[^:\n]{0,12}|\(then you are shown"
    r"|Once its (?:output|result)[^:\n]{0,60})(?:\*\*)?[ \t]*:", re.M | re.I)
_TOOL_CALL_TAGS = re.compile(r"</?tool_call>")
#: A JSON tool call to python that does not parse (its code string never closes).
_BROKEN_CALL = re.compile(r"""\{+\s*"name"\s*:\s*"(?:python|repl)"\s*,\s*"arguments"\s*:\s*\{\s*(?="code")""")


@dataclass
class Code:
    """One piece of code to run, and the shape it came in ("fence", "invoke", "tool_call", "json",
    "bare", "reply")."""

    source: str
    form: str = "fence"
    tool: str = ""


@dataclass
class Reading:
    codes: list[Code] = field(default_factory=list)
    final: FinalAnswer | None = None
    #: Shapes that looked like code or tool calls but could not run, described for the nudge.
    problems: list[str] = field(default_factory=list)
    #: The first line of an invented next turn, when the reply went on past its code (dropped,
    #: except for its answer, which is judged like any answer written next to code).
    invented: str | None = None
    #: How many code blocks the dropped part held (they did not run).
    dropped_code: int = 0


def read_reply(text: str, *, finished: bool = False) -> Reading:
    """What `text` asks to run and answers, up to the first invented turn after its code. With
    `finished` (the model ended the reply itself, not the token limit), a last ```repl block whose
    closing fence is missing runs too: the program is whole, only its fence was forgotten."""
    fences = _scan_fences(text)
    for m in _INVENTED_TURN.finditer(text):
        if any(f.start <= m.start() < f.end for f in fences):
            continue
        head = _read(text[: m.start()], finished=finished)
        if head.codes:
            tail = text[m.start():]
            rest = _read(tail, finished=finished)
            head.invented = tail.split("\n", 1)[0].strip()
            head.dropped_code = len(rest.codes)
            head.final = rest.final or head.final
            return head
    return _read(text, finished=finished)


def _read(text: str, *, finished: bool = False) -> Reading:
    fences = _scan_fences(text)
    # the runnable blocks, as extract_code_blocks finds them, from the one scan
    reading = Reading(codes=[Code(f.body) for f in fences if f.closed and f.tag in RUNNABLE_TAGS and f.body.strip()])
    masked = text
    last = fences[-1] if fences else None
    if finished and last is not None and not last.closed and last.tag in RUNNABLE_TAGS and does_something(last.body):
        reading.codes.append(Code(last.body, "unclosed"))

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
    used: list[tuple[int, int]] = []
    for start, end, name, params in json_calls(masked, [f for f in fences if f.tag in RUNNABLE_TAGS]):
        used.append((start, end))
        masked = masked[:start] + " " * (end - start) + masked[end:]
        _take_call(reading, name, params, "json")
    masked = _CALLS_WRAPPER.sub(lambda w: " " * len(w.group(0)), masked)
    masked = _TOOL_CALL_TAGS.sub(lambda w: " " * len(w.group(0)), masked)
    found = find_final(masked)
    if found is not None:
        reading.final = found
    if not reading.codes:
        bare = [f.body for f in fences if f.closed and not f.tag and does_something(f.body)
                and not any(f.start <= a < f.end for a, _ in used)]
        if len(bare) == 1:
            reading.codes.append(Code(bare[0], "bare"))
        elif bare:
            reading.problems.append(f"{len(bare)} code blocks without a tag (```); untagged blocks do not run")
    if not (reading.codes or reading.final or reading.problems or fences or used) and is_program(text):
        reading.codes.append(Code(text.strip(), "reply"))
    return reading


def _take_call(reading: Reading, name: str, params: dict[str, str], form: str) -> None:
    code = next((params[p] for p in CODE_PARAMS if p in params), None)
    kind = ANSWER_TOOLS.get(name.lower())
    if kind is not None and params:
        if isinstance(params.get("variable"), str) and params["variable"].strip():
            kind, value = "var", params["variable"].strip()
        else:
            value = next((params[p] for p in ANSWER_PARAMS if p in params), next(iter(params.values()))).strip()
        reading.final = FinalAnswer("var" if kind == "var" else "text", value, value)
    elif code is not None and code.strip():
        reading.codes.append(Code(code.strip("\n"), form, name))
    else:
        what = {"invoke": "an <invoke> call", "json": "a JSON tool call"}.get(form, "a [TOOL_CALL] block")
        reading.problems.append(f"{what} to a tool named {name or '(none)'!r} with no code in it")


def json_calls(text: str, skip: list) -> list[tuple[int, int, str, dict[str, str]]]:
    """Tool calls written as JSON (or Python dict) text outside the `skip` fences:
    (start, end, tool name, arguments as strings)."""
    calls: list[tuple[int, int, str, dict[str, str]]] = []
    i = text.find("{")
    while i != -1:
        end = None if any(f.start <= i < f.end for f in skip) else _brace_end(text, i)
        obj = _loads(text[i:end]) if end is not None else None
        call = _as_call(obj)
        if call is not None and end is not None:
            calls.append((i, end, *call))
        # past a whole object (a call, or a tool definition echoed back: never look inside it)
        i = text.find("{", end if end is not None and obj is not None else i + 1)
    if not calls:  # one malformed call, as Qwen writes them: `{"code": "print(x)}}}` (the quote never closes)
        m = _BROKEN_CALL.search(text)
        code = _code_argument(text[m.start():]) if m and not any(f.start <= m.start() < f.end for f in skip) else None
        if m and code:
            calls.append((m.start(), len(text), "python", {"code": code.rstrip().rstrip("}").rstrip()}))
    return calls


def _brace_end(text: str, i: int) -> int | None:
    """Offset just past the "}" closing the "{" at `i`, skipping strings ('', "", triple quotes)."""
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c in "\"'":
            delim = c * 3 if text.startswith(c * 3, j) else c
            k = j + len(delim)
            while k < len(text) and not text.startswith(delim, k):
                k += 2 if text[k] == "\\" else 1
            j = k + len(delim)
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return None


def _loads(s: str) -> object:
    """`s` as JSON, else as a Python literal (single or triple quotes), else None."""
    for parse in (json.loads, ast.literal_eval):
        try:
            return parse(s)
        except Exception:  # any text that is not a literal is simply not a call
            continue
    return None


def _as_call(obj: object) -> tuple[str, dict[str, str]] | None:
    """(tool name, arguments) when `obj` has the shape of a tool call, else None."""
    if not isinstance(obj, dict) or not obj:
        return None
    fn = obj["function"] if isinstance(obj.get("function"), dict) else obj  # OpenAI's own shape
    name = next((fn[k] for k in ("name", "tool", "tool_name") if isinstance(fn.get(k), str)), None)
    args = next((fn[k] for k in ("arguments", "parameters", "args", "input") if k in fn), None)
    if isinstance(args, str):
        args = _loads(args) if args.lstrip().startswith("{") else {"code": args}
    if name is None and set(obj) <= set(CODE_PARAMS):
        name, args = "python", obj
    elif name is None and set(obj) <= set(ANSWER_PARAMS):
        name, args = "answer", obj
    if name is None or not isinstance(args, dict) or "properties" in args or "description" in fn:
        return None  # not a call; a tool's definition echoed back (`{"type": "function", "function": {...}}`)
    return name, {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in args.items() if v is not None}


def is_program(text: str) -> bool:
    """A reply that is nothing but Python which calls or assigns something (no prose, no fence)."""
    if not does_something(text.strip()):
        return False
    tree = ast.parse(text.strip())
    return any(isinstance(n, ast.Call | ast.Assign | ast.AugAssign | ast.Import | ast.ImportFrom | ast.For)
               for n in ast.walk(tree))


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
