// The run tree's DOM: a header with the controls, the steps, their cells and sub-calls, the answer.
// Generated outputs, the model's prose and the code are drawn by the notebook's own rendermime
// registry, so they look exactly as in a native cell (DataFrames, images, ANSI tracebacks,
// Markdown tables, highlighted code).

/* eslint-disable @typescript-eslint/no-explicit-any */
import { IEditorServices } from '@jupyterlab/codeeditor';
import { IRenderMimeRegistry, MimeModel, OutputModel } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { readableAnsi } from './contrast';
import { Batch, BATCH_TITLE, batchLabel, Cell, chainOf, Dirty, Item, Run, Step, Store, Sub, TERMINAL } from './store';
import { PendingEditor, pendingEditor } from './editor';
import { filterRows, RowFilter } from './rows';
import { findHits, groupKey, Hit, hitKey, openPath, proseOf } from './search';
import { timeline } from './timeline';
import { RowWindow } from './window';

const MAX_ROWS_OPEN = 25; // sub-call lists longer than this start collapsed, filtered and windowed
const ROW_HEIGHT = 26; // a closed sub-call row, px (its measured height replaces this once drawn)
const WINDOW_HEIGHT = 420; // a windowed list's box, px
const WINDOW_MARGIN = 260; // rows drawn above and below a windowed list's view, px

type Attrs = Record<string, unknown>;

/** Sent to a run view's element to open its search (the "RLM: Search the run" command). */
export const FIND_EVENT = 'rlm-find';

