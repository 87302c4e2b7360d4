"""One night as cron runs it (services/cron/graphfraud-nightly.sh → `graphfraud nightly`), real
processes: it builds on CURRENT and moves it, a second night meanwhile fails fast naming the
first, a run killed earlier is marked failed, and a failed night leaves CURRENT and says why."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from graphfraud.errors import ArtifactError
from graphfraud.schedule.nightly import run_nightly
from graphfraud.schedule.pointer import read_current, write_current
from graphfraud.schedule.runs import FAILED, run_state
from tests.schedule.conftest import (
    NIGHT_ONE,
    ROOT,
    SAMPLE,
    copy_run,
    graphfraud,
    graphfraud_bin,
    small_env,
    small_settings,
)
from tests.schedule.test_runs import _wait_for_stage

SCRIPT = ROOT / "services" / "cron" / "graphfraud-nightly.sh"


def test_the_cron_night_builds_on_current_moves_it_and_never_overlaps(
    night_one: Path, tmp_path: Path
) -> None:
    runs = tmp_path / "runs"
    write_current(runs, copy_run(night_one, runs, NIGHT_ONE))
    killed = copy_run(night_one, runs, "2026-02-27", status="running", stage="link")
    night = datetime.now(UTC).strftime("%Y-%m-%d")
    exports = tmp_path / "exports" / night
    exports.mkdir(parents=True)
    for name in ("users.csv", "devices.csv"):
        (exports / name).write_bytes((SAMPLE / name).read_bytes())
    env = small_env(
        tmp_path,
        GRAPHFRAUD_BIN=str(graphfraud_bin(tmp_path)),
        GRAPHFRAUD_RUNS_DIR=str(runs),
        GRAPHFRAUD_EXPORTS=str(tmp_path / "exports"),
    )
    cron = subprocess.Popen(
        ["sh", str(SCRIPT)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        _wait_for_stage(runs / night, "model")
        # Hold the first night where it is (alive, its lock held) while the second starts: a
        # small night can otherwise finish in the seconds the second takes to start.
        os.kill(cron.pid, signal.SIGSTOP)
        try:
            second = graphfraud(
                "nightly", "--runs-dir", str(runs), "--users", str(SAMPLE / "users.csv"),
                "--name", "another", "-q", env=env,
            )  # fmt: skip
        finally:
            os.kill(cron.pid, signal.SIGCONT)
        assert second.returncode == 1
        said = " ".join(second.stderr.split())
        assert f"graphfraud nightly {night} (pid {cron.pid}" in said  # the script execs it
        assert not (runs / "another").exists()
        output, _ = cron.communicate(timeout=600)
    finally:
        cron.kill()
        cron.wait()
    assert cron.returncode == 0, output
    assert read_current(runs) == runs / night
    manifest = json.loads((runs / night / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["previous"]["path"] == str((runs / NIGHT_ONE).resolve())
    marked = run_state(killed)
    assert (marked.state, marked.stage) == (FAILED, "link")
    assert "interrupted in stage 'link'" in (marked.error or "")
    shown = graphfraud("status", "--runs-dir", str(runs), env=env)
    assert shown.returncode == 0, shown.stdout


def test_a_failed_night_leaves_current_and_says_why(night_one: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_current(runs, copy_run(night_one, runs, NIGHT_ONE))
    empty = tmp_path / "users.csv"
    empty.write_text("user_id,email\n")
    env = small_env(tmp_path)
    failed = graphfraud(
        "nightly", "--runs-dir", str(runs), "--users", str(empty), "--name", "2026-03-01", "-q",
        env=env,
    )  # fmt: skip
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert "no user rows" in " ".join(failed.stderr.split())
    assert read_current(runs) == runs / NIGHT_ONE
    state = run_state(runs / "2026-03-01")
    assert (state.state, state.stage) == (FAILED, "ingest")
    shown = graphfraud("status", "--runs-dir", str(runs), env=env)
    assert shown.returncode == 1
    assert "no user rows" in shown.stdout
    by_hand = graphfraud("current", "--runs-dir", str(runs), "--set", "2026-03-01", env=env)
    assert by_hand.returncode == 1  # nor can CURRENT be moved to it by hand
    assert "failed in stage 'ingest'" in " ".join(by_hand.stderr.split())
    assert read_current(runs) == runs / NIGHT_ONE


def test_a_night_that_is_already_current_is_not_rewritten(night_one: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    night = copy_run(night_one, runs, "2026-03-01")
    write_current(runs, night)
    before = (night / "manifest.json").read_text()
    with pytest.raises(ArtifactError, match="already the current run"):
        run_nightly(runs, SAMPLE / "users.csv", None, small_settings(tmp_path), name="2026-03-01")
    assert (night / "manifest.json").read_text() == before
    assert read_current(runs) == night
    with pytest.raises(ArtifactError, match="not a run directory name"):
        run_nightly(runs, SAMPLE / "users.csv", None, small_settings(tmp_path), name="../x")
