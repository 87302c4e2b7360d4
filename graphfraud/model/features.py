"""Per-user features for the risk models: own identifiers, identifier statistics, timing, graph
neighbourhood and ring, and labels seen *around* the user.

Label-derived columns start with `lbl_` (see `LABEL_PREFIX`) and never include the user's own label:
a ring's fraud count is taken over the *other* members. They feed the reason codes and analysts,
not the models: computed once from every label, they would let held-out ring-mates vouch for
each other out-of-fold, so `build_graph_data` drops them and the models recompute the same
evidence per fold (`model/aggregate.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.identifiers import BUILTIN, IdentifierRegistry, Source
from graphfraud.linking.keys import handle_stem_expr
from graphfraud.model.base import LABEL_DERIVED_PREFIX
from graphfraud.model.prior import prior_inputs, ring_prior

LABEL_PREFIX = LABEL_DERIVED_PREFIX
# The ring features every member of a ring carries (`ring_<name>` in the feature table).
RING_COLUMNS = ("size", "density", "mean_link_weight", "shared_device_ratio",
                 "creation_span_hours", "creation_burst", "identifier_similarity")  # fmt: skip
_FREE_DOMAINS = [
    "gmail.com", "yahoo.com", "yahoo.co.in", "hotmail.com", "outlook.com", "rediffmail.com",
    "live.com", "icloud.com", "protonmail.com", "ymail.com",
]  # fmt: skip


def _log1p(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.Float32).fill_null(0).log1p()


def _support_of(support: pl.DataFrame, kind: str, column: str, alias: str) -> pl.DataFrame:
    return support.filter(pl.col("kind") == kind).select(
        pl.col("value").alias(column), pl.col("support").alias(alias)
    )


@dataclass(frozen=True)
class Population:
    """What the population a user is scored in says about its email: how many share its handle
    stem and its domain, and the newest sign-up (ages count back from it). The batch takes it
    from its own users; the online scorer from the snapshot and today's accounts, so one
    definition of each feature serves both."""

    stems: pl.DataFrame  # stem, stem_n
    domains: pl.DataFrame  # email_domain, domain_n
    latest: datetime | None


def population_of(users: pl.DataFrame) -> Population:
    """The batch's own `Population`: its users' stems, domains and newest sign-up."""
    shapes = users.select(
        handle_stem_expr("email_local", "email_domain").alias("stem"), pl.col("email_domain")
    )
    return Population(
        stems=shapes.group_by("stem").agg(pl.len().alias("stem_n")).drop_nulls(),
        domains=shapes.group_by("email_domain").agg(pl.len().alias("domain_n")).drop_nulls(),
        latest=users["created_at"].max(),  # type: ignore[arg-type]
    )


def own_features(
    users: pl.DataFrame,
    devices: pl.DataFrame,
    support: pl.DataFrame,
    max_share: int,
    registry: IdentifierRegistry = BUILTIN,
    population: Population | None = None,
) -> pl.DataFrame:
    """Features from the user's own row, its device sightings and how common its identifiers are.

    Per user-held kind K: `has_K`, `log_K_support` (and `K_invalid` when typed but unparseable);
    per sighting kind K: `n_Ks`, `log_max_K_support`, `n_hub_Ks` (distinct values of each); plus
    the email's shape.
    `population`: counts from elsewhere (default: `users` itself).
    """
    user_kinds = registry.of_source(Source.USERS)
    sighting_kinds = registry.of_source(Source.SIGHTINGS)
    if population is None:
        population = population_of(users)
    latest = population.latest
    age = (
        ((pl.lit(latest) - pl.col("created_at")).dt.total_hours() / 24)
        if latest is not None  # no parseable sign-up time in the whole file
        else pl.lit(0.0)
    )
    per_kind = [
        pl.col(spec.value_column).is_not_null().cast(pl.Float32).alias(f"has_{spec.name}")
        for spec in user_kinds
    ] + [
        (pl.col(spec.raw_column).is_not_null() & pl.col(spec.value_column).is_null())
        .cast(pl.Float32)
        .alias(f"{spec.name}_invalid")
        for spec in user_kinds
        if spec.keep_raw
    ]
    f = users.select(
        "user_id",
        *dict.fromkeys(s.value_column for s in user_kinds),
        *per_kind,
        pl.col("email_local")
        .str.len_chars()
        .fill_null(0)
        .cast(pl.Float32)
        .alias("email_local_len"),
        pl.col("email_local")
        .str.count_matches(r"\d")
        .fill_null(0)
        .cast(pl.Float32)
        .alias("email_digits"),
        pl.col("email_local")
        .str.extract(r"(\d+)$", 1)
        .str.len_chars()
        .fill_null(0)
        .cast(pl.Float32)
        .alias("email_suffix_len"),
        pl.col("email_domain").is_in(_FREE_DOMAINS).cast(pl.Float32).alias("email_free_domain"),
        (
            pl.col("email").is_not_null()
            & (pl.col("email_raw").str.strip_chars().str.to_lowercase() != pl.col("email"))
        )
        .cast(pl.Float32)
        .fill_null(0)
        .alias("email_rewritten"),
        pl.col("created_at").dt.hour().fill_null(12).cast(pl.Float32).alias("created_hour"),
        age.fill_null(0).cast(pl.Float32).alias("age_days"),
        handle_stem_expr("email_local", "email_domain").alias("stem"),
        pl.col("email_domain"),
    )
    stem_n, domain_n = population.stems, population.domains
    f = f.join(stem_n, on="stem", how="left").join(domain_n, on="email_domain", how="left")
    for spec in user_kinds:
        f = f.join(
            _support_of(support, spec.name, spec.value_column, f"{spec.name}_support"),
            on=spec.value_column,
            how="left",
        )
    dev = devices
    for spec in sighting_kinds:
        dev = dev.join(
            _support_of(support, spec.name, spec.value_column, f"_{spec.name}_sup"),
            on=spec.value_column,
            how="left",
        )
    dev_agg = dev.group_by("user_id").agg(
        pl.len().cast(pl.Float32).alias("n_sightings"),
        *[
            agg
            for spec in sighting_kinds
            for agg in (
                pl.col(spec.value_column)
                .drop_nulls()
                .n_unique()
                .cast(pl.Float32)
                .alias(f"n_{spec.name}s"),
                pl.col(f"_{spec.name}_sup").max().alias(f"max_{spec.name}_support"),
                # distinct hub values, like `n_Ks` (and the online scorer): a user seen twice
                # on one café IP is on one hub, not two
                pl.col(spec.value_column)
                .filter(pl.col(f"_{spec.name}_sup") > max_share)
                .drop_nulls()
                .n_unique()
                .cast(pl.Float32)
                .alias(f"n_hub_{spec.name}s"),
            )
        ],
    )
    f = f.join(dev_agg, on="user_id", how="left")
    return f.select(
        "user_id",
        *[c.meta.output_name() for c in per_kind],
        "email_local_len", "email_digits", "email_suffix_len", "email_free_domain",
        "email_rewritten", "created_hour", "age_days",
        _log1p("stem_n").alias("log_stem_n"),
        _log1p("domain_n").alias("log_domain_n"),
        *[_log1p(f"{s.name}_support").alias(f"log_{s.name}_support") for s in user_kinds],
        pl.col("n_sightings").fill_null(0),
        *[pl.col(f"n_{s.name}s").fill_null(0) for s in sighting_kinds],
        *[
            _log1p(f"max_{s.name}_support").alias(f"log_max_{s.name}_support")
            for s in sighting_kinds
        ],
        *[pl.col(f"n_hub_{s.name}s").fill_null(0) for s in sighting_kinds],
    )  # fmt: skip


def pair_aggregates(users: pl.DataFrame, pairs: pl.DataFrame, strong: float) -> pl.DataFrame:
    """Per user with a pair: its degree, weighted and strong degree, strongest pair, and the
    pair strengths to labelled neighbours (`nb_*`). One pass over both ends of every pair:
    at 1M users that is ~12M rows keyed by user id, the feature stage's largest group-by."""
    lab = users.select(pl.col("user_id").alias("other"), "label")
    sides = pl.concat(
        [
            pairs.select(
                pl.col("user_a").alias("user_id"), pl.col("user_b").alias("other"), "strength"
            ),
            pairs.select(
                pl.col("user_b").alias("user_id"), pl.col("user_a").alias("other"), "strength"
            ),
        ]
    ).join(lab, on="other", how="left")
    return sides.group_by("user_id").agg(
        pl.len().cast(pl.Float32).alias("degree"),
        pl.col("strength").sum().cast(pl.Float32).alias("weighted_degree"),
        (pl.col("strength") >= strong).sum().cast(pl.Float32).alias("strong_degree"),
        pl.col("strength").max().cast(pl.Float32).alias("max_strength"),
        ((pl.col("label") == 1).fill_null(False) * pl.col("strength"))
        .sum()
        .cast(pl.Float32)
        .alias("nb_fraud_w"),
        ((pl.col("label") == 0).fill_null(False) * pl.col("strength"))
        .sum()
        .cast(pl.Float32)
        .alias("nb_legit_w"),
        (pl.col("label") == 1).sum().cast(pl.Float32).alias("nb_fraud_n"),
    )


