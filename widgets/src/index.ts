// rlm-kernel's JupyterLab / Notebook 7 extension: draws a run's output (application/vnd.rlm.run+json)
// as the run tree, live while the kernel holds the run and read-only from the saved copy otherwise.
//
// The kernel opens one comm per run (target "rlm.run") and sends numbered batches of what is new;
// the tree asks for the whole run ("hello") when it opens late (a reloaded page) or sees a gap.

/* eslint-disable @typescript-eslint/no-explicit-any */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, ISessionContext, IThemeManager } from '@jupyterlab/apputils';
import { IEditorServices } from '@jupyterlab/codeeditor';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Kernel } from '@jupyterlab/services';
import { IStatusBar } from '@jupyterlab/statusbar';
import type { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';
import { readableAnsi } from './contrast';
import { savedItems } from './saved';
import { Item, Store } from './store';
import { FIND_EVENT, TreeView } from './view';

export const MIME = 'application/vnd.rlm.run+json';
export const TARGET = 'rlm.run';
/** Below the widget view (0) and every built-in renderer: a run's bundle shows as the tree. */
export const RANK = -10;

/** One run's kernel-side view: the store all its renderers share and the comm to reach it. */
export class Link {
  readonly store = new Store();
  /** The trees drawing this run now (the status-bar item scrolls to the first). */
  readonly views = new Set<HTMLElement>();
  comm: Kernel.IComm | null = null;
  kernel: Kernel.IKernelConnection | null = null;
  private waiting = new Map<number, (v: any) => void>();
  private cache = new Map<string, any>();
  private reqN = 0;

  constructor(readonly commId: string) {}

  /** `fresh`: the kernel has just opened the comm, so the first batch starts the run. */
  attach(comm: Kernel.IComm, kernel: Kernel.IKernelConnection, fresh: boolean): void {
    this.comm = comm;
    this.kernel = kernel;
    comm.onMsg = msg => this.receive((msg.content as any).data);
    if (fresh) {
      this.store.clear();
      this.store.synced = true;
      this.store.lastN = 0;
      this.store.emit(new Set(['all']));
    } else {
      this.send({ kind: 'hello' });
    }
  }

  /** The kernel is gone (restart, shutdown): keep what we have, read-only. */
  lost(): void {
    this.comm = null;
    this.kernel = null;
    this.store.synced = false;
    this.store.kernelDone = true;
    this.store.emit(new Set(['all']));
  }

  receive(data: Item): void {
    if (!data) return;
    if (data.kind === 'fetched') {
      const resolve = this.waiting.get(data.req);
      this.waiting.delete(data.req);
      resolve?.(data.value);
      return;
    }
    if (this.store.receive(data) === 'hello') this.send({ kind: 'hello' });
  }

  send(msg: Item): void {
    if (!this.comm || this.comm.isDisposed) return;
    try {
      this.comm.send(msg as any);
    } catch (err) {
      console.warn('rlm-kernel: could not reach the kernel', err);
    }
  }

  fetch(what: string, params: Item): Promise<any> {
    const key = `${what}|${JSON.stringify(params)}`;
    if (this.cache.has(key)) return Promise.resolve(this.cache.get(key));
    if (!this.comm) return Promise.resolve(null);
    const req = ++this.reqN;
    return new Promise(resolve => {
      this.waiting.set(req, value => {
        this.cache.set(key, value);
        resolve(value);
      });
      this.send({ kind: 'fetch', req, what, ...params });
    });
  }
}

export const LINKS = new Map<string, Link>();

function linkFor(commId: string): Link {
  let link = LINKS.get(commId);
  if (!link) {
    link = new Link(commId);
    LINKS.set(commId, link);
  }
  return link;
}

const hooked = new WeakSet<Kernel.IKernelConnection>();

/** Let the kernel open run comms on this connection, and mark its runs read-only when it goes. */
function hookKernel(kernel: Kernel.IKernelConnection | null | undefined): void {
  if (!kernel || hooked.has(kernel)) return;
  hooked.add(kernel);
  kernel.registerCommTarget(TARGET, (comm: Kernel.IComm) => linkFor(comm.commId).attach(comm, kernel, true));
  const drop = () => {
    for (const link of LINKS.values()) if (link.kernel === kernel) link.lost();
  };
  kernel.statusChanged.connect((_k, status) => {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') drop();
  });
  kernel.disposed.connect(drop);
}

/** Reach a run the page did not see open (reloaded page, kernel still running): ask it to say hello. */
function reattach(link: Link, session: ISessionContext): void {
  const kernel = session.session?.kernel;
  if (link.comm || !kernel || kernel.isDisposed || kernel.status === 'dead') return;
  hookKernel(kernel);
  try {
    if (kernel.hasComm(link.commId)) return;
    link.attach(kernel.createComm(TARGET, link.commId), kernel, false);
  } catch (err) {
    console.warn('rlm-kernel: could not reattach to run', link.commId, err);
  }
}

export class RunRenderer extends Widget implements IRenderMime.IRenderer {
  private view: TreeView | null = null;
  private link: Link | null = null;

  constructor(private options: IRenderMime.IRendererOptions, private rendermime: IRenderMimeRegistry,
              private session: ISessionContext | null, private editors: IEditorServices | null,
              private opener: ((relpath: string) => void) | null = null) {
    super();
    this.addClass('rlm-renderer');
    session?.kernelChanged.connect(this.onKernel, this);
  }

  private onKernel(): void {
    if (this.link && this.session) reattach(this.link, this.session);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = (model.data[this.options.mimeType] || {}) as Item;
    const commId = String(data.comm_id || '');
    const link = commId ? linkFor(commId) : new Link('');
    this.link = link;
    if (!link.store.synced) {
      link.store.load(savedItems(data, model.data['text/html']), !!data.finished);
      link.store.logPath = data.log_path ?? null;
    }
    if (this.session && commId) {
      reattach(link, this.session);
      void this.session.ready.then(() => this.onKernel());
    }
    if (!this.view) {
      this.view = new TreeView(link.store, this.rendermime, link, model.trusted, data.header || {}, this.editors,
        this.opener);
      this.node.append(this.view.el);
      link.views.add(this.view.el);
    } else {
      this.view.setHeader(data.header || {});
    }
  }

  /** Outputs drawn before the tree was on the page could not be measured for contrast. */
  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    requestAnimationFrame(() => readableAnsi(this.node));
  }

  dispose(): void {
    if (this.isDisposed) return;
    this.session?.kernelChanged.disconnect(this.onKernel, this);
    if (this.view) this.link?.views.delete(this.view.el);
    this.view?.dispose();
    super.dispose();
  }
}

