// Long sub-call lists (a 1,000-prompt batch) are drawn windowed: only the rows in view plus a margin
// are in the DOM, with spacers standing in for the rest. This module is the arithmetic (no DOM);
// RowWindow in window.ts applies it.

import { Sub } from './store';

export type RowFilter = 'all' | 'failed' | 'slowest';

/** The rows a filter shows: all in call order, the failed ones, or all by latency (slowest first,
 * unfinished last). */
export function filterRows(list: Sub[], filter: RowFilter): Sub[] {
  if (filter === 'failed') return list.filter(x => x.error);
  if (filter === 'slowest') {
    return [...list].sort((a, b) => (b.latency ?? -1) - (a.latency ?? -1));
  }
  return list;
}

export interface Slice {
  /** First row drawn (inclusive) and the row after the last one drawn. */
  start: number;
  end: number;
  /** Heights of the spacers above and below the drawn rows, px. */
  before: number;
  after: number;
}

/** Which rows to draw for a scroll position: those overlapping [top - margin, top + view + margin]
 * (margin in px), given each row's height (measured, or an estimate for rows never drawn). */
export function visibleSlice(heights: number[], top: number, view: number, margin: number): Slice {
  const n = heights.length;
  const lo = Math.max(0, top - margin);
  const hi = top + view + margin;
  let y = 0;
  let start = 0;
  while (start < n && y + heights[start] <= lo) y += heights[start++];
  const before = y;
  let end = start;
  while (end < n && y < hi) y += heights[end++];
  let after = 0;
  for (let i = end; i < n; i++) after += heights[i];
  return { start, end, before, after };
}

/** The offset of row i from the list's top, px. */
export function offsetOf(heights: number[], i: number): number {
  let y = 0;
  for (let k = 0; k < Math.min(i, heights.length); k++) y += heights[k];
  return y;
}
