"""Runs inside .venv-airflow (never the project's environment): loads the nightly DAG the way
Airflow does (from the DAGs folder) and runs one logical date with `dag.test()`, then prints one
JSON line with the DAG run's state and each task's."""

from __future__ import annotations

import json
import sys

import pendulum
from airflow.dag_processing.dagbag import DagBag

DAGS_FOLDER, DAG_ID, NIGHT = sys.argv[1:4]

bag = DagBag(dag_folder=DAGS_FOLDER)
if bag.import_errors:
    print("DAG-IMPORT-ERRORS " + json.dumps({k: str(v) for k, v in bag.import_errors.items()}))
    sys.exit(2)
dag = bag.get_dag(DAG_ID)
run = dag.test(logical_date=pendulum.parse(NIGHT))
print(
    "DAG-RESULT "
    + json.dumps(
        {
            "state": str(run.state),
            "tasks": {ti.task_id: str(ti.state) for ti in run.get_task_instances()},
            "seconds": {
                ti.task_id: round((ti.end_date - ti.start_date).total_seconds(), 1)
                for ti in run.get_task_instances()
                if ti.start_date is not None and ti.end_date is not None
            },
        }
    )
)
