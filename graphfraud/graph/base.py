"""The GraphStore protocol and the read models it returns.

Two real implementations: `EmbeddedGraphStore` (answers from a run directory, no server) and
`Neo4jGraphStore` (Neo4j 5 over Bolt, tested against ArcadeDB's Bolt server). One contract suite
(tests/contract/) runs over both.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

# Bounds on analyst reads: a ring view never returns more than this many members / links, and a
# link explanation never searches deeper than MAX_EXPLAIN_HOPS user-to-user hops.
MAX_RING_MEMBERS = 500
MAX_RING_LINKS = 300
MAX_EXPLAIN_HOPS = 4


@dataclass(frozen=True)
class Member:
    user_id: str
    score: float | None
    email: str | None
    phone: str | None
    label: int | None
    created_at: str | None  # ISO-8601


@dataclass(frozen=True)
class LinkEvidence:
    user_a: str
    user_b: str
    kind: str
    value_a: str | None
    value_b: str | None
    similarity: float
    support: int
    weight: float
    evidence: str


@dataclass(frozen=True)
class RingView:
    ring_id: str
    size: int
    ring_score: float | None
    features: dict[str, float | int | str | None]
    members: tuple[Member, ...]
    links: tuple[LinkEvidence, ...]
    truncated: bool = False
    model_version: str | None = None


@dataclass(frozen=True)
class LinkExplanation:
    """Why two users are linked: the user-to-user hops of one shortest path, each with the
    evidence of every link kind joining that hop."""

    user_a: str
    user_b: str
    path: tuple[str, ...]  # user ids, user_a first, user_b last; () when not connected
    hops: tuple[tuple[LinkEvidence, ...], ...] = field(default_factory=tuple)

    @property
    def connected(self) -> bool:
        return len(self.path) >= 2


@dataclass(frozen=True)
class PublishReport:
    """What one publish did. `nodes`/`relationships` are the run's graph; `rows` what was sent.

    `mode` is `full` (everything MERGEd, then a sweep) or `delta` (only what changed since
    `base_run_id`, the run the graph held); `reason` says why in one line. A full publish counts
    every element as upserted and the swept ones as deleted."""

    nodes: int
    relationships: int
    rows: int
    seconds: float
    run_id: str
    mode: str = "full"
    reason: str = ""
    base_run_id: str | None = None
    upserted_nodes: int = 0
    upserted_relationships: int = 0
    deleted_nodes: int = 0
    deleted_relationships: int = 0


@runtime_checkable
class GraphStore(Protocol):
    """Coarse, domain-level access to the identity graph."""

    def publish(self, run_dir: str, *, progress: bool = False, full: bool = False) -> PublishReport:
        """Make the store hold exactly the graph of `run_dir` (idempotent, crash-safe), sending
        only what changed since the run it holds unless `full`."""
        ...

    def ring_of(self, user_id: str) -> RingView | None:
        """The ring `user_id` belongs to; None when the user is in no ring.
        Raises NotFound for an unknown user."""
        ...

    def ring(self, ring_id: str) -> RingView:
        """One ring by id; raises NotFound."""
        ...

    def explain_link(
        self, user_a: str, user_b: str, max_hops: int = MAX_EXPLAIN_HOPS
    ) -> LinkExplanation:
        """Shortest chain of links between two users with evidence; raises NotFound for an
        unknown user; an unconnected pair returns an explanation with an empty path."""
        ...

    def ping(self) -> bool:
        """True when the store can answer now (for readiness and 503 decisions)."""
        ...

    def close(self) -> None: ...
