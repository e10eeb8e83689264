"""`python -m rlm_kernel.quickstart`: run the quickstart notebook end to end, headless.

Uses the real model when ANTHROPIC_API_KEY is set and the offline demo model otherwise (the
notebook itself decides, so opening it in JupyterLab behaves the same way)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent.parent / "example_notebooks" / "01_quickstart.ipynb"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rlm_kernel.quickstart", description=__doc__)
    parser.add_argument("notebook", nargs="?", default=str(DEFAULT))
    parser.add_argument("--output", help="where to write the executed notebook (default: <name>.executed.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)

    import nbclient
    import nbformat

    src = Path(args.notebook)
    if not src.exists():
        print(f"error: {src} not found; run from a checkout of rlm-kernel or pass a notebook path", file=sys.stderr)
        return 2
    out = Path(args.output) if args.output else src.with_name(src.stem + ".executed.ipynb")
    mode = "the real model (ANTHROPIC_API_KEY is set)" if os.environ.get("ANTHROPIC_API_KEY") else \
        "the offline demo model (no ANTHROPIC_API_KEY)"
    print(f"Running {src} on the RLM kernel with {mode} ...", flush=True)
    nb = nbformat.read(src, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name="rlm", timeout=args.timeout,
                                     resources={"metadata": {"path": str(src.parent)}})
    try:
        client.execute()
    finally:
        nbformat.write(nb, out)
    from .engine.record import list_runs

    runs = [log for log in list_runs(src.parent / "rlm_runs") if log.finished()]  # newest first
    if runs:  # the notebook shows the answer in its run tree; here it comes from the run's own record
        print("\nAnswer:\n" + str(runs[0].finished().get("answer", "")))
    print(f"\nExecuted notebook: {out}")
    print("Open it in JupyterLab with:  make lab   (or: .venv/bin/jupyter lab " + str(src) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
