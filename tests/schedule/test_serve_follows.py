"""`graphfraud serve --runs-root DIR` follows CURRENT: a real server process swaps in the run
`graphfraud current --set` moves it to, and a refused move leaves both where they were."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from graphfraud.graph.server import free_port
from graphfraud.schedule.pointer import read_current, write_current
from tests.schedule.conftest import copy_run, graphfraud, small_env


def _served(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return str(json.loads(reply.read())["snapshot"]["run_id"])
    except OSError:
        return None


def _wait_served(port: int, run_id: str, server: subprocess.Popen[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited"
        if _served(port) == run_id:
            return
        time.sleep(0.2)
    raise AssertionError(f"the server never served {run_id!r} (serves {_served(port)!r})")


def test_the_server_follows_current(night_one: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    write_current(runs, copy_run(night_one, runs, "day1"))
    copy_run(night_one, runs, "day2")
    copy_run(night_one, runs, "day3", status="failed", failed_stage="score", error="boom")
    port = free_port()
    env = small_env(tmp_path, GRAPHFRAUD_SERVICE__AUDIT_LOG=str(tmp_path / "audit.log"))
    server = subprocess.Popen(
        [sys.executable, "-m", "graphfraud", "serve", "--runs-root", str(runs),
         "--port", str(port), "--reload-poll", "0.3"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env=env,
    )  # fmt: skip
    try:
        _wait_served(port, "day1-copy", server, timeout=120)
        moved = graphfraud("current", "--runs-dir", str(runs), "--set", "day2", env=env)
        assert moved.returncode == 0, moved.stderr
        assert "current  → day2 (was day1)" in moved.stdout
        _wait_served(port, "day2-copy", server, timeout=60)
        refused = graphfraud("current", "--runs-dir", str(runs), "--set", "day3", env=env)
        assert refused.returncode == 1
        assert "failed in stage 'score'" in " ".join(refused.stderr.split())
        assert read_current(runs) == runs / "day2"
        time.sleep(1.0)  # a few polls
        assert _served(port) == "day2-copy"
        rollback = graphfraud("current", "--runs-dir", str(runs), "--set", "day1", env=env)
        assert rollback.returncode == 0, rollback.stderr
        _wait_served(port, "day1-copy", server, timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=30)
