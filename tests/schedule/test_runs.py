"""Run states between real processes: a writer holds its run (a second fails fast naming it), a
run killed with SIGKILL reads `interrupted` in its stage (not `running` forever), `graphfraud
status` says so with a non-zero exit, and marking records it as failed, which `--previous`
then refuses naming the last good run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from graphfraud.errors import ArtifactError
from graphfraud.rundir import open_previous
from graphfraud.schedule.pointer import write_current
from graphfraud.schedule.runs import INTERRUPTED, RUNNING, mark_interrupted, run_state, run_states
from tests.schedule.conftest import copy_run, graphfraud, small_env, start_graphfraud


def _wait_for_stage(run: Path, stage: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if json.loads((run / "manifest.json").read_text()).get("stage") == stage:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"{run.name} never reached stage {stage!r}")


def test_a_killed_run_reads_interrupted_and_is_marked_failed(
    night_one: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    good = copy_run(night_one, runs, "day1")
    write_current(runs, good)
    day2 = copy_run(night_one, runs, "day2", status="running")
    env = small_env(tmp_path)
    scoring = start_graphfraud("score", "--run", str(day2), env=env)
    try:
        _wait_for_stage(day2, "model")
        # Held where it is (alive, its lock held) until the kill below: a small night can
        # otherwise finish in the seconds the checks take.
        os.kill(scoring.pid, signal.SIGSTOP)
        state = run_state(day2)
        assert (state.state, state.stage) == (RUNNING, "model")
        assert state.holder is not None
        assert state.holder.pid == scoring.pid
        # a second writer of the same run fails at once, naming the first
        second = graphfraud("link", "--run", str(day2), env=env)
        assert second.returncode == 1
        said = " ".join(second.stderr.split())
        assert f"pid {scoring.pid}" in said
        assert "graphfraud score day2" in said
        shown = graphfraud("status", "--runs-dir", str(runs), env=env)
        assert shown.returncode == 0, shown.stdout  # running is not a failure
        assert f"pid {scoring.pid}" in shown.stdout
        os.kill(scoring.pid, signal.SIGKILL)
    finally:
        scoring.kill()
        scoring.wait()
    left = json.loads((day2 / "manifest.json").read_text())
    assert left["status"] == "running"
    assert left["stage"] == "model"  # the stage it died in
    state = run_state(day2)
    assert (state.state, state.stage) == (INTERRUPTED, "model")
    assert state.last_holder is not None
    assert state.last_holder.pid == scoring.pid
    shown = graphfraud("status", "--runs-dir", str(runs), "--json", env=env)
    assert shown.returncode == 1  # the newest run did not finish: a scheduler should alert
    rows = {row["name"]: row for row in json.loads(shown.stdout)}
    assert rows["day2"]["state"] == "interrupted"
    assert rows["day1"]["current"] is True
    with pytest.raises(ArtifactError) as refused:
        open_previous(day2)
    assert "interrupted in stage 'model'" in str(refused.value)
    assert str(good) in str(refused.value)

    marked = mark_interrupted(runs)
    assert [m.name for m in marked] == ["day2"]
    manifest = json.loads((day2 / "manifest.json").read_text())
    assert (manifest["status"], manifest["failed_stage"]) == ("failed", "model")
    assert f"pid {scoring.pid}" in manifest["error"]
    assert "stage" not in manifest
    assert mark_interrupted(runs) == []
    # the rerun repairs it, in place (it is not the current run)
    repaired = graphfraud("score", "--run", str(day2), env=env)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    manifest = json.loads((day2 / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert "failed_stage" not in manifest
    assert "error" not in manifest
    assert [s.state for s in run_states(runs)] == ["complete", "complete"]


def test_status_names_the_failed_stage_and_reason(night_one: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_current(runs, copy_run(night_one, runs, "day1"))
    copy_run(
        night_one,
        runs,
        "day2",
        status="failed",
        failed_stage="link",
        error="devices.parquet is not a readable Parquet file",
        created_at="2999-01-01T00:00:00+00:00",
    )
    env = small_env(tmp_path)
    shown = graphfraud("status", "--runs-dir", str(runs), env=env)
    assert shown.returncode == 1
    lines = shown.stdout.splitlines()
    day2 = next(line for line in lines if "day2" in line)
    assert "failed" in day2
    assert "link" in day2
    assert "not a readable Parquet file" in shown.stdout
    day1 = next(line for line in lines if "day1" in line)
    assert day1.lstrip().startswith("→")
    one = graphfraud("status", "--run", str(runs / "day1"), env=env)
    assert one.returncode == 0, one.stdout
