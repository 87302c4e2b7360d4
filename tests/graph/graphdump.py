"""The whole graph of one database as sorted plain data, to compare two publishes exactly."""

from __future__ import annotations

import json
from typing import Any


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def dump_graph(driver: Any, database: str) -> tuple[list[str], list[str]]:
    """(nodes, relationships): every node but the publish-state node, every relationship, each
    with labels/type, endpoint keys and all properties; sorted, so equal lists = equal graphs."""
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
    node_rows = sorted(_canon([sorted(r["labels"]), r["props"]]) for r in nodes)
    rel_rows = sorted(
        _canon([r["type"], r["la"], r["ka"], r["lb"], r["kb"], r["props"]]) for r in rels
    )
    return node_rows, rel_rows


def publish_state(driver: Any, database: str) -> dict[str, Any] | None:
    records, _, _ = driver.execute_query(
        "MATCH (m:GraphFraudMeta {id: 'publish'}) RETURN properties(m) AS m", database_=database
    )
    return dict(records[0]["m"]) if records else None
