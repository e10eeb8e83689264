"""Opening a 1,000-prompt batch in the run tree: DOM nodes and time, in a real JupyterLab.

A run on the RLM kernel sends `llm_query_batched` 1,000 prompts (fake server on loopback, one prompt
fails), then the step and its sub-call list are opened in headless Chromium and measured:

* **open**: from the click on the list's toggle to the second animation frame after it (the rows
  drawn, laid out and painted), first open and the median of the re-opens;
* **DOM nodes** in the open list and in the whole run view (its timeline's 1,000 bars included),
  and the sub-call rows in the DOM;
* **next error**: from the click on "Next error" to the failed row on screen.

Needs chromium and playwright, as the browser tests do. Run from the repository root, after the
extension is built (`make labextension`):

    python -m benchmarks.batch_open          # this checkout's build
    python -m benchmarks.batch_open --build before=/other/checkout/rlm_kernel/labextension \
                                    --build after=rlm_kernel/labextension

Each `--build NAME=DIR` is measured in the same run (one JupyterLab server each, serving DIR as the
rlm-kernel extension). Writes benchmarks/results/batch_open.{md,json} unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT_DIR / "tests" / "browser"))

import labkit  # noqa: E402  (the browser tests' JupyterLab and Chromium set-up)
from test_run_tree import open_notebook, run_cell  # noqa: E402

from rlm_kernel.testing.fake_anthropic import FakeAnthropic  # noqa: E402

MODEL = "claude-sonnet-5-5"
PROMPTS = 1000
FAILING = 737

# Click a toggle and wait two animation frames: the handler's DOM work, then layout and paint.
TIMED_CLICK = """async (sel) => {
  const el = document.querySelector(sel);
  const t0 = performance.now();
  el.click();
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""
COUNTS = """() => { const run = document.querySelector("[data-testid='rlm-run']");
  const list = run.querySelector('.rlm-tree > [data-step="1"] .rlm-sublist');
  return { run: run.querySelectorAll('*').length, list: list ? list.querySelectorAll('*').length : 0,
           rows: list ? list.querySelectorAll("[data-testid='rlm-subcall']").length : 0 }; }"""
NEXT_ERROR = """async () => {
  const run = document.querySelector("[data-testid='rlm-run']");
  const t0 = performance.now();
  run.querySelector("[data-testid='rlm-next-error']").click();
  for (;;) {
    const row = run.querySelector('.rlm-sub-failed');
    if (row) {
      const r = row.getBoundingClientRect();
      if (r.height > 0 && r.top >= 0 && r.bottom <= innerHeight) break;
    }
    await new Promise(r => requestAnimationFrame(r));
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return performance.now() - t0;
}"""
GROUP = ".rlm-tree > [data-step='1'] .rlm-group-head"


def measure(build: Path, repeats: int) -> dict[str, Any]:
    """One JupyterLab serving `build`, one 1,000-prompt run, the list opened `repeats` + 1 times."""
    from playwright.sync_api import expect, sync_playwright

    labkit.link_labextension = lambda share: _link(share, build)
    with tempfile.TemporaryDirectory() as tmp, FakeAnthropic(root_model=MODEL) as srv:
        srv.route(root=[f"Fan out.\n```repl\nres = llm_query_batched([f'item {{i}}' for i in range({PROMPTS})])\n"
                        "print(len(res), 'answers')\n```", "FINAL(batch done)"], sub="fine")
        srv.latency = 0.0
        srv.inject(400, times=1, message=f"item {FAILING} is bad",
                   match=lambda r: r.last_user_text().strip() == f"item {FAILING}")
        lab = labkit.Lab(Path(tmp) / "lab", "perCommTarget",
                         env={"ANTHROPIC_API_KEY": "bench-key", "RLM_RUNS_DIR": str(Path(tmp) / "runs")})
        try:
            url = lab.notebook("batch.ipynb", [
                "context = 'x'",
                f"%%rlm --provider anthropic --base-url {srv.base_url} --model {MODEL} --max-retries 1 "
                f"--max-subcalls 5000\nFan out over everything."])
            with sync_playwright() as pw:
                ctx = pw.chromium.launch_persistent_context(
                    str(Path(tmp) / "chromium"), executable_path=labkit.find_chromium(), headless=True,
                    args=labkit.CHROMIUM_FLAGS, viewport={"width": 1400, "height": 1000})
                page = ctx.pages[0] if ctx.pages else ctx.new_page()
                page.set_default_timeout(120_000)
                open_notebook(page, url)
                run_cell(page, 0, wait=True)
                run_cell(page, 1)
                run = page.locator("[data-testid='rlm-run']")
                expect(run.locator("[data-testid='rlm-status']")).to_have_text("done", timeout=180_000)
                expect(run.locator("[data-testid='rlm-meta']")).to_contain_text(f"{PROMPTS:,} sub-calls")
                page.locator(".rlm-tree > [data-step='1'] .rlm-step-head").click()
                page.locator(GROUP).wait_for()
                opens = []
                for i in range(repeats + 1):
                    opens.append(page.evaluate(TIMED_CLICK, GROUP))
                    if i == 0:
                        counts = page.evaluate(COUNTS)
                    if i < repeats:
                        page.evaluate(TIMED_CLICK, GROUP)  # close it again
                next_error = page.evaluate(NEXT_ERROR)
                after = page.evaluate(COUNTS)
                failed = run.locator(".rlm-sub-failed").inner_text()
                ctx.close()
        finally:
            lab.end_sessions()
            lab.stop()
    return {"open_first_ms": round(opens[0], 1), "open_median_ms": round(statistics.median(opens[1:] or opens), 1),
            "opens_ms": [round(x, 1) for x in opens], "list_nodes": counts["list"], "run_nodes": counts["run"],
            "rows_in_dom": counts["rows"], "next_error_ms": round(next_error, 1), "list_nodes_after_next_error":
            after["list"], "rows_after_next_error": after["rows"], "found": f"item {FAILING}" in failed}


def _link(share: Path, build: Path) -> None:
    target = share / "labextensions" / "rlm-kernel"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(build.resolve(), target_is_directory=True)


def report(results: dict[str, dict[str, Any]], started: float, took: float, repeats: int) -> str:
    load = os.getloadavg()
    lines = [
        "# Opening a 1,000-prompt batch in the run tree",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))} on {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, headless Chromium, JupyterLab (`python -m benchmarks.batch_open`); "
        f"took {took:.0f} s; load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}.",
        "",
        f"One `%%rlm` run sends `llm_query_batched` {PROMPTS:,} prompts to the fake server (prompt {FAILING} fails). "
        "The step is opened, then its sub-call list: *open* is from the click on the list's toggle to the second "
        f"animation frame after it (drawn, laid out, painted); first open, then the median of {repeats} re-opens. "
        "*Next error* is from its click to the failed row on screen. Node counts are `querySelectorAll('*')` "
        "right after the first open.",
        "",
        "| build | open, first (ms) | open, median (ms) | DOM nodes in the list | DOM nodes in the run view "
        "| rows in the DOM | next error (ms) | rows after next error | failure shown |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | {r['open_first_ms']:.1f} | {r['open_median_ms']:.1f} | {r['list_nodes']:,} | "
                     f"{r['run_nodes']:,} | {r['rows_in_dom']:,} | {r['next_error_ms']:.1f} | "
                     f"{r['rows_after_next_error']:,} | {'yes' if r['found'] else 'NO'} |")
    lines += ["",
              "The run view's count includes the timeline, which draws one bar per sub-call. Two animation "
              "frames take at least 17 ms at 60 Hz, so an *open* near 30 ms is mostly waiting for the frames. "
              "A paged build's \"next error\" switches the list to its failed rows (hence 1 row after it); a "
              "windowed one keeps the list as it was and scrolls the window to the failed row (its prompt and "
              "error opened).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", action="append", default=[], metavar="NAME=DIR",
                    help="a built rlm-kernel labextension to measure (repeatable; default: this checkout's)")
    ap.add_argument("--repeats", type=int, default=5, help="re-opens of the list after the first (default 5)")
    ap.add_argument("--out", type=Path, default=ROOT_DIR / "benchmarks" / "results", help="where to write results")
    args = ap.parse_args(argv)
    if labkit.skip_reason():
        print(labkit.skip_reason(), file=sys.stderr)
        return 2
    builds = {}
    for spec in args.build or [f"this checkout={ROOT_DIR / 'rlm_kernel' / 'labextension'}"]:
        name, _, folder = spec.partition("=")
        path = Path(folder)
        if not (path / "package.json").is_file():
            print(f"--build {spec}: no built extension there (run `make labextension` in its checkout)",
                  file=sys.stderr)
            return 2
        builds[name] = path
    started = time.time()
    results = {}
    for name, path in builds.items():
        print(f"measuring {name} ({path}) …", flush=True)
        results[name] = measure(path, args.repeats)
        print(json.dumps(results[name]), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch_open.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "batch_open.md").write_text(report(results, started, time.time() - started, args.repeats))
    print(f"wrote {args.out / 'batch_open.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
