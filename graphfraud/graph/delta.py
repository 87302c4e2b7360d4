"""What a publish sends: one run's graph as phases of rows, and the delta between two runs' graphs.

A phase is one kind of element (users, rings, the identifiers of one kind, one kind of
relationship) with its upsert and delete statements and the columns that key it. Two runs' phases
are compared by a 64-bit hash of each whole row (keys and properties, without the `run_id`
tag): a row whose (key, hash) the base lacks is upserted, a key the new run lacks is deleted (a
changed row is missed only if its new hash collides with its old one, about 1 in 1.8e19). Node
deletes are `DETACH DELETE`, so a relationship of a deleted node is not sent separately.

The digest of a run's graph (sha256 over every phase's schema and sorted row hashes) is stored on
the graph's meta node when a publish completes; a later delta trusts a base run directory only
when it reproduces that digest, so a run directory changed after its publish (a stage rerun in
place, another graphfraud version building the tables differently) means a full publish, never a
wrong delta. Row hashes are polars' and may change with its version: that too only costs a full
publish.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from graphfraud.errors import ArtifactError
from graphfraud.graph import cypher
from graphfraud.graph.cypher import Query
from graphfraud.graph.tables import LINK_FIELDS, GraphTables, load_tables
from graphfraud.rundir import RunDir
from graphfraud.schema import MANIFEST_FILE

_SEED = 0x6772_6170  # fixed seeds: equal rows hash equal in both runs' frames
# At most this many sibling run directories are opened looking for the graph's run.
MAX_SIBLINGS = 400


@dataclass(frozen=True)
class Phase:
    """One kind of graph element as a publish writes it.

    `label` is the node label (also its ID space in an import, `graph.bulk`) or the
    relationship type; `rows` are what the upsert sends (without `run_id`, added at send time);
    `keys` are the columns the delete sends (a key missing from `rows` is read from its `props`
    struct); `ends` maps a relationship's endpoint columns (start, then end) to the node phase
    that holds them."""

    name: str
    node: bool
    label: str
    upsert: Query
    delete: Query
    rows: pl.DataFrame
    keys: tuple[str, ...]
    ends: tuple[tuple[str, str], ...] = ()

    def key_exprs(self) -> list[pl.Expr]:
        cols = set(self.rows.columns)
        return [
            pl.col(k) if k in cols else pl.col("props").struct.field(k).alias(k) for k in self.keys
        ]

    def empty_keys(self) -> pl.DataFrame:
        return self.rows.head(0).select(self.key_exprs())


def _node_rows(frame: pl.DataFrame, key: str, rename: dict[str, str]) -> pl.DataFrame:
    """{key, props} rows: props is the whole property map (`SET n = props` replaces the node)."""
    props = [pl.col(c).alias(rename.get(c, c)) for c in frame.columns]
    return frame.select(key=pl.col(key), props=pl.struct(props))


def graph_phases(tables: GraphTables) -> tuple[Phase, ...]:
    """The ordered phases of one run's graph: every node kind first, then relationships."""
    rings = tables.rings.with_columns(model_version=pl.lit(tables.model_version, pl.String))
    users = tables.users.with_columns(
        pl.when(pl.col("reasons").list.len() > 0).then(pl.col("reasons")).otherwise(None)
    )
    phases = [
        Phase(
            "users",
            True,
            "User",
            cypher.UPSERT_USERS,
            cypher.DELETE_USERS,
            _node_rows(users, "user_id", {"user_id": "id"}),
            ("key",),
        ),
        Phase(
            "rings",
            True,
            "Ring",
            cypher.UPSERT_RINGS,
            cypher.DELETE_RINGS,
            _node_rows(rings, "ring_id", {"ring_id": "id"}),
            ("key",),
        ),
        Phase(
            "ring_events",
            True,
            "RingEvent",
            cypher.UPSERT_RING_EVENTS,
            cypher.DELETE_RING_EVENTS,
            _node_rows(tables.ring_events, "id", {}),
            ("key",),
        ),
    ]
    kinds = tables.registry.kinds
    phases += [
        Phase(
            f"{s.name}_identifiers",
            True,
            s.graph_label,
            cypher.identifier_upsert(s),
            cypher.identifier_delete(s),
            tables.identifiers[s.name],
            ("value",),
        )
        for s in kinds
    ]
    phases += [
        Phase(
            f"{s.name}_holds",
            False,
            s.holds_type,
            cypher.identifier_link(s),
            cypher.identifier_unlink(s),
            tables.holds[s.name],
            ("user_id", "value"),
            (("user_id", "users"), ("value", f"{s.name}_identifiers")),
        )
        for s in kinds
    ]
    link_props = [c for c in LINK_FIELDS if c not in ("user_a", "user_b")] + ["ring_id"]
    phases += [
        Phase(
            "memberships",
            False,
            "MEMBER_OF",
            cypher.UPSERT_MEMBERSHIPS,
            cypher.DELETE_MEMBERSHIPS,
            # no ring_score: it is the ring's (on the Ring node), and a ring whose score moved
            # would rewrite every member's edge
            tables.members.select("user_id", "ring_id"),
            ("user_id", "ring_id"),
            (("user_id", "users"), ("ring_id", "rings")),
        ),
        Phase(
            "ring_event_of",
            False,
            "HAD_EVENT",
            cypher.UPSERT_RING_EVENT_OF,
            cypher.DELETE_RING_EVENT_OF,
            tables.ring_event_of,
            ("ring_id", "event_id"),
            (("ring_id", "rings"), ("event_id", "ring_events")),
        ),
        Phase(
            "links",
            False,
            "LINKED",
            cypher.UPSERT_LINKS,
            cypher.DELETE_LINKS,
            tables.links.select("user_a", "user_b", props=pl.struct(link_props)),
            ("user_a", "user_b", "kind"),
            (("user_a", "users"), ("user_b", "users")),
        ),
    ]
    return tuple(phases)


