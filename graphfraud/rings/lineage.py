"""Stable ring ids across runs, and what happened to each ring (its lineage).

Tonight's rings are matched to the previous run's by shared members. The rule, in one line: **a
ring keeps an old ring's id when it holds most (more than half) of that old ring's members.**
Members are in one ring at a time, so an old ring has at most one such heir; when a new ring
holds most of several old rings (they merged), it keeps the id of the one it shares the most
members with, ties to the smaller id. Containment, not Jaccard: a ring of 4 that gained 20
members still holds all 4 and keeps its id.

Events (`schema.RingEvent`, one per ring id that changed; an unchanged ring has none):

| tonight | event | other_ring_id |
|---|---|---|
| kept its id, members changed | `grew` (not smaller) / `shrank` | |
| old ring, most of it in a ring that kept another id | `merged_into` | that ring |
| old ring, no ring holds most of it | `dissolved` | |
| new ring, MIN_PART+ members of an old ring | `split_from` | the old ring it shares most with |
| other new ring | `born` | the emerging ring it grew from (`grew_from`), if any |

A new ring gets a fresh id: the hash of its smallest member (`detect.ring_id_for`, so a first
night's ids are the provisional ones), salted until it is not among every id ever issued — kept
in `ring_ids.parquet` and carried forward run to run with `ring_history.parquet`, the events of
every run so far. A retired id is never issued again. Same inputs, same previous run: same ids.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime

import polars as pl
import pyarrow as pa

from graphfraud.errors import ArtifactError
from graphfraud.rings.detect import ring_id_for
from graphfraud.rings.features import Rings
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    MEMBERS_FILE,
    RING_EVENTS_SCHEMA,
    RING_HISTORY_FILE,
    RING_IDS_FILE,
    RING_IDS_SCHEMA,
    RingEvent,
    conform_frame,
    polars_schema,
)

MIN_PART = 2  # members a new ring must take from an old one to be split from it (a ring's least)
MAX_SALTS = 64  # fresh-id attempts per ring; more means the issued set is corrupt


@dataclass(frozen=True)
class RingLedger:
    """What a run hands the next about its rings."""

    run_id: str
    members: pl.DataFrame  # user_id, ring_id (that run's ring_members)
    issued: pl.DataFrame  # RING_IDS_SCHEMA: every id issued up to that run
    history: pl.DataFrame  # RING_EVENTS_SCHEMA: every event up to that run


@dataclass(frozen=True)
class Lineage:
    """The rings stage's rings with their final ids, and what a run writes about them."""

    rings: Rings
    events: pl.DataFrame  # RING_EVENTS_SCHEMA, this run's
    issued: pl.DataFrame  # RING_IDS_SCHEMA, carried forward
    history: pl.DataFrame  # RING_EVENTS_SCHEMA, carried forward (previous history + events)

    @property
    def stats(self) -> dict[str, int]:
        counts = dict(self.events.group_by("event").len().iter_rows())
        return {str(e): int(counts.get(str(e), 0)) for e in RingEvent}


def read_ledger(run: RunDir) -> RingLedger:
    """The ring ledger of a finished run. A run from before lineage (no ring_ids.parquet) counts
    its own rings as issued by it, with no history."""
    run_id = run.manifest().get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ArtifactError(f"{run.file('manifest.json')} has no run_id")
    members = run.read(MEMBERS_FILE).select("user_id", "ring_id")
    issued = (
        conform_frame(run.read(RING_IDS_FILE), RING_IDS_SCHEMA)
        if run.exists(RING_IDS_FILE)
        else _empty(RING_IDS_SCHEMA)
    )
    # Every live id is issued, whatever the file says (a hand-edited or pre-lineage run).
    unlisted = (
        members.select("ring_id")
        .unique()
        .join(issued, on="ring_id", how="anti")
        .with_columns(born_run_id=pl.lit(run_id), retired_run_id=pl.lit(None, pl.String))
    )
    history = (
        conform_frame(run.read(RING_HISTORY_FILE), RING_EVENTS_SCHEMA)
        if run.exists(RING_HISTORY_FILE)
        else _empty(RING_EVENTS_SCHEMA)
    )
    return RingLedger(
        run_id=run_id,
        members=members,
        issued=pl.concat([issued, conform_frame(unlisted, RING_IDS_SCHEMA)]),
        history=history,
    )


