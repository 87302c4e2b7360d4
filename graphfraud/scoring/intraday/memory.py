"""The in-process intraday store: the default for a single replica (no server).

The same stored form as the Redis store (each account kept as its JSON document, so a caller can
never mutate what the store holds, and both backends answer alike), the same index entries, under
one lock. Expired accounts are removed at the start of every call (amortised O(1): accounts sit
in record order), so counts here are exact.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left, insort
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from graphfraud.config import IntradaySettings
from graphfraud.scoring.intraday.base import (
    Holders,
    IntradayAccount,
    IntradayMatches,
    IntradayQuery,
    LookupParts,
    block_entry,
    check_bounds,
    decode_account,
    encode_account,
    index_entries,
    value_entry,
)


class MemoryIntradayStore(LookupParts):
    """Thread-safe, bounded, in-process IntradayStore (`ttl_s`, `max_accounts` from the
    settings; the rest is for the Redis store). `clock` is epoch seconds, injectable for tests."""

    def __init__(
        self, settings: IntradaySettings | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._ttl_s, self._max_accounts = check_bounds(settings or IntradaySettings())
        self._clock = clock
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # user id → record time, in record order
        self._docs: dict[str, bytes] = {}
        self._entries: dict[str, list[str]] = {}
        self._created: dict[str, float] = {}
        self._sets: dict[str, set[str]] = {}  # value / block entry → user ids
        self._numbers: dict[str, list[tuple[int, str]]] = {}  # kind → sorted (number, user id)
        self._by_created: list[tuple[float, str]] = []  # sorted (created_at, user id)

    # ---- writes ------------------------------------------------------------------------------
    def record(self, account: IntradayAccount) -> bool:
        doc, entries = encode_account(account), index_entries(account)
        uid = account.user_id
        with self._lock:
            now = self._clock()
            self._expire(now)
            new = uid not in self._seen
            if not new:
                self._drop(uid)
            # Record times never go backwards (a clock step back), so record order is time order
            # and `_expire` may stop at the first live account.
            self._seen[uid] = max(now, next(reversed(self._seen.values()), now))
            self._docs[uid] = doc
            self._entries[uid] = entries
            self._created[uid] = account.created_at
            insort(self._by_created, (account.created_at, uid))
            for entry in entries:
                if entry.startswith("n:"):
                    kind, number = entry[2:].split(":", 1)
                    insort(self._numbers.setdefault(kind, []), (int(number), uid))
                else:
                    self._sets.setdefault(entry, set()).add(uid)
            self._evict(keep=uid)
            return new

    def forget(self, user_ids: Iterable[str]) -> int:
        with self._lock:
            self._expire(self._clock())
            gone = 0
            for uid in user_ids:
                if uid in self._seen:
                    self._drop(uid)
                    gone += 1
            return gone

    def purge(self) -> int:
        with self._lock:
            return self._expire(self._clock()) + self._evict(keep=None)

    # ---- reads -------------------------------------------------------------------------------
    def lookup(self, query: IntradayQuery) -> IntradayMatches:
        with self._lock:
            self._expire(self._clock())
            wanted: dict[str, None] = dict.fromkeys(i for i in query.ids if i in self._seen)
            values = {
                kind: self._holders([value_entry(kind, v) for v in vals], vals, query, wanted)
                for kind, vals in query.values.items()
            }
            blocks = {
                space: self._holders([block_entry(space, k) for k in keys], keys, query, wanted)
                for space, keys in query.blocks.items()
            }
            windows = {
                kind: self._window(kind, lo, hi, query, wanted)
                for kind, (lo, hi) in query.windows.items()
            }
            signed: tuple[tuple[float, str], ...] = ()
            if query.signed_up is not None:
                signed = self._signed_up(*query.signed_up, query)
            docs = [self._docs[uid] for uid in wanted]
        accounts = dict(zip(wanted, map(decode_account, docs), strict=True))
        return IntradayMatches(
            values={k: v for k, v in values.items() if v},
            blocks={k: v for k, v in blocks.items() if v},
            windows={k: v for k, v in windows.items() if v},
            signed_up=signed,
            accounts=accounts,
        )

    def user_ids(self) -> Iterator[str]:
        with self._lock:
            self._expire(self._clock())
            return iter(list(self._seen))

    def size(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._seen)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing to release (the accounts live as long as the store object)."""

    # ---- internals (the lock is held) ----------------------------------------------------------
    def _holders(
        self,
        entries: list[str],
        names: Sequence[str],
        query: IntradayQuery,
        wanted: dict[str, None],
    ) -> dict[str, Holders]:
        out: dict[str, Holders] = {}
        for entry, name in zip(entries, names, strict=True):
            members = self._sets.get(entry)
            if not members:
                continue
            count = len(members) - (query.exclude in members)
            if count > query.limit:
                out[name] = Holders((), count)
            elif count:
                ids = tuple(sorted(members - {query.exclude} if query.exclude else members))
                out[name] = Holders(ids, count)
                wanted.update(dict.fromkeys(ids))
        return out

    def _window(
        self, kind: str, lo: int, hi: int, query: IntradayQuery, wanted: dict[str, None]
    ) -> tuple[tuple[int, str], ...]:
        numbers = self._numbers.get(kind, [])
        start, end = bisect_left(numbers, (lo, "")), bisect_left(numbers, (hi + 1, ""))
        hits: list[tuple[int, str]] = []
        for number, uid in numbers[start:end]:
            if uid != query.exclude:
                hits.append((number, uid))
                if len(hits) == query.limit:
                    break
        wanted.update(dict.fromkeys(uid for _, uid in hits))
        return tuple(hits)

    def _signed_up(
        self, lo: float, hi: float, query: IntradayQuery
    ) -> tuple[tuple[float, str], ...]:
        created = self._by_created
        start = bisect_left(created, (lo, ""))
        end = bisect_left(created, (math.nextafter(hi, math.inf), ""))
        hits: list[tuple[float, str]] = []
        for i in range(end - 1, start - 1, -1):  # newest first, O(limit)
            if created[i][1] != query.exclude:
                hits.append(created[i])
                if len(hits) == query.limit:
                    break
        return tuple(hits)

    def _expire(self, now: float) -> int:
        """Drop accounts recorded more than ttl ago (oldest first; stops at the first live one)."""
        cutoff = now - self._ttl_s
        gone = 0
        while self._seen:
            uid, seen = next(iter(self._seen.items()))
            if seen >= cutoff:
                break
            self._drop(uid)
            gone += 1
        return gone

    def _evict(self, keep: str | None) -> int:
        gone = 0
        while len(self._seen) > self._max_accounts:
            oldest = next(u for u in self._seen if u != keep)
            self._drop(oldest)
            gone += 1
        return gone

    def _drop(self, uid: str) -> None:
        del self._seen[uid], self._docs[uid]
        created = self._created.pop(uid)
        _remove_sorted(self._by_created, (created, uid))
        for entry in self._entries.pop(uid):
            if entry.startswith("n:"):
                kind, number = entry[2:].split(":", 1)
                numbers = self._numbers[kind]
                _remove_sorted(numbers, (int(number), uid))
                if not numbers:
                    del self._numbers[kind]
            else:
                members = self._sets[entry]
                members.discard(uid)
                if not members:
                    del self._sets[entry]


Entry = TypeVar("Entry", tuple[int, str], tuple[float, str])


def _remove_sorted(items: list[Entry], item: Entry) -> None:
    i = bisect_left(items, item)
    if i < len(items) and items[i] == item:
        del items[i]
