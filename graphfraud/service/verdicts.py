"""The service's handle on the verdict store: opened on first use, so a PostgreSQL that is down
when the service starts costs the verdict routes a 503 until it is back, never the start-up
(the score hot path never touches it)."""

from __future__ import annotations

import threading
from pathlib import Path

from graphfraud.verdicts.store import VerdictStore, open_verdict_store


class VerdictAccess:
    def __init__(self, target: str | Path) -> None:
        self._target = target
        self._store: VerdictStore | None = None
        self._lock = threading.Lock()

    def store(self) -> VerdictStore:
        """The store; raises VerdictStoreUnavailable while it cannot be opened."""
        with self._lock:
            if self._store is None:
                self._store = open_verdict_store(self._target)
            return self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
