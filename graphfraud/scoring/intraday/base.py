"""The IntradayStore seam: accounts scored since the last snapshot, indexed like the snapshot.

An account is stored once, under its `user_id`, with three kinds of index entry the online
scorer looks up (every name is a plain string, so kinds from the identifier registry, built-in or
declared, need nothing here):
- `identifiers`: kind → exact canonical values (`{"device": ("d1", "d2")}`) → `holders`;
- `blocks`: blocking space → keys (`{"email_stem": ("johndoe@gmail.com", ...)}`) → `in_blocks`;
- `numbers`: kind → integers (phone digits) → `in_window(kind, lo, hi)`.
`payload` is the caller's JSON (last score, emerging ring id, …), returned as JSON decodes it.

Bounds: an account lives `ttl_s` after it was last recorded (the record time, not `created_at`:
a replay of old sign-ups must not expire on arrival), and at most `max_accounts` live at once,
the least recently recorded evicted first. Enforcement is lazy on write (each write removes a
bounded number of expired / excess accounts; `purge()` removes the rest) and no lookup ever
returns an expired account.

Lookups are bounded by `limit`: a value or block with more live holders than `limit` is a hub
and comes back as a count only (`Holders.hub`), as the batch never links a hub pairwise.
`lookup(query)` answers every lookup of one scored account, with the matched accounts, in one
call (one round trip on Redis); `holders` / `in_blocks` / `in_window` / `get` are its parts.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import orjson

from graphfraud.config import IntradaySettings
from graphfraud.errors import ConfigError, InputDataError

# Bounds on one account / one query: generous for real accounts (an email's stem block and its
# one-deletion neighbours are ~20 keys), small enough that one write or lookup stays sub-ms.
MAX_ID_CHARS = 256
MAX_VALUE_CHARS = 512
MAX_ENTRIES = 1024  # index entries (values + block keys + numbers) of one account
MAX_PAYLOAD_BYTES = 16_384
MAX_PAYLOAD_DEPTH = 16
MAX_QUERY_KEYS = 1024  # values + block keys + windows of one lookup (+ ids to fetch)
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 50  # the batch's `LinkSettings.max_share`
# Numbers are Redis sorted-set scores (doubles): exact only up to 2**53 (E.164 has ≤ 15 digits).
MAX_NUMBER = 2**53
# Kind / space names become part of store keys: no ':' (the key separator), no whitespace.
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

_HINT = "the intraday store takes canonical identifiers; see graphfraud.scoring.intraday.base"


def check_bounds(settings: IntradaySettings) -> tuple[float, int]:
    """(ttl_s, max_accounts), or ConfigError naming the setting."""
    ttl, most = settings.ttl_s, settings.max_accounts
    if not (math.isfinite(ttl) and ttl > 0):
        raise ConfigError(
            "intraday ttl_s must be a positive number of seconds",
            hint="set GRAPHFRAUD_INTRADAY__TTL_S, e.g. 172800 (48 h)",
        )
    if most < 1:
        raise ConfigError(
            "intraday max_accounts must be at least 1", hint="set GRAPHFRAUD_INTRADAY__MAX_ACCOUNTS"
        )
    return float(ttl), int(most)


def _bad(message: str) -> InputDataError:
    return InputDataError(f"intraday account: {message}", hint=_HINT)


def _check_text(what: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(f"{what} must be a non-empty string")
    if len(value) > max_chars:
        raise _bad(f"{what} is longer than {max_chars} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(f"{what} is not valid Unicode (lone surrogate)") from None
    return value


def _check_name(what: str, name: object) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        # the name is not echoed: a value passed where a kind belongs would land in the message
        raise _bad(f"{what} names are 1-64 letters, digits, '_', '.', '-'")
    return name


def _check_number(what: str, value: object) -> int:
    """An integer (numpy's too, not bool) within ±2**53."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool | np.bool_):
        raise _bad(f"{what} must be integers")
    number = int(value)
    if abs(number) > MAX_NUMBER:
        raise _bad(f"{what} must be within ±2**53 (exact as a Redis score)")
    return number


def _values(what: str, values: object) -> Iterable[object]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        # a bare string would be split into characters
        raise _bad(f"{what} must be a sequence, not a {type(values).__name__}")
    return values


def _text_groups(what: str, groups: Mapping[str, Iterable[str]]) -> dict[str, tuple[str, ...]]:
    if not isinstance(groups, Mapping):
        raise _bad(f"{what} must be a mapping of name → values")
    out: dict[str, tuple[str, ...]] = {}
    for name, values in groups.items():
        _check_name(what, name)
        label = f"{what}[{name!r}]"
        kept = tuple(
            dict.fromkeys(
                _check_text(f"{label} values", v, MAX_VALUE_CHARS) for v in _values(label, values)
            )
        )
        if kept:
            out[name] = kept
    return out


def _number_groups(groups: Mapping[str, Iterable[int]]) -> dict[str, tuple[int, ...]]:
    if not isinstance(groups, Mapping):
        raise _bad("numbers must be a mapping of kind → integers")
    out: dict[str, tuple[int, ...]] = {}
    for name, values in groups.items():
        _check_name("numbers", name)
        label = f"numbers[{name!r}]"
        kept = tuple(dict.fromkeys(_check_number(label, v) for v in _values(label, values)))
        if kept:
            out[name] = kept
    return out


def _check_json(value: object, depth: int = 0) -> None:
    """JSON that round-trips exactly: str keys, finite floats, ints within 64 bits."""
    if depth > MAX_PAYLOAD_DEPTH:
        raise _bad(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH}")
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad("payload strings must be valid Unicode (lone surrogate)") from None
        return
    if isinstance(value, int):
        if not -(2**63) <= value < 2**64:
            raise _bad("payload integers must fit in 64 bits")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _bad("payload floats must be finite (JSON has no NaN / Infinity)")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise _bad("payload keys must be strings")
            _check_json(key, depth + 1)
            _check_json(item, depth + 1)
        return
    raise _bad(f"payload holds a {type(value).__name__}; only JSON types are stored")


@dataclass(frozen=True)
class IntradayAccount:
    """One account scored since the last snapshot (canonical identifiers, as the batch's).

    Construction validates and normalises: values deduplicated in order, empty groups dropped,
    the payload copied as JSON decodes it (tuples become lists), so an account read back from a
    store equals the one recorded. Raises InputDataError for anything a store could not hold
    exactly.
    """

    user_id: str
    created_at: float  # epoch seconds of the sign-up
    identifiers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    numbers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_text("user_id", self.user_id, MAX_ID_CHARS)
        created = self.created_at
        if isinstance(created, bool | np.bool_) or not isinstance(created, numbers.Real):
            raise _bad("created_at must be epoch seconds (a number)")
        if not math.isfinite(created):
            raise _bad("created_at must be finite")
        object.__setattr__(self, "created_at", float(created))
        object.__setattr__(self, "identifiers", _text_groups("identifiers", self.identifiers))
        object.__setattr__(self, "blocks", _text_groups("blocks", self.blocks))
        object.__setattr__(self, "numbers", _number_groups(self.numbers))
        if not isinstance(self.payload, Mapping):
            raise _bad("payload must be a mapping")
        _check_json(dict(self.payload))
        encoded = encode_payload(dict(self.payload))
        if len(encoded) > MAX_PAYLOAD_BYTES:
            raise _bad(f"payload is over {MAX_PAYLOAD_BYTES} bytes as JSON")
        # Kept as JSON decodes it: a private copy, equal to what any store gives back.
        object.__setattr__(self, "payload", orjson.loads(encoded))
        entries = sum(len(v) for v in self.identifiers.values())
        entries += sum(len(v) for v in self.blocks.values())
        entries += sum(len(v) for v in self.numbers.values())
        if entries > MAX_ENTRIES:
            raise _bad(f"{entries} index entries; at most {MAX_ENTRIES} per account")


@dataclass(frozen=True)
class Holders:
    """Live accounts holding one value (or in one block).

    `count ≤ limit`: `user_ids` are all of them (`count == len(user_ids)`).
    `count > limit`: a hub; `user_ids` is empty and `count` is how many hold it (it may include
    accounts expired since the last write, which purges them)."""

    user_ids: tuple[str, ...]
    count: int

    @property
    def hub(self) -> bool:
        return self.count > len(self.user_ids)


@dataclass(frozen=True)
class IntradayQuery:
    """Everything one scored account looks up, answered by `IntradayStore.lookup` at once.

    `windows`: kind → (lo, hi), numbers within [lo, hi] inclusive. `signed_up`: (lo, hi) epoch
    seconds of `created_at`. `ids`: accounts to return whether or not anything matched them.
    `exclude`: a user id left out of every answer (the account being scored, if recorded).
    `limit`: hub threshold for values and blocks, and the most entries per window."""

    values: Mapping[str, Sequence[str]] = field(default_factory=dict)
    blocks: Mapping[str, Sequence[str]] = field(default_factory=dict)
    windows: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    signed_up: tuple[float, float] | None = None
    ids: Sequence[str] = ()
    exclude: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", _text_groups("values", self.values))
        object.__setattr__(self, "blocks", _text_groups("blocks", self.blocks))
        windows: dict[str, tuple[int, int]] = {}
        for name, bounds in self.windows.items():
            _check_name("windows", name)
            if not isinstance(bounds, tuple | list) or len(bounds) != 2:
                raise _bad(f"windows[{name!r}] must be (lo, hi)")
            lo, hi = (_check_number(f"windows[{name!r}]", b) for b in bounds)
            if lo > hi:
                raise _bad(f"windows[{name!r}] has lo > hi")
            windows[name] = (lo, hi)
        object.__setattr__(self, "windows", windows)
        if self.signed_up is not None:
            span = self.signed_up
            if (
                not isinstance(span, tuple | list)
                or len(span) != 2
                or not all(
                    isinstance(t, numbers.Real) and not isinstance(t, bool | np.bool_) for t in span
                )
            ):
                raise _bad("signed_up must be (lo, hi) epoch seconds")
            lo_t, hi_t = float(span[0]), float(span[1])
            if not (math.isfinite(lo_t) and math.isfinite(hi_t)) or lo_t > hi_t:
                raise _bad("signed_up must be finite (lo, hi) with lo ≤ hi")
            object.__setattr__(self, "signed_up", (lo_t, hi_t))
        if isinstance(self.ids, str):
            raise _bad("ids must be a sequence of user ids, not a string")
        ids = tuple(dict.fromkeys(_check_text("ids", i, MAX_ID_CHARS) for i in self.ids))
        object.__setattr__(self, "ids", ids)
        if self.exclude is not None:
            _check_text("exclude", self.exclude, MAX_ID_CHARS)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int):
            raise _bad("limit must be an integer")
        if not 1 <= self.limit <= MAX_LIMIT:
            raise _bad(f"limit must be within 1..{MAX_LIMIT}")
        keys = sum(map(len, self.values.values())) + sum(map(len, self.blocks.values()))
        if keys + len(windows) + len(ids) > MAX_QUERY_KEYS:
            raise _bad(f"a lookup asks for at most {MAX_QUERY_KEYS} keys")


