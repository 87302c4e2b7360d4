"""Assemble a synthetic population: honest users, planted rings, labels, shuffled ids, files."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from graphfraud.errors import ConfigError, GraphFraudError
from graphfraud.schema import TRUTH_SCHEMA
from graphfraud.synthetic.honest import honest_structure
from graphfraud.synthetic.people import draw_people, make_emails_unique, twin_mailboxes
from graphfraud.synthetic.render import DEFAULT_START, format_phones, iso_utc
from graphfraud.synthetic.rings import (
    BASE_RECIPES,
    FraudBlock,
    RingRecipes,
    build_rings,
    plan_rings,
)
from graphfraud.synthetic.upi import honest_upis, typed

FORMATS = ("csv", "parquet")


@dataclass(frozen=True)
class LabelPolicy:
    """Which users carry a label, as in a real BNPL book: chargebacks and manual reviews cover a
    minority of rings, a small sample of good customers is confirmed, and reviewers err."""

    labelled_rings: float = 0.7  # rings with any confirmed member; the rest carry no label at all
    member_rate: float = 0.3  # confirmed share of members in a labelled ring (at least one)
    honest_rate: float = 0.05  # honest users confirmed legitimate (label 0)
    honest_mislabel: float = 0.001  # honest users wrongly confirmed as fraud (label 1)
    fraud_mislabel: float = 0.005  # ring members wrongly confirmed legitimate (label 0)


@dataclass(frozen=True)
class Population:
    """A generated population. `users` and `devices` follow the batch input contract (raw strings
    as people type them); `truth` follows `graphfraud.schema.TRUTH_SCHEMA` and is never an input."""

    users: pl.DataFrame
    devices: pl.DataFrame
    truth: pl.DataFrame
    seed: int


def generate_population(
    n_users: int,
    seed: int,
    *,
    fraud_share: float = 0.04,
    start: datetime = DEFAULT_START,
    days: int = 365,
    labels: LabelPolicy | None = None,
    progress: Callable[[str], None] | None = None,
    recipes: RingRecipes = BASE_RECIPES,
) -> Population:
    """Generate `n_users` users (about `fraud_share` of them in planted rings) with their device
    sightings and the truth. Same arguments, same frames, byte for byte. `progress`, if given, is
    called with the name of each step as it starts. `recipes`: which ring recipes to plant
    (`synthetic.rings.RECIPES`: `base`, or `hard` with sparse rings and drawn camouflage)."""
    _check(n_users, seed, fraud_share, days)
    say = progress or (lambda _step: None)
    policy = labels or LabelPolicy()
    rng = np.random.default_rng(seed)
    n_fraud = round(n_users * fraud_share)
    n_fraud = n_fraud if n_fraud >= 3 else 0
    n_honest = n_users - n_fraud

    say("drawing identities")
    people = draw_people(rng, n_users, start, days)
    say("households, cafés, devices")
    end_s = int(start.timestamp()) + days * 86_400
    world = honest_structure(rng, people, n_honest, end_s)
    people, honest_devices, venues = world.people, world.devices, world.venues
    say("planting rings")

    plans = plan_rings(rng, n_fraud, recipes.kinds)
    fraud = people.slice(n_honest)
    block = FraudBlock(
        first=fraud["first"].to_list(),
        last=fraud["last"].to_list(),
        email=fraud["email"].to_list(),
        phone=fraud["phone"].to_list(),
        phone_fmt=fraud["phone_fmt"].to_list(),
        name=fraud["name"].to_list(),
        created=fraud["created"].to_list(),
    )
    filler_emails = list(block.email)
    build_rings(
        rng,
        plans,
        block,
        people["phone"].to_numpy()[:n_honest],
        venues,
        start,
        days,
        _first_devices(honest_devices, n_honest) if recipes.drawn_camouflage else None,
        recipes,
    )
    people = pl.concat(
        [
            people.slice(0, n_honest),
            pl.DataFrame(
                {
                    "first": block.first,
                    "last": block.last,
                    "birth_year": fraud["birth_year"],
                    "email": pl.Series(block.email, dtype=pl.String),
                    "phone": pl.Series(block.phone, dtype=pl.Int64),
                    "phone_fmt": pl.Series(block.phone_fmt, dtype=people["phone_fmt"].dtype),
                    "created": pl.Series(block.created, dtype=pl.Int64),
                    "name": pl.Series(block.name, dtype=pl.String),
                }
            ).select(people.columns),
        ]
    )
    say("making emails unique")
    # a ring's planted emails stay as planted; everyone else re-picks an address that is taken
    locked = np.zeros(n_users, dtype=bool)
    locked[n_honest:] = [e != f for e, f in zip(block.email, filler_emails, strict=True)]
    emails = make_emails_unique(rng, people, ~locked)
    people = people.with_columns(email=twin_mailboxes(rng, emails, world.twin_rows, world.twin_src))
    say("UPI ids")
    upi = _upis(np.random.default_rng([seed, 1]), people, world.household_head, block.upi)

    say("labels, ids, files")
    ring_id = pl.Series([None] * n_honest + block.ring_id, dtype=pl.String)
    ring_kind = pl.Series([None] * n_honest + block.ring_kind, dtype=pl.String)
    is_fraud = np.zeros(n_users, dtype=np.int8)
    is_fraud[n_honest:] = 1
    label = _labels(rng, plans, n_honest, n_users, policy)

    # ids in random order: nothing about a user's position (ring block, household) leaks
    width = max(7, len(str(n_users - 1)))
    perm = rng.permutation(n_users)
    user_id = pl.Series(perm).cast(pl.String).str.zfill(width)
    user_id = pl.select(pl.concat_str([pl.lit("u"), pl.lit(user_id)])).to_series()

    users = pl.DataFrame(
        {
            "_pid": perm,
            "user_id": user_id,
            "email": people["email"],
            "phone": format_phones(people["phone"], people["phone_fmt"]),
            "upi": upi,
            "name": people["name"],
            "created_at": iso_utc(people["created"]),
            "label": label,
        }
    )
    users = users.sort("_pid").drop("_pid")  # == sorted by user_id (zero-padded), cheaper
    truth = pl.DataFrame(
        {
            "_pid": perm,
            "user_id": user_id,
            "is_fraud": is_fraud,
            "ring_id": ring_id,
            "ring_kind": ring_kind,
        },
        schema={
            "_pid": pl.Int64,
            "user_id": pl.String,
            "is_fraud": pl.Int8,
            "ring_id": pl.String,
            "ring_kind": pl.String,
        },
    )
    truth = truth.sort("_pid").drop("_pid")

    fraud_devices = pl.DataFrame(
        {
            "uidx": pl.Series(block.dev_uidx, dtype=pl.Int64),
            "device_id": pl.Series(block.dev_id, dtype=pl.String),
            "ip": pl.Series(block.dev_ip, dtype=pl.String),
            "seen": pl.Series(block.dev_seen, dtype=pl.Int64),
        }
    )
    dev = pl.concat([honest_devices.cast({"uidx": pl.Int64, "seen": pl.Int64}), fraud_devices])
    dev = dev.with_columns(_pid=pl.Series(perm).gather(dev["uidx"])).sort(["seen", "_pid"])
    devices = pl.DataFrame(
        {
            "user_id": user_id.gather(dev["uidx"]),
            "device_id": dev["device_id"],
            "ip": dev["ip"],
            "seen_at": iso_utc(dev["seen"]),
        }
    )
    return Population(users=users, devices=devices, truth=truth, seed=seed)


def _first_devices(devices: pl.DataFrame, n_honest: int) -> list[str]:
    """Each honest user's first-seen device (camouflaged rings sign in on some)."""
    first = devices.sort("seen", "uidx").unique("uidx", keep="first")
    first = first.filter(pl.col("uidx").is_between(0, n_honest - 1))
    out = np.full(n_honest, "", dtype=object)
    out[first["uidx"].to_numpy()] = first["device_id"].to_numpy()
    return [str(d) for d in out.tolist()]


