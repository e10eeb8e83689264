"""The run as a picture for the exported notebook: the same waterfall the run tree leads with.

One row per step (model turn and generated cells), below it the step's sub-calls packed into
lanes (a sub-call takes the first lane free when it starts, so the number of lanes is how many
ran at once), child runs nested below their parent's step, tokens per step on the right. Drawn
as a self-contained SVG (its own white background and fonts: it is shown as an image, where the
page's theme does not reach) from the run record alone, with no plotting library."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from ..engine.runtree import RunNode, Step, SubCall

WIDTH = 900
ROW = 16
LABEL = 150
TOKENS = 90
MAX_LANES = 6
#: Fills on the white background: each at least 3:1 (WCAG's bar for graphics), text 7:1.
STYLE = (".bg{fill:#fff}.turn{fill:#0969da}.cell{fill:#1a7f37}.sub{fill:#9a6700}.fail{fill:#cf222e}"
         "text{font:10px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;fill:#424a53;white-space:pre}")
LEGEND = ("Blue: the model's turns · green: the cells it ran · amber: sub-calls, one lane for each that ran at "
          "the same time · red: a failed cell or sub-call. Child runs (rlm_query) are nested below their step.")


@dataclass
class Bar:
    kind: str  # turn | cell | sub | fail
    t0: float
    t1: float | None  # None: still going when the log ends


@dataclass
class Row:
    label: str
    bars: list[Bar] = field(default_factory=list)
    tokens: int = 0


def _tokens(usage: dict | None) -> int:
    usage = usage or {}
    return int(usage.get("input_tokens") or 0) + int(usage.get("output_tokens") or 0)


def _lanes(subs: list[SubCall]) -> list[list[SubCall]]:
    """Greedy: each sub-call in the first lane free at its start; past MAX_LANES, the lane that frees first."""
    lanes: list[list[SubCall]] = []
    ends: list[float] = []
    for s in sorted((s for s in subs if s.t0 is not None), key=lambda s: s.t0 or 0.0):
        start, end = s.t0 or 0.0, s.t1 if s.t1 is not None else s.t0 or 0.0
        free = next((i for i, e in enumerate(ends) if e <= start), None)
        if free is None:
            free = len(lanes) if len(lanes) < MAX_LANES else ends.index(min(ends))
        if free == len(lanes):
            lanes.append([])
            ends.append(end)
        lanes[free].append(s)
        ends[free] = max(ends[free], end)
    return lanes


def _step_bars(step: Step) -> list[Bar]:
    bars = []
    if step.t0 is not None:
        latency = (step.turn or {}).get("latency")
        bars.append(Bar("turn", step.t0, step.t0 + float(latency) if latency is not None else None))
    for cell in step.cells:
        if cell.t0 is None:
            continue
        f = cell.finished or {}
        stop = cell.t0 + float(f["duration"]) if f.get("duration") is not None else None
        bars.append(Bar("fail" if f.get("error") or f.get("timed_out") else "cell", cell.t0, stop))
    return bars


def _rows(node: RunNode, depth: int, rows: list[Row]) -> None:
    pad = "  " * depth
    for step in node.steps:
        if step.abandoned:
            continue
        subs = step.subcalls
        own = Row(f"{pad}{'child ' if depth else ''}step {step.step}", _step_bars(step),
                  _tokens((step.turn or {}).get("usage")) + sum(_tokens(s.usage) for s in subs if s.kind != "rlm"))
        rows.append(own)
        for i, lane in enumerate(_lanes(subs)):
            label = f"{pad}  {len(subs):,} sub-call{'s' if len(subs) != 1 else ''}" if i == 0 else ""
            rows.append(Row(label, [Bar("fail" if s.error else "sub", s.t0 or 0.0, s.t1) for s in lane]))
        for s in subs:
            if s.child is not None:
                _rows(s.child, depth + 1, rows)


def _num(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def timeline_svg(node: RunNode) -> str | None:
    """The waterfall of `node` and its child runs as SVG text; None when the log has no timings."""
    start = node.started.get("t")
    if not isinstance(start, (int, float)):
        return None
    rows: list[Row] = []
    _rows(node, 0, rows)
    bars = [b for r in rows for b in r.bars]
    if not bars:
        return None
    # the end: the run's, else the last time the log knows; what was still going is drawn up to it
    finished = (node.finished or {}).get("t")
    known = [b.t1 if b.t1 is not None else b.t0 for b in bars]
    end = max([start + 0.001, *known, *([finished] if isinstance(finished, (int, float)) else [])])
    for b in bars:
        b.t1 = end if b.t1 is None else b.t1
    plot = WIDTH - LABEL - TOKENS

    def x(t: float) -> float:
        return LABEL + (t - start) / (end - start) * plot

    height = len(rows) * ROW + 18
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}" role="img">',
           f"<title>Timeline of the run: {len(rows)} rows over {end - start:.1f} s</title>",
           f"<style>{STYLE}</style>", f'<rect class="bg" width="{WIDTH}" height="{height}"/>']
    for i, row in enumerate(rows):
        y = i * ROW
        out.append(f'<g data-row="{i}">')
        if row.label:
            out.append(f'<text x="4" y="{y + ROW - 4}">{escape(row.label)}</text>')
        for b in row.bars:
            w = max(1.0, x(b.t1 or end) - x(b.t0))
            out.append(f'<rect class="{b.kind}" x="{_num(x(b.t0))}" y="{y + 3}" width="{_num(w)}" height="{ROW - 6}"/>')
        if row.tokens:
            out.append(f'<text x="{WIDTH - 4}" y="{y + ROW - 4}" text-anchor="end">{row.tokens:,} tok</text>')
        out.append("</g>")
    axis = len(rows) * ROW + 14
    for k in range(5):
        t = start + (end - start) * k / 4
        anchor = "start" if k == 0 else "end" if k == 4 else "middle"
        out.append(f'<text x="{_num(x(t))}" y="{axis}" text-anchor="{anchor}">{t - start:.1f} s</text>')
    out.append("</svg>")
    return "\n".join(out)