_DEGREES = ("degree", "weighted_degree", "strong_degree", "max_strength")


def graph_features(
    users: pl.DataFrame,
    links: pl.DataFrame,
    around: pl.DataFrame,
    registry: IdentifierRegistry = BUILTIN,
) -> pl.DataFrame:
    """Degree, weighted degree and, per link kind K, `n_K` and `max_w_K` of each user.
    `around`: `pair_aggregates`."""
    kinds = registry.link_kinds
    both = pl.concat(
        [
            links.select(pl.col("user_a").alias("user_id"), "kind", "weight"),
            links.select(pl.col("user_b").alias("user_id"), "kind", "weight"),
        ]
    )
    per_kind = both.group_by("user_id").agg(
        [(pl.col("kind") == k).sum().cast(pl.Float32).alias(f"n_{k}") for k in kinds]
        + [
            pl.col("weight")
            .filter(pl.col("kind") == k)
            .max()
            .fill_null(0)
            .cast(pl.Float32)
            .alias(f"max_w_{k}")
            for k in kinds
        ]
    )
    out = (
        users.select("user_id")
        .join(around.select("user_id", *_DEGREES), on="user_id", how="left")
        .join(per_kind, on="user_id", how="left")
    )
    return out.fill_null(0)


def ring_user_features(
    users: pl.DataFrame, members: pl.DataFrame, rings: pl.DataFrame
) -> pl.DataFrame:
    """The ring's features, broadcast to its members (zeros for users in no ring)."""
    cols = list(RING_COLUMNS)
    joined = (
        users.select("user_id")
        .join(members, on="user_id", how="left")
        .join(rings.select("ring_id", *cols), on="ring_id", how="left")
    )
    return joined.select(
        "user_id",
        pl.col("ring_id").is_not_null().cast(pl.Float32).alias("in_ring"),
        *[pl.col(c).cast(pl.Float32).fill_null(0).alias(f"ring_{c}") for c in cols],
    )


