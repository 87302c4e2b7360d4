"""Every Cypher statement graphfraud sends, each with a name (the name, never the parameter
values, goes into errors and logs).

Dialect: Neo4j 5 Cypher that also runs on ArcadeDB's Bolt server. Hence: no `SHORTEST k`
(use `shortestPath()`), no FULLTEXT indexes, no `db.awaitIndexes()`, element ids never parsed.
Values travel only as `$parameters`; labels, relationship types and hop bounds are literals
chosen from fixed tables below or from the identifier registry (`graphfraud.identifiers`, whose
labels and types are checked against `^[A-Z][A-Za-z0-9_]*$` when it is built), never from input.

Publish conventions: every node and relationship a publish writes carries `run_id` (the run that
last wrote it); nodes are `MERGE`d on their key then replaced whole (`SET n = $props`) so a
property that disappeared from the run disappears from the graph. A full publish then deletes,
in batches, whatever does not carry the current `run_id` (`sweep_queries`); a delta publish
writes only what changed and deletes what left by key (`*_delete` statements: delete-if-exists,
`DETACH DELETE` for nodes). Either way a rerun after a crash converges.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import LiteralString

from graphfraud.graph.base import MAX_EXPLAIN_HOPS
from graphfraud.identifiers import BUILTIN, IdentifierRegistry, IdentifierSpec


@dataclass(frozen=True)
class Query:
    """One named statement."""

    name: str
    text: LiteralString


META_ID = "publish"  # the id of the single (:GraphFraudMeta) node that records publish state

# ---- schema -------------------------------------------------------------------------------------
_BASE_SCHEMA: tuple[Query, ...] = (
    Query(
        "constraint_user_id",
        "CREATE CONSTRAINT graphfraud_user_id IF NOT EXISTS FOR (n:User) REQUIRE n.id IS UNIQUE",
    ),
    Query(
        "constraint_ring_id",
        "CREATE CONSTRAINT graphfraud_ring_id IF NOT EXISTS FOR (n:Ring) REQUIRE n.id IS UNIQUE",
    ),
    Query(
        "constraint_meta_id",
        "CREATE CONSTRAINT graphfraud_meta_id IF NOT EXISTS "
        "FOR (n:GraphFraudMeta) REQUIRE n.id IS UNIQUE",
    ),
    Query(
        "constraint_ring_event_id",
        "CREATE CONSTRAINT graphfraud_ring_event_id IF NOT EXISTS "
        "FOR (n:RingEvent) REQUIRE n.id IS UNIQUE",
    ),
    # A ring's history is read by either id an event names (`RING_HISTORY`).
    Query(
        "index_ring_event_ring",
        "CREATE INDEX graphfraud_ring_event_ring IF NOT EXISTS FOR (n:RingEvent) ON (n.ring_id)",
    ),
    Query(
        "index_ring_event_other",
        "CREATE INDEX graphfraud_ring_event_other IF NOT EXISTS "
        "FOR (n:RingEvent) ON (n.other_ring_id)",
    ),
)

# ---- publish state ------------------------------------------------------------------------------
# `run_id`, `digest` and `run_path` name the run the graph holds; they change only in META_FINISH,
# after every batch has landed, so a crashed publish still names the run it started from.
META_START = Query(
    "meta_start",
    "MERGE (m:GraphFraudMeta {id: $id}) "
    "SET m.status = 'publishing', m.target_run_id = $run_id, m.started_at = $at, "
    "m.finished_at = null, m.mode = $mode, m.base_run_id = $base_run_id",
)
META_FINISH = Query(
    "meta_finish",
    "MERGE (m:GraphFraudMeta {id: $id}) "
    "SET m.status = 'complete', m.run_id = $run_id, m.target_run_id = $run_id, "
    "m.model_version = $model_version, m.finished_at = $at, m.nodes = $nodes, "
    "m.relationships = $relationships, m.digest = $digest, m.run_path = $run_path, "
    "m.mode = $mode, m.base_run_id = $base_run_id, m.upserted_nodes = $upserted_nodes, "
    "m.upserted_relationships = $upserted_relationships, m.deleted_nodes = $deleted_nodes, "
    "m.deleted_relationships = $deleted_relationships",
)
META_READ = Query("meta_read", "MATCH (m:GraphFraudMeta {id: $id}) RETURN properties(m) AS meta")

# ---- publish: nodes (rows: {key, props}) ---------------------------------------------------------
UPSERT_USERS = Query("upsert_users", "UNWIND $rows AS r MERGE (n:User {id: r.key}) SET n = r.props")
UPSERT_RINGS = Query("upsert_rings", "UNWIND $rows AS r MERGE (n:Ring {id: r.key}) SET n = r.props")
UPSERT_RING_EVENTS = Query(
    "upsert_ring_events", "UNWIND $rows AS r MERGE (n:RingEvent {id: r.key}) SET n = r.props"
)


def _literal(text: str) -> LiteralString:
    """A registry label or type as Cypher text: the registry checked its grammar when built
    (mypy reads LiteralString as str; the name marks where a non-literal enters a query)."""
    return text


# Matches are collected before anything is deleted: ArcadeDB evaluates `MATCH … DELETE` row by
# row, and a later row that walks an edge list a previous row just changed fails with
# `EntityNotFound` (seen deleting several links of one user in one batch).
def _collect_then(match: LiteralString, delete: LiteralString) -> LiteralString:
    return "UNWIND $rows AS r " + match + " WITH collect(x) AS doomed UNWIND doomed AS x " + delete


def _identifier_constraint(spec: IdentifierSpec) -> Query:
    label, name = _literal(spec.graph_label), _literal(spec.name)
    return Query(
        f"constraint_{spec.name}_value",
        "CREATE CONSTRAINT graphfraud_" + name + "_value IF NOT EXISTS "
        "FOR (n:" + label + ") REQUIRE n.value IS UNIQUE",
    )


def schema_queries(registry: IdentifierRegistry = BUILTIN) -> tuple[Query, ...]:
    """Unique constraints for users, rings, the publish meta node and every identifier kind."""
    return (*_BASE_SCHEMA, *(_identifier_constraint(s) for s in registry.kinds))


def identifier_upsert(spec: IdentifierSpec) -> Query:
    return Query(
        f"upsert_{spec.name}_identifiers",
        "UNWIND $rows AS r MERGE (n:" + _literal(spec.graph_label) + " {value: r.value}) "
        "SET n.run_id = $run_id",
    )


def identifier_delete(spec: IdentifierSpec) -> Query:
    return Query(
        f"delete_{spec.name}_identifiers",
        _collect_then(
            "MATCH (x:" + _literal(spec.graph_label) + " {value: r.value})", "DETACH DELETE x"
        ),
    )


def identifier_link(spec: IdentifierSpec) -> Query:
    label, rel = _literal(spec.graph_label), _literal(spec.holds_type)
    return Query(
        f"link_{spec.name}_identifiers",
        "UNWIND $rows AS r MATCH (u:User {id: r.user_id}) "
        "MATCH (i:" + label + " {value: r.value}) "
        "MERGE (u)-[h:" + rel + "]->(i) SET h.run_id = $run_id",
    )


def identifier_unlink(spec: IdentifierSpec) -> Query:
    label, rel = _literal(spec.graph_label), _literal(spec.holds_type)
    return Query(
        f"unlink_{spec.name}_identifiers",
        _collect_then(
            "MATCH (:User {id: r.user_id})-[x:" + rel + "]->(:" + label + " {value: r.value})",
            "DELETE x",
        ),
    )


# ---- publish: relationships ----------------------------------------------------------------------
UPSERT_MEMBERSHIPS = Query(
    "upsert_memberships",
    "UNWIND $rows AS r MATCH (u:User {id: r.user_id}) MATCH (g:Ring {id: r.ring_id}) "
    "MERGE (u)-[m:MEMBER_OF]->(g) SET m = {run_id: $run_id}",
)
UPSERT_RING_EVENT_OF = Query(
    "upsert_ring_event_of",
    "UNWIND $rows AS r MATCH (g:Ring {id: r.ring_id}) MATCH (e:RingEvent {id: r.event_id}) "
    "MERGE (g)-[h:HAD_EVENT]->(e) SET h.run_id = $run_id",
)
UPSERT_LINKS = Query(
    "upsert_links",
    "UNWIND $rows AS r MATCH (a:User {id: r.user_a}) MATCH (b:User {id: r.user_b}) "
    "MERGE (a)-[l:LINKED {kind: r.props.kind}]->(b) SET l = r.props",
)


# ---- delta publish: delete what left the run, by key (a missing element matches nothing) -------
DELETE_USERS = Query("delete_users", _collect_then("MATCH (x:User {id: r.key})", "DETACH DELETE x"))
DELETE_RINGS = Query("delete_rings", _collect_then("MATCH (x:Ring {id: r.key})", "DETACH DELETE x"))
DELETE_RING_EVENTS = Query(
    "delete_ring_events", _collect_then("MATCH (x:RingEvent {id: r.key})", "DETACH DELETE x")
)
DELETE_RING_EVENT_OF = Query(
    "delete_ring_event_of",
    _collect_then(
        "MATCH (:Ring {id: r.ring_id})-[x:HAD_EVENT]->(:RingEvent {id: r.event_id})", "DELETE x"
    ),
)
DELETE_MEMBERSHIPS = Query(
    "delete_memberships",
    _collect_then(
        "MATCH (:User {id: r.user_id})-[x:MEMBER_OF]->(:Ring {id: r.ring_id})", "DELETE x"
    ),
)
DELETE_LINKS = Query(
    "delete_links",
    _collect_then(
        "MATCH (:User {id: r.user_a})-[x:LINKED {kind: r.kind}]->(:User {id: r.user_b})",
        "DELETE x",
    ),
)

# ---- publish: sweep what the current run does not hold -------------------------------------------
_BASE_LABELS: tuple[LiteralString, ...] = ("User", "Ring", "RingEvent")
_BASE_TYPES: tuple[LiteralString, ...] = ("LINKED", "MEMBER_OF", "HAD_EVENT")


def _sweep_rels(rel: LiteralString) -> Query:
    return Query(
        f"sweep_{rel.lower()}",
        "MATCH ()-[r:" + rel + "]->() WHERE r.run_id IS NULL OR r.run_id <> $run_id "
        "WITH r LIMIT $limit DELETE r RETURN count(*) AS deleted",
    )


def _sweep_nodes(label: LiteralString) -> Query:
    return Query(
        f"sweep_{label.lower()}_nodes",
        "MATCH (n:" + label + ") WHERE n.run_id IS NULL OR n.run_id <> $run_id "
        "WITH n LIMIT $limit DETACH DELETE n RETURN count(*) AS deleted",
    )


def sweep_queries(registry: IdentifierRegistry = BUILTIN) -> tuple[Query, ...]:
    """Relationships first, then nodes, of every type and label a publish of `registry`'s kinds
    writes (the built-in kinds always: a run without a declared kind still clears the built-ins)."""
    kinds = {s.name: s for s in (*BUILTIN.kinds, *registry.kinds)}.values()
    rels = (*_BASE_TYPES, *(_literal(s.holds_type) for s in kinds))
    labels = (*_BASE_LABELS, *(_literal(s.graph_label) for s in kinds))
    return (*(_sweep_rels(r) for r in rels), *(_sweep_nodes(n) for n in labels))


# ---- analyst reads ------------------------------------------------------------------------------
PING = Query("ping", "RETURN 1 AS ok")
USER_RING = Query(
    "user_ring",
    "MATCH (u:User {id: $user_id}) OPTIONAL MATCH (u)-[:MEMBER_OF]->(g:Ring) "
    "RETURN u.id AS user_id, g.id AS ring_id, properties(g) AS ring",
)
RING = Query("ring", "MATCH (g:Ring {id: $ring_id}) RETURN properties(g) AS ring")
RING_MEMBERS = Query(
    "ring_members",
    "MATCH (:Ring {id: $ring_id})<-[:MEMBER_OF]-(u:User) "
    "RETURN u.id AS user_id, u.score AS score, u.email AS email, u.phone AS phone, "
    "u.label AS label, u.created_at AS created_at "
    "ORDER BY coalesce(score, -1.0) DESC, user_id LIMIT $limit",
)
RING_LINKS = Query(
    "ring_links",
    "MATCH (:Ring {id: $ring_id})<-[:MEMBER_OF]-(a:User)-[l:LINKED]->(b:User) "
    "WHERE l.ring_id = $ring_id WITH a, b, l "
    "ORDER BY l.weight DESC, a.id, b.id, l.kind "
    "RETURN a.id AS user_a, b.id AS user_b, l.kind AS kind, l.value_a AS value_a, "
    "l.value_b AS value_b, l.similarity AS similarity, l.support AS support, "
    "l.weight AS weight, l.evidence AS evidence",
)
RING_HISTORY = Query(
    "ring_history",
    "MATCH (e:RingEvent {ring_id: $ring_id}) RETURN properties(e) AS event "
    "UNION ALL MATCH (e:RingEvent {other_ring_id: $ring_id}) RETURN properties(e) AS event",
)
RING_EXISTS = Query("ring_exists", "MATCH (g:Ring {id: $ring_id}) RETURN g.id AS ring_id")

_LINK_RETURN: LiteralString = (
    "RETURN a.id AS user_a, b.id AS user_b, l.kind AS kind, l.value_a AS value_a, "
    "l.value_b AS value_b, l.similarity AS similarity, l.support AS support, "
    "l.weight AS weight, l.evidence AS evidence "
)
LINKS_FROM = Query(
    "links_from",
    "MATCH (a:User {id: $user_id})-[l:LINKED]->(b:User) "
    + _LINK_RETURN
    + "ORDER BY weight DESC, user_b, kind LIMIT $limit",
)
LINKS_TO = Query(
    "links_to",
    "MATCH (a:User)-[l:LINKED]->(b:User {id: $user_id}) "
    + _LINK_RETURN
    + "ORDER BY weight DESC, user_a, kind LIMIT $limit",
)
USERS = Query(
    "users",
    "UNWIND $ids AS id MATCH (u:User {id: id}) "
    "RETURN u.id AS user_id, u.score AS score, u.email AS email, u.phone AS phone, "
    "u.label AS label, u.created_at AS created_at",
)


def holdings_of(spec: IdentifierSpec) -> Query:
    """The values of one kind the given users hold."""
    label, rel = _literal(spec.graph_label), _literal(spec.holds_type)
    return Query(
        f"holdings_{spec.name}",
        "UNWIND $ids AS id MATCH (u:User {id: id})-[:" + rel + "]->(i:" + label + ") "
        "RETURN u.id AS user_id, i.value AS value",
    )


def holders_of(spec: IdentifierSpec) -> Query:
    """How many users hold each given value of one kind."""
    label, rel = _literal(spec.graph_label), _literal(spec.holds_type)
    return Query(
        f"holders_{spec.name}",
        "UNWIND $values AS v MATCH (i:" + label + " {value: v})<-[:" + rel + "]-(u:User) "
        "RETURN v AS value, count(u) AS holders",
    )


USERS_EXIST = Query(
    "users_exist", "UNWIND $ids AS id MATCH (u:User {id: id}) RETURN u.id AS user_id"
)
HOP_EVIDENCE = Query(
    "hop_evidence",
    "UNWIND $pairs AS p MATCH (a:User {id: p[0]})-[l:LINKED]->(b:User {id: p[1]}) "
    "RETURN a.id AS user_a, b.id AS user_b, l.kind AS kind, l.value_a AS value_a, "
    "l.value_b AS value_b, l.similarity AS similarity, l.support AS support, "
    "l.weight AS weight, l.evidence AS evidence",
)


def _shortest_path(hops: int) -> Query:
    # Variable-length bounds cannot be parameters; `hops` is an int from a fixed range.
    bound: LiteralString = str(int(hops))  # type: ignore[assignment]
    return Query(
        f"shortest_link_path_{hops}",
        "MATCH (a:User {id: $a}) MATCH (b:User {id: $b}) "
        "MATCH p = shortestPath((a)-[:LINKED*.." + bound + "]-(b)) "
        "RETURN [n IN nodes(p) | n.id] AS path",
    )


SHORTEST_PATH = {hops: _shortest_path(hops) for hops in range(1, MAX_EXPLAIN_HOPS + 1)}


def all_queries(registry: IdentifierRegistry = BUILTIN) -> tuple[Query, ...]:
    """Every statement above (tests check names are unique and no literal value sneaks in)."""
    return (
        *schema_queries(registry),
        META_START,
        META_FINISH,
        META_READ,
        UPSERT_USERS,
        UPSERT_RINGS,
        UPSERT_RING_EVENTS,
        *(identifier_upsert(s) for s in registry.kinds),
        *(identifier_link(s) for s in registry.kinds),
        UPSERT_MEMBERSHIPS,
        UPSERT_RING_EVENT_OF,
        UPSERT_LINKS,
        *(identifier_delete(s) for s in registry.kinds),
        *(identifier_unlink(s) for s in registry.kinds),
        DELETE_USERS,
        DELETE_RINGS,
        DELETE_RING_EVENTS,
        DELETE_MEMBERSHIPS,
        DELETE_RING_EVENT_OF,
        DELETE_LINKS,
        *sweep_queries(registry),
        PING,
        USER_RING,
        RING,
        RING_MEMBERS,
        RING_LINKS,
        RING_HISTORY,
        RING_EXISTS,
        LINKS_FROM,
        LINKS_TO,
        USERS,
        *(holdings_of(s) for s in registry.kinds),
        *(holders_of(s) for s in registry.kinds),
        USERS_EXIST,
        HOP_EVIDENCE,
        *SHORTEST_PATH.values(),
    )
