"""The run tree as plain HTML, for places with no live kernel: a saved notebook, nbclient output,
nbconvert, GitHub. It leans on <details>/<summary>, <pre> and <blockquote> so it still reads well
where styles are stripped; the scoped <style> only makes it nicer where allowed. Model-made HTML
is never embedded (its text/plain form is shown instead)."""

from __future__ import annotations

import html
import re
from typing import Any

from markdown_it import MarkdownIt

from ..engine import events as ev
from ..engine.parser import strip_code_blocks
from ..engine.runsummary import summarize
from ..engine.runtree import Note, RunNode, Step, SubCall, fold_runs
from ..engine.text import plural, strip_ansi
from .compact import PROMPT_PREVIEW, RESPONSE_PREVIEW, cut_output, earlier_chain

#: Sub-call lists longer than this show their first HEAD and last TAIL entries in the static tree.
STATIC_SUBCALLS_MAX = 30
STATIC_SUBCALLS_HEAD = 20
STATIC_SUBCALLS_TAIL = 5
#: Characters of each sub-call response kept in the static tree.
STATIC_RESPONSE = 600

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


def _esc(value: Any) -> str:
    return html.escape(strip_ansi(str(value)), quote=True)


_MD = MarkdownIt("commonmark", {"html": False}).enable("table").enable("strikethrough")


def _markdownish(text: str) -> str:
    """Model prose as Markdown (tables, lists, code), with raw HTML escaped and unsafe links
    (javascript:, data:) refused by markdown-it's link check."""
    return _MD.render(strip_ansi(text))


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
            return f'<img {_IMG_ALT} src="data:{mime};base64,{_esc(data[mime].strip())}">'
    if "text/plain" in data:
        return f"<pre>{_esc(data['text/plain'])}</pre>{more}"
    return f"<p><i>[{_esc(', '.join(data) or kind)} output]</i>{more}</p>"


_IMG_ALT = 'alt="output image"'
_IMG = re.compile("<img " + _IMG_ALT + r' src="data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=\s]*)">')
#: What an image output in the saved run state holds instead of its base64 when the static copy
#: has it: {STATIC_IMAGE: n}, the image tagged data-rlm-img="n" in the same output's text/html.
STATIC_IMAGE = "rlm_static_img"


