"""The night's rings adopt the emerging rings the online scorer saw forming during the day.

An emerging ring (`scoring.account`) is a guess made one sign-up at a time; the batch's rings are
the considered answer. Each batch ring records the emerging ring it grew from — the one most of
its members were in, when at least `MIN_SHARED` of them were — so an analyst's case on an
emerging ring carries over to the ring that replaced it, and the night can count how many rings
the day caught early.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from graphfraud.errors import InputDataError
from graphfraud.rings.features import Rings

MIN_SHARED = 2  # members a batch ring must share with an emerging ring to have grown from it
EMERGING_COLUMNS = ("user_id", "emerging_ring_id")


def read_emerging(path: Path) -> pl.DataFrame:
    """`user_id, emerging_ring_id` from the export of the intraday store (Parquet or CSV)."""
    try:
        frame = (
            pl.read_csv(path, infer_schema_length=0)
            if path.suffix.lower() == ".csv"
            else pl.read_parquet(path)
        )
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputDataError(
            f"cannot read the emerging rings file {path.name}: {exc}",
            hint="write it with `graphfraud intraday export --out FILE`",
        ) from exc
    missing = [c for c in EMERGING_COLUMNS if c not in frame.columns]
    if missing:
        raise InputDataError(
            f"the emerging rings file {path.name} lacks {missing}",
            hint="columns: user_id, emerging_ring_id (`graphfraud intraday export`)",
        )
    return frame.select(pl.col(c).cast(pl.String) for c in EMERGING_COLUMNS).drop_nulls().unique()


def adopt_emerging(found: Rings, emerging: pl.DataFrame) -> Rings:
    """`found` with each ring's `grew_from`: the emerging ring most of its members were in (ties
    to the smaller id), null when fewer than MIN_SHARED members were in any."""
    shared = (
        found.members.join(emerging, on="user_id", how="inner")
        .group_by("ring_id", "emerging_ring_id")
        .agg(pl.len().alias("n"))
        .filter(pl.col("n") >= MIN_SHARED)
        .sort(["ring_id", "n", "emerging_ring_id"], descending=[False, True, False])
        .unique("ring_id", keep="first", maintain_order=True)
        .select("ring_id", pl.col("emerging_ring_id").alias("grew_from"))
    )
    rings = found.rings.drop("grew_from", strict=False).join(shared, on="ring_id", how="left")
    return Rings(
        members=found.members,
        rings=rings.select(found.rings.columns),
        communities=found.communities,
        detection=found.detection,
    )
