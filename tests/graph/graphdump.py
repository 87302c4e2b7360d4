"""The whole graph of one database as sorted plain data, to compare two publishes exactly.

`run_id` on an element is bookkeeping (the run that last wrote it: a delta publish leaves it on
unchanged elements, a full publish rewrites it everywhere), so the canonical dump leaves it out;
every other label, key, relationship and property is compared. `tables_dump` writes the same
canonical form from a run's tables (what the embedded store answers from).
"""

from __future__ import annotations

import json
from typing import Any

from graphfraud.graph.delta import graph_phases
from graphfraud.graph.tables import GraphTables

TAG = "run_id"


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _props(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k != TAG and v is not None}


def dump_graph(driver: Any, database: str) -> tuple[list[str], list[str]]:
    """(nodes, relationships): every node but the publish-state node, every relationship, each
    with labels/type, endpoint keys and all properties but the run tag; sorted, so equal lists
    = equal graphs."""
    nodes, _, _ = driver.execute_query(
        "MATCH (n) WHERE NOT n:GraphFraudMeta RETURN labels(n) AS labels, properties(n) AS props",
        database_=database,
    )
    rels, _, _ = driver.execute_query(
        "MATCH (a)-[r]->(b) RETURN type(r) AS type, labels(a) AS la, "
        "coalesce(a.id, a.value) AS ka, "
        "labels(b) AS lb, coalesce(b.id, b.value) AS kb, properties(r) AS props",
        database_=database,
    )
    node_rows = sorted(_canon([sorted(r["labels"]), _props(r["props"])]) for r in nodes)
    rel_rows = sorted(
        _canon([r["type"], r["la"], r["ka"], r["lb"], r["kb"], _props(r["props"])]) for r in rels
    )
    return node_rows, rel_rows


def tables_dump(tables: GraphTables) -> tuple[list[str], list[str]]:
    """The canonical dump of the graph a publish of `tables` makes, from the tables alone."""
    specs = {s.name: s for s in tables.registry.kinds}
    nodes: list[str] = []
    rels: list[str] = []
    for phase in graph_phases(tables):
        for row in phase.rows.iter_rows(named=True):
            if phase.name in ("users", "rings", "ring_events"):
                label = {"users": "User", "rings": "Ring", "ring_events": "RingEvent"}[phase.name]
                nodes.append(_canon([[label], _props(row["props"])]))
            elif phase.name == "ring_event_of":
                rels.append(
                    _canon(
                        ["HAD_EVENT", ["Ring"], row["ring_id"], ["RingEvent"], row["event_id"], {}]
                    )
                )
            elif phase.name.endswith("_identifiers"):
                spec = specs[phase.name.removesuffix("_identifiers")]
                nodes.append(_canon([[spec.graph_label], {"value": row["value"]}]))
            elif phase.name.endswith("_holds"):
                spec = specs[phase.name.removesuffix("_holds")]
                rels.append(
                    _canon(
                        [
                            spec.holds_type,
                            ["User"],
                            row["user_id"],
                            [spec.graph_label],
                            row["value"],
                            {},
                        ]
                    )
                )
            elif phase.name == "memberships":
                rels.append(
                    _canon(
                        [
                            "MEMBER_OF",
                            ["User"],
                            row["user_id"],
                            ["Ring"],
                            row["ring_id"],
                            {},
                        ]
                    )
                )
            else:
                assert phase.name == "links", phase.name
                rels.append(
                    _canon(
                        [
                            "LINKED",
                            ["User"],
                            row["user_a"],
                            ["User"],
                            row["user_b"],
                            _props(row["props"]),
                        ]
                    )
                )
    return sorted(nodes), sorted(rels)


def publish_state(driver: Any, database: str) -> dict[str, Any] | None:
    records, _, _ = driver.execute_query(
        "MATCH (m:GraphFraudMeta {id: 'publish'}) RETURN properties(m) AS m", database_=database
    )
    return dict(records[0]["m"]) if records else None


def tagged(driver: Any, database: str, run_id: str) -> tuple[int, int]:
    """(nodes, relationships) tagged with `run_id`: what a publish of that run wrote (the
    publish-state node aside)."""
    n, _, _ = driver.execute_query(
        "MATCH (n) WHERE n.run_id = $run AND NOT n:GraphFraudMeta RETURN count(n) AS n",
        run=run_id,
        database_=database,
    )
    r, _, _ = driver.execute_query(
        "MATCH ()-[r]->() WHERE r.run_id = $run RETURN count(r) AS n",
        run=run_id,
        database_=database,
    )
    return int(n[0]["n"]), int(r[0]["n"])
