"""Pick the GraphStore the settings ask for: empty uri = embedded, `bolt://…` = Neo4j."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphfraud.config import GraphSettings
from graphfraud.errors import ConfigError, GraphFraudError
from graphfraud.graph.base import GraphStore
from graphfraud.identifiers import BUILTIN, IdentifierRegistry, registry_from_manifest

_BOLT_SCHEMES = ("bolt://", "bolt+s://", "bolt+ssc://", "neo4j://", "neo4j+s://", "neo4j+ssc://")


def open_driver(settings: GraphSettings) -> Any:
    """One neo4j driver for this process (the import stays lazy so `--help` is fast)."""
    if not settings.uri.startswith(_BOLT_SCHEMES):
        raise ConfigError(
            f"graph uri must start with one of {', '.join(_BOLT_SCHEMES)}",
            hint="set --graph-uri / GRAPHFRAUD_GRAPH__URI (empty = embedded store)",
        )
    try:
        from neo4j import GraphDatabase
    except ImportError as exc:  # pragma: no cover - neo4j is a core dependency today
        raise ConfigError(
            "the Neo4j store needs the neo4j driver", hint="pip install 'neo4j>=5.20,<7'"
        ) from exc
    return GraphDatabase.driver(
        settings.uri,
        auth=(settings.user, settings.password.get_secret_value()),
        connection_timeout=settings.connect_timeout_s,
        max_transaction_retry_time=settings.retry_time_s,
        user_agent="graphfraud",
    )


def open_graph_store(settings: GraphSettings, run_dir: Path | str | None = None) -> GraphStore:
    """The configured GraphStore. Embedded needs `run_dir`; the Neo4j store owns its driver
    (closed by `store.close()`)."""
    if not settings.uri:
        if run_dir is None:
            raise ConfigError(
                "the embedded graph store answers from a run directory; none was given",
                hint="pass --run DIR, or set GRAPHFRAUD_GRAPH__URI=bolt://… for Neo4j",
            )
        from graphfraud.graph.embedded import EmbeddedGraphStore

        return EmbeddedGraphStore(run_dir)
    from graphfraud.graph.neo4j import Neo4jGraphStore

    return Neo4jGraphStore(
        open_driver(settings),
        settings.database,
        batch_size=settings.batch_size,
        owns_driver=True,
        registry=_registry_of(run_dir),
    )


def _registry_of(run_dir: Path | str | None) -> IdentifierRegistry:
    """The identifier kinds of the run being served (the built-ins without one)."""
    if run_dir is None:
        return BUILTIN
    from graphfraud.rundir import RunDir

    try:
        return registry_from_manifest(RunDir(run_dir).manifest())
    except GraphFraudError:
        return BUILTIN
