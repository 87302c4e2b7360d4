"""Per-user features for the risk models: own identifiers, identifier statistics, timing, graph
neighbourhood and ring, and labels seen *around* the user.

Label-derived columns start with `lbl_` (see `LABEL_PREFIX`) and never include the user's own label:
a ring's fraud count is taken over the *other* members. They feed the reason codes and analysts,
not the models: computed once from every label, they would let held-out ring-mates vouch for
each other out-of-fold, so `build_graph_data` drops them and the models recompute the same
evidence per fold (`model/aggregate.py`).
"""

from __future__ import annotations

import polars as pl

from graphfraud.linking.keys import email_stem_expr
from graphfraud.model.base import LABEL_DERIVED_PREFIX
from graphfraud.schema import LinkKind

LABEL_PREFIX = LABEL_DERIVED_PREFIX
_FREE_DOMAINS = [
    "gmail.com", "yahoo.com", "yahoo.co.in", "hotmail.com", "outlook.com", "rediffmail.com",
    "live.com", "icloud.com", "protonmail.com", "ymail.com",
]  # fmt: skip


def _log1p(col: str | pl.Expr) -> pl.Expr:
    expr = pl.col(col) if isinstance(col, str) else col
    return expr.cast(pl.Float32).fill_null(0).log1p()


def own_features(
    users: pl.DataFrame, devices: pl.DataFrame, support: pl.DataFrame, max_share: int
) -> pl.DataFrame:
    """Features from the user's own row, its device sightings and how common its identifiers are."""
    sup = {
        k: support.filter(pl.col("kind") == k).select("value", "support")
        for k in ("email", "phone", "device", "ip")
    }
    latest = users["created_at"].max()
    age = (
        ((pl.lit(latest) - pl.col("created_at")).dt.total_hours() / 24)
        if latest is not None  # no parseable sign-up time in the whole file
        else pl.lit(0.0)
    )
    f = users.select(
        "user_id",
        "email",
        "phone",
        pl.col("email").is_not_null().cast(pl.Float32).alias("has_email"),
        pl.col("phone").is_not_null().cast(pl.Float32).alias("has_phone"),
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
        (pl.col("phone_raw").is_not_null() & pl.col("phone").is_null())
        .cast(pl.Float32)
        .alias("phone_invalid"),
        pl.col("created_at").dt.hour().fill_null(12).cast(pl.Float32).alias("created_hour"),
        age.fill_null(0).cast(pl.Float32).alias("age_days"),
        email_stem_expr().alias("stem"),
        pl.col("email_domain"),
    )
    stem_n = f.group_by("stem").agg(pl.len().alias("stem_n")).drop_nulls()
    domain_n = f.group_by("email_domain").agg(pl.len().alias("domain_n")).drop_nulls()
    f = (
        f.join(stem_n, on="stem", how="left")
        .join(domain_n, on="email_domain", how="left")
        .join(
            sup["email"].rename({"value": "email", "support": "email_support"}),
            on="email",
            how="left",
        )
        .join(
            sup["phone"].rename({"value": "phone", "support": "phone_support"}),
            on="phone",
            how="left",
        )
    )
    dev = devices.join(
        sup["device"].rename({"value": "device_id", "support": "dsup"}), on="device_id", how="left"
    )
    dev = dev.join(sup["ip"].rename({"value": "ip", "support": "isup"}), on="ip", how="left")
    dev_agg = dev.group_by("user_id").agg(
        pl.len().cast(pl.Float32).alias("n_sightings"),
        pl.col("device_id").n_unique().cast(pl.Float32).alias("n_devices"),
        pl.col("ip").drop_nulls().n_unique().cast(pl.Float32).alias("n_ips"),
        pl.col("dsup").max().alias("max_device_support"),
        pl.col("isup").max().alias("max_ip_support"),
        (pl.col("dsup") > max_share).sum().cast(pl.Float32).alias("n_hub_devices"),
        (pl.col("isup") > max_share).sum().cast(pl.Float32).alias("n_hub_ips"),
    )
    f = f.join(dev_agg, on="user_id", how="left")
    return f.select(
        "user_id",
        "has_email", "has_phone", "email_local_len", "email_digits", "email_suffix_len",
        "email_free_domain", "email_rewritten", "phone_invalid", "created_hour", "age_days",
        _log1p("stem_n").alias("log_stem_n"),
        _log1p("domain_n").alias("log_domain_n"),
        _log1p("email_support").alias("log_email_support"),
        _log1p("phone_support").alias("log_phone_support"),
        pl.col("n_sightings").fill_null(0),
        pl.col("n_devices").fill_null(0),
        pl.col("n_ips").fill_null(0),
        _log1p("max_device_support").alias("log_max_device_support"),
        _log1p("max_ip_support").alias("log_max_ip_support"),
        pl.col("n_hub_devices").fill_null(0),
        pl.col("n_hub_ips").fill_null(0),
    )  # fmt: skip


