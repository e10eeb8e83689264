"""How much redaction at the source costs: the engine's Redactor on 1 MB outputs.

    python -m benchmarks.redaction                    # writes benchmarks/results/redaction.{json,md}
    python -m benchmarks.redaction --quick --out /tmp # a smaller, faster pass

Every cell output, sub-call and reply of a run passes through `Redactor.text` (via `deep` on the
run's events), so what matters is its time on a large output with no secret in it (the usual
case), on one that does leak, on many small strings (streamed deltas, short prints), and how that
changes with the number of secrets in the environment. For comparison it also times the
pure-Python alternative that was considered (the same anchors found with `str.find` one by one),
which grows with every secret, and detect-secrets' regex plugins when installed."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import string
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlm_kernel.engine.redaction import MARK, PIECE, Redactor

ALNUM = string.ascii_letters + string.digits
RESULTS = Path(__file__).resolve().parent / "results"


def make_output(size: int, rng: random.Random) -> str:
    """Ordinary output as generated code prints it: code, log lines, hashes, UUIDs, numbers, base64."""
    parts, n, i = [], 0, 0
    while n < size:
        i += 1
        kind = i % 5
        if kind == 0:
            line = f"    total_{i} = sum(x * {i} for x in rows[{i}:{i + 10}] if x)  # running total\n"
        elif kind == 1:
            line = f"INFO 2026-12-01 12:{i % 60:02d} processed chunk {i} in {rng.random():.3f} s\n"
        elif kind == 2:
            digest = str(i).encode()
            line = f"sha256={hashlib.sha256(digest).hexdigest()} git={hashlib.sha1(digest).hexdigest()}\n"
        elif kind == 3:
            line = f"id {uuid.UUID(int=rng.getrandbits(128))} -> {rng.randint(0, 10**9)}\n"
        else:
            line = "".join(rng.choices(ALNUM + "+/", k=76)) + "\n"
        parts.append(line)
        n += len(line)
    return "".join(parts)[:size]


def make_env(count: int, rng: random.Random) -> dict[str, str]:
    """A key, `count - 1` more credentials, and an 800-character AWS session token when count > 5."""
    env = {"ANTHROPIC_API_KEY": "sk-ant-api03-" + "".join(rng.choices(ALNUM + "-_", k=95))}
    for j in range(count - 1):
        env[f"SERVICE_{j}_TOKEN"] = "".join(rng.choices(ALNUM, k=rng.choice([32, 40, 64])))
    if count > 5:
        env["AWS_SESSION_TOKEN"] = "".join(rng.choices(ALNUM + "/+", k=800))
    return env


def best_ms(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(min(times) * 1000, 2)


def anchors_find(secrets: list[str]) -> Callable[[str], int]:
    """The pure-Python alternative: the same anchors (6 characters every 7 of each secret), each
    searched with str.find instead of one automaton; hits would then be extended the same way."""
    anchors = {s[o:o + 6] for s in secrets if len(s) >= PIECE for o in range(0, len(s) - 5, 7)}

    def scan(text: str) -> int:
        hits = 0
        for a in anchors:
            p = text.find(a)
            while p != -1:
                hits += 1
                p = text.find(a, p + 1)
        return hits

    return scan


def detect_secrets_scan() -> Callable[[str], int] | None:
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import transient_settings
    except ImportError:
        return None
    plugins = ["AWSKeyDetector", "GitHubTokenDetector", "OpenAIDetector", "SlackDetector", "BasicAuthDetector",
               "JwtTokenDetector", "PrivateKeyDetector"]

    def scan(text: str) -> int:
        with transient_settings({"plugins_used": [{"name": n} for n in plugins]}):
            return sum(1 for line in text.splitlines() for _ in scan_line(line))

    return scan


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="256 KB and 2 repeats instead of 1 MB and 7")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    size, repeats = (256_000, 2) if args.quick else (1_000_000, 7)
    rng = random.Random(42)
    text = make_output(size, rng)
    rows = []
    for count in (1, 5, 20):
        env = make_env(count, rng)
        t0 = time.perf_counter()
        r = Redactor(env=env)
        build_ms = round((time.perf_counter() - t0) * 1000, 2)
        assert r.text(text) is text, "ordinary output was changed"
        key, other = env["ANTHROPIC_API_KEY"], env["SERVICE_0_TOKEN"] if count > 1 else env["ANTHROPIC_API_KEY"]
        leaky = text[: size // 2] + (f"\n{key}\n{other[:20]} {other[20:]}\n" * 100) + text[size // 2:]
        cleaned = r.text(leaky)
        assert key not in cleaned and cleaned.count(MARK) >= 200
        small = [f"line {i}: value={i * 7}\n" for i in range(10_000)]
        rows.append({
            "secrets": len(r.secrets), "secret_chars": sum(map(len, r.secrets)), "build_ms": build_ms,
            "clean_ms": best_ms(lambda r=r: r.text(text), repeats),
            "leaky_ms": best_ms(lambda r=r, leaky=leaky: r.text(leaky), repeats),
            "small_us": round(best_ms(lambda r=r, small=small: [r.text(s) for s in small], repeats) / len(small)
                              * 1000, 2),
            "event_ms": best_ms(lambda r=r: r.deep({"outputs": [{"output_type": "stream", "text": text},
                                                                {"output_type": "display_data",
                                                                 "data": {"image/png": text, "text/plain": "<F>"}}],
                                                    "feedback": text[:20_000]}), repeats),
            "pure_python_anchors_ms": best_ms(lambda r=r: anchors_find(r.secrets)(text), repeats),
        })
    ds = detect_secrets_scan()
    result = {
        "what": f"Redactor.text on {size:,} characters of ordinary output (best of {repeats})",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
                   f"load average {os.getloadavg()[0]:.1f} while measuring",
        "date": time.strftime("%Y-%m-%d"),
        "rows": rows,
        "detect_secrets_regex_plugins_ms": best_ms(lambda: ds(text), 1) if ds else None,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "redaction.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "redaction.md").write_text(report(result))
    print(report(result))
    return result


def report(result: dict[str, Any]) -> str:
    lines = [f"# Redaction cost: {result['what']}", "", f"{result['machine']}, {result['date']}.", "",
             "| secrets (chars) | build | clean output | with 200 leaks | one event (output + image + feedback) "
             "| per small string | pure-Python anchors, for comparison |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for row in result["rows"]:
        lines.append(f"| {row['secrets']} ({row['secret_chars']:,}) | {row['build_ms']} ms | {row['clean_ms']} ms "
                     f"| {row['leaky_ms']} ms | {row['event_ms']} ms | {row['small_us']} µs "
                     f"| {row['pure_python_anchors_ms']} ms |")
    ds = result["detect_secrets_regex_plugins_ms"]
    lines += ["", "detect-secrets 1.5.0, regex plugins only, same text: "
              + (f"{ds} ms (and it reports findings, not spans)." if ds is not None else "not installed."),
              "", "The event's image/png payload (as large as the output) is skipped, not scanned.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
