// Terminal colours in the tree's outputs made readable. JupyterLab draws ANSI colours (a traceback's
// red, green and cyan, IPython's 256-colour syntax highlighting) with fixed values that fall to
// 1.6-4:1 on a light page or on the error background. Like a terminal's "minimum contrast ratio"
// setting, each coloured span is moved towards black or white just enough to reach 4.5:1 against
// what is behind it, so its hue stays; it is measured again when the theme changes.

export type RGBA = [number, number, number, number];

export const MIN_RATIO = 4.5;

/** A computed CSS colour (`rgb()`, `rgba()` or `color(srgb …)`) as 0-255 channels and alpha; null otherwise. */
export function parseColor(css: string): RGBA | null {
  const m = /^rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)(?:[\s,/]+([\d.]+%?))?\s*\)$/.exec(css.trim());
  if (m) {
    const a = m[4] === undefined ? 1 : m[4].endsWith('%') ? parseFloat(m[4]) / 100 : parseFloat(m[4]);
    return [Number(m[1]), Number(m[2]), Number(m[3]), a];
  }
  const c = /^color\(srgb\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)(?:\s*\/\s*([\d.]+))?\s*\)$/.exec(css.trim());
  if (c) return [Number(c[1]) * 255, Number(c[2]) * 255, Number(c[3]) * 255, c[4] === undefined ? 1 : Number(c[4])];
  return null;
}

/** `top` composited over `below`. */
export function over(top: RGBA, below: RGBA): RGBA {
  const a = top[3] + below[3] * (1 - top[3]);
  if (a === 0) return [0, 0, 0, 0];
  const ch = (i: number) => (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a;
  return [ch(0), ch(1), ch(2), a];
}

function luminance(c: RGBA): number {
  const f = (v: number) => {
    const s = v / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}

/** The WCAG 2 contrast ratio of two opaque colours. */
export function contrast(a: RGBA, b: RGBA): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

/** `c` moved a fraction `t` of the way to black (0) or white (255), in whole channel values as CSS draws it. */
function toward(c: RGBA, end: number, t: number): RGBA {
  const ch = (v: number) => Math.round(v + (end - v) * t);
  return [ch(c[0]), ch(c[1]), ch(c[2]), 1];
}

/** `fg` itself when it reaches `min` on `bg`, else the least mix towards black or white that does
 *  (whichever needs less; the better of the two ends when neither can). */
export function readable(fg: RGBA, bg: RGBA, min = MIN_RATIO): RGBA {
  if (contrast(fg, bg) >= min) return fg;
  let best: { t: number; c: RGBA } | null = null;
  for (const end of [0, 255]) {
    if (contrast(toward(fg, end, 1), bg) < min) continue;
    let lo = 0;
    let hi = 1;
    for (let k = 0; k < 12; k++) {
      const mid = (lo + hi) / 2;
      if (contrast(toward(fg, end, mid), bg) >= min) hi = mid;
      else lo = mid;
    }
    if (!best || hi < best.t) best = { t: hi, c: toward(fg, end, hi) };
  }
  if (best) return best.c;
  const black: RGBA = [0, 0, 0, 1];
  const white: RGBA = [255, 255, 255, 1];
  return contrast(black, bg) > contrast(white, bg) ? black : white;
}

const WHITE: RGBA = [255, 255, 255, 1];

/** What an element's text is drawn on: its background and its ancestors', composited. */
function backdrop(el: Element): RGBA {
  const layers: RGBA[] = [];
  for (let n: Element | null = el; n; n = n.parentElement) {
    const c = parseColor(getComputedStyle(n).backgroundColor);
    if (c && c[3] > 0) layers.push(c);
    if (c && c[3] >= 1) break;
  }
  return layers.reverse().reduce<RGBA>((bg, c) => over(c, bg), WHITE);
}

/** A span coloured by the ANSI renderer: a named colour class or an inline colour. */
const COLOURED = '.jp-RenderedText pre span[class*="ansi-"], .jp-RenderedText pre span[style*="color"]';
const MAX_SPANS = 5000;

/** Give every ANSI-coloured span under `root` at least MIN_RATIO against its backdrop. Spans keep
 *  their original colour in a data attribute, so a theme change measures from the original again. */
export function readableAnsi(root: ParentNode): void {
  if (!(root as Node).isConnected) return;
  const spans = [...root.querySelectorAll<HTMLElement>(COLOURED)].slice(0, MAX_SPANS);
  for (const span of spans) {
    if (span.dataset.rlmColor === undefined) span.dataset.rlmColor = span.style.color;
    else span.style.color = span.dataset.rlmColor;
  }
  // measure all, then write all: one style recalculation instead of one per span
  const fixes: [HTMLElement, string][] = [];
  for (const span of spans) {
    const fg = parseColor(getComputedStyle(span).color);
    if (!fg) continue;
    const bg = backdrop(span);
    const seen = over(fg, bg);
    const fixed = readable(seen, bg);
    if (fixed !== seen) fixes.push([span, `rgb(${fixed.slice(0, 3).join(', ')})`]);
  }
  for (const [span, color] of fixes) span.style.color = color;
}
