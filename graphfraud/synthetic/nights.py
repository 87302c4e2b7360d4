"""Two consecutive nights of input from one population: day 1, then day 2 with new sign-ups,
changed identifiers and erased users (for incremental runs and delta publishes).

The population is generated once; a seeded share of it is held back from day 1 and arrives on
day 2 (so new users link to old ones as real sign-ups do), another share changes its phone
(a fresh number, as after a SIM swap), and a share of day 1's users is erased on day 2
(their user rows and device sightings are gone).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from graphfraud.synthetic.population import Population


@dataclass(frozen=True)
class Nights:
    """Input frames of two nights (the batch input contract) and who changed between them."""

    day1_users: pl.DataFrame
    day1_devices: pl.DataFrame
    day2_users: pl.DataFrame
    day2_devices: pl.DataFrame
    new: tuple[str, ...]  # user ids that first appear on day 2
    changed: tuple[str, ...]  # day-1 users whose phone differs on day 2
    deleted: tuple[str, ...]  # day-1 users erased on day 2


def _pick(rng: np.random.Generator, ids: np.ndarray, share: float) -> np.ndarray:
    n = round(len(ids) * share)
    return np.sort(rng.choice(ids, size=min(n, len(ids)), replace=False)) if n else ids[:0]


def two_nights(
    population: Population,
    *,
    seed: int = 1,
    new_share: float = 0.02,
    changed_share: float = 0.01,
    deleted_share: float = 0.001,
) -> Nights:
    """Split `population` into day 1 and day 2 (shares of the day-2 population for new users,
    of day 1's users for changed and deleted ones; changed and deleted never overlap)."""
    rng = np.random.default_rng(seed)
    ids = population.users["user_id"].to_numpy()
    new = _pick(rng, ids, new_share / (1 + new_share))
    old = np.setdiff1d(ids, new)
    deleted = _pick(rng, old, deleted_share)
    changed = _pick(rng, np.setdiff1d(old, deleted), changed_share)
    new_s, deleted_s, changed_s = (pl.Series(x, dtype=pl.String) for x in (new, deleted, changed))

    users, devices = population.users, population.devices
    day1_users = users.filter(~pl.col("user_id").is_in(new_s.implode()))
    day1_devices = devices.filter(~pl.col("user_id").is_in(new_s.implode()))
    fresh_phone = pl.format(
        "+91 9{}",
        (pl.col("user_id").hash(seed) % 1_000_000_000).cast(pl.String).str.zfill(9),
    )
    day2_users = users.filter(~pl.col("user_id").is_in(deleted_s.implode())).with_columns(
        phone=pl.when(pl.col("user_id").is_in(changed_s.implode()))
        .then(fresh_phone)
        .otherwise(pl.col("phone"))
    )
    day2_devices = devices.filter(~pl.col("user_id").is_in(deleted_s.implode()))
    return Nights(
        day1_users=day1_users,
        day1_devices=day1_devices,
        day2_users=day2_users,
        day2_devices=day2_devices,
        new=tuple(new.tolist()),
        changed=tuple(changed.tolist()),
        deleted=tuple(deleted.tolist()),
    )
