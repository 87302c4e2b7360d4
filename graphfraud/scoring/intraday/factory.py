"""Pick the IntradayStore the settings ask for: `memory` (default, one replica) or `redis`."""

from __future__ import annotations

import time
from collections.abc import Callable

from graphfraud.config import IntradaySettings
from graphfraud.errors import ConfigError
from graphfraud.scoring.intraday.base import IntradayStore

BACKENDS = ("memory", "redis")


def open_intraday_store(
    settings: IntradaySettings, *, clock: Callable[[], float] = time.time
) -> IntradayStore:
    """The configured store. Opening never touches the network (a Redis store connects on its
    first call), so a service starts while Redis is down and degrades until it is back."""
    if settings.backend == "memory":
        from graphfraud.scoring.intraday.memory import MemoryIntradayStore

        return MemoryIntradayStore(settings, clock=clock)
    if settings.backend == "redis":
        from graphfraud.scoring.intraday.redis_store import RedisIntradayStore

        return RedisIntradayStore(settings, clock=clock)
    raise ConfigError(
        f"unknown intraday backend {settings.backend!r}; use one of {', '.join(BACKENDS)}",
        hint="set GRAPHFRAUD_INTRADAY__BACKEND",
    )
