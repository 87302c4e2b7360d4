# graphfraud front door. `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
USERS   ?= 20000
SEED    ?= 42
DEMO    ?= demo

.DEFAULT_GOAL := help
.PHONY: help setup demo test lint bench serve graphdb clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install graphfraud with its dev tools

demo: $(STAMP) ## synthetic population → batch run → summary and evaluation (no server needed)
	$(BIN)/graphfraud synth --users $(USERS) --seed $(SEED) --out $(DEMO)/data
	$(BIN)/graphfraud run --users $(DEMO)/data/users.csv --devices $(DEMO)/data/devices.csv \
		--out $(DEMO)/run --registry $(DEMO)/models
	$(BIN)/graphfraud evaluate --run $(DEMO)/run --truth $(DEMO)/data/truth.csv

test: $(STAMP) ## run the whole test suite (starts its own local Bolt server)
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## ruff + mypy
	$(BIN)/ruff check graphfraud tests benchmarks
	$(BIN)/ruff format --check graphfraud tests benchmarks
	$(BIN)/mypy

bench: $(STAMP) ## quality, linking and speed benchmarks (slow; prints workload and numbers)
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_linking.py

serve: $(STAMP) ## serve the demo run on 127.0.0.1:8000
	$(BIN)/graphfraud serve --run $(DEMO)/run

clean: ## remove demo outputs (keeps .venv)
	rm -rf $(DEMO) bench-out
