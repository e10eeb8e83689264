"""Time many small prints in one generated cell through the headless executor (rlm() and child runs).

    python -m benchmarks.cell_output [--prints 250000] [--repeats 3]

Prints the median wall time; the cell limit is 120 s by default, and a 25 s limit is common. Capture
that grows quadratically with the number of writes shows up here long before it shows up in a test."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from rlm_kernel.engine.executor import HeadlessExecutor


def once(prints: int) -> float:
    code = f"for i in range({prints}):\n    print(i)"
    t0 = time.perf_counter()
    outcome = asyncio.run(HeadlessExecutor().run_cell(code, timeout=None))
    took = time.perf_counter() - t0
    assert len(outcome.outputs) == 1 and outcome.outputs[0]["text"].count("\n") == prints
    return took


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prints", type=int, default=250_000)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    times = [once(args.prints) for _ in range(args.repeats)]
    print(f"{args.prints:,} prints in one cell: median {statistics.median(times):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
