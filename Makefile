# `make demo` sets up and runs the demo; `make test` sets up and runs the checks and tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 3000
# Dagster wants an absolute DAGSTER_HOME: the demo's instance under MM_HOME (default ./.mm_home).
MM_HOME ?= .mm_home
ABS_MM_HOME := $(abspath $(MM_HOME))
DAGSTER_ENV := MM_HOME=$(ABS_MM_HOME) DAGSTER_HOME=$(ABS_MM_HOME)/dagster PATH=$(abspath $(BIN)):$$PATH

.PHONY: install demo test test-fast check lint typecheck contracts defs bench pictures dev backfill serve clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,scale,deploy]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	MM_HOME=$(ABS_MM_HOME) $(PY) -m apps.demo

# ruff, the type checker, the import-layer contracts and the Dagster definitions, then every test,
# on two workers, longest files first (tests/file_scheduling.py: a file stays on one worker).
test: check
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

# The same checks and the tests not marked slow (no webserver, browser or crash subprocesses),
# on two workers (a test file stays on one worker: the database-server tests share a database).
test-fast: check
	$(PY) -m pytest -q -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder

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
	$(PY) bench/scale.py
	$(PY) bench/service.py

# The monitoring service (dashboard, HTTP ingestion, results API, /metrics) on the demo's stores.
SERVE_PORT ?= 8080
serve: install
	$(BIN)/mm --home $(ABS_MM_HOME) init
	MM_HOME=$(ABS_MM_HOME) MM_UI_URL=$${MM_UI_URL:-http://127.0.0.1:$(SERVE_PORT)} $(BIN)/mm serve --port $(SERVE_PORT)

# The README's pictures of each built-in app, from the demo's results (run `make demo` first).
pictures: install
	$(PY) docs/pictures.py

# The Dagster UI and daemon on the demo's instance: `make dev PORT=3001` for another port.
dev: install
	mkdir -p $(ABS_MM_HOME)/dagster
	cd $(CURDIR) && $(DAGSTER_ENV) $(BIN)/dg dev --port $(PORT)

# Re-analyse one window or a range as one run: `make backfill PARTITION=2026-12-01-10:00
# [TO=2026-12-01-12:00]` (window keys in UTC; the range is inclusive).
backfill: install
	@test -n "$(PARTITION)" || { echo "usage: make backfill PARTITION=<window key, e.g. 2026-12-01-10:00> [TO=<window key>]" >&2; exit 2; }
	mkdir -p $(ABS_MM_HOME)/dagster
	cd $(CURDIR) && $(DAGSTER_ENV) $(BIN)/dg launch --job mm_monitoring_job \
		$(if $(TO),--partition-range '$(PARTITION)...$(TO)',--partition '$(PARTITION)')

clean:
	rm -rf $(VENV) .mm_home