def with_run_id(rows: pl.DataFrame, run_id: str) -> pl.DataFrame:
    """The rows as sent: a `props` struct also carries the run's tag (identifier statements
    take it as `$run_id`)."""
    if "props" not in rows.columns:
        return rows
    return rows.with_columns(pl.col("props").struct.with_fields(run_id=pl.lit(run_id)))


def row_hashes(rows: pl.DataFrame) -> pl.Series:
    return rows.hash_rows(_SEED).alias("_h")


def graph_digest(phases: Iterable[Phase], hashes: Mapping[str, pl.Series]) -> str:
    """sha256 over every phase's name, schema and sorted row hashes (order-free)."""
    digest = hashlib.sha256()
    for phase in sorted(phases, key=lambda p: p.name):
        digest.update(f"{phase.name}|{phase.rows.schema}|{phase.rows.height}|".encode())
        digest.update(np.sort(hashes[phase.name].to_numpy()).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class PhaseDelta:
    """The change of one phase: rows to upsert, keys that left (`deleted`, for the counts) and
    the subset of those a delete statement must send (`to_delete`: not detached by a node
    delete)."""

    phase: Phase
    upserts: pl.DataFrame
    deleted: pl.DataFrame
    to_delete: pl.DataFrame


@dataclass(frozen=True)
class GraphDelta:
    phases: tuple[PhaseDelta, ...]

    def count(self, *, node: bool, upserted: bool) -> int:
        return sum(
            (d.upserts if upserted else d.deleted).height
            for d in self.phases
            if d.phase.node is node
        )

    @property
    def rows(self) -> int:
        return sum(d.upserts.height + d.to_delete.height for d in self.phases)


def _diff(
    old: Phase | None,
    new: Phase | None,
    old_hashes: Mapping[str, pl.Series],
    new_hashes: Mapping[str, pl.Series],
) -> PhaseDelta:
    if new is None:
        assert old is not None
        keys = old.rows.select(old.key_exprs())
        return PhaseDelta(old, old.rows.head(0), keys, keys)
    if old is None:
        return PhaseDelta(new, new.rows, new.empty_keys(), new.empty_keys())
    key_names = list(new.keys)
    nk = new.rows.select(new.key_exprs()).with_columns(new_hashes[new.name]).with_row_index("_i")
    ok = old.rows.select(old.key_exprs()).with_columns(old_hashes[old.name])
    changed = nk.join(ok, on=[*key_names, "_h"], how="anti")["_i"]
    deleted = ok.select(key_names).join(nk.select(key_names), on=key_names, how="anti")
    return PhaseDelta(new, new.rows[changed], deleted, deleted)


def _detached(delta: PhaseDelta, removed: Mapping[str, pl.DataFrame]) -> PhaseDelta:
    """Drop relationship deletes whose endpoint node is deleted anyway (DETACH DELETE)."""
    rows = delta.to_delete
    for column, node_phase in delta.phase.ends:
        gone = removed.get(node_phase)
        if gone is not None and gone.height and rows.height:
            rows = rows.filter(~pl.col(column).is_in(gone.to_series().implode()))
    return PhaseDelta(delta.phase, delta.upserts, delta.deleted, rows)


def diff_phases(
    base: tuple[Phase, ...],
    new: tuple[Phase, ...],
    base_hashes: Mapping[str, pl.Series],
    new_hashes: Mapping[str, pl.Series],
) -> GraphDelta:
    """Per phase (matched by name; a kind only one run has is all upserts or all deletes)."""
    old_by = {p.name: p for p in base}
    new_by = {p.name: p for p in new}
    names = [p.name for p in new] + [p.name for p in base if p.name not in new_by]
    deltas = [_diff(old_by.get(n), new_by.get(n), base_hashes, new_hashes) for n in names]
    removed = {d.phase.name: d.deleted for d in deltas if d.phase.node}
    return GraphDelta(tuple(d if d.phase.node else _detached(d, removed) for d in deltas))


# ---- which run does the graph hold, and where is its directory? ----------------------------------
@dataclass(frozen=True)
class Base:
    """The run a delta builds on (`run_id` None: publish in full), its phases and row hashes,
    and the one-line reason."""

    reason: str
    run_id: str | None = None
    run_dir: Path | None = None
    phases: tuple[Phase, ...] = ()
    hashes: Mapping[str, pl.Series] = field(default_factory=dict)


def _manifest_run_id(path: Path) -> str | None:
    try:
        manifest = RunDir(path).manifest()
    except ArtifactError:
        return None
    run_id = manifest.get("run_id")
    if manifest.get("status") != "complete" or not isinstance(run_id, str):
        return None
    return run_id


def _candidates(run_dir: Path, recorded: Any) -> list[Path]:
    """Where the graph's run may live: the new run's `previous`, the path recorded at publish,
    the new run directory itself (a republish), then its siblings (newest name first)."""
    from graphfraud.pipeline import previous_run

    found: list[Path] = []
    try:
        previous = previous_run(RunDir(run_dir))
    except ArtifactError:
        previous = None
    if previous is not None:
        found.append(previous.path)
    if isinstance(recorded, str) and recorded:
        found.append(Path(recorded))
    found.append(run_dir)
    parent = run_dir.resolve().parent
    if parent.is_dir():
        siblings = sorted(
            (p for p in parent.iterdir() if (p / MANIFEST_FILE).is_file()), reverse=True
        )
        found += siblings[:MAX_SIBLINGS]
    seen: set[Path] = set()
    unique = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def choose_base(meta: Mapping[str, Any] | None, run_dir: Path, run_id: str, full: bool) -> Base:
    """The base of a delta publish of `run_id`, or why it must be a full publish.

    The graph's meta node is the source of truth: its `run_id` (the run it holds) and `digest`.
    A publish that crashed is resumed as a delta only by publishing its own target again
    (replaying the whole delta is harmless); any other run then publishes in full."""
    if full:
        return Base("a full publish was asked for")
    if meta is None:
        return Base("the graph holds no published run")
    held, digest = meta.get("run_id"), meta.get("digest")
    target = meta.get("target_run_id")
    if meta.get("status") != "complete" and target != run_id:
        return Base(f"the graph holds an unfinished publish of run {target}")
    if not isinstance(held, str) or not held:
        return Base("the graph holds no completely published run")
    if not isinstance(digest, str) or not digest:
        return Base(f"the graph's run {held} was published without a digest")
    changed_dir: Path | None = None
    for path in _candidates(run_dir, meta.get("run_path")):
        if _manifest_run_id(path) != held:
            continue
        try:
            phases = graph_phases(load_tables(path))
        except ArtifactError:
            changed_dir = path
            continue
        hashes = {p.name: row_hashes(p.rows) for p in phases}
        if graph_digest(phases, hashes) == digest:
            return Base(f"delta from run {held}", held, path, phases, hashes)
        changed_dir = path
    if changed_dir is not None:
        return Base(f"run directory {changed_dir} no longer holds what was published as {held}")
    return Base(f"the directory of run {held}, which the graph holds, was not found")
