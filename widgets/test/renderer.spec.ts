// The run renderer as a person sees it, in jsdom with JupyterLab's own parts: the saved tree
// output of a real `%%rlm` cell (test/fixtures: its static text/html and its
// `application/vnd.rlm.run+json` run state, as the rlm kernel left them in a notebook executed by
// nbclient against the fake model server; tests/widget_fixtures.py) drawn by RunRenderer from a
// RenderMimeRegistry holding JupyterLab's standard renderers and its marked Markdown parser.
//
// jsdom has no layout: elements measure 0 px, so a windowed list sizes its rows by its estimate
// (26 px) instead of measured heights, and scrollIntoView (not in jsdom) is stubbed to do nothing.

/* eslint-disable @typescript-eslint/no-explicit-any */
import { EditorLanguageRegistry } from '@jupyterlab/codemirror';
import { createMarkdownParser } from '@jupyterlab/markedparser-extension';
import { MimeModel, RenderMimeRegistry, standardRendererFactories } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';
import { LINKS, MIME, RANK, RunRenderer } from '../src/index';
import { savedItems } from '../src/saved';
import analysisBundle from './fixtures/analysis.json';
import batchBundle from './fixtures/batch1000.json';

/** A saved tree output: its mime bundle (text/plain, the static text/html, the run state). */
type Bundle = Record<string, any>;
type State = { header: any; items_json: string; finished: boolean; comm_id: string };
const analysis = analysisBundle as Bundle;
const batch = batchBundle as Bundle;
const stateOf = (b: Bundle) => b[MIME] as State;
const itemsOf = (b: Bundle) => savedItems(stateOf(b), b['text/html']) as any[];

// a windowed list draws its 420 px box and 260 px above and below: about 27 rows of 26 px
const MAX_ROWS_DRAWN = 60;

beforeAll(() => {
  Element.prototype.scrollIntoView = () => undefined;
});

function registry(): RenderMimeRegistry {
  const rendermime = new RenderMimeRegistry({
    initialFactories: standardRendererFactories,
    markdownParser: createMarkdownParser(new EditorLanguageRegistry()),
  });
  // as the extension registers it (index.ts): a run's bundle shows as the tree
  rendermime.addFactory({
    safe: true, mimeTypes: [MIME], defaultRank: RANK,
    createRenderer: options => new RunRenderer(options, rendermime, null, null),
  }, RANK);
  return rendermime;
}

const shown: Widget[] = [];
afterEach(() => {
  shown.splice(0).forEach(w => w.dispose());
  LINKS.clear();
});

/** A saved tree output rendered the way an output area does: its preferred mime type's renderer. */
async function render(bundle: Bundle, state: Partial<State> = {}): Promise<HTMLElement> {
  const rendermime = registry();
  const data = { ...bundle, [MIME]: { ...stateOf(bundle), ...state } };
  const mime = rendermime.preferredMimeType(data, 'any');
  expect(mime).toBe(MIME); // above text/html: the tree, not its static copy
  const renderer = rendermime.createRenderer(mime!) as RunRenderer;
  await renderer.renderModel(new MimeModel({ data, trusted: true }));
  Widget.attach(renderer, document.body);
  shown.push(renderer);
  return renderer.node.querySelector("[data-testid='rlm-run']") as HTMLElement;
}

