// The run's state in the browser, folded from the kernel's items (rlm_kernel/widget/compact.py):
// runs → steps → cells → sub-calls. No DOM here, so it can be unit tested on its own.
//
// A store starts from the items saved in the output (read-only) and becomes live when the kernel
// answers "hello" with a reset; after that, numbered batches carry only what is new, and a gap in
// the numbers asks for a reset again.

/* eslint-disable @typescript-eslint/no-explicit-any */
export type Item = Record<string, any>;
export type Dirty = Set<string>;

export interface Usage {
  in: number;
  out: number;
  cached: number;
}

export interface Sub {
  id: string;
  kind: string;
  model: string;
  prompt: string;
  promptChars: number;
  done: boolean;
  response: string | null;
  responseChars: number;
  usage: Item | null;
  latency: number | null;
  error: string | null;
  child: string | null;
  cached: boolean;
  t0: number;
  t1: number | null;
  cell: number | null;
  step: number;
  run: string;
}

/** A Message Batch the cell sent, as its request counts (batch_created → batch_progress → batch_finished). */
export interface Batch {
  status: string;
  counts: Record<string, number> | null;
  done: boolean;
  error: string | null;
}

export const BATCH_TITLE = 'Message Batches API: half price, answers within minutes';
const BATCH_COUNTS = ['processing', 'succeeded', 'errored', 'canceled', 'expired'];

/** "Message Batch · 120 processing · 378 succeeded · 2 errored"; "ended"/"failed"/"canceled" once finished. */
export function batchLabel(b: Batch): string {
  const c = b.counts || {};
  // once finished nothing is processing any more (a canceled batch's last counts may still say so)
  const parts = BATCH_COUNTS.filter(k => c[k] && !(b.done && k === 'processing')).map(k => `${(Number(c[k]) || 0).toLocaleString('en-US')} ${k}`);
  const state = b.done ? (b.status === 'canceled' ? 'canceled' : b.error ? 'failed' : 'ended')
    : b.status === 'canceling' ? 'canceling' : '';
  return ['Message Batch', state, ...parts].filter(Boolean).join(' · ');
}

/** An earlier question a follow-up continues, as run_started's `earlier` carries it (compact.py). */
export interface Earlier {
  run_id: string | null;
  question: string;
  answer: string;
  status: string | null;
  steps: number | null;
  subcalls: number | null;
  cost: number | null;
}

/** A follow-up's place in its chain of questions, and what the chain cost. */
export interface Chain {
  earlier: Earlier[];
  /** This run's number in the chain (earlier questions + 1). */
  position: number;
  /** Questions in the chain as far as this view knows: one more once a follow-up continued this run. */
  total: number;
  earlierSteps: number;
  /** The earlier questions' cost together; null when any is unknown. */
  earlierCost: number | null;
  /** Earlier questions plus this run, once this run finished with a known cost; else null. */
  wholeCost: number | null;
}

/** The chain a store's root run belongs to; null for a run that is no follow-up. */
export function chainOf(s: Store): Chain | null {
  const root = s.rootId ? s.runs.get(s.rootId) : null;
  const raw = root?.started?.earlier;
  if (!Array.isArray(raw) || !raw.length) return null;
  const earlier: Earlier[] = raw.map((q: Item) => ({
    run_id: q.run_id ?? null, question: String(q.question ?? ''), answer: String(q.answer ?? ''),
    status: q.status ?? null, steps: q.steps ?? null, subcalls: q.subcalls ?? null,
    cost: typeof q.cost === 'number' ? q.cost : null,
  }));
  const earlierCost = earlier.some(q => q.cost === null) ? null : earlier.reduce((a, q) => a + (q.cost || 0), 0);
  const own = s.finished?.cost;
  const wholeCost = earlierCost !== null && typeof own === 'number' ? earlierCost + own : null;
  return { earlier, position: earlier.length + 1, total: earlier.length + 1 + (s.continuedBy ? 1 : 0),
           earlierSteps: earlier.reduce((a, q) => a + (Number(q.steps) || 0), 0), earlierCost, wholeCost };
}

