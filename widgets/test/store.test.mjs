// The run store on its own (no DOM, no JupyterLab): the kernel protocol's rules and the totals.
// Run with `npm test` after `npm run build:lib`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { batchLabel, chainOf, Store } from '../lib/store.js';

const T0 = 1_700_000_000;
const item = (type, fields = {}) => ({ type, run_id: 'root', t: T0, ...fields });

function started() {
  return [
    item('run_started', { question: 'How many?', model: 'm', sub_model: 's', options: { max_iterations: 9 } }),
    item('turn_started', { step: 1 }),
    item('turn_finished', { step: 1, text: 'Look.', usage: { input_tokens: 100, output_tokens: 10 } }),
    item('cell_started', { step: 1, index: 1, code: "x = llm_query('a')" }),
  ];
}

test('a store is read-only until the kernel resets it; then batches apply in order', () => {
  const s = new Store();
  s.load(started(), false);
  assert.equal(s.synced, false);
  assert.equal(s.live(), false);
  assert.equal(s.receive({ kind: 'batch', n: 1, items: [item('cell_finished', { step: 1, index: 1 })] }), null);
  assert.equal(s.runs.get('root').steps.get(1).cells.get(1).running, true, 'a batch applied before the reset');

  s.receive({ kind: 'reset', n: 4, items: started(), now: T0, finished: false });
  assert.equal(s.synced, true);
  assert.equal(s.live(), true);
  s.receive({ kind: 'batch', n: 4, items: [item('turn_started', { step: 9 })] }); // already in the reset
  assert.equal(s.runs.get('root').steps.has(9), false);
  s.receive({ kind: 'batch', n: 5, items: [item('cell_finished', { step: 1, index: 1, outputs: [] })] });
  assert.equal(s.runs.get('root').steps.get(1).cells.get(1).running, false);
});

test('a gap in batch numbers asks for the whole run again', () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: started(), now: T0, finished: false });
  assert.equal(s.receive({ kind: 'batch', n: 3, items: [] }), 'hello');
  assert.equal(s.synced, false);
});

test('one source for every total: child runs counted once, failures counted', () => {
  const s = new Store();
  s.load([
    ...started(),
    item('subcall_started', { step: 1, id: 'a', kind: 'llm', prompt: 'p' }),
    item('subcall_finished', { step: 1, id: 'a', kind: 'llm', usage: { input_tokens: 7, output_tokens: 3 } }),
    item('subcall_started', { step: 1, id: 'b', kind: 'llm', prompt: 'p' }),
    item('subcall_finished', { step: 1, id: 'b', kind: 'llm', error: 'HTTP 400' }),
    item('subcall_started', { step: 1, id: 'c', kind: 'rlm', prompt: 'deeper' }),
    { ...item('run_started', { parent_run_id: 'root', parent_subcall_id: 'c', depth: 1 }), run_id: 'kid' },
    { ...item('turn_started', { step: 1 }), run_id: 'kid' },
    { ...item('turn_finished', { step: 1, text: 'FINAL(x)', usage: { input_tokens: 20, output_tokens: 2 } }), run_id: 'kid' },
    { ...item('subcall_started', { step: 1, id: 'k1', kind: 'llm', prompt: 'q' }), run_id: 'kid' },
    { ...item('subcall_finished', { step: 1, id: 'k1', kind: 'llm', usage: { input_tokens: 5, output_tokens: 1 } }), run_id: 'kid' },
    // the rlm_query's usage is its child's, already counted from the child's own turns and sub-calls
    item('subcall_finished', { step: 1, id: 'c', kind: 'rlm', child_run_id: 'kid', usage: { input_tokens: 25, output_tokens: 3 } }),
    item('cell_finished', { step: 1, index: 1, error: { ename: 'ValueError' } }),
  ], false);
  const t = s.totals();
  assert.equal(t.subcalls, 4);
  assert.equal(t.failedSubcalls, 1);
  assert.equal(t.failedCells, 1);
  assert.equal(t.steps, 1);
  assert.deepEqual(t.tokens, { in: 100 + 7 + 20 + 5, out: 10 + 3 + 2 + 1, cached: 0 });
});

test('a finished run is not live, and a child finishing does not end the tree', () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: started(), now: T0, finished: false });
  s.receive({ kind: 'batch', n: 2, items: [{ ...item('state', { state: 'done' }), run_id: 'kid' }] });
  assert.equal(s.live(), true);
  s.receive({ kind: 'batch', n: 3, items: [item('run_finished', { status: 'stopped', reason: 'interrupted' })] });
  assert.equal(s.state, 'stopped');
  assert.equal(s.live(), false);
});

test("a running cell's live output grows, and its finished outputs replace it", () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: started(), now: T0, finished: false });
  s.receive({ kind: 'batch', n: 2, items: [item('cell_stream', { step: 1, index: 1, name: 'stdout', text: 'a\n' }),
                                           item('cell_stream', { step: 1, index: 1, name: 'stdout', text: 'b\n' })] });
  const cell = s.runs.get('root').steps.get(1).cells.get(1);
  assert.equal(cell.live, 'a\nb\n');
  s.receive({ kind: 'batch', n: 3, items: [item('cell_finished', { step: 1, index: 1, outputs: [{ output_type: 'stream', name: 'stdout', text: 'a\nb\n' }] })] });
  assert.equal(cell.live, '');
  assert.equal(cell.outputs.length, 1);
  // live text for a cell that is not running (a late batch) is dropped
  s.receive({ kind: 'batch', n: 4, items: [item('cell_stream', { step: 1, index: 1, name: 'stdout', text: 'late' })] });
  assert.equal(cell.live, '');
});