export function h(tag: string, attrs: Attrs = {}, ...children: (Node | string | null | undefined | false)[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v as EventListener);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  // keys on the tree's own controls are theirs: JupyterLab's command-mode shortcuts (Enter, Space,
  // A, B…) must not fire there (Lumino skips elements with this attribute)
  if (tag === 'button' || attrs.role === 'button') el.setAttribute('data-lm-suppress-shortcuts', '');
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function fill(el: HTMLElement, ...kids: (Node | string | null | undefined | false)[]): void {
  el.replaceChildren(...(kids.filter(k => k !== null && k !== undefined && k !== false) as (Node | string)[]));
}

const num = (n: unknown) => (Number(n) || 0).toLocaleString('en-US');
const secs = (s: number | null | undefined) =>
  s === null || s === undefined ? '' : s < 10 ? `${Number(s).toFixed(1)} s` : `${Math.round(s)} s`;
const plural = (n: number, word: string) => `${num(n)} ${word}${n === 1 ? '' : 's'}`;
const money = (cost: number | null) => (cost === null ? 'cost unknown' : `$${cost.toFixed(4)}`);
const clip = (text: string, n: number) => (text.length <= n ? text : `${text.slice(0, n - 1)}…`);
// one line of the model's prose for a closed step: code blocks and Markdown marks left out
const peek = (text: string) =>
  text.replace(/```[\s\S]*?(```|$)/g, ' ').replace(/FINAL(_VAR)?\(/g, '').replace(/[*_`#>|]/g, '')
    .replace(/\s+/g, ' ').trim().slice(0, 140);

export { proseOf };

/** A Message Batch's progress: its request counts, marked live until it has ended. */
function batchBadge(b: Batch): HTMLElement {
  return h('span', { class: `rlm-badge rlm-batch${b.done ? '' : ' rlm-batch-live'}`, 'data-testid': 'rlm-batch-progress',
    title: BATCH_TITLE }, batchLabel(b));
}

function onKeyActivate(e: KeyboardEvent): void {
  if (e.key === 'Enter' || e.key === ' ') {
    e.preventDefault();
    e.stopPropagation();
    (e.currentTarget as HTMLElement).click();
  }
}

/** A disclosure header: a button with aria-expanded, reachable by Tab, Enter/Space toggles. */
function toggleHead(cls: string): HTMLElement {
  const el = h('div', { class: cls, role: 'button', tabindex: 0, 'aria-expanded': 'false' });
  el.addEventListener('keydown', onKeyActivate);
  return el;
}

export interface Actions {
  send(msg: Item): void;
}

interface StepV { root: HTMLElement; head: HTMLElement; body: HTMLElement; built: boolean; md?: HTMLElement;
  mdKey?: string; cellsEl?: HTMLElement; looseEl?: HTMLElement; notes?: HTMLElement; group?: GroupV }
interface CellV { root: HTMLElement; key: string; head?: HTMLElement; codeEl?: HTMLElement; orig?: HTMLElement | null;
  subsEl?: HTMLElement; outEl?: HTMLElement; liveEl?: HTMLElement; code?: string; edited?: boolean; outputs?: Item[] | null; group?: GroupV;
  renderers: IRenderMime.IRenderer[] }
interface SubV { root: HTMLElement; head: HTMLElement; body: HTMLElement; built: boolean; promptEl?: HTMLElement;
  responseEl?: HTMLElement; childBox?: HTMLElement; childRun?: string | null; childAnswer?: HTMLElement | null;
  respShown?: string }
interface GroupV { container: HTMLElement; head: HTMLElement; list: HTMLElement; open: boolean; filter: RowFilter;
  win?: RowWindow<Sub>; bar?: HTMLElement }
type Where = { run: string; step: number | null; cell: number | null; sub: string | null };

export class TreeView {
  readonly el: HTMLElement;
  private steps = new Map<string, StepV>();
  private cells = new Map<string, CellV>();
  private subs = new Map<string, SubV>();
  private timer: number;
  private listener: (d: Dirty) => void;
  private disposed = false;
  // header parts
  private statusEl!: HTMLElement;
  private metaEl!: HTMLElement;
  private errorsEl!: HTMLElement;
  private questionEl!: HTMLElement;
  private liveEl!: HTMLElement;
  private modeEl!: HTMLElement;
  private pauseBtn!: HTMLButtonElement;
  private resumeBtn!: HTMLButtonElement;
  private stepBtn!: HTMLButtonElement;
  private stopBtn!: HTMLButtonElement;
  private noteBtn!: HTMLButtonElement;
  private exportBtn!: HTMLButtonElement;
  private nextErrBtn!: HTMLButtonElement;
  private msgEl!: HTMLElement;
  private exportPathEl!: HTMLElement;
  private editor: PendingEditor | null = null; // made the first time a cell waits (most runs never pause)
  private editorBox!: HTMLElement;
  private applyBtn!: HTMLButtonElement;
  private pendingTitle!: HTMLElement;
  private pendingEl!: HTMLElement;
  private noteInput!: HTMLTextAreaElement;
  private noteQueuedEl!: HTMLElement;
  private noteEl!: HTMLElement;
  private treeEl!: HTMLElement;
  private answerEl!: HTMLElement;
  private readonlyEl!: HTMLElement;
  private timelineHead!: HTMLElement;
  private timelineBody!: HTMLElement;
  private timelineOpen: boolean | null = null; // null: open once the run is done
  private pendingKey: string | null = null;
  private lastState = '';
  private answerRenderer: IRenderMime.IRenderer | null = null;
  // a follow-up's chain: its label in the header, the earlier questions, the label over its own steps
  private followupEl!: HTMLElement;
  private chainBox!: HTMLElement;
  private chainHead!: HTMLElement;
  private chainBody!: HTMLElement;
  private stepsLabelEl!: HTMLElement;
  private continuedEl!: HTMLElement;
  private chainKey = '';
  private chainRenderers: IRenderMime.IRenderer[] = [];
  private header: Item;

  constructor(readonly store: Store, readonly rendermime: IRenderMimeRegistry, readonly actions: Actions,
              readonly trusted: boolean, header: Item, readonly editors: IEditorServices | null = null,
              readonly opener: ((relpath: string) => void) | null = null) {
    this.header = header || {};
    this.el = h('div', { class: 'rlm', 'data-testid': 'rlm-run' });
    this.build();
    this.listener = d => this.update(d);
    store.listeners.add(this.listener);
    this.renderAll();
    this.timer = window.setInterval(() => this.tick(), 1000);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    clearInterval(this.timer);
    this.store.listeners.delete(this.listener);
    for (const v of this.cells.values()) v.renderers.forEach(r => r.dispose());
    this.answerRenderer?.dispose();
    this.chainRenderers.forEach(r => r.dispose());
    this.editor?.dispose();
  }

  setHeader(header: Item): void {
    this.header = header || {};
    this.renderHead();
  }

  private build(): void {
    const btn = (id: string, label: string, action: () => void, title?: string) =>
      h('button', { class: 'rlm-btn jp-Button', 'data-testid': id, title, type: 'button', onclick: action },
        label) as HTMLButtonElement;
    this.statusEl = h('span', { class: 'rlm-status', 'data-testid': 'rlm-status' }, 'starting');
    this.modeEl = h('span', { class: 'rlm-badge rlm-badge-mode', 'data-testid': 'rlm-mode', hidden: true });
    this.metaEl = h('span', { class: 'rlm-meta', 'data-testid': 'rlm-meta' });
    this.errorsEl = h('span', { class: 'rlm-errors', 'data-testid': 'rlm-errors', hidden: true });
    this.liveEl = h('span', { class: 'rlm-sr-only', role: 'status', 'aria-live': 'polite' });
    this.questionEl = h('div', { class: 'rlm-question' });
    this.pauseBtn = btn('rlm-pause', 'Pause', () => this.control('pause'), 'Pause at the next step boundary');
    this.resumeBtn = btn('rlm-resume', 'Resume', () => this.control('resume'), 'Carry on');
    this.stepBtn = btn('rlm-step', 'Step', () => this.control('step'), 'Run exactly one more step, then pause');
    this.stopBtn = btn('rlm-stop', 'Stop', () => this.control('stop'), 'End now with the best partial answer');
    this.noteBtn = btn('rlm-note', 'Note', () => this.toggleNote(), 'Write a note the model reads next turn');
    this.exportBtn = btn('rlm-export', 'Export', () => this.exportRun(), 'Write the run as a notebook');
    this.nextErrBtn = btn('rlm-next-error', 'Next error', () => this.nextError(), 'Open and show the next failure');
    const expandBtn = btn('rlm-expand-all', 'Expand all', () => this.expandAll('open'));
    const collapseBtn = btn('rlm-collapse-all', 'Collapse all', () => this.expandAll('closed'));
    this.findInput = h('input', { class: 'rlm-find-input jp-mod-styled', type: 'search', 'data-testid': 'rlm-find',
      placeholder: 'Search the run', 'aria-label': "Search the run's code, outputs, prompts and replies",
      title: 'Enter: next, Shift+Enter: previous, Escape: back (Ctrl+F in the run view comes here)',
      'data-lm-suppress-shortcuts': true }) as HTMLInputElement;
    this.findInput.addEventListener('input', () => this.onFindInput());
    this.findInput.addEventListener('keydown', e => this.findKeys(e));
    this.findCount = h('span', { class: 'rlm-hint rlm-find-count', 'data-testid': 'rlm-find-count', 'aria-live': 'polite' });
    const find = h('span', { class: 'rlm-find', role: 'search' }, this.findInput,
      btn('rlm-find-prev', '↑', () => this.findStep(-1), 'Previous match (Shift+Enter)'),
      btn('rlm-find-next', '↓', () => this.findStep(1), 'Next match (Enter)'), this.findCount);
    // Ctrl+F while focus is in the run view searches the run (JupyterLab's own search is for the notebook)
    this.el.addEventListener('keydown', e => {
      if ((e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey && e.key.toLowerCase() === 'f' && !e.defaultPrevented) {
        e.preventDefault();
        e.stopPropagation();
        this.openFind();
      }
    });
    this.el.addEventListener(FIND_EVENT, () => this.openFind());
    this.msgEl = h('span', { class: 'rlm-msg', 'data-testid': 'rlm-message' });
    this.exportPathEl = h('span', { class: 'rlm-export-path', 'data-testid': 'rlm-export-path' });
    this.applyBtn = btn('rlm-apply-edit', 'Apply edit', () => this.applyEdit(), 'Run this code instead (Shift+Enter)');
    this.pendingTitle = h('div', { class: 'rlm-pending-title' });
    this.editorBox = h('div', { class: 'rlm-editor-box' });
    this.pendingEl = h('div', { class: 'rlm-pending', hidden: true }, this.pendingTitle, this.editorBox,
      h('div', { class: 'rlm-row' }, this.applyBtn,
        h('span', { class: 'rlm-hint' }, 'Shift+Enter applies the edit, Escape leaves the editor; Resume or Step runs the code above and the model is told it was edited.')));
    this.noteInput = h('textarea', { class: 'rlm-note-input', 'data-testid': 'rlm-note-input', rows: 2,
                                     placeholder: "A note for the model's next turn",
                                     'aria-label': "A note for the model's next turn" }) as HTMLTextAreaElement;
    this.noteInput.addEventListener('keydown', e => {
      e.stopPropagation();
      if (e.key === 'Escape') this.noteInput.blur();
    });
    this.noteQueuedEl = h('div', { class: 'rlm-hint' });
    this.noteEl = h('div', { class: 'rlm-notebox', hidden: true }, this.noteInput,
      h('div', { class: 'rlm-row' }, btn('rlm-note-send', 'Send note', () => this.sendNote()), this.noteQueuedEl));
    this.timelineHead = toggleHead('rlm-group-head rlm-timeline-head');
    this.timelineHead.dataset.testid = 'rlm-timeline-toggle';
    this.timelineHead.addEventListener('click', () => {
      this.timelineOpen = !this.isTimelineOpen();
      this.renderTimeline();
    });
    this.timelineBody = h('div', { class: 'rlm-timeline', 'data-testid': 'rlm-timeline' });
    this.followupEl = h('div', { class: 'rlm-followup', 'data-testid': 'rlm-followup-label', hidden: true });
    this.chainHead = toggleHead('rlm-group-head rlm-chain-head');
    this.chainHead.dataset.testid = 'rlm-chain-toggle';
    this.chainHead.addEventListener('click', () => {
      this.store.ui.open.set('chain', !this.store.isOpen('chain', false));
      this.renderChain();
    });
    this.chainBody = h('div', { class: 'rlm-chain', 'data-testid': 'rlm-chain', hidden: true });
    this.chainBox = h('div', { class: 'rlm-chain-box', hidden: true }, this.chainHead, this.chainBody);
    this.stepsLabelEl = h('div', { class: 'rlm-steps-label', 'data-testid': 'rlm-steps-label', hidden: true });
    this.continuedEl = h('div', { class: 'rlm-hint rlm-continued', 'data-testid': 'rlm-continued', hidden: true });
    this.treeEl = h('div', { class: 'rlm-tree' });
    this.answerEl = h('div', { class: 'rlm-answer', 'data-testid': 'rlm-answer', hidden: true });
    this.readonlyEl = h('div', { class: 'rlm-hint rlm-readonly', 'data-testid': 'rlm-readonly', hidden: true },
      'Saved record of the run: no kernel holds it now, so it is read-only.');
    fill(this.el,
      h('div', { class: 'rlm-head' },
        h('div', { class: 'rlm-title' }, h('span', { class: 'rlm-logo' }, 'RLM'), this.statusEl, this.modeEl,
          this.metaEl, this.errorsEl, this.liveEl),
        this.followupEl, this.questionEl,
        h('div', { class: 'rlm-controls', role: 'toolbar', 'aria-label': 'Run controls' }, this.pauseBtn,
          this.resumeBtn, this.stepBtn, this.stopBtn, this.noteBtn, this.exportBtn, h('span', { class: 'rlm-sep' }),
          expandBtn, collapseBtn, this.nextErrBtn, find, this.msgEl, this.exportPathEl),
        this.readonlyEl, this.pendingEl, this.noteEl),
      this.chainBox,
      h('div', { class: 'rlm-timeline-box' }, this.timelineHead, this.timelineBody),
      this.stepsLabelEl, this.treeEl, this.answerEl, this.continuedEl);
  }

  // --- controls --------------------------------------------------------------------------------
  control(action: string): void {
    const s = this.store;
    if (!s.live()) return;
    if ((action === 'resume' || action === 'step') && s.pending && this.editorDirty()) this.applyEdit();
    this.actions.send({ kind: 'control', action });
    // say so at once; the run's own state event confirms it
    const optimistic: Record<string, string> = { pause: 'pausing', stop: 'stopping', resume: 'running', step: 'running' };
    if (optimistic[action] && !s.finished) {
      s.state = optimistic[action];
      s.emit(new Set(['head', 'controls']));
    }
  }

  private editorDirty(): boolean {
    const s = this.store;
    const base = s.editQueued ? s.editQueued.code : s.pending?.code;
    return !!this.editor && this.editor.getValue() !== base;
  }

  private applyEdit(): void {
    if (!this.store.pending || !this.editor) return;
    this.actions.send({ kind: 'edit', code: this.editor.getValue() });
  }

  private pendingEditor(): PendingEditor {
    if (!this.editor) {
      // Escape hands focus to the control right after the editor, so keyboard users carry on from there
      this.editor = pendingEditor(this.editors, { apply: () => this.applyEdit(), leave: () => this.applyBtn.focus() });
      this.editorBox.append(this.editor.node);
    }
    return this.editor;
  }

  private toggleNote(): void {
    this.noteEl.hidden = !this.noteEl.hidden;
    if (!this.noteEl.hidden) this.noteInput.focus();
  }

  private sendNote(): void {
    const text = this.noteInput.value.trim();
    if (!text) return;
    this.actions.send({ kind: 'note', text });
    this.noteInput.value = '';
  }

  private exportRun(): void {
    this.store.message = 'exporting…';
    this.actions.send({ kind: 'export' });
    this.renderControls();
  }

  private expandAll(mode: 'open' | 'closed'): void {
    this.store.ui.all = mode;
    this.store.ui.open.clear();
    this.store.emit(new Set(['all']));
  }

  private toggle(key: string, isOpenNow: boolean): void {
    this.store.ui.open.set(key, !isOpenNow);
    this.store.emit(new Set([key]));
  }

  /** Open the step (and sub-call list) holding the next failed cell or sub-call and scroll to it. */
  nextError(): void {
    const s = this.store;
    const found: { run: Run; st: Step; cell?: Cell; sub?: Sub }[] = [];
    const walk = (run: Run) => {
      for (const n of [...run.steps.keys()].sort((a, b) => a - b)) {
        const st = run.steps.get(n)!;
        for (const i of [...st.cells.keys()].sort((a, b) => a - b)) {
          const c = st.cells.get(i)!;
          if (c.error || c.timedOut) found.push({ run, st, cell: c });
          for (const sub of c.subs.values()) if (sub.error) found.push({ run, st, cell: c, sub });
        }
        for (const sub of st.loose) if (sub.error) found.push({ run, st, sub });
      }
    };
    const root = s.rootId ? s.runs.get(s.rootId) : null;
    if (!root) return;
    walk(root);
    for (const r of s.runs.values()) if (r !== root) walk(r);
    if (!found.length) return;
    const at = (this.errorAt = (this.errorAt + 1) % found.length);
    const f = found[at];
    const target = this.reveal({ run: f.run.id, step: f.st.n, cell: f.cell?.index ?? null, sub: f.sub?.id ?? null });
    if (target) {
      target.classList.add('rlm-flash');
      target.scrollIntoView({ block: 'center' });
      (target.querySelector('[role=button]') as HTMLElement | null)?.focus({ preventScroll: true });
      window.setTimeout(() => target.classList.remove('rlm-flash'), 1500);
    }
  }

  /** Open everything between the root and a node (parent runs' rows, steps, sub-call lists, the row
   * itself), scroll windowed lists to it, and return its element. A row hidden by the "failed"
   * filter brings its list back to "all". */
  private reveal(at: Where): HTMLElement | null {
    const s = this.store;
    for (const k of openPath(s, at)) s.ui.open.set(k, true);
    const chain: Sub[] = []; // the rlm_query rows holding the node, outermost first, then its own row
    let run = s.runs.get(at.run);
    if (at.sub !== null) {
      const own = run?.subIndex.get(at.sub);
      if (own) chain.push(own);
    }
    while (run && run.parentRun) {
      const parent = s.runs.get(run.parentRun);
      const psub = parent?.subIndex.get(run.parentSub || '');
      if (!parent || !psub) break;
      chain.unshift(psub);
      run = parent;
    }
    for (const sub of chain) {
      if (!sub.error && this.groupFilter.get(groupKey(sub)) === 'failed') this.groupFilter.set(groupKey(sub), 'all');
    }
    this.renderTree();
    for (const sub of chain) this.groupOf(sub)?.win?.scrollTo(`sub|${sub.run}|${sub.id}`);
    if (at.sub !== null) return this.subs.get(`sub|${at.run}|${at.sub}`)?.root ?? null;
    if (at.step === null) return this.answerEl;
    if (at.cell !== null) return this.cells.get(`cell|${at.run}|${at.step}|${at.cell}`)?.root ?? null;
    return this.steps.get(`step|${at.run}|${at.step}`)?.root ?? null;
  }

  private groupOf(sub: Sub): GroupV | undefined {
    return sub.cell !== null ? this.cells.get(`cell|${sub.run}|${sub.step}|${sub.cell}`)?.group
      : this.steps.get(`step|${sub.run}|${sub.step}`)?.group;
  }

  // --- search ----------------------------------------------------------------------------------
  /** Ctrl+F in the run view: to the search box, remembering where focus was for Escape. */
  openFind(): void {
    const was = document.activeElement as HTMLElement | null;
    if (was && was !== this.findInput && this.el.contains(was)) this.findReturn = was;
    this.findInput.focus();
    this.findInput.select();
  }

  private onFindInput(): void {
    window.clearTimeout(this.findTimer);
    this.findTimer = window.setTimeout(() => {
      this.hitAt = -1;
      this.findStep(1);
    }, 150);
  }

  /** Count the hits again (a live run grows) and go to the next (+1) or previous (-1) one. */
  findStep(dir: 1 | -1): void {
    const q = this.findInput.value;
    const before = this.hitAt >= 0 ? this.hits[this.hitAt] : null;
    this.hits = findHits(this.store, q);
    let at = before ? this.hits.findIndex(x => hitKey(x) === hitKey(before)) : -1;
    const m = this.hits.length;
    if (!m) {
      this.hitAt = -1;
      this.findCount.textContent = q.trim() ? 'no matches' : '';
      this.paintHits(null);
      return;
    }
    at = at < 0 ? (dir === 1 ? 0 : m - 1) : (at + dir + m) % m;
    this.hitAt = at;
    const total = this.hits.reduce((a, x) => a + x.count, 0);
    this.findCount.textContent = `${at + 1} of ${m}`;
    this.findCount.title = `${num(total)} occurrences in ${plural(m, 'place')}`;
    const hit: Hit = this.hits[at];
    const target = this.reveal(hit);
    this.paintHits(target);
    // Markdown and outputs draw asynchronously: paint again once they are in
    window.setTimeout(() => this.paintHits(target, true), 120);
  }

  /** Mark every occurrence drawn in the tree, the current place more strongly, and bring it into view. */
  private paintHits(target: HTMLElement | null, scroll = false): void {
    this.el.querySelectorAll('.rlm-hit').forEach(e => e.classList.remove('rlm-hit'));
    const registry = (globalThis as any).CSS?.highlights;
    const HighlightCtor = (globalThis as any).Highlight;
    const q = this.findInput.value.trim().toLowerCase();
    if (target) target.classList.add('rlm-hit');
    if (!registry || !HighlightCtor) {
      if (target && scroll) target.scrollIntoView({ block: 'center' });
      return;
    }
    const all: Range[] = [];
    const here: Range[] = [];
    if (q && target) {
      const walker = document.createTreeWalker(this.el, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const text = (node.nodeValue || '').toLowerCase();
        if (node.parentElement?.closest('.rlm-head')) continue; // the toolbar and question are not the tree
        for (let i = text.indexOf(q); i !== -1; i = text.indexOf(q, i + q.length)) {
          const r = document.createRange();
          r.setStart(node, i);
          r.setEnd(node, i + q.length);
          (target.contains(node) ? here : all).push(r);
        }
      }
    }
    registry.set('rlm-find', new HighlightCtor(...all));
    registry.set('rlm-find-current', new HighlightCtor(...here));
    if (scroll && target) {
      const first = here[0]?.startContainer.parentElement;
      (first && target.contains(first) ? first : target).scrollIntoView({ block: 'center' });
    } else if (target) {
      target.scrollIntoView({ block: 'center' });
    }
  }

  private findKeys(e: KeyboardEvent): void {
    if (e.key === 'Enter') {
      e.preventDefault();
      window.clearTimeout(this.findTimer);
      this.findStep(e.shiftKey ? -1 : 1);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      const back = this.findReturn && this.el.contains(this.findReturn) ? this.findReturn : null;
      if (back) back.focus();
      else this.findInput.blur();
    }
  }

  private errorAt = -1;
  private groupFilter = new Map<string, RowFilter>();
  private hits: Hit[] = [];
  private hitAt = -1;
  private findTimer = 0;
  private findReturn: HTMLElement | null = null;
  private findInput!: HTMLInputElement;
  private findCount!: HTMLElement;

  // --- updates ---------------------------------------------------------------------------------
  update(dirty: Dirty): void {
    if (this.disposed) return;
    if (dirty.has('all')) return this.renderAll();
    for (const key of dirty) {
      const [kind, a, b, c] = key.split('|');
      if (kind === 'head') this.renderHead();
      else if (kind === 'controls') this.renderControls();
      else if (kind === 'pending') this.renderPending();
      else if (kind === 'answer') {
        this.renderAnswer();
        this.renderTimeline();
      }
      else if (kind === 'drop') this.dropStep(a, Number(b));
      else if (kind === 'step') this.renderStep(a, Number(b));
      else if (kind === 'cell') this.renderCell(a, Number(b), Number(c));
      else if (kind === 'sub') this.renderSub(a, b);
      else if (kind === 'group') this.renderAll();
      else if (kind === 'chain') {
        this.renderChain();
        this.renderHead();
      }
    }
  }

  private dropStep(runId: string, n: number): void {
    const key = `step|${runId}|${n}`;
    this.steps.get(key)?.root.remove();
    this.steps.delete(key);
    for (const [k, v] of [...this.cells.entries()]) {
      if (k.startsWith(`cell|${runId}|${n}|`)) {
        v.renderers.forEach(r => r.dispose());
        this.cells.delete(k);
      }
    }
  }

  renderAll(): void {
    this.renderHead();
    this.renderControls();
    this.renderPending();
    this.renderTree();
    this.renderAnswer();
    this.renderTimeline();
    this.renderChain();
  }

  /** A follow-up's chain: "Follow-up 2 of 2" over its question, the earlier questions with their
   * answers in a collapsed section, a label over this run's own steps; and on a run a follow-up
   * continued, a line saying so under its answer. */
  renderChain(): void {
    const s = this.store;
    const c = chainOf(s);
    const by = s.continuedBy;
    this.continuedEl.hidden = !by;
    this.continuedEl.textContent = by ? `Continued in the next run: “${clip(String(by.question || ''), 200)}”` : '';
    this.chainBox.hidden = !c;
    this.followupEl.hidden = !c;
    this.stepsLabelEl.hidden = !c;
    if (!c) return;
    this.followupEl.textContent = `Follow-up ${c.position} of ${c.total}`;
    this.stepsLabelEl.textContent = `Follow-up ${c.position}: this run's steps · the figures in the header are this run's only`;
    const open = s.isOpen('chain', false);
    const bits = [`Continues ${plural(c.earlier.length, 'earlier question')}`, plural(c.earlierSteps, 'step'),
                  money(c.earlierCost)];
    if (s.finished) bits.push(`whole chain with this run ${money(c.wholeCost)}`);
    fill(this.chainHead, h('span', { class: 'rlm-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      h('span', {}, bits.join(' · ')));
    this.chainHead.setAttribute('aria-expanded', String(open));
    this.chainBody.hidden = !open;
    const key = open ? JSON.stringify(c.earlier) : '';
    if (key === this.chainKey) return;
    this.chainKey = key;
    this.chainRenderers.forEach(r => r.dispose());
    this.chainRenderers = [];
    fill(this.chainBody);
    if (!open) return;
    c.earlier.forEach((q, i) => {
      const answer = h('div', { class: 'rlm-md rlm-chain-answer' });
      const figures = [plural(Number(q.steps) || 0, 'step'), plural(Number(q.subcalls) || 0, 'sub-call'), money(q.cost)];
      const status = q.status || 'unknown';
      this.chainBody.append(h('div', { class: 'rlm-chain-q', 'data-testid': 'rlm-chain-question', 'data-run': q.run_id },
        h('div', { class: 'rlm-row' }, h('b', {}, `Question ${i + 1}`),
          h('span', { class: `rlm-badge${status === 'done' ? ' rlm-ok' : ' rlm-badge-err'}` }, status),
          h('span', { class: 'rlm-hint' }, figures.join(' · '))),
        h('div', { class: 'rlm-question' }, q.question),
        h('div', { class: 'rlm-label' }, status === 'done' ? 'Answer' : 'Best partial answer'), answer));
      this.chainRenderers.push(this.markdown(q.answer || '(no answer)', answer));
    });
  }

  /** The steps from scratch, as the open/closed state says (the header and timeline do not change). */
  private renderTree(): void {
    const s = this.store;
    for (const v of [...this.steps.values(), ...this.cells.values()]) v.group?.win?.dispose();
    this.steps.clear();
    for (const v of this.cells.values()) v.renderers.forEach(r => r.dispose());
    this.cells.clear();
    this.subs.clear();
    fill(this.treeEl);
    const root = s.rootId ? s.runs.get(s.rootId) : null;
    if (root) this.renderRunInto(root, this.treeEl);
  }

  private tick(): void {
    const s = this.store;
    if (s.live() && s.rootId) {
      this.renderHead();
      if (this.isTimelineOpen()) this.renderTimeline();
    }
  }

  private isTimelineOpen(): boolean {
    return this.timelineOpen ?? !!this.store.finished;
  }

  /** The waterfall: open by itself when the run is done (the first thing to look at then). */
  renderTimeline(): void {
    const open = this.isTimelineOpen();
    const s = this.store;
    this.timelineHead.setAttribute('aria-expanded', String(open));
    fill(this.timelineHead, h('span', { class: 'rlm-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      h('span', {}, 'Timeline'));
    this.timelineBody.hidden = !open;
    if (!open) {
      fill(this.timelineBody);
      return;
    }
    const now = s.live() ? Date.now() / 1000 - s.skew : 0;
    const width = Math.max(320, (this.el.clientWidth || 800) - 24);
    const svg = timeline(s, now, width);
    fill(this.timelineBody, svg ?? h('span', { class: 'rlm-hint' }, 'No timings yet.'));
  }

  renderHead(): void {
    const s = this.store;
    const root = s.rootId ? s.runs.get(s.rootId) : null;
    const st = root?.started || {};
    const q = st.question ?? this.header.question ?? '';
    if (this.questionEl.textContent !== q) this.questionEl.textContent = q;
    let label = ({ pausing: 'pausing…', stopping: 'stopping…' } as Record<string, string>)[s.state] || s.state;
    if (s.state === 'pausing' && root) {
      // a pause takes effect at the next step boundary: say what it waits for
      const st0 = root.steps.get(root.lastStep);
      const cell = st0 ? s.runningCell(st0) : null;
      label += cell ? ` (waiting for cell ${cell.index} to finish)` : st0 && !st0.turnDone ? " (waiting for the model's reply)" : '';
    }
    const shown = this.statusLabel(label);
    this.statusEl.textContent = shown;
    this.statusEl.dataset.state = s.state;
    if (this.lastState !== s.state) {
      this.liveEl.textContent = `Run ${shown}`;
      this.lastState = s.state;
    }
    const approve = !!(st.options?.approve ?? this.header.approve);
    this.modeEl.hidden = !approve;
    this.modeEl.textContent = approve ? 'Approve mode: pauses before every cell' : '';
    const max = st.options?.max_iterations ?? this.header.max_iterations;
    const models = [st.model || this.header.model, st.sub_model || this.header.sub_model].filter(Boolean).join(' → ');
    const t = s.totals();
    const bits: string[] = [];
    if (models) bits.push(models);
    if (root) bits.push(`step ${root.lastStep}${max ? ` of ${max}` : ''}`);
    // a follow-up's figures are its own: the chain section has the earlier questions' and the whole chain's
    const own = chainOf(s) ? 'this run: ' : '';
    // once the run is over nothing runs: sub-calls it left behind (a stopped batch) are unfinished
    const left = t.running ? ` (${num(t.running)} ${s.finished ? 'unfinished' : 'running'})` : '';
    bits.push(own + plural(t.subcalls, 'sub-call') + left);
    bits.push(`tokens ${num(t.tokens.in)} in · ${num(t.tokens.out)} out · ${num(t.tokens.cached)} cached`);
    const fin = s.finished;
    if (fin) {
      const unpriced: string[] = st.demo ? [] : fin.unpriced || [];
      if (fin.cost !== null && fin.cost !== undefined) {
        bits.push(`$${Number(fin.cost).toFixed(4)}` + (unpriced.length ? ` (cost unknown for ${unpriced.join(', ')})` : ''));
      } else if (unpriced.length) {
        bits.push(`cost unknown for ${unpriced.join(', ')}`);
      }
    }
    let elapsed: number | null = null;
    if (fin && fin.elapsed !== undefined && fin.elapsed !== null) elapsed = fin.elapsed;
    else if (st.t && s.live()) elapsed = Math.max(0, Date.now() / 1000 - s.skew - st.t);
    if (elapsed !== null) bits.push(secs(elapsed));
    if (s.budget) bits.push(`budget hit: ${s.budget.kind}`);
    this.metaEl.textContent = bits.join(' · ');
    const errs: string[] = [];
    if (t.failedCells) errs.push(plural(t.failedCells, 'failed cell'));
    if (t.failedSubcalls) errs.push(plural(t.failedSubcalls, 'failed sub-call'));
    this.errorsEl.hidden = !errs.length;
    this.errorsEl.textContent = errs.join(' · ');
    this.nextErrBtn.hidden = !errs.length;
  }

  private statusLabel(label: string): string {
    return label; // the reason (stopped by user, interrupted) is in the answer's title
  }

  renderControls(): void {
    const s = this.store;
    const live = s.live();
    const st = s.state;
    this.pauseBtn.disabled = !live || ['paused', 'pausing', 'stopping'].includes(st);
    this.pauseBtn.textContent = st === 'pausing' ? 'pausing…' : 'Pause';
    this.resumeBtn.disabled = !live || !['paused', 'pausing'].includes(st);
    const approve = !!(s.runs.get(s.rootId || '')?.started?.options?.approve ?? this.header.approve);
    this.resumeBtn.textContent = approve && s.pending ? 'Run this cell' : 'Resume';
    this.stepBtn.disabled = !live || st === 'stopping';
    this.stopBtn.disabled = !live || st === 'stopping';
    this.noteBtn.disabled = !live;
    this.exportBtn.disabled = !s.synced || !s.rootId;
    if (!live) this.noteEl.hidden = true;
    this.readonlyEl.hidden = s.synced;
    this.noteQueuedEl.textContent = s.notesQueued.length
      ? `Queued for the next turn: ${s.notesQueued.map(n => `“${n}”`).join(', ')}` : '';
    this.msgEl.textContent = s.message || '';
    fill(this.exportPathEl);
    if (s.exported && s.exportedRelpath && this.opener) {
      const rel = s.exportedRelpath;
      const link = h('a', { href: '#', class: 'rlm-export-link', 'data-testid': 'rlm-export-link', title: s.exported },
        rel);
      link.addEventListener('click', e => {
        e.preventDefault();
        this.opener?.(rel);
      });
      this.exportPathEl.append('Exported to ', link);
    } else if (s.exported) {
      this.exportPathEl.append('Exported to ', h('code', {}, s.exported));
    }
  }

  renderPending(): void {
    const s = this.store;
    const p = s.state === 'paused' ? s.pending : null;
    this.pendingEl.hidden = !p;
    if (!p) {
      this.pendingKey = null;
      return;
    }
    const key = `${p.run_id}|${p.step}|${p.index}`;
    const child = s.rootId && String(p.run_id) !== s.rootId ? ' of a child run' : '';
    this.pendingTitle.textContent = `Paused before cell ${p.index} of step ${p.step}${child}` +
      (s.editQueued ? ' — edit applied' : ' — edit it before it runs');
    if (this.pendingKey !== key) {
      this.pendingEditor().setValue(String(s.editQueued ? s.editQueued.code : p.code));
      this.pendingKey = key;
    }
    this.pendingEl.classList.toggle('rlm-applied', !!s.editQueued);
  }

  renderAnswer(): void {
    const s = this.store;
    const fin = s.finished;
    this.answerEl.hidden = !fin;
    if (!fin) return;
    this.answerEl.dataset.status = fin.status;
    const reason = fin.reason ? ` (${fin.reason})` : '';
    const answer = String(fin.answer || '');
    const body = h('div', { class: 'rlm-md' });
    this.answerRenderer?.dispose();
    this.answerRenderer = null;
    if (fin.status !== 'done' && (!answer.trim() || this.isLastProse(answer))) {
      // a stop or interrupt falls back to the model's last prose: never present that as the answer
      fill(this.answerEl, h('div', { class: 'rlm-answer-title' }, `No final answer · ${fin.status}${reason}`),
        h('div', { class: 'rlm-hint' }, 'The model had not written an answer when the run ended.'));
      return;
    }
    const title = fin.status === 'done' ? 'Answer' : `Best partial answer · ${fin.status}${reason}`;
    fill(this.answerEl, h('div', { class: 'rlm-answer-title' }, title), body);
    this.answerRenderer = this.markdown(answer, body);
  }

  private isLastProse(answer: string): boolean {
    const root = this.store.rootId ? this.store.runs.get(this.store.rootId) : null;
    const steps = root ? [...root.steps.values()].filter(st => st.text).sort((a, b) => a.n - b.n) : [];
    const last = steps[steps.length - 1];
    if (!last) return false;
    const prose = last.text.replace(/(```|~~~)[\s\S]*?(\1|$)/g, '').trim();
    return answer.trim() === prose;
  }

  /** Markdown through the notebook's own renderer (sanitised, tables, highlighted code). */
  private markdown(text: string, into: HTMLElement): IRenderMime.IRenderer {
    const r = this.rendermime.createRenderer('text/markdown');
    void r.renderModel(new MimeModel({ data: { 'text/markdown': text }, trusted: false }));
    into.append(r.node);
    return r;
  }

  // --- runs and steps --------------------------------------------------------------------------
  private renderRunInto(run: Run, container: HTMLElement): void {
    const steps = [...run.steps.keys()].sort((a, b) => a - b);
    for (const n of steps) container.append(this.stepEl(run, run.steps.get(n)!).root);
  }

  private runContainer(runId: string): HTMLElement | null {
    const s = this.store;
    if (runId === s.rootId) return this.treeEl;
    const run = s.runs.get(runId);
    if (!run || !run.parentRun) return null;
    const sub = this.subs.get(`sub|${run.parentRun}|${run.parentSub}`);
    return sub && sub.built ? sub.childBox! : null;
  }

  private stepEl(run: Run, st: Step): StepV {
    const key = `step|${run.id}|${st.n}`;
    let v = this.steps.get(key);
    if (!v) {
      const head = toggleHead('rlm-step-head');
      const body = h('div', { class: 'rlm-step-body' });
      const root = h('div', { class: 'rlm-step', 'data-testid': 'rlm-step-node', 'data-run': run.id, 'data-step': st.n },
        head, body);
      const made: StepV = { root, head, body, built: false };
      head.addEventListener('click', () => this.toggle(key, this.store.stepOpen(run, st)));
      this.steps.set(key, made);
      v = made;
    }
    this.fillStep(run, st, v);
    return v;
  }

  private renderStep(runId: string, n: number): void {
    const run = this.store.runs.get(runId);
    const st = run?.steps.get(n);
    if (!run || !st) return;
    const key = `step|${runId}|${n}`;
    const known = this.steps.get(key);
    if (known) return this.fillStep(run, st, known);
    const container = this.runContainer(runId);
    if (!container) return;
    const v = this.stepEl(run, st);
    // keep steps in order even if events arrive late
    const after = [...container.children].find(
      c => (c as HTMLElement).dataset.run === runId && Number((c as HTMLElement).dataset.step) > n);
    container.insertBefore(v.root, after || null);
  }

  private fillStep(run: Run, st: Step, v: StepV): void {
    const s = this.store;
    const open = s.stepOpen(run, st);
    let subs = st.loose.length;
    let failedSubs = st.loose.filter(x => x.error).length;
    for (const c of st.cells.values()) {
      subs += c.subs.size;
      for (const x of c.subs.values()) if (x.error) failedSubs += 1;
    }
    const cells = [...st.cells.values()];
    const failedCells = cells.filter(c => c.error || c.timedOut).length;
    const live = s.live() && !run.finished && st.n === run.lastStep;
    // a step's time: its model turn plus its cells
    const took = (st.latency || 0) + cells.reduce((a, c) => a + (c.duration || 0), 0);
    const bits = [`Step ${st.n}`];
    if (cells.length) bits.push(plural(cells.length, 'cell'));
    if (subs) bits.push(plural(subs, 'sub-call'));
    if (took) bits.push(secs(took));
    const edited = cells.some(c => c.edited);
    fill(v.head,
      h('span', { class: 'rlm-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      h('span', { class: 'rlm-step-title' }, bits.join(' · ')),
      edited ? h('span', { class: 'rlm-badge rlm-badge-edit' }, 'edited') : null,
      failedCells ? h('span', { class: 'rlm-badge rlm-badge-err' }, failedCells === 1 ? 'error' : `${failedCells} errors`) : null,
      failedSubs ? h('span', { class: 'rlm-badge rlm-badge-err' }, `${num(failedSubs)} failed sub-call${failedSubs === 1 ? '' : 's'}`) : null,
      live && s.state === 'running' ? h('span', { class: 'rlm-spinner', title: 'running' }) : null,
      // a closed step still shows its Message Batches (an open one shows them on their cells)
      ...(open ? [] : cells.flatMap(c => [...c.batches.values()].map(batchBadge))),
      !open && st.text ? h('span', { class: 'rlm-step-peek' }, peek(st.text)) : null,
    );
    v.head.setAttribute('aria-expanded', String(open));
    v.root.classList.toggle('rlm-open', open);
    v.root.classList.toggle('rlm-live', live);
    v.body.hidden = !open;
    if (!open) {
      if (v.built) {
        for (const [k, c] of [...this.cells.entries()]) {
          if (k.startsWith(`cell|${run.id}|${st.n}|`)) {
            c.renderers.forEach(r => r.dispose());
            this.cells.delete(k);
          }
        }
      }
      v.built = false; // rebuilt on open; closed steps cost nothing while the run goes on
      v.group = undefined;
      fill(v.body);
      return;
    }
    if (!v.built) {
      v.md = h('div', { class: 'rlm-md rlm-turn' });
      v.notes = h('div', { class: 'rlm-notes' });
      v.cellsEl = h('div', { class: 'rlm-cells' });
      v.looseEl = h('div', { class: 'rlm-loose' });
      fill(v.body, v.md, v.cellsEl, v.looseEl, v.notes); // notes go into the next turn: last
      v.built = true;
      v.mdKey = undefined;
    }
    const mdKey = `${st.turnDone}|${st.cells.size}|${st.text.length}`;
    if (v.mdKey !== mdKey) {
      v.mdKey = mdKey;
      if (!st.text) fill(v.md!, h('span', { class: 'rlm-hint' }, 'waiting for the model…'));
      else if (!st.turnDone) {
        // streaming: plain text until the turn is whole, then Markdown once
        fill(v.md!, h('div', { class: 'rlm-streaming' }, st.text), h('span', { class: 'rlm-cursor' }));
      } else {
        fill(v.md!);
        this.markdown(proseOf(st.text, st.cells.size), v.md!);
      }
    }
    fill(v.notes!, ...st.notes.map(t => h('div', { class: 'rlm-note' }, h('b', {}, 'Note to the model: '), t)));
    const order = [...st.cells.keys()].sort((a, b) => a - b);
    for (const i of order) {
      const cv = this.cellEl(run, st, st.cells.get(i)!);
      if (cv.root.parentNode !== v.cellsEl) v.cellsEl!.append(cv.root);
    }
    if (st.loose.length) this.fillSubList(v, st.loose, `loose|${run.id}|${st.n}`, v.looseEl!);
  }

  // --- cells -----------------------------------------------------------------------------------
  private cellEl(run: Run, st: Step, cell: Cell): CellV {
    const key = `cell|${run.id}|${st.n}|${cell.index}`;
    let v = this.cells.get(key);
    if (!v) {
      v = { root: h('div', { class: 'rlm-cell' }), key, renderers: [] };
      this.cells.set(key, v);
    }
    this.fillCell(run, st, cell, v);
    return v;
  }

  private renderCell(runId: string, n: number, i: number): void {
    const key = `cell|${runId}|${n}|${i}`;
    const run = this.store.runs.get(runId);
    const st = run?.steps.get(n);
    const cell = st?.cells.get(i);
    const v = this.cells.get(key);
    if (!run || !st || !cell || !v || !this.el.contains(v.root)) return this.renderStep(runId, n);
    this.fillCell(run, st, cell, v);
  }

  private code(code: string): HTMLElement {
    const box = h('div', { class: 'rlm-code', 'data-testid': 'rlm-cell-code' });
    const fence = code.includes('```') ? '~~~~' : '```';
    this.markdown(`${fence}python\n${code}\n${fence}`, box);
    return box;
  }

  private fillCell(run: Run, st: Step, cell: Cell, v: CellV): void {
    if (v.code !== cell.code || v.edited !== cell.edited) {
      v.head = h('div', { class: 'rlm-cell-head' });
      v.codeEl = this.code(cell.code || '');
      v.orig = null;
      if (cell.edited && cell.original !== null) {
        v.orig = this.code(cell.original);
        v.orig.classList.add('rlm-code-orig');
        v.orig.removeAttribute('data-testid');
        v.orig.hidden = true;
      }
      v.subsEl = h('div', { class: 'rlm-subs' });
      v.outEl = h('div', { class: 'rlm-outputs' });
      v.liveEl = h('pre', { class: 'rlm-live-out', 'data-testid': 'rlm-live-output', hidden: true });
      fill(v.root, v.head, v.codeEl, v.orig, v.subsEl, v.liveEl, v.outEl);
      v.code = cell.code;
      v.edited = cell.edited;
      v.outputs = null;
      v.group = undefined;
    }
    v.root.classList.toggle('rlm-cell-edited', !!cell.edited);
    const bits: (HTMLElement | null)[] = [h('span', { class: 'rlm-cell-label' }, `Cell ${cell.index}`)];
    if (cell.count) bits.push(h('span', { class: 'rlm-hint' }, `[${cell.count}]`));
    if (cell.edited) {
      bits.push(h('button', { class: 'rlm-badge rlm-badge-edit', type: 'button', title: 'Show the code the model wrote',
        onclick: () => { if (v.orig) v.orig.hidden = !v.orig.hidden; } }, 'edited by you'));
    }
    if (cell.running) bits.push(h('span', { class: 'rlm-spinner', title: 'running' }));
    if (cell.duration !== null) bits.push(h('span', { class: 'rlm-hint' }, secs(cell.duration)));
    if (cell.timedOut) bits.push(h('span', { class: 'rlm-badge rlm-badge-err' }, 'timed out'));
    else if (cell.error) bits.push(h('span', { class: 'rlm-badge rlm-badge-err' }, cell.error.ename || 'error'));
    for (const b of cell.batches.values()) bits.push(batchBadge(b));
    fill(v.head!, ...bits);
    if (cell.subs.size) this.fillSubList(v, [...cell.subs.values()], v.key, v.subsEl!);
    v.liveEl!.hidden = !cell.live;
    if (v.liveEl!.textContent !== cell.live) v.liveEl!.textContent = cell.live;
    if (v.outputs !== cell.outputs) {
      v.renderers.forEach(r => r.dispose());
      v.renderers = [];
      fill(v.outEl!, ...(cell.outputs || []).map((o, k) =>
        this.outputEl(o, v, { run_id: run.id, step: st.n, index: cell.index, n: k })));
      v.outputs = cell.outputs;
    }
  }

  /** One generated output, drawn by the notebook's renderer for its best mime type. */
  private outputEl(out: Item, owner: CellV, ref: Item): HTMLElement {
    const box = h('div', { class: 'rlm-output jp-OutputArea-output' });
    const draw = (o: Item) => {
      fill(box);
      const model = new OutputModel({ value: o as any, trusted: this.trusted });
      const mime = this.rendermime.preferredMimeType(model.data, this.trusted ? 'any' : 'ensure');
      if (!mime) {
        box.append(h('div', { class: 'rlm-hint' }, `(no renderer for ${Object.keys(model.data).join(', ')})`));
        return;
      }
      const r = this.rendermime.createRenderer(mime);
      owner.renderers.push(r);
      box.dataset.mimeType = mime;
      void r.renderModel(model).then(() => requestAnimationFrame(() => readableAnsi(box)));
      box.append(r.node);
      if (o.cut) {
        box.append(h('button', { class: 'rlm-link', type: 'button', 'data-testid': 'rlm-show-all',
          onclick: () => this.fetch('output', ref).then(full => full && draw(full)) },
          `show all (${num(o.cut)} characters)`));
      }
    };
    draw(out);
    return box;
  }

  private fetch(what: string, params: Item): Promise<any> {
    return (this.actions as any).fetch ? (this.actions as any).fetch(what, params) : Promise.resolve(null);
  }

  // --- sub-calls -------------------------------------------------------------------------------
  private fillSubList(owner: StepV | CellV, list: Sub[], key: string, container: HTMLElement): void {
    const s = this.store;
    const done = list.filter(x => x.done).length;
    const failed = list.filter(x => x.error);
    const hasLiveChild = list.some(x => x.kind === 'rlm' && !s.childFinished(x));
    const gkey = `group|${key}`;
    const open = s.ui.open.has(gkey) ? s.ui.open.get(gkey)! : list.length <= MAX_ROWS_OPEN || hasLiveChild;
    let g = owner.group;
    if (!g || g.container !== container) {
      const head = toggleHead('rlm-group-head');
      const made: GroupV = { container, head, list: h('div', { class: 'rlm-sublist', role: 'list' }), open,
                             filter: this.groupFilter.get(gkey) || 'all' };
      head.addEventListener('click', () => {
        s.ui.open.set(gkey, !made.open);
        this.refreshOwner(key);
      });
      fill(container, made.head, made.list);
      owner.group?.win?.dispose();
      owner.group = made;
      g = made;
    }
    g.open = open;
    const filter = this.groupFilter.get(gkey) || 'all';
    const refilter = filter !== g.filter;
    g.filter = filter;
    const running = list.length - done;
    const lat = list.filter(x => x.latency !== null).map(x => x.latency!).sort((a, b) => a - b);
    const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
    const tokIn = list.reduce((a, x) => a + (Number(x.usage?.input_tokens) || 0), 0);
    const tokOut = list.reduce((a, x) => a + (Number(x.usage?.output_tokens) || 0), 0);
    const summary = [plural(list.length, 'sub-call')];
    if (running) summary.push(`${num(running)} running`);
    if (failed.length) summary.push(`${num(failed.length)} failed`);
    if (lat.length >= 2) summary.push(`p50 ${secs(pct(0.5))} · p95 ${secs(pct(0.95))}`);
    if (tokIn || tokOut) summary.push(`${num(tokIn)} → ${num(tokOut)} tok`);
    fill(g.head, h('span', { class: 'rlm-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      h('span', {}, summary.join(' · ')),
      failed.length ? h('span', { class: 'rlm-badge rlm-badge-err' }, `${num(failed.length)} failed`) : null);
    g.head.setAttribute('aria-expanded', String(open));
    g.list.hidden = !open;
    if (!open) {
      g.win?.dispose();
      g.win = undefined;
      g.bar = undefined;
      fill(g.list);
      return;
    }
    if (list.length > MAX_ROWS_OPEN) {
      // a long list: a filter, and only the rows in view are drawn
      const bar = this.filterBar(gkey, filter, failed.length, () => this.refreshOwner(key));
      if (!g.win) {
        g.win = new RowWindow<Sub>({ key: x => `sub|${x.run}|${x.id}`, render: x => this.subEl(x).root,
                                     estimate: ROW_HEIGHT, margin: WINDOW_MARGIN, maxHeight: WINDOW_HEIGHT });
        fill(g.list, bar, g.win.el);
      } else {
        g.bar?.replaceWith(bar);
      }
      g.bar = bar;
      g.win.setRows(filterRows(list, filter), refilter);
      return;
    }
    const wanted = new Set(list.map(x => `sub|${x.run}|${x.id}`));
    // rebuild when the set of rows changed; otherwise rows update themselves
    const have = [...g.list.querySelectorAll(':scope > [data-testid=rlm-subcall]')].map(e => (e as HTMLElement).dataset.key);
    if (g.win || have.length !== wanted.size || !have.every(k => wanted.has(k!))) {
      g.win?.dispose();
      g.win = undefined;
      fill(g.list);
      for (const sub of list) g.list.append(this.subEl(sub).root);
    } else {
      for (const sub of list) this.subEl(sub);
    }
  }

  private filterBar(gkey: string, current: RowFilter, failed: number, refresh: () => void): HTMLElement {
    const mk = (mode: RowFilter, label: string) =>
      h('button', { class: `rlm-link${current === mode ? ' rlm-on' : ''}`, type: 'button', 'aria-pressed': String(current === mode),
        'data-testid': `rlm-filter-${mode}`, onclick: () => { this.groupFilter.set(gkey, mode); refresh(); } }, label);
    return h('div', { class: 'rlm-filter' }, 'Show: ', mk('all', 'all'), ' · ', mk('failed', `failed (${num(failed)})`),
      ' · ', mk('slowest', 'slowest first'));
  }

  private refreshOwner(key: string): void {
    const [kind, a, b, c] = key.split('|');
    if (kind === 'loose') this.renderStep(a, Number(b));
    else this.renderCell(a, Number(b), Number(c));
  }

  private subEl(sub: Sub): SubV {
    const key = `sub|${sub.run}|${sub.id}`;
    let v = this.subs.get(key);
    if (!v) {
      const head = toggleHead('rlm-sub-head');
      const body = h('div', { class: 'rlm-sub-body' });
      const made: SubV = { root: h('div', { class: 'rlm-sub', role: 'listitem', 'data-testid': 'rlm-subcall',
                                            'data-kind': sub.kind, 'data-key': key }, head, body),
                           head, body, built: false };
      head.addEventListener('click', () => this.toggle(key, this.store.subOpen(sub)));
      this.subs.set(key, made);
      v = made;
    }
    this.fillSub(sub, v);
    return v;
  }

  private renderSub(runId: string, id: string): void {
    const run = this.store.runs.get(runId);
    const sub = run?.subIndex.get(id);
    const v = this.subs.get(`sub|${runId}|${id}`);
    if (sub && v && this.el.contains(v.root)) this.fillSub(sub, v);
  }

  private fillSub(sub: Sub, v: SubV): void {
    const s = this.store;
    const open = s.subOpen(sub);
    const used = sub.usage && (Number(sub.usage.input_tokens) || Number(sub.usage.output_tokens));
    const tok = used ? `${num(sub.usage!.input_tokens)} → ${num(sub.usage!.output_tokens)} tok` : '';
    const state = sub.error ? h('span', { class: 'rlm-badge rlm-badge-err' }, 'error')
      : sub.done ? h('span', { class: 'rlm-ok', 'aria-label': 'done' }, '✓') : h('span', { class: 'rlm-spinner', title: 'running' });
    fill(v.head,
      h('span', { class: 'rlm-caret', 'aria-hidden': 'true' }, open ? '▾' : '▸'),
      h('span', { class: 'rlm-kind' }, sub.kind === 'rlm' ? 'rlm_query' : 'llm_query'),
      h('span', { class: 'rlm-hint' }, sub.model || ''),
      state,
      sub.latency !== null ? h('span', { class: 'rlm-hint' }, secs(sub.latency)) : null,
      tok ? h('span', { class: 'rlm-hint' }, tok) : null,
      sub.cached ? h('span', { class: 'rlm-hint', title: 'answered by an identical earlier sub-call' }, 'memo') : null,
      h('span', { class: 'rlm-preview' }, (sub.prompt || '').replace(/\s+/g, ' ').slice(0, 140)),
    );
    v.head.setAttribute('aria-expanded', String(open));
    v.root.classList.toggle('rlm-open', open);
    v.root.classList.toggle('rlm-sub-failed', !!sub.error);
    v.body.hidden = !open;
    if (!open) {
      v.built = false;
      v.childRun = null; // its steps are re-attached when the box opens again
      v.childAnswer = null;
      fill(v.body);
      return;
    }
    if (!v.built) {
      v.promptEl = h('pre', { class: 'rlm-text' });
      v.responseEl = h('div');
      v.childBox = h('div', { class: 'rlm-child' });
      fill(v.body, h('div', { class: 'rlm-label' }, 'Prompt'), v.promptEl, v.responseEl, v.childBox);
      v.built = true;
      v.promptEl.textContent = sub.prompt || '';
      if (sub.promptChars > (sub.prompt || '').length) {
        v.promptEl.append(h('span', { class: 'rlm-hint' }, ' … loading the full prompt'));
        const pe = v.promptEl;
        void this.fetch('prompt', { run_id: sub.run, id: sub.id }).then(full => {
          if (full !== null && full !== undefined) pe.textContent = full;
        });
      }
      v.respShown = undefined;
    }
    const respKey = `${sub.done}|${sub.error}|${sub.response}`;
    if (v.respShown !== respKey) {
      v.respShown = respKey;
      if (sub.error) {
        fill(v.responseEl!, h('div', { class: 'rlm-label' }, 'Error'), h('pre', { class: 'rlm-text rlm-err' }, sub.error));
      } else if (sub.done) {
        const pre = h('pre', { class: 'rlm-text' }, sub.response || '');
        const parts: HTMLElement[] = [h('div', { class: 'rlm-label' }, 'Response'), pre];
        if (sub.responseChars > (sub.response || '').length) {
          parts.push(h('button', { class: 'rlm-link', type: 'button', onclick: (e: Event) => {
            (e.target as HTMLElement).remove();
            void this.fetch('response', { run_id: sub.run, id: sub.id }).then(full => {
              if (full !== null && full !== undefined) pre.textContent = full;
            });
          } }, `show all (${num(sub.responseChars)} characters)`));
        }
        fill(v.responseEl!, ...parts);
      } else {
        fill(v.responseEl!, h('div', { class: 'rlm-hint' }, 'waiting for the response…'));
      }
    }
    const child = s.childOf(sub);
    if (child) {
      if (!v.childRun) {
        v.childRun = child.id;
        fill(v.childBox!, h('div', { class: 'rlm-label' }, `Child run (depth ${child.started?.depth ?? '?'})`));
        this.renderRunInto(child, v.childBox!);
      } else {
        for (const n of child.steps.keys()) this.renderStep(child.id, n); // steps made while it was closed
      }
      if (child.finished && !v.childAnswer) {
        v.childAnswer = h('div', { class: 'rlm-child-answer' },
          h('b', {}, `Child answer (${child.finished.status}): `), String(child.finished.answer || '').slice(0, 2000));
        v.childBox!.append(v.childAnswer);
      }
    }
  }
}

export { TERMINAL };
