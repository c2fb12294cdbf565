# Quick start: `make demo` and `make test` on a fresh machine with Python 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-main: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-main

demo: $(VENV)/.installed-main  ## install and run the whole product once (embedded: SQLite in ./var, jobs in process)
	$(BIN)/pilotdial demo

test: $(VENV)/.installed-test lint typecheck unit  ## install with test extras, lint, type-check, run the suite

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

unit: $(VENV)/.installed-test
	$(BIN)/pytest -n 2 --dist loadgroup

bench: $(VENV)/.installed-test  ## run the benchmarks (minutes)
	$(BIN)/python benchmarks/clean_1m.py
	$(BIN)/python benchmarks/pacing.py
	$(BIN)/python benchmarks/feasibility_backtest.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