def _upis(
    rng: np.random.Generator, people: pl.DataFrame, head: np.ndarray, planted: list[str | None]
) -> pl.Series:
    """Honest-style VPAs for everyone (households may share the head's), then the rings' planted
    ones over their members, all as users type them. Its own random stream: adding UPI ids
    changed nothing else a seed draws."""
    n = people.height
    heads = np.arange(n, dtype=np.int64)
    heads[: len(head)] = head
    honest = honest_upis(
        rng, people["first"], people["last"], people["email"], people["phone"].to_numpy(), heads
    )
    rings = pl.Series([None] * (n - len(planted)) + planted, dtype=pl.String)
    return typed(rng, rings.fill_null(honest))


def _check(n_users: int, seed: int, fraud_share: float, days: int) -> None:
    if not isinstance(n_users, int) or n_users < 1:
        raise ConfigError(f"n_users must be a positive integer, got {n_users!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    if not 0.0 <= fraud_share <= 0.5:
        raise ConfigError(f"fraud_share must be within 0..0.5, got {fraud_share!r}")
    if days < 7:
        raise ConfigError(f"days must be at least 7, got {days!r}")


def _labels(
    rng: np.random.Generator, plans: list[Any], n_honest: int, n_users: int, policy: LabelPolicy
) -> pl.Series:
    """ "1" / "0" / null per internal row (honest rows first, then ring blocks in plan order)."""
    label = np.full(n_users, -1, dtype=np.int8)
    u = rng.random(n_honest)
    label[:n_honest][u < policy.honest_rate] = 0
    label[:n_honest][u >= 1.0 - policy.honest_mislabel] = 1
    for plan in plans:
        if rng.random() >= policy.labelled_rings:
            continue
        rows = np.arange(n_honest + plan.start, n_honest + plan.start + plan.size)
        hit = rng.random(plan.size) < policy.member_rate
        if not hit.any():
            hit[int(rng.integers(0, plan.size))] = True
        label[rows[hit]] = 1
    fraud_rows = np.arange(n_honest, n_users)
    unl = fraud_rows[label[fraud_rows] == -1]
    label[unl[rng.random(len(unl)) < policy.fraud_mislabel]] = 0
    out = pl.Series(label.astype(np.int64)).cast(pl.String)
    return pl.select(pl.when(pl.lit(out) == "-1").then(None).otherwise(pl.lit(out))).to_series()


def write_population(pop: Population, out_dir: Path, fmt: str = "csv") -> dict[str, Path]:
    """Write users / devices / truth as `<name>.csv` or `<name>.parquet` under `out_dir`
    (created if needed; each file written to a temporary name, then renamed)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown format {fmt!r}", hint="use csv or parquet")
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GraphFraudError(f"cannot create output directory {out_dir}: {exc.strerror}") from exc
    paths: dict[str, Path] = {}
    for name, frame in (("users", pop.users), ("devices", pop.devices), ("truth", pop.truth)):
        path = out_dir / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            if fmt == "csv":
                frame.write_csv(tmp)
            elif name == "truth":  # exactly the contract's Arrow schema (string, not large_string)
                pq.write_table(frame.to_arrow().cast(TRUTH_SCHEMA), tmp)
            else:
                frame.write_parquet(tmp)
            os.replace(tmp, path)
        except OSError as exc:
            raise GraphFraudError(f"cannot write {path}: {exc.strerror}") from exc
        paths[name] = path
    return paths


def summarize(pop: Population) -> dict[str, Any]:
    """Counts a person wants after generating: sizes, rings by kind, fraud share, labels."""
    t = pop.truth
    rings = t.filter(pl.col("ring_id").is_not_null()).group_by("ring_id", "ring_kind").len()
    sizes = rings["len"]
    labels = Counter(pop.users["label"].to_list())
    n = pop.users.height
    return {
        "users": n,
        "devices": pop.devices.height,
        "fraud": int(t["is_fraud"].sum()),
        "fraud_share": float(t["is_fraud"].sum()) / n if n else 0.0,
        "rings": rings.height,
        "rings_by_kind": dict(sorted(Counter(rings["ring_kind"].to_list()).items())),
        "ring_size_min": int(sizes.min()) if rings.height else 0,  # type: ignore[arg-type]
        "ring_size_max": int(sizes.max()) if rings.height else 0,  # type: ignore[arg-type]
        "labels": {
            "1": labels.get("1", 0),
            "0": labels.get("0", 0),
            "unknown": labels.get(None, 0),
        },
    }
