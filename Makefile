# `make demo` sets up and runs the demo; `make test` sets up and runs the checks and tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000

.PHONY: install demo test test-fast check lint typecheck contracts defs bench pictures dev serve clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,scale]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m apps.demo

# ruff, the type checker, the import-layer contracts and the Dagster definitions, then every test.
test: check
	$(PY) -m pytest -q

# The same checks and the tests not marked slow (no webserver, browser or crash subprocesses),
# on two workers (a test file stays on one worker: the database-server tests share a database).
test-fast: check
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile

check: lint typecheck contracts defs

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

contracts: install
	PYTHONPATH=$(CURDIR) $(BIN)/lint-imports

defs: install
	cd $(CURDIR) && PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg check defs

bench: install
	$(PY) bench/drift.py
	$(PY) bench/window.py
	$(PY) bench/evidently_app.py
	$(PY) bench/estimation.py
	$(PY) bench/ingest.py
	$(PY) bench/operational.py
	$(PY) bench/apps.py
	$(PY) bench/detection.py
	$(PY) bench/multivariate.py
	$(PY) bench/service.py

# The monitoring service (dashboard, HTTP ingestion, results API, /metrics) on the demo's stores.
SERVE_PORT ?= 8080
serve: install
	MM_UI_URL=$${MM_UI_URL:-http://127.0.0.1:$(SERVE_PORT)} $(BIN)/mm serve --port $(SERVE_PORT)

# The README's pictures of each built-in app, from the demo's results (run `make demo` first).
pictures: install
	$(PY) docs/pictures.py

dev: install
	DAGSTER_HOME=$${MM_HOME:-$(CURDIR)/.mm_home}/dagster $(BIN)/dagster dev -w workspace.yaml -p $(PORT)

clean:
	rm -rf $(VENV) .mm_home
