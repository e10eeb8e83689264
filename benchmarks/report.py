"""results.json → results.md (tables) and PNG plots (matplotlib, when installed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlm_kernel.engine.options import RLMOptions

MB = 1024 * 1024


def _entries(results: dict[str, Any], section: str, phase: str | None = None) -> list[tuple[str, dict[str, Any]]]:
    """(label, entry) pairs of a section, warm calls before cold ones when both exist."""
    entries = [e for e in results["summary"].get(section, {}).values() if phase is None or e["phase"] == phase]
    entries.sort(key=lambda e: (e["phase"] != "warm", e.get("context_chars", 0), e["label"]))
    return [(e["label"], e) for e in entries]


def _s(x: float | None, fmt: str = "{:.3f}") -> str:
    return "—" if x is None else fmt.format(x)


def _status(e: dict[str, Any]) -> str:
    return f"{e['correct']}/{e['trials']}" + ("" if e["correct"] == e["trials"] else f" ({e.get('error', '')[:80]})")


def markdown(results: dict[str, Any]) -> str:
    st, m, v = results["settings"], results["machine"], results["versions"]
    lines = [
        "# Benchmark results",
        "",
        f"Run {results['date']} on {m.get('cpus')} CPUs ({m.get('cpu', '?')}), {m.get('memory_gib', '?')} GiB RAM, "
        f"Python {m.get('python')}; took {results['duration_s']} s. Load average (1/5/15 min) at the start "
        + "/".join(f"{x:.1f}" for x in results.get("load_average", {}).get("start", ()))
        + ", at the end " + "/".join(f"{x:.1f}" for x in results.get("load_average", {}).get("end", ())) + ".",
        f"Versions: rlm-kernel {v.get('rlm-kernel')}, rlms {v.get('rlms')}, dspy {v.get('dspy')}, "
        f"anthropic SDK {v.get('anthropic')}.",
        f"Fake Anthropic server on loopback: {st['root_latency']} s per root turn, {st['sub_latency']} s per sub-call; "
        f"{st['repeats']} trial(s) per system in sections 1–2 (medians shown), systems alternating."
        + (" **Quick mode: smoke numbers, not a benchmark.**" if st["quick"] else ""),
        "",
    ]
    for name, reason in results.get("skipped", {}).items():
        lines.append(f"- **{name} not run**: {reason}")
    deno = results.get("dspy_deno_sandbox")
    if deno and not deno.get("ok"):
        lines.append(f"- dspy.RLM's default sandbox (Deno {', '.join(deno.get('deno') or [])} + Pyodide) cannot start "
                     f"here: `{deno.get('reason')}`. dspy.RLM was measured with dspy's own `LocalInterpreter`.")
    lines.append("")

    rows = _entries(results, "overhead")
    if rows:
        lines += ["## 1. Orchestration overhead", "",
                  "Wall time of one run minus the critical path (every root turn plus the slowest sub-call of each "
                  "batch), as a share of the critical path. Trajectory: inspect, a batch of 8 sub-calls, one more "
                  "sub-call, answer.", "",
                  "A *cold* call is the first in a fresh process (it pays for creating SDK clients and the first "
                  "request); a *warm* call is the next one in the same process, as in a notebook.", "",
                  "| system | call | wall (s) | critical path (s) | overhead (s) | overhead | first root request (s) "
                  "| correct |",
                  "|---|---|---:|---:|---:|---:|---:|---|"]
        for label, e in rows:
            lines.append(f"| {label} | {e['phase']} | {_s(e.get('wall'))} | {_s(e.get('critical_path'), '{:.2f}')} | "
                         f"{_s(e.get('overhead_s'))} | {_s(e.get('overhead_ratio'), '{:.1%}')} | "
                         f"{_s(e.get('first_root_request_s'))} | {_status(e)} |")
        lines.append("")

    rows = _entries(results, "fanout")
    if rows:
        lines += [f"## 2. Fan-out: {st['fanout']} sub-calls in one batch", "",
                  "Batch time is measured inside the REPL around the `llm_query_batched` call; the server span is "
                  "from the first sub-call's arrival to the last one's reply. One sub-call takes "
                  f"{st['sub_latency']} s, so a batch sent all at once needs {st['sub_latency']} s. *default* is each "
                  f"system's own concurrency limit: {RLMOptions().concurrency} for rlm-kernel (`concurrency` option), "
                  "16 for rlms "
                  "(`LMHandler.batch_max_concurrent`, not settable through `RLM(...)`), 8 for dspy.RLM (a fixed "
                  "thread pool in `llm_query_batched`).", "",
                  "| system (concurrency) | call | batch time (s) | server span (s) | run wall (s) | correct |",
                  "|---|---|---:|---:|---:|---|"]
        for label, e in rows:
            lines.append(f"| {label} | {e['phase']} | {_s(e.get('fanout_in_repl_s'))} | "
                         f"{_s(e.get('fanout_server_span_s'))} | {_s(e.get('wall'))} | {_status(e)} |")
        lines.append("")

    rows = _entries(results, "tokens")
    if rows:
        lines += [f"## 3. Input tokens over a {st['steps']}-step run", "",
                  "From the fake server's accounting (tokens = characters / 4). Uncached = every prompt token at "
                  "the full price; billed-equivalent = uncached input + 0.1 × cache reads + 1.25 × cache writes.",
                  "",
                  "| system | root requests | prompt tokens (uncached) | cache reads | cache writes | "
                  "billed-equivalent | billed / uncached | overhead | correct |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
        for label, e in rows:
            t = e.get("tokens") or {}
            lines.append(f"| {label} | {len(e.get('root_prompt_tokens') or [])} | "
                         f"{t.get('input_uncached_equivalent', '—'):,} | {t.get('cache_read', 0):,} | "
                         f"{t.get('cache_write', 0):,} | {_s(t.get('billed_equivalent_input'), '{:,.0f}')} | "
                         f"{_s(e.get('billed_ratio'), '{:.1%}')} | {_s(e.get('overhead_ratio'), '{:.1%}')} | "
                         f"{_status(e)} |")
        lines.append("")

    rows = _entries(results, "scale")
    if rows:
        lines += ["## 4. Context scale", "",
                  "Time from the call to the first root request (server clock), peak resident memory of the process "
                  "tree minus what it was with the context already built, and characters of the context found in "
                  "root requests. The trajectory never prints the context.", "",
                  "| context (chars) | system | first root request (s) | RSS overhead (MB) | RSS overhead / context "
                  "| context chars to root | wall (s) | correct |",
                  "|---:|---|---:|---:|---:|---:|---:|---|"]
        for label, e in rows:
            n = e.get("context_chars")
            lines.append(f"| {n:,} | {label} | {_s(e.get('first_root_request_s'))} | "
                         f"{_s((e.get('rss_overhead_bytes') or 0) / MB, '{:.0f}')} | "
                         f"{_s(e.get('rss_overhead_ratio'), '{:.0%}')} | {e.get('context_chars_to_root', '—'):,} | "
                         f"{_s(e.get('wall'))} | {_status(e)} |" if n else f"| ? | {label} | {_status(e)} |")
        lines.append("")

    io = results.get("iopub") or {}
    lines += ["## 5. Kernel IOPub bytes per step", "", io.get("summary") or io.get("note") or "Not measured.", ""]

    ratios = results["summary"].get("ratios") or {}
    if ratios:
        lines += ["## Ratios (peer / rlm-kernel, same run)", "", "| measure | ratio |", "|---|---:|"]
        lines += [f"| {k} | {v:.2f}× |" for k, v in ratios.items()]
        lines.append("")
    tg = results["summary"].get("targets") or []
    if tg:
        lines += ["## Targets (rlm-kernel)", "", "| target | measured | met |", "|---|---:|---|"]
        lines += [f"| {t['target']} | {t['value']} | {'yes' if t['met'] else '**no**'} |" for t in tg]
        lines.append("")
    return "\n".join(lines)


def plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    colours = {"ours": "#1f77b4", "rlms": "#ff7f0e", "dspy": "#2ca02c"}

    def save(fig: Any, name: str) -> None:
        path = out_dir / name
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    rows = _entries(results, "overhead")
    if rows:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        labels = [f"{r[0]}\n{r[1]['phase']}" for r in rows]
        ax.bar(labels, [1000 * r[1].get("overhead_s", 0) for r in rows],
               color=[colours.get(r[1]["system"], "grey") for r in rows])
        crit = rows[0][1]["critical_path"]
        ax.axhline(30 * crit, ls="--", c="r", lw=1, label="target: 3 % of critical path")
        ax.set_ylabel("overhead over critical path (ms)")
        ax.set_title(f"1. Orchestration overhead (critical path {crit:.1f} s)")
        ax.legend(fontsize=8)
        save(fig, "overhead.png")

    rows = _entries(results, "fanout", "warm") or _entries(results, "fanout")
    if rows:
        st = results["settings"]
        fig, ax = plt.subplots(figsize=(6, 3.2))
        ax.bar([r[0] for r in rows], [r[1].get("fanout_in_repl_s", 0) for r in rows],
               color=[colours.get(r[1]["system"], "grey") for r in rows])
        ax.axhline(st["sub_latency"], ls=":", c="k", lw=1, label="one sub-call")
        ax.axhline(1.3, ls="--", c="r", lw=1, label="target 1.3 s")
        ax.set_ylabel("batch time (s)")
        ax.set_title(f"2. {st['fanout']} sub-calls in one batch ({rows[0][1]['phase']} calls)")
        ax.legend(fontsize=8)
        ax.tick_params(axis="x", labelsize=8)
        save(fig, "fanout.png")

    rows = _entries(results, "tokens")
    if rows:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for label, e in rows:
            series = e.get("root_prompt_tokens") or []
            a1.plot(range(1, len(series) + 1), series, marker=".", label=label, color=colours.get(e["system"]))
        a1.set_xlabel("root turn")
        a1.set_ylabel("prompt tokens sent")
        a1.set_title("3. Prompt size per root turn")
        a1.legend(fontsize=8)
        labels = [r[0] for r in rows]
        unc = [(r[1].get("tokens") or {}).get("input_uncached_equivalent", 0) for r in rows]
        bil = [(r[1].get("tokens") or {}).get("billed_equivalent_input", 0) for r in rows]
        xs = range(len(labels))
        a2.bar([x - 0.2 for x in xs], unc, width=0.4, label="uncached", color="#bbbbbb")
        a2.bar([x + 0.2 for x in xs], bil, width=0.4, label="billed-equivalent",
               color=[colours.get(r[1]["system"], "grey") for r in rows])
        a2.set_xticks(list(xs), labels)
        a2.set_ylabel("input tokens, whole run")
        a2.set_title("Input tokens with prompt caching")
        a2.legend(fontsize=8)
        save(fig, "tokens.png")

    io = results.get("iopub") or {}
    if io.get("bytes_per_step"):
        fig, ax = plt.subplots(figsize=(6, 3.2))
        series = io["bytes_per_step"]
        ax.plot(range(1, len(series) + 1), series, lw=1, color=colours["ours"])
        ax.set_yscale("log")
        ax.set_xlabel("step (root turn)")
        ax.set_ylabel("IOPub bytes")
        ax.set_title(f"5. Kernel IOPub bytes per step ({io['steps']} steps)")
        save(fig, "iopub.png")

    rows = _entries(results, "scale")
    if rows:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        for system in sorted({e["system"] for _, e in rows}):
            pts = sorted((e["context_chars"], e) for _, e in rows if e["system"] == system and "context_chars" in e)
            xs = [p[0] for p in pts]
            a1.plot(xs, [p[1].get("first_root_request_s") for p in pts], marker="o", label=system,
                    color=colours.get(system))
            a2.plot(xs, [100 * p[1].get("rss_overhead_ratio", 0) for p in pts], marker="o", label=system,
                    color=colours.get(system))
        for ax in (a1, a2):
            ax.set_xscale("log")
            ax.set_xlabel("context characters")
            ax.legend(fontsize=8)
        a1.set_yscale("log")
        a1.set_ylabel("time to first root request (s)")
        a1.set_title("4. Start-up vs context size")
        a2.set_ylabel("peak RSS overhead (% of context)")
        a2.set_title("Memory beyond the context itself")
        save(fig, "scale.png")
    return written


def write(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Write results.md and the plots; without matplotlib the Markdown says the plots were skipped."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(results)
    written: list[Path] = []
    try:
        written = plots(results, out_dir)
    except ImportError:
        text += ("\n_Plots skipped: matplotlib is not installed in this interpreter "
                 "(benchmarks/setup_peers.sh installs it)._\n")
    if written:
        text += "\n" + "\n".join(f"![{p.stem}]({p.name})" for p in written) + "\n"
    md = out_dir / "results.md"
    md.write_text(text)
    return [md, *written]
