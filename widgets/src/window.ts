// A windowed list: a scroll box that holds only the rows in view plus a margin, with two spacers
// sized to the rows left out, so a 1,000-row list costs a few dozen rows of DOM. Rows keep their
// measured heights (an opened row is taller), and a focused row stays put while others come and go.

import { offsetOf, visibleSlice } from './rows';

export interface RowWindowOptions<T> {
  key(row: T): string;
  /** The row's element, up to date (the caller may cache and reuse it). */
  render(row: T): HTMLElement;
  /** Height of a row never drawn yet, px. */
  estimate: number;
  /** Drawn above and below the view, px. */
  margin: number;
  /** The box's height when the rows are taller than this, px. */
  maxHeight: number;
}

export class RowWindow<T> {
  readonly el: HTMLElement;
  private readonly body: HTMLElement;
  private readonly above: HTMLElement;
  private readonly below: HTMLElement;
  private rows: T[] = [];
  private heights = new Map<string, number>();
  private drawn = new Map<string, HTMLElement>();
  private frame = 0;
  private resize: ResizeObserver | null = null;

  constructor(private readonly opts: RowWindowOptions<T>) {
    const div = (cls: string) => {
      const d = document.createElement('div');
      d.className = cls;
      return d;
    };
    this.el = div('rlm-window');
    this.el.dataset.testid = 'rlm-row-window';
    this.above = div('rlm-window-spacer');
    this.below = div('rlm-window-spacer');
    this.body = div('rlm-window-rows');
    this.el.append(this.above, this.body, this.below);
    this.el.addEventListener('scroll', () => {
      if (!this.frame) this.frame = requestAnimationFrame(() => {
        this.frame = 0;
        this.draw();
      });
    }, { passive: true });
    if (typeof ResizeObserver !== 'undefined') {
      // a row opened or closed: remember its new height for the next slice
      this.resize = new ResizeObserver(() => this.measure());
      this.resize.observe(this.body);
    }
  }

  /** Show these rows (a new filter or order starts at the top; the same rows keep their place). */
  setRows(rows: T[], fromTop = false): void {
    this.rows = rows;
    if (fromTop) this.el.scrollTop = 0;
    this.draw();
  }

  /** Draw the slice for the current scroll position. */
  draw(): void {
    const { key, render, estimate, margin, maxHeight } = this.opts;
    const heights = this.rows.map(r => this.heights.get(key(r)) ?? estimate);
    const total = heights.reduce((a, b) => a + b, 0);
    this.el.style.height = `${Math.min(maxHeight, total)}px`;
    const view = Math.min(maxHeight, total);
    const s = visibleSlice(heights, this.el.scrollTop, view, margin);
    this.above.style.height = `${s.before}px`;
    this.below.style.height = `${s.after}px`;
    const wanted = new Map<string, HTMLElement>();
    for (const row of this.rows.slice(s.start, s.end)) wanted.set(key(row), render(row));
    // remove what left, then insert what came, so rows that stay (and a focused one) are not moved
    for (const [k, el] of this.drawn) if (wanted.get(k) !== el) el.remove();
    const els = [...wanted.values()];
    els.forEach((el, i) => {
      if (this.body.children[i] !== el) this.body.insertBefore(el, this.body.children[i] || null);
    });
    while (this.body.children.length > els.length) this.body.lastElementChild!.remove();
    this.drawn = wanted;
    this.measure();
  }

  private measure(): void {
    for (const [k, el] of this.drawn) {
      const h = el.offsetHeight;
      if (h > 0) this.heights.set(k, h);
    }
  }

  /** Scroll the box so the row is in its middle and drawn; returns its element (null: not a row). */
  scrollTo(rowKey: string): HTMLElement | null {
    const { key, estimate } = this.opts;
    const i = this.rows.findIndex(r => key(r) === rowKey);
    if (i < 0) return null;
    const heights = this.rows.map(r => this.heights.get(key(r)) ?? estimate);
    const view = Math.min(this.opts.maxHeight, heights.reduce((a, b) => a + b, 0));
    this.el.scrollTop = Math.max(0, offsetOf(heights, i) - (view - heights[i]) / 2);
    this.draw();
    return this.drawn.get(rowKey) ?? null;
  }

  dispose(): void {
    this.resize?.disconnect();
    if (this.frame) cancelAnimationFrame(this.frame);
  }
}
