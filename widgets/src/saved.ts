// The copy of a run saved in its output (application/vnd.rlm.run+json), back into items the store
// can load. Version 2 (rlm_kernel/widget/view.py) holds the items as one JSON string, and its image
// outputs point into the same output's static text/html copy, so each image is in the notebook
// once, and the root's run id and a sub-call's kind "llm" are left implied; version 1 had an
// `items` list with all of it inline. No DOM here: unit tested in node.

/* eslint-disable @typescript-eslint/no-explicit-any */
import { Item } from './store';

/** What an image output holds instead of its base64: the n-th image tagged in the text/html. */
export const STATIC_IMAGE = 'rlm_static_img';

// the static tree's own tag (rlm_kernel/widget/static.py), not arbitrary HTML
const IMG = /<img alt="output image" data-rlm-img="(\d+)" src="data:image\/[\w.+-]+;base64,([A-Za-z0-9+/=\s]*)">/g;

const SUBCALL = new Set(['subcall_started', 'subcall_finished']);

const joined = (v: unknown): string => (Array.isArray(v) ? v.join('') : typeof v === 'string' ? v : '');

/** The base64 of each numbered image in the static copy. */
export function staticImages(html: unknown): Map<number, string> {
  const found = new Map<number, string>();
  for (const m of joined(html).matchAll(IMG)) found.set(Number(m[1]), m[2]);
  return found;
}

/** The saved items with every image pointer replaced by its base64; a pointer the static copy
 * cannot answer (an edited or stripped text/html) leaves the image out, the text form stays. */
export function savedItems(payload: Item, html: unknown): Item[] {
  let items: Item[] = [];
  if (typeof payload.items_json === 'string') {
    try {
      items = JSON.parse(payload.items_json);
    } catch (err) {
      console.warn('rlm-kernel: the saved run is not valid JSON', err);
    }
  } else if (Array.isArray(payload.items)) {
    items = payload.items;
  }
  if (!Array.isArray(items)) return [];
  // implied in version 2: the root run's id (the first run_started's) and a sub-call's kind "llm"
  const root = items.find(i => i?.type === 'run_started')?.run_id;
  items = items.map(i => {
    if (!i || typeof i !== 'object') return i;
    const full = i.run_id === undefined && root !== undefined ? { ...i, run_id: root } : i;
    return SUBCALL.has(full.type) && full.kind === undefined ? { ...full, kind: 'llm' } : full;
  });
  let images: Map<number, string> | null = null;
  return items.map(item => {
    if (item?.type !== 'cell_finished' || !Array.isArray(item.outputs)) return item;
    const pointed = item.outputs.some((o: Item) => Object.values(o?.data || {}).some(v => isPointer(v)));
    if (!pointed) return item;
    images ??= staticImages(html);
    const outputs = item.outputs.map((o: Item) => {
      if (!o?.data) return o;
      const data: Item = {};
      for (const [mime, v] of Object.entries(o.data as Item)) {
        if (!isPointer(v)) data[mime] = v;
        else if (images!.has(Number((v as Item)[STATIC_IMAGE]))) data[mime] = images!.get(Number((v as Item)[STATIC_IMAGE]));
      }
      return { ...o, data };
    });
    return { ...item, outputs };
  });
}

function isPointer(v: unknown): boolean {
  return !!v && typeof v === 'object' && STATIC_IMAGE in (v as any);
}