export interface Cell {
  index: number;
  t0: number | null;
  /** What the cell printed so far while it runs (cell_finished replaces it with its outputs). */
  live: string;
  code: string;
  edited: boolean;
  original: string | null;
  running: boolean;
  outputs: Item[];
  subs: Map<string, Sub>;
  error: Item | null;
  duration: number | null;
  timedOut: boolean;
  count: number | null;
  /** Message Batches sent from this cell, by batch id; they stay after the cell finishes. */
  batches: Map<string, Batch>;
}

export interface Step {
  run: string;
  n: number;
  /** When the model turn started (seconds, kernel clock); null in items saved before timings. */
  t0: number | null;
  text: string;
  turnDone: boolean;
  usage: Item | null;
  latency: number | null;
  cells: Map<number, Cell>;
  notes: string[];
  loose: Sub[];
}

export interface Run {
  id: string;
  started: Item | null;
  parentRun: string | null;
  parentSub: string | null;
  steps: Map<number, Step>;
  lastStep: number;
  finished: Item | null;
  subIndex: Map<string, Sub>;
  /** Which cell each Message Batch belongs to: the one running at its step when batch_created came. */
  batchCells: Map<string, { step: number; cell: number | null }>;
}

export const TERMINAL = ['done', 'stopped', 'failed', 'budget', 'crashed'];

export function usageAdd(tot: Usage, u: Item | null | undefined): void {
  if (!u) return;
  tot.in += Number(u.input_tokens) || 0;
  tot.out += Number(u.output_tokens) || 0;
  tot.cached += Number(u.cache_read_tokens) || 0;
}

/** The figures the header and summary both show: one source for every total. */
export interface Totals {
  steps: number;
  subcalls: number;
  running: number;
  failedSubcalls: number;
  failedCells: number;
  tokens: Usage;
}

export class Store {
  runs = new Map<string, Run>();
  rootId: string | null = null;
  state = 'starting';
  pending: Item | null = null;
  editQueued: Item | null = null;
  notesQueued: string[] = [];
  finished: Item | null = null;
  /** The follow-up that continued this run (`%%rlm --continue`): its run id and question. */
  continuedBy: Item | null = null;
  budget: Item | null = null;
  skew = 0;
  message: string | null = null;
  exported: string | null = null;
  /** The export's path below the kernel's folder (the notebook's), which the front end can open. */
  exportedRelpath: string | null = null;
  logPath: string | null = null;
  kernelDone = false;
  /** True once the kernel sent a reset: the store is live and batches apply. */
  synced = false;
  lastN = 0;
  listeners = new Set<(dirty: Dirty) => void>();
  ui = { all: null as null | 'open' | 'closed', open: new Map<string, boolean>() };

  clear(): void {
    this.runs = new Map();
    this.rootId = null;
    this.state = 'starting';
    this.pending = null;
    this.editQueued = null;
    this.notesQueued = [];
    this.finished = null;
    this.continuedBy = null;
    this.budget = null;
    this.message = null;
    this.kernelDone = false;
  }

  /** Fold saved items (the output's own copy) without going live. */
  load(items: Item[], finished: boolean): void {
    this.clear();
    const dirty: Dirty = new Set();
    for (const it of items) this.apply(it, dirty);
    this.kernelDone = finished;
    this.emit(new Set(['all']));
  }

  /** A message from the kernel; returns "hello" when the store needs the whole run again. */
  receive(msg: Item): 'hello' | null {
    if (!msg || typeof msg !== 'object') return null;
    if (typeof msg.now === 'number') this.skew = Date.now() / 1000 - msg.now;
    const dirty: Dirty = new Set();
    switch (msg.kind) {
      case 'reset': {
        const keepUi = this.ui;
        this.clear();
        this.ui = keepUi;
        this.synced = true;
        this.lastN = msg.n;
        for (const it of msg.items) this.apply(it, dirty);
        this.kernelDone = !!msg.finished;
        this.logPath = msg.log_path ?? null;
        this.exported = msg.exported ?? null;
        this.exportedRelpath = msg.exported_relpath ?? null;
        this.emit(new Set(['all']));
        return null;
      }
      case 'batch':
        if (!this.synced || msg.n <= this.lastN) return null; // the reset we asked for has (or will have) it
        if (msg.n !== this.lastN + 1) {
          this.synced = false;
          return 'hello';
        }
        this.lastN = msg.n;
        for (const it of msg.items) this.apply(it, dirty);
        break;
      case 'finished':
        this.kernelDone = true;
        this.logPath = msg.log_path ?? null;
        dirty.add('controls').add('head');
        break;
      case 'exported':
        this.exported = msg.path;
        this.exportedRelpath = msg.relpath ?? null;
        this.message = null;
        dirty.add('controls');
        break;
      case 'error':
        this.message = msg.text;
        dirty.add('controls');
        break;
      default:
        return null;
    }
    this.emit(dirty);
    return null;
  }

