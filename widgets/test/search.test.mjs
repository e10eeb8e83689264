// Search over the tree's text and the windowed rows' arithmetic, on the store alone (no DOM).
// Run with `npm test` after `npm run build:lib`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { filterRows, offsetOf, visibleSlice } from '../lib/rows.js';
import { findHits, openPath, outputText } from '../lib/search.js';
import { Store } from '../lib/store.js';

const T0 = 1_700_000_000;
const item = (type, fields = {}) => ({ type, run_id: 'root', t: T0, ...fields });
const kid = (type, fields = {}) => ({ ...item(type, fields), run_id: 'kid' });

/** A root step whose cell sent a batch of two and an rlm_query whose child run printed a secret. */
function tree() {
  const s = new Store();
  s.load([
    item('run_started', { question: 'q' }),
    item('turn_started', { step: 1 }),
    item('turn_finished', { step: 1, text: 'I will Fan out.\n```repl\nres = fan_out()\nprint(len(res))\n```' }),
    item('cell_started', { step: 1, index: 1, code: 'res = fan_out()\nprint(len(res))' }),
    item('subcall_started', { step: 1, id: 'a', kind: 'llm', prompt: 'Describe the walrus' }),
    item('subcall_finished', { step: 1, id: 'a', kind: 'llm', response: 'A walrus is large.' }),
    item('subcall_started', { step: 1, id: 'b', kind: 'llm', prompt: 'Describe the otter' }),
    item('subcall_finished', { step: 1, id: 'b', kind: 'llm', error: 'RateLimitError: walrus quota' }),
    item('subcall_started', { step: 1, id: 'c', kind: 'rlm', prompt: 'Dig deeper' }),
    kid('run_started', { parent_run_id: 'root', parent_subcall_id: 'c', depth: 1 }),
    kid('turn_started', { step: 1 }),
    kid('cell_started', { step: 1, index: 1, code: "print('the secret word')" }),
    kid('cell_finished', { step: 1, index: 1, outputs: [{ output_type: 'stream', name: 'stdout', text: 'the SECRET word\n' }] }),
    item('subcall_finished', { step: 1, id: 'c', kind: 'rlm', child_run_id: 'kid', response: 'done' }),
    item('cell_finished', { step: 1, index: 1, outputs: [{ output_type: 'error', ename: 'KeyError', evalue: "'walrus'",
                                                          traceback: ['\x1b[0;31mKeyError\x1b[0m: \'walrus\''] }] }),
    item('run_finished', { status: 'done', answer: 'The walrus wins.' }),
  ], true);
  return s;
}

test('hits come in the order the tree shows them, in every kind of text, case-insensitively', () => {
  const hits = findHits(tree(), 'WALRUS');
  assert.deepEqual(hits.map(h => [h.run, h.sub, h.field]), [
    ['root', 'a', 'prompt'], ['root', 'a', 'response'], ['root', 'b', 'error'], ['root', null, 'output'],
    ['root', null, 'answer'],
  ]);
  assert.equal(hits[3].count, 2, 'the error output names it twice (evalue and traceback)');
  assert.deepEqual(findHits(tree(), '   '), []);
  assert.deepEqual(findHits(tree(), 'nowhere at all'), []);
});

test("a child run's text is found inside the rlm_query row that holds it, and the path opens it", () => {
  const s = tree();
  const hits = findHits(s, 'secret word');
  assert.deepEqual(hits.map(h => [h.run, h.step, h.cell, h.field, h.count]),
    [['kid', 1, 1, 'code', 1], ['kid', 1, 1, 'output', 1]]);
  assert.deepEqual(openPath(s, hits[0]),
    ['step|root|1', 'group|cell|root|1|1', 'sub|root|c', 'step|kid|1']);
  // a sub-call's text opens its list and the row itself
  const [prompt] = findHits(s, 'otter');
  assert.deepEqual(openPath(s, prompt), ['step|root|1', 'group|cell|root|1|1', 'sub|root|b']);
});

test("the step's prose is searched as shown: its code blocks are the cells' (a pointer quotes their first line)", () => {
  assert.deepEqual(findHits(tree(), 'len(res)').map(h => h.field), ['code']);
  assert.deepEqual(findHits(tree(), 'fan_out').map(h => h.field), ['prose', 'code']);
  assert.deepEqual(findHits(tree(), 'fan out').map(h => h.field), ['prose']);
});

test('outputs are searched as a person reads them', () => {
  assert.equal(outputText({ output_type: 'stream', text: ['a', 'b'] }), 'ab');
  assert.equal(outputText({ output_type: 'display_data', data: { 'text/html': '<b>bold</b> move', 'text/plain': 'plain' } }),
    'plain');
  assert.equal(outputText({ output_type: 'display_data', data: { 'text/html': '<td>cell</td>' } }).trim(), 'cell');
  assert.match(outputText({ output_type: 'error', ename: 'E', evalue: 'v', traceback: ['\x1b[31mred\x1b[0m'] }), /^E: v\nred$/);
});

test('a window draws the rows overlapping the view plus the margin, spacers stand in for the rest', () => {
  const heights = Array(1000).fill(20);
  assert.deepEqual(visibleSlice(heights, 0, 400, 100), { start: 0, end: 25, before: 0, after: 975 * 20 });
  const mid = visibleSlice(heights, 10_000, 400, 100);
  assert.deepEqual(mid, { start: 495, end: 525, before: 495 * 20, after: 475 * 20 });
  assert.equal(mid.before + (mid.end - mid.start) * 20 + mid.after, 20_000);
  const end = visibleSlice(heights, 19_600, 400, 100);
  assert.equal(end.end, 1000);
  assert.equal(end.after, 0);
  // an opened (taller) row shifts what follows
  heights[3] = 220;
  assert.equal(offsetOf(heights, 10), 10 * 20 + 200);
  assert.equal(visibleSlice(heights, 0, 100, 0).end, 4);
  assert.deepEqual(visibleSlice([], 0, 400, 100), { start: 0, end: 0, before: 0, after: 0 });
});

test('filters: all in call order, failed only, slowest first', () => {
  const rows = [
    { id: 'a', latency: 0.5, error: null }, { id: 'b', latency: 2.0, error: 'x' },
    { id: 'c', latency: null, error: null }, { id: 'd', latency: 1.0, error: null },
  ];
  assert.deepEqual(filterRows(rows, 'all').map(r => r.id), ['a', 'b', 'c', 'd']);
  assert.deepEqual(filterRows(rows, 'failed').map(r => r.id), ['b']);
  assert.deepEqual(filterRows(rows, 'slowest').map(r => r.id), ['b', 'd', 'a', 'c']);
  assert.deepEqual(rows.map(r => r.id), ['a', 'b', 'c', 'd'], 'the list itself is left in call order');
});
