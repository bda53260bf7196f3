PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test lint typecheck bench screenshots install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the whole system on localbase: localbase, one worker and the dock (Ctrl-C stops all).
## Options: make up UP_ARGS="--realtime-profile hosted" (see python -m devstack.up --help).
up: $(STAMP)
	$(BIN)/python -m devstack.up $(UP_ARGS)

## Install into .venv and run every test.
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Re-take the dock's screenshots in docs/screenshots/ (the browser tests write them).
screenshots: $(STAMP)
	JOBDOCK_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest tests/e2e

BENCHMARKS := localbase_rest localbase_realtime cancel_latency throughput peers documents dock

## Every benchmark in turn (tens of minutes, tables on stdout); some: make bench BENCHMARKS="throughput dock"
## The peers measured side by side (the bench extra) are installed for it only: tests do not need them.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@for name in $(BENCHMARKS); do \
		echo "== bench/$$name.py"; $(BIN)/python bench/$$name.py || exit 1; \
	done

clean:
	rm -rf $(VENV) .localbase
