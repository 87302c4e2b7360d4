#!/bin/sh
# One graphfraud night, for cron or a systemd timer (services/cron/crontab,
# services/systemd/graphfraud-nightly.{service,timer}).
#
# `graphfraud nightly` does the work: it holds the runs directory's lock (a night still running
# makes this one fail at once, naming it), marks runs killed mid-way as failed, runs tonight into
# $GRAPHFRAUD_RUNS_DIR/<UTC date> on top of the run CURRENT names, checks it and only then moves
# CURRENT, which `graphfraud serve --runs-root $GRAPHFRAUD_RUNS_DIR` follows. Exit code 0: a new
# current run; 1: tonight failed (CURRENT unchanged; `graphfraud status` says where and why).
#
# Settings come from the environment (an EnvironmentFile under systemd, never the command line):
#   GRAPHFRAUD_BIN         the project's graphfraud executable   [/opt/graphfraud/.venv/bin/graphfraud]
#   GRAPHFRAUD_RUNS_DIR    runs directory                        [/srv/graphfraud/runs]
#   GRAPHFRAUD_EXPORTS     where tonight's export lands          [/srv/graphfraud/exports]
#                          ($GRAPHFRAUD_EXPORTS/<UTC date>/users.parquet, devices.parquet; or .csv)
#   GRAPHFRAUD_GRAPH__URI, GRAPHFRAUD_GRAPH__PASSWORD, GRAPHFRAUD_MODEL__REGISTRY, …: graphfraud's
#                          own settings (docs: README, "Nightly schedule")
set -eu

bin=${GRAPHFRAUD_BIN:-/opt/graphfraud/.venv/bin/graphfraud}
runs=${GRAPHFRAUD_RUNS_DIR:-/srv/graphfraud/runs}
exports=${GRAPHFRAUD_EXPORTS:-/srv/graphfraud/exports}
night=$(date -u +%Y-%m-%d)
# tonight's export: users.parquet (or users.csv), devices.parquet (or devices.csv) if any
pick() {
    for ext in parquet csv; do
        if [ -f "$exports/$night/$1.$ext" ]; then echo "$exports/$night/$1.$ext"; return; fi
    done
}
users=$(pick users)
devices=$(pick devices)

if [ -z "$users" ]; then
    echo "graphfraud-nightly: no users export for $night in $exports/$night; CURRENT stays" >&2
    exit 1
fi
if [ -n "$devices" ]; then
    exec "$bin" nightly --runs-dir "$runs" --name "$night" --users "$users" --devices "$devices" --quiet
fi
exec "$bin" nightly --runs-dir "$runs" --name "$night" --users "$users" --quiet
