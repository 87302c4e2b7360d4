"""The GraphStore protocol and the read models it returns.

Two real implementations: `EmbeddedGraphStore` (answers from a run directory, no server) and
`Neo4jGraphStore` (Neo4j 5 over Bolt, tested against ArcadeDB's Bolt server). One contract suite
(tests/contract/) runs over both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import networkx as nx

# Bounds on analyst reads: a ring view never returns more than MAX_RING_MEMBERS members nor more
# than MAX_RING_LINKS links of one kind (capped per kind, so a ring's defining evidence survives
# however many look-alike links it also has); a link explanation never searches deeper than
# MAX_EXPLAIN_HOPS user-to-user hops; a neighbourhood lists at most MAX_NEIGHBOURS links; a
# holdings read takes at most MAX_RING_MEMBERS users.
MAX_RING_MEMBERS = 500
MAX_RING_LINKS = 300
MAX_EXPLAIN_HOPS = 4
MAX_RING_EVENTS = 1000  # a ring history returns at most this many events (the newest)
MAX_NEIGHBOURS = 200


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
    cut_kinds: tuple[str, ...] = ()  # link kinds with more links in the ring than shown

    def to_networkx(self) -> nx.MultiGraph:
        """The ring as a networkx MultiGraph: a node per member (its `Member` fields as
        attributes), an edge per link kind joining two members (its `LinkEvidence` fields), so a
        pair linked by an email and a device has two edges. Needs networkx (`pip install
        'graphfraud[notebooks]'`)."""
        try:
            import networkx as nx
        except ImportError as exc:
            from graphfraud.errors import ConfigError

            raise ConfigError(
                "to_networkx needs networkx", hint="pip install 'graphfraud[notebooks]'"
            ) from exc
        graph = nx.MultiGraph(ring_id=self.ring_id, ring_score=self.ring_score, size=self.size)
        for m in self.members:
            graph.add_node(m.user_id, **asdict(m))
        for link in self.links:
            graph.add_edge(link.user_a, link.user_b, key=link.kind, **asdict(link))
        return graph


@dataclass(frozen=True)
class Holding:
    """One identifier a user holds, and how many accounts hold it (a device farm's device: 150)."""

    user_id: str
    kind: str  # identifier kind name: "email", "device", …
    value: str
    holders: int


@dataclass(frozen=True)
class Neighbourhood:
    """A user, the users it is linked to directly (strongest links first) and those links."""

    user: Member
    neighbours: tuple[Member, ...]
    links: tuple[LinkEvidence, ...]
    truncated: bool = False


@dataclass(frozen=True)
class RingEventView:
    """One ring event (`schema.RING_EVENTS_SCHEMA`, `rings.lineage`)."""

    run_id: str  # the run that recorded it
    at: str  # that run's start, ISO-8601 UTC
    ring_id: str
    event: str  # a schema.RingEvent
    other_ring_id: str | None
    size_before: int
    size_after: int
    shared: int | None


@dataclass(frozen=True)
class RingHistory:
    """What happened to one ring id, oldest first: its own events and those of rings that name
    it (`merged_into` it, `split_from` it). A retired id keeps its history."""

    ring_id: str
    live: bool  # a ring of the published run
    events: tuple[RingEventView, ...]
    truncated: bool = False  # more than MAX_RING_EVENTS: the oldest were left out


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

    def ring_history(self, ring_id: str) -> RingHistory:
        """Every event of a ring id, live or retired; raises NotFound for an id the published
        graph neither holds as a ring nor names in an event."""
        ...

    def explain_link(
        self, user_a: str, user_b: str, max_hops: int = MAX_EXPLAIN_HOPS
    ) -> LinkExplanation:
        """Shortest chain of links between two users with evidence; raises NotFound for an
        unknown user; an unconnected pair returns an explanation with an empty path."""
        ...

    def neighbours(self, user_id: str, limit: int = MAX_NEIGHBOURS) -> Neighbourhood:
        """The user's direct links (strongest first, at most `limit`) and the users at their other
        end; raises NotFound for an unknown user."""
        ...

    def holdings(self, user_ids: Sequence[str]) -> tuple[Holding, ...]:
        """The identifiers these users hold (sorted by kind, value, user), each with its number of
        holders among all accounts; unknown ids hold nothing. At most MAX_RING_MEMBERS ids."""
        ...

    def ping(self) -> bool:
        """True when the store can answer now (for readiness and 503 decisions)."""
        ...

    def close(self) -> None: ...
