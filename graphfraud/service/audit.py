"""Append-only audit trail: who read which ring or link, and every admin action.

One JSON object per line: `ts` (UTC ISO-8601), `key_id` (key fingerprint, never the key), `role`,
`action`, `route` (template), `method`, `ids` (the user / ring ids asked about: the regulator needs
them), `outcome` (ok, not_found, denied, unauthenticated, rate_limited, unavailable, rejected,
error), `status`, `request_id`, `client` (the caller's address, as the server saw it). The file
is opened with O_APPEND and each record is one `write()`, so concurrent writers (threads,
workers) never interleave or overwrite; nothing ever truncates it. If a record cannot be written
the request fails with 503 (no audit, no access).

Rotation: before each record the path's (device, inode) is compared with the open file's; when
the file was renamed away (logrotate) or deleted, the path is reopened (created 0600 if missing)
so no record goes to a file nobody will read. Reopening never creates directories: a vanished
directory (an unmounted audit volume) fails closed instead of filling the disk beneath it.
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from graphfraud.service.errors import AuditUnavailable


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._lock = threading.Lock()
        self.open()

    def open(self) -> None:
        """Open for appending (idempotent: a server restarting its lifespan reopens it)."""
        with self._lock:
            if self._fd is not None:
                return
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._unavailable("open", exc) from exc
            self._open_locked()

    def _open_locked(self) -> None:
        try:
            fd = os.open(
                self.path,
                os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                0o600,
            )
        except OSError as exc:
            raise self._unavailable("open", exc) from exc
        st = os.fstat(fd)
        old, self._fd, self._identity = self._fd, fd, (st.st_dev, st.st_ino)
        if old is not None:
            os.close(old)

    def _follow_rotation_locked(self) -> None:
        """Reopen when the path no longer names the open file (renamed away or deleted)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._open_locked()
            return
        except OSError as exc:
            raise self._unavailable("check", exc) from exc
        if (st.st_dev, st.st_ino) != self._identity:
            self._open_locked()

    def _unavailable(self, verb: str, exc: OSError) -> AuditUnavailable:
        return AuditUnavailable(
            f"cannot {verb} the audit log {self.path.name!r}: {exc.strerror}",
            hint="make GRAPHFRAUD_SERVICE__AUDIT_LOG a writable file; audited routes answer "
            "503 until then, scores keep serving",
        )

    def write(
        self,
        *,
        key_id: str | None,
        role: str | None,
        action: str,
        route: str,
        method: str,
        ids: dict[str, Any],
        outcome: str,
        status: int,
        request_id: str = "",
        client: str | None = None,
    ) -> None:
        record = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "key_id": key_id,
            "role": role,
            "action": action,
            "route": route,
            "method": method,
            "ids": ids,
            "outcome": outcome,
            "status": status,
            "request_id": request_id,
            "client": client,
        }
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            if self._fd is None:
                raise AuditUnavailable("the audit log is closed")
            self._follow_rotation_locked()
            try:
                written = os.write(self._fd, line)
            except OSError as exc:
                raise self._unavailable("write", exc) from exc
            if written != len(line):
                raise AuditUnavailable("short write to the audit log", hint="is the disk full?")

    def close(self) -> None:
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                self._identity = None
