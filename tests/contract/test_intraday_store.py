"""One IntradayStore contract, run over every backend: the in-process store and the Redis store
against a real `redis-server` (session fixture, Debian package). Each store gets its own key
prefix on the shared server, and a clock the test moves."""

from __future__ import annotations

import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from graphfraud.config import IntradaySettings
from graphfraud.scoring.intraday import (
    Holders,
    IntradayAccount,
    IntradayQuery,
    IntradayStore,
    open_intraday_store,
)
from tests.conftest import REDIS_TEST_PASSWORD

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]
T0 = 1_767_000_000.0  # epoch seconds, late 2025
TTL = 3600.0
_prefixes = itertools.count()


class Clock:
    """Epoch seconds the test moves by hand."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


StoreMaker = Callable[..., IntradayStore]


def redis_settings(server: Any, **overrides: Any) -> IntradaySettings:
    fields: dict[str, Any] = {
        "backend": "redis",
        "url": server.url,
        "password": REDIS_TEST_PASSWORD,
        "prefix": f"contract-{next(_prefixes)}",
        "timeout_s": 2.0,  # generous: two shared cores; the down tests set their own
        "ttl_s": TTL,
    }
    return IntradaySettings(**(fields | overrides))


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest) -> Iterator[StoreMaker]:
    """Builds empty stores of this backend: make_store(clock, ttl_s=…, max_accounts=…)."""
    opened: list[IntradayStore] = []
    server = request.getfixturevalue("redis_server") if request.param == "redis" else None

    def make(clock: Clock, **overrides: Any) -> IntradayStore:
        if server is None:
            settings = IntradaySettings(**({"ttl_s": TTL} | overrides))
        else:
            settings = redis_settings(server, **overrides)
        store = open_intraday_store(settings, clock=clock)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(make_store: StoreMaker, clock: Clock) -> IntradayStore:
    return make_store(clock)


def account(
    user_id: str,
    *,
    created_at: float = T0,
    email: tuple[str, ...] = (),
    devices: tuple[str, ...] = (),
    stems: tuple[str, ...] = (),
    phones: tuple[int, ...] = (),
    **payload: Any,
) -> IntradayAccount:
    identifiers = {"email": email, "device": devices}
    return IntradayAccount(
        user_id,
        created_at,
        identifiers={k: v for k, v in identifiers.items() if v},
        blocks={"email_stem": stems} if stems else {},
        numbers={"phone": phones} if phones else {},
        payload=payload,
    )


ALICE = account(
    "alice",
    email=("john.doe1@gmail.com",),
    devices=("dev-1", "dev-2"),
    stems=("johndoe@gmail.com", "jhndoe@gmail.com"),
    phones=(919876543210,),
    score=0.91,
    ring="E-1",
)
BOB = account(
    "bob",
    created_at=T0 + 60,
    email=("john.doe2@gmail.com",),
    devices=("dev-1",),
    stems=("johndoe@gmail.com",),
    phones=(919876543211,),
)
CAROL = account("carol", created_at=T0 + 120, devices=("dev-3",), phones=(919876543299,))


def test_is_an_intraday_store(store: IntradayStore) -> None:
    assert isinstance(store, IntradayStore)
    assert store.ping() is True
    assert store.size() == 0
    assert store.get(["nobody"]) == []


def test_record_is_idempotent_by_user_id(store: IntradayStore) -> None:
    assert store.record(ALICE) is True
    assert store.record(ALICE) is False
    assert store.size() == 1
    assert store.get(["alice"]) == [ALICE]
    assert store.holders("device", ["dev-1"]) == {"dev-1": Holders(("alice",), 1)}


def test_record_many_is_record_after_record_in_one_call(store: IntradayStore) -> None:
    moved = account("alice", created_at=T0 + 5, devices=("dev-9",))
    assert store.record_many([ALICE, BOB, moved]) == [True, True, False]
    assert store.record_many([]) == []
    assert store.size() == 2
    assert store.get(["alice", "bob"]) == [moved, BOB]
    assert store.holders("device", ["dev-1", "dev-9"]).get("dev-9") == Holders(("alice",), 1)
    assert "alice" not in store.holders("device", ["dev-1"]).get("dev-1", Holders((), 0)).user_ids


def test_rerecord_replaces_the_account_and_all_its_index_entries(store: IntradayStore) -> None:
    store.record(ALICE)
    store.record(BOB)
    moved = account(
        "alice",
        created_at=T0 + 5,
        email=("alice.new@example.com",),
        devices=("dev-9",),
        stems=("alicenew@example.com",),
        phones=(447700900123,),
        score=0.2,
    )
    assert store.record(moved) is False
    assert store.get(["alice"]) == [moved]
    assert store.holders("device", ["dev-1", "dev-2", "dev-9"]) == {
        "dev-1": Holders(("bob",), 1),
        "dev-9": Holders(("alice",), 1),
    }
    assert store.holders("email", ["john.doe1@gmail.com"]) == {}
    assert store.in_blocks("email_stem", ["johndoe@gmail.com", "jhndoe@gmail.com"]) == {
        "johndoe@gmail.com": Holders(("bob",), 1)
    }
    assert store.in_window("phone", 919876543200, 919876543220) == [(919876543211, "bob")]
    assert store.in_window("phone", 447700900123, 447700900123) == [(447700900123, "alice")]
    assert store.size() == 2


def test_holders_of_exact_values(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    assert store.holders("device", ["dev-1", "dev-3", "dev-404"]) == {
        "dev-1": Holders(("alice", "bob"), 2),
        "dev-3": Holders(("carol",), 1),
    }
    assert store.holders("email", ["john.doe2@gmail.com"]) == {
        "john.doe2@gmail.com": Holders(("bob",), 1)
    }
    # kinds are separate namespaces, and a block key is not an exact value
    assert store.holders("ip", ["dev-1"]) == {}
    assert store.holders("email", ["johndoe@gmail.com"]) == {}


def test_a_value_held_by_more_than_limit_is_a_hub_count(store: IntradayStore) -> None:
    for i in range(5):
        store.record(account(f"u{i}", devices=("emulator",)))
    hub = store.holders("device", ["emulator"], limit=4)["emulator"]
    assert (hub.user_ids, hub.count, hub.hub) == ((), 5, True)
    full = store.holders("device", ["emulator"], limit=5)["emulator"]
    assert (full.user_ids, full.count, full.hub) == (("u0", "u1", "u2", "u3", "u4"), 5, False)
    # the account being scored does not count towards its own hubs
    query = IntradayQuery(values={"device": ("emulator",)}, exclude="u0", limit=4)
    found = store.lookup(query).values["device"]["emulator"]
    assert (found.user_ids, found.count) == (("u1", "u2", "u3", "u4"), 4)


def test_blocks_are_per_space(store: IntradayStore) -> None:
    store.record(ALICE)
    store.record(BOB)
    store.record(
        IntradayAccount("dave", T0, blocks={"local_stem": ("johndoe",), "email_stem": ("x@y.z",)})
    )
    assert store.in_blocks("email_stem", ["johndoe@gmail.com", "jhndoe@gmail.com", "no"]) == {
        "johndoe@gmail.com": Holders(("alice", "bob"), 2),
        "jhndoe@gmail.com": Holders(("alice",), 1),
    }
    assert store.in_blocks("local_stem", ["johndoe"]) == {"johndoe": Holders(("dave",), 1)}
    assert store.in_blocks("email_stem", ["johndoe"]) == {}
    assert store.in_blocks("email_stem", ["johndoe@gmail.com"], limit=1)["johndoe@gmail.com"].hub


def test_numbers_in_a_window(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    store.record(account("erin", phones=(919876543211, 919876543212)))  # shares bob's number
    assert store.in_window("phone", 919876543210, 919876543212) == [
        (919876543210, "alice"),
        (919876543211, "bob"),
        (919876543211, "erin"),
        (919876543212, "erin"),
    ]
    assert store.in_window("phone", 919876543211, 919876543211) == [
        (919876543211, "bob"),
        (919876543211, "erin"),
    ]
    assert store.in_window("phone", 919876543212, 919876543298) == [(919876543212, "erin")]
    assert store.in_window("phone", 919876543210, 919876543299, limit=2) == [
        (919876543210, "alice"),
        (919876543211, "bob"),
    ]
    assert store.in_window("sim", 0, 10**15) == []


def test_numbers_are_exact_up_to_2_pow_53(store: IntradayStore) -> None:
    big = 2**53
    store.record(IntradayAccount("big", T0, numbers={"n": (big, big - 1, -big)}))
    assert store.in_window("n", big - 1, big) == [(big - 1, "big"), (big, "big")]
    assert store.in_window("n", big, big) == [(big, "big")]
    assert store.in_window("n", -big, -big) == [(-big, "big")]


def test_signed_up_newest_first(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    assert store.signed_up(T0, T0 + 120) == [(T0 + 120, "carol"), (T0 + 60, "bob"), (T0, "alice")]
    assert store.signed_up(T0 + 0.5, T0 + 60) == [(T0 + 60, "bob")]
    assert store.signed_up(T0, T0 + 120, limit=1) == [(T0 + 120, "carol")]
    assert store.signed_up(T0 + 121, T0 + 999) == []


def test_one_lookup_answers_every_part_with_the_accounts(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    query = IntradayQuery(
        values={"email": ("john.doe2@gmail.com",), "device": ("dev-1", "dev-3")},
        blocks={"email_stem": ("johndoe@gmail.com",)},
        windows={"phone": (919876543200, 919876543219)},
        signed_up=(T0 + 100, T0 + 200),
        ids=("carol", "ghost"),
        exclude="bob",
    )
    found = store.lookup(query)
    assert found.values == {
        "device": {"dev-1": Holders(("alice",), 1), "dev-3": Holders(("carol",), 1)}
    }
    assert found.blocks == {"email_stem": {"johndoe@gmail.com": Holders(("alice",), 1)}}
    assert found.windows == {"phone": ((919876543210, "alice"),)}
    assert found.signed_up == ((T0 + 120, "carol"),)
    assert found.accounts == {"carol": CAROL, "alice": ALICE}
    assert found.accounts["alice"].payload == {"score": 0.91, "ring": "E-1"}


def test_sign_ups_come_as_ids_and_times_only(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    found = store.lookup(IntradayQuery(signed_up=(T0, T0 + 60), ids=("carol",)))
    assert found.signed_up == ((T0 + 60, "bob"), (T0, "alice"))
    assert found.accounts == {"carol": CAROL}


def test_hub_members_are_not_fetched(store: IntradayStore) -> None:
    for i in range(3):
        store.record(account(f"u{i}", devices=("cafe",)))
    found = store.lookup(IntradayQuery(values={"device": ("cafe",)}, limit=2))
    assert found.values == {"device": {"cafe": Holders((), 3)}}
    assert found.accounts == {}


def test_get_keeps_the_order_asked_and_drops_unknown_ids(store: IntradayStore) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    assert store.get(["carol", "nobody", "alice", "carol"]) == [CAROL, ALICE]
    many = [f"x{i}" for i in range(3000)] + ["bob"]  # more ids than one lookup takes
    assert store.get(many) == [BOB]


def test_accounts_expire_ttl_after_they_were_last_recorded(
    store: IntradayStore, clock: Clock
) -> None:
    store.record(ALICE)
    clock.advance(TTL / 2)
    store.record(BOB)
    clock.advance(TTL / 2 - 1)
    assert store.size() == 2
    clock.advance(2)  # alice: TTL + 1 s since recorded; no write since
    assert store.size() == 1
    assert store.get(["alice", "bob"]) == [BOB]
    assert store.holders("device", ["dev-1", "dev-2"]) == {"dev-1": Holders(("bob",), 1)}
    assert store.in_blocks("email_stem", ["jhndoe@gmail.com"]) == {}
    assert store.in_window("phone", 919876543210, 919876543210) == []
    assert store.signed_up(0, T0 * 2) == [(T0 + 60, "bob")]
    assert list(store.user_ids()) == ["bob"]
    assert store.lookup(IntradayQuery(ids=("alice",))).accounts == {}
    assert store.record(ALICE) is True  # an expired account is new again
    assert store.size() == 2


def test_created_at_does_not_age_an_account(store: IntradayStore, clock: Clock) -> None:
    """A replay of last month's sign-ups must not expire on arrival: TTL runs from recording."""
    old = account("old", created_at=T0 - 30 * 86400, devices=("dev-old",))
    assert store.record(old) is True
    assert store.get(["old"]) == [old]
    assert store.signed_up(T0 - 31 * 86400, T0) == [(T0 - 30 * 86400, "old")]


