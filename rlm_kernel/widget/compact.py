"""What of each run event goes over the wire to the browser, and what stays in the kernel.

The browser gets enough to draw the tree: previews of prompts and responses, outputs cut at a
limit, streamed text as deltas. The full values stay in a `FullStore` in the kernel and are sent
only when a person asks for them ("show all", expanding a prompt). The run's `context` itself is
never in an event (run_started carries metadata only) and metadata strings are cut short too."""

from __future__ import annotations

from typing import Any

from ..engine import events as ev
from ..engine import pricing
from ..engine.text import joined
from ..engine.types import Usage

#: Characters of a sub-call prompt shown before "show full prompt".
PROMPT_PREVIEW = 240
#: Characters of a sub-call response shown before "show all".
RESPONSE_PREVIEW = 2_000
#: Characters of text (stream, text/plain, traceback) per output before "show all".
OUTPUT_TEXT_LIMIT = 5_000
#: Bytes of HTML / SVG / JSON-ish rich output shown inline; larger ones wait for "show all".
OUTPUT_RICH_LIMIT = 100_000
#: Base64 characters of an image shown inline.
OUTPUT_IMAGE_LIMIT = 2_000_000
#: Any other string field longer than this is cut (a safety net for fields added later).
FIELD_LIMIT = 20_000
#: Strings inside run_started's context metadata / options are cut to this.
META_LIMIT = 300
#: Characters of each earlier question and answer a follow-up's run_started carries to the view.
EARLIER_QUESTION = 600
EARLIER_ANSWER = 1_500

_IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/webp")
_RICH_MIMES = ("text/html", "image/svg+xml", "text/markdown", "text/latex")


