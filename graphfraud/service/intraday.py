"""The service's side of the intraday store: opened with the app, emptied of the accounts each
newly swapped-in snapshot contains, and measured in `/metrics`.

An account leaves the store once a snapshot has it (the batch scored it, with everything it
knows); until then the store is what lets the replicas see today's accounts. Forgetting runs in
a background thread after the swap, a bounded chunk of ids at a time, so a reload never holds a
request up; a store that is down is retried at the next swap (TTL bounds it meanwhile).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from graphfraud.errors import IntradayUnavailable
from graphfraud.scoring.intraday import IntradayStore
from graphfraud.service.metrics import ServiceMetrics
from graphfraud.service.state import Serving

log = logging.getLogger("graphfraud.service")

FORGET_CHUNK = 1_000


class IntradayService:
    def __init__(self, store: IntradayStore | None, metrics: ServiceMetrics) -> None:
        self.store = store
        self._metrics = metrics
        self._forgetting: threading.Thread | None = None
        if store is not None:
            metrics.intraday_accounts.set_function(self._size)

    def _size(self) -> float:
        """Live accounts, or NaN when the store cannot answer (a scrape never fails on it)."""
        assert self.store is not None
        try:
            return float(self.store.size())
        except IntradayUnavailable:
            return float("nan")

    def unavailable(self) -> None:
        self._metrics.intraday_unavailable.inc()

    def forget_known(self, serving: Serving) -> None:
        """Drop, in the background, every stored account the new snapshot contains."""
        if self.store is None:
            return
        thread = threading.Thread(
            target=self._forget, args=(serving,), name="intraday-forget", daemon=True
        )
        self._forgetting = thread
        thread.start()

    def _forget(self, serving: Serving) -> None:
        assert self.store is not None
        snapshot = serving.snapshot
        gone = 0
        try:
            for chunk in _chunks(self.store.user_ids(), FORGET_CHUNK):
                known = [uid for uid in chunk if snapshot.knows(uid)]
                if known:
                    gone += self.store.forget(known)
        except IntradayUnavailable as exc:
            self.unavailable()
            log.warning("intraday store down: accounts not forgotten", extra={"error": str(exc)})
            return
        log.info(
            "intraday accounts in the new snapshot forgotten",
            extra={"run": snapshot.info.run_id, "forgotten": gone},
        )

    def wait(self, timeout: float) -> None:
        """Wait for a running forget (tests, shutdown)."""
        thread = self._forgetting
        if thread is not None:
            thread.join(timeout)

    def close(self) -> None:
        if self.store is not None:
            self.store.close()


def _chunks(ids: Iterator[str], size: int) -> Iterator[list[str]]:
    chunk: list[str] = []
    for uid in ids:
        chunk.append(uid)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
