"""Export a recorded run as a notebook that reads like the analysis and replays without a model.

The notebook is built from the run record alone (the JSONL log and the context snapshot next to
it), never from a live kernel or widget, so it works for runs that finished, stopped, failed, or
whose process died mid-step. Its first code cell, `%rlm replay NAME.rlm.jsonl`, makes the sub-call
helpers answer from a recording written next to the notebook (recording.py), so the notebook and
the files its title names replay wherever they are copied; the root steps' code cells then run top
to bottom and give the recorded outputs again. Child runs (rlm_query) are shown as nested Markdown
sections: in the replay their answers come from the recording, so their code is read, not run."""

from __future__ import annotations

import base64
import filecmp
import os
import re
import shlex
import time
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from .. import __version__
from ..engine.followup import earlier_logs, missing_log
from ..engine.parser import strip_code_blocks
from ..engine.protocol.recognize import read_reply
from ..engine.record import RunLog
from ..engine.redaction import Redactor
from ..engine.runsummary import RunSummary, summarize
from ..engine.runtree import BudgetHit, Cell, Note, Resumed, RunNode, Step, SubCall, build_tree
from ..engine.snapshot import context_snapshot_path
from ..engine.text import is_binary, outputs_to_text
from . import markdown as md
from .outputs import OutputCleaner, base64_payload, cut
from .recording import recording_path, write_recording
from .sidecar import ContextCell, context_cell, context_cell_from_snapshot, missing_context_cell
from .timeline import LEGEND, timeline_svg

KERNELSPEC = {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}
#: Sub-calls listed one by one in a cell's summary; the rest are counted (all are in metadata).
SUMMARY_ITEMS = 5
#: Characters of each prompt / response kept in cell metadata; the full text is in the run log.
SUBCALL_TEXT_CHARS = 2_000


def notebook_name(question: str, started: float | None) -> str:
    """A file name people can tell apart in a folder of exports: the question's first words and the
    start time, e.g. `how-many-tickets-mention-billing-2026-12-01-152835.ipynb`."""
    words = re.findall(r"[a-z0-9]+", question.lower())
    slug = ""
    for w in words:
        if len(slug) + len(w) + 1 > 48:
            break
        slug = f"{slug}-{w}" if slug else w
    stamp = time.strftime("%Y-%m-%d-%H%M%S", time.localtime(started)) if started else "undated"
    return f"{slug or 'rlm-run'}-{stamp}.ipynb"


def export_run(log: RunLog | str | Path, out_path: str | Path, *, run_id: str | None = None,
               max_output_chars: int = 100_000, inline_context_chars: int = 20_000, trust: bool = False) -> Path:
    """Write run `run_id` (default: the log's root run) of `log` as a notebook at `out_path`.

    `out_path` may be a directory (the notebook is named after the question and the time the run
    started, see `notebook_name`) or a file name (".ipynb" is added when missing). Outputs longer
    than `max_output_chars` are cut with a note; a context longer than `inline_context_chars` goes
    to a sidecar file next to the notebook. Keys are
    redacted everywhere except inside the context itself (the user's data, needed for replay).
    A context saved as a pickle by another process is copied, never loaded, unless `trust` (loading a
    pickle runs its code); the notebook's context cell then asks its reader for the same opt-in.
    A follow-up's notebook holds the earlier questions first, each as a section, read from their logs
    next to this one (a missing one is named in its section), so Run All makes the variables the
    follow-up's code uses. Returns the notebook's path."""
    run_log = log if isinstance(log, RunLog) else RunLog.read(log)
    node = build_tree(run_log, run_id)
    earlier = earlier_logs(run_log) if run_id in (None, run_log.root_run_id) else []
    out = Path(out_path)
    if out.is_dir():
        out = out / notebook_name(node.question, node.started.get("t"))
    elif out.suffix != ".ipynb":
        out = out.with_name(out.name + ".ipynb")
    out.parent.mkdir(parents=True, exist_ok=True)
    builder = _Builder(run_log, node, out, max_output_chars, inline_context_chars, trust, earlier)
    nb = builder.build()
    nbformat.validate(nb)
    write_recording([*(found for _, found in earlier if found is not None), run_log], out, builder.redactor)
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text(nbformat.writes(nb), encoding="utf-8")
    tmp.replace(out)
    return out