def test_recording_again_renews_the_ttl(store: IntradayStore, clock: Clock) -> None:
    store.record(ALICE)
    clock.advance(TTL - 10)
    store.record(ALICE)
    clock.advance(TTL - 10)
    assert store.get(["alice"]) == [ALICE]


def test_purge_removes_the_expired(store: IntradayStore, clock: Clock) -> None:
    for i in range(7):
        store.record(account(f"u{i}", devices=(f"d{i}",)))
    store.record(CAROL)
    clock.advance(TTL + 1)
    store.record(BOB)
    assert store.purge() in (0, 8)  # a write may have purged them already; either way:
    assert store.size() == 1
    assert store.purge() == 0
    assert store.holders("device", [f"d{i}" for i in range(7)] + ["dev-3"]) == {}


def test_max_accounts_evicts_the_least_recently_recorded(
    make_store: StoreMaker, clock: Clock
) -> None:
    store = make_store(clock, max_accounts=3)
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
        clock.advance(1)
    store.record(ALICE)  # alice is now the most recently recorded
    clock.advance(1)
    assert store.record(account("dave", devices=("dev-1",))) is True
    assert store.size() == 3
    assert store.get(["alice", "bob", "carol", "dave"]) == [ALICE, CAROL, store.get(["dave"])[0]]
    assert store.holders("device", ["dev-1"]) == {"dev-1": Holders(("alice", "dave"), 2)}
    assert store.in_window("phone", 919876543211, 919876543211) == []
    clock.advance(1)
    store.record(BOB)
    assert sorted(store.user_ids()) == ["alice", "bob", "dave"]


