"""A budget of failed authentications per client address: guessing keys gets 429, not answers.

Each client (the connection's address; behind a proxy, the one uvicorn's `--forwarded-allow-ips`
trusts) may send `budget` unknown keys per fixed window of `window_s` seconds, counted from its
first failure. Spending the budget locks the client out until that window ends: every request
from it that needs a key — with a right key too, or a right key would tell the guesser it is
right — answers 429 with `Retry-After`. A missing key is not a guess and does not count.

Cost on success: `refusal()` is one truth test of a dict that is empty unless someone is locked
out, then one dict probe; only failures take the lock. Memory is bounded: at most `max_clients`
addresses are tracked (expired entries go first, then the oldest), so a spray of addresses
cannot grow it without limit (it can only age out its own entries).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_CLIENTS = 100_000


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int  # whole seconds, at least 1 (the Retry-After header)
    first: bool  # the first refusal of this lock-out (audited once, not once per request)


class FailedAuthLimiter:
    def __init__(
        self,
        budget: int,
        window_s: float,
        *,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: dict[str, tuple[float, int]] = {}  # client → (window start, failures)
        self._blocked: dict[str, list[float]] = {}  # client → [until, refusals so far]
        self._lock = threading.Lock()

    def refusal(self, client: str) -> Refusal | None:
        """None when `client` may try; else how long it must wait (the hot path: O(1))."""
        if not self._blocked:
            return None
        entry = self._blocked.get(client)
        if entry is None:
            return None
        now = self._clock()
        with self._lock:
            if now >= entry[0]:
                self._blocked.pop(client, None)
                return None
            entry[1] += 1
            first = entry[1] == 1
        return Refusal(max(1, math.ceil(entry[0] - now)), first)

    def fail(self, client: str) -> bool:
        """Count one unknown key from `client`; True when this failure spends the budget."""
        now = self._clock()
        with self._lock:
            start, count = self._failures.get(client, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            count += 1
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._evict(now)
            self._failures[client] = (start, count)
            if count < self.budget:
                return False
            self._blocked[client] = [start + self.window_s, 0]
            if len(self._blocked) > self.max_clients:
                self._blocked.pop(next(iter(self._blocked)))
            return True

    def tracked(self) -> int:
        return len(self._failures)

    def _evict(self, now: float) -> None:
        """Drop expired windows; when none expired, the oldest half (amortised O(1) per call)."""
        expired = [c for c, (start, _) in self._failures.items() if now - start >= self.window_s]
        for client in expired:
            del self._failures[client]
        if len(self._failures) >= self.max_clients:
            for client in list(self._failures)[: max(1, self.max_clients // 2)]:
                del self._failures[client]
