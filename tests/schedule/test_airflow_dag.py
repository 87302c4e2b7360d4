"""The nightly DAG under real Airflow 3, in its own environment (.venv-airflow: Airflow never
meets the project's .venv), offline: `dag.test()` runs one night, each task a real `graphfraud`
process. The night builds on the run CURRENT names and, once every task succeeded, CURRENT names
it. Its publish task goes to the embedded store (no GRAPHFRAUD_GRAPH__URI): the same verb's
Bolt publish is tested against the real server in tests/graph; a fresh ArcadeDB database under
a loaded CI host would make this test minutes slower and prove nothing more about scheduling."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from graphfraud.rundir import RunDir
from graphfraud.schedule.pointer import read_current, write_current
from tests.schedule.conftest import NIGHT_ONE, ROOT, SAMPLE, copy_run, graphfraud_bin

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

AIRFLOW_VENV = ROOT / ".venv-airflow"
DAGS = ROOT / "services" / "airflow" / "dags"
DAG_ID = "graphfraud_nightly"
NIGHT = "2026-03-01"
TASKS = ("ingest", "link", "rings", "score", "publish", "current")


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    """Airflow's interpreter; `make airflow-venv` (which `make test` runs first) makes it, and so
    does this fixture when it is missing (about a minute on 2 cores)."""
    python = AIRFLOW_VENV / "bin" / "python"
    if not (AIRFLOW_VENV / ".installed").is_file():
        subprocess.run(["make", "-C", str(ROOT), "airflow-venv"], check=True, timeout=900)
    assert python.is_file(), f"no {python}: run `make airflow-venv`"
    return python


def test_the_dag_runs_a_night_on_top_of_current_and_moves_it(
    airflow_python: Path,
    night_one: Path,
    tmp_path: Path,
) -> None:
    runs = tmp_path / "runs"
    write_current(runs, copy_run(night_one, runs, NIGHT_ONE))
    home = tmp_path / "airflow"
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "GRAPHFRAUD_AIRFLOW_BIN": str(graphfraud_bin(tmp_path)),
            "GRAPHFRAUD_AIRFLOW_RUNS_DIR": str(runs),
            "GRAPHFRAUD_AIRFLOW_USERS": str(SAMPLE / "users.csv"),
            "GRAPHFRAUD_AIRFLOW_DEVICES": str(SAMPLE / "devices.csv"),
            "GRAPHFRAUD_AIRFLOW_RETRIES": "0",
            # graphfraud's own settings reach the tasks through the worker's environment
            "GRAPHFRAUD_MODEL__REGISTRY": str(tmp_path / "models"),
            "GRAPHFRAUD_MODEL__FOLDS": "3",
            "GRAPHFRAUD_MODEL__CANDIDATES": '["gbm"]',
        }
    )
    migrate = subprocess.run(
        [str(airflow_python), "-m", "airflow", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
    proc = subprocess.run(
        [
            str(airflow_python),
            str(Path(__file__).with_name("dag_driver.py")),
            str(DAGS),
            DAG_ID,
            NIGHT,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    (tmp_path / "dag.log").write_text(out)  # Airflow's own log of the night, kept for a look
    result_line = next(
        (ln for ln in proc.stdout.splitlines() if ln.startswith("DAG-RESULT ")), None
    )
    assert result_line is not None, out[-6000:]
    result = json.loads(result_line.removeprefix("DAG-RESULT "))
    assert result["tasks"] == dict.fromkeys(TASKS, "success"), out[-6000:]
    assert result["state"] == "success"
    print("task seconds:", result["seconds"])

    night = RunDir(runs / NIGHT)
    manifest = night.manifest()
    assert manifest["status"] == "complete"
    assert manifest["previous"]["path"] == str((runs / NIGHT_ONE).resolve())
    assert set(manifest["stages"]) >= {"ingest", "link", "rings", "features", "model", "scores"}
    assert read_current(runs) == runs / NIGHT
    assert f"published run {manifest['run_id']} to embedded store" in " ".join(out.split())