def test_forget_removes_accounts_and_counts_the_live_ones(
    store: IntradayStore, clock: Clock
) -> None:
    for acc in (ALICE, BOB, CAROL):
        store.record(acc)
    assert store.forget(["alice", "nobody", "alice"]) == 1
    assert store.get(["alice"]) == []
    assert store.holders("device", ["dev-1", "dev-2"]) == {"dev-1": Holders(("bob",), 1)}
    assert store.in_window("phone", 919876543210, 919876543210) == []
    # a snapshot's worth of ids, most of them never here
    ids = [f"snap{i}" for i in range(1000)] + ["carol"]
    assert store.forget(ids) == 1
    assert store.size() == 1
    assert store.forget([]) == 0


def test_user_ids_walks_the_whole_store(store: IntradayStore) -> None:
    ids = {f"user-{i}" for i in range(1500)}  # more than one scan page
    for uid in ids:
        store.record(IntradayAccount(uid, T0))
    assert sorted(store.user_ids()) == sorted(ids)


def test_odd_ids_values_and_names_round_trip(store: IntradayStore) -> None:
    odd = IntradayAccount(
        "user:with:colons ünï 🙂",
        T0 + 0.125,
        identifiers={"upi-id": ("pay:me@okbank", "a\nb"), "device.v2": ("x" * 512,)},
        blocks={"email_stem": ("ü@x.de",)},
        numbers={"phone": (0,)},
        payload={"nested": {"list": [1, 2.5, None, True, "ö"]}, "big": 2**63 - 1},
    )
    store.record(odd)
    assert store.get([odd.user_id]) == [odd]
    assert store.holders("upi-id", ["pay:me@okbank", "a\nb"]) == {
        "pay:me@okbank": Holders((odd.user_id,), 1),
        "a\nb": Holders((odd.user_id,), 1),
    }
    assert store.in_window("phone", 0, 0) == [(0, odd.user_id)]
    # a value with ':' in it is not confused with another kind's key
    assert store.holders("upi-id", ["pay"]) == {}


