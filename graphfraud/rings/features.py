"""Ring features: what makes a community look like one actor's accounts rather than a family.

Every feature is computed from the ring's own members and intra-ring links, so it explains the
ring to an analyst as much as it feeds the model: size, density, how many members share a device,
how many carry look-alike identifiers, how bursty the sign-ups were, and the labels seen so far.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from graphfraud.identifiers import BUILTIN, DEVICE_KIND, IdentifierRegistry, Source
from graphfraud.schema import RINGS_SCHEMA, conform_frame

_BURST_HOURS = 48.0


@dataclass(frozen=True)
class Rings:
    """The rings stage's artifact: who is in which ring, and what each ring looks like."""

    members: pl.DataFrame  # MEMBERS_SCHEMA: user_id, ring_id
    rings: pl.DataFrame  # RINGS_SCHEMA, one row per ring
    # user_id, community: Leiden's communities before the dedicated-IP merge (COMMUNITIES_FILE),
    # what an incremental night keeps for untouched components
    communities: pl.DataFrame = field(default_factory=pl.DataFrame)
    detection: dict[str, int] = field(default_factory=dict)  # incremental: what was recomputed

    @property
    def stats(self) -> dict[str, int]:
        sizes = self.rings["size"]
        return {
            "rings": self.rings.height,
            "members": self.members.height,
            "largest": int(sizes.max() or 0) if sizes.len() else 0,  # type: ignore[arg-type]
            **self.detection,
        }


def identity_kinds(registry: IdentifierRegistry) -> list[str]:
    """Link kinds of what a user states about itself (email, phone, UPI, declared ids), as
    opposed to where it signs in from (devices, IPs)."""
    return [r.kind for s in registry.of_source(Source.USERS) for r in s.links]