  emit(dirty: Dirty): void {
    for (const f of this.listeners) f(dirty);
  }

  run(id: unknown): Run {
    const key = String(id);
    let r = this.runs.get(key);
    if (!r) {
      r = { id: key, started: null, parentRun: null, parentSub: null, steps: new Map(), lastStep: 0,
            finished: null, subIndex: new Map(), batchCells: new Map() };
      this.runs.set(key, r);
    }
    return r;
  }

  step(run: Run, n: unknown): Step {
    const k = Number(n) || 0;
    let s = run.steps.get(k);
    if (!s) {
      s = { run: run.id, n: k, t0: null, text: '', turnDone: false, usage: null, latency: null, cells: new Map(), notes: [],
            loose: [] };
      run.steps.set(k, s);
      if (k > run.lastStep) run.lastStep = k;
    }
    return s;
  }

  runningCell(step: Step): Cell | null {
    for (const c of step.cells.values()) if (c.running) return c;
    return null;
  }

  apply(it: Item, dirty: Dirty): void {
    const run = it.run_id !== null && it.run_id !== undefined ? this.run(it.run_id) : null;
    if (run && !this.rootId && !it.parent_run_id) {
      this.rootId = run.id; // a resumed run's view may start without run_started
      if (this.state === 'starting') this.state = 'running';
    }
    const isRoot = !!run && this.rootId === run.id;
    const stepKey = (n: unknown) => `step|${run!.id}|${Number(n) || 0}`;
    switch (it.type) {
      case 'run_started':
        run!.started = it;
        if (it.parent_run_id) {
          run!.parentRun = String(it.parent_run_id);
          run!.parentSub = String(it.parent_subcall_id);
          dirty.add(`sub|${run!.parentRun}|${run!.parentSub}`);
        }
        dirty.add('head').add('controls');
        if (it.earlier) dirty.add('chain');
        break;
      case 'turn_started': {
        const prev = run!.lastStep;
        run!.steps.delete(Number(it.step)); // a step that runs again starts afresh
        this.step(run!, it.step).t0 = typeof it.t === 'number' ? it.t : null;
        dirty.add(`drop|${run!.id}|${Number(it.step)}`);
        dirty.add(stepKey(it.step)).add(stepKey(prev)).add('head');
        break;
      }
      case 'turn_delta': {
        const s = this.step(run!, it.step);
        s.text += it.text;
        dirty.add(stepKey(it.step));
        break;
      }
      case 'turn_finished': {
        const s = this.step(run!, it.step);
        if (it.text !== undefined) s.text = it.text;
        s.turnDone = true;
        s.usage = it.usage ?? null;
        s.latency = it.latency ?? null;
        dirty.add(stepKey(it.step)).add('head');
        break;
      }
      case 'cell_started': {
        const s = this.step(run!, it.step);
        const c: Cell = { index: Number(it.index) || 0, t0: typeof it.t === 'number' ? it.t : null, live: '', code: it.code ?? '', edited: !!it.edited,
                          original: it.original_code ?? null, running: true, outputs: [], subs: new Map(),
                          error: null, duration: null, timedOut: false, count: null, batches: new Map() };
        s.cells.set(c.index, c);
        const p = this.pending;
        if (p && String(p.run_id) === run!.id && Number(p.step) === Number(it.step) &&
            Number(p.index) === Number(it.index)) {
          this.pending = null;
          this.editQueued = null;
          dirty.add('pending');
        }
        dirty.add(stepKey(it.step));
        break;
      }
      case 'cell_finished': {
        const s = this.step(run!, it.step);
        const index = Number(it.index) || 0;
        let c = s.cells.get(index);
        if (!c) {
          c = { index, t0: null, live: '', code: '', edited: false, original: null, running: false, outputs: [], subs: new Map(),
                error: null, duration: null, timedOut: false, count: null, batches: new Map() };
          s.cells.set(index, c);
        }
        Object.assign(c, { live: '', running: false, outputs: it.outputs || [], error: it.error ?? null,
                           duration: it.duration ?? null, timedOut: !!it.timed_out, count: it.execution_count ?? null });
        dirty.add(`cell|${run!.id}|${s.n}|${c.index}`).add(stepKey(it.step)).add('head');
        break;
      }
      case 'cell_stream': {
        const c = run!.steps.get(Number(it.step))?.cells.get(Number(it.index) || 0);
        if (c && c.running) {
          c.live += it.text;
          dirty.add(`cell|${run!.id}|${Number(it.step)}|${c.index}`);
        }
        break;
      }
      case 'subcall_started': {
        const s = this.step(run!, it.step);
        const cell = this.runningCell(s);
        const sub: Sub = { id: String(it.id), kind: it.kind, model: it.model ?? '', prompt: it.prompt ?? '',
                           promptChars: Number(it.prompt_chars) || 0, done: false, response: null, responseChars: 0,
                           usage: null, latency: null, error: null, child: null, cached: false, t0: it.t, t1: null,
                           cell: cell ? cell.index : null, step: s.n, run: run!.id };
        if (cell) cell.subs.set(sub.id, sub);
        else s.loose.push(sub);
        run!.subIndex.set(sub.id, sub);
        dirty.add(cell ? `cell|${run!.id}|${s.n}|${cell.index}` : stepKey(s.n)).add('head');
        break;
      }
      case 'subcall_finished': {
        let sub = run!.subIndex.get(String(it.id));
        if (!sub) {
          // the saved copy folds a finished sub-call's start into it (prompt included)
          this.apply({ ...it, type: 'subcall_started', prompt: it.prompt ?? '', prompt_chars: it.prompt_chars ?? 0,
                       t: (Number(it.t) || 0) - (Number(it.latency) || 0) }, dirty);
          sub = run!.subIndex.get(String(it.id))!;
        }
        Object.assign(sub, { done: true, response: it.response ?? '', responseChars: Number(it.response_chars) || 0,
                             usage: it.usage ?? null, latency: it.latency ?? null, error: it.error || null,
                             child: it.child_run_id || sub.child, cached: Boolean(it.cached), t1: it.t ?? null,
                             model: it.model || sub.model });
        dirty.add(`sub|${run!.id}|${sub.id}`).add('head');
        if (sub.cell !== null) dirty.add(`cell|${run!.id}|${sub.step}|${sub.cell}`);
        else dirty.add(stepKey(sub.step));
        break;
      }
      case 'batch_created':
      case 'batch_progress':
      case 'batch_finished': {
        const key = String(it.batch);
        let where = run!.batchCells.get(key);
        if (!where) {
          const s = this.step(run!, it.step);
          where = { step: s.n, cell: this.runningCell(s)?.index ?? null };
          run!.batchCells.set(key, where);
        }
        const cell = where.cell === null ? undefined : run!.steps.get(where.step)?.cells.get(where.cell);
        if (!cell) break;
        let b = cell.batches.get(key);
        if (!b) {
          b = { status: 'in_progress', counts: null, done: false, error: null };
          cell.batches.set(key, b);
        }
        if (it.status) b.status = it.status;
        if (it.counts) b.counts = it.counts;
        if (it.type === 'batch_created') b.counts = { processing: Number(it.count) || 0 };
        if (it.type === 'batch_finished') b.done = true;
        if (it.error) b.error = String(it.error);
        dirty.add(`cell|${run!.id}|${where.step}|${cell.index}`);
        break;
      }
      case 'note':
        this.step(run!, it.step).notes.push(it.text);
        this.notesQueued = this.notesQueued.filter(n => n !== it.text);
        dirty.add(stepKey(it.step)).add('controls');
        break;
      case 'note_queued':
        this.notesQueued.push(it.text);
        dirty.add('controls');
        break;
      case 'state': {
        const terminal = TERMINAL.includes(it.state);
        if (terminal && !isRoot) break; // a child ending is not the tree ending
        if (!this.finished) this.state = it.state;
        if (it.state !== 'paused') this.pending = null;
        dirty.add('head').add('controls').add('pending');
        break;
      }
      case 'pending':
        this.pending = it;
        this.editQueued = null;
        dirty.add('pending').add('controls');
        break;
      case 'edit_queued':
        this.editQueued = it;
        dirty.add('pending');
        break;
      case 'run_resumed':
        run!.finished = null;
        if (run!.id === this.rootId) {
          this.finished = null;
          this.state = 'running';
          this.kernelDone = false;
        }
        dirty.add('all');
        break;
      case 'continued':
        this.continuedBy = it;
        dirty.add('chain');
        break;
      case 'budget_hit':
        this.budget = it;
        dirty.add('head');
        break;
      case 'run_finished':
        run!.finished = it;
        dirty.add(stepKey(run!.lastStep));
        if (isRoot) {
          this.finished = it;
          this.state = it.status;
          this.pending = null;
          dirty.add('head').add('controls').add('answer').add('pending').add('chain');
        } else if (run!.parentRun) {
          dirty.add(`sub|${run!.parentRun}|${run!.parentSub}`);
        }
        break;
      default:
        break;
    }
  }

