// Search over the run tree's text (the run view's Ctrl+F): which steps, cells and sub-calls hold a
// string, in the order the tree shows them, and which disclosures must open to show each one.
// Works on the store alone (no DOM), so the rules are unit tested; the view draws the result.

import { Cell, Item, Run, Step, Store, Sub } from './store';

/** Where in a node the text was found. */
export type Field = 'prose' | 'code' | 'output' | 'prompt' | 'response' | 'error' | 'note' | 'answer';

export interface Hit {
  run: string;
  step: number | null;
  cell: number | null;
  sub: string | null;
  field: Field;
  /** How many times the query occurs there. */
  count: number;
}

/** The model's prose with its ```repl blocks replaced by a pointer: the step's cells show them. */
export function proseOf(text: string, cells: number): string {
  let n = 0;
  return text.replace(/```(repl|python|py)[^\n]*\n([\s\S]*?)(```|$)/g, (_m, _lang, code: string) => {
    n += 1;
    if (n > cells) return _m;
    const first = (code.split('\n').find(l => l.trim()) || '').trim().slice(0, 80).replace(/`/g, "'");
    return `\n> ▸ Cell ${n} below: \`${first}\`…\n`;
  });
}

const ANSI = /\x1b\[[0-9;]*[A-Za-z]/g; // eslint-disable-line no-control-regex

const joined = (v: unknown): string => (Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : '');

/** The words a person reads in one generated output (stream, error, or its best text form). */
export function outputText(o: Item): string {
  if (!o || typeof o !== 'object') return '';
  if (o.output_type === 'stream') return joined(o.text);
  if (o.output_type === 'error') {
    return [`${o.ename ?? ''}: ${o.evalue ?? ''}`, ...(o.traceback || [])].join('\n').replace(ANSI, '');
  }
  const data = (o.data || {}) as Item;
  if (data['text/plain'] !== undefined) return joined(data['text/plain']).replace(ANSI, '');
  if (data['text/markdown'] !== undefined) return joined(data['text/markdown']);
  if (data['text/html'] !== undefined) return joined(data['text/html']).replace(/<[^>]*>/g, ' ');
  return '';
}

/** Non-overlapping, case-insensitive occurrences of `needle` in `hay`. */
export function occurrences(hay: string, needle: string): number {
  if (!needle || !hay) return 0;
  const h = hay.toLowerCase();
  const n = needle.toLowerCase();
  let count = 0;
  for (let at = h.indexOf(n); at !== -1; at = h.indexOf(n, at + n.length)) count += 1;
  return count;
}

/** Every place the query occurs, in the tree's order: each step's prose, then its cells (code, the
 * cell's sub-calls with their child runs, outputs), its other sub-calls, its notes; the answer last. */
export function findHits(store: Store, query: string): Hit[] {
  const hits: Hit[] = [];
  const q = query.trim();
  if (!q) return hits;
  const add = (text: string, where: Omit<Hit, 'count'>) => {
    const count = occurrences(text, q);
    if (count) hits.push({ ...where, count });
  };
  const walkSub = (sub: Sub) => {
    const at = { run: sub.run, step: sub.step, cell: sub.cell, sub: sub.id };
    add(sub.prompt, { ...at, field: 'prompt' });
    if (sub.error) add(sub.error, { ...at, field: 'error' });
    else add(sub.response || '', { ...at, field: 'response' });
    const child = store.childOf(sub);
    if (child) walkRun(child);
  };
  const walkCell = (run: Run, st: Step, c: Cell) => {
    const at = { run: run.id, step: st.n, cell: c.index, sub: null };
    add(c.code, { ...at, field: 'code' });
    for (const sub of c.subs.values()) walkSub(sub);
    add(c.live, { ...at, field: 'output' });
    add((c.outputs || []).map(outputText).join('\n'), { ...at, field: 'output' });
  };
  const walkRun = (run: Run) => {
    for (const n of [...run.steps.keys()].sort((a, b) => a - b)) {
      const st = run.steps.get(n)!;
      const at = { run: run.id, step: n, cell: null, sub: null };
      add(proseOf(st.text, st.cells.size), { ...at, field: 'prose' });
      for (const i of [...st.cells.keys()].sort((a, b) => a - b)) walkCell(run, st, st.cells.get(i)!);
      for (const sub of st.loose) walkSub(sub);
      add(st.notes.join('\n'), { ...at, field: 'note' });
    }
  };
  const root = store.rootId ? store.runs.get(store.rootId) : null;
  if (root) walkRun(root);
  if (store.finished) add(String(store.finished.answer || ''), { run: root?.id ?? '', step: null, cell: null, sub: null,
                                                                 field: 'answer' });
  return hits;
}

/** The ui.open keys that must be true for a node to be on screen: the rlm_query rows and steps of
 * every parent run, the node's own step, its sub-call list and (for a sub-call's text) the row. */
export function openPath(store: Store, at: { run: string; step: number | null; cell: number | null;
                                              sub: string | null }, openRow = true): string[] {
  const keys: string[] = [];
  if (at.step === null) return keys;
  let run = store.runs.get(at.run);
  while (run && run.parentRun) {
    const parent = store.runs.get(run.parentRun);
    const psub = parent?.subIndex.get(run.parentSub || '');
    if (!parent || !psub) break;
    keys.unshift(`step|${parent.id}|${psub.step}`, groupKey(psub), `sub|${parent.id}|${psub.id}`);
    run = parent;
  }
  keys.push(`step|${at.run}|${at.step}`);
  if (at.sub !== null) {
    const sub = store.runs.get(at.run)?.subIndex.get(at.sub);
    if (sub) {
      keys.push(groupKey(sub));
      if (openRow) keys.push(`sub|${sub.run}|${sub.id}`);
    }
  }
  return keys;
}

/** The key of the sub-call list a sub-call is a row of (its cell's, or the step's loose list). */
export function groupKey(sub: Sub): string {
  return sub.cell !== null ? `group|cell|${sub.run}|${sub.step}|${sub.cell}` : `group|loose|${sub.run}|${sub.step}`;
}

/** A stable name for a hit, to keep one's place when the hits are counted again. */
export const hitKey = (h: Hit) => `${h.run}|${h.step}|${h.cell}|${h.sub}|${h.field}`;