class NotebookRuns implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  constructor(private app: JupyterFrontEnd, private editors: IEditorServices | null) {}

  createNew(panel: NotebookPanel): void {
    const session = panel.sessionContext;
    const rendermime = panel.content.rendermime;
    // An export lies below the kernel's folder, which is the notebook's: open it from there.
    const opener = (relpath: string) => {
      const dir = panel.context.path.includes('/') ? panel.context.path.slice(0, panel.context.path.lastIndexOf('/')) : '';
      void this.app.commands.execute('docmanager:open', { path: dir ? `${dir}/${relpath}` : relpath });
    };
    const hook = () => hookKernel(session.session?.kernel);
    session.kernelChanged.connect(hook);
    hook();
    rendermime.addFactory({
      safe: true, // draws only its own data, as text; outputs inside go through rendermime with their trust
      mimeTypes: [MIME],
      defaultRank: RANK,
      createRenderer: options => new RunRenderer(options, rendermime, session, this.editors, opener),
    }, RANK);
  }
}

/** The newest run that can still be steered: what the palette commands act on. */
function currentRun(): Link | null {
  let found: Link | null = null;
  for (const link of LINKS.values()) if (link.store.live()) found = link;
  return found;
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'rlm-kernel:plugin',
  description: 'The live run tree of rlm-kernel: steps, cells, sub-calls and child runs.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  optional: [ICommandPalette, IStatusBar, IEditorServices, IThemeManager],
  activate: (app: JupyterFrontEnd, rendermime: IRenderMimeRegistry, palette: ICommandPalette | null,
             statusBar: IStatusBar | null, editors: IEditorServices | null, themes: IThemeManager | null) => {
    // a new theme brings new backgrounds: measure the outputs' terminal colours again
    themes?.themeChanged.connect(() => document.querySelectorAll('.rlm').forEach(el => readableAnsi(el)));
    app.docRegistry.addWidgetExtension('Notebook', new NotebookRuns(app, editors));
    // outputs outside a notebook (a cloned output view, the console) still show the saved tree
    rendermime.addFactory({
      safe: true, mimeTypes: [MIME], defaultRank: RANK,
      createRenderer: options => new RunRenderer(options, rendermime, null, editors),
    }, RANK);
    const controls: [string, string, string, string][] = [
      ['pause', 'Pause', 'Pause the running RLM run at the next step boundary', 'Ctrl Alt P'],
      ['resume', 'Resume', 'Resume the paused RLM run', 'Ctrl Alt R'],
      ['step', 'Step', 'Run exactly one more step of the RLM run, then pause', 'Ctrl Alt N'],
      ['stop', 'Stop', 'Stop the RLM run with its best partial answer', 'Ctrl Alt S'],
    ];
    for (const [action, label, caption, keys] of controls) {
      const id = `rlm-kernel:${action}`;
      app.commands.addCommand(id, {
        label: `RLM: ${label}`,
        caption,
        isEnabled: () => currentRun() !== null,
        execute: () => currentRun()?.send({ kind: 'control', action }),
      });
      app.commands.addKeyBinding({ command: id, keys: [keys], selector: '.jp-Notebook' });
      palette?.addItem({ command: id, category: 'RLM' });
    }
    // Ctrl+F with focus in a run view searches the run; the view's own key handler covers its
    // buttons, where Lumino leaves shortcuts alone
    app.commands.addCommand('rlm-kernel:find', {
      label: 'RLM: Search the run',
      caption: "Search the focused run view's code, outputs, prompts and replies",
      execute: () => document.activeElement?.closest('.rlm')?.dispatchEvent(new CustomEvent(FIND_EVENT)),
    });
    app.commands.addKeyBinding({ command: 'rlm-kernel:find', keys: ['Accel F'], selector: '.rlm' });
    if (statusBar) {
      const item = new RunStatus();
      statusBar.registerStatusItem('rlm-kernel:status', { item, align: 'left', rank: 5 });
    }
  },
};

