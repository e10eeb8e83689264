"""The run states the front-end unit tests (widgets/test/*.spec.ts) draw, made by real runs.

Each fixture is the tree output (its mime bundle: the static text/html and the
`application/vnd.rlm.run+json` run state) of a `%%rlm` cell executed by the real rlm kernel
(nbclient) against the fake Anthropic server: exactly what a saved notebook holds, so the renderer
is tested on what the kernel really sends. Random ids and clock times are replaced by
stable ones so the files stay put in git; tests/test_widget_fixtures.py fails when the kernel's
output shape moves away from them.

    python tests/widget_fixtures.py      # rewrite widgets/test/fixtures/*.json
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT_DIR = Path(__file__).resolve().parents[1]
if str(ROOT_DIR) not in sys.path:
    sys.path.insert(0, str(ROOT_DIR))

from rlm_kernel.kernel.testing import jupyter_sandbox  # noqa: E402
from rlm_kernel.testing import by_question  # noqa: E402
from rlm_kernel.testing.fake_anthropic import FakeAnthropic  # noqa: E402
from rlm_kernel.widget.view import RUN_MIME  # noqa: E402

FIXTURES = ROOT_DIR / "widgets" / "test" / "fixtures"
ROOT = "claude-sonnet-5-5"
#: A sub-model with no price in the table: the header must say "cost unknown for" it.
UNPRICED = "my-local-sub"
T0 = 1_700_000_000.0
PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="

ANALYSIS = [
    "Let me look.\n```repl\nimport base64\nfrom IPython.display import HTML, Image, Markdown, display\n"
    "display(HTML('<table class=\"dataframe\"><thead><tr><th>box</th><th>widgets</th></tr></thead>'"
    "'<tbody><tr><td>A</td><td>4</td></tr></tbody></table>'))\n"
    f"display(Image(data=base64.b64decode('{PNG_1PX}'), width=40))\n"
    "display(Markdown('| col | n |\\n|---|---|\\n| md table cell | 1 |'))\n"
    "print('printed once')\n1/0\n```",
    "Ask the sub-model about each box.\n```repl\n"
    "answers = llm_query_batched([f'count box {b}' for b in 'ABC'])\nprint(answers)\n```",
    "Now a child run.\n```repl\nsub = rlm_query('Summarise the answers', context='A: 4')\n"
    "print('child said', sub)\n```",
    "FINAL(## Widgets\n\n| box | widgets |\n|---|---|\n| A | **4** |\n\nCounted **4** widgets.)",
]
CHILD = ["Child looks.\n```repl\nprint('child sees', len(context))\n```", "FINAL(child summary)"]


def run_notebook(cells: list[str], work: Path, timeout: int = 300) -> Any:
    """Execute `cells` on the rlm kernel as nbclient does (headless, the kernel's own display path)
    and return the executed notebook, as it would be saved."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "rlm", "display_name": "RLM (Python 3)", "language": "python"}
    NotebookClient(nb, timeout=timeout, kernel_name="rlm", resources={"metadata": {"path": str(work)}}).execute()
    return nb


def magic(srv: FakeAnthropic, question: str, extra: str = "") -> str:
    return f"%%rlm --provider anthropic --base-url {srv.base_url} --model {ROOT} --max-retries 0 {extra}\n{question}"


def tree_output(nb: Any) -> dict[str, Any]:
    """The mime bundle of the last cell's tree output (text/plain, the static text/html, RUN_MIME)."""
    return dict(next(o["data"] for o in nb.cells[-1].outputs if RUN_MIME in o.get("data", {})))


def _run(srv: FakeAnthropic, question: str, context: str, extra: str = "") -> dict[str, Any]:
    """One `%%rlm` cell run by the real kernel; its saved tree output, made stable."""
    with tempfile.TemporaryDirectory() as tmp, jupyter_sandbox(Path(tmp)) as work:
        os.environ["ANTHROPIC_API_KEY"] = "test-key"  # the sandbox puts the environment back after
        nb = run_notebook([f"context = {context!r}", magic(srv, question, extra)], work)
        return stable(tree_output(nb), work)


def stable(bundle: dict[str, Any], work: Path) -> dict[str, Any]:
    """Ids, paths and clock times a test can rely on: run and sub-call ids in order of appearance,
    times from T0, no log path."""
    state = dict(bundle[RUN_MIME])
    items = json.loads(state["items_json"])  # as saved: implied fields stay implied
    names: dict[str, str] = {}
    subs: dict[str, str] = {}
    times = [i["t"] for i in items if isinstance(i.get("t"), int | float)]
    start = min(times) if times else T0

    def run_name(rid: Any) -> Any:
        if not isinstance(rid, str):
            return rid
        return names.setdefault(rid, "root" if not names else f"child-{len(names)}")

    for item in items:
        for key in ("run_id", "parent_run_id", "root_run_id", "child_run_id"):
            if key in item:
                item[key] = run_name(item[key])
        for key in ("id", "parent_subcall_id"):
            if isinstance(item.get(key), str):
                item[key] = subs.setdefault(item[key], f"s{len(subs) + 1}")
        if isinstance(item.get("t"), int | float):
            item["t"] = round(T0 + item["t"] - start, 3)
    html = "".join(bundle["text/html"])
    for old, new in [(str(work), "/work"), *names.items()]:
        html = html.replace(old, new)
    state.update(comm_id="", log_path=None, items_json=json.dumps(items, separators=(",", ":"), ensure_ascii=False))
    return {**bundle, "text/html": html, RUN_MIME: state}


def analysis(srv: FakeAnthropic) -> dict[str, Any]:
    """Four steps: rich outputs and a failed cell, a batch with one failed prompt, a child run, and
    a Markdown answer with a table; the sub-model has no known price."""
    srv.route(root=by_question(ANALYSIS, {"Summarise the answers": CHILD}), sub=lambda r: "4 widgets")
    srv.inject(400, times=1, message="box B is unreadable",
               match=lambda r: r.model == UNPRICED and "count box B" in r.last_user_text())
    return _run(srv, "Count the widgets.", "box A: 4 widgets", f"--sub-model {UNPRICED}")


def batch(srv: FakeAnthropic, prompts: int = 1000, failing: int = 737) -> dict[str, Any]:
    """One `llm_query_batched` of `prompts` prompts, prompt `failing` failing."""
    srv.route(root=[f"Fan out.\n```repl\nres = llm_query_batched([f'item {{i}}' for i in range({prompts})])\n"
                    "print(len(res), 'answers')\n```", "FINAL(batch done)"], sub="fine")
    srv.inject(400, times=1, message=f"item {failing} is bad",
               match=lambda r: r.last_user_text().strip() == f"item {failing}")
    return _run(srv, "Fan out over everything.", "x", "--max-subcalls 5000")


MAKERS = {"analysis": analysis, "batch1000": batch}


def make(name: str) -> dict[str, Any]:
    with FakeAnthropic(root_model=ROOT) as srv:
        srv.latency = 0.0
        return MAKERS[name](srv)


def main() -> None:
    FIXTURES.mkdir(parents=True, exist_ok=True)
    for name in MAKERS:
        path = FIXTURES / f"{name}.json"
        path.write_text(json.dumps(make(name), indent=1, sort_keys=True) + "\n")
        print(f"wrote {path.relative_to(ROOT_DIR)} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
