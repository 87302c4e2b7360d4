"""The run directory: where every stage's artifact lands, atomically, plus the manifest.

Each artifact is written to a temporary file and renamed into place, so a crash mid-run never
leaves a half-written Parquet file: a rerun sees either the old artifact or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud.errors import ArtifactError
from graphfraud.schema import MANIFEST_FILE, QUARANTINE_DIR


class RunDir:
    """A run directory on local disk (the embedded default for every artifact)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def ensure(self) -> RunDir:
        (self.path / QUARANTINE_DIR).mkdir(parents=True, exist_ok=True)
        return self

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self, name: str) -> bool:
        return (self.path / name).is_file()

    def write(self, name: str, frame: pl.DataFrame) -> Path:
        """Write one Parquet artifact atomically (tmp file + rename)."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        os.close(fd)
        try:
            frame.write_parquet(tmp, compression="zstd", statistics=True)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def read(self, name: str, columns: list[str] | None = None) -> pl.DataFrame:
        target = self.path / name
        if not target.is_file():
            raise ArtifactError(
                f"{target} does not exist",
                hint="run `graphfraud run` first, or point --run at a finished run directory",
            )
        try:
            return pl.read_parquet(target, columns=columns)
        except Exception as exc:  # pyarrow/polars raise many types for a corrupt file
            raise ArtifactError(f"{target} is not a readable Parquet file: {exc}") from exc

    def write_json(self, name: str, payload: dict[str, Any]) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")
        os.replace(tmp, target)
        return target

    def write_text(self, name: str, text: str) -> Path:
        """Write a small text artifact (e.g. a plot) atomically."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)
        return target

    def read_json(self, name: str) -> dict[str, Any]:
        target = self.path / name
        try:
            data = json.loads(target.read_text())
        except FileNotFoundError as exc:
            raise ArtifactError(
                f"{target} does not exist", hint="is this a finished graphfraud run directory?"
            ) from exc
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{target} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ArtifactError(f"{target} does not hold a JSON object")
        return data

    def manifest(self) -> dict[str, Any]:
        return self.read_json(MANIFEST_FILE)

    def check_finished(self, manifest: dict[str, Any]) -> None:
        """Refuse a run the batch has not finished: its artifacts may mix two runs.

        Only `status: complete` is finished; a manifest without a status is not (the batch
        writes one from its first stage on), so such a run is refused too, never assumed done.
        """
        status = manifest.get("status")
        if status != "complete":
            said = "no status" if status is None else f"status {status!r}"
            raise ArtifactError(
                f"run {self.path.name!r} is not finished ({said})",
                hint="a batch crashed or is still running: rerun it, or use the previous run",
            )

    def status(self) -> str | None:
        """The manifest's status, or None when there is no readable manifest."""
        try:
            status = self.manifest().get("status")
        except ArtifactError:
            return None
        return status if isinstance(status, str) else None


def last_complete_run(parent: Path, *, exclude: Path | None = None) -> RunDir | None:
    """The most recently finished complete run among `parent`'s run directories (by the
    manifest's `finished_at`), so a refusal can name the run to use instead."""
    best: tuple[str, RunDir] | None = None
    if not parent.is_dir():
        return None
    for child in parent.iterdir():
        if not (child / MANIFEST_FILE).is_file():
            continue
        if exclude is not None and child.resolve() == exclude.resolve():
            continue
        run = RunDir(child)
        try:
            manifest = run.manifest()
        except ArtifactError:
            continue
        finished = manifest.get("finished_at")
        if manifest.get("status") != "complete" or not isinstance(finished, str):
            continue
        if best is None or finished > best[0]:
            best = (finished, run)
    return None if best is None else best[1]


def open_previous(path: Path) -> RunDir:
    """The previous night's run an incremental run builds on: complete, or refused with a
    message that names the last good run beside it (a failed night must not seed the next)."""
    run = RunDir(path)
    if not (run.path / MANIFEST_FILE).is_file():
        raise ArtifactError(
            f"--previous {path} is not a run directory (no {MANIFEST_FILE})",
            hint="pass the directory of an earlier `graphfraud run`",
        )
    status = run.status()
    if status == "complete":
        return run
    good = last_complete_run(run.path.parent, exclude=run.path)
    said = "no status" if status is None else f"status {status!r}"
    if status == "failed":
        stage = run.manifest().get("failed_stage", "?")
        said = f"it failed in stage {stage!r}"
    elif status == "running":
        from graphfraud.schedule.runs import INTERRUPTED, run_state

        state = run_state(run.path)
        where = f" in stage {state.stage!r}" if state.stage else ""
        said = (
            f"it was interrupted{where}: its process died without finishing"
            if state.state == INTERRUPTED
            else f"it is still running{where}"
            + (f": {state.holder.describe()}" if state.holder is not None else "")
        )
    hint = (
        f"the last good run is {good.path}: pass --previous {good.path}"
        if good is not None
        else "no complete run was found beside it: run without --previous (a full night)"
    )
    raise ArtifactError(f"--previous {path} is not a complete run ({said})", hint=hint)
