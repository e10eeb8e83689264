# Two entry points, each doing all set-up on a fresh machine:
#   make quickstart   run example_notebooks/01_quickstart.ipynb end to end (demo model without a key)
#   make test         lint and run the whole test suite, browser tests included
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: quickstart test lab venv chromium bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	touch $@

venv: $(VENV)/.installed

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

quickstart: venv
	$(PY) -m rlm_kernel install --sys-prefix
	$(PY) -m rlm_kernel.quickstart

lab: quickstart
	$(VENV)/bin/jupyter lab example_notebooks/01_quickstart.ipynb

test: venv chromium
	$(PY) -m ruff check .
	$(PY) -m pytest -q -ra

bench: venv
	$(PY) -m benchmarks.run