class _TextBudget:
    """Characters of sub-call text one cell's metadata may still hold: each text is cut to
    SUBCALL_TEXT_CHARS, and a cell with thousands of sub-calls stops at max_output_chars in all."""

    def __init__(self, total: int) -> None:
        self.left = total

    def take(self, text: str | None) -> str | None:
        limit = min(SUBCALL_TEXT_CHARS, self.left)
        if text is None or limit <= 0:
            return None
        self.left -= min(len(text), limit)
        return cut(text, limit)


def _relative(path: Path, start: Path) -> str:
    try:
        return Path(os.path.relpath(path.resolve(), start.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return path.resolve().as_posix()


class _Builder:
    def __init__(self, log: RunLog, node: RunNode, out: Path, max_chars: int, inline_chars: int,
                 trust: bool = False, earlier: list[tuple[dict[str, Any], RunLog | None]] | None = None) -> None:
        self.log, self.node, self.out = log, node, out
        #: A follow-up's earlier questions with their logs (None: not found), oldest first.
        self.earlier = earlier or []
        self.missing = [missing_log(q, log) for q, found in self.earlier if found is None]
        self.max_chars, self.inline_chars, self.trust = max_chars, inline_chars, trust
        self.redactor = Redactor()
        self.cleaner = OutputCleaner(self.redactor, max_chars)
        self.cells: list[NotebookNode] = []
        self.summary: RunSummary = summarize(node)
        #: The person's name for the input (`%%rlm --context df`); generated code always says `context`.
        self.alias = node.started.get("bind_name")

    # --- cells --------------------------------------------------------------------------------
    def markdown(self, text: str, *, meta: dict[str, Any] | None = None,
                 attachments: dict[str, Any] | None = None) -> None:
        cell = new_markdown_cell(self.redactor.text(text), metadata={"rlm": self.redactor.deep(meta)} if meta else {})
        if attachments:
            cell["attachments"] = attachments
        self.cells.append(cell)

    def build(self) -> NotebookNode:
        self.ctx = self.context_cell()  # first: the title names the files that travel with the notebook
        self.section_ctx = self.changed_contexts()
        self.title()
        self.timeline()
        self.setup()
        self.context()
        if self.earlier:
            self.questions()
        else:
            self.run_body(self.node, level=2)
            self.answer(self.summary)
        for i, cell in enumerate(self.cells):
            cell["id"] = f"rlm-{i:04d}"
        meta = {
            "kernelspec": dict(KERNELSPEC),
            "language_info": {"name": "python", "file_extension": ".py", "mimetype": "text/x-python"},
            "rlm": self.redactor.deep({
                "run_id": self.node.run_id, "root_run_id": self.log.root_run_id, "log": self.recording,
                "source_log": self.log_ref, "files": self.travelling_files,
                "status": self.summary.status, "question": self.node.question,
                "model": self.node.started.get("model"), "sub_model": self.node.started.get("sub_model"),
                "provider": self.node.started.get("provider"), "demo": bool(self.node.started.get("demo")),
                "exported_by": f"rlm-kernel {__version__}", "redactions": self.redactor.count,
                "outputs_cut": self.cleaner.cut_count, "torn_log_lines": self.log.bad_lines,
                **({"continues": self.node.started.get("continues"), "missing_logs": self.missing,
                    "questions": [q.get("question") for q, _ in self.earlier] + [self.node.question]}
                   if self.earlier else {}),
            }),
        }
        return new_notebook(cells=self.cells, metadata=meta)

    @property
    def log_ref(self) -> str:
        return _relative(self.log.path, self.out.parent)

    @property
    def recording(self) -> str:
        """The file next to the notebook that its replay cell reads (recording.py)."""
        return recording_path(self.out).name

    @property
    def travelling_files(self) -> list[str]:
        """What must be copied along with the notebook for it to replay elsewhere."""
        cells = [self.ctx, *self.section_ctx.values()]
        return [self.recording, *(c.sidecar.name for c in cells if c.sidecar is not None)]

    def title(self) -> None:
        s, started = self.summary, self.node.started
        question = self.node.question.strip() or "(no question recorded)"
        first = question.splitlines()[0]
        lines = [md.heading(1, md.inline(first, 120))]
        if first != question or len(first) > 120:
            lines += ["", md.quote(question)]
        if self.earlier:
            asked = [md.inline(str(q.get("question") or ""), 120) for q, _ in self.earlier]
            lines += ["", f"Follow-up to: {asked[-1]}", "",
                      f"The notebook holds all {len(asked) + 1} questions asked in the same REPL, in order, one "
                      "section each (later code uses what earlier code made); the table is about the last one."]
        models = [f"`{started.get('model')}` (root)"]
        if started.get("sub_model") and started.get("sub_model") != started.get("model"):
            models.append(f"`{started.get('sub_model')}` (sub-calls)")
        extra = sorted(set(s.usage) - {started.get("model"), started.get("sub_model")})
        models += [f"`{m}`" for m in extra]
        provider = "offline demo model, not a real LLM" if started.get("demo") else str(started.get("provider") or "")
        rows = [("Status", s.status_text()), ("Models", " · ".join(models) + (f" · {provider}" if provider else "")),
                ("Date", s.date_text()), ("Steps", f"{s.steps:,}"), ("Sub-calls", s.subcalls_text()),
                ("Tokens", s.tokens_text()), ("Cost", s.cost_text())]
        if s.elapsed is not None:
            rows.append(("Time", md.duration(s.elapsed)))
        rows.append(("Run", f"`{self.node.run_id}` · log `{self.log_ref}`"))
        lines += ["", "| | |", "|---|---|", *(f"| **{k}** | {v.replace('|', '&#124;')} |" for k, v in rows)]
        if self.log.bad_lines:
            lines += ["", f"*The log's last {md.plural(self.log.bad_lines, 'line')} was cut off when the process "
                          "stopped and was skipped.*"]
        lines += ["", "Each step below shows the model's reasoning, then the code it ran with the outputs it got. "
                      "Run the notebook top to bottom to replay it without a model.",
                  "", f"To share it, copy {md.plural(len(self.travelling_files), 'file')} along with it, into the "
                      f"same folder: {', '.join(f'`{name}`' for name in self.travelling_files)}."]
        self.markdown("\n".join(lines), meta={"role": "title"})

    def timeline(self) -> None:
        """The run's waterfall, drawn from the log, as an SVG image in a Markdown cell: a data URI, which
        JupyterLab and nbconvert show; GitHub was not checked (JupyterLab does not draw SVG attachments, and an SVG
        output of an untrusted notebook is not drawn either)."""
        svg = timeline_svg(self.node)
        if svg is None:
            return
        s = self.summary
        whose = " (the last question)" if self.earlier else ""
        alt = (f"Timeline of the run{whose}: {md.plural(s.steps, 'step')}, {md.plural(s.subcalls, 'sub-call')}"
               + (f" over {md.duration(s.elapsed)}" if s.elapsed is not None else ""))
        uri = "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
        self.markdown(f"{md.heading(2, 'Timeline' + whose)}\n\n![{alt}]({uri})\n\n*{LEGEND}*",
                      meta={"role": "timeline"})

    def setup(self) -> None:
        path = shlex.quote(self.recording)
        source = ("# Replay: llm_query, llm_query_batched and rlm_query answer from the run's recording (the file\n"
                  "# next to this notebook), so the cells below run with no model, no API key and no network (an\n"
                  "# unrecorded prompt raises ReplayMiss). To call live models instead, add --live to the next line.\n"
                  f"%rlm replay {path}")
        self.cells.append(new_code_cell(source, metadata={"rlm": {"role": "replay-setup", "log": self.recording}}))

    def context(self) -> None:
        cell = self.ctx
        logs = [self.log, *(found for _, found in self.earlier if found is not None)]
        if any("context_0" in (e.get("code") or "") for lg in logs for e in lg.events
               if e.get("type") == "cell_finished"):
            cell.source += "\ncontext_0 = context  # the name the model used for it"
        if cell.note:
            self.markdown(cell.note)
        meta: dict[str, Any] = {"role": "context"}
        if cell.sidecar is not None:
            meta["sidecar"] = cell.sidecar.name
        self.cells.append(new_code_cell(cell.source, metadata={"rlm": meta}))

    def context_cell(self) -> ContextCell:
        if self.node.started.get("parent_run_id"):
            # A child's context is its prompt unless the parent passed one (which is not recorded).
            meta = self.node.started.get("context") or {}
            if meta.get("type") == "str" and meta.get("size") == len(self.node.question):
                return context_cell(self.node.question, out_path=self.out, inline_chars=self.inline_chars)
            return missing_context_cell("a child run's own context is not recorded")
        # A follow-up's notebook starts with the first question, so it binds the context that question had.
        first = next((found for _, found in self.earlier if found is not None), self.log)
        snapshot = context_snapshot_path(first.path) or context_snapshot_path(self.log.path)
        if snapshot is None:
            return missing_context_cell(f"no snapshot next to {self.log.path.name}")
        try:
            return context_cell_from_snapshot(snapshot, out_path=self.out, inline_chars=self.inline_chars,
                                              alias=self.alias, trust=self.trust)
        except Exception as exc:  # a torn or unreadable snapshot from a crash
            return missing_context_cell(f"{snapshot.name} could not be read: {exc}")

    # --- the run --------------------------------------------------------------------------------
    def run_body(self, node: RunNode, level: int) -> None:
        """Root steps as heading + reasoning + code cells; see child_section for nested runs."""
        for item in node.items:
            if isinstance(item, Step):
                self.step(node, item, level)
            elif isinstance(item, Note):
                self.markdown(f"**Note from a person**, sent to the model after step {item.step}:\n\n"
                              f"{md.quote(item.text)}", meta={"role": "note", "step": item.step})
            elif isinstance(item, BudgetHit):
                self.markdown(f"**Budget reached:** {item.kind} — {item.value} of {item.limit}.",
                              meta={"role": "budget"})
            elif isinstance(item, Resumed):
                self.markdown(f"*The run was resumed here from step {item.from_step}; steps after it that "
                              "were left unfinished are shown above as history only.*", meta={"role": "resumed"})
        for orphan in node.orphans:
            self.child_section(orphan, level + 1, None)

    def step(self, node: RunNode, step: Step, level: int) -> None:
        title = md.heading(level, f"Step {step.step}")
        if step.abandoned:
            title += " (left unfinished; the run was later resumed from an earlier step)"
        turn_meta = {"role": "reasoning", "run_id": node.run_id, "step": step.step}
        if step.turn is None:
            body = "*The model was still writing this reply when the log ends.*"
        else:
            body = strip_code_blocks(step.text) or "*(no prose; code only)*"
            turn_meta.update({k: step.turn.get(k) for k in ("model", "usage", "latency", "stop_reason")})
            if step.turn.get("stop_reason") == "max_tokens":
                body += "\n\n*The reply was cut off at the output-token limit.*"
        self.markdown(f"{title}\n\n{body}", meta=turn_meta)
        for cell in step.cells:
            self.root_cell(node, cell, level, abandoned=step.abandoned)
        if step.loose_subcalls:
            self.subcall_summary(step.loose_subcalls, level + 1)
        ran = max((c.index for c in step.cells), default=0)
        unrun = [c.source for c in read_reply(step.text).codes][ran:] if step.turn is not None else []
        for i, code in enumerate(unrun, start=ran + 1):
            self.markdown(f"*Block {i} of this reply did not run (the run ended first):*\n\n"
                          f"{md.fence(code, 'python')}", meta={"role": "not-run", "step": step.step, "index": i})

    def root_cell(self, node: RunNode, cell: Cell, level: int, *, abandoned: bool) -> None:
        if cell.edited:
            original = md.fence(cell.original_code or "", "python")
            self.markdown("✎ **Edited by a person before it ran.** The cell below is the code that ran; "
                          f"the model had written:\n\n{original}", meta={"role": "edit", "step": cell.step,
                                                                        "index": cell.index})
        meta = self.cell_meta(node, cell)
        if cell.finished is None or cell.interrupted or abandoned:
            self.markdown(self.static_cell(cell, abandoned=abandoned), meta=meta)
        else:
            count = cell.finished.get("execution_count")
            outputs = self.cleaner.outputs(cell.outputs, count)
            has_error = any(o.get("output_type") == "error" for o in outputs)
            meta_all: dict[str, Any] = {"rlm": meta}
            if has_error:
                meta_all["tags"] = ["raises-exception"]  # nbclient and JupyterLab run on past it
            self.cells.append(new_code_cell(self.redactor.text(cell.code), execution_count=count,
                                            outputs=outputs, metadata=self.redactor.deep(meta_all)))
        if cell.subcalls:
            self.subcall_summary(cell.subcalls, level + 1)

    def static_cell(self, cell: Cell, *, abandoned: bool) -> str:
        """A cell shown but not re-run: replaying it would hang, or change what later cells see."""
        f = cell.finished or {}
        if abandoned:
            why = "ran before the process stopped; the resumed run did not keep its effects"
        elif cell.finished is None:
            why = "was still running when the log ends"
        elif f.get("timed_out"):
            why = f"timed out after {md.duration(f.get('duration'))} and was interrupted"
        else:
            why = "was interrupted"
        text = f"*Cell {cell.index} of step {cell.step} {why}, so it is shown here rather than run again:*\n\n"
        text += md.fence(cell.code, "python")
        output = outputs_to_text(cell.outputs).strip()
        if output:
            text += "\n\nIts output:\n\n" + md.fence(cut(output, self.max_chars), "text")
        return text

    def cell_meta(self, node: RunNode, cell: Cell) -> dict[str, Any]:
        f = cell.finished or {}
        meta: dict[str, Any] = {"role": "step", "run_id": node.run_id, "step": cell.step, "index": cell.index,
                                "duration": f.get("duration"), "timed_out": bool(f.get("timed_out"))}
        if cell.edited:
            meta.update(edited=True, original_code=cell.original_code)
        if cell.subcalls:
            budget = _TextBudget(self.max_chars)
            meta["subcalls"] = [self.subcall_meta(sc, budget) for sc in cell.subcalls]
        return meta

    def subcall_meta(self, sc: SubCall, budget: _TextBudget) -> dict[str, Any]:
        entry: dict[str, Any] = {"id": sc.id, "kind": sc.kind, "model": sc.model,
                                 "prompt": budget.take(sc.prompt), "prompt_chars": len(sc.prompt),
                                 "response": budget.take(sc.response), "usage": sc.usage, "latency": sc.latency,
                                 "error": sc.error}
        if sc.response is not None:
            entry["response_chars"] = len(sc.response)
        if entry["prompt"] is None or (sc.response is not None and entry["response"] is None):
            entry["text_left_out"] = True  # this cell's share of the notebook is used up: see the log
        if sc.batch:
            entry["batch"] = sc.batch
        if sc.child_run_id:
            entry["child_run_id"] = sc.child_run_id
        return entry

    # --- sub-calls and child runs -------------------------------------------------------------
    def subcall_summary(self, subcalls: list[SubCall], level: int) -> None:
        plain = [sc for sc in subcalls if sc.child is None]
        if plain:
            self.markdown(self.subcall_text(plain), meta={"role": "subcalls", "count": len(plain)})
        for sc in subcalls:
            if sc.child is not None:
                self.child_section(sc.child, level, sc)

    def subcall_text(self, subcalls: list[SubCall]) -> str:
        kinds: dict[str, int] = {}
        for sc in subcalls:
            helper = "rlm_query" if sc.kind == "rlm" else "llm_query_batched" if sc.batch else "llm_query"
            kinds[helper] = kinds.get(helper, 0) + 1
        models = sorted({str(sc.model) for sc in subcalls if sc.model})
        tokens = sum(int((sc.usage or {}).get(k) or 0) for sc in subcalls
                     for k in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"))
        slowest = max((sc.latency or 0.0 for sc in subcalls), default=0.0)
        head = ", ".join(f"{n:,} × `{k}`" for k, n in kinds.items())
        facts = [f"to {', '.join(f'`{m}`' for m in models)}" if models else "", f"{tokens:,} tokens",
                 f"slowest {md.duration(slowest)}"]
        errors = sum(1 for sc in subcalls if sc.error)
        if errors:
            facts.append(md.plural(errors, "error"))
        lines = [f"**Sub-calls from this cell:** {head} {' · '.join(f for f in facts if f)}", ""]
        for i, sc in enumerate(subcalls[:SUMMARY_ITEMS], start=1):
            if sc.response is None:
                result = "*(no answer recorded: the log ends first)*"
            elif sc.error:
                result = f"**error:** {md.inline(sc.error, 200)}"
            else:
                result = f"“{md.inline(sc.response, 240)}”"
            lines.append(f"{i}. “{md.inline(sc.prompt, 140)}” → {result}")
        if len(subcalls) > SUMMARY_ITEMS:
            lines.append(f"\n…and {len(subcalls) - SUMMARY_ITEMS:,} more, all in the run log and, shortened, in "
                         "the code cell's metadata (`rlm.subcalls`).")
        return "\n".join(lines)

    def child_section(self, child: RunNode, level: int, parent_call: SubCall | None) -> None:
        """A child run as a Markdown section: its code is shown, not run (replay answers it)."""
        s = summarize(child)
        head = md.heading(level, f"↳ Child run (`rlm_query`): {md.inline(child.question, 100)}")
        facts = [f"model `{child.started.get('model')}`", md.plural(s.steps, "step"),
                 md.plural(s.subcalls, "sub-call"), s.status_text()]
        where = ""
        if child.started.get("parent_step") is not None:
            where = f"Started by step {child.started.get('parent_step')} of its parent. "
        body = [head, "", f"{where}{' · '.join(facts)}. Its code is shown but not run in the replay: the "
                "parent's `rlm_query` gets the child's recorded answer."]
        if len(child.question) > 100 or "\n" in child.question.strip():
            body += ["", "Prompt:", "", md.fence(cut(child.question, self.max_chars), "text")]
        self.markdown("\n".join(body), meta={"role": "child", "run_id": child.run_id,
                                             "parent_subcall_id": parent_call.id if parent_call else None})
        for item in child.items:
            if isinstance(item, Step):
                self.child_step(child, item, level + 1)
            elif isinstance(item, Note):
                self.markdown(f"**Note from a person** (after step {item.step}):\n\n{md.quote(item.text)}")
            elif isinstance(item, BudgetHit):
                self.markdown(f"**Budget reached:** {item.kind} — {item.value} of {item.limit}.")
        for orphan in child.orphans:
            self.child_section(orphan, level + 1, None)
        answer = s.answer if s.answer is not None else (parent_call.response if parent_call else None)
        if answer:
            self.markdown(f"**Child's answer:**\n\n{md.quote(cut(answer, self.max_chars))}",
                          meta={"role": "child-answer", "run_id": child.run_id})

    def child_step(self, node: RunNode, step: Step, level: int) -> None:
        prose = strip_code_blocks(step.text) if step.turn else "*The model was still writing when the log ends.*"
        self.markdown(f"{md.heading(level, f'Step {step.step}')}\n\n{prose}".strip(),
                      meta={"role": "reasoning", "run_id": node.run_id, "step": step.step})
        for cell in step.cells:
            parts = []
            if cell.edited:
                parts.append("✎ *Edited by a person before it ran.*")
            parts.append(md.fence(cell.code, "python"))
            if cell.finished is None:
                parts.append("*Still running when the log ends.*")
            output = outputs_to_text(cell.outputs).strip()
            if output:
                parts.append(md.fence(cut(output, self.max_chars), "text"))
            attachments = self.images(cell)
            parts += [f"![output {name}](attachment:{name})" for name in attachments]
            self.markdown("\n\n".join(parts), meta=self.cell_meta(node, cell), attachments=attachments)
            if cell.subcalls:
                self.subcall_summary(cell.subcalls, level + 1)

    def images(self, cell: Cell) -> dict[str, Any]:
        """Images a child cell displayed, as Markdown attachments (Markdown cannot hold outputs)."""
        found: dict[str, Any] = {}
        for out in cell.outputs:
            for mime, value in (out.get("data") or {}).items():
                raw = base64_payload(value)
                if mime in ("image/png", "image/jpeg", "image/gif") and is_binary(mime) and len(raw) <= self.max_chars:
                    name = f"step{cell.step}-cell{cell.index}-{len(found) + 1}.{mime.split('/')[1]}"
                    found[name] = {mime: raw}
        return found

    # --- the end --------------------------------------------------------------------------------
    def questions(self) -> None:
        """A follow-up: every question as a section, oldest first, so earlier cells make what later ones use."""
        total = len(self.earlier) + 1
        for n, (q, found) in enumerate(self.earlier, start=1):
            if found is None:
                said = md.quote(cut(str(q.get("answer") or "(none)"), self.max_chars))
                self.markdown(f"{md.heading(2, f'Question {n}: ' + md.inline(str(q.get('question') or ''), 100))}"
                              f"\n\n**Not in this notebook:** {missing_log(q, self.log)}.\n\nIts recorded answer "
                              f"({q.get('status')}):\n\n{said}",
                              meta={"role": "question", "number": n, "run_id": q.get("run_id"), "missing": True})
                continue
            self.question_section(n, total, build_tree(found))
        self.question_section(total, total, self.node)

    def changed_contexts(self) -> dict[int, ContextCell]:
        """Context cells for the questions asked about another input than the question before them
        (`context` rebound between questions), by question number; their sidecars get their own names."""
        logs = [*(found for _, found in self.earlier), self.log] if self.earlier else []
        cells: dict[int, ContextCell] = {}
        before = None
        for n, log in enumerate(logs, start=1):
            snapshot = context_snapshot_path(log.path) if log is not None else None
            if snapshot is None:
                continue
            if before is not None and not filecmp.cmp(before, snapshot, shallow=False):
                try:
                    cells[n] = context_cell_from_snapshot(
                        snapshot, out_path=self.out.with_name(f"{self.out.stem}-q{n}.ipynb"),
                        inline_chars=self.inline_chars, alias=(log.started() or {}).get("bind_name"),
                        trust=self.trust)
                except Exception as exc:  # a torn or unreadable snapshot from a crash
                    cells[n] = missing_context_cell(f"{snapshot.name} could not be read: {exc}")
            before = snapshot
        return cells

    def question_section(self, n: int, total: int, node: RunNode) -> None:
        s = summarize(node)
        head = md.heading(2, f"Question {n}: {md.inline(node.question, 100)}")
        facts = [s.status_text(), md.plural(s.steps, "step"), md.plural(s.subcalls, "sub-call"),
                 f"run `{node.run_id}`"]
        lines = [head, ""]
        if len(node.question) > 100 or "\n" in node.question.strip():
            lines += [md.quote(node.question), ""]
        if n > 1:
            lines += ["A follow-up in the same REPL: its code uses what the cells above made.", ""]
        lines.append(" · ".join(facts) + ".")
        self.markdown("\n".join(lines), meta={"role": "question", "number": n, "of": total, "run_id": node.run_id})
        ctx = self.section_ctx.get(n)
        if ctx is not None:  # this question was asked about another input
            if ctx.note:
                self.markdown(ctx.note)
            meta: dict[str, Any] = {"role": "context", "question": n}
            if ctx.sidecar is not None:
                meta["sidecar"] = ctx.sidecar.name
            also = "\ncontext_0 = context  # the name the model used for it"
            source = ctx.source + (also if self.ctx.source.endswith(also) else "")
            self.cells.append(new_code_cell(source, metadata={"rlm": meta}))
        self.run_body(node, level=3)
        self.answer(s, level=3, label=f"Answer {n}")

    def answer(self, s: RunSummary, *, level: int = 2, label: str = "Answer") -> None:
        lines = [md.heading(level, label), ""]
        if s.status == "crashed":
            lines.append(f"*No final answer: the run {s.status_text()}.*")
        elif s.answer:
            if s.status != "done":
                lines += [f"*The run {s.status_text()}; this is its best partial answer.*", ""]
            lines.append(cut(s.answer, self.max_chars))
        else:
            lines.append(f"*No answer: the run {s.status_text()}.*")
        self.markdown("\n".join(lines), meta={"role": "answer", "status": s.status,
                                              "answer_source": s.answer_source})
