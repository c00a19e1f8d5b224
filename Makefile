# `make demo` sets up and runs the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench dev clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test,scale]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(PY) -m apps.demo

test: install
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .

bench: install
	$(PY) bench/drift.py
	$(PY) bench/window.py
	$(PY) bench/evidently_app.py

dev: install
	DAGSTER_HOME=$${MM_HOME:-$(CURDIR)/.mm_home}/dagster $(VENV)/bin/dagster dev -w workspace.yaml

clean:
	rm -rf $(VENV) .mm_home
