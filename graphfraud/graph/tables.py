"""The identity graph of one run directory, as graph-shaped polars frames.

Both stores read a run through this module, so the embedded store answers from exactly the
nodes and relationships the Neo4j store publishes. Every frame is keyed by business ids; rows
that would silently vanish in a Cypher `MATCH` (a link to an unknown user, a member of an unknown
ring) are refused here with an ArtifactError instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from graphfraud.errors import ArtifactError
from graphfraud.graph.base import MAX_RING_LINKS
from graphfraud.identifiers import IdentifierRegistry, Source, registry_from_manifest
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    DEVICES_FILE,
    LINKS_FILE,
    MEMBERS_FILE,
    RING_EVENTS_SCHEMA,
    RING_HISTORY_FILE,
    RINGS_FILE,
    SCORES_FILE,
    USERS_FILE,
    conform_frame,
    polars_schema,
)
from graphfraud.scoring.scores import scored_rings

# Ring columns that are node keys / top-level fields, not "features that explain it".
RING_CORE_COLUMNS = ("ring_id", "size", "ring_score")
MEMBER_FIELDS = ("user_id", "score", "email", "phone", "label", "created_at")
LINK_FIELDS = (
    "user_a",
    "user_b",
    "kind",
    "value_a",
    "value_b",
    "similarity",
    "support",
    "weight",
    "evidence",
)
_ISO_UTC = "%Y-%m-%dT%H:%M:%S%.6f+00:00"
RING_EVENT_FIELDS = (
    "id",
    "ring_id",
    "event",
    "other_ring_id",
    "size_before",
    "size_after",
    "shared",
    "event_run_id",
    "at",
)


@dataclass(frozen=True)
class GraphTables:
    """One run's graph. Node frames have unique keys; relationship frames are distinct."""

    run_id: str
    model_version: str | None
    registry: IdentifierRegistry  # the run's identifier kinds (node labels, relationship types)
    users: pl.DataFrame  # user_id, score, ring_id, ring_score, model_version, label, …
    identifiers: dict[str, pl.DataFrame]  # per kind name: value (unique)
    holds: dict[str, pl.DataFrame]  # per kind name: user_id, value (distinct pairs)
    rings: pl.DataFrame  # ring_id, size, ring_score, <features…>
    members: pl.DataFrame  # user_id, ring_id, ring_score
    links: pl.DataFrame  # LINK_FIELDS + ring_id, one row per (pair, kind), user_a < user_b
    # RING_EVENT_FIELDS: every ring event so far (ring_history.parquet), retired rings' too;
    # `id` is "<event_run_id>/<ring_id>" (a ring id has at most one event a run)
    ring_events: pl.DataFrame
    ring_event_of: pl.DataFrame  # ring_id, event_id: the events of rings still live

    @property
    def node_count(self) -> int:
        return (
            self.users.height
            + sum(f.height for f in self.identifiers.values())
            + self.rings.height
            + self.ring_events.height
        )

    @property
    def relationship_count(self) -> int:
        return (
            sum(f.height for f in self.holds.values())
            + self.members.height
            + self.links.height
            + self.ring_event_of.height
        )

    @property
    def ring_features(self) -> tuple[str, ...]:
        return tuple(c for c in self.rings.columns if c not in RING_CORE_COLUMNS)


def _require(frame: pl.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing)}")


def _read(run: RunDir, name: str, columns: tuple[str, ...]) -> pl.DataFrame:
    frame = run.read(name)
    _require(frame, columns, run.file(name))
    return frame


def _floats_clean(frame: pl.DataFrame) -> pl.DataFrame:
    """NaN becomes null (a graph property is absent rather than NaN); float32 widens to float64
    so both stores hand out the very same Python float."""
    floats = [n for n, t in frame.schema.items() if t in (pl.Float32, pl.Float64)]
    return frame.with_columns(pl.col(floats).cast(pl.Float64).fill_nan(None)) if floats else frame


