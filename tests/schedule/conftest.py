"""One real night on the committed 2,000-user sample (GBM only, 3 folds), shared by the
scheduling tests: each copies it into its own runs directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphfraud.config import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "synthetic"
NIGHT_ONE = "2026-02-28"


def small_settings(tmp: Path) -> Settings:
    settings = load_settings()
    settings.model.registry = tmp / "models"
    settings.model.folds = 3
    settings.model.candidates = ["gbm"]
    return settings


def small_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The environment of a `graphfraud` child process: this checkout's code, a small model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHFRAUD_")}
    env.update(
        {
            "PYTHONPATH": str(ROOT),
            "GRAPHFRAUD_MODEL__REGISTRY": str(tmp / "models"),
            "GRAPHFRAUD_MODEL__FOLDS": "3",
            "GRAPHFRAUD_MODEL__CANDIDATES": '["gbm"]',
            "COLUMNS": "200",
            **extra,
        }
    )
    return env


def graphfraud(
    *args: str, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphfraud", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def graphfraud_bin(tmp: Path) -> Path:
    """`graphfraud` as a scheduler runs it: one executable, this checkout's code."""
    wrapper = tmp / "graphfraud"
    wrapper.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m graphfraud "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


def start_graphfraud(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "graphfraud", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )


@pytest.fixture(scope="session")
def night_one(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A complete run (the first night: no previous) to copy."""
    from graphfraud.pipeline import run_pipeline

    tmp = tmp_path_factory.mktemp("night-one")
    run_pipeline(SAMPLE / "users.csv", SAMPLE / "devices.csv", tmp / NIGHT_ONE, small_settings(tmp))
    return tmp / NIGHT_ONE


def copy_run(source: Path, runs_dir: Path, name: str, **manifest: object) -> Path:
    """A copy of a run directory under `runs_dir/name`, its manifest updated with `manifest`."""
    target = runs_dir / name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".graphfraud-*"))
    path = target / "manifest.json"
    data = json.loads(path.read_text())
    data.update({"run_id": f"{name}-copy", **manifest})
    path.write_text(json.dumps(data))
    return target
