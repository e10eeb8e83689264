#!/usr/bin/env bash
# Build benchmarks/.peers-venv: the peers (rlms, dspy) plus rlm-kernel itself and matplotlib, in a venv
# of their own so that the peers never become dependencies of rlm-kernel.
#
#   bash benchmarks/setup_peers.sh            # create or update
#   PYTHON=python3.12 bash benchmarks/setup_peers.sh
#
# dspy.RLM's default interpreter runs generated code in Deno (Pyodide). Deno comes from the `deno`
# npm package, installed into benchmarks/.peers-venv/deno; benchmarks/run.py tries dspy's runner
# with it and records why it cannot start when it cannot (dspy is then run with LocalInterpreter).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
venv="$here/.peers-venv"
python="${PYTHON:-python3}"

RLMS_VERSION="${RLMS_VERSION:-0.1.3}"
DSPY_VERSION="${DSPY_VERSION:-3.4.1}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
    "rlms==$RLMS_VERSION" "dspy==$DSPY_VERSION" "matplotlib>=3.8" \
    -e "$repo"

if command -v npm >/dev/null 2>&1; then
    npm install --silent --no-audit --no-fund --prefix "$venv/deno" deno >/dev/null
    echo "deno: $("$venv/deno/node_modules/.bin/deno" --version | head -1)"
else
    echo "npm not found: dspy.RLM will be reported as not runnable (it needs Deno)" >&2
fi

"$venv/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("rlms", "dspy", "rlm-kernel", "matplotlib"):
    print(f"{name} {md.version(name)}")
EOF
echo "peers venv ready: $venv"