def _unknown(ids: pl.Series, known: pl.Series) -> int:
    return int((~ids.is_in(known.implode())).sum())


def _with_ring(links: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Tag the strongest MAX_RING_LINKS + 1 links of each kind inside each ring with the ring's id.

    A ring view on Neo4j then reads only its members' tagged edges (at most one more per kind than
    it shows, so truncation is still detected) instead of sorting every edge of every member. The
    order is the read models' (`views.ordered_links`): strongest first, then ids and kind.
    """
    m = members.select("user_id", "ring_id")
    tagged = (
        links.join(m.rename({"user_id": "user_a", "ring_id": "_ra"}), on="user_a", how="left")
        .join(m.rename({"user_id": "user_b", "ring_id": "_rb"}), on="user_b", how="left")
        .with_columns(pl.when(pl.col("_ra") == pl.col("_rb")).then(pl.col("_ra")).alias("_ring"))
        .sort(
            ["_ring", "weight", "user_a", "user_b", "kind"],
            descending=[False, True, False, False, False],
        )
        .with_columns(pl.int_range(pl.len()).over("_ring", "kind").alias("_rank"))
    )
    keep = pl.col("_rank") <= MAX_RING_LINKS
    return tagged.with_columns(pl.when(keep).then(pl.col("_ring")).alias("ring_id")).drop(
        "_ra", "_rb", "_ring", "_rank"
    )


def _holds(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Distinct (user_id, value) pairs of one kind; a run without that column holds none."""
    if column not in frame.columns:
        return pl.DataFrame(schema={"user_id": pl.String, "value": pl.String})
    held = frame.select("user_id", value=pl.col(column).cast(pl.String))
    return held.drop_nulls().filter(pl.col("value") != "").unique().sort("user_id", "value")


