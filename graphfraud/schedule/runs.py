"""A runs directory as a scheduler sees it: its runs, how each ended (or that it is still going,
or was interrupted), which one is current; and the guard every writer of a run directory holds.

A run's state comes from its manifest and its lock (`RUN_LOCK_FILE`, held by whichever process
writes the run: `graphfraud run`, a stage verb, `graphfraud nightly`):

| state         | manifest         | lock                                                    |
|---------------|------------------|---------------------------------------------------------|
| `complete`    | `complete`       | —                                                       |
| `failed`      | `failed`         | — (`failed_stage` and the one-line `error` say why)     |
| `running`     | `running`        | held by a live process (its pid, host, start)           |
| `interrupted` | `running`        | nobody holds it: the process died without a word        |
|               |                  | (SIGKILL, OOM killer, power) in the stage it names      |
| `unreadable`  | missing / broken | —                                                       |

`interrupted` is derived, read-only; `mark_interrupted` writes it into the manifest as
`status: failed` (`graphfraud nightly` does before it starts, `graphfraud status
--mark-interrupted` on demand). Between two stage verbs of a scheduler (Airflow) a run also
reads `interrupted` until the next stage starts; the nightly DAG runs one night at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from graphfraud.errors import ArtifactError
from graphfraud.rundir import RunDir
from graphfraud.schedule.lock import LockOwner, RunLock, lock_state
from graphfraud.schedule.pointer import read_current
from graphfraud.schema import MANIFEST_FILE, RUN_LOCK_FILE

COMPLETE, FAILED, RUNNING, INTERRUPTED, UNREADABLE = (
    "complete",
    "failed",
    "running",
    "interrupted",
    "unreadable",
)


@dataclass(frozen=True)
class RunState:
    """One run directory's state (see the module table)."""

    name: str
    path: Path
    state: str
    run_id: str | None = None
    created_at: str | None = None
    finished_at: str | None = None
    stage: str | None = None  # running now, interrupted in, or failed in
    error: str | None = None
    holder: LockOwner | None = None  # the live process writing it
    last_holder: LockOwner | None = None  # the process that died holding it
    current: bool = False
    previous: str | None = None  # the run it built on (its directory name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "path": str(self.path),
            "state": self.state,
            "run_id": self.run_id,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
            "stage": self.stage,
            "error": self.error,
            "holder": None if self.holder is None else self.holder.describe(),
            "last_holder": None if self.last_holder is None else self.last_holder.describe(),
            "current": self.current,
            "previous": self.previous,
        }


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def run_state(path: Path, *, current: bool = False) -> RunState:
    """The state of the run directory at `path` (see the module table)."""
    try:
        manifest = RunDir(path).manifest()
    except ArtifactError as exc:
        return RunState(path.name, path, UNREADABLE, error=str(exc), current=current)
    status = manifest.get("status")
    previous = manifest.get("previous")
    common: dict[str, Any] = {
        "run_id": _text(manifest.get("run_id")),
        "created_at": _text(manifest.get("created_at")),
        "finished_at": _text(manifest.get("finished_at")),
        "current": current,
        "previous": Path(previous["path"]).name
        if isinstance(previous, dict) and isinstance(previous.get("path"), str)
        else None,
    }
    if status == COMPLETE:
        return RunState(path.name, path, COMPLETE, **common)
    if status == FAILED:
        return RunState(
            path.name,
            path,
            FAILED,
            stage=_text(manifest.get("failed_stage")),
            error=_text(manifest.get("error")),
            **common,
        )
    if status != RUNNING:
        said = "no status" if status is None else f"status {status!r}"
        return RunState(path.name, path, UNREADABLE, error=f"its manifest has {said}", **common)
    lock = lock_state(path / RUN_LOCK_FILE)
    stage = _text(manifest.get("stage"))
    if lock.holder is not None:
        return RunState(path.name, path, RUNNING, stage=stage, holder=lock.holder, **common)
    return RunState(
        path.name,
        path,
        INTERRUPTED,
        stage=stage,
        error=_interrupted_reason(stage, lock.stale),
        last_holder=lock.stale,
        **common,
    )


def _interrupted_reason(stage: str | None, last: LockOwner | None) -> str:
    where = f"in stage {stage!r}" if stage else "before its first stage"
    who = f"its process, {last.describe()}," if last is not None else "its process"
    return (
        f"interrupted {where}: {who} ended without finishing or recording a failure "
        "(killed, out of memory, or the machine went down); rerun the night to repair it"
    )


def _sort_key(state: RunState) -> tuple[str, str]:
    return (state.created_at or "", state.name)


def run_states(runs_dir: Path) -> list[RunState]:
    """Every run directory in `runs_dir` (those with a manifest), newest started first."""
    if not runs_dir.is_dir():
        raise ArtifactError(
            f"runs directory {runs_dir} does not exist", hint="pass the directory runs go into"
        )
    try:
        current = read_current(runs_dir)
    except ArtifactError:
        current = None
    current_path = current.resolve() if current is not None else None
    states = [
        run_state(child, current=child.resolve() == current_path)
        for child in runs_dir.iterdir()
        if child.is_dir() and (child / MANIFEST_FILE).is_file()
    ]
    return sorted(states, key=_sort_key, reverse=True)


@contextmanager
def hold_run(run_dir: Path, what: str) -> Iterator[RunLock]:
    """Hold the run directory's lock while writing it: a second writer fails at once naming
    this one. The run CURRENT names is refused: it is being served and is the next night's
    base, so it is never rewritten in place (write the rerun to another directory, or move
    the pointer back first)."""
    try:
        current = read_current(run_dir.parent)
    except ArtifactError:
        current = None
    if current is not None and current.resolve() == run_dir.resolve():
        raise ArtifactError(
            f"{run_dir} is the current run (named by {current.parent / 'CURRENT'}): it is "
            "served and the next night builds on it, so it is not rewritten in place",
            hint="write the rerun into another run directory, or first point CURRENT at "
            "another run (`graphfraud current --set NAME`)",
        )
    with RunLock(run_dir / RUN_LOCK_FILE, what) as lock:
        yield lock


def mark_interrupted(runs_dir: Path) -> list[RunState]:
    """Record every interrupted run in `runs_dir` as `status: failed` (stage and reason), under
    its own lock so no writer starts meanwhile; returns the runs it marked."""
    marked = []
    for state in run_states(runs_dir):
        if state.state != INTERRUPTED:
            continue
        try:
            lock = RunLock(state.path / RUN_LOCK_FILE, "graphfraud: mark interrupted").acquire()
        except ArtifactError:
            continue  # a writer took it up in the meantime: not interrupted after all
        try:
            run = RunDir(state.path)
            manifest = run.manifest()
            if manifest.get("status") != RUNNING:
                continue
            manifest["status"] = FAILED
            manifest["failed_stage"] = state.stage or "unknown"
            manifest["error"] = state.error
            manifest["failed_at"] = datetime.now(UTC).isoformat()
            manifest.pop("stage", None)
            run.write_json(MANIFEST_FILE, manifest)
            marked.append(run_state(state.path, current=state.current))
        finally:
            lock.release()
    return marked