def intra_ring_links(links: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """Links whose two users are in the same ring, with `ring_id`."""
    return (
        links.join(members.rename({"user_id": "user_a", "ring_id": "ring_a"}), on="user_a")
        .join(members.rename({"user_id": "user_b", "ring_id": "ring_b"}), on="user_b")
        .filter(pl.col("ring_a") == pl.col("ring_b"))
        .rename({"ring_a": "ring_id"})
        .drop("ring_b")
    )


def _members_touched(intra: pl.DataFrame, kinds: list[str]) -> pl.DataFrame:
    sub = intra.filter(pl.col("kind").is_in(kinds))
    touched = pl.concat(
        [
            sub.select("ring_id", pl.col("user_a").alias("u")),
            sub.select("ring_id", pl.col("user_b").alias("u")),
        ]
    ).unique()
    return touched.group_by("ring_id").agg(pl.len().alias("n_touched"))


def ring_features(
    members: pl.DataFrame,
    users: pl.DataFrame,
    links: pl.DataFrame,
    registry: IdentifierRegistry = BUILTIN,
) -> pl.DataFrame:
    """One row per ring (RINGS_SCHEMA; ring scores come later, from the score stage)."""
    return ring_feature_rows(members, users, links, identity_kinds(registry))


def ring_feature_rows(
    members: pl.DataFrame, users: pl.DataFrame, links: pl.DataFrame, identity: list[str]
) -> pl.DataFrame:
    """`ring_features` with the registry's identity link kinds spelled out: what an engine's
    worker gets (a part of the rings; a registry holds functions that do not travel)."""
    if members.is_empty():
        return conform_frame(pl.DataFrame(), RINGS_SCHEMA)
    people = members.join(users.select("user_id", "created_at", "label"), on="user_id", how="left")
    hours = (pl.col("created_at").cast(pl.Int64) / 3.6e9).alias("h")  # µs → hours
    base = (
        people.with_columns(hours)
        .group_by("ring_id")
        .agg(
            pl.len().cast(pl.Int32).alias("size"),
            (pl.col("h").max() - pl.col("h").min()).cast(pl.Float32).alias("creation_span_hours"),
            ((pl.col("h") - pl.col("h").median()).abs() <= _BURST_HOURS / 2)
            .mean()
            .cast(pl.Float32)
            .alias("creation_burst"),
            pl.col("label").is_not_null().sum().cast(pl.Int32).alias("n_labelled"),
            (pl.col("label") == 1).sum().cast(pl.Int32).alias("n_labelled_fraud"),
        )
    )
    intra = intra_ring_links(links, members)
    link_stats = intra.group_by("ring_id").agg(
        pl.struct("user_a", "user_b").n_unique().cast(pl.Int32).alias("n_links"),
        pl.col("weight").mean().cast(pl.Float32).alias("mean_link_weight"),
    )
    kinds = (
        intra.group_by("ring_id", "kind")
        .len()
        .sort(["ring_id", "len", "kind"], descending=[False, True, False])
        .group_by("ring_id", maintain_order=True)
        .agg(pl.col("kind").head(3).str.join(",").alias("top_link_kinds"))
    )
    device = _members_touched(intra, [DEVICE_KIND]).rename({"n_touched": "n_device"})
    ident = _members_touched(intra, identity).rename({"n_touched": "n_ident"})
    rings = (
        base.join(link_stats, on="ring_id", how="left")
        .join(kinds, on="ring_id", how="left")
        .join(device, on="ring_id", how="left")
        .join(ident, on="ring_id", how="left")
        .with_columns(
            (pl.col("n_links").fill_null(0) / (pl.col("size") * (pl.col("size") - 1) / 2))
            .cast(pl.Float32)
            .alias("density"),
            (pl.col("n_device").fill_null(0) / pl.col("size"))
            .cast(pl.Float32)
            .alias("shared_device_ratio"),
            (pl.col("n_ident").fill_null(0) / pl.col("size"))
            .cast(pl.Float32)
            .alias("identifier_similarity"),
            pl.when(pl.col("n_labelled") > 0)
            .then(pl.col("n_labelled_fraud") / pl.col("n_labelled"))
            .otherwise(None)
            .cast(pl.Float32)
            .alias("label_share"),
            pl.col("n_links").fill_null(0),
            pl.col("top_link_kinds").fill_null(""),
            pl.lit(None, pl.String).alias("grew_from"),  # set by `rings.adopt` when adopted
        )
        .sort("ring_id")
    )
    return conform_frame(rings, RINGS_SCHEMA)


def one_ring_features(
    members: Sequence[str],
    created: Sequence[datetime | None],
    labels: Sequence[int | None],
    links: Iterable[tuple[str, str, str, float]],
    registry: IdentifierRegistry = BUILTIN,
) -> dict[str, Any]:
    """`ring_features` for one ring, without DataFrames (the online scorer's emerging rings, one
    per request): `links` are (user_a, user_b, kind, weight) with both ends among `members`, one
    per pair and kind. `tests/rings/test_features.py` holds it equal to the batch's rows."""
    size = len(members)
    inside = set(members)
    intra = [(a, b, k, w) for a, b, k, w in links if a in inside and b in inside]
    hours = [
        (t - _EPOCH).total_seconds() / 3600.0 for t in created if t is not None
    ]  # the batch's µs / 3.6e9
    span = max(hours) - min(hours) if hours else None
    burst = None
    if hours:
        middle = float(np.median(hours))
        burst = float(np.mean([abs(h - middle) <= _BURST_HOURS / 2 for h in hours]))
    n_labelled = sum(label is not None for label in labels)
    n_fraud = sum(label == 1 for label in labels)
    pairs = {(a, b) for a, b, _, _ in intra}
    kinds: dict[str, int] = {}
    for _, _, kind, _ in intra:
        kinds[kind] = kinds.get(kind, 0) + 1
    top = sorted(kinds, key=lambda k: (-kinds[k], k))[:3]
    identity = set(identity_kinds(registry))

    def touched(wanted: set[str]) -> int:
        return len({u for a, b, k, _ in intra if k in wanted for u in (a, b)})

    f32 = np.float32
    return {
        "size": size,
        "n_links": len(pairs),
        "density": float(f32(len(pairs) / (size * (size - 1) / 2))) if size > 1 else None,
        "mean_link_weight": float(f32(np.mean([float(f32(w)) for *_, w in intra])))
        if intra
        else None,
        "shared_device_ratio": float(f32(touched({DEVICE_KIND}) / size)),
        "creation_span_hours": None if span is None else float(f32(span)),
        "creation_burst": None if burst is None else float(f32(burst)),
        "identifier_similarity": float(f32(touched(identity) / size)),
        "n_labelled": n_labelled,
        "n_labelled_fraud": n_fraud,
        "label_share": float(f32(n_fraud / n_labelled)) if n_labelled else None,
        "top_link_kinds": ",".join(top),
        "grew_from": None,
    }


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
