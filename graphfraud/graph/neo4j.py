"""`Neo4jGraphStore`: the identity graph in Neo4j 5 over Bolt (tested against ArcadeDB's Bolt).

Rules that keep it correct on both servers: one driver per process, passed in; every write in a
managed transaction (`execute_write`), one writer, nodes before relationships, `UNWIND $rows`
batches; reads through `execute_query`. Driver errors are re-raised as GraphStore* errors naming
the query, never its parameter values.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from graphfraud.errors import (
    GraphStoreAuthError,
    GraphStoreError,
    GraphStoreUnavailable,
    NotFound,
)
from graphfraud.graph import cypher
from graphfraud.graph.base import (
    MAX_EXPLAIN_HOPS,
    MAX_NEIGHBOURS,
    MAX_RING_LINKS,
    MAX_RING_MEMBERS,
    Holding,
    LinkExplanation,
    Neighbourhood,
    PublishReport,
    RingHistory,
    RingView,
)
from graphfraud.graph.cypher import Query
from graphfraud.graph.delta import (
    GraphDelta,
    Phase,
    choose_base,
    diff_phases,
    graph_digest,
    graph_phases,
    row_hashes,
    with_run_id,
)
from graphfraud.graph.tables import GraphTables, load_tables
from graphfraud.graph.views import (
    cap_per_kind,
    clamp_hops,
    hop_evidence,
    link_from,
    member_from,
    ordered_holdings,
    ordered_links,
    ordered_members,
    ring_event_from,
    ring_history,
)
from graphfraud.identifiers import BUILTIN, IdentifierRegistry

if TYPE_CHECKING:
    from neo4j import Driver, ManagedTransaction, Session

log = logging.getLogger(__name__)

# Ring node properties that are not "features that explain it".
_RING_NON_FEATURES = frozenset({"id", "size", "ring_score", "run_id", "model_version"})
_SESSION = Query("publish_session", "RETURN 1")  # names errors raised outside any one statement


@contextmanager
def wrap_errors(query: Query) -> Iterator[None]:
    """Translate driver errors into the package's tree, naming the query (values stay out)."""
    from neo4j.exceptions import (
        AuthError,
        DriverError,
        Neo4jError,
        ServiceUnavailable,
        SessionExpired,
    )

    try:
        yield
    except AuthError:
        raise GraphStoreAuthError(
            f"graph database rejected the credentials ({query.name})",
            hint="check GRAPHFRAUD_GRAPH__USER and GRAPHFRAUD_GRAPH__PASSWORD",
        ) from None
    except (ServiceUnavailable, SessionExpired) as exc:
        raise GraphStoreUnavailable(
            f"graph database unavailable during {query.name} ({type(exc).__name__})",
            hint="is the server running and GRAPHFRAUD_GRAPH__URI right? retrying later may work",
        ) from None
    except Neo4jError as exc:
        code = exc.code or ""
        hint = (
            "does the database exist?"
            if "DatabaseNotFound" in code
            else "a server-side failure (e.g. a restart); rerun, a publish converges"
            if code.startswith("Neo.DatabaseError")
            else ""
        )
        raise GraphStoreError(f"query {query.name} failed: {exc.code}", hint=hint) from None
    except DriverError as exc:
        raise GraphStoreError(f"query {query.name} failed: {type(exc).__name__}") from None
    except OSError as exc:
        raise GraphStoreUnavailable(
            f"graph database unreachable during {query.name} ({type(exc).__name__})"
        ) from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def publish_phases(tables: GraphTables) -> list[tuple[Query, pl.DataFrame]]:
    """The ordered (upsert, rows as sent) pairs of a full publish: nodes, then relationships."""
    return [(p.upsert, with_run_id(p.rows, tables.run_id)) for p in graph_phases(tables)]


class _Progress:
    """A rich progress bar when asked for, else nothing."""

    def __init__(self, enabled: bool, total: int, run_id: str) -> None:
        self._bar: Any = None
        if enabled:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("[bold]publish[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                transient=False,
            )
            self._task = self._bar.add_task(run_id, total=total)
            from rich.errors import LiveError

            try:
                self._bar.start()
            except LiveError:  # another live display (a caller's spinner) owns the console
                self._bar = None

    def advance(self, rows: int, phase: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=rows, description=phase)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