def test_stores_with_different_prefixes_do_not_see_each_other(
    make_store: StoreMaker, clock: Clock
) -> None:
    one, two = make_store(clock), make_store(clock)
    one.record(ALICE)
    assert two.size() == 0
    assert two.holders("device", ["dev-1"]) == {}


def test_a_returned_account_cannot_change_the_store(store: IntradayStore) -> None:
    store.record(ALICE)
    got = store.get(["alice"])[0]
    got.payload["score"] = 0.0  # type: ignore[index]
    assert store.get(["alice"])[0].payload["score"] == 0.91


def test_concurrent_writers_and_readers_see_whole_accounts(store: IntradayStore) -> None:
    """Writers re-record `flip` between two devices while readers look both up: a reader sees
    `flip` under exactly one of them, with the document that matches (record is atomic)."""
    errors: list[str] = []
    stop = threading.Event()

    started = threading.Barrier(3)  # the flipper and both readers

    def flipper() -> None:
        flips = [account("flip", devices=(dev,), dev=dev) for dev in ("A", "B")]
        started.wait()
        deadline, i = time.monotonic() + 0.4, 0
        while i < 100 or time.monotonic() < deadline:
            store.record(flips[i % 2])
            i += 1

    def writer(w: int) -> None:
        for i in range(60):
            store.record(account(f"w{w}-{i}", devices=("shared", f"own-{w}-{i}")))

    def reader() -> None:
        query = IntradayQuery(values={"device": ("A", "B")}, limit=10)
        started.wait()
        while not stop.is_set():
            found = store.lookup(query)
            holders = [d for d, h in found.values.get("device", {}).items() if "flip" in h.user_ids]
            if len(holders) != 1:
                errors.append(f"flip under {holders}")
            elif found.accounts["flip"].identifiers["device"] != (holders[0],):
                errors.append("document and index disagree")

    def guarded(target: Callable[..., None], *args: object) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except Exception as exc:  # a thread's exception must fail the test, not vanish
                errors.append(repr(exc))

        return threading.Thread(target=run)

    store.record(account("flip", devices=("A",), dev="A"))
    readers = [guarded(reader) for _ in range(2)]
    writers = [guarded(flipper)] + [guarded(writer, w) for w in range(4)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads interleave far more often than every 5 ms
    try:
        for t in readers + writers:
            t.start()
        for t in writers:
            t.join()
    finally:
        stop.set()
        for t in readers:
            t.join()
        sys.setswitchinterval(switch)
    assert errors == []
    assert store.size() == 1 + 4 * 60
    shared = store.holders("device", ["shared"], limit=1000)["shared"]
    assert shared.count == 240
    assert len(shared.user_ids) == 240
