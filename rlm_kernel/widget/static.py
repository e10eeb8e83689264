"""The run tree as plain HTML, for places with no live kernel: a saved notebook, nbclient output,
nbconvert, GitHub. It leans on <details>/<summary>, <pre> and <blockquote> so it still reads well
where styles are stripped; the scoped <style> only makes it nicer where allowed. Model-made HTML
is never embedded (its text/plain form is shown instead)."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

from ..engine import events as ev
from .compact import PROMPT_PREVIEW, RESPONSE_PREVIEW, cut_output

#: Sub-call lists longer than this show their first HEAD and last TAIL entries in the static tree.
STATIC_SUBCALLS_MAX = 30
STATIC_SUBCALLS_HEAD = 20
STATIC_SUBCALLS_TAIL = 5
#: Characters of each sub-call response kept in the static tree.
STATIC_RESPONSE = 600

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_FENCE = re.compile(r"```[^\n]*\n(.*?)(?:```|\Z)", re.S)

_STYLE = """<style>
.rlm-static{font-family:system-ui,sans-serif;font-size:13px;line-height:1.45;max-width:100%}
.rlm-static pre{background:#f6f8fa;padding:6px 8px;border-radius:4px;overflow-x:auto;white-space:pre-wrap;
 margin:4px 0;font-size:12px}
