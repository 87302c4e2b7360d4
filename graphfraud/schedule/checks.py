"""What a run must pass before the current pointer moves to it.

The service's swap gate (`graphfraud.service.gate`: status complete, scored users and not fewer
than `service.swap_min_user_ratio` of the current run's, no null score, a model version) is the
one definition: a pointer the checks let move is a run the service will swap in, so the served
snapshot and CURRENT never disagree. On top of it, the night's own facts from the manifest: users
were accepted, and the run did not record a failed check of its own (`checks_failed`, e.g. drift
beyond its threshold under `--fail-on-drift`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphfraud.errors import ArtifactError
from graphfraud.rundir import RunDir

if TYPE_CHECKING:
    from graphfraud.scoring.snapshot import SnapshotInfo


def _info(run_dir: Path) -> SnapshotInfo:
    from graphfraud.scoring.snapshot import load_snapshot

    return load_snapshot(run_dir, with_identifiers=False).info


def run_problems(run_dir: Path, current: Path | None, *, min_user_ratio: float) -> list[str]:
    """Why CURRENT must not move from `current` to `run_dir` (empty: it may)."""
    from graphfraud.service.gate import swap_problems

    run = RunDir(run_dir)
    try:
        manifest = run.manifest()
    except ArtifactError as exc:
        return [str(exc)]
    problems = _manifest_problems(manifest)
    if problems:
        return problems
    try:
        info = _info(run_dir)
    except ArtifactError as exc:
        return [str(exc)]
    served = None
    if current is not None and current.resolve() != run_dir.resolve():
        try:
            served = _info(current)
        except ArtifactError:
            served = None  # a current run that cannot load any more is no yardstick
    return swap_problems(info, served, min_user_ratio=min_user_ratio)


def _manifest_problems(manifest: dict[str, Any]) -> list[str]:
    status = manifest.get("status")
    if status != "complete":
        if status == "failed":
            stage = manifest.get("failed_stage", "?")
            return [f"it failed in stage {stage!r}: {manifest.get('error', 'no reason recorded')}"]
        return [f"its manifest says status {status!r}, not 'complete'"]
    problems = []
    accepted = manifest.get("counts", {}).get("users", {}).get("accepted")
    if not accepted:
        problems.append("its manifest records no accepted user")
    failed = manifest.get("checks_failed")
    if isinstance(failed, list) and failed:
        problems.extend(f"check failed: {item}" for item in failed)
    return problems
