"""`python -m rlm_kernel install [--user|--sys-prefix|--prefix P]`: write the `rlm` kernelspec.

The spec written here names this interpreter by absolute path, so the kernel runs in the
environment that has rlm-kernel even when Jupyter itself lives elsewhere. The same code generates
the static kernelspec/ directory shipped in the wheel (whose argv says plain `python`, which
jupyter_client swaps for the server's own interpreter)."""

from __future__ import annotations

import argparse
import functools
import json
import math
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

KERNEL_NAME = "rlm"
DISPLAY_NAME = "RLM (Python 3)"
LOGO_SIZES = (32, 64)


def kernel_json(python: str = "python", display_name: str = DISPLAY_NAME) -> dict[str, Any]:
    return {
        "argv": [python, "-m", "rlm_kernel", "-f", "{connection_file}"],
        "display_name": display_name,
        "language": "python",
        "interrupt_mode": "signal",
        "metadata": {},
    }


def write_spec(directory: Path, python: str = "python", display_name: str = DISPLAY_NAME) -> Path:
    """kernel.json and the two logos into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "kernel.json").write_text(json.dumps(kernel_json(python, display_name), indent=1) + "\n")
    for size in LOGO_SIZES:
        (directory / f"logo-{size}x{size}.png").write_bytes(logo_png(size))
    return directory


def install(*, user: bool = False, prefix: str | None = None, name: str = KERNEL_NAME,
            display_name: str = DISPLAY_NAME) -> Path:
    """Install the kernelspec with this interpreter's absolute path; returns where it went."""
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        src = write_spec(Path(tmp) / name, python=sys.executable, display_name=display_name)
        dest = KernelSpecManager().install_kernel_spec(str(src), kernel_name=name, user=user, prefix=prefix)
    return Path(dest)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rlm_kernel install",
                                description="Install the RLM kernelspec for Jupyter.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for this user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true", help=f"in this environment ({sys.prefix})")
    where.add_argument("--prefix", metavar="P", help="under prefix P (P/share/jupyter/kernels)")
    p.add_argument("--name", default=KERNEL_NAME, help=f"kernelspec name (default {KERNEL_NAME})")
    p.add_argument("--display-name", default=DISPLAY_NAME, help=f"launcher label (default {DISPLAY_NAME!r})")
    args = p.parse_args(argv)
    if args.prefix:
        user, prefix = False, args.prefix
    elif args.sys_prefix:
        user, prefix = False, sys.prefix
    elif args.user:
        user, prefix = True, None
    else:  # a virtual environment keeps its kernel to itself; otherwise the user's directory
        in_venv = sys.prefix != sys.base_prefix
        user, prefix = (False, sys.prefix) if in_venv else (True, None)
    dest = install(user=user, prefix=prefix, name=args.name, display_name=args.display_name)
    print(f"Installed kernelspec {args.name} ({args.display_name}) in {dest}")
    return 0


# --- logo ------------------------------------------------------------------------------------------
# A small tree (one root, two children) on a rounded square: a model that calls models.

_BG = (36, 52, 92)
_FG = (250, 196, 72)
_EDGE = (235, 238, 245)


@functools.cache  # about 0.3 s of pure Python per pair; test sandboxes install the spec many times
def logo_png(size: int) -> bytes:
    """The logo as PNG bytes, drawn with 4x4 supersampling; no imaging library needed."""
    s = size / 64.0
    nodes = [(32 * s, 17 * s, 8 * s), (18 * s, 46 * s, 7 * s), (46 * s, 46 * s, 7 * s)]
    edges = [(nodes[0][:2], nodes[1][:2]), (nodes[0][:2], nodes[2][:2])]
    radius, line_w = 12 * s, 3.2 * s
    rows = []
    n = 4
    for y in range(size):
        row = bytearray([0])  # filter type 0
        for x in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(n):
                for sx in range(n):
                    px, py = x + (sx + 0.5) / n, y + (sy + 0.5) / n
                    color = _sample(px, py, size, radius, nodes, edges, line_w)
                    if color is not None:
                        for i in range(3):
                            acc[i] += color[i]
                        acc[3] += 1
            cov = acc[3]
            if cov:
                row += bytes(round(acc[i] / cov) for i in range(3)) + bytes([round(255 * cov / (n * n))])
            else:
                row += b"\0\0\0\0"
        rows.append(bytes(row))
    return _png(size, size, b"".join(rows))


def _sample(px: float, py: float, size: int, radius: float, nodes: list[tuple[float, float, float]],
            edges: list[tuple[tuple[float, float], tuple[float, float]]], line_w: float) -> tuple[int, ...] | None:
    if not _in_rounded_square(px, py, size, radius):
        return None
    for cx, cy, r in nodes:
        if math.hypot(px - cx, py - cy) <= r:
            return _FG
    for (ax, ay), (bx, by) in edges:
        if _segment_distance(px, py, ax, ay, bx, by) <= line_w / 2:
            return _EDGE
    return _BG


def _in_rounded_square(px: float, py: float, size: int, r: float) -> bool:
    cx = min(max(px, r), size - r)
    cy = min(max(py, r), size - r)
    return math.hypot(px - cx, py - cy) <= r


def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx, dy = bx - ax, by - ay
    t = max(0.0, min(1.0, ((px - ax) * dx + (py - ay) * dy) / (dx * dx + dy * dy)))
    return math.hypot(px - (ax + t * dx), py - (ay + t * dy))


def _png(width: int, height: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + \
        chunk(b"IEND", b"")


if __name__ == "__main__":  # regenerate the shipped kernelspec/: python -m rlm_kernel.kernel.install
    target = Path(__file__).resolve().parents[2] / "kernelspec"
    write_spec(target)
    print(f"wrote {target}")
