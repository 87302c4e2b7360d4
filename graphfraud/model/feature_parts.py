"""The feature table in parts of users, for an engine: each part's rows are `user_features`'
rows for those users, so the parts concatenated are the whole table.

A part carries what its users' features read: their own rows, sightings, links and strong
pairs, plus the rows of their neighbours and ring-mates (whose labels `label_features` reads;
their own features come out incomplete and are dropped), all in the population of every user
(`Population`: stem and domain counts, the newest sign-up). Identifier support,
ring members and rings are sent to each worker once, whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from graphfraud.engine import Engine, slices
from graphfraud.identifiers import registry_for
from graphfraud.model.features import Population, population_of, user_features


@dataclass(frozen=True)
class FeaturePart:
    """The users whose features one task computes (`keep`) and what those features read."""

    keep: pl.DataFrame  # user_id
    users: pl.DataFrame  # `keep`, their neighbours and ring-mates
    devices: pl.DataFrame
    links: pl.DataFrame  # every link with an end in `keep`
    pairs: pl.DataFrame  # every strong pair with an end in `keep`


def part_features(
    part: FeaturePart,
    support: pl.DataFrame,
    members: pl.DataFrame,
    rings: pl.DataFrame,
    population: Population,
    options: Mapping[str, Any],
) -> pl.DataFrame:
    """`user_features` for the users of `part` (rows of `keep` only). The identifier kinds
    travel as their declaration (`options["identifiers"]`): a registry holds functions."""
    features = user_features(
        part.users,
        part.devices,
        part.links,
        support,
        part.pairs,
        members,
        rings,
        max_share=options["max_share"],
        strong=options["strong"],
        registry=registry_for(options["identifiers"]),
        population=population,
    )
    return features.join(part.keep, on="user_id", how="semi")


def user_features_on(
    engine: Engine,
    users: pl.DataFrame,
    devices: pl.DataFrame,
    links: pl.DataFrame,
    support: pl.DataFrame,
    pairs: pl.DataFrame,
    members: pl.DataFrame,
    rings: pl.DataFrame,
    *,
    max_share: int,
    strong: float,
    identifiers: Sequence[Mapping[str, Any]] = (),
) -> pl.DataFrame:
    """`user_features` (for the registry `identifiers` declares) in `engine.partitions` parts
    of consecutive user ids; one part is `user_features` itself."""
    registry = registry_for(identifiers)
    ordered = users.sort("user_id")
    keeps = slices(ordered.select("user_id"), engine.partitions)
    if len(keeps) == 1:
        return user_features(
            users, devices, links, support, pairs, members, rings,
            max_share=max_share, strong=strong, registry=registry,
        )  # fmt: skip
    parts = [_part(keep, ordered, devices, links, pairs, members) for keep in keeps]
    options = {"max_share": max_share, "strong": strong, "identifiers": list(identifiers)}
    done = engine.map(part_features, parts, support, members, rings, population_of(users), options)
    return pl.concat(done).sort("user_id")


def _part(
    keep: pl.DataFrame,
    users: pl.DataFrame,
    devices: pl.DataFrame,
    links: pl.DataFrame,
    pairs: pl.DataFrame,
    members: pl.DataFrame,
) -> FeaturePart:
    mine = keep["user_id"].implode()

    def touching(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.filter(pl.col("user_a").is_in(mine) | pl.col("user_b").is_in(mine))

    mine_pairs = touching(pairs)
    rings_of = members.join(keep, on="user_id", how="semi").select("ring_id")
    around = pl.concat(
        [
            keep["user_id"],
            mine_pairs["user_a"],
            mine_pairs["user_b"],
            members.join(rings_of, on="ring_id", how="semi")["user_id"],
        ]
    ).unique()
    halo = users.filter(pl.col("user_id").is_in(around.implode()))
    return FeaturePart(
        keep=keep,
        users=halo,
        devices=devices.filter(pl.col("user_id").is_in(mine)),
        links=touching(links),
        pairs=mine_pairs,
    )
