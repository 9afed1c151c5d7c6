# Ferryman's developer entry points. Needs only Python 3.11+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test bench bench-smoke lint clean tools

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Ferryman needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.core: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.dev: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.core

## demo: create .venv, install, run the whole story on embedded defaults (SQLite, local files)
demo: $(VENV)/.core
	$(BIN)/ferryman demo

## tools: Debian packages some tests use (promtool, wrk, a C compiler for the open-loop
## generator); tests skip, saying why, without them
tools:
	@command -v promtool >/dev/null && command -v wrk >/dev/null && command -v cc >/dev/null || \
	  (command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	   apt-get update -qq && \
	   apt-get install -y -qq --no-install-recommends prometheus wrk gcc libc6-dev >/dev/null) || \
	  echo "note: promtool/wrk/cc not installed; the tests that need them will skip"

## test: create .venv with dev dependencies, run the whole suite (starts what it needs)
test: $(VENV)/.dev tools
	$(BIN)/python -m pytest -n 2 --dist loadgroup --timeout 600 $(PYTEST_ARGS)

## bench: run every benchmark with its peer or floor in the same run
bench: $(VENV)/.dev
	$(BIN)/python bench/run.py

bench-smoke: $(VENV)/.dev
	$(BIN)/python bench/run.py --smoke

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/mypy --strict bench

clean:
	rm -rf $(VENV) .ferryman .pytest_cache .mypy_cache .ruff_cache
