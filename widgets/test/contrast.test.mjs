// The colour arithmetic that makes terminal colours in the tree's outputs readable (no DOM).
// Run with `npm test` after `npm run build:lib`.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { contrast, over, parseColor, readable } from '../lib/contrast.js';

const WHITE = [255, 255, 255, 1];
const ERROR_BG_LIGHT = [255, 221, 221, 1]; // JupyterLab Light's --jp-rendermime-error-background
const ERROR_BG_DARK = over([244, 67, 54, 0.28], [17, 17, 17, 1]); // JupyterLab Dark's, on its #111

test('computed colours parse in the forms browsers return', () => {
  assert.deepEqual(parseColor('rgb(0, 135, 0)'), [0, 135, 0, 1]);
  assert.deepEqual(parseColor('rgba(244, 67, 54, 0.28)'), [244, 67, 54, 0.28]);
  assert.deepEqual(parseColor('color(srgb 1 0.5 0)'), [255, 127.5, 0, 1]);
  assert.equal(parseColor('transparent'), null);
});

test('the WCAG ratio: black on white is 21, a colour on itself 1', () => {
  assert.equal(Math.round(contrast([0, 0, 0, 1], WHITE) * 100) / 100, 21);
  assert.equal(contrast([96, 198, 200, 1], [96, 198, 200, 1]), 1);
});

test('JupyterLab\'s ANSI cyan and green are darkened on the light error background, just enough', () => {
  for (const ansi of [[96, 198, 200, 1], [0, 162, 80, 1], [231, 92, 88, 1], [0, 135, 0, 1]]) {
    assert.ok(contrast(ansi, ERROR_BG_LIGHT) < 4.5);
    const fixed = readable(ansi, ERROR_BG_LIGHT);
    const ratio = contrast(fixed, ERROR_BG_LIGHT);
    assert.ok(ratio >= 4.5 && ratio < 4.7, `${ansi} -> ${fixed}: ${ratio}`);
    assert.ok(fixed.slice(0, 3).every((v, i) => v <= ansi[i] && Number.isInteger(v)), `${fixed} is not darker`);
  }
});

test('on a dark background a colour is lightened instead, and a readable one is left alone', () => {
  const green = [0, 135, 0, 1];
  const fixed = readable(green, ERROR_BG_DARK);
  assert.ok(contrast(fixed, ERROR_BG_DARK) >= 4.5);
  assert.ok(fixed.slice(0, 3).every((v, i) => v >= green[i]), `${fixed} is not lighter`);
  const red = [178, 43, 49, 1];
  assert.equal(readable(red, WHITE), red);
});
