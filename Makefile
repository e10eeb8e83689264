# Two entry points, each doing all set-up on a fresh machine:
#   make quickstart   run example_notebooks/01_quickstart.ipynb end to end (demo model without a key)
#   make test         lint and run the whole test suite, browser tests included
# The venv installs the exact versions in constraints/test.txt; `make lock` refreshes that file on purpose.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CONSTRAINTS := constraints/test.txt

LABEXT := rlm_kernel/labextension
LABEXT_SHARE := $(VENV)/share/jupyter/labextensions/rlm-kernel

.PHONY: quickstart test lab venv chromium bench lock labextension

# The run tree's JupyterLab extension: TypeScript in widgets/, npm packages from widgets/package-lock.json,
# built by @jupyterlab/builder into rlm_kernel/labextension (the wheel ships it as shared data).
widgets/node_modules/.package-lock.json: widgets/package-lock.json
	cd widgets && npm ci --no-audit --no-fund

$(LABEXT)/package.json: widgets/node_modules/.package-lock.json widgets/package.json widgets/tsconfig.json \
		$(wildcard widgets/src/*.ts) $(wildcard widgets/style/*.css) widgets/scripts/build-labextension.mjs
	cd widgets && npm run build

labextension: $(LABEXT)/package.json

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS) $(LABEXT)/package.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c $(CONSTRAINTS) --upgrade pip
	$(PY) -m pip install -q -c $(CONSTRAINTS) -e ".[test]"
	@# an editable install copies the built extension once; a link keeps later rebuilds live
	rm -rf $(LABEXT_SHARE) && mkdir -p $(dir $(LABEXT_SHARE)) && ln -s $(CURDIR)/$(LABEXT) $(LABEXT_SHARE)
	touch $@

venv: $(VENV)/.installed

# Newest releases within pyproject's ranges, installed into a throw-away venv and written down exactly.
# Run it with the oldest Python the project supports (some releases need a newer 3.11.x than others):
#   make lock PYTHON=/usr/bin/python3.11
lock:
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install -q --upgrade pip; \
	"$$tmp/venv/bin/python" -m pip install -q -e ".[test]"; \
	mkdir -p $(dir $(CONSTRAINTS)); \
	{ echo "# Exact versions for make test and .ci/run: pip install -c $(CONSTRAINTS) -e \".[test]\"."; \
	  echo "# Written by \`make lock\` (the newest releases in pyproject.toml's ranges) with" \
	       "$$("$$tmp/venv/bin/python" -c 'import platform; print("Python", platform.python_version())')."; \
	  echo "# Refresh on purpose with the oldest Python 3.11 at hand: make lock PYTHON=/usr/bin/python3.11 && make test."; \
	  "$$tmp/venv/bin/python" -m pip freeze --all --exclude-editable --exclude setuptools; } > $(CONSTRAINTS)
	@echo "wrote $(CONSTRAINTS): $$(grep -vc '^#' $(CONSTRAINTS)) packages"

# Debian's chromium for the browser tests: installed with apt when run as root; otherwise (or with
# RLM_CHROMIUM set) left alone, and tests/browser skips itself with one line saying how to enable it.
chromium:
	@if [ -z "$$RLM_CHROMIUM" ] && ! command -v chromium >/dev/null 2>&1 \
	    && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

quickstart: venv
	$(PY) -m rlm_kernel install --sys-prefix
	$(PY) -m rlm_kernel.quickstart

lab: quickstart
	$(VENV)/bin/jupyter lab example_notebooks/01_quickstart.ipynb

# pytest's exit 5 means it collected no test: a failure here, said in words.
test: venv labextension chromium
	$(PY) -m ruff check .
	cd widgets && npm test
	@$(PY) -m pytest -q -ra; rc=$$?; \
	  if [ $$rc = 5 ]; then echo "make test: pytest ran no tests"; fi; exit $$rc

bench: venv
	$(PY) -m benchmarks.run
