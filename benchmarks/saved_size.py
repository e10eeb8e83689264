"""How big a notebook gets when it keeps the run tree, and where the bytes go.

One `%%rlm` cell is executed by the real rlm kernel (nbclient, the fake model server on loopback):
a seven-step analysis with a DataFrame, two charts (PNG images of a typical plot's size), a
50-prompt batch, a child run, an exception and a Markdown answer with a table. The executed
notebook is written as Jupyter saves it (nbformat, indent 1) and compared with *the same notebook
without the tree*: the generated cells' outputs, each once, as plain outputs of the cell (what the
cell would hold if the code had been typed in), plus the answer.

The tree's output is then taken apart: the static HTML copy (`text/html`), the run state
(`application/vnd.rlm.run+json`) by item type, the JSON indentation the notebook format adds,
and how often each image's base64 is in the file.

    python -m benchmarks.saved_size [--label NAME] [--scenario analysis --scenario batch1000] [--out DIR]

A second scenario, `batch1000`, is one step whose `llm_query_batched` sends 1,000 prompts (one
fails): what a saved notebook pays per sub-call. Each run adds (or replaces) the rows
"NAME · scenario" in benchmarks/results/saved_size.json and rewrites saved_size.md from all rows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import nbformat

ROOT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT_DIR / "tests"))

from widget_fixtures import magic, run_notebook  # noqa: E402

from rlm_kernel.engine.record import RunLog  # noqa: E402
from rlm_kernel.kernel.testing import jupyter_sandbox  # noqa: E402
from rlm_kernel.testing import by_question  # noqa: E402
from rlm_kernel.testing.fake_anthropic import FakeAnthropic  # noqa: E402
from rlm_kernel.widget.view import RUN_MIME  # noqa: E402

ROOT = "claude-sonnet-5-5"
RESULTS = ROOT_DIR / "benchmarks" / "results"

# a chart-sized PNG (a 640x480 plot saved by matplotlib is 20-40 KB): noise compresses badly
SETUP = '''import random, struct, zlib
def chart(seed, w=200, h=120):
    rnd = random.Random(seed)
    rows = b"".join(b"\\x00" + bytes(rnd.randrange(256) for _ in range(w * 3)) for _ in range(h))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))
context = "\\n".join(f"ticket {i}: {['billing', 'login', 'crash', 'other'][i % 4]} issue in region {i % 7}"
                     for i in range(400))'''

STEPS = [
    "Load the tickets.\n```repl\nimport pandas as pd\n"
    "df = pd.DataFrame([l.split(': ', 1) for l in context.splitlines()], columns=['ticket', 'text'])\n"
    "df['kind'] = df.text.str.split().str[0]\ndisplay(df.head(10))\nprint(len(df), 'tickets')\n```",
    "Plot the kinds.\n```repl\nfrom IPython.display import Image\ndisplay(Image(data=chart(1)))\n"
    "print(df.kind.value_counts())\n```",
    "Ask the sub-model about 50 tickets.\n```repl\n"
    "labels = llm_query_batched([f'Label this ticket: {t}' for t in df.text[:50]])\n"
    "print(labels[:5])\n```",
    "Plot the labels.\n```repl\ndisplay(Image(data=chart(2)))\n```",
    "A child run summarises.\n```repl\nsummary = rlm_query('Summarise the labels', context='\\n'.join(labels))\n"
    "print(summary)\n```",
    "Check a ratio.\n```repl\nratio = len(df) / 0\n```",
    "FINAL(## Tickets\n\n| kind | tickets |\n|---|---:|\n| billing | 100 |\n| login | 100 |\n"
    "| crash | 100 |\n| other | 100 |\n\nEach kind has **100** tickets.)",
]
CHILD = ["Child reads.\n```repl\nprint(len(context.splitlines()), 'labels')\n```", "FINAL(all labelled ok)"]


def analysis(work: Path) -> Any:
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.latency = 0.0
        srv.route(root=by_question(STEPS, {"Summarise the labels": CHILD}),
                  sub=lambda r: "label: " + r.last_user_text()[-40:])
        os.environ["ANTHROPIC_API_KEY"] = "test-key"
        return run_notebook([SETUP, magic(srv, "How are the tickets spread over kinds?")], work)


def batch1000(work: Path) -> Any:
    """One step sending 1,000 prompts (one fails), then the answer."""
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.latency = 0.0
        code = ("res = llm_query_batched([f'Label ticket {i}: ' + context[i * 50:i * 50 + 80] for i in range(1000)])\n"
                "print(len(res), 'answers')")
        srv.route(root=[f"Fan out.\n```repl\n{code}\n```", "FINAL(batch done)"],
                  sub=lambda r: "label: " + r.last_user_text()[-60:])
        srv.inject(400, times=1, message="ticket 737 is unreadable",
                   match=lambda r: r.last_user_text().startswith("Label ticket 737:"))
        os.environ["ANTHROPIC_API_KEY"] = "test-key"
        return run_notebook([SETUP.replace("range(400)", "range(1200)"),
                             magic(srv, "Label every ticket.", "--max-subcalls 5000")], work)


SCENARIOS = {"analysis": analysis, "batch1000": batch1000}


def without_tree(nb: Any, work: Path) -> Any:
    """The same notebook with the generated cells' outputs (from the run log, whole) in place of the tree."""
    plain = nbformat.from_dict(json.loads(json.dumps(nb)))
    log = next((work / "rlm_runs").glob("*.jsonl"), None)
    assert log is not None, "the run wrote no log"
    events = RunLog.read(log).events
    outputs = [nbformat.from_dict(o) for e in events if e.get("type") == "cell_finished"
               for o in e.get("outputs") or []]
    answer = next(e["answer"] for e in events if e.get("type") == "run_finished" and not e.get("parent_run_id"))
    outputs.append(nbformat.v4.new_output("execute_result", {"text/markdown": answer, "text/plain": answer},
                                          execution_count=nb.cells[-1].execution_count))
    plain.cells[-1].outputs = outputs
    return plain