@dataclass(frozen=True)
class IntradayMatches:
    """The answer to one `IntradayQuery`. Values / blocks nobody live holds are left out;
    `windows[kind]` is sorted by number (then user id); `signed_up` is (created_at, user id),
    newest first. `accounts` holds every account a value, block or window matched (hubs aside)
    and every live one of `query.ids`: the links' evidence, not the whole sign-up window (a
    window's accounts can be fetched with `ids` or `get`)."""

    values: dict[str, dict[str, Holders]]
    blocks: dict[str, dict[str, Holders]]
    windows: dict[str, tuple[tuple[int, str], ...]]
    signed_up: tuple[tuple[float, str], ...]
    accounts: dict[str, IntradayAccount]


@runtime_checkable
class IntradayStore(Protocol):
    """Accounts scored since the last snapshot, shared by every replica of the service.

    Backends: `MemoryIntradayStore` (in process, one replica) and `RedisIntradayStore` (Redis /
    Valkey, shared). A backend that cannot reach its server raises IntradayUnavailable promptly
    (within its socket timeout) so the caller can degrade to snapshot-only matching."""

    def record(self, account: IntradayAccount) -> bool:
        """Store `account`, replacing any account with its user_id and all of that account's
        index entries in one atomic step; True when the user_id was not live in the store."""
        ...

    def record_many(self, accounts: Sequence[IntradayAccount]) -> list[bool]:
        """`record` each account, in order, in one round trip: each account is replaced
        atomically, the batch as a whole is not (a failure part-way leaves the first ones
        stored; the caller may record them again)."""
        ...

    def get(self, user_ids: Iterable[str]) -> list[IntradayAccount]:
        """The live accounts among `user_ids`, in the order asked (unknown ids left out)."""
        ...

    def lookup(self, query: IntradayQuery) -> IntradayMatches:
        """Every lookup of one scored account, with the matched accounts, in one call."""
        ...

    def holders(
        self, kind: str, values: Iterable[str], *, limit: int = DEFAULT_LIMIT
    ) -> dict[str, Holders]:
        """Exact value → its live holders (values nobody holds are left out)."""
        ...

    def in_blocks(
        self, space: str, keys: Iterable[str], *, limit: int = DEFAULT_LIMIT
    ) -> dict[str, Holders]:
        """Block key → the live accounts in that block."""
        ...

    def in_window(
        self, kind: str, lo: int, hi: int, *, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[int, str]]:
        """(number, user id) for live numbers of `kind` within [lo, hi], lowest first, at most
        `limit` (entries of accounts expired since the last write count against it)."""
        ...

    def signed_up(
        self, lo: float, hi: float, *, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[float, str]]:
        """(created_at, user id) of live accounts created within [lo, hi], newest first."""
        ...

    def user_ids(self) -> Iterator[str]:
        """Every live user id, in no particular order (not for the request path: it walks the
        whole store, in small steps). Intersect it with a new snapshot, then `forget`."""
        ...

    def forget(self, user_ids: Iterable[str]) -> int:
        """Remove these accounts (e.g. those a newly swapped-in snapshot contains); returns how
        many were live. Any number of ids: sent in bounded chunks."""
        ...

    def purge(self) -> int:
        """Remove every expired account and any over `max_accounts`; returns how many."""
        ...

    def size(self) -> int:
        """Live accounts now (for `/metrics`)."""
        ...

    def ping(self) -> bool:
        """True when the store can answer now (readiness; never raises)."""
        ...

    def close(self) -> None: ...