def _empty(schema: pa.Schema) -> pl.DataFrame:
    return pl.DataFrame(schema=polars_schema(schema))


def assign_ring_ids(
    found: Rings, previous: RingLedger | None, *, run_id: str, at: datetime
) -> Lineage:
    """Give `found` (provisional ids) its final ids against `previous` (None on a first night)
    and record the night's ring events; `run_id` and `at` (the run's start) stamp them."""
    prev = (
        previous.members
        if previous is not None
        else pl.DataFrame(schema={"user_id": pl.String, "ring_id": pl.String})
    )
    issued = previous.issued if previous is not None else _empty(RING_IDS_SCHEMA)
    match = _match(found.members, prev)
    fresh = _fresh_ids(match.anchors, issued["ring_id"])
    final = pl.concat([match.heirs.select("tmp", "ring_id"), fresh])
    events = conform_frame(
        pl.concat(
            [
                _kept_events(match.heirs),
                _retired_events(match, final),
                _arrived_events(match, fresh, found.rings),
            ],
            how="vertical_relaxed",
        )
        .with_columns(run_id=pl.lit(run_id), at=pl.lit(at).dt.convert_time_zone("UTC"))
        .sort("ring_id"),
        RING_EVENTS_SCHEMA,
    )
    to_final = pl.col("ring_id").replace_strict(final["tmp"], final["ring_id"])
    rings = Rings(
        members=found.members.with_columns(to_final).sort("user_id"),
        rings=found.rings.with_columns(to_final).sort("ring_id"),
    )
    retired = match.retired["prev"]
    carried = issued.with_columns(
        pl.when(pl.col("ring_id").is_in(retired.implode()) & pl.col("retired_run_id").is_null())
        .then(pl.lit(run_id))
        .otherwise(pl.col("retired_run_id"))
        .alias("retired_run_id")
    )
    born = fresh.select(
        "ring_id", born_run_id=pl.lit(run_id), retired_run_id=pl.lit(None, pl.String)
    )
    history = previous.history if previous is not None else _empty(RING_EVENTS_SCHEMA)
    return Lineage(
        rings=rings,
        events=events,
        issued=conform_frame(pl.concat([carried, born]).sort("ring_id"), RING_IDS_SCHEMA),
        history=pl.concat([history.filter(pl.col("run_id") != run_id), events]),
    )


@dataclass(frozen=True)
class _Match:
    """Tonight's rings (`tmp`, their provisional ids) against the previous run's (`prev`)."""

    overlap: pl.DataFrame  # tmp, prev, shared, size_before, size_after: pairs sharing members
    holds_most: pl.DataFrame  # the overlap rows holding most of `prev`
    heirs: pl.DataFrame  # tmp, ring_id (the old id it keeps), shared, size_before, size_after
    new: pl.DataFrame  # tmp, size_after: rings that keep no old id
    retired: pl.DataFrame  # prev, size_before: old rings no ring keeps the id of
    anchors: pl.DataFrame  # tmp, anchor: each new ring's smallest member


def _match(members: pl.DataFrame, previous: pl.DataFrame) -> _Match:
    cur = members.select("user_id", pl.col("ring_id").alias("tmp"))
    prev = previous.select("user_id", pl.col("ring_id").alias("prev"))
    after = cur.group_by("tmp").agg(pl.len().cast(pl.Int32).alias("size_after"))
    before = prev.group_by("prev").agg(pl.len().cast(pl.Int32).alias("size_before"))
    overlap = (
        cur.join(prev, on="user_id")
        .group_by("tmp", "prev")
        .agg(pl.len().cast(pl.Int32).alias("shared"))
        .join(before, on="prev")
        .join(after, on="tmp")
    )
    holds_most = overlap.filter(2 * pl.col("shared") > pl.col("size_before"))
    heirs = _best_match(holds_most).rename({"prev": "ring_id"})
    new = after.join(heirs, on="tmp", how="anti")
    return _Match(
        overlap=overlap,
        holds_most=holds_most,
        heirs=heirs,
        new=new,
        retired=before.join(heirs.select(prev="ring_id"), on="prev", how="anti"),
        anchors=cur.join(new.select("tmp"), on="tmp")
        .group_by("tmp")
        .agg(pl.col("user_id").min().alias("anchor")),
    )


