"""Locks so two runs never overlap: an exclusive `flock` on a file that names its holder.

The kernel drops an flock when its process ends, however it ends (SIGKILL, OOM killer), so a
dead holder never blocks the next run. What a dead holder does leave is its record in the file:
a holder that lets go normally empties the file, so a record found by the next holder is a
*stale* lock, the trace of a process that died holding it, which the caller reports (and
`graphfraud status` uses to say which process a run died in).

`lock_holder(path)` tells a live holder from a stale record without taking the lock from
anybody: a run whose manifest says `running` and whose lock nobody holds was interrupted.
Locks are advisory and local to the machine's kernel (and to NFSv4 servers, which carry flock);
every writer in this package takes them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from graphfraud.errors import ArtifactError

# A holder writes its record right after it gets the lock, and a `lock_state` probe holds it for
# microseconds: a rival retries this long before it gives up (and names the holder).
RECORD_WAIT_S = 0.5


@dataclass(frozen=True)
class LockOwner:
    """Who holds (or last held) a lock: enough to find the process and say what it does."""

    pid: int
    host: str
    started_at: str
    what: str

    def describe(self) -> str:
        return f"{self.what} (pid {self.pid} on {self.host}, since {self.started_at})"

    @classmethod
    def parse(cls, text: str) -> LockOwner | None:
        """The record in a lock file, or None when it is empty or not one of ours."""
        try:
            data: Any = json.loads(text)
            return cls(
                pid=int(data["pid"]),
                host=str(data["host"]),
                started_at=str(data["started_at"]),
                what=str(data.get("what", "")),
            )
        except (ValueError, KeyError, TypeError):
            return None


def _read_record(fd: int) -> LockOwner | None:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return LockOwner.parse(b"".join(chunks).decode("utf-8", "replace"))


class RunLock:
    """An exclusive, non-blocking lock on `path`, held as a context manager.

    A second holder fails at once with an ArtifactError naming the first (pid, host, since
    when, doing what); `stale` is the record a dead holder left, when there was one.
    """

    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self.stale: LockOwner | None = None
        self.owner: LockOwner | None = None
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # readable by `status`
        try:
            taken = _try_exclusive(fd)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            holder = _wait_for_record(fd)
            os.close(fd)
            who = holder.describe() if holder is not None else "another process"
            raise ArtifactError(
                f"{self.path.parent} is in use: {who} holds {self.path.name}",
                hint="two runs must not overlap: wait for it to finish, or see `graphfraud status`",
            )
        self.stale = _read_record(fd)
        self.owner = LockOwner(
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=datetime.now(UTC).isoformat(timespec="seconds"),
            what=self.what,
        )
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(asdict(self.owner)).encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        """Empty the record (a clean release leaves no stale trace) and let go."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _try_exclusive(fd: int) -> bool:
    """Take the lock, retrying for a moment: `lock_state` probes hold it for microseconds."""
    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _wait_for_record(fd: int) -> LockOwner | None:
    """The live holder's record; it may be a moment from being written."""
    deadline = time.monotonic() + RECORD_WAIT_S
    while True:
        holder = _read_record(fd)
        if holder is not None or time.monotonic() >= deadline:
            return holder
        time.sleep(0.02)


@dataclass(frozen=True)
class LockState:
    """A lock file as seen from outside: `holder` is alive; `stale` died holding it."""

    holder: LockOwner | None
    stale: LockOwner | None


def lock_state(path: Path) -> LockState:
    """Whether a live process holds the lock at `path` (and who), or which dead one left it.

    Probes with a shared lock taken and dropped at once, so it never blocks a holder; a writer
    starting in that instant waits for its record like any rival (RECORD_WAIT_S) and goes on.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return LockState(None, None)
    except OSError as exc:
        raise ArtifactError(f"cannot read the lock {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockState(_wait_for_record(fd), None)
        try:
            return LockState(None, _read_record(fd))
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