def label_features(
    users: pl.DataFrame, members: pl.DataFrame, around: pl.DataFrame
) -> pl.DataFrame:
    """Labels around the user, never its own: other ring members' labels, neighbours' labels
    (`around`: `pair_aggregates`)."""
    lab = users.select("user_id", "label")
    ring = (
        members.join(lab, on="user_id", how="left")
        .with_columns(
            (pl.col("label") == 1).fill_null(False).cast(pl.Float32).alias("f"),
            pl.col("label").is_not_null().cast(pl.Float32).alias("l"),
        )
        .with_columns(
            (pl.col("f").sum().over("ring_id") - pl.col("f")).alias("fraud_others"),
            (pl.col("l").sum().over("ring_id") - pl.col("l")).alias("labelled_others"),
        )
        .select("user_id", "fraud_others", "labelled_others")
    )
    nb_agg = around.select("user_id", "nb_fraud_w", "nb_legit_w", "nb_fraud_n")
    out = (
        users.select("user_id")
        .join(ring, on="user_id", how="left")
        .join(nb_agg, on="user_id", how="left")
    )
    p = LABEL_PREFIX
    return out.select(
        "user_id",
        pl.col("fraud_others").fill_null(0).cast(pl.Float32).alias(f"{p}ring_fraud"),
        pl.col("labelled_others").fill_null(0).cast(pl.Float32).alias(f"{p}ring_labelled"),
        ((pl.col("fraud_others") + 0.1) / (pl.col("labelled_others") + 1.0))
        .fill_null(0.1)
        .cast(pl.Float32)
        .alias(f"{p}ring_share"),
        pl.col("nb_fraud_w").fill_null(0).alias(f"{p}nb_fraud_w"),
        pl.col("nb_legit_w").fill_null(0).alias(f"{p}nb_legit_w"),
        pl.col("nb_fraud_n").fill_null(0).alias(f"{p}nb_fraud_n"),
    )


