"""The `current` pointer: `<runs_dir>/CURRENT` holds the name of the run to serve.

A one-line text file, not a symlink: it is what the service already follows
(`graphfraud serve --runs-root DIR`, polling it and refusing names outside the runs directory),
it reads the same on every filesystem and object-store mount, and a reader never follows it
out of the runs directory by accident. It is replaced atomically (temporary file, fsync,
rename, fsync of the directory), so a reader sees the old name or the new one, never a torn
write, and a crash leaves one of the two.

It moves only through `move_current`, after the run passed `graphfraud.schedule.checks` (the
service's own swap gate plus the night's), so it always names a run that can be served; the
next night builds on it (`--previous DIR/CURRENT`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from graphfraud.errors import ArtifactError
from graphfraud.schema import CURRENT_FILE, MANIFEST_FILE

MAX_NAME_CHARS = 255


def pointer_file(runs_dir: Path) -> Path:
    return runs_dir / CURRENT_FILE


def run_name(runs_dir: Path, run_dir: Path) -> str:
    """The name CURRENT holds for `run_dir`: a directory directly inside `runs_dir`."""
    parent = runs_dir.resolve()
    target = run_dir.resolve()
    if target.parent != parent or not target.is_dir():
        raise ArtifactError(
            f"{run_dir} is not a run directory directly inside {runs_dir}",
            hint="the current pointer names one of the runs directory's own run directories",
        )
    return target.name


def read_current(runs_dir: Path) -> Path | None:
    """The run directory CURRENT names (None when there is no pointer yet: the first night).

    Raises ArtifactError when the pointer is unreadable or names anything but a run directory
    inside `runs_dir` (the same rule the service applies)."""
    pointer = pointer_file(runs_dir)
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"cannot read {pointer}: {exc}") from exc
    if not name or len(name) > MAX_NAME_CHARS or "/" in name or "\\" in name or name in (".", ".."):
        raise ArtifactError(
            f"{pointer} does not name a run directory",
            hint=f"write one run directory's name into it, e.g. `graphfraud current "
            f"--runs-dir {runs_dir} --set NAME`",
        )
    run = runs_dir / name
    if not (run / MANIFEST_FILE).is_file():
        raise ArtifactError(
            f"{pointer} names {name!r}, which is not a run directory (no {MANIFEST_FILE})",
            hint=f"point it at a complete run: `graphfraud current --runs-dir {runs_dir} "
            "--set NAME`",
        )
    return run


def write_current(runs_dir: Path, run_dir: Path) -> Path:
    """Point CURRENT at `run_dir`, atomically. No checks: `move_current` is the way in."""
    name = run_name(runs_dir, run_dir)
    fd, tmp = tempfile.mkstemp(dir=runs_dir, prefix=f".{CURRENT_FILE}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)  # the service may run as another user
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(name + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, pointer_file(runs_dir))
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(runs_dir)
    return runs_dir / name


def _fsync_dir(path: Path) -> None:
    """Make the rename durable (a power cut after it must not bring the old pointer back)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def resolve_previous(previous: Path | None) -> Path | None:
    """`--previous` as given: a run directory, or a runs directory's CURRENT file, which stands
    for the run it names (None before the first night moved it: a full night)."""
    if previous is None or previous.name != CURRENT_FILE or previous.is_dir():
        return previous
    return read_current(previous.parent)


def move_current(runs_dir: Path, run_dir: Path, *, min_user_ratio: float) -> Path:
    """Point CURRENT at `run_dir` if it passes the checks (`graphfraud.schedule.checks`), else
    raise ArtifactError listing why, leaving the pointer where it was. Idempotent."""
    from graphfraud.schedule.checks import run_problems

    name = run_name(runs_dir, run_dir)
    try:
        current = read_current(runs_dir)
    except ArtifactError:
        current = None  # a broken pointer is what a good run repairs
    problems = run_problems(run_dir, current, min_user_ratio=min_user_ratio)
    if problems:
        still = f"it still names {current.name!r}" if current is not None else "it names no run"
        raise ArtifactError(
            f"the current pointer was not moved to {name!r}: {'; '.join(problems)}",
            hint=f"{still}; fix or rerun that night, then move it with `graphfraud current "
            f"--runs-dir {runs_dir} --set {name}`",
        )
    return write_current(runs_dir, run_dir)