test('a Message Batch shows its counts on the cell that sent it, through created, progress and finished', () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: started(), now: T0, finished: false });
  const badges = (step = 1, index = 1) => [...s.runs.get('root').steps.get(step).cells.get(index).batches.values()].map(batchLabel);
  const counts = (c) => ({ processing: 0, succeeded: 0, errored: 0, canceled: 0, expired: 0, ...c });
  s.receive({ kind: 'batch', n: 2, items: [
    item('batch_created', { step: 1, batch: 'b1', api_batch_id: 'msgbatch_1', model: 's', count: 500 })] });
  assert.deepEqual(badges(), ['Message Batch · 500 processing']);
  s.receive({ kind: 'batch', n: 3, items: [
    item('batch_progress', { step: 1, batch: 'b1', status: 'in_progress', counts: counts({ processing: 120, succeeded: 378, errored: 2 }) })] });
  assert.deepEqual(badges(), ['Message Batch · 120 processing · 378 succeeded · 2 errored']);
  s.receive({ kind: 'batch', n: 4, items: [
    item('batch_progress', { step: 1, batch: 'b1', status: 'canceling', counts: counts({ processing: 1200, succeeded: 3 }) })] });
  assert.deepEqual(badges(), ['Message Batch · canceling · 1,200 processing · 3 succeeded']);
  // the cell finishing (and a later cell running) neither drops the badge nor moves it
  s.receive({ kind: 'batch', n: 5, items: [
    item('cell_finished', { step: 1, index: 1, outputs: [] }),
    item('cell_started', { step: 1, index: 2, code: 'y = 1' })] });
  s.receive({ kind: 'batch', n: 6, items: [
    item('batch_finished', { step: 1, batch: 'b1', status: 'ended', counts: counts({ succeeded: 498, errored: 2 }), error: null })] });
  assert.deepEqual(badges(), ['Message Batch · ended · 498 succeeded · 2 errored']);
  assert.deepEqual(badges(1, 2), []);
  // a second batch, from the cell running now, that fails
  s.receive({ kind: 'batch', n: 7, items: [
    item('batch_created', { step: 1, batch: 'b2', count: 3 }),
    item('batch_finished', { step: 1, batch: 'b2', status: 'ended', counts: counts({ errored: 3 }), error: 'HTTP 529 overloaded' })] });
  assert.deepEqual(badges(1, 2), ['Message Batch · failed · 3 errored']);
  assert.equal(badges().length, 1);
});

test('a batch canceled when the run ended says canceled and no longer counts requests as processing', () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: started(), now: T0, finished: false });
  const badge = () => [...s.runs.get('root').steps.get(1).cells.get(1).batches.values()].map(batchLabel)[0];
  s.receive({ kind: 'batch', n: 2, items: [
    item('batch_created', { step: 1, batch: 'b1', count: 2 }),
    item('batch_progress', { step: 1, batch: 'b1', status: 'in_progress', counts: { processing: 1, succeeded: 1 } })] });
  assert.equal(badge(), 'Message Batch · 1 processing · 1 succeeded');
  s.receive({ kind: 'batch', n: 3, items: [
    item('run_finished', { status: 'stopped', reason: 'stopped by user' }),
    item('batch_finished', { step: 1, batch: 'b1', status: 'canceled', counts: null, error: 'the run ended: canceled' })] });
  assert.equal(badge(), 'Message Batch · canceled · 1 succeeded');
});

const EARLIER = [
  { run_id: 'r1', question: 'How often?', answer: 'alpha 90', status: 'done', steps: 2, subcalls: 0, cost: 0.01 },
  { run_id: 'r2', question: 'Which most?', answer: 'alpha', status: 'stopped', steps: 3, subcalls: 4, cost: 0.02 },
];

test("a follow-up's store knows its chain: its place, the earlier steps and costs, the whole chain's once done", () => {
  const s = new Store();
  s.receive({ kind: 'reset', n: 1, items: [item('run_started', { question: 'Share?', continues: 'r2', earlier: EARLIER })],
              now: T0, finished: false });
  let c = chainOf(s);
  assert.equal(c.position, 3);
  assert.equal(c.total, 3);
  assert.deepEqual(c.earlier.map(q => q.question), ['How often?', 'Which most?']);
  assert.equal(c.earlierSteps, 5);
  assert.ok(Math.abs(c.earlierCost - 0.03) < 1e-9);
  assert.equal(c.wholeCost, null, 'no whole-chain cost before this run has one');
  s.receive({ kind: 'batch', n: 2, items: [item('run_finished', { status: 'done', answer: 'half', cost: 0.005 })] });
  assert.ok(Math.abs(chainOf(s).wholeCost - 0.035) < 1e-9);
  // one unknown cost makes the sums unknown rather than too small
  const t = new Store();
  t.load([item('run_started', { question: 'Q', earlier: [{ ...EARLIER[0], cost: null }, EARLIER[1]] }),
          item('run_finished', { status: 'done', cost: 0.005 })], true);
  assert.equal(chainOf(t).earlierCost, null);
  assert.equal(chainOf(t).wholeCost, null);
});

test('a run that is no follow-up has no chain; one continued by a follow-up knows it, also from the saved copy', () => {
  const s = new Store();
  s.load([...started(), item('run_finished', { status: 'done', answer: 'a' }),
          item('continued', { by: 'r9', question: 'And then?' })], true);
  assert.equal(chainOf(s), null);
  assert.equal(s.continuedBy.question, 'And then?');
  const f = new Store();
  f.load([item('run_started', { question: 'Q', earlier: EARLIER }), item('continued', { by: 'r9', question: 'More?' })], true);
  assert.equal(chainOf(f).total, 4, 'the chain grew past this run');
});