def user_features(
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
    registry: IdentifierRegistry = BUILTIN,
    population: Population | None = None,
) -> pl.DataFrame:
    """The feature table: `user_id` + float32 columns, one row per user, in user_id order.
    `population` as in `own_features` (the online scorer's one-account table)."""
    own = own_features(users, devices, support, max_share, registry, population)
    around = pair_aggregates(users, pairs, strong)
    graph = graph_features(users, links, around, registry)
    ring = ring_user_features(users, members, rings)
    labels = label_features(users, members, around)
    return (
        own.join(graph, on="user_id", how="left")
        .join(ring, on="user_id", how="left")
        .join(labels, on="user_id", how="left")
        .sort("user_id")
    )


def prior_of(table: pl.DataFrame) -> npt.NDArray[np.float32]:
    """`model.prior.ring_prior` of every row of a feature table."""
    names = prior_inputs(table.columns)
    x = table.select(pl.col(names).cast(pl.Float32).fill_null(0.0)).to_numpy()
    return ring_prior(x.astype(np.float32).reshape(table.height, len(names)), tuple(names))


# ---- one account, in microseconds ------------------------------------------------------------


@dataclass(frozen=True)
class OneAccount:
    """Everything `account_features` reads about one account the batch has not seen.

    `support`: kind → value → holders including the account; `links`: (other user, link kind,
    weight), one per other user and kind; `ring`: its ring's RINGS_SCHEMA row, or None."""

    values: dict[str, str | None]  # users-file columns: canonical + raw (`email_raw`, …)
    sightings: int  # device sightings rows
    sighting_values: dict[str, tuple[str, ...]]  # sighting kind → distinct values
    created_at: datetime | None
    support: dict[str, dict[str, int]]
    stem_n: int  # accounts with its email stem (itself included), 0 without one
    domain_n: int  # accounts with its email domain (itself included), 0 without one
    links: tuple[tuple[str, str, float], ...]
    ring: dict[str, Any] | None