class Neo4jGraphStore:
    """GraphStore over a Bolt driver (Neo4j 5 or ArcadeDB)."""

    def __init__(
        self,
        driver: Driver,
        database: str | None = None,
        *,
        batch_size: int = 5000,
        max_members: int = MAX_RING_MEMBERS,
        max_links: int = MAX_RING_LINKS,
        owns_driver: bool = False,
        registry: IdentifierRegistry = BUILTIN,
    ) -> None:
        self._driver = driver
        self._database = database or None
        self._batch_size = max(1, int(batch_size))
        self._max_members = max_members
        # Only the strongest MAX_RING_LINKS + 1 links of a ring carry its id in the graph.
        self._max_links = min(max_links, MAX_RING_LINKS)
        self._owns_driver = owns_driver
        # The identifier kinds holdings are read for: the run's, learnt at publish.
        self._registry = registry

    def __repr__(self) -> str:
        return f"Neo4jGraphStore(database={self._database!r})"

    # ---- plumbing --------------------------------------------------------------------------
    def _read(self, query: Query, **params: Any) -> list[dict[str, Any]]:
        from neo4j import RoutingControl

        with wrap_errors(query):
            records, _, _ = self._driver.execute_query(
                query.text, params, database_=self._database, routing_=RoutingControl.READ
            )
        return [record.data() for record in records]

    def _write(self, session: Session, query: Query, **params: Any) -> list[dict[str, Any]]:
        def work(tx: ManagedTransaction) -> list[dict[str, Any]]:
            return [record.data() for record in tx.run(query.text, params)]

        with wrap_errors(query):
            return session.execute_write(work)

    @contextmanager
    def _session(self) -> Iterator[Session]:
        with wrap_errors(_SESSION), self._driver.session(database=self._database) as session:
            yield session

    # ---- publish -----------------------------------------------------------------------------
    def ensure_schema(self, registry: IdentifierRegistry = BUILTIN) -> None:
        """Unique constraints (each also an index) `IF NOT EXISTS`; safe to rerun."""
        with self._session() as session:
            for query in cypher.schema_queries(registry):
                self._write(session, query)

    def publish(
        self, run_dir: str | Path, *, progress: bool = False, full: bool = False
    ) -> PublishReport:
        """Make the database hold exactly the graph of `run_dir`, sending only what changed.

        The meta node (:GraphFraudMeta {id:'publish'}) names the run the graph holds and its
        digest. When that run's directory is found and still matches the digest, only the
        difference is sent (upserts, then deletes); otherwise, or with `full`, everything is
        MERGEd and tagged with the run id and whatever is not tagged with it is swept. Either
        way every batch is idempotent and the meta node moves to the new run only after the last
        one, so a rerun after a crash converges.
        """
        started = time.perf_counter()
        path = Path(run_dir)
        tables = load_tables(path)
        self._registry = tables.registry
        phases = graph_phases(tables)
        hashes = {p.name: row_hashes(p.rows) for p in phases}
        digest = graph_digest(phases, hashes)
        self.ensure_schema(tables.registry)
        meta = self.published()
        base = choose_base(meta, path, tables.run_id, full)
        log.info(
            "publish of run %s: %s (tables, hashes and base in %.1fs)",
            tables.run_id,
            base.reason,
            time.perf_counter() - started,
        )
        mode = "full" if base.run_id is None else "delta"
        # For a full publish, the run the graph held before (if any), for the record.
        base_run_id = base.run_id or (meta.get("run_id") if meta else None)
        if base.run_id is None:
            counts = self._publish_full(tables, phases, base_run_id, progress)
        else:
            delta = diff_phases(base.phases, phases, base.hashes, hashes)
            counts = self._publish_delta(tables, delta, base_run_id, progress)
        rows = counts.pop("rows")
        with self._session() as session:
            self._write(
                session,
                cypher.META_FINISH,
                id=cypher.META_ID,
                run_id=tables.run_id,
                model_version=tables.model_version,
                at=_now(),
                nodes=tables.node_count,
                relationships=tables.relationship_count,
                digest=digest,
                run_path=str(path.resolve()),
                mode=mode,
                base_run_id=base_run_id,
                **counts,
            )
        seconds = time.perf_counter() - started
        log.info("published run %s (%s): %d rows, %.1fs", tables.run_id, mode, rows, seconds)
        return PublishReport(
            nodes=tables.node_count,
            relationships=tables.relationship_count,
            rows=rows,
            seconds=seconds,
            run_id=tables.run_id,
            mode=mode,
            reason=base.reason,
            base_run_id=base_run_id,
            **counts,
        )

    def _publish_full(
        self,
        tables: GraphTables,
        phases: tuple[Phase, ...],
        base_run_id: str | None,
        progress: bool,
    ) -> dict[str, int]:
        """MERGE every row tagged with the run id, then sweep what is not tagged with it."""
        run_id = tables.run_id
        total = sum(p.rows.height for p in phases)
        bar = _Progress(progress, total, run_id)
        try:
            with self._session() as session:
                self._start(session, run_id, "full", base_run_id)
                for phase in phases:
                    rows = with_run_id(phase.rows, run_id)
                    self._load(session, phase.upsert, rows, run_id, bar.advance)
                swept_rels, swept_nodes = self._sweep(session, run_id, tables.registry)
        finally:
            bar.close()
        return {
            "rows": total,
            "upserted_nodes": tables.node_count,
            "upserted_relationships": tables.relationship_count,
            "deleted_nodes": swept_nodes,
            "deleted_relationships": swept_rels,
        }

    def _publish_delta(
        self, tables: GraphTables, delta: GraphDelta, base_run_id: str | None, progress: bool
    ) -> dict[str, int]:
        """Upsert new and changed rows (nodes, then relationships), then delete what left
        (relationships, then nodes with DETACH DELETE)."""
        run_id = tables.run_id
        bar = _Progress(progress, delta.rows, f"{run_id} (delta)")
        ordered = [d for d in delta.phases if d.phase.node] + [
            d for d in delta.phases if not d.phase.node
        ]
        try:
            with self._session() as session:
                self._start(session, run_id, "delta", base_run_id)
                for d in ordered:
                    rows = with_run_id(d.upserts, run_id)
                    self._load(session, d.phase.upsert, rows, run_id, bar.advance)
                for d in reversed(ordered):
                    self._load(session, d.phase.delete, d.to_delete, run_id, bar.advance)
        finally:
            bar.close()
        return {
            "rows": delta.rows,
            "upserted_nodes": delta.count(node=True, upserted=True),
            "upserted_relationships": delta.count(node=False, upserted=True),
            "deleted_nodes": delta.count(node=True, upserted=False),
            "deleted_relationships": delta.count(node=False, upserted=False),
        }

    def _start(self, session: Session, run_id: str, mode: str, base_run_id: str | None) -> None:
        """Mark the meta node `publishing` towards `run_id`; the run it holds stays named until
        META_FINISH, so a crash leaves the old run's name (and a rerun converges)."""
        self._write(
            session,
            cypher.META_START,
            id=cypher.META_ID,
            run_id=run_id,
            at=_now(),
            mode=mode,
            base_run_id=base_run_id,
        )

    def _load(
        self,
        session: Session,
        query: Query,
        rows: pl.DataFrame,
        run_id: str,
        advance: Callable[[int, str], None],
    ) -> None:
        started = time.perf_counter()
        for offset in range(0, rows.height, self._batch_size):
            batch = rows.slice(offset, self._batch_size).to_dicts()
            self._write(session, query, rows=batch, run_id=run_id)
            advance(len(batch), query.name)
        if rows.height:
            log.info("%s: %d rows in %.1fs", query.name, rows.height, time.perf_counter() - started)

    def _sweep(
        self, session: Session, run_id: str, registry: IdentifierRegistry
    ) -> tuple[int, int]:
        """Delete, in batches, every relationship then node not tagged with `run_id`; returns
        (relationships, nodes) deleted."""
        swept = {True: 0, False: 0}
        for query in cypher.sweep_queries(registry):
            while True:
                result = self._write(session, query, run_id=run_id, limit=self._batch_size)
                deleted = int(result[0]["deleted"]) if result else 0
                swept[query.name.endswith("_nodes")] += deleted
                if deleted < self._batch_size:
                    break
        return swept[False], swept[True]

    def published(self) -> dict[str, Any] | None:
        """The publish state: run_id (live run), status, target_run_id, started_at, finished_at."""
        rows = self._read(cypher.META_READ, id=cypher.META_ID)
        return dict(rows[0]["meta"]) if rows else None

    # ---- analyst reads -----------------------------------------------------------------------
    def ring_of(self, user_id: str) -> RingView | None:
        rows = self._read(cypher.USER_RING, user_id=user_id)
        if not rows:
            raise NotFound("no user with this id in the graph")
        ring_id = rows[0]["ring_id"]
        # The ring's properties come with the membership: one round trip fewer on the hot read.
        return None if ring_id is None else self._ring_view(ring_id, rows[0]["ring"])

    def ring(self, ring_id: str) -> RingView:
        rows = self._read(cypher.RING, ring_id=ring_id)
        if not rows:
            raise NotFound("no ring with this id in the graph")
        return self._ring_view(ring_id, rows[0]["ring"])

    def ring_history(self, ring_id: str) -> RingHistory:
        events = [
            ring_event_from(r["event"]) for r in self._read(cypher.RING_HISTORY, ring_id=ring_id)
        ]
        live = bool(self._read(cypher.RING_EXISTS, ring_id=ring_id))
        if not events and not live:
            raise NotFound("no ring with this id in the graph, live or retired")
        return ring_history(ring_id, live, events)

    def _ring_view(self, ring_id: str, props: dict[str, Any]) -> RingView:
        members = self._read(cypher.RING_MEMBERS, ring_id=ring_id, limit=self._max_members + 1)
        # At most MAX_RING_LINKS + 1 links of each kind carry the ring's id (graph.tables).
        links, cut = cap_per_kind(
            (link_from(x) for x in self._read(cypher.RING_LINKS, ring_id=ring_id)),
            self._max_links,
        )
        truncated = len(members) > self._max_members or bool(cut)
        score = props.get("ring_score")
        return RingView(
            ring_id=str(props["id"]),
            size=int(props["size"]),
            ring_score=None if score is None else float(score),
            features={
                k: v
                for k, v in sorted(props.items())
                if k not in _RING_NON_FEATURES and v is not None
            },
            members=ordered_members(member_from(m) for m in members[: self._max_members]),
            links=links,
            truncated=truncated,
            model_version=props.get("model_version"),
            cut_kinds=cut,
        )

    def neighbours(self, user_id: str, limit: int = MAX_NEIGHBOURS) -> Neighbourhood:
        limit = max(0, int(limit))
        me = self._read(cypher.USERS, ids=[user_id])
        if not me:
            raise NotFound("no user with this id in the graph")
        found = [
            link_from(x)
            for query in (cypher.LINKS_FROM, cypher.LINKS_TO)
            for x in self._read(query, user_id=user_id, limit=limit + 1)
        ]
        links = ordered_links(found)
        shown = links[:limit]
        others = sorted({x.user_b if x.user_a == user_id else x.user_a for x in shown})
        rows = self._read(cypher.USERS, ids=others) if others else []
        return Neighbourhood(
            user=member_from(me[0]),
            neighbours=ordered_members(member_from(r) for r in rows),
            links=shown,
            truncated=len(links) > len(shown),
        )

    def holdings(self, user_ids: Sequence[str]) -> tuple[Holding, ...]:
        ids = sorted(set(user_ids))[:MAX_RING_MEMBERS]
        found: list[Holding] = []
        for spec in self._registry.kinds:
            rows = self._read(cypher.holdings_of(spec), ids=ids)
            if not rows:
                continue
            values = sorted({str(r["value"]) for r in rows})
            counts = {
                str(r["value"]): int(r["holders"])
                for r in self._read(cypher.holders_of(spec), values=values)
            }
            found += [
                Holding(
                    str(r["user_id"]), spec.name, str(r["value"]), counts.get(str(r["value"]), 0)
                )
                for r in rows
            ]
        return ordered_holdings(found)

    def explain_link(
        self, user_a: str, user_b: str, max_hops: int = MAX_EXPLAIN_HOPS
    ) -> LinkExplanation:
        hops = clamp_hops(max_hops)
        found = {r["user_id"] for r in self._read(cypher.USERS_EXIST, ids=[user_a, user_b])}
        if user_a not in found or user_b not in found:
            raise NotFound("no user with this id in the graph")
        if user_a == user_b:
            return LinkExplanation(user_a, user_b, (user_a,))
        rows = self._read(cypher.SHORTEST_PATH[hops], a=user_a, b=user_b)
        if not rows:
            return LinkExplanation(user_a, user_b, ())
        path = tuple(str(x) for x in rows[0]["path"])
        pairs = [[x, y] for x, y in itertools.pairwise(path)]
        pairs += [[y, x] for x, y in pairs]
        evidence = [link_from(r) for r in self._read(cypher.HOP_EVIDENCE, pairs=pairs)]
        return LinkExplanation(user_a, user_b, path, hop_evidence(path, evidence))

    def ping(self) -> bool:
        """One auto-commit `RETURN 1` (no retry back-off, so readiness answers fast)."""
        try:
            with (
                wrap_errors(cypher.PING),
                self._driver.session(database=self._database) as session,
            ):
                session.run(cypher.PING.text).consume()
            return True
        except GraphStoreError as exc:
            log.warning("graph store ping failed: %s", exc)
            return False

    def close(self) -> None:
        if self._owns_driver:
            self._driver.close()
