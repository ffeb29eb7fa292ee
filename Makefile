# teiji — the commands a newcomer needs. Everything runs from a local virtualenv (.venv).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: help install demo test lint typecheck unit iac package bench clean

help:
	@echo "make demo     run a simulated week of ticks on the embedded AWS emulation (no account needed)"
	@echo "make test     lint, type-check and run the whole test suite"
	@echo "make package  build the Lambda zip (dist/teiji-lambda.zip) without Docker"
	@echo "make bench    run the scale benchmark and write bench/results.json"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/teiji demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

package: $(STAMP)
	$(BIN)/python infra/build_lambda.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