def account_features(
    account: OneAccount,
    *,
    latest: datetime | None,
    max_share: int,
    strong: float,
    registry: IdentifierRegistry = BUILTIN,
) -> dict[str, float]:
    """`user_features`' columns (the label-derived ones aside) for one account: the scalar twin
    of the vectorised batch functions, which `tests/model/test_features.py` holds equal on
    whole populations. The online scorer's request path cannot afford a hundred DataFrame
    operations per account."""
    v = account.values
    out: dict[str, float] = {}
    user_kinds = registry.of_source(Source.USERS)
    for spec in user_kinds:
        out[f"has_{spec.name}"] = float(v.get(spec.value_column) is not None)
    for spec in user_kinds:
        if spec.keep_raw:
            out[f"{spec.name}_invalid"] = float(
                v.get(spec.raw_column) is not None and v.get(spec.value_column) is None
            )
    local, domain, email = v.get("email_local"), v.get("email_domain"), v.get("email")
    out["email_local_len"] = float(len(local)) if local is not None else 0.0
    out["email_digits"] = float(len(_DIGIT.findall(local))) if local is not None else 0.0
    suffix = _SUFFIX.search(local) if local is not None else None
    out["email_suffix_len"] = float(len(suffix.group(1))) if suffix else 0.0
    # Unfilled in the batch: no domain is missing (NaN), not "not free".
    out["email_free_domain"] = float(domain in _FREE_DOMAINS) if domain is not None else np.nan
    raw = v.get("email_raw")
    out["email_rewritten"] = float(
        email is not None and raw is not None and ascii_strip_lower(raw) != email
    )
    created = account.created_at
    out["created_hour"] = float(created.hour) if created is not None else 12.0
    age = 0.0
    if latest is not None and created is not None:
        age = float(int((latest - created).total_seconds() // 3600)) / 24
    out["age_days"] = float(np.float32(age))
    out["log_stem_n"] = _log1p_f32(account.stem_n)
    out["log_domain_n"] = _log1p_f32(account.domain_n)
    for spec in user_kinds:
        value = v.get(spec.value_column)
        held = account.support.get(spec.name, {}).get(value, 0) if value is not None else 0
        out[f"log_{spec.name}_support"] = _log1p_f32(held)
    sighting_kinds = registry.of_source(Source.SIGHTINGS)
    out["n_sightings"] = float(account.sightings)
    for spec in sighting_kinds:
        out[f"n_{spec.name}s"] = float(len(account.sighting_values.get(spec.name, ())))
    sighting_support = {
        spec.name: [
            account.support.get(spec.name, {}).get(x, 0)
            for x in account.sighting_values.get(spec.name, ())
        ]
        for spec in sighting_kinds
    }
    for spec in sighting_kinds:
        out[f"log_max_{spec.name}_support"] = _log1p_f32(
            max(sighting_support[spec.name], default=0)
        )
    for spec in sighting_kinds:
        out[f"n_hub_{spec.name}s"] = float(sum(h > max_share for h in sighting_support[spec.name]))
    out |= _graph_row(account.links, strong, registry)
    out |= _ring_row(account.ring)
    return out


_DIGIT = re.compile(r"\d")
_SUFFIX = re.compile(r"(\d+)$")


def ascii_strip_lower(text: str) -> str:
    """polars' `str.strip_chars().str.to_lowercase()` on one value."""
    return text.strip().lower()


def _log1p_f32(n: float) -> float:
    return float(np.log1p(np.float32(n)))


def _graph_row(
    links: tuple[tuple[str, str, float], ...], strong: float, registry: IdentifierRegistry
) -> dict[str, float]:
    """`graph_features` for one account."""
    miss: dict[str, float] = {}
    out: dict[str, float] = {}
    for kind in registry.link_kinds:
        ws = [w for _, k, w in links if k == kind]
        out[f"n_{kind}"] = float(len(ws))
        out[f"max_w_{kind}"] = float(np.float32(max(ws, default=0.0)))
    for other, _, w in links:
        miss[other] = miss.get(other, 0.0) + float(
            np.log(1.0 - min(max(float(np.float32(w)), 0.0), 0.999))
        )
    strengths = [float(np.float32(1.0 - np.exp(m))) for m in miss.values()]
    return {
        "degree": float(len(strengths)),
        "weighted_degree": float(np.float32(sum(strengths))),
        "strong_degree": float(sum(s >= strong for s in strengths)),
        "max_strength": max(strengths, default=0.0),
        **out,
    }


def _ring_row(ring: dict[str, Any] | None) -> dict[str, float]:
    """`ring_user_features` for one account."""
    out = {"in_ring": float(ring is not None)}
    for c in RING_COLUMNS:
        value = ring.get(c) if ring is not None else None
        out[f"ring_{c}"] = float(np.float32(value)) if value is not None else 0.0
    return out