def saved(nb: Any) -> str:
    return nbformat.writes(nb)  # what Jupyter's contents manager writes


def _copy(nb: Any) -> Any:
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def _size(nb: Any) -> int:
    return len(saved(nb).encode())


def measure(scenario: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, jupyter_sandbox(Path(tmp)) as work:
        nb = SCENARIOS[scenario](work)
        plain = without_tree(nb, work)
        images = [v for o in plain.cells[-1].outputs for m, v in (o.get("data") or {}).items()
                  if m.startswith("image/")]
    total = _size(nb)

    def without(*mimes: str) -> int:
        """The file's size with these parts of the tree's output left out (all: the whole output)."""
        other = _copy(nb)
        outs = other.cells[-1].outputs
        at = next(i for i, o in enumerate(outs) if RUN_MIME in o.get("data", {}))
        if mimes:
            for m in mimes:
                outs[at]["data"].pop(m)
        else:
            del outs[at]
        return _size(other)

    shown = next(o for o in nb.cells[-1].outputs if RUN_MIME in o.get("data", {}))
    state = shown["data"][RUN_MIME]
    items = state["items"] if "items" in state else json.loads(state["items_json"])
    by_type: Counter[str] = Counter()
    for item in items:
        by_type[item["type"]] += len(json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode())
    text = saved(nb)
    return {
        "saved_bytes": total, "without_tree_bytes": _size(plain),
        "larger_pct": round(100 * (total / _size(plain) - 1), 1),
        "tree_output_bytes": total - without(),
        "static_html_bytes": total - without("text/html"),
        "run_state_bytes": total - without(RUN_MIME),
        "run_state_compact_bytes": len(json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()),
        "run_state_items": len(items),
        "run_state_by_type": dict(by_type.most_common()),
        # a slice from the middle of each image's base64, counted in the saved file
        "image_copies_in_file": [text.count(b[len(b) // 2:len(b) // 2 + 100]) for b in images],
        "image_bytes": sum(len(b) for b in images),
        "took_s": round(time.perf_counter() - t0, 1),
    }


def write(rows: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "saved_size.json").write_text(json.dumps(rows, indent=1) + "\n")
    kb = lambda n: f"{n / 1024:,.1f}"  # noqa: E731
    lines = [
        "# The saved notebook with the run tree", "",
        "`python -m benchmarks.saved_size`: one `%%rlm` cell run by the rlm kernel (nbclient, fake model server) — "
        "seven steps with a DataFrame, two chart-sized PNGs, a 50-prompt batch, a child run, an exception and a "
        "Markdown answer — saved as Jupyter saves it (nbformat, indent 1). *Without the tree* is the same notebook "
        "with the generated cells' outputs, each once, as the cell's plain outputs, plus the answer.", "",
        "| build | saved (KB) | without the tree (KB) | larger | tree output (KB) | static HTML (KB) | "
        "run state as saved (KB) | run state, compact JSON (KB) | copies of each image in the file | measured |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for name, r in rows.items():
        larger = f"{r['larger_pct']} %" if r["without_tree_bytes"] > 10_000 else "—"  # batch1000 prints one line
        lines.append(f"| {name} | {kb(r['saved_bytes'])} | {kb(r['without_tree_bytes'])} | {larger} | "
                     f"{kb(r['tree_output_bytes'])} | {kb(r['static_html_bytes'])} | {kb(r['run_state_bytes'])} | "
                     f"{kb(r['run_state_compact_bytes'])} | {', '.join(map(str, r['image_copies_in_file']))} | "
                     f"{r.get('meta', {}).get('when', '?')} |")
    lines += ["", "Run state by item type (compact JSON bytes):", ""]
    types = sorted({t for r in rows.values() for t in r["run_state_by_type"]})
    lines.append("| build | " + " | ".join(types) + " |")
    lines.append("|---|" + "---:|" * len(types))
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{r['run_state_by_type'].get(t, 0):,}" for t in types) + " |")
    lines += ["", "KB are 1,024 bytes. *analysis*: the two images are 188 KB of base64 together. The static HTML "
              "copy shows them (nbconvert, GitHub and nbviewer need them there); since `unit10` the run state points "
              "to them instead of holding a second copy, holds its items as one compact JSON string instead of the "
              "notebook format's one-key-per-line indentation, and leaves out what the tree never reads or already "
              "has. *batch1000*: the static copy lists 25 of the 1,000 sub-calls; the run state keeps each with its "
              "prompt and reply cut to 120 and 240 characters (the run log has them whole)."]
    (out / "saved_size.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--label", default="this checkout")
    p.add_argument("--scenario", choices=sorted(SCENARIOS), action="append",
                   help="analysis (default) and/or batch1000; repeat for both")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args()
    for scenario in args.scenario or ["analysis"]:
        run_one(args, scenario)


def run_one(args: argparse.Namespace, scenario: str) -> None:
    result = measure(scenario)
    result["meta"] = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "python": platform.python_version()}
    path = args.out / "saved_size.json"
    rows = json.loads(path.read_text()) if path.exists() else {}
    rows[f"{args.label} · {scenario}"] = result
    write(rows, args.out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
