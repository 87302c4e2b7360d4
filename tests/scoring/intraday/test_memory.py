"""What only the in-process store does: nothing left behind, and a clock that steps back."""

from __future__ import annotations

from graphfraud.config import IntradaySettings
from graphfraud.scoring.intraday import IntradayAccount, MemoryIntradayStore


def test_nothing_is_left_behind() -> None:
    now = [1.7e9]
    store = MemoryIntradayStore(IntradaySettings(ttl_s=100.0, max_accounts=4), clock=lambda: now[0])
    for i in range(10):
        store.record(
            IntradayAccount(
                f"u{i}",
                1.7e9 + i,
                identifiers={"device": (f"d{i % 3}", "shared")},
                blocks={"stem": (f"s{i % 2}",)},
                numbers={"phone": (100 + i, 200)},
            )
        )
        now[0] += 1
    store.forget(["u9"])
    now[0] += 101
    assert store.purge() == 3
    internals = (store._seen, store._docs, store._entries, store._created, store._sets)
    assert all(not part for part in internals)
    assert store._numbers == {}
    assert store._by_created == []


def test_a_clock_stepping_back_keeps_expiry_in_record_order() -> None:
    """Record times never go backwards: `b`, recorded after an NTP step back, is stamped with the
    latest record time, so it cannot expire early from behind a younger account, nor linger."""
    now = [1000.0]
    store = MemoryIntradayStore(IntradaySettings(ttl_s=10.0), clock=lambda: now[0])
    store.record(IntradayAccount("a", 0))
    now[0] = 990.0  # the clock steps back
    store.record(IntradayAccount("b", 0))
    now[0] = 1000.5
    store.record(IntradayAccount("a", 0))  # a is now the most recent
    now[0] = 1001.0
    assert [acc.user_id for acc in store.get(["a", "b"])] == ["a", "b"]
    now[0] = 1010.2
    assert [acc.user_id for acc in store.get(["a", "b"])] == ["a"]