  /** Every total the view shows, counted once, over the root and all its child runs. */
  totals(): Totals {
    const t: Totals = { steps: 0, subcalls: 0, running: 0, failedSubcalls: 0, failedCells: 0,
                        tokens: { in: 0, out: 0, cached: 0 } };
    for (const run of this.runs.values()) {
      for (const s of run.steps.values()) {
        if (run.id === this.rootId) t.steps += 1;
        usageAdd(t.tokens, s.usage);
        for (const c of s.cells.values()) if (c.error || c.timedOut) t.failedCells += 1;
      }
      for (const sub of run.subIndex.values()) {
        t.subcalls += 1;
        if (!sub.done) t.running += 1;
        if (sub.error) t.failedSubcalls += 1;
        // an rlm_query's tokens are its child run's turns and sub-calls, counted there
        if (sub.kind !== 'rlm') usageAdd(t.tokens, sub.usage);
      }
    }
    return t;
  }

  // open/closed: a person's choice wins, then expand/collapse-all, then "the current step is open".
  isOpen(key: string, fallback: boolean): boolean {
    if (this.ui.open.has(key)) return this.ui.open.get(key)!;
    if (this.ui.all) return this.ui.all === 'open';
    return fallback;
  }

  stepOpen(run: Run, s: Step): boolean {
    const current = !run.finished && !this.kernelDone && s.n === run.lastStep;
    const p = this.pending;
    const pendingHere = !!p && String(p.run_id) === run.id && Number(p.step) === s.n;
    return this.isOpen(`step|${run.id}|${s.n}`, current || pendingHere);
  }

  // expand/collapse-all and "open while its child runs" apply to rlm_query rows only
  subOpen(sub: Sub): boolean {
    const key = `sub|${sub.run}|${sub.id}`;
    if (sub.kind !== 'rlm') return this.ui.open.get(key) ?? false;
    return this.isOpen(key, !this.childFinished(sub));
  }

  childFinished(sub: Sub): boolean {
    const child = this.childOf(sub);
    return sub.done || !!(child && child.finished);
  }

  childOf(sub: Sub): Run | null {
    if (sub.child && this.runs.has(String(sub.child))) return this.runs.get(String(sub.child))!;
    for (const r of this.runs.values()) if (r.parentRun === sub.run && r.parentSub === sub.id) return r;
    return null;
  }

  /** Whether a Pause/Resume/Step/Stop can still reach a running kernel-side run. */
  live(): boolean {
    const over = !!this.finished || this.kernelDone || TERMINAL.includes(this.state);
    return this.synced && !over;
  }
}
