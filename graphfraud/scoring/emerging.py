"""Emerging rings: the rings forming among today's accounts, before the night's batch.

A new account joins the ring the batch's own objective prefers (`choose_ring`: Leiden's
constant Potts gain over pairs strong enough to join a ring) among the snapshot rings of its
neighbours, today's emerging rings, and a new one with its strongly tied accounts of today. An
emerging ring is an index entry of its members in the intraday store (`EMERGING_KIND`), so
reading one (`read_emerging_ring`) or exporting all (`emerging_memberships`, for the batch to
adopt: `rings.adopt`) needs nothing else; its features are the batch's `ring_features` over its
members and the links among them (`emerging_ring_row`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import polars as pl

from graphfraud.config import RingSettings
from graphfraud.identifiers import (
    IdentifierRegistry,
)
from graphfraud.rings.features import one_ring_features
from graphfraud.scoring.intraday.base import (
    IntradayAccount,
    IntradayMatches,
    IntradayQuery,
    IntradayStore,
)
from graphfraud.scoring.scores import one_ring_score
from graphfraud.scoring.store import ScoreStore
from graphfraud.scoring.today import AccountRequest, Link, strengths

EMERGING_KIND = "_emerging"  # store index: emerging ring id → its members (no registry kind)


EMERGING_PREFIX = "em-"


MAX_RING_READ = 200  # members an emerging ring is read with (a bigger one is a hub, not a ring)


@dataclass(frozen=True)
class RingChoice:
    ring_id: str | None
    strength: float
    emerging: bool
    members: tuple[IntradayAccount, ...] = ()  # an emerging ring's other members
    absorb: tuple[IntradayAccount, ...] = ()  # accounts to store again under `ring_id`


def emerging_ring_id(first_member: str) -> str:
    """A stable id for the emerging ring started by `first_member` (a replay gets the same)."""
    return EMERGING_PREFIX + hashlib.sha256(first_member.encode("utf-8")).hexdigest()[:12]


def choose_ring(
    store: IntradayStore | None,
    snapshot: ScoreStore,
    links: Sequence[Link],
    found: IntradayMatches | None,
    rings: RingSettings,
    request: AccountRequest,
) -> RingChoice:
    """The ring the account joins, by the batch's objective: Leiden's constant Potts model gains
    Σ_j s_ij − γ·|ring| from joining a ring, over its pairs strong enough to join a ring at all
    (s ≥ `min_weight`), γ the batch's `resolution`. Candidates: the snapshot rings of its
    snapshot neighbours, today's emerging rings, and a new emerging ring with its strong
    neighbours of today in no emerging ring (gain Σ (s_ij − γ)). The best positive gain wins;
    none, no ring. Many weak ties never add up to a ring (a café's IP)."""
    accounts = found.accounts if found is not None else {}
    gamma = rings.resolution
    strong = {u: s for u, s in strengths(links).items() if s >= rings.min_weight}
    if not strong:
        return RingChoice(None, 0.0, emerging=False)
    tie: dict[tuple[bool, str], float] = {}  # (emerging, ring id) → Σ strengths into it
    miss: dict[tuple[bool, str], float] = {}
    loose: list[IntradayAccount] = []  # today's strong neighbours in no ring
    for uid, strength in strong.items():
        record = snapshot.user(uid)
        key: tuple[bool, str] | None = None
        if record is not None:
            key = (False, record.ring_id) if record.ring_id is not None else None
        elif uid in accounts:
            # Today's accounts group among themselves: one that joined a snapshot ring is still
            # free to start or join an emerging ring (the night's Leiden decides between them).
            payload = accounts[uid].payload
            if payload.get("er"):
                key = (True, str(payload["er"]))
            else:
                loose.append(accounts[uid])
        if key is not None:
            tie[key] = tie.get(key, 0.0) + strength
            miss[key] = miss.get(key, 1.0) * (1.0 - strength)
    today = _emerging_rings(store, [k[1] for k in tie if k[0]], request)
    gains: dict[tuple[bool, str], float] = {}
    for key, total in tie.items():
        emerging, ring_id = key
        size = today.get(ring_id, (1, ()))[0] if emerging else _ring_size(snapshot, ring_id)
        gains[key] = total - gamma * size
    fresh = [a for a in loose if strong[a.user_id] > gamma]
    fresh_gain = sum(strong[a.user_id] - gamma for a in fresh)
    best = max(gains, key=lambda k: (gains[k], not k[0], k[1]), default=None)
    if fresh and (best is None or fresh_gain > gains[best]) and store is not None:
        first = min(
            [(a.created_at, a.user_id) for a in fresh]
            + [(request.created_at.timestamp(), request.user_id)]
        )
        strength = 1.0 - math.prod(1.0 - strong[a.user_id] for a in fresh)
        members = tuple(sorted(fresh, key=lambda a: (a.created_at, a.user_id)))
        return RingChoice(
            emerging_ring_id(first[1]), strength, emerging=True, members=members, absorb=members
        )
    if best is None or gains[best] <= 0:
        return RingChoice(None, 0.0, emerging=False)
    emerging, ring_id = best
    strength = 1.0 - miss[best]
    if not emerging:
        return RingChoice(ring_id, strength, emerging=False)
    return RingChoice(ring_id, strength, emerging=True, members=today.get(ring_id, (0, ()))[1])


def _emerging_rings(
    store: IntradayStore | None, ring_ids: Sequence[str], request: AccountRequest
) -> dict[str, tuple[int, tuple[IntradayAccount, ...]]]:
    """Today's emerging rings among `ring_ids`: size and members, oldest first, in one lookup (a
    ring past MAX_RING_READ is a hub: its size only)."""
    if store is None or not ring_ids:
        return {}
    found = store.lookup(
        IntradayQuery(
            values={EMERGING_KIND: list(ring_ids)},
            exclude=request.user_id or None,
            limit=MAX_RING_READ,
        )
    )
    out = {}
    for ring_id, held in found.values.get(EMERGING_KIND, {}).items():
        members = [found.accounts[u] for u in held.user_ids if u in found.accounts]
        out[ring_id] = (held.count, tuple(sorted(members, key=lambda a: (a.created_at, a.user_id))))
    return out


def emerging_ring_row(
    request: AccountRequest,
    choice: RingChoice,
    links: Sequence[Link],
    registry: IdentifierRegistry,
) -> dict[str, Any]:
    """The batch's ring features (`one_ring_features`) over an emerging ring: its members (with
    the account) and the links among them (each stored once, on the later account of a pair)."""
    assert choice.ring_id is not None
    ids = [request.user_id, *(a.user_id for a in choice.members)]
    created = [request.created_at] + [
        datetime.fromtimestamp(a.created_at, tz=UTC) for a in choice.members
    ]
    mine = [(request.user_id, lk.user_id, lk.kind, lk.weight) for lk in links if lk.intraday]
    return one_ring_features(
        ids, created, [None] * len(ids), _ring_links(mine, choice.members), registry
    )


def _ring_links(
    extra: Sequence[tuple[str, str, str, float]], members: Sequence[IntradayAccount]
) -> list[tuple[str, str, str, float]]:
    """The links among `members` (their stored links to earlier accounts) and `extra`, one per
    pair and kind, ends ordered as the batch orders them."""
    rows = list(extra)
    for account in members:
        rows += [
            (account.user_id, str(o), str(k), float(w)) for o, k, w in account.payload.get("l", ())
        ]
    out: dict[tuple[str, str, str], float] = {}
    for a, b, kind, weight in rows:
        if a != b:
            out.setdefault((min(a, b), max(a, b), kind), weight)
    return [(a, b, k, w) for (a, b, k), w in out.items()]


@dataclass(frozen=True)
class EmergingRing:
    """An emerging ring as it stands: members (oldest first), the links among them, the batch's
    ring features over them, and its score from the members' model scores (`one_ring_score`)."""

    ring_id: str
    members: tuple[IntradayAccount, ...]
    links: tuple[tuple[str, str, str, float], ...]  # user_a, user_b, kind, weight
    features: dict[str, Any]
    ring_score: float | None
    truncated: bool  # more members than MAX_RING_READ: the rest are not listed


def read_emerging_ring(
    store: IntradayStore, ring_id: str, registry: IdentifierRegistry
) -> EmergingRing | None:
    """The emerging ring `ring_id`, or None when no live account is in it."""
    found = store.lookup(IntradayQuery(values={EMERGING_KIND: [ring_id]}, limit=MAX_RING_READ))
    held = found.values.get(EMERGING_KIND, {}).get(ring_id)
    if held is None:
        return None
    members = tuple(
        sorted(
            (found.accounts[u] for u in held.user_ids if u in found.accounts),
            key=lambda a: (a.created_at, a.user_id),
        )
    )
    if not members:
        return None
    created = [datetime.fromtimestamp(a.created_at, tz=UTC) for a in members]
    ring_links = _ring_links((), members)
    inside = {a.user_id for a in members}
    links = tuple(lk for lk in ring_links if lk[0] in inside and lk[1] in inside)
    ids = [a.user_id for a in members]
    features = one_ring_features(ids, created, [None] * len(ids), links, registry)
    scored = [float(a.payload["ms"]) for a in members if a.payload.get("ms") is not None]
    ring_score = one_ring_score(scored) if scored else None
    return EmergingRing(ring_id, members, links, features, ring_score, held.count > len(members))


def emerging_memberships(store: IntradayStore, chunk: int = 1_000) -> pl.DataFrame:
    """`user_id, emerging_ring_id` of every live account in an emerging ring: what the night's
    batch adopts (`rings.adopt`). Walks the whole store in chunks, off the request path."""
    ids: list[str] = []
    rings: list[str] = []
    batch: list[str] = []

    def flush() -> None:
        for account in store.get(batch):
            ring = account.identifiers.get(EMERGING_KIND)
            if ring:
                ids.append(account.user_id)
                rings.append(ring[0])
        batch.clear()

    for uid in store.user_ids():
        batch.append(uid)
        if len(batch) >= chunk:
            flush()
    flush()
    return pl.DataFrame(
        {"user_id": ids, "emerging_ring_id": rings},
        schema={"user_id": pl.String, "emerging_ring_id": pl.String},
    ).sort("emerging_ring_id", "user_id")


def _ring_size(snapshot: ScoreStore, ring_id: str) -> int:
    ring = snapshot.ring(ring_id)
    return ring.size if ring is not None else 0