def share_images(static_html: str, items: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Each image once in the saved notebook: the static tree keeps it (nbconvert and GitHub need
    it there), numbered with data-rlm-img, and the run state's outputs point to that number. An
    image the static tree does not show (a step a resume abandoned) stays in the run state."""
    numbers: dict[str, int] = {}

    def number(m: re.Match[str]) -> str:
        n = numbers.setdefault(m.group(2), len(numbers))
        return f'<img {_IMG_ALT} data-rlm-img="{n}" src="data:{m.group(1)};base64,{m.group(2)}">'

    tagged = _IMG.sub(number, static_html)
    if not numbers:
        return static_html, items

    def point(data: dict[str, Any]) -> dict[str, Any]:
        return {m: {STATIC_IMAGE: numbers[v.strip()]} if m.startswith("image/") and isinstance(v, str)
                and v.strip() in numbers else v for m, v in data.items()}

    shared = []
    for item in items:
        if item.get("type") == ev.CELL_FINISHED and item.get("outputs"):
            item = {**item, "outputs": [{**o, "data": point(o["data"])} if isinstance(o.get("data"), dict) else o
                                        for o in item["outputs"]]}
        shared.append(item)
    return tagged, shared


def _render_subcall(sc: SubCall, depth: int) -> str:
    bits = [f"{_esc(sc.kind)}_query", _esc(sc.model or "")]
    if sc.latency is not None:
        bits.append(f"{float(sc.latency):.1f} s")
    tokens_in, tokens_out = int(sc.usage.get("input_tokens") or 0), int(sc.usage.get("output_tokens") or 0)
    if tokens_in or tokens_out:
        bits.append(f"{tokens_in:,} in / {tokens_out:,} out")
    if sc.error:
        bits.append('<span class="rlm-err">error</span>')
    elif not sc.finished:
        bits.append("running…")
    body = [f"<pre>{_esc(_clip(sc.prompt, PROMPT_PREVIEW))}</pre>"]
    if sc.error:
        body.append(f'<pre class="rlm-err">{_esc(_clip(str(sc.error), RESPONSE_PREVIEW))}</pre>')
    elif sc.finished:
        body.append(f"<pre>{_esc(_clip(sc.response or '', STATIC_RESPONSE))}</pre>")
    if sc.child is not None:
        body.append(_render_run(sc.child, depth + 1))
    return (f'<details data-testid="rlm-subcall"><summary>{" · ".join(bits)}</summary>'
            f'{"".join(body)}</details>')


def _render_subcalls(subcalls: list[SubCall], depth: int) -> list[str]:
    """Every rlm_query (they hold child trees); llm_query calls beyond a few are counted, not
    listed, so a step with a thousand sub-calls keeps the saved notebook small."""
    llm = [sc for sc in subcalls if sc.kind != "rlm"]
    hidden = {id(sc) for sc in llm[STATIC_SUBCALLS_HEAD:len(llm) - STATIC_SUBCALLS_TAIL]} \
        if len(llm) > STATIC_SUBCALLS_MAX else set()
    parts, noted = [], False
    for sc in subcalls:
        if id(sc) in hidden:
            if not noted:
                parts.append(f"<p><i>… {len(hidden):,} more llm_query calls (all in the run log)</i></p>")
                noted = True
            continue
        parts.append(_render_subcall(sc, depth))
    return parts


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[:n] + f"… ({len(text):,} chars)"


def _render_step(node: RunNode, step: Step, depth: int) -> str:
    subcalls = step.subcalls
    summary = [f"Step {step.step}", plural(len(step.cells), "cell")]
    if subcalls:
        summary.append(plural(len(subcalls), "sub-call"))
    if any(cell.edited for cell in step.cells):
        summary.append('<span class="rlm-edited">edited</span>')
    parts = [_markdownish(step.text)]
    for cell in sorted(step.cells, key=lambda c: c.index):
        mark = ' <span class="rlm-edited">(edited by a person)</span>' if cell.edited else ""
        parts.append(f'<div><b>Cell {cell.index}</b>{mark}<pre data-testid="rlm-cell-code"><code>'
                     f"{_esc(cell.code)}</code></pre>")
        parts += [_render_output(o) for o in cell.outputs]
        parts.append("</div>")
    parts += _render_subcalls(subcalls, depth)
    for note in node.items:
        if isinstance(note, Note) and note.step == step.step:
            parts.append(f"<blockquote><b>Note to the model:</b> {_esc(note.text)}</blockquote>")
    return (f'<details data-testid="rlm-step-node"><summary>{" · ".join(summary)}</summary>'
            f'{"".join(parts)}</details>')


def _render_run(node: RunNode, depth: int) -> str:
    parts = []
    if depth:
        parts.append(f"<p><b>Child run</b> (depth {int(node.started.get('depth') or depth)}): "
                     f"{_esc(_clip(node.question, PROMPT_PREVIEW))}</p>")
    # steps a resume abandoned are history the run went back on: the tree shows the new attempt
    steps = sorted((s for s in node.steps if not s.abandoned), key=lambda s: s.step)
    parts += [_render_step(node, step, depth) for step in steps]
    fin = node.finished
    if fin:
        answer = str(fin.get("answer") or "")
        testid = ' data-testid="rlm-answer"' if depth == 0 else ""
        reason = f" ({_esc(fin['reason'])})" if fin.get("reason") else ""
        status = _esc(fin.get("status"))
        if fin.get("status") != "done" and _is_last_prose(steps, answer):
            body = "<p><i>No answer: the model had not written one when the run ended.</i></p>"
            parts.append(f'<div class="rlm-answer"{testid}><b>No final answer</b> · {status}{reason}{body}</div>')
        else:
            title = "Answer" if fin.get("status") == "done" else "Best partial answer"
            parts.append(f'<div class="rlm-answer"{testid}><b>{title}</b> · {status}{reason}'
                         f"{_markdownish(answer)}</div>")
    return "".join(parts) if depth == 0 else f"<blockquote>{''.join(parts)}</blockquote>"


def _is_last_prose(steps: list[Step], answer: str) -> bool:
    """Whether a run that did not finish "answered" with its last message's prose (what a stop
    falls back to when nothing was put in `answer`): that is not an answer to show as one."""
    last = next((s for s in reversed(steps) if s.text), None)
    return last is not None and answer.strip() == strip_code_blocks(last.text).strip()


def header_line(node: RunNode) -> str:
    """Status, models, steps, sub-calls, tokens, cost and time: run_finished's figures when the run
    finished, the tree's when it did not (as the exported notebook's title counts them)."""
    summary = summarize(node)
    fin = node.finished or {}
    st = node.started
    usage = summary.total
    models = " / ".join(_esc(m) for m in (st.get("model"), st.get("sub_model")) if m)
    bits = [f'<b data-testid="rlm-status">{_esc(fin.get("status") or "running")}</b>', models,
            plural(summary.steps, "step"), plural(summary.subcalls, "sub-call"),
            f"tokens {usage.input_tokens:,} in / {usage.output_tokens:,} out / {usage.cache_read_tokens:,} cached"]
    if summary.cost is not None or summary.unpriced:
        bits.append(_esc(f"cost {summary.cost_text()}".replace("`", "")))
    if summary.elapsed is not None:
        bits.append(f"{float(summary.elapsed):.1f} s")
    return " · ".join(b for b in bits if b)


def _money(cost: float | None) -> str:
    return "cost unknown" if cost is None else f"${cost:,.4f}"


def chain_cost(earlier: list[dict[str, Any]]) -> float | None:
    """What the earlier questions of a follow-up cost together; None when any cost is unknown."""
    costs = [q.get("cost") for q in earlier]
    return None if any(c is None for c in costs) else float(sum(costs))


def _render_chain(node: RunNode, continued_by: str | None) -> tuple[str, str]:
    """(the line naming this run's place in its chain, the collapsed section listing the earlier
    questions with their answers), both empty for a run that is no follow-up and was not continued."""
    earlier = earlier_chain(node.started.get("earlier") or [])
    note = (f'<p data-testid="rlm-continued"><i>Continued in the next run: {_esc(continued_by)}</i></p>'
            if continued_by else "")
    if not earlier:
        return "", note
    n = len(earlier) + 1
    total = n + (1 if continued_by else 0)
    label = (f'<p data-testid="rlm-followup-label"><b>Follow-up {n} of {total}</b>: this run\'s steps; the '
             "figures in the first line are this run's only</p>")
    items = []
    for i, q in enumerate(earlier, start=1):
        figures = [_esc(q.get("status") or "unknown"), plural(int(q.get("steps") or 0), "step"),
                   plural(int(q.get("subcalls") or 0), "sub-call"), _money(q.get("cost"))]
        items.append(f'<div data-testid="rlm-chain-question"><p><b>Question {i}</b> · {" · ".join(figures)}</p>'
                     f"<blockquote>{_esc(q.get('question') or '')}</blockquote>"
                     f"{_markdownish(str(q.get('answer') or '(no answer)'))}</div>")
    this_cost = (node.finished or {}).get("cost")
    earlier_cost = chain_cost(earlier)
    summary = [f"Continues {plural(len(earlier), 'earlier question')}",
               plural(sum(int(q.get("steps") or 0) for q in earlier), "step"), _money(earlier_cost)]
    if node.finished:
        whole = None if earlier_cost is None or this_cost is None else earlier_cost + float(this_cost)
        summary.append(f"whole chain with this run {_money(whole)}")
    section = (f'<details data-testid="rlm-chain"><summary>{" · ".join(summary)}</summary>{"".join(items)}'
               "</details>")
    return label, section + note


def render_static_html(events: list[ev.Event], *, question: str | None = None,
                       log_path: str | None = None, continued_by: str | None = None) -> str:
    """The whole run tree (root and children) as one self-contained HTML fragment. A follow-up
    shows the questions it continues first; `continued_by` names the follow-up that continued it."""
    root = next((n for n in fold_runs(events).values() if not n.started.get("parent_run_id")), None)
    q = question if question is not None else (root.question if root else "")
    label, chain = _render_chain(root, continued_by) if root else ("", "")
    title = "<b>RLM run</b>" + (f" · follow-up {len(root.started['earlier']) + 1}" if label else "")
    head = f"<div>{title} · {header_line(root)}</div>" if root else \
        f'<div>{title} · <b data-testid="rlm-status">starting</b></div>'
    body = _render_run(root, 0) if root else ""
    if label:  # a follow-up: the earlier questions first, then this run's steps
        body = chain + label + body
    elif chain:  # only the note that a follow-up continued this run: after its answer
        body += chain
    foot = f"<p><small>Run log: {_esc(log_path)}</small></p>" if log_path else ""
    return (f'<div class="rlm-static" data-testid="rlm-run">{_STYLE}{head}'
            f"<blockquote>{_esc(q or '')}</blockquote>{body}{foot}</div>")
