# graphfraud front door. `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
USERS   ?= 20000
SEED    ?= 42
DEMO    ?= demo

.DEFAULT_GOAL := help
.PHONY: help setup system-deps demo test lint bench serve graphdb clean

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

# The tests start their own redis-server (Debian package). As root on Debian/Ubuntu (CI) it is
# installed when missing, and a system service the package may start is stopped and disabled:
# the fixture runs its own on a free port, nothing should listen on 6379. The report's
# screenshot test renders report.html in Debian's headless chromium.
system-deps: ## install redis-server and chromium for the tests when missing (apt-get, as root)
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (the report screenshot test renders report.html headless)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null; \
	else \
		echo "the tests need chromium: sudo apt-get install chromium (Debian/Ubuntu)," \
			"or any Chromium/Chrome on PATH as chromium" >&2; \
		exit 1; \
	fi
	@if command -v redis-server >/dev/null 2>&1; then \
		:; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing redis-server (the intraday-store tests start their own)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null; \
		if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then \
			systemctl disable --now redis-server >/dev/null 2>&1 || true; \
		elif command -v service >/dev/null 2>&1; then \
			service redis-server stop >/dev/null 2>&1 || true; \
		fi; \
	else \
		echo "the tests need redis-server: sudo apt-get install redis-server (Debian/Ubuntu)," \
			"brew install redis (macOS), or any redis-server >= 6 on PATH" >&2; \
		exit 1; \
	fi

test: $(STAMP) system-deps ## run the whole test suite (starts its own Bolt server and redis-server)
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
