// The run as a picture: a waterfall of model turns, generated cells and sub-calls (as lanes, so
// their real concurrency shows), child runs nested below their parent's step, with tokens per step.
// Drawn from the store alone: no extra messages from the kernel.

import { Run, Store, Sub } from './store';

const SVG = 'http://www.w3.org/2000/svg';
const ROW = 16;
const LABEL = 150;
const TOKENS = 90;
const MAX_LANES = 6;

function el(tag: string, attrs: Record<string, string | number>, title?: string): SVGElement {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (title) {
    const t = document.createElementNS(SVG, 'title');
    t.textContent = title;
    node.append(t);
  }
  return node;
}

interface Bar { kind: 'turn' | 'cell' | 'sub' | 'fail'; t0: number; t1: number; title: string }
interface Row { label: string; bars: Bar[]; tokens: number; step: string }

/** Sub-calls packed into at most MAX_LANES lanes (greedy: the first lane free at its start). */
function lanes(subs: Sub[]): Sub[][] {
  const out: Sub[][] = [];
  const ends: number[] = [];
  for (const s of [...subs].sort((a, b) => a.t0 - b.t0)) {
    const end = s.t1 ?? s.t0;
    let i = ends.findIndex(e => e <= s.t0);
    if (i < 0) i = out.length < MAX_LANES ? out.length : ends.indexOf(Math.min(...ends));
    (out[i] ??= []).push(s);
    ends[i] = Math.max(ends[i] ?? 0, end);
  }
  return out;
}

function rowsOf(store: Store, run: Run, depth: number, now: number, rows: Row[]): void {
  const pad = '  '.repeat(depth);
  for (const n of [...run.steps.keys()].sort((a, b) => a - b)) {
    const st = run.steps.get(n)!;
    const bars: Bar[] = [];
    let tokens = (Number(st.usage?.input_tokens) || 0) + (Number(st.usage?.output_tokens) || 0);
    if (st.t0 !== null) {
      const end = st.latency !== null ? st.t0 + st.latency : st.turnDone ? st.t0 : now;
      bars.push({ kind: 'turn', t0: st.t0, t1: end, title: `step ${n}: model turn, ${(end - st.t0).toFixed(1)} s` });
    }
    const subs: Sub[] = [...st.loose];
    for (const c of [...st.cells.values()].sort((a, b) => a.index - b.index)) {
      if (c.t0 !== null) {
        const end = c.duration !== null ? c.t0 + c.duration : now;
        bars.push({ kind: c.error || c.timedOut ? 'fail' : 'cell', t0: c.t0, t1: end,
                    title: `step ${n}, cell ${c.index}: ${(end - c.t0).toFixed(1)} s${c.error ? ' (error)' : ''}` });
      }
      subs.push(...c.subs.values());
    }
    rows.push({ label: `${pad}${depth ? 'child ' : ''}step ${n}`, bars, tokens: 0, step: `${run.id}|${n}` });
    const own = rows[rows.length - 1];
    lanes(subs).forEach((lane, i) => {
      const subBars: Bar[] = lane.map(s => ({
        kind: s.error ? 'fail' : 'sub', t0: s.t0, t1: s.t1 ?? now,
        title: `${s.kind === 'rlm' ? 'rlm_query' : 'llm_query'} ${s.model}: ${((s.t1 ?? now) - s.t0).toFixed(2)} s` +
          (s.error ? ` — ${s.error}` : ''),
      }));
      rows.push({ label: i === 0 ? `${pad}  ${subs.length.toLocaleString('en-US')} sub-call${subs.length === 1 ? '' : 's'}` : '',
                  bars: subBars, tokens: 0, step: `${run.id}|${n}` });
    });
    for (const s of subs) {
      if (s.kind !== 'rlm') tokens += (Number(s.usage?.input_tokens) || 0) + (Number(s.usage?.output_tokens) || 0);
    }
    own.tokens = tokens;
    for (const s of subs) {
      const child = store.childOf(s);
      if (child) rowsOf(store, child, depth + 1, now, rows);
    }
  }
}

/** The waterfall as an SVG element, or null before the run has timings. */
export function timeline(store: Store, now: number, width: number): SVGElement | null {
  const root = store.rootId ? store.runs.get(store.rootId) : null;
  const start = root?.started?.t;
  if (!root || typeof start !== 'number') return null;
  const rows: Row[] = [];
  rowsOf(store, root, 0, now, rows);
  const end = Math.max(start + 0.001, ...rows.flatMap(r => r.bars.map(b => b.t1)));
  const plot = Math.max(100, width - LABEL - TOKENS);
  const x = (t: number) => LABEL + ((t - start) / (end - start)) * plot;
  const svg = el('svg', { class: 'rlm-timeline-svg', width, height: rows.length * ROW + 18, role: 'img',
                          'aria-label': `Timeline of the run: ${rows.length} rows over ${(end - start).toFixed(1)} s` });
  rows.forEach((r, i) => {
    const y = i * ROW;
    const g = el('g', { 'data-step': r.step });
    if (r.label) g.append(Object.assign(el('text', { x: 4, y: y + ROW - 4, class: 'rlm-tl-label' }), { textContent: r.label }));
    for (const b of r.bars) {
      g.append(el('rect', { x: x(b.t0), y: y + 3, width: Math.max(1, x(b.t1) - x(b.t0)), height: ROW - 6,
                            class: `rlm-tl-${b.kind}` }, b.title));
    }
    if (r.tokens) {
      g.append(Object.assign(el('text', { x: width - 4, y: y + ROW - 4, class: 'rlm-tl-label', 'text-anchor': 'end' }),
                             { textContent: `${r.tokens.toLocaleString('en-US')} tok` }));
    }
    svg.append(g);
  });
  const axisY = rows.length * ROW + 14;
  for (let k = 0; k <= 4; k++) {
    const t = start + ((end - start) * k) / 4;
    svg.append(Object.assign(el('text', { x: x(t), y: axisY, class: 'rlm-tl-label', 'text-anchor': k === 0 ? 'start' : k === 4 ? 'end' : 'middle' }),
                             { textContent: `${(t - start).toFixed(1)} s` }));
  }
  return svg;
}