class LookupParts:
    """`holders` / `in_blocks` / `in_window` / `signed_up` / `get` as one-part `lookup`s, so a
    backend implements the query once and every form answers alike."""

    def lookup(self, query: IntradayQuery) -> IntradayMatches:
        raise NotImplementedError

    def record(self, account: IntradayAccount) -> bool:
        raise NotImplementedError

    def record_many(self, accounts: Sequence[IntradayAccount]) -> list[bool]:
        """One `record` after another (a backend with round trips overrides it)."""
        return [self.record(a) for a in accounts]

    def get(self, user_ids: Iterable[str]) -> list[IntradayAccount]:
        ids = tuple(dict.fromkeys(user_ids))
        found: dict[str, IntradayAccount] = {}
        for start in range(0, len(ids), MAX_QUERY_KEYS):
            found |= self.lookup(
                IntradayQuery(ids=ids[start : start + MAX_QUERY_KEYS], limit=1)
            ).accounts
        return [found[i] for i in ids if i in found]

    def holders(
        self, kind: str, values: Iterable[str], *, limit: int = DEFAULT_LIMIT
    ) -> dict[str, Holders]:
        query = IntradayQuery(values={kind: tuple(values)}, limit=limit)
        return self.lookup(query).values.get(kind, {})

    def in_blocks(
        self, space: str, keys: Iterable[str], *, limit: int = DEFAULT_LIMIT
    ) -> dict[str, Holders]:
        query = IntradayQuery(blocks={space: tuple(keys)}, limit=limit)
        return self.lookup(query).blocks.get(space, {})

    def in_window(
        self, kind: str, lo: int, hi: int, *, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[int, str]]:
        query = IntradayQuery(windows={kind: (lo, hi)}, limit=limit)
        return list(self.lookup(query).windows.get(kind, ()))

    def signed_up(
        self, lo: float, hi: float, *, limit: int = DEFAULT_LIMIT
    ) -> list[tuple[float, str]]:
        return list(self.lookup(IntradayQuery(signed_up=(lo, hi), limit=limit)).signed_up)


