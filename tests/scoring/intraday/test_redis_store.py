"""What only the Redis store does: fail promptly and safely when its server is down, hung,
refusing or wrongly configured, come back when the server does, and leave no keys behind.
Against real `redis-server` processes (the session one, or one per test where it is stopped)."""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from graphfraud.config import IntradaySettings
from graphfraud.errors import IntradayUnavailable
from graphfraud.scoring.intraday import IntradayAccount, IntradayQuery
from graphfraud.scoring.intraday.local_server import (
    CONFIG_FILE,
    LocalRedis,
    free_port,
    start_redis,
    stop_redis,
)
from graphfraud.scoring.intraday.redis_store import RedisIntradayStore
from tests.conftest import REDIS_TEST_PASSWORD

pytestmark = pytest.mark.redis

EMAIL = "priya.verma07@gmail.com"
ALICE = IntradayAccount(
    "alice",
    1.7e9,
    identifiers={"email": (EMAIL,), "device": ("dev-1",)},
    blocks={"email_stem": ("priyaverma@gmail.com",)},
    numbers={"phone": (919876543210,)},
    payload={"score": 0.9},
)
_prefix = iter(range(10**6))


def settings_for(url: str, **overrides: Any) -> IntradaySettings:
    fields: dict[str, Any] = {
        "backend": "redis",
        "url": url,
        "password": REDIS_TEST_PASSWORD,
        "prefix": f"redis-test-{next(_prefix)}",
        "timeout_s": 0.05,
        "retry_after_s": 0.0,
    }
    return IntradaySettings(**(fields | overrides))


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[LocalRedis]:
    """A server of this test's own, which it may pause, stop or fill up."""
    server = start_redis(tmp_path / "redis", REDIS_TEST_PASSWORD)
    yield server
    stop_redis(server)


def admin(server: Any) -> redis.Redis:
    return redis.Redis(
        host="127.0.0.1", port=server.port, password=REDIS_TEST_PASSWORD, decode_responses=True
    )


