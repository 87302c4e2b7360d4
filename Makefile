# graphfraud front door. `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
USERS   ?= 20000
SEED    ?= 42
DEMO    ?= demo

.DEFAULT_GOAL := help
.PHONY: help setup system-deps vendor demo test lint bench serve graphdb clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

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

# The tests start their own redis-server, PostgreSQL (initdb + pg_ctl on a temp dir) and headless
# Chromium (driven by Playwright, no browser download), all Debian packages. As root on
# Debian/Ubuntu (CI) the missing ones are installed, and system services the packages may start
# are stopped and disabled: the fixtures run their own on free ports, nothing should listen on
# 6379 or 5432.
PG_INITDB = $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
system-deps: ## install redis-server, postgresql and chromium for the tests when missing (apt-get, as root)
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	[ -n "$(PG_INITDB)" ] || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing (the tests start their own servers and browser)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		for svc in redis-server postgresql; do \
			if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet $$svc 2>/dev/null; then \
				systemctl disable --now $$svc >/dev/null 2>&1 || true; \
			elif command -v service >/dev/null 2>&1; then \
				service $$svc stop >/dev/null 2>&1 || true; \
			fi; \
		done; \
	else \
		echo "the tests need$$missing: sudo apt-get install$$missing (Debian/Ubuntu);" \
			"elsewhere any redis-server >= 6, PostgreSQL >= 13 (initdb, pg_ctl) and Chromium" >&2; \
		exit 1; \
	fi

vendor: ## re-vendor the page's cytoscape.js from package-lock.json (npm ci; needs node + npm)
	bash web/vendor.sh

test: $(STAMP) system-deps ## run the whole test suite (starts its own Bolt server, redis-server, PostgreSQL, Chromium)
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