# ---- the stored form, shared by both backends -------------------------------------------------
# Index entries are strings: "v:<kind>:<value>" and "b:<space>:<key>" name a set of user ids;
# "n:<kind>:<number>" is a number of one kind. Names hold no ':', so each entry reads one way.


def value_entry(kind: str, value: str) -> str:
    return f"v:{kind}:{value}"


def block_entry(space: str, key: str) -> str:
    return f"b:{space}:{key}"


def index_entries(account: IntradayAccount) -> list[str]:
    """The account's index entries, in a stable order."""
    out = [value_entry(k, v) for k, vs in account.identifiers.items() for v in vs]
    out += [block_entry(s, key) for s, keys in account.blocks.items() for key in keys]
    out += [f"n:{k}:{n}" for k, ns in account.numbers.items() for n in ns]
    return out


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    return orjson.dumps(payload)


def encode_account(account: IntradayAccount) -> bytes:
    """JSON of the account (the document a store keeps; both backends keep exactly this)."""
    return orjson.dumps(
        {
            "u": account.user_id,
            "c": account.created_at,
            "i": account.identifiers,
            "b": account.blocks,
            "n": account.numbers,
            "p": account.payload,
        }
    )


def decode_account(doc: bytes | str) -> IntradayAccount:
    """The account a document of `encode_account` holds, without validating it again (a
    lookup decodes dozens per request; validation is ~90 % of the cost). InputDataError for a
    document of another shape (another writer under the prefix, another version)."""
    try:
        data = orjson.loads(doc)
        fields = {
            "user_id": str(data["u"]),
            "created_at": float(data["c"]),
            "identifiers": {str(k): tuple(v) for k, v in data["i"].items()},
            "blocks": {str(k): tuple(v) for k, v in data["b"].items()},
            "numbers": {str(k): tuple(v) for k, v in data["n"].items()},
            "payload": dict(data["p"]),
        }
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InputDataError(
            f"a stored intraday account is unreadable ({type(exc).__name__})", hint=_HINT
        ) from None
    account = object.__new__(IntradayAccount)
    for name, value in fields.items():
        object.__setattr__(account, name, value)
    return account
