"""The Makefile's front door as a newcomer meets it: `make serve` without API keys says how to
set them and serves with demo keys (named), and keeps the audit log inside the demo folder."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def _serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`make serve` with a stand-in `graphfraud` that prints what it was given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "graphfraud"
    fake.write_text('#!/bin/sh\necho "keys=$GRAPHFRAUD_SERVICE__API_KEYS args=$*"\n')
    fake.chmod(0o755)
    base = {k: v for k, v in os.environ.items() if k != "GRAPHFRAUD_SERVICE__API_KEYS"}
    return subprocess.run(
        ["make", "-s", "serve", f"BIN={bin_dir}", "STAMP=", f"DEMO={tmp_path / 'demo'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=60,
    )


def test_make_serve_without_keys_sets_demo_keys_and_says_so(tmp_path: Path) -> None:
    (tmp_path / "demo" / "run").mkdir(parents=True)
    (tmp_path / "demo" / "run" / "manifest.json").write_text("{}")
    proc = _serve(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "GRAPHFRAUD_SERVICE__API_KEYS is not set: serving with demo keys" in proc.stdout
    assert "X-API-Key: demo-scorer" in proc.stdout
    assert 'keys=["demo-scorer:scorer", "demo-analyst:analyst"]' in proc.stdout
    assert f"--audit-log {tmp_path / 'demo' / 'audit.log'}" in proc.stdout


def test_make_serve_keeps_the_keys_you_set(tmp_path: Path) -> None:
    (tmp_path / "demo" / "run").mkdir(parents=True)
    (tmp_path / "demo" / "run" / "manifest.json").write_text("{}")
    proc = _serve(tmp_path, GRAPHFRAUD_SERVICE__API_KEYS='["mine:scorer"]')
    assert proc.returncode == 0, proc.stderr
    assert "demo keys" not in proc.stdout
    assert 'keys=["mine:scorer"]' in proc.stdout


def test_make_serve_without_a_demo_run_says_make_demo(tmp_path: Path) -> None:
    proc = _serve(tmp_path)
    assert proc.returncode != 0
    assert "run 'make demo' first" in proc.stderr
