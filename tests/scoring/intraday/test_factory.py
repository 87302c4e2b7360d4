"""Settings → store: the backend chosen, and every bad setting a ConfigError that says which."""

from __future__ import annotations

import time
from typing import Any

import pytest

from graphfraud.config import IntradaySettings, load_settings
from graphfraud.errors import ConfigError
from graphfraud.scoring.intraday import MemoryIntradayStore, open_intraday_store
from graphfraud.scoring.intraday.local_server import free_port
from graphfraud.scoring.intraday.redis_store import RedisIntradayStore


def test_memory_is_the_default() -> None:
    store = open_intraday_store(load_settings().intraday)
    assert isinstance(store, MemoryIntradayStore)


def test_redis_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHFRAUD_INTRADAY__BACKEND", "redis")
    monkeypatch.setenv("GRAPHFRAUD_INTRADAY__URL", "rediss://cache.internal:6380/2")
    monkeypatch.setenv("GRAPHFRAUD_INTRADAY__PASSWORD", "s3cret-pw")
    monkeypatch.setenv("GRAPHFRAUD_INTRADAY__TTL_S", "3600")
    settings = load_settings().intraday
    assert (settings.backend, settings.url, settings.ttl_s) == (
        "redis",
        "rediss://cache.internal:6380/2",
        3600.0,
    )
    assert "s3cret-pw" not in repr(settings)
    assert "s3cret-pw" not in str(settings.model_dump())


def test_opening_a_redis_store_does_not_touch_the_network() -> None:
    started = time.monotonic()
    url = f"redis://127.0.0.1:{free_port()}/0"
    store = open_intraday_store(IntradaySettings(backend="redis", url=url))
    assert isinstance(store, RedisIntradayStore)
    assert time.monotonic() - started < 0.5
    store.close()


@pytest.mark.parametrize(
    ("fields", "message", "hint"),
    [
        ({"backend": "mongo"}, "unknown intraday backend 'mongo'", "__BACKEND"),
        ({"backend": "memory", "ttl_s": 0}, "ttl_s must be a positive", "__TTL_S"),
        ({"backend": "memory", "ttl_s": float("inf")}, "ttl_s must be a positive", "__TTL_S"),
        ({"backend": "memory", "max_accounts": 0}, "max_accounts", "__MAX_ACCOUNTS"),
        ({"url": "http://127.0.0.1:6379"}, "must start with redis://", "__URL"),
        ({"url": "redis://:hunter2-pw@10.0.0.5:6379/0"}, "holds a password", "__PASSWORD"),
        ({"url": "redis://user:hunter2-pw@10.0.0.5:6379/0"}, "holds a password", "__PASSWORD"),
        ({"url": "unix:///run/redis.sock?password=hunter2-pw"}, "holds a password", "__PASSWORD"),
        ({"prefix": "graphfraud:prod"}, "prefix must be", "__PREFIX"),
        ({"prefix": ""}, "prefix must be", "__PREFIX"),
        ({"timeout_s": 0}, "timeout_s must be a positive", "__TIMEOUT_S"),
        ({"retry_after_s": -1}, "retry_after_s must be a positive", "__RETRY_AFTER_S"),
        ({"max_connections": 0}, "max_connections", "__MAX_CONNECTIONS"),
        ({"ttl_s": -5}, "ttl_s must be a positive", "__TTL_S"),
    ],
)
def test_a_bad_setting_is_a_config_error_naming_it(
    fields: dict[str, Any], message: str, hint: str
) -> None:
    settings = IntradaySettings(**({"backend": "redis"} | fields))
    with pytest.raises(ConfigError, match=message) as info:
        open_intraday_store(settings)
    assert hint in info.value.hint
    assert "hunter2-pw" not in str(info.value)