OPERATIONS: dict[str, Callable[[RedisIntradayStore], object]] = {
    "record": lambda s: s.record(ALICE),
    "get": lambda s: s.get(["alice"]),
    "lookup": lambda s: s.lookup(IntradayQuery(values={"email": (EMAIL,)})),
    "holders": lambda s: s.holders("device", ["dev-1"]),
    "in_window": lambda s: s.in_window("phone", 0, 10**12),
    "signed_up": lambda s: s.signed_up(0, 2e9),
    "forget": lambda s: s.forget(["alice"]),
    "purge": lambda s: s.purge(),
    "size": lambda s: s.size(),
    "user_ids": lambda s: list(s.user_ids()),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
def test_nothing_listening_raises_unavailable_within_the_timeout(op: str) -> None:
    store = RedisIntradayStore(settings_for(f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    with pytest.raises(IntradayUnavailable, match="unreachable") as info:
        OPERATIONS[op](store)
    assert time.monotonic() - started < 0.5
    assert EMAIL not in str(info.value)
    assert "alice" not in str(info.value)
    assert REDIS_TEST_PASSWORD not in str(info.value)
    assert store.ping() is False
    store.close()


def test_after_a_failure_calls_fail_fast_and_it_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = RedisIntradayStore(
        settings_for(f"redis://127.0.0.1:{free_port()}/0", retry_after_s=30.0)
    )
    with caplog.at_level(logging.WARNING, logger="graphfraud.intraday"):
        with pytest.raises(IntradayUnavailable, match="unreachable"):
            store.record(ALICE)
        started = time.monotonic()
        for _ in range(50):
            with pytest.raises(IntradayUnavailable, match="failing fast"):
                store.lookup(IntradayQuery(values={"email": (EMAIL,)}))
        assert (time.monotonic() - started) / 50 < 0.002  # no network, no timeout
    warnings = [r for r in caplog.records if r.name == "graphfraud.intraday"]
    assert len(warnings) == 1
    assert EMAIL not in warnings[0].getMessage()


def test_a_hung_server_times_out_then_recovers(own_server: LocalRedis) -> None:
    store = RedisIntradayStore(settings_for(own_server.url, retry_after_s=0.2))
    store.record(ALICE)
    os.kill(own_server.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(IntradayUnavailable, match="unreachable \\(lookup\\): TimeoutError"):
            store.lookup(IntradayQuery(values={"email": (EMAIL,)}))
        assert time.monotonic() - started < 0.5
    finally:
        os.kill(own_server.pid, signal.SIGCONT)
    time.sleep(0.25)  # past retry_after_s
    assert store.ping() is True
    assert store.get(["alice"]) == [ALICE]
    store.close()


def test_a_restarted_server_is_used_again(own_server: LocalRedis) -> None:
    store = RedisIntradayStore(settings_for(own_server.url))
    store.record(ALICE)
    stop_redis(own_server)
    with pytest.raises(IntradayUnavailable):
        store.size()
    restarted = start_redis(own_server.root, REDIS_TEST_PASSWORD, port=own_server.port)
    try:
        assert store.size() == 0  # nothing is persisted: the day's accounts start again
        assert store.record(ALICE) is True
        assert store.get(["alice"]) == [ALICE]
    finally:
        store.close()
        stop_redis(restarted)


def test_a_wrong_password_is_unavailable_and_never_shown(redis_server: LocalRedis) -> None:
    store = RedisIntradayStore(settings_for(redis_server.url, password="not-the-password"))
    with pytest.raises(IntradayUnavailable) as info:
        store.record(ALICE)
    assert "not-the-password" not in str(info.value)
    assert store.ping() is False
    store.close()


def test_writes_refused_for_memory_keep_reads_answering(own_server: LocalRedis) -> None:
    store = RedisIntradayStore(settings_for(own_server.url))
    store.record(ALICE)
    server = admin(own_server)
    server.config_set("maxmemory-policy", "noeviction")
    server.config_set("maxmemory", "1")
    try:
        bob = IntradayAccount("bob", 1.7e9, identifiers={"device": ("dev-1",)})
        with pytest.raises(IntradayUnavailable, match="refused record: OutOfMemoryError"):
            store.record(bob)
        assert store.holders("device", ["dev-1"])["dev-1"].user_ids == ("alice",)
        assert store.get(["bob"]) == []  # the refused write left nothing half-done
    finally:
        server.config_set("maxmemory", "0")
    assert store.record(bob) is True
    store.close()


def test_every_key_is_under_the_prefix_and_none_is_left_behind(own_server: LocalRedis) -> None:
    clock = [1.7e9]
    settings = settings_for(own_server.url, ttl_s=100.0, max_accounts=5, timeout_s=2.0)
    store = RedisIntradayStore(settings, clock=lambda: clock[0])
    server = admin(own_server)
    for i in range(12):  # evictions past max_accounts
        store.record(
            IntradayAccount(
                f"u{i}",
                1.7e9 + i,
                identifiers={"device": (f"d{i % 3}", "shared")},
                blocks={"stem": (f"s{i % 2}",)},
                numbers={"phone": (100 + i, 200)},
            )
        )
        clock[0] += 1
    store.record(IntradayAccount("u11", 1.7e9, identifiers={"device": ("moved",)}))  # replace
    keys = server.keys("*")
    assert keys
    assert all(k.startswith(settings.prefix + ":") for k in keys)
    clock[0] += 50
    store.forget(["u8"])
    clock[0] += 100  # the rest expire
    assert store.purge() == 4
    assert server.keys("*") == []
    store.close()


@pytest.mark.parametrize("garbage", [b"not json", b"\xff\xfe", b'{"u": "alice"}'])
def test_unreadable_data_under_the_prefix_is_unavailable_not_a_crash(
    redis_server: LocalRedis, garbage: bytes
) -> None:
    settings = settings_for(redis_server.url, timeout_s=2.0)
    store = RedisIntradayStore(settings)
    store.record(ALICE)
    redis.Redis(port=redis_server.port, password=REDIS_TEST_PASSWORD).set(
        f"{settings.prefix}:a:alice", garbage
    )
    with pytest.raises(IntradayUnavailable, match="unreadable data \\(lookup\\)"):
        store.get(["alice"])
    assert store.ping() is True  # the connection is still good for the next request
    assert store.size() == 1
    assert store.forget(["alice"]) == 1  # the way out: the unreadable account can be removed
    assert store.holders("device", ["dev-1"]) == {}
    store.close()


def test_the_password_is_not_in_the_process_list(redis_server: LocalRedis) -> None:
    cmdline = Path(f"/proc/{redis_server.pid}/cmdline").read_bytes()
    assert REDIS_TEST_PASSWORD.encode() not in cmdline
    assert (redis_server.root / CONFIG_FILE).stat().st_mode & 0o077 == 0
