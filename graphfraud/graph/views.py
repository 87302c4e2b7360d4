"""Read-model assembly shared by both stores, so they order and bound results the same way."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from graphfraud.graph.base import (
    MAX_EXPLAIN_HOPS,
    MAX_RING_EVENTS,
    Holding,
    LinkEvidence,
    Member,
    RingEventView,
    RingHistory,
)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def member_from(row: Mapping[str, Any]) -> Member:
    return Member(
        user_id=str(row["user_id"]),
        score=_opt_float(row.get("score")),
        email=_opt_str(row.get("email")),
        phone=_opt_str(row.get("phone")),
        label=_opt_int(row.get("label")),
        created_at=_opt_str(row.get("created_at")),
    )


def link_from(row: Mapping[str, Any]) -> LinkEvidence:
    return LinkEvidence(
        user_a=str(row["user_a"]),
        user_b=str(row["user_b"]),
        kind=str(row["kind"]),
        value_a=_opt_str(row.get("value_a")),
        value_b=_opt_str(row.get("value_b")),
        similarity=float(row.get("similarity") or 0.0),
        support=int(row.get("support") or 0),
        weight=float(row.get("weight") or 0.0),
        evidence=str(row.get("evidence") or ""),
    )


def ordered_members(members: Iterable[Member]) -> tuple[Member, ...]:
    """Riskiest first, then by id: the order both stores use when a ring is truncated."""
    return tuple(
        sorted(members, key=lambda m: (-(m.score if m.score is not None else -1.0), m.user_id))
    )


def ordered_links(links: Iterable[LinkEvidence]) -> tuple[LinkEvidence, ...]:
    """Strongest first, then by (user_a, user_b, kind)."""
    return tuple(sorted(links, key=lambda x: (-x.weight, x.user_a, x.user_b, x.kind)))


def cap_per_kind(
    links: Iterable[LinkEvidence], cap: int
) -> tuple[tuple[LinkEvidence, ...], tuple[str, ...]]:
    """The strongest `cap` links of each kind (in `ordered_links` order) and the kinds that had
    more: a device farm's shared-device links survive beside its hundreds of look-alike links."""
    kept: list[LinkEvidence] = []
    seen: dict[str, int] = {}
    for link in ordered_links(links):
        n = seen.get(link.kind, 0)
        seen[link.kind] = n + 1
        if n < cap:
            kept.append(link)
    return tuple(kept), tuple(sorted(k for k, n in seen.items() if n > cap))


def holding_from(row: Mapping[str, Any]) -> Holding:
    return Holding(
        user_id=str(row["user_id"]),
        kind=str(row["kind"]),
        value=str(row["value"]),
        holders=int(row.get("holders") or 0),
    )


def ordered_holdings(holdings: Iterable[Holding]) -> tuple[Holding, ...]:
    return tuple(sorted(holdings, key=lambda h: (h.kind, h.value, h.user_id)))


def hop_evidence(
    path: tuple[str, ...], links: Iterable[LinkEvidence]
) -> tuple[tuple[LinkEvidence, ...], ...]:
    """Group the links joining consecutive path users into one tuple per hop (sorted by kind)."""
    by_pair: dict[frozenset[str], list[LinkEvidence]] = {}
    for link in links:
        by_pair.setdefault(frozenset((link.user_a, link.user_b)), []).append(link)
    return tuple(
        tuple(sorted(by_pair.get(frozenset((x, y)), []), key=lambda e: (e.kind, e.user_a)))
        for x, y in itertools.pairwise(path)
    )


def clamp_hops(max_hops: int) -> int:
    """Explanations search 1..MAX_EXPLAIN_HOPS user-to-user hops, whatever the caller asks."""
    return max(1, min(int(max_hops), MAX_EXPLAIN_HOPS))


def ring_event_from(row: Mapping[str, Any]) -> RingEventView:
    """A read-model event from a `graph.tables` ring event row or a (:RingEvent) node's
    properties (the event's run is `event_run_id` there: `run_id` tags the publish)."""
    return RingEventView(
        run_id=str(row["event_run_id"]),
        at=str(row["at"]),
        ring_id=str(row["ring_id"]),
        event=str(row["event"]),
        other_ring_id=_opt_str(row.get("other_ring_id")),
        size_before=int(row["size_before"]),
        size_after=int(row["size_after"]),
        shared=_opt_int(row.get("shared")),
    )


def ring_history(
    ring_id: str, live: bool, events: Iterable[RingEventView], limit: int = MAX_RING_EVENTS
) -> RingHistory:
    """Oldest first (by run start, then run id; in one run the ring's own event, then others by
    id); past `limit`, the newest `limit` events."""
    ordered = sorted(
        {(e.run_id, e.ring_id): e for e in events}.values(),
        key=lambda e: (e.at, e.run_id, e.ring_id != ring_id, e.ring_id),
    )
    return RingHistory(
        ring_id=ring_id,
        live=live,
        events=tuple(ordered[-limit:]) if limit > 0 else (),
        truncated=len(ordered) > limit,
    )
