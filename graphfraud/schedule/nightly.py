"""One night, for teams without Airflow (cron, a systemd timer): `graphfraud nightly`.

Under the runs directory's lock (two nights never overlap; a second fails at once naming the
first): interrupted runs are marked failed, tonight's run is written to `<runs_dir>/<name>`
(default: today's UTC date) building on the run CURRENT names, checked, and only then does
CURRENT move to it. Anything that fails leaves CURRENT, and so the served snapshot and the next
night's base, where it was; the failed run says why in its manifest, and rerunning the night
repairs it. The Airflow DAG runs the same steps as separate tasks and moves the pointer with the
same `move_current`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from graphfraud.config import Settings
from graphfraud.errors import ArtifactError
from graphfraud.schedule.lock import RunLock
from graphfraud.schedule.pointer import move_current, read_current
from graphfraud.schedule.runs import RunState, mark_interrupted
from graphfraud.schema import NIGHTLY_LOCK_FILE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class NightlyResult:
    run_dir: Path
    previous: Path | None  # the run it built on (None: a full first night)
    marked_interrupted: tuple[RunState, ...]


def night_name(now: datetime | None = None) -> str:
    """Tonight's run directory name: the UTC date (one run per night; reruns repair it)."""
    return f"{(now or datetime.now(UTC)):%Y-%m-%d}"


def run_nightly(
    runs_dir: Path,
    users: Path,
    devices: Path | None,
    settings: Settings,
    *,
    name: str | None = None,
    progress: bool = False,
    say: Callable[[str], None] | None = None,
) -> NightlyResult:
    """Lock, mark interrupted runs, run tonight on top of CURRENT, check, move CURRENT."""
    from graphfraud.pipeline import run_pipeline

    night = name or night_name()
    if not night or "/" in night or night.startswith(".") or night == "CURRENT":
        raise ArtifactError(
            f"--name {night!r} is not a run directory name", hint="e.g. --name 2026-03-01"
        )
    runs_dir.mkdir(parents=True, exist_ok=True)
    out = runs_dir / night
    with RunLock(runs_dir / NIGHTLY_LOCK_FILE, f"graphfraud nightly {night}") as lock:
        if lock.stale is not None:
            logger.warning("the last nightly died holding its lock: %s", lock.stale.describe())
        marked = tuple(mark_interrupted(runs_dir))
        previous = read_current(runs_dir)
        if previous is not None and previous.resolve() == out.resolve():
            raise ArtifactError(
                f"night {night!r} is already the current run: it is served and is the next "
                "night's base, so it is not rewritten in place",
                hint="to redo it, first point CURRENT back (`graphfraud current --runs-dir "
                f"{runs_dir} --set EARLIER`), then rerun the night",
            )
        run_pipeline(
            users,
            devices,
            out,
            settings,
            progress=progress,
            say=say,
            previous=previous,
        )
        move_current(runs_dir, out, min_user_ratio=settings.service.swap_min_user_ratio)
    return NightlyResult(out, previous, marked)