.rlm-static details{border-left:2px solid #d0d7de;padding-left:8px;margin:4px 0}
.rlm-static summary{cursor:pointer;font-weight:600}
.rlm-static .rlm-edited{color:#9a6700;font-weight:600}
.rlm-static .rlm-err{color:#cf222e}
.rlm-static .rlm-answer{border:1px solid #1a7f37;border-radius:4px;padding:6px 8px;margin-top:6px}
</style>"""


@dataclass
class _Step:
    n: int
    text: str = ""
    usage: dict[str, Any] | None = None
    latency: float | None = None
    cells: dict[int, dict[str, Any]] = field(default_factory=dict)
    subcalls: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Run:
    run_id: str
    started: dict[str, Any] = field(default_factory=dict)
    finished: dict[str, Any] | None = None
    steps: dict[int, _Step] = field(default_factory=dict)

    def step(self, n: Any) -> _Step:
        k = int(n or 0)
        return self.steps.setdefault(k, _Step(k))


def build_runs(events: list[ev.Event]) -> tuple[str | None, dict[str, _Run]]:
    """Group events into runs and steps; returns (root run id, runs by id)."""
    runs: dict[str, _Run] = {}
    root: str | None = None
    for e in events:
        rid = str(e.get("run_id"))
        run = runs.setdefault(rid, _Run(rid))
        t = e.get("type")
        if t == ev.RUN_STARTED:
            run.started = e
            if not e.get("parent_run_id") and root is None:
                root = rid
        elif t == ev.TURN_FINISHED:
            s = run.step(e.get("step"))
            s.text, s.usage, s.latency = str(e.get("text") or ""), e.get("usage"), e.get("latency")
        elif t == ev.TURN_STARTED:  # a resumed run runs its unfinished step again from scratch
            run.steps.pop(int(e.get("step") or 0), None)
            run.step(e.get("step"))
        elif t == ev.RUN_RESUMED:
            run.finished = None
        elif t == ev.CELL_STARTED:
            run.step(e.get("step")).cells.setdefault(int(e.get("index") or 0), {}).update(started=e)
        elif t == ev.CELL_FINISHED:
            run.step(e.get("step")).cells.setdefault(int(e.get("index") or 0), {}).update(finished=e)
        elif t in (ev.SUBCALL_STARTED, ev.SUBCALL_FINISHED):
            key = "started" if t == ev.SUBCALL_STARTED else "finished"
            run.step(e.get("step")).subcalls.setdefault(str(e.get("id")), {})[key] = e
        elif t == ev.NOTE:
            run.step(e.get("step")).notes.append(str(e.get("text") or ""))
        elif t == ev.RUN_FINISHED:
            run.finished = e
    return root, runs


def _esc(value: Any) -> str:
    return html.escape(_ANSI.sub("", str(value)), quote=True)


def _markdownish(text: str) -> str:
    """Model prose as paragraphs, fenced code as <pre>; everything escaped."""
    parts: list[str] = []
    pos = 0
    for m in _FENCE.finditer(text):
        parts += _paragraphs(text[pos:m.start()])
        parts.append(f"<pre><code>{_esc(m.group(1).rstrip())}</code></pre>")
        pos = m.end()
    parts += _paragraphs(text[pos:])
    return "".join(parts)


def _paragraphs(text: str) -> list[str]:
    return [f"<p>{_esc(p.strip())}</p>".replace("\n", "<br>") for p in re.split(r"\n\s*\n", text) if p.strip()]


def _usage_total(usage: dict[str, Any] | None) -> tuple[int, int, int]:
    if not usage:
        return 0, 0, 0
    return (int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0),
            int(usage.get("cache_read_tokens") or 0))


def run_totals(run: _Run, runs: dict[str, _Run]) -> dict[str, Any]:
    """Tokens in/out/cached, sub-calls and steps of a run and all its children."""
    fin = run.finished
    if fin and isinstance(fin.get("usage"), dict) and fin["usage"]:
        tin = tout = tcache = 0
        for u in fin["usage"].values():
            a, b, c = _usage_total(u if isinstance(u, dict) else None)
            tin, tout, tcache = tin + a, tout + b, tcache + c
        subcalls = fin.get("subcalls")
    else:
        tin = tout = tcache = 0
        subcalls = 0
        for r in _tree(run, runs):
            for s in r.steps.values():
                a, b, c = _usage_total(s.usage)
                tin, tout, tcache = tin + a, tout + b, tcache + c
                for sc in s.subcalls.values():
                    subcalls += 1
                    f = sc.get("finished") or {}
                    if f.get("kind") == "llm":
                        a, b, c = _usage_total(f.get("usage"))
                        tin, tout, tcache = tin + a, tout + b, tcache + c
    return {"in": tin, "out": tout, "cached": tcache, "subcalls": subcalls,
            "steps": (fin or {}).get("steps", len(run.steps)), "cost": (fin or {}).get("cost"),
            "elapsed": (fin or {}).get("elapsed")}


def _tree(run: _Run, runs: dict[str, _Run]) -> list[_Run]:
    out, todo = [], [run]
    while todo:
        r = todo.pop()
        out.append(r)
        todo += [c for c in runs.values() if c.started.get("parent_run_id") == r.run_id]
    return out


def _children_of(runs: dict[str, _Run], run_id: str, subcall_id: str) -> list[_Run]:
    return [r for r in runs.values() if r.started.get("parent_run_id") == run_id
            and str(r.started.get("parent_subcall_id")) == subcall_id]


def _render_output(out: dict[str, Any]) -> str:
    small = cut_output(out)
    kind = small.get("output_type")
    more = f" <i>(cut; {small['cut']:,} chars in the run log)</i>" if small.get("cut") else ""
    if kind == "stream":
        cls = ' class="rlm-err"' if small.get("name") == "stderr" else ""
        return f"<pre{cls}>{_esc(small.get('text', ''))}</pre>{more}"
    if kind == "error":
        tb = "\n".join(small.get("traceback") or []) or f"{small.get('ename')}: {small.get('evalue')}"
        return f'<pre class="rlm-err">{_esc(tb)}</pre>{more}'
    data = small.get("data") or {}
    for mime in ("image/png", "image/jpeg", "image/gif"):
        if mime in data:
            return f'<img alt="output image" src="data:{mime};base64,{_esc(data[mime].strip())}">'
    if "text/plain" in data:
        return f"<pre>{_esc(data['text/plain'])}</pre>{more}"
    return f"<p><i>[{_esc(', '.join(data) or kind)} output]</i>{more}</p>"


def _render_subcall(run: _Run, sid: str, sc: dict[str, Any], runs: dict[str, _Run], depth: int) -> str:
    st, fin = sc.get("started") or {}, sc.get("finished") or {}
    kind = fin.get("kind") or st.get("kind") or "llm"
    model = fin.get("model") or st.get("model") or ""
    prompt = str(st.get("prompt") or "")
    response = str(fin.get("response") or "")
    bits = [f"{_esc(kind)}_query", _esc(model)]
    if fin.get("latency") is not None:
        bits.append(f"{float(fin['latency']):.1f} s")
    a, b, _ = _usage_total(fin.get("usage"))
    if a or b:
        bits.append(f"{a:,} in / {b:,} out")
    if fin.get("error"):
        bits.append('<span class="rlm-err">error</span>')
    elif not fin:
        bits.append("running…")
    body = [f"<pre>{_esc(_clip(prompt, PROMPT_PREVIEW))}</pre>"]
    if fin.get("error"):
        body.append(f'<pre class="rlm-err">{_esc(_clip(str(fin["error"]), RESPONSE_PREVIEW))}</pre>')
    elif fin:
        body.append(f"<pre>{_esc(_clip(response, STATIC_RESPONSE))}</pre>")
    for child in _children_of(runs, run.run_id, sid):
        body.append(_render_run(child, runs, depth + 1))
    return (f'<details data-testid="rlm-subcall"><summary>{" · ".join(bits)}</summary>'
            f'{"".join(body)}</details>')


def _render_subcalls(run: _Run, step: _Step, runs: dict[str, _Run], depth: int) -> list[str]:
    """Every rlm_query (they hold child trees); llm_query calls beyond a few are counted, not
    listed, so a step with a thousand sub-calls keeps the saved notebook small."""
    items = list(step.subcalls.items())
    llm = [sid for sid, sc in items if ((sc.get("started") or sc.get("finished") or {}).get("kind")) != "rlm"]
    hidden = set(llm[STATIC_SUBCALLS_HEAD:len(llm) - STATIC_SUBCALLS_TAIL]) if len(llm) > STATIC_SUBCALLS_MAX \
        else set()
    parts, noted = [], False
    for sid, sc in items:
        if sid in hidden:
            if not noted:
                parts.append(f"<p><i>… {len(hidden):,} more llm_query calls (all in the run log)</i></p>")
                noted = True
            continue
        parts.append(_render_subcall(run, sid, sc, runs, depth))
    return parts


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… ({len(text):,} chars)"


def _render_step(run: _Run, step: _Step, runs: dict[str, _Run], depth: int) -> str:
    edited = any((c.get("started") or {}).get("edited") for c in step.cells.values())
    summary = [f"Step {step.n}", f"{len(step.cells)} cell{'s' if len(step.cells) != 1 else ''}"]
    if step.subcalls:
        summary.append(f"{len(step.subcalls)} sub-call{'s' if len(step.subcalls) != 1 else ''}")
    if edited:
        summary.append('<span class="rlm-edited">edited</span>')
    parts = [_markdownish(step.text)]
    for idx in sorted(step.cells):
        cell = step.cells[idx]
        st, fin = cell.get("started") or {}, cell.get("finished") or {}
        code = st.get("code") or fin.get("code") or ""
        mark = ' <span class="rlm-edited">(edited by a person)</span>' if st.get("edited") else ""
        parts.append(f'<div><b>Cell {idx}</b>{mark}<pre data-testid="rlm-cell-code"><code>'
                     f"{_esc(code)}</code></pre>")
        parts += [_render_output(o) for o in fin.get("outputs") or []]
        parts.append("</div>")
    parts += _render_subcalls(run, step, runs, depth)
    for note in step.notes:
        parts.append(f"<blockquote><b>Note to the model:</b> {_esc(note)}</blockquote>")
    return (f'<details data-testid="rlm-step-node"><summary>{" · ".join(summary)}</summary>'
            f'{"".join(parts)}</details>')


def _render_run(run: _Run, runs: dict[str, _Run], depth: int) -> str:
    parts = []
    if depth:
        parts.append(f"<p><b>Child run</b> (depth {int(run.started.get('depth') or depth)}): "
                     f"{_esc(_clip(str(run.started.get('question') or ''), PROMPT_PREVIEW))}</p>")
    parts += [_render_step(run, run.steps[n], runs, depth) for n in sorted(run.steps)]
    fin = run.finished
    if fin:
        answer = str(fin.get("answer") or "")
        testid = ' data-testid="rlm-answer"' if depth == 0 else ""
        reason = f" ({_esc(fin['reason'])})" if fin.get("reason") else ""
        parts.append(f'<div class="rlm-answer"{testid}><b>Answer</b> · {_esc(fin.get("status"))}{reason}'
                     f"{_markdownish(answer)}</div>")
    return "".join(parts) if depth == 0 else f"<blockquote>{''.join(parts)}</blockquote>"


def header_line(run: _Run, runs: dict[str, _Run]) -> str:
    tot = run_totals(run, runs)
    st = run.started
    status = (run.finished or {}).get("status") or "running"
    models = " / ".join(_esc(m) for m in (st.get("model"), st.get("sub_model")) if m)
    bits = [f'<b data-testid="rlm-status">{_esc(status)}</b>', models, f"{tot['steps']} steps",
            f"{tot['subcalls']} sub-calls",
            f"tokens {tot['in']:,} in / {tot['out']:,} out / {tot['cached']:,} cached"]
    if tot["cost"] is not None:
        bits.append(f"${float(tot['cost']):.4f}")
    if tot["elapsed"] is not None:
        bits.append(f"{float(tot['elapsed']):.1f} s")
    return " · ".join(b for b in bits if b)


def render_static_html(events: list[ev.Event], *, question: str | None = None,
                       log_path: str | None = None) -> str:
    """The whole run tree (root and children) as one self-contained HTML fragment."""
    root_id, runs = build_runs(events)
    root = runs.get(root_id) if root_id else None
    q = question if question is not None else (root.started.get("question") if root else "")
    head = f"<div><b>RLM run</b> · {header_line(root, runs)}</div>" if root else \
        '<div><b>RLM run</b> · <b data-testid="rlm-status">starting</b></div>'
    body = _render_run(root, runs, 0) if root else ""
    foot = f"<p><small>Run log: {_esc(log_path)}</small></p>" if log_path else ""
    return (f'<div class="rlm-static" data-testid="rlm-run">{_STYLE}{head}'
            f"<blockquote>{_esc(q or '')}</blockquote>{body}{foot}</div>")
