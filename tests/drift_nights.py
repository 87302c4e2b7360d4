"""Two nights for the report and the retrain policy: night 1 is the session's online run
(`tests/online_run.py`), night 2 a different, fraud-heavy population of 2,000 users run through
the CLI with `--previous` night 1, `--retrain auto` and `--fail-on-drift`, on a copy of night
1's registry (so night 1's promoted model is the one to beat, and night 1 stays untouched)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from graphfraud.synthetic import generate_population, write_population

DAY2_USERS = 2000
DAY2_FRAUD_SHARE = 0.25  # ~5x night 1's: the score distribution must move


@dataclass(frozen=True)
class DriftNights:
    day1: Path
    day2: Path
    registry: Path  # night 2's registry (night 1's copied, then night 2's models)
    run: subprocess.CompletedProcess[str]  # night 2's `graphfraud run`


def build_drift_nights(root: Path, day1: Path, day1_registry: Path) -> DriftNights:
    registry = root / "models"
    shutil.copytree(day1_registry, registry)
    write_population(
        generate_population(DAY2_USERS, seed=23, fraud_share=DAY2_FRAUD_SHARE), root / "data"
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "graphfraud",
            "run",
            "--users",
            str(root / "data/users.csv"),
            "--devices",
            str(root / "data/devices.csv"),
            "--out",
            str(root / "day2"),
            "--previous",
            str(day1),
            "--registry",
            str(registry),
            "--models",
            "gbm",
            "--retrain",
            "auto",
            "--fail-on-drift",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return DriftNights(day1, root / "day2", registry, proc)
