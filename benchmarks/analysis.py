"""From trial rows to what the report states: medians per section, peers' ratios to ours, and
our targets from issue 6 with the measured value and whether each is met."""

from __future__ import annotations

from statistics import median
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .run import Config

#: The root's preview of the context (RLMOptions.preview_chars' default for a large window).
PREVIEW_CHARS = 2000

SECTION_METRICS = {
    "overhead": ["wall", "overhead_s", "overhead_ratio", "first_root_request_s"],
    "fanout": ["wall", "overhead_ratio", "fanout_in_repl_s", "fanout_server_span_s"],
    "tokens": ["wall", "overhead_s", "overhead_ratio"],
    "scale": ["first_root_request_s", "wall"],
}


def summarize(trials: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """Medians per section, label, scenario and phase; peers' ratios to ours; our targets."""
    out: dict[str, Any] = {}
    for section, names in SECTION_METRICS.items():
        rows = [t for t in trials if t["section"] == section]
        groups: dict[str, list[dict[str, Any]]] = {}
        for t in rows:
            groups.setdefault(f"{t['label']}|{t['scenario']}|{t['phase']}", []).append(t)
        sec: dict[str, Any] = {}
        for key, mine in groups.items():
            good = [t for t in mine if t["correct"]]
            first = mine[0]
            entry: dict[str, Any] = {"label": first["label"], "system": first["system"], "scenario": first["scenario"],
                                     "phase": first["phase"], "trials": len(mine), "correct": len(good),
                                     "critical_path": first["critical_path"]}
            if not good:
                entry["error"] = first.get("error") or f"wrong answer {first.get('answer')!r}"
                sec[key] = entry
                continue
            for name in names:
                values = [t[name] for t in good if t.get(name) is not None]
                if values:
                    entry[name] = median(values)
            best = good[0]
            entry["root_requests"] = best.get("root_requests")
            entry["sub_requests"] = best.get("sub_requests")
            if section == "tokens" and "tokens" in best:
                entry["tokens"] = best["tokens"]
                entry["billed_ratio"] = best["tokens"]["billed_equivalent_input"] / max(
                    1, best["tokens"]["input_uncached_equivalent"])
                entry["root_prompt_tokens"] = best["root_prompt_tokens"]
            if section == "scale":
                peak = max(best.get("rss_peak_tree", 0), best.get("rss_peak_self", 0))
                entry.update(context_chars=best["context_chars"], context_chars_to_root=best["context_chars_to_root"],
                             context_chars_per_request=best.get("context_chars_per_request"),
                             rss_overhead_bytes=peak - best["rss_before"],
                             rss_overhead_ratio=(peak - best["rss_before"]) / best["context_chars"])
            sec[key] = entry
        if sec:
            out[section] = sec
    out["ratios"] = ratios(out, cfg)
    out["targets"] = targets(out, cfg)
    return out


def iopub_target(io: dict[str, Any]) -> dict[str, Any] | None:
    growth = io.get("growth_last_vs_first")
    if growth is None:
        return None
    return {"target": f"kernel IOPub bytes per step flat over {io['steps']} steps (last tenth ≤ 1.2 × first tenth)",
            "value": f"{growth:.2f}× ({io['first_tenth_mean']:,.0f} → {io['last_tenth_mean']:,.0f} bytes)",
            "met": growth <= 1.2}


def pick(summary: dict[str, Any], section: str, label: str, phase: str | None = None) -> list[dict[str, Any]]:
    return [e for e in summary.get(section, {}).values()
            if e["label"] == label and (phase is None or e["phase"] == phase)]


def ratios(summary: dict[str, Any], cfg: Config) -> dict[str, float]:
    """Peer metric / our metric for the headline numbers (above 1 means we are ahead)."""
    res: dict[str, float] = {}

    def one(section: str, label: str, phase: str, name: str) -> float | None:
        found = [e[name] for e in pick(summary, section, label, phase) if e.get(name) is not None]
        return found[0] if found else None

    for peer in cfg.systems:
        if peer == "ours":
            continue
        for phase in ("warm", "cold"):
            o, p = one("overhead", "ours", phase, "overhead_s"), one("overhead", peer, phase, "overhead_s")
            if o is not None and p is not None:
                res[f"orchestration overhead, {phase}: {peer} / ours"] = p / max(o, 1e-3)
        for ours_label in (f"ours c={cfg.fanout}", "ours default"):
            o = one("fanout", ours_label, "warm", "fanout_in_repl_s")
            p = one("fanout", f"{peer} default", "warm", "fanout_in_repl_s")
            if o is not None and p is not None:
                res[f"{cfg.fanout}-way batch time, warm: {peer} default / {ours_label}"] = p / o
        to, tp = pick(summary, "tokens", "ours"), pick(summary, "tokens", peer)
        if to and tp and "tokens" in to[0] and "tokens" in tp[0]:
            a, b = to[0]["tokens"], tp[0]["tokens"]
            res[f"billed-equivalent input, {cfg.steps} steps: {peer} / ours"] = (
                b["billed_equivalent_input"] / a["billed_equivalent_input"])
            res[f"uncached input, {cfg.steps} steps: {peer} / ours"] = (
                b["input_uncached_equivalent"] / a["input_uncached_equivalent"])
        for size in cfg.sizes:
            o = [e for e in pick(summary, "scale", "ours") if e.get("context_chars") == size]
            p = [e for e in pick(summary, "scale", peer) if e.get("context_chars") == size]
            if o and p and o[0].get("first_root_request_s") and p[0].get("first_root_request_s"):
                res[f"time to first root request, {size:,} chars: {peer} / ours"] = (
                    p[0]["first_root_request_s"] / o[0]["first_root_request_s"])
    return res


def targets(summary: dict[str, Any], cfg: Config) -> list[dict[str, Any]]:
    """Our targets (issue 6, tightened by issue 11 for a notebook's first question), each with the
    measured value and whether it is met."""
    rows: list[dict[str, Any]] = []
    for e in pick(summary, "overhead", "ours"):
        if "overhead_ratio" in e:
            limit = 0.02 if e["phase"] == "cold" else 0.03
            rows.append({"target": f"orchestration overhead ≤ {limit:.0%} of the critical path ({e['phase']} call)",
                         "value": f"{e['overhead_ratio']:.1%}", "met": e["overhead_ratio"] <= limit})
    for e in pick(summary, "fanout", f"ours c={cfg.fanout}"):
        if "fanout_in_repl_s" in e:
            rows.append({"target": f"{cfg.fanout}-way fan-out in ≤ 1.3 s at {cfg.sub_latency} s per sub-call "
                                   f"({e['phase']} call)",
                         "value": f"{e['fanout_in_repl_s']:.3f} s", "met": e["fanout_in_repl_s"] <= 1.3})
    for e in pick(summary, "tokens", "ours"):
        if "billed_ratio" in e:
            rows.append({"target": f"billed-equivalent input ≤ 30 % of uncached ({cfg.steps} steps)",
                         "value": f"{e['billed_ratio']:.1%}", "met": e["billed_ratio"] <= 0.30})
    big = max(cfg.sizes)
    for e in pick(summary, "scale", "ours"):
        if e.get("context_chars") != big or "rss_overhead_ratio" not in e:
            continue
        rows.append({"target": f"{big:,} chars: first root request in < 0.1 s",
                     "value": f"{e['first_root_request_s']:.3f} s", "met": e["first_root_request_s"] < 0.1})
        rows.append({"target": f"{big:,} chars: RSS overhead < 10 % of the context",
                     "value": f"{e['rss_overhead_ratio']:.1%}", "met": e["rss_overhead_ratio"] < 0.10})
        if e.get("context_chars_per_request") is not None:
            most = e["context_chars_per_request"]
            rows.append({"target": f"{big:,} chars: only the preview reaches the root (≤ {PREVIEW_CHARS:,} context "
                                   "chars per request)", "value": f"{most:,}", "met": most <= PREVIEW_CHARS})
    return rows
