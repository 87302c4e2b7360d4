# graphfraud front door. `make help` lists the targets.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
USERS   ?= 20000
SEED    ?= 42
DEMO    ?= demo

# Airflow 3 lives in its own environment: airflow-core pins FastAPI/SQLAlchemy the project's
# .venv must stay free of. The DAG test (tests/schedule/test_airflow_dag.py) runs it.
AIRFLOW_VENV  ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed
AIRFLOW_REQS  := services/airflow/requirements.txt
AIRFLOW_PINS  := services/airflow/constraints.txt

.DEFAULT_GOAL := help
.PHONY: help setup system-deps airflow-venv airflow-venv-refresh vendor demo test lint bench serve graphdb clean

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP) ## create .venv and install graphfraud with its dev tools

$(AIRFLOW_STAMP): $(AIRFLOW_REQS) $(AIRFLOW_PINS)
	$(PY) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -r $(AIRFLOW_REQS) -c $(AIRFLOW_PINS)
	touch $(AIRFLOW_STAMP)

airflow-venv: $(AIRFLOW_STAMP) ## Airflow 3 in its own .venv-airflow, for the DAG test (never in .venv)

airflow-venv-refresh: ## re-resolve Airflow's pins (services/airflow/constraints.txt) from requirements.txt
	rm -rf $(AIRFLOW_VENV)
	$(PY) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(AIRFLOW_VENV)/bin/pip install --quiet -r $(AIRFLOW_REQS)
	head -4 $(AIRFLOW_PINS) > $(AIRFLOW_PINS).new
	$(AIRFLOW_VENV)/bin/pip freeze >> $(AIRFLOW_PINS).new
	mv $(AIRFLOW_PINS).new $(AIRFLOW_PINS)
	touch $(AIRFLOW_STAMP)

demo: $(STAMP) ## synthetic population → batch run → summary and evaluation (no server needed)
	$(BIN)/graphfraud synth --users $(USERS) --seed $(SEED) --out $(DEMO)/data
	$(BIN)/graphfraud run --users $(DEMO)/data/users.csv --devices $(DEMO)/data/devices.csv \
		--out $(DEMO)/run --registry $(DEMO)/models
	$(BIN)/graphfraud evaluate --run $(DEMO)/run --truth $(DEMO)/data/truth.csv

# The tests start their own redis-server, PostgreSQL (initdb + pg_ctl on a temp dir) and headless
# Chromium (driven by Playwright, no browser download; it also renders report.html for the
# report's screenshot test), all Debian packages. As root on
# Debian/Ubuntu (CI) the missing ones are installed, and system services the packages may start
# are stopped and disabled: the fixtures run their own on free ports, nothing should listen on
# 6379 or 5432.
PG_INITDB = $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb))
system-deps: ## install redis-server, postgresql and chromium for the tests when missing (apt-get, as root)
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	[ -n "$(PG_INITDB)" ] || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium fonts-dejavu-core"; \
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

test: $(STAMP) $(AIRFLOW_STAMP) system-deps ## run the whole test suite (starts its own Bolt server, redis-server, PostgreSQL, Chromium; Airflow in .venv-airflow)
	$(BIN)/python -m pytest -q

lint: $(STAMP) ## ruff + mypy
	$(BIN)/ruff check graphfraud tests benchmarks
	$(BIN)/ruff format --check graphfraud tests benchmarks
	$(BIN)/mypy

bench: $(STAMP) ## quality, linking and speed benchmarks (slow; prints workload and numbers)
	$(BIN)/python benchmarks/bench_quality.py
	$(BIN)/python benchmarks/bench_linking.py

# Without GRAPHFRAUD_SERVICE__API_KEYS every request would be refused: the demo sets two demo keys
# (loopback only) and says so; set the variable to use your own.
DEMO_KEYS := ["demo-scorer:scorer", "demo-analyst:analyst"]

serve: $(STAMP) ## serve the demo run on 127.0.0.1:8000 (demo API keys unless GRAPHFRAUD_SERVICE__API_KEYS is set)
	@if [ ! -f "$(DEMO)/run/manifest.json" ]; then echo "no demo run in $(DEMO)/run: run 'make demo' first" >&2; exit 1; fi
	@if [ -z "$$GRAPHFRAUD_SERVICE__API_KEYS" ]; then \
		echo "GRAPHFRAUD_SERVICE__API_KEYS is not set: serving with demo keys (127.0.0.1 only):"; \
		echo "  X-API-Key: demo-scorer (role scorer), demo-analyst (role analyst)"; \
		echo "  e.g. curl -H 'X-API-Key: demo-scorer' http://127.0.0.1:8000/v1/users/u0000001/score"; \
		echo "  your own: export GRAPHFRAUD_SERVICE__API_KEYS='[\"<key>:scorer\", \"<key>:analyst\"]'"; \
		export GRAPHFRAUD_SERVICE__API_KEYS='$(DEMO_KEYS)'; \
	fi; \
	echo "audit log: $(DEMO)/audit.log · page: http://127.0.0.1:8000/ui/ · API docs: http://127.0.0.1:8000/docs"; \
	exec $(BIN)/graphfraud serve --run $(DEMO)/run --audit-log $(DEMO)/audit.log

clean: ## remove demo outputs (keeps .venv and .venv-airflow)
	rm -rf $(DEMO) bench-out