def _ring_events(run: RunDir, rings: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(ring_events, ring_event_of) from ring_history.parquet; none for a run from before
    lineage."""
    history = (
        conform_frame(run.read(RING_HISTORY_FILE), RING_EVENTS_SCHEMA)
        if run.exists(RING_HISTORY_FILE)
        else pl.DataFrame(schema=polars_schema(RING_EVENTS_SCHEMA))
    )
    if history.select("run_id", "ring_id").is_duplicated().any():
        raise ArtifactError(f"{run.file(RING_HISTORY_FILE)} repeats a (run_id, ring_id) event")
    events = (
        history.with_columns(
            id=pl.concat_str("run_id", pl.lit("/"), "ring_id"),
            event_run_id=pl.col("run_id"),
            at=pl.col("at").dt.convert_time_zone("UTC").dt.to_string(_ISO_UTC),
            size_before=pl.col("size_before").cast(pl.Int64),
            size_after=pl.col("size_after").cast(pl.Int64),
            shared=pl.col("shared").cast(pl.Int64),
        )
        .select(RING_EVENT_FIELDS)
        .sort("id")
    )
    live = events.join(rings.select("ring_id"), on="ring_id", how="semi")
    return events, live.select("ring_id", event_id=pl.col("id")).sort("ring_id", "event_id")


def load_tables(run_dir: Path | str) -> GraphTables:
    """Read and cross-check one run directory (raises ArtifactError naming the file)."""
    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise ArtifactError(f"{run.path} is not a directory", hint="pass a finished run directory")
    manifest = run.manifest()
    run.check_finished(manifest)
    run_id = manifest.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ArtifactError(f"{run.file('manifest.json')} has no run_id")
    model_version = manifest.get("model_version")
    registry = registry_from_manifest(manifest)

    users = _read(run, USERS_FILE, ("user_id", "email", "phone", "created_at", "label"))
    scores = _read(run, SCORES_FILE, ("user_id", "score", "ring_id", "ring_score", "model_version"))
    _require(run.read(RINGS_FILE), ("ring_id", "size"), run.file(RINGS_FILE))
    rings = _floats_clean(scored_rings(run))
    members = _read(run, MEMBERS_FILE, ("user_id", "ring_id"))
    links = _floats_clean(_read(run, LINKS_FILE, LINK_FIELDS)).select(LINK_FIELDS)
    devices = (
        _read(run, DEVICES_FILE, ("user_id", "device_id", "ip"))
        if run.exists(DEVICES_FILE)
        else pl.DataFrame(schema={"user_id": pl.String, "device_id": pl.String, "ip": pl.String})
    )

    if users["user_id"].is_duplicated().any():
        raise ArtifactError(f"{run.file(USERS_FILE)} repeats user ids")
    if rings["ring_id"].is_duplicated().any():
        raise ArtifactError(f"{run.file(RINGS_FILE)} repeats ring ids")
    ids = users["user_id"]
    for name, series in (
        (LINKS_FILE, pl.concat([links["user_a"], links["user_b"]])),
        (MEMBERS_FILE, members["user_id"]),
        (SCORES_FILE, scores["user_id"]),
        (DEVICES_FILE, devices["user_id"]),
    ):
        bad = _unknown(series, ids)
        if bad:
            raise ArtifactError(
                f"{run.file(name)} names {bad} user id(s) missing from {USERS_FILE}"
            )
    bad = _unknown(members["ring_id"], rings["ring_id"])
    if bad:
        raise ArtifactError(
            f"{run.file(MEMBERS_FILE)} names {bad} ring id(s) missing from {RINGS_FILE}"
        )
    if links.select("user_a", "user_b", "kind").is_duplicated().any():
        raise ArtifactError(f"{run.file(LINKS_FILE)} repeats a (user_a, user_b, kind) link")
    if members["user_id"].is_duplicated().any():
        raise ArtifactError(f"{run.file(MEMBERS_FILE)} puts a user in more than one ring")

    scores = _floats_clean(
        scores.select(
            "user_id",
            "score",
            "ring_score",
            "model_version",
            (
                pl.col("reasons")
                if "reasons" in scores.columns
                else pl.lit(None, pl.List(pl.String))
            ),
        )
    )
    user_nodes = (
        users.select(
            "user_id",
            "email",
            "phone",
            pl.col("label").cast(pl.Int64),
            pl.col("created_at").dt.convert_time_zone("UTC").dt.to_string(_ISO_UTC)
            if users.schema["created_at"] != pl.String
            else pl.col("created_at"),
        )
        .join(scores, on="user_id", how="left")
        .join(members.select("user_id", "ring_id"), on="user_id", how="left")
        .with_columns(pl.col("model_version").fill_null(pl.lit(model_version, pl.String)))
        .select(
            "user_id",
            "score",
            "ring_id",
            "ring_score",
            "model_version",
            "label",
            "created_at",
            "email",
            "phone",
            "reasons",
        )
        .sort("user_id")
    )
    member_rows = (
        members.select("user_id", "ring_id")
        .join(rings.select("ring_id", "ring_score"), on="ring_id", how="left")
        .sort("ring_id", "user_id")
    )
    holds = {
        spec.name: _holds(users if spec.source == Source.USERS else devices, spec.value_column)
        for spec in registry.kinds
    }
    identifiers = {
        kind: frame.select("value").unique().sort("value") for kind, frame in holds.items()
    }
    ring_events, ring_event_of = _ring_events(run, rings)
    return GraphTables(
        run_id=run_id,
        model_version=model_version if isinstance(model_version, str) else None,
        registry=registry,
        users=user_nodes,
        identifiers=identifiers,
        holds=holds,
        rings=rings.sort("ring_id"),
        members=member_rows,
        links=_with_ring(links, members).sort("user_a", "user_b", "kind"),
        ring_events=ring_events,
        ring_event_of=ring_event_of,
    )


def ring_features(
    row: dict[str, Any], feature_names: tuple[str, ...]
) -> dict[str, float | int | str | None]:
    """The explanatory features of one ring row (everything but id, size and score)."""
    return {name: row.get(name) for name in feature_names}
