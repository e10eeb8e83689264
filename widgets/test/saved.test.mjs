// The saved run state read back (no DOM): both payload versions, images from the static copy.
// Run with `npm test` after `npm run build:lib`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { savedItems, STATIC_IMAGE } from '../lib/saved.js';

const PNG = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const cell = data => ({ type: 'cell_finished', run_id: 'r', step: 1, index: 1,
                        outputs: [{ output_type: 'display_data', data }] });
const html = n => `<div><img alt="output image" data-rlm-img="${n}" src="data:image/png;base64,${PNG}"></div>`;

test('version 1 (an items list) and version 2 (one JSON string) read the same', () => {
  const items = [{ type: 'run_started', run_id: 'r' }, cell({ 'text/plain': 'x' })];
  assert.deepEqual(savedItems({ items }, ''), items);
  assert.deepEqual(savedItems({ items_json: JSON.stringify(items) }, ''), items);
  assert.deepEqual(savedItems({ items_json: '{not json' }, ''), []);
});

test("an image pointer takes the static copy's image; text forms stay; an unknown pointer drops the image", () => {
  const items = [cell({ 'image/png': { [STATIC_IMAGE]: 3 }, 'text/plain': '<Image>' })];
  const [got] = savedItems({ items_json: JSON.stringify(items) }, ['<p>', html(3), '</p>']);
  assert.deepEqual(got.outputs[0].data, { 'image/png': PNG, 'text/plain': '<Image>' });
  const [lost] = savedItems({ items_json: JSON.stringify(items) }, html(0));
  assert.deepEqual(lost.outputs[0].data, { 'text/plain': '<Image>' });
});

test("the root run's id and a sub-call's kind come back where the saved copy left them implied", () => {
  const items = [{ type: 'run_started', run_id: 'root' }, { type: 'subcall_finished', id: 's1' },
                 { type: 'subcall_finished', id: 's2', kind: 'rlm', child_run_id: 'c' },
                 { type: 'run_started', run_id: 'c', parent_run_id: 'root' }, { type: 'turn_started', run_id: 'c' }];
  const got = savedItems({ items_json: JSON.stringify(items) }, '');
  assert.deepEqual(got.map(i => [i.run_id, i.kind]),
                   [['root', undefined], ['root', 'llm'], ['root', 'rlm'], ['c', undefined], ['c', undefined]]);
});
