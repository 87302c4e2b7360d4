"""The intraday store on a Redis-protocol server (Redis ≥ 6, Valkey), shared by every replica.

Keys, all under `<prefix>:` (so deployments can share a server):
    a:<user_id>          the account's JSON document (string)
    i:<user_id>          its index entries (list), so a replace or removal knows what to undo
    v:<kind>:<value>     user ids holding an exact value (set)
    b:<space>:<key>      user ids in a block (set)
    n:<kind>             "<number>:<user_id>" scored by the number (sorted set): windows
    seen                 user ids scored by record time (sorted set): TTL and max-accounts order
    created              user ids scored by created_at (sorted set): sign-up windows
Every write is one Lua script (atomic: a reader sees an account with all its index entries or
none of it) and removes at most `_BATCH` expired / excess accounts, so no call is O(store).
Reads are one read-only script per lookup: one round trip however many values it asks about.
Keys are built inside the scripts from the prefix, which suits one server or a primary with
replicas (Sentinel), not Redis Cluster.

Failures: any connection error, timeout (`timeout_s`, a few ms) or refusal (OOM, auth, READONLY)
raises IntradayUnavailable naming the operation and the error class, never a value or the
password; after one, calls fail fast for `retry_after_s` without touching the network, so an
outage costs the hot path nothing but the first timeout.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import partial
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

from graphfraud.config import IntradaySettings
from graphfraud.errors import ConfigError, InputDataError, IntradayUnavailable
from graphfraud.scoring.intraday.base import (
    NAME_PATTERN,
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

log = logging.getLogger("graphfraud.intraday")

T = TypeVar("T")
Arg = str | bytes | int  # a script argument
_BATCH = 200  # expired / excess accounts removed per write; ids per forget call
_SCAN = 1000
_SCHEMES = ("redis://", "rediss://", "unix://")

# Shared by the write scripts: ARGV[1] is the prefix with its trailing ':'.
_DROP = """
local P = ARGV[1]
local SEEN, CREATED = P .. 'seen', P .. 'created'
local function drop(id)
  local ikey = P .. 'i:' .. id
  for _, e in ipairs(redis.call('LRANGE', ikey, 0, -1)) do
    if string.sub(e, 1, 2) == 'n:' then
      local sep = string.find(e, ':', 3, true)
      local num = string.sub(e, sep + 1)
      redis.call('ZREM', P .. string.sub(e, 1, sep - 1), num .. ':' .. id)
    else
      redis.call('SREM', P .. e, id)
    end
  end
  redis.call('DEL', ikey, P .. 'a:' .. id)
  redis.call('ZREM', SEEN, id)
  redis.call('ZREM', CREATED, id)
end
-- expired first (record time < cutoff), then the least recently recorded over max; `keep` stays
local function bound(cutoff, maxn, batch, keep)
  local gone = 0
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', SEEN, '-inf', '(' .. cutoff,
                                 'LIMIT', 0, batch)) do
    drop(id)
    gone = gone + 1
  end
  local over = redis.call('ZCARD', SEEN) - maxn
  if over > 0 then
    local n = 0
    for _, id in ipairs(redis.call('ZRANGE', SEEN, 0, math.min(over, batch))) do
      if n >= over or n >= batch then break end
      if id ~= keep then
        drop(id)
        n = n + 1
      end
    end
    gone = gone + n
  end
  return gone
end
"""

# ARGV: prefix, now, cutoff, max, batch, user_id, created_at, doc, entries...
# Returns {1 if the user id was not live before, accounts removed by the bounds}.
_RECORD = (
    _DROP
    + """
local now, cutoff, uid = ARGV[2], ARGV[3], ARGV[6]
local old = redis.call('ZSCORE', SEEN, uid)
local new = 1
if old then
  if tonumber(old) >= tonumber(cutoff) then new = 0 end
  drop(uid)
end
redis.call('SET', P .. 'a:' .. uid, ARGV[8])
for i = 9, #ARGV do
  local e = ARGV[i]
  if string.sub(e, 1, 2) == 'n:' then
    local sep = string.find(e, ':', 3, true)
    local num = string.sub(e, sep + 1)
    redis.call('ZADD', P .. string.sub(e, 1, sep - 1), num, num .. ':' .. uid)
  else
    redis.call('SADD', P .. e, uid)
  end
end
if #ARGV >= 9 then redis.call('RPUSH', P .. 'i:' .. uid, unpack(ARGV, 9, #ARGV)) end
redis.call('ZADD', SEEN, now, uid)
redis.call('ZADD', CREATED, ARGV[7], uid)
return {new, bound(cutoff, tonumber(ARGV[4]), tonumber(ARGV[5]), uid)}
"""
)

# ARGV: prefix, cutoff, user ids... → how many of them were live.
_FORGET = (
    _DROP
    + """
