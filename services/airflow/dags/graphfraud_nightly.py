"""graphfraud's night on Airflow 3: one task per CLI verb, in the run directory of the logical date.

    ingest → link → rings → score → publish → current

Each task runs the project's own `graphfraud` executable (its virtual environment, not Airflow's:
this file imports nothing from graphfraud, and Airflow's dependencies never meet the project's)
on `<runs_dir>/<ds>`, so each is idempotent on that directory: rerunning one rewrites its
artifacts atomically from the previous stage's (ingest starts the night over, publish is an
idempotent MERGE), and a task that died mid-way is repaired by its retry. `ingest` builds on
the run `<runs_dir>/CURRENT` names (`--previous DIR/CURRENT`; none yet: a full night), and the
last task moves CURRENT with the same checks as `graphfraud nightly` (`graphfraud current
--set`), so a failed night leaves the served run and the next night's base where they were.
The run CURRENT names is never rewritten in place: to rerun a night that already became
current, first point CURRENT back (`graphfraud current --runs-dir DIR --set EARLIER`).

Configuration, from the scheduler's and workers' environment (defaults of the DAG's params,
which a manual trigger may override):

| variable                    | param    | default                                        |
|-----------------------------|----------|------------------------------------------------|
| GRAPHFRAUD_AIRFLOW_BIN      | bin      | `graphfraud` (on the workers' PATH)            |
| GRAPHFRAUD_AIRFLOW_RUNS_DIR | runs_dir | /srv/graphfraud/runs                           |
| GRAPHFRAUD_AIRFLOW_USERS    | users    | /srv/graphfraud/exports/{ds}/users.parquet     |
| GRAPHFRAUD_AIRFLOW_DEVICES  | devices  | /srv/graphfraud/exports/{ds}/devices.parquet   |
| GRAPHFRAUD_AIRFLOW_SCHEDULE |          | `0 2 * * *` (02:00 UTC)                        |
| GRAPHFRAUD_AIRFLOW_RETRIES  |          | 2 (5 minutes apart)                            |

`{ds}` in a path is the night's logical date (YYYY-MM-DD); an empty devices path means none.

graphfraud's own settings (GRAPHFRAUD_GRAPH__URI, GRAPHFRAUD_GRAPH__PASSWORD,
GRAPHFRAUD_MODEL__REGISTRY, …) reach the tasks through the workers' environment: passwords never
appear on a command line. One night runs at a time (`max_active_runs=1`); each verb also holds its
run directory's lock, so a manual run into the same directory fails at once instead of mixing in.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

DAG_ID = "graphfraud_nightly"


def _env(name: str, default: str) -> str:
    return os.environ.get(f"GRAPHFRAUD_AIRFLOW_{name}", default)


# Rendered by Airflow per run: the night's paths, handed to bash as variables (never spliced
# into the command text, so a path with a space or a quote cannot change the command).
NIGHT_ENV = {
    "GF": "{{ params.bin }}",
    "RUNS": "{{ params.runs_dir }}",
    "NIGHT": "{{ ds }}",
    "RUN": "{{ params.runs_dir }}/{{ ds }}",
    "USERS": "{{ params.users | replace('{ds}', ds) }}",
    "DEVICES": "{{ params.devices | replace('{ds}', ds) }}",
}

COMMANDS = {
    "ingest": 'exec "$GF" ingest --users "$USERS" ${DEVICES:+--devices "$DEVICES"} '
    '--out "$RUN" --previous "$RUNS/CURRENT"',
    "link": 'exec "$GF" link --run "$RUN"',
    "rings": 'exec "$GF" rings --run "$RUN"',
    "score": 'exec "$GF" score --run "$RUN"',
    "publish": 'exec "$GF" publish --run "$RUN" --quiet',
    "current": 'exec "$GF" current --runs-dir "$RUNS" --set "$NIGHT"',
}

with DAG(
    dag_id=DAG_ID,
    description="graphfraud nightly batch: ingest → link → rings → score → publish → current",
    schedule=_env("SCHEDULE", "0 2 * * *"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={
        "retries": int(_env("RETRIES", "2")),
        "retry_delay": timedelta(minutes=5),
    },
    params={
        "bin": Param(_env("BIN", "graphfraud"), type="string"),
        "runs_dir": Param(_env("RUNS_DIR", "/srv/graphfraud/runs"), type="string"),
        "users": Param(_env("USERS", "/srv/graphfraud/exports/{ds}/users.parquet"), type="string"),
        "devices": Param(
            _env("DEVICES", "/srv/graphfraud/exports/{ds}/devices.parquet"), type="string"
        ),
    },
    tags=["graphfraud"],
    doc_md=__doc__,
) as dag:
    previous = None
    for task_id, command in COMMANDS.items():
        task = BashOperator(
            task_id=task_id,
            bash_command=command,
            env=NIGHT_ENV,
            append_env=True,  # graphfraud's settings come from the worker's environment
        )
        if previous is not None:
            previous >> task
        previous = task
