// rlm-kernel: the live run tree (anywidget ESM; no build step, no dependencies).
//
// The kernel sends numbered batches of run events ("items", see rlm_kernel/widget/compact.py);
// a per-model Store folds them into runs → steps → cells → sub-calls, and each View patches only
// the DOM nodes an update touched. A new store asks for the whole run once ("hello"); a gap in
// batch numbers asks again. Big values (full prompts, long outputs) are fetched on demand.

const STORES = (globalThis.__rlmKernelStores ??= new Map());
const MAX_ROWS_OPEN = 25; // sub-call lists longer than this start collapsed
const STATIC_WAIT_MS = 2500; // no answer from a kernel by then: show the saved static tree

// ---------------------------------------------------------------------------------------------
// small helpers

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

// replaceChildren, skipping the null/undefined placeholders of optional parts
function fill(el, ...kids) {
  el.replaceChildren(...kids.filter((k) => k !== null && k !== undefined && k !== false));
}

function clickOnEnter(e) {
  if (e.key === "Enter" || e.key === " ") {
    e.preventDefault();
    e.stopPropagation();
    e.currentTarget.click();
  }
}

const esc = (s) =>
  String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const num = (n) => (Number(n) || 0).toLocaleString("en-US");
const secs = (s) => (s === null || s === undefined ? "" : s < 10 ? `${Number(s).toFixed(1)} s` : `${Math.round(s)} s`);
// one line of the model's prose for a closed step: code blocks left out
const peek = (text) => text.replace(/```[\s\S]*?(```|$)/g, " ").replace(/[*_`#>]/g, "").replace(/\s+/g, " ").trim().slice(0, 140);
const textOf = (v) => (Array.isArray(v) ? v.join("") : String(v ?? ""));

function usageAdd(tot, u) {
  if (!u) return;
  tot.in += Number(u.input_tokens) || 0;
  tot.out += Number(u.output_tokens) || 0;
  tot.cached += Number(u.cache_read_tokens) || 0;
}

// ---------------------------------------------------------------------------------------------
// Python highlighting: one regex pass, everything escaped.

const PY_KEYWORDS = new Set(
  ("False None True and as assert async await break class continue def del elif else except finally for " +
    "from global if import in is lambda nonlocal not or pass raise return try while with yield match case").split(" "),
);
const PY_BUILTINS = new Set(
  ("print len range str int float list dict set tuple sorted enumerate zip map filter sum min max any all open " +
    "isinstance type repr abs round reversed llm_query llm_query_batched rlm_query FINAL FINAL_VAR answer context").split(" "),
);
const PY_TOKEN =
  /(#[^\n]*)|((?:[rRbBuUfF]{0,2})(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:\\.|[^"\\\n])*"?|'(?:\\.|[^'\\\n])*'?))|(\b\d[\d_]*(?:\.\d+)?(?:[eE][+-]?\d+)?\b)|([A-Za-z_][A-Za-z0-9_]*)/g;

export function highlightPython(code) {
  let out = "";
  let last = 0;
  let prevWord = "";
  for (const m of code.matchAll(PY_TOKEN)) {
    out += esc(code.slice(last, m.index));
    last = m.index + m[0].length;
    const [tok, comment, string, number, word] = m;
    if (comment) out += `<span class="rlm-hl-comment">${esc(tok)}</span>`;
    else if (string) out += `<span class="rlm-hl-string">${esc(tok)}</span>`;
    else if (number) out += `<span class="rlm-hl-number">${esc(tok)}</span>`;
    else if (word) {
      let cls = "";
      if (PY_KEYWORDS.has(word)) cls = "rlm-hl-keyword";
      else if (prevWord === "def" || prevWord === "class") cls = "rlm-hl-def";
      else if (PY_BUILTINS.has(word)) cls = "rlm-hl-builtin";
      out += cls ? `<span class="${cls}">${esc(tok)}</span>` : esc(tok);
      prevWord = word;
      continue;
    }
    prevWord = "";
  }
  return out + esc(code.slice(last));
}

// ---------------------------------------------------------------------------------------------
// ANSI colour codes (tracebacks) to spans.

const ANSI_COLORS = ["black", "red", "green", "yellow", "blue", "magenta", "cyan", "white"];

export function ansiToHtml(text) {
  let out = "";
  let open = false;
  let last = 0;
  for (const m of text.matchAll(/\x1b\[([0-9;]*)([A-Za-z])/g)) {
    out += esc(text.slice(last, m.index));
    last = m.index + m[0].length;
    if (m[2] !== "m") continue;
    const classes = [];
    for (const code of m[1].split(";").map(Number)) {
      if (code === 1) classes.push("rlm-ansi-bold");
      else if (code >= 30 && code <= 37) classes.push(`rlm-ansi-${ANSI_COLORS[code - 30]}`);
      else if (code >= 90 && code <= 97) classes.push(`rlm-ansi-${ANSI_COLORS[code - 90]}`);
      else if (code >= 40 && code <= 47) classes.push(`rlm-ansi-bg-${ANSI_COLORS[code - 40]}`);
    }
    if (open) out += "</span>";
    open = classes.length > 0;
    if (open) out += `<span class="${classes.join(" ")}">`;
  }
  out += esc(text.slice(last));
  return open ? out + "</span>" : out;
}

// ---------------------------------------------------------------------------------------------
// Markdown (the root model's prose): escape first, then a small, safe subset.

function inlineMd(s) {
  const codes = [];
  s = esc(s).replace(/`([^`\n]+)`/g, (_, c) => `\u0000${codes.push(c) - 1}\u0000`);
  s = s
    .replace(/\*\*([^*\n]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*\w])\*([^*\n]+)\*(?!\w)/g, "$1<em>$2</em>")
    .replace(/\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g, '<a href="$2" target="_blank" rel="noopener noreferrer">$1</a>');
  return s.replace(/\u0000(\d+)\u0000/g, (_, i) => `<code>${codes[Number(i)]}</code>`);
}

// With `chips`, ```repl / ```python blocks become a pointer to the cell that shows them (the step's
// cells list them right below, highlighted, with their outputs), so code is not shown twice.
export function markdownToHtml(src, { chips = false } = {}) {
  let cellNo = 0;
  const lines = String(src ?? "").replace(/\r\n?/g, "\n").split("\n");
  const out = [];
  let para = [];
  let list = null; // "ul" | "ol"
  const flushPara = () => {
    if (para.length) out.push(`<p>${para.map(inlineMd).join("<br>")}</p>`);
    para = [];
  };
  const closeList = () => {
    if (list) out.push(`</${list}>`);
    list = null;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const fence = line.match(/^\s*(```|~~~)\s*([\w+-]*)/);
    if (fence) {
      flushPara();
      closeList();
      const body = [];
      i++;
      while (i < lines.length && !lines[i].trim().startsWith(fence[1])) body.push(lines[i++]);
      const lang = fence[2].toLowerCase();
      const code = body.join("\n");
      if (chips && ["repl", "python", "py"].includes(lang)) {
        cellNo += 1;
        const first = code.split("\n").find((l) => l.trim()) || "";
        out.push(`<div class="rlm-chip">▸ Cell ${cellNo} below: <code>${esc(first.slice(0, 80))}</code>…</div>`);
        continue;
      }
      const inner = ["python", "py", "repl", ""].includes(lang) ? highlightPython(code) : esc(code);
      out.push(`<pre class="rlm-md-code"${lang ? ` data-lang="${esc(lang)}"` : ""}><code>${inner}</code></pre>`);
      continue;
    }
    const head = line.match(/^(#{1,6})\s+(.*)$/);
    const item = line.match(/^\s*([-*+]|\d+[.)])\s+(.*)$/);
    if (head) {
      flushPara();
      closeList();
      const lvl = Math.min(head[1].length + 2, 6); // keep headings small inside a tree node
      out.push(`<h${lvl}>${inlineMd(head[2])}</h${lvl}>`);
    } else if (item) {
      flushPara();
      const kind = /\d/.test(item[1]) ? "ol" : "ul";
      if (list !== kind) {
        closeList();
        out.push(`<${kind}>`);
        list = kind;
      }
      out.push(`<li>${inlineMd(item[2])}</li>`);
    } else if (/^\s*>/.test(line)) {
      flushPara();
      closeList();
      out.push(`<blockquote>${inlineMd(line.replace(/^\s*>\s?/, ""))}</blockquote>`);
    } else if (!line.trim()) {
      flushPara();
      closeList();
    } else {
      if (list) closeList();
      para.push(line);
    }
  }
  flushPara();
  closeList();
  return out.join("");
}

// ---------------------------------------------------------------------------------------------
// HTML from generated code's outputs: parsed inertly, scripts and handlers removed.

const DROP_TAGS = new Set(["SCRIPT", "IFRAME", "OBJECT", "EMBED", "LINK", "META", "STYLE", "BASE", "FORM", "FRAME",
  "FRAMESET", "ANIMATE", "SET", "ANIMATETRANSFORM", "ANIMATEMOTION", "FOREIGNOBJECT", "TEMPLATE"]);
const URL_ATTRS = new Set(["href", "src", "xlink:href", "action", "background", "poster", "lowsrc", "dynsrc"]);

export function sanitizeHtml(html) {
  const doc = new DOMParser().parseFromString(`<body>${html}</body>`, "text/html");
  const walk = (node) => {
    for (const child of [...node.children]) {
      if (DROP_TAGS.has(child.tagName.toUpperCase())) {
        child.remove();
        continue;
      }
      for (const attr of [...child.attributes]) {
        const name = attr.name.toLowerCase();
        // browsers ignore whitespace and control characters inside a URL's scheme
        const value = attr.value.replace(/[\s\u0000-\u001f]+/g, "").toLowerCase();
        if (name.startsWith("on") || name === "srcdoc" || name === "formaction" ||
            (URL_ATTRS.has(name) && /^(javascript|vbscript|data:text\/html)/.test(value))) {
          child.removeAttribute(attr.name);
        }
      }
      walk(child);
    }
  };
  walk(doc.body);
  return doc.body.innerHTML;
}

// ---------------------------------------------------------------------------------------------
// Store: one per widget model, shared by all its views.

// "Message Batch · 120 processing · 380 succeeded · 2 errored" for a batch's request counts.
function batchBadge(b) {
  const c = b.counts || {};
  const parts = ["processing", "succeeded", "errored", "canceled", "expired"]
    .filter((k) => c[k]).map((k) => `${num(c[k])} ${k}`);
  const state = b.done ? (b.error ? "failed" : "ended") : b.status === "canceling" ? "canceling" : "";
  return h("span", { class: `rlm-badge rlm-batch${b.done ? "" : " rlm-batch-live"}`, "data-testid": "rlm-batch-progress",
    title: "Message Batches API: half price, answers within minutes" },
  ["Message Batch", state, ...parts].filter(Boolean).join(" · "));
}

class Store {
  constructor(model) {
    this.model = model;
    this.views = new Set();
    this.ui = { all: null, open: new Map() };
    this.cache = new Map(); // fetched full values
    this.waiting = new Map(); // req id -> resolve
    this.reqN = 0;
    this.lastN = 0;
    this.synced = false;
    this.clear();
    this.onMsg = (msg) => this.receive(msg);
    model.on("msg:custom", this.onMsg);
    this.hello();
  }

  clear() {
    this.runs = new Map();
    this.rootId = null;
    this.state = "starting";
    this.pending = null;
    this.editQueued = null;
    this.notesQueued = [];
    this.tot = { in: 0, out: 0, cached: 0 };
    this.subStarted = 0;
    this.subDone = 0;
    this.finished = null;
    this.budget = null;
    this.skew = 0;
    this.message = null;
    this.exported = null;
    this.logPath = null;
    this.kernelDone = false;
  }

  hello() {
    try {
      this.model.send({ kind: "hello" });
    } catch (_) {
      /* no kernel: the static fallback takes over */
    }
  }

  send(msg) {
    this.model.send(msg);
  }

  fetch(what, params) {
    const key = `${what}|${JSON.stringify(params)}`;
    if (this.cache.has(key)) return Promise.resolve(this.cache.get(key));
    const req = ++this.reqN;
    return new Promise((resolve) => {
      this.waiting.set(req, (value) => {
        this.cache.set(key, value);
        resolve(value);
      });
      this.send({ kind: "fetch", req, what, ...params });
    });
  }

  receive(msg) {
    if (!msg || typeof msg !== "object") return;
    if (typeof msg.now === "number") this.skew = Date.now() / 1000 - msg.now;
    const dirty = new Set();
    switch (msg.kind) {
      case "reset":
        this.clear();
        this.skew = Date.now() / 1000 - msg.now;
        this.synced = true;
        this.lastN = msg.n;
        for (const item of msg.items) this.apply(item, dirty);
        this.kernelDone = !!msg.finished;
        this.logPath = msg.log_path;
        this.exported = msg.exported;
        this.emit(new Set(["all"]));
        return;
      case "batch":
        if (!this.synced || msg.n <= this.lastN) return; // the reset we asked for has (or will have) it
        if (msg.n !== this.lastN + 1) {
          this.synced = false;
          this.hello();
          return;
        }
        this.lastN = msg.n;
        for (const item of msg.items) this.apply(item, dirty);
        break;
      case "finished":
        this.kernelDone = true;
        this.logPath = msg.log_path;
        dirty.add("controls").add("head");
        break;
      case "fetched": {
        const resolve = this.waiting.get(msg.req);
        this.waiting.delete(msg.req);
        if (resolve) resolve(msg.value);
        return;
      }
      case "exported":
        this.exported = msg.path;
        this.message = null;
        dirty.add("controls");
        break;
      case "error":
        this.message = msg.text;
        dirty.add("controls");
        break;
      default:
        return;
    }
    this.emit(dirty);
  }

  emit(dirty) {
    for (const v of this.views) v.update(dirty);
  }

  run(id) {
    id = String(id);
    let r = this.runs.get(id);
    if (!r) {
      r = { id, started: null, parentRun: null, parentSub: null, steps: new Map(), lastStep: 0, finished: null };
      this.runs.set(id, r);
    }
    return r;
  }

  step(run, n) {
    n = Number(n) || 0;
    let s = run.steps.get(n);
    if (!s) {
      s = { run: run.id, n, text: "", turnDone: false, usage: null, latency: null, cells: new Map(), notes: [], loose: [] };
      run.steps.set(n, s);
      if (n > run.lastStep) run.lastStep = n;
    }
    return s;
  }

  forget(run, n) {
    // views drop their nodes for a step that restarts
    for (const v of this.views) v.dropStep(run.id, Number(n));
  }

  runningCell(step) {
    for (const c of step.cells.values()) if (c.running) return c;
    return null;
  }

  apply(it, dirty) {
    const run = it.run_id != null ? this.run(it.run_id) : null;
    if (run && !this.rootId && !it.parent_run_id) {
      this.rootId = run.id; // a resumed run's view may start without run_started
      if (this.state === "starting") this.state = "running";
    }
    const isRoot = run && this.rootId === run.id;
    const stepKey = (n) => `step|${run.id}|${Number(n) || 0}`;
    switch (it.type) {
      case "run_started":
        run.started = it;
        if (it.parent_run_id) {
          run.parentRun = String(it.parent_run_id);
          run.parentSub = String(it.parent_subcall_id);
          dirty.add(`sub|${run.parentRun}|${run.parentSub}`);
        }
        dirty.add("head").add("controls");
        break;
      case "turn_started": {
        const prev = run.lastStep;
        run.steps.delete(Number(it.step)); // a step that runs again starts afresh
        this.step(run, it.step);
        this.forget(run, it.step);
        dirty.add(stepKey(it.step)).add(stepKey(prev)).add("head");
        break;
      }
      case "turn_delta": {
        const s = this.step(run, it.step);
        s.text += it.text;
        dirty.add(stepKey(it.step));
        break;
      }
      case "turn_finished": {
        const s = this.step(run, it.step);
        if (it.text !== undefined) s.text = it.text;
        s.turnDone = true;
        s.usage = it.usage;
        s.latency = it.latency;
        usageAdd(this.tot, it.usage);
        dirty.add(stepKey(it.step)).add("head");
        break;
      }
      case "cell_started": {
        const s = this.step(run, it.step);
        const c = { index: it.index, code: it.code, edited: !!it.edited, original: it.original_code, running: true,
                    outputs: [], subs: new Map(), error: null, duration: null, timedOut: false, count: null };
        s.cells.set(Number(it.index) || 0, c);
        const p = this.pending;
        if (p && String(p.run_id) === run.id && Number(p.step) === Number(it.step) && Number(p.index) === Number(it.index)) {
          this.pending = null;
          this.editQueued = null;
          dirty.add("pending");
        }
        dirty.add(stepKey(it.step));
        break;
      }
      case "cell_finished": {
        const s = this.step(run, it.step);
        let c = s.cells.get(Number(it.index) || 0);
        if (!c) {
          c = { index: it.index, code: "", edited: false, subs: new Map() };
          s.cells.set(Number(it.index) || 0, c);
        }
        Object.assign(c, { running: false, outputs: it.outputs || [], error: it.error, duration: it.duration,
                           timedOut: !!it.timed_out, count: it.execution_count });
        dirty.add(`cell|${run.id}|${s.n}|${c.index}`).add(stepKey(it.step));
        break;
      }
      case "subcall_started": {
        const s = this.step(run, it.step);
        const cell = this.runningCell(s);
        const sub = { id: String(it.id), kind: it.kind, model: it.model, prompt: it.prompt, promptChars: it.prompt_chars,
                      done: false, response: null, usage: null, latency: null, error: null, child: null, t0: it.t,
                      cell: cell ? cell.index : null, step: s.n, run: run.id };
        if (cell) cell.subs.set(sub.id, sub);
        else s.loose.push(sub);
        (run.subIndex ??= new Map()).set(sub.id, sub);
        this.subStarted++;
        dirty.add(cell ? `cell|${run.id}|${s.n}|${cell.index}` : stepKey(s.n)).add("head");
        break;
      }
      case "subcall_finished": {
        let sub = run.subIndex?.get(String(it.id));
        if (!sub) {
          this.apply({ ...it, type: "subcall_started", prompt: "", prompt_chars: 0 }, dirty);
          sub = run.subIndex.get(String(it.id));
        }
        Object.assign(sub, { done: true, response: it.response, responseChars: it.response_chars, usage: it.usage,
                             latency: it.latency, error: it.error || null, child: it.child_run_id || sub.child,
                             cached: Boolean(it.cached),
                             model: it.model || sub.model });
        this.subDone++;
        if (it.kind !== "rlm") usageAdd(this.tot, it.usage);
        dirty.add(`sub|${run.id}|${sub.id}`).add("head");
        if (sub.cell !== null) dirty.add(`cell|${run.id}|${sub.step}|${sub.cell}`);
        break;
      }
      case "batch_created":
      case "batch_progress":
      case "batch_finished": {
        // A Message Batch shows on the cell that sent it, as its request counts.
        const where = ((run.batchCells ??= new Map()).get(String(it.batch))) ??
          { step: Number(it.step) || 0, cell: this.runningCell(this.step(run, it.step))?.index ?? null };
        run.batchCells.set(String(it.batch), where);
        const cell = this.step(run, where.step).cells.get(Number(where.cell));
        if (!cell) break;
        const b = ((cell.batches ??= new Map()).get(String(it.batch))) ?? { status: "in_progress", counts: null };
        if (it.status) b.status = it.status;
        if (it.counts) b.counts = it.counts;
        if (it.type === "batch_created") b.counts = { processing: it.count };
        if (it.type === "batch_finished") b.done = true;
        b.error = it.error || b.error;
        cell.batches.set(String(it.batch), b);
        dirty.add(`cell|${run.id}|${where.step}|${where.cell}`);
        break;
      }
      case "note":
        this.step(run, it.step).notes.push(it.text);
        this.notesQueued = this.notesQueued.filter((n) => n !== it.text);
        dirty.add(stepKey(it.step)).add("controls");
        break;
      case "note_queued":
        this.notesQueued.push(it.text);
        dirty.add("controls");
        break;
      case "state": {
        const terminal = ["done", "stopped", "failed", "budget", "crashed"].includes(it.state);
        if (terminal && !isRoot) break; // a child ending is not the tree ending
        if (!this.finished) this.state = it.state;
        if (it.state !== "paused") this.pending = null;
        dirty.add("head").add("controls").add("pending");
        break;
      }
      case "pending":
        this.pending = it;
        this.editQueued = null;
        dirty.add("pending").add("controls");
        break;
      case "edit_queued":
        this.editQueued = it;
        dirty.add("pending");
        break;
      case "run_resumed":
        run.finished = null;
        if (run.id === this.rootId) {
          this.finished = null;
          this.state = "running";
          this.kernelDone = false;
        }
        dirty.add("all");
        break;
      case "budget_hit":
        this.budget = it;
        dirty.add("head");
        break;
      case "run_finished":
        run.finished = it;
        dirty.add(stepKey(run.lastStep));
        if (isRoot) {
          this.finished = it;
          this.state = it.status;
          this.pending = null;
          if (it.usage && Object.keys(it.usage).length) {
            this.tot = { in: 0, out: 0, cached: 0 };
            for (const u of Object.values(it.usage)) usageAdd(this.tot, u);
          }
          dirty.add("head").add("controls").add("answer").add("pending");
        } else if (run.parentRun) {
          dirty.add(`sub|${run.parentRun}|${run.parentSub}`);
        }
        break;
      default:
        break;
    }
  }

  // open/closed: a person's choice wins, then expand/collapse-all, then "the current step is open".
  isOpen(key, fallback) {
    if (this.ui.open.has(key)) return this.ui.open.get(key);
    if (this.ui.all) return this.ui.all === "open";
    return fallback;
  }

  stepOpen(run, s) {
    const current = !run.finished && s.n === run.lastStep;
    const pendingHere = this.pending && String(this.pending.run_id) === run.id && Number(this.pending.step) === s.n;
    return this.isOpen(`step|${run.id}|${s.n}`, current || !!pendingHere);
  }

  // expand/collapse-all and "open while its child runs" apply to rlm_query rows only
  subOpen(sub) {
    const key = `sub|${sub.run}|${sub.id}`;
    if (sub.kind !== "rlm") return this.ui.open.get(key) ?? false;
    return this.isOpen(key, !this.childFinished(sub));
  }

  childFinished(sub) {
    const child = this.childOf(sub);
    return sub.done || (child && child.finished);
  }

  childOf(sub) {
    if (sub.child && this.runs.has(String(sub.child))) return this.runs.get(String(sub.child));
    for (const r of this.runs.values()) if (r.parentRun === sub.run && r.parentSub === sub.id) return r;
    return null;
  }
}

function storeFor(model) {
  const key = model.get("key") || "default";
  let store = STORES.get(key);
  if (!store) {
    store = new Store(model);
    STORES.set(key, store);
  }
  return store;
}

// ---------------------------------------------------------------------------------------------
// View: one per displayed output of the model.

class View {
  constructor(store, model, el) {
    this.store = store;
    this.model = model;
    this.el = el;
    this.steps = new Map(); // key -> {root, head, body, built}
    this.cells = new Map();
    this.subs = new Map();
    this.build();
    store.views.add(this);
    this.renderAll();
    this.timer = setInterval(() => this.tick(), 1000);
  }

  dispose() {
    clearInterval(this.timer);
    clearTimeout(this.staticTimer);
    this.store.views.delete(this);
  }

  build() {
    const btn = (id, label, action, title) =>
      h("button", { class: "rlm-btn", "data-testid": id, title, onclick: action }, label);
    this.statusEl = h("span", { class: "rlm-status", "data-testid": "rlm-status" }, "starting");
    this.metaEl = h("span", { class: "rlm-meta" });
    this.questionEl = h("div", { class: "rlm-question" });
    this.pauseBtn = btn("rlm-pause", "Pause", () => this.control("pause"), "Pause at the next step boundary");
    this.resumeBtn = btn("rlm-resume", "Resume", () => this.control("resume"), "Carry on");
    this.stepBtn = btn("rlm-step", "Step", () => this.control("step"), "Run one more step, then pause");
    this.stopBtn = btn("rlm-stop", "Stop", () => this.control("stop"), "End now with the best partial answer");
    this.noteBtn = btn("rlm-note", "Note", () => this.toggleNote(), "Write a note the model reads next turn");
    this.exportBtn = btn("rlm-export", "Export", () => this.exportRun(), "Write the run as a notebook");
    this.expandBtn = btn("rlm-expand-all", "Expand all", () => this.expandAll("open"));
    this.collapseBtn = btn("rlm-collapse-all", "Collapse all", () => this.expandAll("closed"));
    this.msgEl = h("span", { class: "rlm-msg", "data-testid": "rlm-message" });
    this.exportPathEl = h("span", { class: "rlm-export-path", "data-testid": "rlm-export-path" });
    this.editor = h("textarea", { class: "rlm-editor", "data-testid": "rlm-cell-editor", spellcheck: "false", rows: 6 });
    this.editor.addEventListener("keydown", (e) => {
      if (e.key === "Tab") {
        e.preventDefault();
        this.editor.setRangeText("    ", this.editor.selectionStart, this.editor.selectionEnd, "end");
      }
      e.stopPropagation(); // keep JupyterLab's command shortcuts out of the editor
    });
    this.applyBtn = btn("rlm-apply-edit", "Apply edit", () => this.applyEdit(), "Run this code instead");
    this.pendingTitle = h("div", { class: "rlm-pending-title" });
    this.pendingEl = h("div", { class: "rlm-pending", hidden: true }, this.pendingTitle, this.editor,
      h("div", { class: "rlm-row" }, this.applyBtn,
        h("span", { class: "rlm-hint" }, "Resume or Step runs the code above; the model is told it was edited.")));
    this.noteInput = h("textarea", { class: "rlm-note-input", "data-testid": "rlm-note-input", rows: 2,
      placeholder: "A note for the model's next turn" });
    this.noteInput.addEventListener("keydown", (e) => e.stopPropagation());
    this.noteQueuedEl = h("div", { class: "rlm-hint" });
    this.noteEl = h("div", { class: "rlm-notebox", hidden: true }, this.noteInput,
      h("div", { class: "rlm-row" }, btn("rlm-note-send", "Send note", () => this.sendNote()), this.noteQueuedEl));
    this.treeEl = h("div", { class: "rlm-tree" });
    this.answerEl = h("div", { class: "rlm-answer", "data-testid": "rlm-answer", hidden: true });
    this.staticEl = h("div", { class: "rlm-static-box", hidden: true });
    this.rootEl = h("div", { class: "rlm", "data-testid": "rlm-run" },
      h("div", { class: "rlm-head" },
        h("div", { class: "rlm-title" }, h("span", { class: "rlm-logo" }, "RLM"), this.statusEl, this.metaEl),
        this.questionEl,
        h("div", { class: "rlm-controls" }, this.pauseBtn, this.resumeBtn, this.stepBtn, this.stopBtn, this.noteBtn,
          this.exportBtn, h("span", { class: "rlm-sep" }), this.expandBtn, this.collapseBtn, this.msgEl,
          this.exportPathEl),
        this.pendingEl, this.noteEl),
      this.treeEl, this.answerEl, this.staticEl);
    fill(this.el, this.rootEl);
  }

  // --- controls --------------------------------------------------------------------------------
  control(action) {
    const s = this.store;
    if ((action === "resume" || action === "step") && s.pending && this.editorDirty()) this.applyEdit();
    s.send({ kind: "control", action });
    // say so at once; the run's own state event confirms it
    const optimistic = { pause: "pausing", stop: "stopping", resume: "running", step: "running" }[action];
    if (optimistic && !s.finished) {
      s.state = optimistic;
      this.store.emit(new Set(["head", "controls"]));
    }
  }

  editorDirty() {
    const s = this.store;
    const base = s.editQueued ? s.editQueued.code : s.pending?.code;
    return this.editor.value !== base;
  }

  applyEdit() {
    if (!this.store.pending) return;
    this.store.send({ kind: "edit", code: this.editor.value });
  }

  toggleNote() {
    this.noteEl.hidden = !this.noteEl.hidden;
    if (!this.noteEl.hidden) this.noteInput.focus();
  }

  sendNote() {
    const text = this.noteInput.value.trim();
    if (!text) return;
    this.store.send({ kind: "note", text });
    this.noteInput.value = "";
  }

  exportRun() {
    this.store.message = "exporting…";
    this.store.send({ kind: "export" });
    this.renderControls();
  }

  expandAll(mode) {
    this.store.ui.all = mode;
    this.store.ui.open.clear();
    this.store.emit(new Set(["all"]));
  }

  toggle(key, isOpenNow) {
    this.store.ui.open.set(key, !isOpenNow);
    this.store.emit(new Set([key]));
  }

  // --- updates ---------------------------------------------------------------------------------
  update(dirty) {
    if (dirty.has("all")) return this.renderAll();
    for (const key of dirty) {
      const [kind, a, b, c] = key.split("|");
      if (kind === "head") this.renderHead();
      else if (kind === "controls") this.renderControls();
      else if (kind === "pending") this.renderPending();
      else if (kind === "answer") this.renderAnswer();
      else if (kind === "step") this.renderStep(a, Number(b));
      else if (kind === "cell") this.renderCell(a, Number(b), Number(c));
      else if (kind === "sub") this.renderSub(a, b);
    }
  }

  dropStep(runId, n) {
    const v = this.steps.get(`step|${runId}|${n}`);
    if (v) v.root.remove();
    this.steps.delete(`step|${runId}|${n}`);
    for (const key of [...this.cells.keys()]) if (key.startsWith(`cell|${runId}|${n}|`)) this.cells.delete(key);
  }

  renderAll() {
    const s = this.store;
    this.steps.clear();
    this.cells.clear();
    this.subs.clear();
    fill(this.treeEl);
    if (!s.synced) this.waitForKernel();
    else this.staticEl.hidden = true;
    this.renderHead();
    this.renderControls();
    this.renderPending();
    const root = s.rootId && s.runs.get(s.rootId);
    if (root) this.renderRunInto(root, this.treeEl);
    this.renderAnswer();
  }

  waitForKernel() {
    clearTimeout(this.staticTimer);
    this.staticTimer = setTimeout(() => {
      const html = this.model.get("static_html");
      if (this.store.synced || !html) return;
      this.staticEl.innerHTML = html; // our own renderer's output: escaped throughout
      this.staticEl.prepend(h("div", { class: "rlm-hint" }, "No kernel is attached: this is the saved record of the run."));
      this.staticEl.hidden = false;
      this.treeEl.hidden = true;
    }, STATIC_WAIT_MS);
  }

  tick() {
    const s = this.store;
    if (s.synced && !s.finished && s.rootId) this.renderHead();
  }

  renderHead() {
    const s = this.store;
    const header = this.model.get("header") || {};
    const root = s.rootId ? s.runs.get(s.rootId) : null;
    const st = root?.started || {};
    const q = st.question ?? header.question ?? "";
    if (this.questionEl.textContent !== q) this.questionEl.textContent = q;
    const label = { pausing: "pausing…", stopping: "stopping…" }[s.state] || s.state;
    this.statusEl.textContent = label;
    this.statusEl.dataset.state = s.state;
    const max = st.options?.max_iterations ?? header.max_iterations;
    const models = [st.model || header.model, st.sub_model || header.sub_model].filter(Boolean).join(" → ");
    const bits = [];
    if (models) bits.push(models);
    if (root) bits.push(`step ${root.lastStep}${max ? ` of ${max}` : ""}`);
    bits.push(`${num(s.subStarted)} sub-call${s.subStarted === 1 ? "" : "s"}` +
      (s.subStarted > s.subDone ? ` (${num(s.subStarted - s.subDone)} running)` : ""));
    bits.push(`tokens ${num(s.tot.in)} in · ${num(s.tot.out)} out · ${num(s.tot.cached)} cached`);
    if (s.finished && s.finished.cost !== null && s.finished.cost !== undefined) bits.push(`$${Number(s.finished.cost).toFixed(4)}`);
    let elapsed = null;
    if (s.finished && s.finished.elapsed !== undefined) elapsed = s.finished.elapsed;
    else if (st.t) elapsed = Math.max(0, Date.now() / 1000 - s.skew - st.t);
    if (elapsed !== null) bits.push(secs(elapsed));
    if (s.budget) bits.push(`budget hit: ${s.budget.kind}`);
    this.metaEl.textContent = bits.join(" · ");
  }

  renderControls() {
    const s = this.store;
    const over = !!s.finished || s.kernelDone || ["stopped", "done", "failed", "budget", "crashed"].includes(s.state);
    const live = s.synced && !over;
    this.pauseBtn.disabled = !live || ["paused", "pausing", "stopping"].includes(s.state);
    this.pauseBtn.textContent = s.state === "pausing" ? "pausing…" : "Pause";
    this.resumeBtn.disabled = !live || !["paused", "pausing"].includes(s.state);
    this.stepBtn.disabled = !live || s.state === "stopping";
    this.stopBtn.disabled = !live || s.state === "stopping";
    this.noteBtn.disabled = !live;
    this.exportBtn.disabled = !s.synced || !s.rootId;
    if (!live) this.noteEl.hidden = true;
    this.noteQueuedEl.textContent = s.notesQueued.length
      ? `Queued for the next turn: ${s.notesQueued.map((n) => `“${n}”`).join(", ")}` : "";
    this.msgEl.textContent = s.message || "";
    this.exportPathEl.textContent = s.exported ? `Exported to ${s.exported}` : "";
  }

  renderPending() {
    const s = this.store;
    const p = s.state === "paused" ? s.pending : null;
    this.pendingEl.hidden = !p;
    if (!p) {
      this.pendingKey = null;
      return;
    }
    const key = `${p.run_id}|${p.step}|${p.index}`;
    const child = s.rootId && String(p.run_id) !== s.rootId ? " of a child run" : "";
    this.pendingTitle.textContent = `Paused before cell ${p.index} of step ${p.step}${child}` +
      (s.editQueued ? " — edit applied" : " — edit it before it runs");
    if (this.pendingKey !== key) {
      this.editor.value = s.editQueued ? s.editQueued.code : p.code;
      this.editor.rows = Math.min(20, Math.max(4, p.code.split("\n").length + 1));
      this.pendingKey = key;
    }
    this.pendingEl.classList.toggle("rlm-applied", !!s.editQueued);
  }

  renderAnswer() {
    const fin = this.store.finished;
    this.answerEl.hidden = !fin;
    if (!fin) return;
    const reason = fin.reason ? ` (${fin.reason})` : "";
    this.answerEl.dataset.status = fin.status;
    fill(this.answerEl,
      h("div", { class: "rlm-answer-title" }, `Answer · ${fin.status}${reason}`),
      (() => {
        const d = h("div", { class: "rlm-md" });
        d.innerHTML = markdownToHtml(fin.answer || "");
        return d;
      })(),
    );
  }

  // --- runs and steps --------------------------------------------------------------------------
  renderRunInto(run, container) {
    const steps = [...run.steps.keys()].sort((a, b) => a - b);
    for (const n of steps) container.append(this.stepEl(run, run.steps.get(n)).root);
  }

  runContainer(runId) {
    const s = this.store;
    if (runId === s.rootId) return this.treeEl;
    const run = s.runs.get(runId);
    if (!run || !run.parentRun) return null;
    const sub = this.subs.get(`sub|${run.parentRun}|${run.parentSub}`);
    return sub && sub.built ? sub.childBox : null;
  }

  stepEl(run, st) {
    const key = `step|${run.id}|${st.n}`;
    let v = this.steps.get(key);
    if (!v) {
      const head = h("div", { class: "rlm-step-head", role: "button", tabindex: 0 });
      const body = h("div", { class: "rlm-step-body" });
      const root = h("div", { class: "rlm-step", "data-testid": "rlm-step-node", "data-run": run.id, "data-step": st.n },
        head, body);
      v = { root, head, body, built: false };
      head.addEventListener("click", () => this.toggle(key, this.store.stepOpen(run, st)));
      head.addEventListener("keydown", clickOnEnter);
      this.steps.set(key, v);
    }
    this.fillStep(run, st, v);
    return v;
  }

  renderStep(runId, n) {
    const s = this.store;
    const run = s.runs.get(runId);
    const st = run?.steps.get(n);
    if (!st) return;
    const key = `step|${runId}|${n}`;
    if (this.steps.has(key)) return this.fillStep(run, st, this.steps.get(key));
    const container = this.runContainer(runId);
    if (!container) return;
    const v = this.stepEl(run, st);
    // keep steps in order even if events arrive late
    const after = [...container.children].find((c) => c.dataset.run === runId && Number(c.dataset.step) > n);
    container.insertBefore(v.root, after || null);
  }

  fillStep(run, st, v) {
    const s = this.store;
    const open = s.stepOpen(run, st);
    const cells = st.cells.size;
    let subs = st.loose.length;
    for (const c of st.cells.values()) subs += c.subs.size;
    const live = !run.finished && st.n === run.lastStep;
    const bits = [`Step ${st.n}`];
    if (cells) bits.push(`${cells} cell${cells === 1 ? "" : "s"}`);
    if (subs) bits.push(`${num(subs)} sub-call${subs === 1 ? "" : "s"}`);
    if (st.latency) bits.push(secs(st.latency));
    const edited = [...st.cells.values()].some((c) => c.edited);
    const failed = [...st.cells.values()].some((c) => c.error);
    fill(v.head,
      h("span", { class: "rlm-caret" }, open ? "▾" : "▸"),
      h("span", { class: "rlm-step-title" }, bits.join(" · ")),
      edited ? h("span", { class: "rlm-badge rlm-badge-edit" }, "edited") : null,
      failed ? h("span", { class: "rlm-badge rlm-badge-err" }, "error") : null,
      live && s.state === "running" ? h("span", { class: "rlm-spinner", title: "running" }) : null,
      !open && st.text ? h("span", { class: "rlm-step-peek" }, peek(st.text)) : null,
    );
    v.root.classList.toggle("rlm-open", open);
    v.root.classList.toggle("rlm-live", live);
    v.body.hidden = !open;
    if (!open) {
      v.built = false; // rebuild on open; closed steps cost nothing while the run goes on
      fill(v.body);
      return;
    }
    if (!v.built) {
      v.md = h("div", { class: "rlm-md rlm-turn" });
      v.notes = h("div", { class: "rlm-notes" });
      v.cellsEl = h("div", { class: "rlm-cells" });
      v.looseEl = h("div", { class: "rlm-loose" });
      fill(v.body, v.md, v.cellsEl, v.looseEl, v.notes); // notes go into the next turn: last
      v.built = true;
      v.mdText = null;
    }
    const chips = st.turnDone && st.cells.size > 0;
    if (v.mdText !== st.text || v.mdChips !== chips) {
      v.mdChips = chips;
      v.md.innerHTML = st.text ? markdownToHtml(st.text, { chips })
        : '<span class="rlm-hint">waiting for the model…</span>';
      if (!st.turnDone && st.text) v.md.append(h("span", { class: "rlm-cursor" }));
      v.mdText = st.text;
    }
    fill(v.notes, ...st.notes.map((t) => h("div", { class: "rlm-note" }, h("b", {}, "Note to the model: "), t)));
    const order = [...st.cells.keys()].sort((a, b) => a - b);
    for (const i of order) {
      const cv = this.cellEl(run, st, st.cells.get(i));
      if (cv.root.parentNode !== v.cellsEl) v.cellsEl.append(cv.root);
    }
    if (st.loose.length) this.fillSubList(v, st.loose, `loose|${run.id}|${st.n}`, v.looseEl);
  }

  // --- cells -----------------------------------------------------------------------------------
  cellEl(run, st, cell) {
    const key = `cell|${run.id}|${st.n}|${cell.index}`;
    let v = this.cells.get(key);
    if (!v) {
      v = { root: h("div", { class: "rlm-cell" }), key };
      this.cells.set(key, v);
      v.dirty = true;
    }
    this.fillCell(run, st, cell, v);
    return v;
  }

  renderCell(runId, n, i) {
    const key = `cell|${runId}|${n}|${i}`;
    const run = this.store.runs.get(runId);
    const st = run?.steps.get(n);
    const cell = st?.cells.get(i);
    const v = this.cells.get(key);
    if (!cell || !v || !this.el.contains(v.root)) return this.renderStep(runId, n);
    this.fillCell(run, st, cell, v);
  }

  fillCell(run, st, cell, v) {
    if (v.code !== cell.code || v.edited !== cell.edited) {
      const code = h("pre", { class: "rlm-code", "data-testid": "rlm-cell-code" }, h("code"));
      code.firstChild.innerHTML = highlightPython(cell.code || "");
      v.head = h("div", { class: "rlm-cell-head" });
      v.codeEl = code;
      v.orig = null;
      if (cell.edited && cell.original != null) {
        v.orig = h("pre", { class: "rlm-code rlm-code-orig", hidden: true }, h("code"));
        v.orig.firstChild.innerHTML = highlightPython(cell.original);
      }
      v.subsEl = h("div", { class: "rlm-subs" });
      v.outEl = h("div", { class: "rlm-outputs" });
      fill(v.root, v.head, v.codeEl, v.orig, v.subsEl, v.outEl);
      v.code = cell.code;
      v.edited = cell.edited;
      v.outputs = null;
    }
    v.root.classList.toggle("rlm-cell-edited", !!cell.edited);
    const bits = [h("span", { class: "rlm-cell-label" }, `Cell ${cell.index}`)];
    if (cell.count) bits.push(h("span", { class: "rlm-hint" }, `[${cell.count}]`));
    if (cell.edited) {
      bits.push(h("button", { class: "rlm-badge rlm-badge-edit", title: "Show the code the model wrote",
        onclick: () => { if (v.orig) v.orig.hidden = !v.orig.hidden; } }, "edited by you"));
    }
    if (cell.running) bits.push(h("span", { class: "rlm-spinner", title: "running" }));
    if (cell.duration !== null && cell.duration !== undefined) bits.push(h("span", { class: "rlm-hint" }, secs(cell.duration)));
    if (cell.timedOut) bits.push(h("span", { class: "rlm-badge rlm-badge-err" }, "timed out"));
    else if (cell.error) bits.push(h("span", { class: "rlm-badge rlm-badge-err" }, cell.error.ename || "error"));
    for (const b of cell.batches?.values() ?? []) bits.push(batchBadge(b));
    fill(v.head, ...bits);
    if (cell.subs.size) this.fillSubList(v, [...cell.subs.values()], v.key, v.subsEl);
    if (v.outputs !== cell.outputs) {
      fill(v.outEl, ...(cell.outputs || []).map((o, k) => this.outputEl(o, { run_id: run.id, step: st.n, index: cell.index, n: k })));
      v.outputs = cell.outputs;
    }
  }

  outputEl(out, ref) {
    const box = h("div", { class: "rlm-output" });
    const draw = (o) => {
      fill(box, renderOutput(o));
      if (o.cut) {
        box.append(h("button", { class: "rlm-link", "data-testid": "rlm-show-all",
          onclick: () => this.store.fetch("output", ref).then((full) => full && draw(full)) },
          `show all (${num(o.cut)} characters)`));
      }
    };
    draw(out);
    return box;
  }

  // --- sub-calls -------------------------------------------------------------------------------
  fillSubList(owner, list, key, container) {
    const s = this.store;
    const done = list.filter((x) => x.done).length;
    const errors = list.filter((x) => x.error).length;
    const hasLiveChild = list.some((x) => x.kind === "rlm" && !s.childFinished(x));
    const gkey = `group|${key}`;
    const open = s.ui.open.has(gkey) ? s.ui.open.get(gkey) : list.length <= MAX_ROWS_OPEN || hasLiveChild;
    let g = owner.group;
    if (!g || g.container !== container) {
      g = owner.group = { container, head: h("div", { class: "rlm-group-head", role: "button" }), list: h("div", { class: "rlm-sublist" }) };
      g.head.addEventListener("click", () => {
        const now = s.ui.open.has(gkey) ? s.ui.open.get(gkey) : g.open;
        s.ui.open.set(gkey, !now);
        s.emit(new Set([key.startsWith("loose") ? `step|${key.split("|")[1]}|${key.split("|")[2]}` : key]));
      });
      fill(container, g.head, g.list);
    }
    g.open = open;
    const running = list.length - done;
    g.head.textContent = `${open ? "▾" : "▸"} ${num(list.length)} sub-call${list.length === 1 ? "" : "s"}` +
      (running ? ` · ${num(running)} running` : "") + (errors ? ` · ${num(errors)} failed` : "");
    g.list.hidden = !open;
    if (!open) {
      fill(g.list);
      return;
    }
    for (const sub of list) {
      // rows already shown are kept up to date by their own `sub|…` updates
      const known = this.subs.get(`sub|${sub.run}|${sub.id}`);
      if (known && known.root.parentNode === g.list) continue;
      g.list.append(this.subEl(sub).root);
    }
  }

  subEl(sub) {
    const key = `sub|${sub.run}|${sub.id}`;
    let v = this.subs.get(key);
    if (!v) {
      const head = h("div", { class: "rlm-sub-head", role: "button", tabindex: 0 });
      const body = h("div", { class: "rlm-sub-body" });
      v = { root: h("div", { class: "rlm-sub", "data-testid": "rlm-subcall", "data-kind": sub.kind }, head, body), head, body, built: false };
      head.addEventListener("click", () => this.toggle(key, this.store.subOpen(sub)));
      head.addEventListener("keydown", clickOnEnter);
      this.subs.set(key, v);
    }
    this.fillSub(sub, v);
    return v;
  }

  renderSub(runId, id) {
    const run = this.store.runs.get(runId);
    const sub = run?.subIndex?.get(id);
    const v = this.subs.get(`sub|${runId}|${id}`);
    if (sub && v && this.el.contains(v.root)) this.fillSub(sub, v);
  }

  fillSub(sub, v) {
    const s = this.store;
    const open = s.subOpen(sub);
    const used = sub.usage && (Number(sub.usage.input_tokens) || Number(sub.usage.output_tokens));
    const tok = used ? `${num(sub.usage.input_tokens)} → ${num(sub.usage.output_tokens)} tok` : "";
    const state = sub.error ? h("span", { class: "rlm-badge rlm-badge-err" }, "error")
      : sub.done ? h("span", { class: "rlm-ok" }, "✓") : h("span", { class: "rlm-spinner" });
    fill(v.head,
      h("span", { class: "rlm-caret" }, open ? "▾" : "▸"),
      h("span", { class: "rlm-kind" }, sub.kind === "rlm" ? "rlm_query" : "llm_query"),
      h("span", { class: "rlm-hint" }, sub.model || ""),
      state,
      sub.latency != null ? h("span", { class: "rlm-hint" }, secs(sub.latency)) : null,
      tok ? h("span", { class: "rlm-hint" }, tok) : null,
      sub.cached ? h("span", { class: "rlm-hint", title: "answered by an identical earlier sub-call" }, "memo") : null,
      h("span", { class: "rlm-preview" }, (sub.prompt || "").replace(/\s+/g, " ").slice(0, 140)),
    );
    v.root.classList.toggle("rlm-open", open);
    v.body.hidden = !open;
    if (!open) {
      v.built = false;
      v.childRun = null; // its steps are re-attached when the box opens again
      v.childAnswer = null;
      fill(v.body);
      return;
    }
    if (!v.built) {
      v.promptEl = h("pre", { class: "rlm-text" });
      v.responseEl = h("div");
      v.childBox = h("div", { class: "rlm-child" });
      fill(v.body, h("div", { class: "rlm-label" }, "Prompt"), v.promptEl, v.responseEl, v.childBox);
      v.built = true;
      v.promptEl.textContent = sub.prompt || "";
      if (sub.promptChars > (sub.prompt || "").length) {
        v.promptEl.append(h("span", { class: "rlm-hint" }, " … loading the full prompt"));
        s.fetch("prompt", { run_id: sub.run, id: sub.id }).then((full) => {
          if (full != null) v.promptEl.textContent = full;
        });
      }
      v.respShown = undefined;
    }
    const respKey = `${sub.done}|${sub.error}|${sub.response}`;
    if (v.respShown !== respKey) {
      v.respShown = respKey;
      if (sub.error) fill(v.responseEl, h("div", { class: "rlm-label" }, "Error"), h("pre", { class: "rlm-text rlm-err" }, sub.error));
      else if (sub.done) {
        const pre = h("pre", { class: "rlm-text" }, sub.response || "");
        const parts = [h("div", { class: "rlm-label" }, "Response"), pre];
        if (sub.responseChars > (sub.response || "").length) {
          parts.push(h("button", { class: "rlm-link", onclick: (e) => {
            e.target.remove();
            s.fetch("response", { run_id: sub.run, id: sub.id }).then((full) => { if (full != null) pre.textContent = full; });
          } }, `show all (${num(sub.responseChars)} characters)`));
        }
        fill(v.responseEl, ...parts);
      } else fill(v.responseEl, h("div", { class: "rlm-hint" }, "waiting for the response…"));
    }
    const child = s.childOf(sub);
    if (child) {
      if (!v.childRun) {
        v.childRun = child.id;
        fill(v.childBox, h("div", { class: "rlm-label" }, `Child run (depth ${child.started?.depth ?? "?"})`));
        this.renderRunInto(child, v.childBox);
      } else {
        // steps created while the box was closed
        for (const n of child.steps.keys()) this.renderStep(child.id, n);
      }
      if (child.finished && !v.childAnswer) {
        v.childAnswer = h("div", { class: "rlm-child-answer" }, h("b", {}, `Child answer (${child.finished.status}): `),
          String(child.finished.answer || "").slice(0, 2000));
        v.childBox.append(v.childAnswer);
      }
    }
  }
}

export function renderOutput(o) {
  const kind = o.output_type;
  if (kind === "stream") {
    const pre = h("pre", { class: `rlm-stream${o.name === "stderr" ? " rlm-stderr" : ""}` });
    pre.innerHTML = ansiToHtml(textOf(o.text));
    return pre;
  }
  if (kind === "error") {
    const pre = h("pre", { class: "rlm-stream rlm-err" });
    const tb = (o.traceback || []).join("\n");
    pre.innerHTML = ansiToHtml(tb || `${o.ename}: ${o.evalue}`);
    return pre;
  }
  const data = o.data || {};
  for (const mime of ["image/png", "image/jpeg", "image/gif", "image/webp"]) {
    if (data[mime]) return h("img", { class: "rlm-img", alt: "output", src: `data:${mime};base64,${textOf(data[mime]).trim()}` });
  }
  if (data["image/svg+xml"]) {
    const svg = textOf(data["image/svg+xml"]);
    return h("img", { class: "rlm-img", alt: "output", src: `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}` });
  }
  if (data["text/html"]) {
    const div = h("div", { class: "rlm-html" });
    div.innerHTML = sanitizeHtml(textOf(data["text/html"]));
    return div;
  }
  if (data["text/markdown"]) {
    const div = h("div", { class: "rlm-md" });
    div.innerHTML = markdownToHtml(textOf(data["text/markdown"]));
    return div;
  }
  const pre = h("pre", { class: "rlm-stream" });
  pre.innerHTML = ansiToHtml(textOf(data["text/plain"] ?? ""));
  return pre;
}

// ---------------------------------------------------------------------------------------------

export default {
  initialize({ model }) {
    const store = storeFor(model);
    return () => {
      model.off("msg:custom", store.onMsg);
      STORES.delete(model.get("key") || "default");
    };
  },
  render({ model, el }) {
    const view = new View(storeFor(model), model, el);
    const onStatic = () => view.store.synced || view.waitForKernel();
    model.on("change:static_html", onStatic);
    return () => {
      model.off("change:static_html", onStatic);
      view.dispose();
    };
  },
};
