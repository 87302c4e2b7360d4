"""Two consecutive nights of one synthetic population, for the incremental run's tests and
benchmark: day 2 has new sign-ups, users with a changed identifier, erasure requests and new
device sightings — as a full snapshot and as the delta that turns day 1 into it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from graphfraud.synthetic.population import Population

DELETE = "delete"
UPSERT = "upsert"


@dataclass(frozen=True)
class Nights:
    """Raw input frames (the batch's input contract). `delta_users` carries an `op` column
    (`upsert` | `delete`; a delete row holds only its user_id); `delta_devices` holds only the
    new sightings."""

    day1_users: pl.DataFrame
    day1_devices: pl.DataFrame
    day2_users: pl.DataFrame
    day2_devices: pl.DataFrame
    delta_users: pl.DataFrame
    delta_devices: pl.DataFrame
    new: list[str]
    changed: list[str]
    deleted: list[str]


def two_nights(
    population: Population,
    seed: int,
    *,
    new_share: float = 0.02,
    changed_share: float = 0.01,
    deleted_share: float = 0.001,
) -> Nights:
    """Day 1 is the population without a random `new_share` of its users; day 2 adds them
    (with their sightings), changes one identifier of `changed_share` of day 1's users (a new
    email, a new phone number, or a new device sighting shared with another user) and erases
    `deleted_share` of them. Deterministic for a population and seed."""
    rng = np.random.default_rng([seed, 12])
    users, devices = population.users, population.devices
    ids = users["user_id"].to_numpy()
    n = len(ids)
    order = rng.permutation(n)
    n_new = round(n * new_share)
    new = sorted(ids[order[:n_new]].tolist())
    old = ids[order[n_new:]]
    n_changed = max(3, round(len(old) * changed_share))
    n_deleted = max(1, round(len(old) * deleted_share))
    picked = rng.choice(len(old), n_changed + n_deleted, replace=False)
    changed = sorted(old[picked[:n_changed]].tolist())
    deleted = sorted(old[picked[n_changed:]].tolist())

    day1_users = users.filter(~pl.col("user_id").is_in(new))
    day1_devices = devices.filter(~pl.col("user_id").is_in(new))

    which = pl.Series("which", rng.integers(0, 3, len(changed)))
    change = pl.DataFrame({"user_id": changed, "which": which}).join(
        day1_users, on="user_id", how="left"
    )
    digits = pl.Series("digits", rng.integers(10, 99, len(changed))).cast(pl.String)
    change = change.with_columns(digits)
    changed_users = change.with_columns(
        pl.when(pl.col("which") == 0)
        .then(pl.col("email").str.replace(r"@", pl.concat_str([pl.col("digits"), pl.lit("@")])))
        .otherwise(pl.col("email"))
        .alias("email"),
        pl.when(pl.col("which") == 1)
        .then(pl.concat_str([pl.col("phone").str.head(-2), pl.col("digits")]))
        .otherwise(pl.col("phone"))
        .alias("phone"),
    ).select(users.columns)
    # a new sighting: the changed user on another (random) user's device
    sighted = change.filter(pl.col("which") == 2)["user_id"]
    donors = devices.filter(pl.col("user_id").is_in(old)).sample(
        sighted.len(), seed=int(rng.integers(1 << 31)), with_replacement=True
    )
    new_sightings = donors.with_columns(pl.Series("user_id", sighted.to_list()))
    delta_devices = pl.concat([devices.filter(pl.col("user_id").is_in(new)), new_sightings]).filter(
        ~pl.col("user_id").is_in(deleted)
    )

    day2_users = (
        pl.concat(
            [
                users.filter(~pl.col("user_id").is_in(changed)),
                changed_users,
            ]
        )
        .filter(~pl.col("user_id").is_in(deleted))
        .sort("user_id")
    )
    day2_devices = pl.concat([day1_devices, delta_devices]).filter(
        ~pl.col("user_id").is_in(deleted)
    )
    upserts = pl.concat([users.filter(pl.col("user_id").is_in(new)), changed_users])
    deletes = pl.DataFrame({"user_id": deleted}).with_columns(
        [pl.lit(None, dtype=users.schema[c]).alias(c) for c in users.columns if c != "user_id"]
    )
    delta_users = pl.concat(
        [
            upserts.with_columns(pl.lit(UPSERT).alias("op")),
            deletes.select(users.columns).with_columns(pl.lit(DELETE).alias("op")),
        ]
    )
    return Nights(
        day1_users=day1_users,
        day1_devices=day1_devices,
        day2_users=day2_users,
        day2_devices=day2_devices,
        delta_users=delta_users,
        delta_devices=delta_devices,
        new=new,
        changed=changed,
        deleted=deleted,
    )
