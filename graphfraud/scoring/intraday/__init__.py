"""The intraday store: accounts scored since the last snapshot, shared by the replicas.

`open_intraday_store(settings.intraday)` gives a `MemoryIntradayStore` (one replica) or a
`RedisIntradayStore` (Redis / Valkey); both satisfy `IntradayStore` (see `base`)."""

from graphfraud.scoring.intraday.base import (
    DEFAULT_LIMIT,
    Holders,
    IntradayAccount,
    IntradayMatches,
    IntradayQuery,
    IntradayStore,
)
from graphfraud.scoring.intraday.factory import open_intraday_store
from graphfraud.scoring.intraday.memory import MemoryIntradayStore

__all__ = [
    "DEFAULT_LIMIT",
    "Holders",
    "IntradayAccount",
    "IntradayMatches",
    "IntradayQuery",
    "IntradayStore",
    "MemoryIntradayStore",
    "open_intraday_store",
]