def graph_features(
    users: pl.DataFrame, links: pl.DataFrame, pairs: pl.DataFrame, strong: float
) -> pl.DataFrame:
    """Degree, weighted degree and per-kind link statistics of each user."""
    both = pl.concat(
        [
            links.select(pl.col("user_a").alias("user_id"), "kind", "weight"),
            links.select(pl.col("user_b").alias("user_id"), "kind", "weight"),
        ]
    )
    per_kind = both.group_by("user_id").agg(
        [(pl.col("kind") == k).sum().cast(pl.Float32).alias(f"n_{k}") for k in LinkKind]
        + [
            pl.col("weight")
            .filter(pl.col("kind") == k)
            .max()
            .fill_null(0)
            .cast(pl.Float32)
            .alias(f"max_w_{k}")
            for k in LinkKind
        ]
    )
    pboth = pl.concat(
        [
            pairs.select(pl.col("user_a").alias("user_id"), "strength"),
            pairs.select(pl.col("user_b").alias("user_id"), "strength"),
        ]
    )
    deg = pboth.group_by("user_id").agg(
        pl.len().cast(pl.Float32).alias("degree"),
        pl.col("strength").sum().cast(pl.Float32).alias("weighted_degree"),
        (pl.col("strength") >= strong).sum().cast(pl.Float32).alias("strong_degree"),
        pl.col("strength").max().cast(pl.Float32).alias("max_strength"),
    )
    out = (
        users.select("user_id")
        .join(deg, on="user_id", how="left")
        .join(per_kind, on="user_id", how="left")
    )
    return out.fill_null(0)


def ring_user_features(
    users: pl.DataFrame, members: pl.DataFrame, rings: pl.DataFrame
) -> pl.DataFrame:
    """The ring's features, broadcast to its members (zeros for users in no ring)."""
    cols = ["size", "density", "mean_link_weight", "shared_device_ratio", "creation_span_hours",
            "creation_burst", "identifier_similarity"]  # fmt: skip
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


def label_features(users: pl.DataFrame, members: pl.DataFrame, pairs: pl.DataFrame) -> pl.DataFrame:
    """Labels around the user, never its own: other ring members' labels, neighbours' labels."""
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
    nb = pl.concat(
        [
            pairs.select(
                pl.col("user_a").alias("user_id"), pl.col("user_b").alias("other"), "strength"
            ),
            pairs.select(
                pl.col("user_b").alias("user_id"), pl.col("user_a").alias("other"), "strength"
            ),
        ]
    ).join(lab.rename({"user_id": "other"}), on="other", how="left")
    nb_agg = nb.group_by("user_id").agg(
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
) -> pl.DataFrame:
    """The feature table: `user_id` + float32 columns, one row per user, in user_id order."""
    own = own_features(users, devices, support, max_share)
    graph = graph_features(users, links, pairs, strong)
    ring = ring_user_features(users, members, rings)
    labels = label_features(users, members, pairs)
    return (
        own.join(graph, on="user_id", how="left")
        .join(ring, on="user_id", how="left")
        .join(labels, on="user_id", how="left")
        .sort("user_id")
    )