/** Wait for what renders asynchronously (Markdown, outputs). */
async function until<T>(probe: () => T | null | undefined | false, what: string): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const got = probe();
    if (got) return got;
    await new Promise(r => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const q = (root: ParentNode, sel: string) => root.querySelector(sel) as HTMLElement | null;
const qa = (root: ParentNode, sel: string) => [...root.querySelectorAll(sel)] as HTMLElement[];
const text = (el: Element | null) => (el?.textContent || '').replace(/\s+/g, ' ').trim();
const step = (run: HTMLElement, n: number) => q(run, `.rlm-tree > [data-testid='rlm-step-node'][data-step='${n}']`)!;
const key = (el: HTMLElement, k: string) =>
  el.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
const num = (n: number) => n.toLocaleString('en-US');

function rootFinished(bundle: Bundle): any {
  return itemsOf(bundle).find(i => i.type === 'run_finished' && i.run_id === 'root');
}

describe('the header', () => {
  it('shows the run finished totals: steps, sub-calls, tokens, cost and the model with no price', async () => {
    const run = await render(analysis);
    const fin = rootFinished(analysis);
    const usage = Object.values(fin.usage) as any[];
    const sum = (k: string) => usage.reduce((a, u) => a + (u[k] || 0), 0);
    const meta = text(q(run, "[data-testid='rlm-meta']"));
    expect(q(run, "[data-testid='rlm-status']")!.textContent).toBe('done');
    expect(meta).toContain(`step ${fin.steps} of ${stateOf(analysis).header.max_iterations}`);
    // the child run's own sub-calls (none here) and the rlm_query row count the same as everywhere
    expect(meta).toContain(`${num(fin.subcalls)} sub-calls`);
    expect(meta).toContain(`tokens ${num(sum('input_tokens'))} in · ${num(sum('output_tokens'))} out · ` +
                           `${num(sum('cache_read_tokens'))} cached`);
    expect(fin.unpriced).toEqual(['my-local-sub']);
    expect(meta).toContain(`$${fin.cost.toFixed(4)} (cost unknown for my-local-sub)`);
  });

  it('counts the failed cell and the failed sub-call, also on their steps', async () => {
    const run = await render(analysis);
    expect(text(q(run, "[data-testid='rlm-errors']"))).toBe('1 failed cell · 1 failed sub-call');
    expect(q(run, "[data-testid='rlm-next-error']")!.hidden).toBe(false);
    expect(text(q(step(run, 1), '.rlm-step-head .rlm-badge-err'))).toBe('error');
    expect(text(q(step(run, 2), '.rlm-step-head .rlm-badge-err'))).toBe('1 failed sub-call');
    expect(q(step(run, 3), '.rlm-step-head .rlm-badge-err')).toBeNull();
  });
});

describe('next error', () => {
  it('opens and focuses each failure in turn, then starts over', async () => {
    const run = await render(analysis);
    const next = q(run, "[data-testid='rlm-next-error']")!;
    expect(qa(run, '.rlm-tree > .rlm-step.rlm-open')).toHaveLength(0);

    next.click(); // the failed cell of step 1
    expect(q(step(run, 1), '.rlm-step-head')!.getAttribute('aria-expanded')).toBe('true');
    expect(q(step(run, 1), '.rlm-flash')).not.toBeNull();
    await until(() => text(q(step(run, 1), '.rlm-outputs')).includes('ZeroDivisionError'), 'the traceback');

    next.click(); // the failed prompt of step 2's batch: its row opened, focused, the error shown
    const failed = q(step(run, 2), '.rlm-sub-failed')!;
    expect(failed).not.toBeNull();
    expect(text(failed)).toContain('count box B');
    const head = q(failed, '.rlm-sub-head')!;
    expect(document.activeElement).toBe(head);
    expect(head.getAttribute('aria-expanded')).toBe('true');
    expect(text(q(failed, '.rlm-err'))).toContain('box B is unreadable');

    next.click(); // two failures in all: back to the first
    expect(q(step(run, 1), '.rlm-flash')).not.toBeNull();
  });
});

describe('toggles', () => {
  it('carry aria-expanded, flipped by click, Enter and Space', async () => {
    const run = await render(analysis);
    let head = q(step(run, 1), '.rlm-step-head')!;
    expect(head.getAttribute('role')).toBe('button');
    expect(head.tabIndex).toBe(0);
    expect(head.getAttribute('aria-expanded')).toBe('false');
    expect(q(step(run, 1), '.rlm-step-body')!.hidden).toBe(true);
    head.click();
    head = q(step(run, 1), '.rlm-step-head')!; // the tree may redraw the step
    expect(head.getAttribute('aria-expanded')).toBe('true');
    expect(q(step(run, 1), '.rlm-step-body')!.hidden).toBe(false);
    key(head, 'Enter');
    expect(q(step(run, 1), '.rlm-step-head')!.getAttribute('aria-expanded')).toBe('false');
    key(q(step(run, 1), '.rlm-step-head')!, ' ');
    expect(q(step(run, 1), '.rlm-step-head')!.getAttribute('aria-expanded')).toBe('true');

    // a finished run opens with its timeline; its toggle says so and closes it
    const tl = q(run, "[data-testid='rlm-timeline-toggle']")!;
    expect(tl.getAttribute('aria-expanded')).toBe('true');
    expect(q(run, "[data-testid='rlm-timeline'] svg")).not.toBeNull();
    key(tl, 'Enter');
    expect(tl.getAttribute('aria-expanded')).toBe('false');
    expect(q(run, "[data-testid='rlm-timeline']")!.hidden).toBe(true);

    // a sub-call row: closed, then open with its prompt and response
    q(step(run, 2), '.rlm-step-head')!.click();
    const row = qa(step(run, 2), "[data-testid='rlm-subcall']").find(r => text(r).includes('count box A'))!;
    const sub = q(row, '.rlm-sub-head')!;
    expect(sub.getAttribute('aria-expanded')).toBe('false');
    key(sub, 'Enter');
    expect(sub.getAttribute('aria-expanded')).toBe('true');
    expect(text(q(row, '.rlm-sub-body'))).toContain('4 widgets');
  });
});

describe('generated outputs and the answer', () => {
  it('draws outputs with JupyterLab renderers and the Markdown answer with its table', async () => {
    const run = await render(analysis);
    const answer = q(run, "[data-testid='rlm-answer']")!;
    const table = await until(() => q(answer, '.jp-RenderedMarkdown table'), 'the answer table');
    expect(qa(table, 'th').map(text)).toEqual(['box', 'widgets']);
    expect(text(q(table, 'td strong'))).toBe('4');
    expect(text(q(answer, 'h2'))).toMatch(/^Widgets¶?$/); // JupyterLab adds a heading anchor
    expect(text(answer)).not.toContain('**');

    q(step(run, 1), '.rlm-step-head')!.click();
    const outputs = q(step(run, 1), '.rlm-outputs')!;
    const df = await until(() => q(outputs, '.jp-RenderedHTMLCommon table.dataframe td'), 'the DataFrame');
    expect(text(df)).toBe('A');
    const img = await until(() => q(outputs, '.jp-RenderedImage img') as HTMLImageElement | null, 'the image');
    expect(img.src).toMatch(/^data:image\/png;base64,iVBOR/);
    const md = await until(() => q(outputs, '.jp-RenderedMarkdown table td'), 'the Markdown output');
    expect(text(md)).toBe('md table cell');
    expect(qa(outputs, ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stdout']").map(text))
      .toEqual(['printed once']);
    // the traceback as IPython coloured it, through JupyterLab's ANSI handling
    const tb = q(outputs, ".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")!;
    expect(text(tb)).toContain('ZeroDivisionError');
    expect(qa(tb, "span[class*='ansi-']").length).toBeGreaterThan(0);
  });
});

describe('a 1,000-prompt batch', () => {
  const failedPrompt = itemsOf(batch).find(i => i.type === 'subcall_finished' && i.error)!.prompt;

  async function openBatch(): Promise<{ run: HTMLElement; list: () => HTMLElement; rows: () => HTMLElement[] }> {
    const run = await render(batch);
    q(step(run, 1), '.rlm-step-head')!.click();
    const group = q(step(run, 1), '.rlm-group-head')!;
    expect(group.getAttribute('aria-expanded')).toBe('false'); // long lists start closed
    expect(text(group)).toMatch(/^▸ ?1,000 sub-calls · 1 failed · p50 .* · p95 /);
    group.click();
    expect(q(step(run, 1), '.rlm-group-head')!.getAttribute('aria-expanded')).toBe('true');
    const list = () => q(step(run, 1), '.rlm-sublist')!;
    return { run, list, rows: () => qa(list(), "[data-testid='rlm-subcall']") };
  }

  it('opens windowed: a bounded number of rows and DOM nodes, the first prompts', async () => {
    const { run, list, rows } = await openBatch();
    expect(rows().length).toBeGreaterThan(10);
    expect(rows().length).toBeLessThanOrEqual(MAX_ROWS_DRAWN);
    expect(text(q(rows()[0], '.rlm-preview'))).toBe('item 0');
    expect(list().querySelectorAll('*').length).toBeLessThan(1000);
    expect(run.querySelectorAll('*').length).toBeLessThan(4000); // the timeline's 1,000 bars included
    expect(q(list(), '.rlm-sub-failed')).toBeNull(); // the failure is far below, not drawn
  });

  it('filters: failed shows the one failure, slowest puts the slowest first, all starts over', async () => {
    const { list, rows } = await openBatch();
    q(list(), "[data-testid='rlm-filter-failed']")!.click();
    expect(rows().map(r => text(q(r, '.rlm-preview')))).toEqual([failedPrompt]);
    expect(q(list(), "[data-testid='rlm-filter-failed']")!.getAttribute('aria-pressed')).toBe('true');

    q(list(), "[data-testid='rlm-filter-slowest']")!.click();
    const subs = itemsOf(batch).filter(i => i.type === 'subcall_finished');
    const slowest = Math.max(...subs.map(i => i.latency));
    const first = subs.find(i => i.latency === slowest)!;
    expect(rows().length).toBeLessThanOrEqual(MAX_ROWS_DRAWN);
    expect(text(q(rows()[0], '.rlm-preview'))).toBe(first.prompt);

    q(list(), "[data-testid='rlm-filter-all']")!.click();
    expect(text(q(rows()[0], '.rlm-preview'))).toBe('item 0');
  });

  it('next error draws the failed row far down the list, opens and focuses it', async () => {
    const { run, list, rows } = await openBatch();
    q(run, "[data-testid='rlm-next-error']")!.click();
    const failed = q(list(), '.rlm-sub-failed')!;
    expect(failed).not.toBeNull();
    expect(text(q(failed, '.rlm-preview'))).toBe(failedPrompt);
    expect(document.activeElement).toBe(q(failed, '.rlm-sub-head'));
    expect(text(q(failed, '.rlm-err'))).toContain('is bad');
    expect(rows().length).toBeLessThanOrEqual(MAX_ROWS_DRAWN);
    expect(rows().some(r => text(q(r, '.rlm-preview')) === 'item 0')).toBe(false);
  });
});

describe('read-only and live', () => {
  const controls = ['rlm-pause', 'rlm-resume', 'rlm-step', 'rlm-stop', 'rlm-note'];

  it('a saved run with no kernel says it is read-only and its controls are off', async () => {
    const run = await render(analysis);
    expect(q(run, "[data-testid='rlm-readonly']")!.hidden).toBe(false);
    for (const id of controls) expect((q(run, `[data-testid='${id}']`) as HTMLButtonElement).disabled).toBe(true);
  });

  it('a run the kernel still holds can be paused and stopped from its header', async () => {
    // the run half way: up to the end of step 2, the kernel answering the tree's hello
    const all = itemsOf(analysis);
    const items = all.slice(0, all.findIndex(i => i.type === 'turn_started' && i.run_id === 'root' && i.step === 3));
    const run = await render(analysis, { items_json: JSON.stringify(items), finished: false, comm_id: 'c-live' });
    const sent: any[] = [];
    const comm = { commId: 'c-live', isDisposed: false, onMsg: null, send: (m: any) => sent.push(m) };
    LINKS.get('c-live')!.attach(comm as any, {} as any, false);
    expect(sent).toEqual([{ kind: 'hello' }]);
    LINKS.get('c-live')!.receive({ kind: 'reset', n: items.length, items, now: 0, finished: false });

    expect(q(run, "[data-testid='rlm-readonly']")!.hidden).toBe(true);
    const pause = q(run, "[data-testid='rlm-pause']") as HTMLButtonElement;
    const stop = q(run, "[data-testid='rlm-stop']") as HTMLButtonElement;
    expect(pause.disabled).toBe(false);
    expect(stop.disabled).toBe(false);
    pause.click();
    expect(sent[sent.length - 1]).toEqual({ kind: 'control', action: 'pause' });
    expect(q(run, "[data-testid='rlm-status']")!.textContent).toMatch(/^pausing/);
    stop.click();
    expect(sent[sent.length - 1]).toEqual({ kind: 'control', action: 'stop' });
  });
});