local cutoff, live = tonumber(ARGV[2]), 0
for i = 3, #ARGV do
  local seen = redis.call('ZSCORE', SEEN, ARGV[i])
  if seen then
    if tonumber(seen) >= cutoff then live = live + 1 end
    drop(ARGV[i])
  end
end
return live
"""
)

# ARGV: prefix, cutoff, max, batch → accounts removed (< batch: nothing left to remove).
_PURGE = (
    _DROP
    + """
return bound(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), '')
"""
)

# ARGV: prefix, cutoff, limit, exclude ('' = none), #ids, #sets, #windows, #signed (0|1),
#       ids..., set entries..., (kind, lo, hi)..., (lo, hi)
# Returns {sets, windows, signed, docs}: sets[i] = {count, ids...} (ids empty for a hub),
# windows[i] = {"<number>:<id>"...}, signed = {id, created_at, ...} newest first,
# docs = {id, doc, ...} for every live id a value, block or window matched (hubs aside) and the
# live ids asked (sign-ups are ids and times only).
_LOOKUP = """
local P, cutoff, limit, exclude = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local n_ids, n_sets, n_windows = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local SEEN = P .. 'seen'
local alive, wanted, order = {}, {}, {}
local function live(id)
  local v = alive[id]
  if v == nil then
    local s = redis.call('ZSCORE', SEEN, id)
    v = (s ~= false and tonumber(s) >= cutoff)
    alive[id] = v
  end
  return v