def _cut_meta(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return value if len(value) <= META_LIMIT else value[:META_LIMIT] + "…"
    if isinstance(value, dict) and depth < 4:
        return {str(k): _cut_meta(v, depth + 1) for k, v in list(value.items())[:50]}
    if isinstance(value, list | tuple) and depth < 4:
        return [_cut_meta(v, depth + 1) for v in list(value)[:50]]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _cut_meta(repr(value), depth)


def _clip(value: Any, limit: int) -> str:
    text = joined(value) if value is not None else ""
    return text if len(text) <= limit else text[:limit] + "…"


def earlier_chain(earlier: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The questions a follow-up continues, as the view shows them: question, answer (both cut),
    status, steps, sub-calls and cost of each; not their cells (the model's account has those)."""
    return [{"run_id": q.get("run_id"), "question": _clip(q.get("question"), EARLIER_QUESTION),
             "answer": _clip(q.get("answer"), EARLIER_ANSWER), "status": q.get("status"),
             "steps": q.get("steps"), "subcalls": q.get("subcalls"), "cost": q.get("cost")}
            for q in earlier if isinstance(q, dict)]


def cut_output(out: dict[str, Any]) -> dict[str, Any]:
    """An nbformat output dict small enough for the view; `cut` holds the full size when cut."""
    kind = out.get("output_type")
    if kind == "stream":
        text = joined(out.get("text"))
        if len(text) <= OUTPUT_TEXT_LIMIT:
            return {"output_type": "stream", "name": out.get("name", "stdout"), "text": text}
        return {"output_type": "stream", "name": out.get("name", "stdout"),
                "text": text[:OUTPUT_TEXT_LIMIT], "cut": len(text)}
    if kind == "error":
        tb = [str(line) for line in out.get("traceback") or []]
        total = sum(len(line) for line in tb)
        small = {"output_type": "error", "ename": str(out.get("ename", "")),
                 "evalue": joined(out.get("evalue"))[:OUTPUT_TEXT_LIMIT], "traceback": tb}
        if total > OUTPUT_TEXT_LIMIT:
            small["traceback"] = [*tb[:2], "…", *tb[-2:]]
            small["cut"] = total
        return small
    if kind in ("display_data", "execute_result"):
        data = out.get("data") or {}
        small_data: dict[str, Any] = {}
        cut = 0
        for mime, value in data.items():
            text = joined(value) if not isinstance(value, dict) else None
            if mime in _IMAGE_MIMES and text is not None:
                if len(text) <= OUTPUT_IMAGE_LIMIT:
                    small_data[mime] = text
                else:
                    cut = max(cut, len(text))
            elif mime in _RICH_MIMES and text is not None:
                if len(text) <= OUTPUT_RICH_LIMIT:
                    small_data[mime] = text
                else:
                    cut = max(cut, len(text))
            elif mime == "text/plain":
                plain = text or ""
                if len(plain) > OUTPUT_TEXT_LIMIT:
                    cut = max(cut, len(plain))
                    plain = plain[:OUTPUT_TEXT_LIMIT]
                small_data[mime] = plain
        small = {"output_type": kind, "data": small_data}
        # an image's width and height (Image(..., width=40)), matplotlib's needs_background: the
        # renderers read them as a native cell's would; entries of parts not sent are left out
        meta = out.get("metadata")
        if isinstance(meta, dict):
            kept = {k: v for k, v in meta.items() if k in small_data or "/" not in str(k)}
            if kept:
                small["metadata"] = _cut_meta(kept)
        if kind == "execute_result":
            small["execution_count"] = out.get("execution_count")
        if cut:
            small["cut"] = cut
        return small
    return {"output_type": str(kind), "data": {"text/plain": _cut_meta(out)}}


class FullStore:
    """Keeps what the view left out, so "show all" can fetch it later. Holds references to the
    engine's event dicts (no copies); a finished run's store is what the static HTML reads."""

    def __init__(self) -> None:
        self.events: list[ev.Event] = []
        self.outputs: dict[tuple[str, int, int], list[dict[str, Any]]] = {}
        self.subcalls: dict[tuple[str, str], dict[str, Any]] = {}

    def add(self, event: ev.Event) -> None:
        if event.get("type") == ev.TURN_DELTA:
            return  # turn_finished carries the whole text
        self.events.append(event)
        t = event.get("type")
        if t == ev.CELL_FINISHED:
            key = (event["run_id"], int(event.get("step", 0)), int(event.get("index", 0)))
            self.outputs[key] = list(event.get("outputs") or [])
        elif t in (ev.SUBCALL_STARTED, ev.SUBCALL_FINISHED):
            rec = self.subcalls.setdefault((event["run_id"], str(event.get("id"))), {})
            if t == ev.SUBCALL_STARTED:
                rec["prompt"] = joined(event.get("prompt"))
            else:
                rec["response"] = joined(event.get("response"))
                rec["error"] = joined(event.get("error")) if event.get("error") else None

    def fetch(self, what: str, req: dict[str, Any]) -> Any:
        """The full value behind a cut one, or None when unknown."""
        run_id = str(req.get("run_id", ""))
        if what == "output":
            outs = self.outputs.get((run_id, int(req.get("step", 0)), int(req.get("index", 0))))
            n = int(req.get("n", 0))
            if outs is None or not 0 <= n < len(outs):
                return None
            return _full_output(outs[n])
        if what in ("prompt", "response"):
            rec = self.subcalls.get((run_id, str(req.get("id"))))
            return None if rec is None else rec.get(what)
        return None


def _full_output(out: dict[str, Any]) -> dict[str, Any]:
    """An output as the view renders it, uncut; multi-line list values joined."""
    full = dict(out)
    if "text" in full:
        full["text"] = joined(full["text"])
    if isinstance(full.get("data"), dict):
        full["data"] = {m: (v if isinstance(v, dict) else joined(v)) for m, v in full["data"].items()}
    return full


def wire_item(event: ev.Event) -> dict[str, Any] | None:
    """The view's form of one event, or None for events the view does not draw. turn_finished
    carries its full text here; the journal drops it again when deltas already delivered it."""
    t = event.get("type")
    base = {"type": t, "run_id": event.get("run_id"), "seq": event.get("seq"), "t": event.get("t")}
    if t == ev.TURN_DELTA:
        return {"type": t, "run_id": event.get("run_id"), "step": event.get("step"),
                "text": joined(event.get("text"))}
    if t == ev.TURN_FINISHED:
        return {**base, **_pick(event, "step", "model", "usage", "latency", "stop_reason"),
                "text": joined(event.get("text"))}
    if t == ev.RUN_STARTED:
        item = {**base, **_pick(event, "model", "sub_model", "provider", "demo", "depth",
                                "parent_run_id", "parent_step", "parent_subcall_id", "root_run_id")}
        item["question"] = joined(event.get("question"))[:FIELD_LIMIT]
        item["context"] = _cut_meta(event.get("context"))
        opts = event.get("options") or {}
        item["options"] = _cut_meta({k: opts.get(k) for k in (
            "max_iterations", "max_depth", "max_subcalls", "max_tokens", "max_cost", "approve") if k in opts})
        if event.get("earlier"):
            item["continues"] = event.get("continues")
            item["earlier"] = earlier_chain(event["earlier"])
        return item
    if t == ev.CELL_STARTED:
        return {**base, **_pick(event, "step", "index", "code", "edited", "original_code")}
    if t == ev.CELL_FINISHED:
        item = {**base, **_pick(event, "step", "index", "duration", "timed_out", "execution_count")}
        item["outputs"] = [cut_output(o) for o in event.get("outputs") or []]
        if event.get("error") is not None:
            item["error"] = _cut_meta(event["error"])
        return item
    if t == ev.SUBCALL_STARTED:
        prompt = joined(event.get("prompt"))
        return {**base, **_pick(event, "step", "id", "kind", "model", "batch"),
                "prompt": prompt[:PROMPT_PREVIEW], "prompt_chars": len(prompt)}
    if t == ev.SUBCALL_FINISHED:
        response = joined(event.get("response"))
        item = {**base, **_pick(event, "step", "id", "kind", "model", "usage", "latency", "child_run_id",
                                 "cached"),
                "response": response[:RESPONSE_PREVIEW], "response_chars": len(response)}
        if event.get("error"):
            item["error"] = joined(event.get("error"))[:RESPONSE_PREVIEW]
        return item
    if t in (ev.BATCH_CREATED, ev.BATCH_PROGRESS, ev.BATCH_FINISHED):  # not the custom_id mapping
        return {**base, **_pick(event, "step", "batch", "api_batch_id", "model", "count", "status", "counts",
                                 "error")}
    if t == ev.FEEDBACK:
        return None  # what the model saw next; the view shows the outputs themselves
    if t == ev.RUN_FINISHED:
        item = {**base, **_pick(event, "status", "answer_source", "reason", "usage", "cost", "elapsed",
                                "steps", "subcalls")}
        item["answer"] = joined(event.get("answer"))[:FIELD_LIMIT * 5]
        # models with tokens but no known price: the header says "cost unknown for …", not less
        item["unpriced"] = sorted(m for m, u in (event.get("usage") or {}).items()
                                  if isinstance(u, dict) and pricing.cost(m, Usage.from_dict(u)) is None
                                  and Usage.from_dict(u).total_tokens)
        return item
    # note, state, budget_hit and anything newer: small fields, cut as a safety net
    return {**base, **{k: _cut_meta(v) if not isinstance(v, str) else v[:FIELD_LIMIT]
                       for k, v in event.items() if k not in ("v", "seq", "t", "run_id", "type")}}


#: Characters of each sub-call prompt and response kept in the copy saved with the notebook.
SAVED_PROMPT = 120
SAVED_RESPONSE = 240


def saved_copy(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The wire items as they are saved in the notebook's output, for the tree to redraw with no
    kernel: each finished sub-call as one item (its start folded in) with prompt and response cut
    further, no batch bookkeeping, and no field the tree does not read or that repeats another
    (lengths of uncut text, a failed sub-call's response, a failed cell's traceback, the root's run
    id, kind "llm"). A 1,000-prompt batch would otherwise weigh megabytes; the run log keeps
    everything whole. unpack_saved (and the extension's saved.ts) puts the implied fields back."""
    finished = {(i.get("run_id"), i.get("id")) for i in items if i.get("type") == ev.SUBCALL_FINISHED}
    root = next((i.get("run_id") for i in items if i.get("type") == ev.RUN_STARTED), None)
    prompts: dict[tuple[Any, Any], dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for item in items:
        t = item.get("type")
        # batch numbers are the wire's business; empty fields (error=None, cached=False) cost bytes × 1,000
        small = {k: v for k, v in item.items() if k != "seq" and v is not None and v is not False}
        # the root run's id and the usual kind are implied (see unpack_saved)
        if root is not None and t != ev.RUN_STARTED and small.get("run_id") == root:
            del small["run_id"]
        if t in (ev.SUBCALL_STARTED, ev.SUBCALL_FINISHED) and small.get("kind") == "llm":
            del small["kind"]
        for name in ("t", "latency", "duration"):
            if isinstance(small.get(name), float):
                small[name] = round(small[name], 3)
        if isinstance(small.get("usage"), dict) and ("input_tokens" in small["usage"] or not small["usage"]):
            # the tree reads tokens only; a sub-call's "calls" is always 1
            small["usage"] = {k: v for k, v in small["usage"].items() if v and k != "calls"}
            if not small["usage"]:
                del small["usage"]
        if t == ev.SUBCALL_STARTED:
            key = (item.get("run_id"), item.get("id"))
            cut = _cut_text("prompt", item.get("prompt"), item.get("prompt_chars"), SAVED_PROMPT)
            if key in finished:
                prompts[key] = cut
                continue
            small.pop("prompt_chars", None)
            small.update(cut)
        elif t == ev.SUBCALL_FINISHED:
            small.update(prompts.pop((item.get("run_id"), item.get("id")), {}))
            small.pop("response_chars", None)
            if small.get("error"):  # its response is the same error in words: the tree shows the error
                small.pop("response", None)
            else:
                small.update(_cut_text("response", item.get("response"), item.get("response_chars"), SAVED_RESPONSE))
        elif t == ev.CELL_FINISHED and isinstance(small.get("error"), dict):
            # the cell's error output holds the traceback; the tree reads the exception's name
            small["error"] = {k: v for k, v in small["error"].items() if k in ("ename", "evalue")}
        out.append(small)
    return out


def unpack_saved(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """saved_copy's items with the fields it left implied put back: the root run's id (the first
    run_started's) and a sub-call's kind "llm"."""
    root = next((i.get("run_id") for i in items if i.get("type") == ev.RUN_STARTED), None)
    out = []
    for item in items:
        full = dict(item)
        if "run_id" not in full and root is not None:
            full["run_id"] = root
        if full.get("type") in (ev.SUBCALL_STARTED, ev.SUBCALL_FINISHED):
            full.setdefault("kind", "llm")
        out.append(full)
    return out


def _cut_text(name: str, text: Any, chars: Any, limit: int) -> dict[str, Any]:
    """`name` cut to `limit`, and `name_chars` (the whole length) only when something was left out."""
    whole = str(text or "")
    total = chars if isinstance(chars, int) else len(whole)
    cut = {name: whole[:limit]}
    if total > len(cut[name]):
        cut[f"{name}_chars"] = total
    return cut


def _pick(event: ev.Event, *names: str) -> dict[str, Any]:
    return {n: event[n] for n in names if n in event}


#: Item types whose consecutive texts join into one, and the fields that must match.
_MERGED = {ev.TURN_DELTA: ("run_id", "step"), "cell_stream": ("run_id", "step", "index", "name")}


def coalesce(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Merge runs of turn_delta items (same run and step) and of a running cell's live output into
    one each (fewer messages and DOM updates)."""
    merged: list[dict[str, Any]] = []
    for item in items:
        prev = merged[-1] if merged else None
        t = item["type"]
        if (prev is not None and t in _MERGED and prev["type"] == t
                and all(prev.get(k) == item.get(k) for k in _MERGED[t])):
            prev["text"] += item["text"]
        else:
            merged.append(dict(item) if t in _MERGED else item)
    return merged
