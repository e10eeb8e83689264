"""How far the token estimate (rlm_kernel/engine/tokens.py) is from a real tokenizer, per kind of text.

    ../shared/localmodel/serve.sh 1.5b 8765
    python -m benchmarks.token_calibration --server http://127.0.0.1:8765

Counts each sample with llama-cpp-python's `POST /extras/tokenize/count` (the served model's own
tokenizer) and prints characters per token and estimate / real. The estimate is meant to read at
least 1.0 everywhere except rare CJK ideographs, and near 1.1 on English. Run it while the server is
idle: it serves one request at a time, tokenizing included."""

from __future__ import annotations

import argparse
import base64
import json
import random
import urllib.request
from pathlib import Path

from rlm_kernel.engine.tokens import estimate_tokens

from .tasks import lookup, niah, oolong, records

ROOT = Path(__file__).resolve().parent.parent


def samples() -> dict[str, str]:
    rng = random.Random(0)
    return {
        "english (README)": (ROOT / "README.md").read_text()[:6000],
        "code (engine/run.py)": (ROOT / "rlm_kernel" / "engine" / "run.py").read_text()[:6000],
        "niah prose": niah(6000, 0).context,
        "oolong records": oolong(60, 0).context,
        "sales records": records(150, 0).context,
        "dict repr": lookup(200, 0).text,
        "chinese": "我们今天去公园散步，天气很好，阳光明媚。他说这个问题很重要，需要认真考虑。" * 40,
        "japanese": "今日は天気がいいので、公園に散歩に行きました。とても楽しかったです。" * 40,
        "rare CJK": "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(2000)),
        "base64": base64.b64encode(rng.randbytes(3000)).decode(),
        "hex": rng.randbytes(2000).hex(),
        "digits": " ".join(str(rng.randrange(10**6)) for _ in range(800)),
        "cyrillic": "Привет, как дела? Сегодня хорошая погода, и мы пойдём гулять в парк. " * 40,
    }


def count(server: str, text: str) -> int:
    body = json.dumps({"input": text}).encode()
    req = urllib.request.Request(f"{server.rstrip('/')}/extras/tokenize/count", data=body,
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=900) as resp:  # it waits while the server is generating
        return int(json.loads(resp.read())["count"])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.token_calibration", description=__doc__.split("\n\n")[0])
    p.add_argument("--server", default="http://127.0.0.1:8765", help="a llama-cpp-python server (no /v1)")
    args = p.parse_args(argv)
    print(f"{'sample':<22} {'chars':>6} {'tokens':>6} {'chars/token':>11} {'estimate/real':>13}")
    for name, text in samples().items():
        real = count(args.server, text)
        print(f"{name:<22} {len(text):>6} {real:>6} {len(text) / real:>11.2f} {estimate_tokens(text) / real:>13.2f}")


if __name__ == "__main__":
    main()
