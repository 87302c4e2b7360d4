"""The run lock between real processes: a second holder fails at once naming the first, a
SIGKILLed holder leaves a stale record the next holder reports, a clean release leaves none."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from graphfraud.errors import ArtifactError
from graphfraud.schedule.lock import RunLock, lock_state
from tests.schedule.conftest import ROOT

HOLD = """
import sys, time
from pathlib import Path
from graphfraud.schedule.lock import RunLock
lock = RunLock(Path(sys.argv[1]), "test holder").acquire()
print("held", flush=True)
time.sleep(120)
"""


def _hold(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_fails_fast_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / "runs" / ".lock"
    holder = _hold(path)
    try:
        state = lock_state(path)
        assert state.holder is not None
        assert (state.holder.pid, state.holder.what) == (holder.pid, "test holder")
        started = time.monotonic()
        with pytest.raises(ArtifactError) as refused:
            RunLock(path, "second").acquire()
        assert time.monotonic() - started < 5  # fails fast, does not wait for the holder
        assert f"pid {holder.pid}" in str(refused.value)
        assert "test holder" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()


def test_a_killed_holder_leaves_a_stale_record_and_never_blocks(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    holder = _hold(path)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    state = lock_state(path)
    assert state.holder is None
    assert state.stale is not None
    assert state.stale.pid == holder.pid
    with RunLock(path, "next") as lock:
        assert lock.stale is not None
        assert lock.stale.pid == holder.pid
        assert lock_state(path).holder == lock.owner
    # a clean release empties the record: nothing stale is left behind
    assert lock_state(path) == lock_state(tmp_path / "absent")
    with RunLock(path, "after") as lock:
        assert lock.stale is None