end
local function want(id)
  if not wanted[id] then
    wanted[id] = true
    order[#order + 1] = id
  end
end
local fetch = limit
if exclude ~= '' then fetch = limit + 1 end
local pos = 9
for _ = 1, n_ids do
  if live(ARGV[pos]) then want(ARGV[pos]) end
  pos = pos + 1
end
local sets = {}
for i = 1, n_sets do
  local key = P .. ARGV[pos]
  pos = pos + 1
  local count = redis.call('SCARD', key)
  if exclude ~= '' and count > 0 and redis.call('SISMEMBER', key, exclude) == 1 then
    count = count - 1
  end
  if count > limit then
    sets[i] = {count}
  else
    local row = {0}
    for _, id in ipairs(redis.call('SMEMBERS', key)) do
      if id ~= exclude and live(id) then
        row[#row + 1] = id
        want(id)
      end
    end
    row[1] = #row - 1
    sets[i] = row
  end
end
local windows = {}
for i = 1, n_windows do
  local key, lo, hi = P .. 'n:' .. ARGV[pos], ARGV[pos + 1], ARGV[pos + 2]
  pos = pos + 3
  local row = {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, lo, hi, 'LIMIT', 0, fetch)) do
    local id = string.sub(m, string.find(m, ':', 1, true) + 1)
    if #row < limit and id ~= exclude and live(id) then
      row[#row + 1] = m
      want(id)
    end
  end
  windows[i] = row
end
local signed = {}
if tonumber(ARGV[8]) == 1 then
  local found = redis.call('ZREVRANGEBYSCORE', P .. 'created', ARGV[pos + 1], ARGV[pos],
                           'WITHSCORES', 'LIMIT', 0, fetch)
  for j = 1, #found, 2 do
    local id = found[j]
    if #signed < 2 * limit and id ~= exclude and live(id) then
      signed[#signed + 1] = id
      signed[#signed + 1] = found[j + 1]
    end
  end
end
local docs = {}
for _, id in ipairs(order) do
  local doc = redis.call('GET', P .. 'a:' .. id)
  if doc then
    docs[#docs + 1] = id
    docs[#docs + 1] = doc
  end
end
return {sets, windows, signed, docs}
"""


def _num(value: float) -> str:
    """A float as Redis reads it back exactly (repr is the shortest round-trip form)."""
    return repr(float(value))


def check_redis_settings(settings: IntradaySettings) -> None:
    """ConfigError for a url Redis cannot use, a password in it, or unusable bounds."""
    url = settings.url
    if not url.startswith(_SCHEMES):
        raise ConfigError(
            "intraday url must start with redis://, rediss:// or unix://",
            hint="set GRAPHFRAUD_INTRADAY__URL, e.g. redis://10.0.0.5:6379/0",
        )
    parts = urlsplit(url)
    if parts.password or "password" in parse_qs(parts.query):
        raise ConfigError(
            "the intraday url holds a password; it would show wherever settings are printed",
            hint="move it to GRAPHFRAUD_INTRADAY__PASSWORD",
        )
    if not NAME_PATTERN.fullmatch(settings.prefix):
        raise ConfigError(
            "intraday prefix must be 1-64 letters, digits, '_', '.', '-' (no ':')",
            hint="set GRAPHFRAUD_INTRADAY__PREFIX, e.g. graphfraud.prod",
        )
    for name in ("timeout_s", "retry_after_s"):
        value = getattr(settings, name)
        if not (math.isfinite(value) and value >= 0) or (name == "timeout_s" and value == 0):
            raise ConfigError(
                f"intraday {name} must be a positive number of seconds",
                hint=f"set GRAPHFRAUD_INTRADAY__{name.upper()}",
            )
    if settings.max_connections < 1:
        raise ConfigError(
            "intraday max_connections must be at least 1",
            hint="set GRAPHFRAUD_INTRADAY__MAX_CONNECTIONS",
        )
    check_bounds(settings)


class RedisIntradayStore(LookupParts):
    """IntradayStore on Redis / Valkey: one connection pool per store (one store per process).

    `clock` (epoch seconds, injectable for tests) stamps record times: replicas' clocks should
    agree to well under the TTL (NTP does)."""

    def __init__(
        self, settings: IntradaySettings, *, clock: Callable[[], float] = time.time
    ) -> None:
        check_redis_settings(settings)
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as exc:  # pragma: no cover - redis is a core dependency
            raise ConfigError(
                "the redis intraday store needs the redis client", hint="pip install 'redis>=5'"
            ) from exc
        self._redis = redis
        self._ttl_s, self._max_accounts = check_bounds(settings)
        self._clock = clock
        self._retry_after_s = settings.retry_after_s
        self._prefix = settings.prefix + ":"
        self._down_until = 0.0  # monotonic time until which calls fail fast
        self._down_lock = threading.Lock()
        self._pool = redis.BlockingConnectionPool.from_url(
            settings.url,
            max_connections=settings.max_connections,
            timeout=settings.timeout_s,  # waiting for a free pooled connection
            socket_timeout=settings.timeout_s,
            socket_connect_timeout=settings.timeout_s,
            username=settings.username or None,
            password=settings.password.get_secret_value() or None,
            decode_responses=True,
            protocol=2,
            retry=Retry(NoBackoff(), 0),  # one try: the caller degrades, it does not wait
            health_check_interval=0,
            client_name="graphfraud-intraday",
        )
        self._client = redis.Redis(connection_pool=self._pool)
        self._record = self._client.register_script(_RECORD)
        self._forget = self._client.register_script(_FORGET)
        self._purge = self._client.register_script(_PURGE)
        self._lookup = self._client.register_script(_LOOKUP)

    # ---- writes ------------------------------------------------------------------------------
    def _record_args(self, account: IntradayAccount) -> list[Arg]:
        now = self._clock()
        return [
            self._prefix,
            _num(now),
            _num(now - self._ttl_s),
            self._max_accounts,
            _BATCH,
            account.user_id,
            _num(account.created_at),
            encode_account(account),
            *index_entries(account),
        ]

    def record(self, account: IntradayAccount) -> bool:
        args = self._record_args(account)
        new, _removed = self._call("record", lambda: self._record(args=args))
        return bool(new)

    def record_many(self, accounts: Sequence[IntradayAccount]) -> list[bool]:
        """Each account's record script, pipelined: one round trip, each account atomic."""
        if not accounts:
            return []
        batch = [self._record_args(a) for a in accounts]

        def run() -> list[Any]:
            pipe = self._client.pipeline(transaction=False)
            for args in batch:
                self._record(args=args, client=pipe)
            return list(pipe.execute())

        return [bool(new) for new, _removed in self._call("record", run)]

    def forget(self, user_ids: Iterable[str]) -> int:
        ids = list(dict.fromkeys(user_ids))
        gone = 0
        for start in range(0, len(ids), _BATCH):
            cutoff = _num(self._clock() - self._ttl_s)
            args: list[Arg] = [self._prefix, cutoff, *ids[start : start + _BATCH]]
            gone += int(self._call("forget", partial(self._forget, args=args)))
        return gone

    def purge(self) -> int:
        gone = 0
        while True:
            cutoff = _num(self._clock() - self._ttl_s)
            args: list[Arg] = [self._prefix, cutoff, self._max_accounts, _BATCH]
            removed = int(self._call("purge", partial(self._purge, args=args)))
            gone += removed
            if removed < _BATCH:
                return gone

    # ---- reads -------------------------------------------------------------------------------
    def lookup(self, query: IntradayQuery) -> IntradayMatches:
        set_names = [(True, k, v) for k, vs in query.values.items() for v in vs]
        set_names += [(False, s, key) for s, keys in query.blocks.items() for key in keys]
        entries = [value_entry(k, v) if exact else block_entry(k, v) for exact, k, v in set_names]
        windows = list(query.windows.items())
        args: list[Arg] = [
            self._prefix,
            _num(self._clock() - self._ttl_s),
            query.limit,
            query.exclude or "",
            len(query.ids),
            len(entries),
            len(windows),
            int(query.signed_up is not None),
            *query.ids,
            *entries,
        ]
        for kind, (lo, hi) in windows:
            args += [kind, lo, hi]
        if query.signed_up is not None:
            args += [_num(query.signed_up[0]), _num(query.signed_up[1])]

        def run() -> IntradayMatches:
            return self._matches(set_names, windows, self._lookup(args=args))

        return self._call("lookup", run)

    @staticmethod
    def _matches(
        set_names: list[tuple[bool, str, str]],
        windows: list[tuple[str, tuple[int, int]]],
        reply: list[Any],
    ) -> IntradayMatches:
        sets, found_windows, signed, docs = reply
        values: dict[str, dict[str, Holders]] = {}
        blocks: dict[str, dict[str, Holders]] = {}
        for (exact, name, key), row in zip(set_names, sets, strict=True):
            count = int(row[0])
            if count:
                group = values if exact else blocks
                group.setdefault(name, {})[key] = Holders(tuple(sorted(row[1:])), count)
        window_out: dict[str, tuple[tuple[int, str], ...]] = {}
        for (kind, _), row in zip(windows, found_windows, strict=True):
            if row:
                pairs = (member.split(":", 1) for member in row)
                window_out[kind] = tuple((int(n), uid) for n, uid in pairs)
        return IntradayMatches(
            values=values,
            blocks=blocks,
            windows=window_out,
            signed_up=tuple((float(signed[j + 1]), signed[j]) for j in range(0, len(signed), 2)),
            accounts={docs[j]: decode_account(docs[j + 1]) for j in range(0, len(docs), 2)},
        )

    def user_ids(self) -> Iterator[str]:
        cutoff = self._clock() - self._ttl_s
        seen = self._prefix + "seen"
        cursor = 0
        while True:
            cursor, page = self._call(
                "user_ids", partial(self._client.zscan, seen, cursor, count=_SCAN)
            )
            yield from (str(uid) for uid, recorded in page if float(recorded) >= cutoff)
            if cursor == 0:
                return

    def size(self) -> int:
        cutoff = _num(self._clock() - self._ttl_s)
        seen = self._prefix + "seen"
        return int(self._call("size", lambda: self._client.zcount(seen, cutoff, "+inf")))

    def ping(self) -> bool:
        try:
            self._client.ping()
        except self._redis.RedisError:
            return False
        with self._down_lock:
            self._down_until = 0.0
        return True

    def close(self) -> None:
        self._pool.disconnect()

    # ---- failures ------------------------------------------------------------------------------
    def _call(self, op: str, fn: Callable[[], T]) -> T:
        """Run one server call; every failure becomes IntradayUnavailable (no values in it)."""
        if time.monotonic() < self._down_until:
            raise IntradayUnavailable(
                f"intraday store unavailable ({op}): failing fast after a recent failure",
                hint="the online path scores against the snapshot only until it is back",
            )
        errors = self._redis.exceptions
        try:
            return fn()
        except (errors.ConnectionError, errors.TimeoutError) as exc:
            self._trip(op, exc)
            raise IntradayUnavailable(
                f"intraday store unreachable ({op}): {type(exc).__name__}",
                hint="check the Redis server and GRAPHFRAUD_INTRADAY__URL / __TIMEOUT_S",
            ) from exc
        except errors.ResponseError as exc:
            # What the server refused, by class (OutOfMemoryError, ReadOnlyError, …) or, for a
            # plain ResponseError, its leading error code (WRONGTYPE…): never the message text.
            code = type(exc).__name__
            if type(exc) is errors.ResponseError:
                code = str(exc).split(" ", 1)[0][:32]
            raise IntradayUnavailable(
                f"intraday store refused {op}: {code}",
                hint="see the Redis server's log; the online path degrades meanwhile",
            ) from exc
        except (UnicodeDecodeError, InputDataError) as exc:
            # Something else wrote under our prefix, or a document from an incompatible version.
            raise IntradayUnavailable(
                f"intraday store returned unreadable data ({op}): {type(exc).__name__}",
                hint="is another program writing under GRAPHFRAUD_INTRADAY__PREFIX?",
            ) from exc
        except errors.RedisError as exc:
            raise IntradayUnavailable(
                f"intraday store failed ({op}): {type(exc).__name__}"
            ) from exc

    def _trip(self, op: str, exc: BaseException) -> None:
        with self._down_lock:
            first = time.monotonic() >= self._down_until  # not already failing fast
            self._down_until = time.monotonic() + self._retry_after_s
        if first:
            log.warning(
                "intraday store unreachable (%s: %s); failing fast for %.1fs",
                op,
                type(exc).__name__,
                self._retry_after_s,
            )
