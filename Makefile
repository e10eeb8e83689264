# Two entry points, each doing all set-up on a fresh machine:
#   make quickstart   run example_notebooks/01_quickstart.ipynb end to end (demo model without a key)
#   make test         lint and run the whole test suite, browser tests included
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

LABEXT := rlm_kernel/labextension
LABEXT_SHARE := $(VENV)/share/jupyter/labextensions/rlm-kernel

.PHONY: quickstart test lab venv chromium bench labextension

# The run tree's JupyterLab extension: TypeScript in widgets/, npm packages from widgets/package-lock.json,
# built by @jupyterlab/builder into rlm_kernel/labextension (the wheel ships it as shared data).
widgets/node_modules/.package-lock.json: widgets/package-lock.json
	cd widgets && npm ci --no-audit --no-fund

$(LABEXT)/package.json: widgets/node_modules/.package-lock.json widgets/package.json widgets/tsconfig.json \
		$(wildcard widgets/src/*.ts) $(wildcard widgets/style/*.css) widgets/scripts/build-labextension.mjs
	cd widgets && npm run build

labextension: $(LABEXT)/package.json

$(VENV)/.installed: pyproject.toml $(LABEXT)/package.json
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	@# an editable install copies the built extension once; a link keeps later rebuilds live
	rm -rf $(LABEXT_SHARE) && mkdir -p $(dir $(LABEXT_SHARE)) && ln -s $(CURDIR)/$(LABEXT) $(LABEXT_SHARE)
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

test: venv labextension chromium
	$(PY) -m ruff check .
	cd widgets && npm test
	$(PY) -m pytest -q -ra

bench: venv
	$(PY) -m benchmarks.run
