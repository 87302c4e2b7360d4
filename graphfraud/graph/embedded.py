"""`EmbeddedGraphStore`: the GraphStore answered straight from a run directory (no server).

Indexes are built lazily on first read, from the same graph-shaped tables the Neo4j store
publishes (`graph.tables`): sorted polars frames sliced with `search_sorted` (no per-row Python
objects, so 1M users stay cheap) and a CSR user-user adjacency for `explain_link`'s bounded BFS.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphfraud.errors import GraphFraudError, NotFound
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
from graphfraud.graph.tables import LINK_FIELDS, RING_CORE_COLUMNS, GraphTables, load_tables
from graphfraud.graph.views import (
    clamp_hops,
    holding_from,
    hop_evidence,
    link_from,
    member_from,
    ordered_holdings,
    ordered_links,
    ordered_members,
    ring_event_from,
    ring_history,
)


def _slice(frame: pl.DataFrame, column: str, value: str) -> pl.DataFrame:
    """Rows of `frame` (sorted by `column`) whose `column` equals `value`."""
    series = frame[column]
    lo = int(series.search_sorted(value, side="left"))
    hi = int(series.search_sorted(value, side="right"))
    return frame.slice(lo, hi - lo)


@dataclass(frozen=True)
class _Index:
    tables: GraphTables
    users: pl.DataFrame  # sorted by user_id; row number = node index of the adjacency
    members: pl.DataFrame  # sorted by ring_id, then riskiest first
    rings: pl.DataFrame  # sorted by ring_id
    ring_links: pl.DataFrame  # links inside one ring, sorted by ring_id, then strongest first
    links: pl.DataFrame  # sorted by user_a, user_b, kind
    events_by_ring: pl.DataFrame  # ring events sorted by ring_id
    events_by_other: pl.DataFrame  # ring events naming another ring, sorted by other_ring_id
    links_by_b: pl.DataFrame  # the same, sorted by user_b
    holds: pl.DataFrame  # user_id, kind, value, holders; sorted by user_id
    offsets: np.ndarray[
        Any, np.dtype[np.int64]
    ]  # CSR: neighbours of i are dst[offsets[i]:offsets[i+1]]
    dst: np.ndarray[Any, np.dtype[np.int64]]

    @classmethod
    def build(cls, tables: GraphTables) -> _Index:
        users = tables.users  # already sorted by user_id, ids unique
        members = (
            tables.members.select("user_id", "ring_id")
            .join(users, on="user_id", how="left", suffix="_user")
            .with_columns(_score_key=pl.col("score").fill_null(-1.0))
            .sort(["ring_id", "_score_key", "user_id"], descending=[False, True, False])
        )
        ring_of = tables.members.select("user_id", "ring_id")
        ring_links = (
            tables.links.join(
                ring_of.rename({"user_id": "user_a", "ring_id": "ring_a"}), on="user_a"
            )
            .join(ring_of.rename({"user_id": "user_b", "ring_id": "ring_b"}), on="user_b")
            .filter(pl.col("ring_a") == pl.col("ring_b"))
            .sort(
                ["ring_a", "weight", "user_a", "user_b", "kind"],
                descending=[False, True, False, False, False],
            )
        )
        held = [
            frame.select("user_id", pl.lit(kind).alias("kind"), "value")
            for kind, frame in tables.holds.items()
        ]
        holds = (
            pl.concat(held)
            if held
            else pl.DataFrame(schema={"user_id": pl.String, "kind": pl.String, "value": pl.String})
        )
        holds = holds.with_columns(holders=pl.len().over("kind", "value")).sort("user_id")
        index = users.select("user_id").with_row_index("i")
        pairs = (
            tables.links.select("user_a", "user_b")
            .join(index.rename({"user_id": "user_a", "i": "a"}), on="user_a")
            .join(index.rename({"user_id": "user_b", "i": "b"}), on="user_b")
        )
        a = pairs["a"].to_numpy().astype(np.int64)
        b = pairs["b"].to_numpy().astype(np.int64)
        n = users.height
        src = np.concatenate([a, b])
        dst = np.concatenate([b, a])
        code = np.unique(src * max(n, 1) + dst)  # one edge per pair, whatever the kinds
        src, dst = code // max(n, 1), code % max(n, 1)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=offsets[1:])
        return cls(
            tables=tables,
            users=users,
            members=members,
            rings=tables.rings,
            ring_links=ring_links,
            links=tables.links,
            events_by_ring=tables.ring_events.sort("ring_id", "id"),
            events_by_other=tables.ring_events.drop_nulls("other_ring_id").sort(
                "other_ring_id", "id"
            ),
            links_by_b=tables.links.sort("user_b", "user_a", "kind"),
            holds=holds,
            offsets=offsets,
            dst=dst.astype(np.int64),
        )

    def user_row(self, user_id: str) -> int | None:
        i = int(self.users["user_id"].search_sorted(user_id, side="left"))
        if i < self.users.height and self.users["user_id"][i] == user_id:
            return i
        return None

    def shortest_path(self, a: int, b: int, hops: int) -> list[int] | None:
        """Layered BFS from `a`, at most `hops` layers; the smallest-index parent wins, so the
        answer is deterministic."""
        parent = np.full(self.users.height, -1, dtype=np.int64)
        parent[a] = a
        frontier = np.array([a], dtype=np.int64)
        for _ in range(hops):
            starts = self.offsets[frontier]
            counts = self.offsets[frontier + 1] - starts
            total = int(counts.sum())
            if total == 0:
                return None
            before = np.repeat(np.cumsum(counts) - counts, counts)
            idx = np.repeat(starts, counts) + (np.arange(total) - before)
            nbr = self.dst[idx]
            src = np.repeat(frontier, counts)
            fresh = parent[nbr] == -1
            nbr, src = nbr[fresh], src[fresh]
            if nbr.size == 0:
                return None
            frontier, first = np.unique(nbr, return_index=True)
            parent[frontier] = src[first]
            if parent[b] != -1:
                path = [b]
                while path[-1] != a:
                    path.append(int(parent[path[-1]]))
                return path[::-1]
        return None


class EmbeddedGraphStore:
    """GraphStore over one run directory. `publish(run_dir)` just points it at another run."""

    def __init__(
        self,
        run_dir: Path | str,
        *,
        max_members: int = MAX_RING_MEMBERS,
        max_links: int = MAX_RING_LINKS,
    ) -> None:
        self._run_dir = Path(run_dir)
        self._max_members = max_members
        self._max_links = max_links
        self._index: _Index | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EmbeddedGraphStore({str(self._run_dir)!r})"

    @property
    def run_dir(self) -> Path:
        return self._run_dir

    def _ix(self) -> _Index:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._index = _Index.build(load_tables(self._run_dir))
                index = self._index
        return index

    def publish(
        self, run_dir: str | Path, *, progress: bool = False, full: bool = False
    ) -> PublishReport:
        """Validate `run_dir`, build its indexes and answer from it from now on (no copy: there
        is nothing to send, so every publish is `full`)."""
        started = time.perf_counter()
        index = _Index.build(load_tables(run_dir))
        with self._lock:
            self._run_dir, self._index = Path(run_dir), index
        tables = index.tables
        return PublishReport(
            nodes=tables.node_count,
            relationships=tables.relationship_count,
            rows=tables.node_count + tables.relationship_count,
            seconds=time.perf_counter() - started,
            run_id=tables.run_id,
            mode="full",
            reason="the embedded store answers from the run directory itself",
            upserted_nodes=tables.node_count,
            upserted_relationships=tables.relationship_count,
        )

    def ring_of(self, user_id: str) -> RingView | None:
        ix = self._ix()
        row = ix.user_row(user_id)
        if row is None:
            raise NotFound("no user with this id in the graph")
        ring_id = ix.users["ring_id"][row]
        return None if ring_id is None else self.ring(ring_id)

    def ring(self, ring_id: str) -> RingView:
        ix = self._ix()
        rows = _slice(ix.rings, "ring_id", ring_id)
        if rows.height == 0:
            raise NotFound("no ring with this id in the graph")
        ring = rows.row(0, named=True)
        members = _slice(ix.members, "ring_id", ring_id)
        links = _slice(ix.ring_links, "ring_a", ring_id).with_columns(
            _rank=pl.int_range(pl.len()).over("kind")  # already strongest first
        )
        cut = links.filter(pl.col("_rank") == self._max_links)["kind"].unique().sort()
        score = ring.get("ring_score")
        return RingView(
            ring_id=str(ring["ring_id"]),
            size=int(ring["size"]),
            ring_score=None if score is None else float(score),
            features={
                k: v
                for k, v in sorted(ring.items())
                if k not in RING_CORE_COLUMNS and v is not None
            },
            members=ordered_members(
                member_from(m) for m in members.head(self._max_members).iter_rows(named=True)
            ),
            links=ordered_links(
                link_from(x)
                for x in links.filter(pl.col("_rank") < self._max_links)
                .select(LINK_FIELDS)
                .iter_rows(named=True)
            ),
            truncated=members.height > self._max_members or cut.len() > 0,
            model_version=ix.tables.model_version,
            cut_kinds=tuple(cut.to_list()),
        )

    def ring_history(self, ring_id: str) -> RingHistory:
        ix = self._ix()
        rows = pl.concat(
            [
                _slice(ix.events_by_ring, "ring_id", ring_id),
                _slice(ix.events_by_other, "other_ring_id", ring_id),
            ]
        )
        live = _slice(ix.rings, "ring_id", ring_id).height > 0
        if rows.is_empty() and not live:
            raise NotFound("no ring with this id in the graph, live or retired")
        return ring_history(ring_id, live, (ring_event_from(r) for r in rows.iter_rows(named=True)))

    def neighbours(self, user_id: str, limit: int = MAX_NEIGHBOURS) -> Neighbourhood:
        ix = self._ix()
        row = ix.user_row(user_id)
        if row is None:
            raise NotFound("no user with this id in the graph")
        touching = pl.concat(
            [_slice(ix.links, "user_a", user_id), _slice(ix.links_by_b, "user_b", user_id)]
        )
        links = ordered_links(
            link_from(x) for x in touching.select(LINK_FIELDS).iter_rows(named=True)
        )
        shown = links[: max(0, limit)]
        others = {x.user_b if x.user_a == user_id else x.user_a for x in shown}
        rows = ix.users.filter(pl.col("user_id").is_in(sorted(others)))
        return Neighbourhood(
            user=member_from(ix.users.row(row, named=True)),
            neighbours=ordered_members(member_from(r) for r in rows.iter_rows(named=True)),
            links=shown,
            truncated=len(links) > len(shown),
        )

    def holdings(self, user_ids: Sequence[str]) -> tuple[Holding, ...]:
        ids = sorted(set(user_ids))[:MAX_RING_MEMBERS]
        rows = self._ix().holds.filter(pl.col("user_id").is_in(ids))
        return ordered_holdings(holding_from(r) for r in rows.iter_rows(named=True))

    def explain_link(
        self, user_a: str, user_b: str, max_hops: int = MAX_EXPLAIN_HOPS
    ) -> LinkExplanation:
        ix = self._ix()
        hops = clamp_hops(max_hops)
        a, b = ix.user_row(user_a), ix.user_row(user_b)
        if a is None or b is None:
            raise NotFound("no user with this id in the graph")
        if a == b:
            return LinkExplanation(user_a, user_b, (user_a,))
        found = ix.shortest_path(a, b, hops)
        if found is None:
            return LinkExplanation(user_a, user_b, ())
        ids = ix.users["user_id"]
        path = tuple(str(ids[i]) for i in found)
        evidence = []
        for x, y in itertools.pairwise(path):
            lo, hi = (x, y) if x < y else (y, x)
            for first, second in ((lo, hi), (hi, lo)):
                rows = _slice(ix.links, "user_a", first).filter(pl.col("user_b") == second)
                evidence += [link_from(r) for r in rows.iter_rows(named=True)]
        return LinkExplanation(user_a, user_b, path, hop_evidence(path, evidence))

    def ping(self) -> bool:
        try:
            self._ix()
        except GraphFraudError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            self._index = None