/** The status bar's word on the running run (state, step, sub-calls, tokens); a click scrolls to it. */
class RunStatus extends Widget {
  private link: Link | null = null;

  constructor() {
    super();
    this.addClass('rlm-statusbar');
    this.node.setAttribute('role', 'button');
    this.node.tabIndex = 0;
    this.node.dataset.testid = 'rlm-statusbar';
    this.node.addEventListener('click', () => this.reveal());
    this.node.addEventListener('keydown', e => {
      if (e.key === 'Enter' || e.key === ' ') {
        e.preventDefault();
        this.reveal();
      }
    });
    window.setInterval(() => this.refresh(), 1000);
    this.refresh();
  }

  private reveal(): void {
    const el = this.link ? [...this.link.views][0] : null;
    el?.scrollIntoView({ block: 'start' });
  }

  private refresh(): void {
    this.link = currentRun();
    const s = this.link?.store;
    const root = s?.rootId ? s.runs.get(s.rootId) : null;
    this.node.hidden = !s || !root;
    if (!s || !root) return;
    const t = s.totals();
    const tokens = (t.tokens.in + t.tokens.out).toLocaleString('en-US');
    this.node.textContent = `RLM ${s.state} · step ${root.lastStep} · ${t.subcalls.toLocaleString('en-US')} sub-calls · ` +
      `${tokens} tok` + (t.failedCells + t.failedSubcalls ? ` · ${t.failedCells + t.failedSubcalls} errors` : '');
    this.node.title = 'Show the running RLM run';
  }
}

export default plugin;