def _kept_events(heirs: pl.DataFrame) -> pl.DataFrame:
    """grew / shrank for the rings that kept an id and changed."""
    changed = (pl.col("shared") != pl.col("size_before")) | (
        pl.col("shared") != pl.col("size_after")
    )
    return heirs.filter(changed).select(
        "ring_id",
        pl.when(pl.col("size_after") >= pl.col("size_before"))
        .then(pl.lit(RingEvent.GREW.value))
        .otherwise(pl.lit(RingEvent.SHRANK.value))
        .alias("event"),
        pl.lit(None, pl.String).alias("other_ring_id"),
        "size_before",
        "size_after",
        "shared",
    )


def _retired_events(match: _Match, final: pl.DataFrame) -> pl.DataFrame:
    """merged_into / dissolved for the old rings whose id no ring keeps."""
    went_into = match.holds_most.join(final, on="tmp").select(
        "prev", pl.col("ring_id").alias("into"), "shared"
    )
    return match.retired.join(went_into, on="prev", how="left").select(
        pl.col("prev").alias("ring_id"),
        pl.when(pl.col("into").is_not_null())
        .then(pl.lit(RingEvent.MERGED_INTO.value))
        .otherwise(pl.lit(RingEvent.DISSOLVED.value))
        .alias("event"),
        pl.col("into").alias("other_ring_id"),
        "size_before",
        pl.lit(0, pl.Int32).alias("size_after"),
        "shared",
    )


def _arrived_events(match: _Match, fresh: pl.DataFrame, rings: pl.DataFrame) -> pl.DataFrame:
    """split_from / born for the rings with a fresh id."""
    parents = _best_match(
        match.overlap.join(match.new.select("tmp"), on="tmp").filter(pl.col("shared") >= MIN_PART)
    )
    grew_from = (
        rings.select(pl.col("ring_id").alias("tmp"), "grew_from")
        if "grew_from" in rings.columns
        else pl.DataFrame(schema={"tmp": pl.String, "grew_from": pl.String})
    )
    return (
        match.new.join(fresh, on="tmp")
        .join(parents.select("tmp", "prev", "shared"), on="tmp", how="left")
        .join(grew_from, on="tmp", how="left")
        .select(
            "ring_id",
            pl.when(pl.col("prev").is_not_null())
            .then(pl.lit(RingEvent.SPLIT_FROM.value))
            .otherwise(pl.lit(RingEvent.BORN.value))
            .alias("event"),
            pl.coalesce("prev", "grew_from").alias("other_ring_id"),
            pl.lit(0, pl.Int32).alias("size_before"),
            "size_after",
            "shared",
        )
    )


def _best_match(overlap: pl.DataFrame) -> pl.DataFrame:
    """One row per new ring (`tmp`): the old ring it shares the most members with, ties to the
    smaller old id."""
    return overlap.sort(["tmp", "shared", "prev"], descending=[False, True, False]).unique(
        "tmp", keep="first", maintain_order=True
    )


def _fresh_ids(anchors: pl.DataFrame, issued: pl.Series) -> pl.DataFrame:
    """`tmp, ring_id`: for each new ring (`tmp, anchor`) the first `ring_id_for(anchor, salt)`,
    salt 0, 1, …, that no earlier ring and no other new ring holds."""
    taken = issued.unique()
    done: list[pl.DataFrame] = []
    pending = anchors.sort("anchor")
    for salt in range(MAX_SALTS):
        if pending.is_empty():
            break
        tried = pending.with_columns(
            pl.col("anchor")
            .map_elements(functools.partial(ring_id_for, salt=salt), return_dtype=pl.String)
            .alias("ring_id")
        )
        free = ~pl.col("ring_id").is_in(taken.implode()) & pl.col("ring_id").is_first_distinct()
        done.append(tried.filter(free).select("tmp", "ring_id"))
        taken = pl.concat([taken, done[-1]["ring_id"]])
        pending = tried.filter(~free).drop("ring_id")
    if not pending.is_empty():
        raise ArtifactError(
            f"{pending.height} new ring(s) found no unused id in {MAX_SALTS} tries",
            hint="the previous run's ring_ids.parquet looks corrupt",
        )
    return (
        pl.concat(done) if done else pl.DataFrame(schema={"tmp": pl.String, "ring_id": pl.String})
    )
