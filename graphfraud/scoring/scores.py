"""User and ring scores with short reason codes: the artifact the service serves.

Ring risk comes from the members' model scores (a ring with few labels still scores high when its
members look like known fraud) and is blended back into each member's score: accounts run by one
actor share one fate, so a quiet member of a risky ring inherits part of its risk.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.schema import SCORES_SCHEMA, conform_frame

# Share of a ring member's final score that comes from its ring (0 = model score only).
RING_BLEND = 0.5

# (code, condition on the feature table); the order is the order reasons are listed in.
REASON_RULES: tuple[tuple[str, pl.Expr], ...] = (
    ("RING_LABELLED_FRAUD", pl.col("lbl_ring_fraud") > 0),
    ("NEAR_LABELLED_FRAUD", pl.col("lbl_nb_fraud_n") > 0),
    ("SHARED_DEVICE", pl.col("max_w_device") >= 0.2),
    ("EMAIL_VARIANT", pl.col("n_email") > 0),
    ("LOOKALIKE_EMAIL", pl.col("max_w_email_similar") >= 0.1),
    ("SHARED_PHONE", pl.col("n_phone") > 0),
    ("SEQUENTIAL_PHONE", pl.col("max_w_phone_similar") >= 0.1),
    ("SIGNUP_BURST", (pl.col("ring_creation_burst") >= 0.6) & (pl.col("ring_size") >= 3)),
    ("DENSE_RING", (pl.col("ring_density") >= 0.5) & (pl.col("ring_size") >= 3)),
    ("SHARED_IP", pl.col("max_w_ip") >= 0.1),
    ("HUB_DEVICE", pl.col("n_hub_devices") > 0),
)
MAX_REASONS = 5


def prior_scores(features: pl.DataFrame) -> npt.NDArray[np.float32]:
    """A label-free score for runs with too few labels and no promoted model: the strongest tie
    to another account, raised by a dense ring around it. Ranks "linked to someone by a strong,
    rare identifier" above "alone"; it is a stopgap until labels or a promoted model exist."""
    expr = 0.6 * pl.col("max_strength") + 0.4 * pl.col("ring_density") * pl.col("in_ring")
    return features.select(expr.clip(0.0, 1.0).cast(pl.Float32)).to_series().to_numpy()


def ring_scores(members: pl.DataFrame, user_scores: pl.DataFrame) -> pl.DataFrame:
    """`ring_id, ring_score`: mean member score, pulled up by the riskiest quarter of members."""
    joined = members.join(user_scores.select("user_id", "model_score"), on="user_id", how="left")
    return joined.group_by("ring_id").agg(
        (0.5 * pl.col("model_score").mean() + 0.5 * pl.col("model_score").quantile(0.75, "linear"))
        .cast(pl.Float32)
        .alias("ring_score")
    )


def reasons_expr() -> pl.Expr:
    """A list of reason codes per user, most important first, at most MAX_REASONS."""
    codes = [pl.when(cond).then(pl.lit(code)).otherwise(None) for code, cond in REASON_RULES]
    return pl.concat_list(codes).list.drop_nulls().list.head(MAX_REASONS)


def build_scores(
    features: pl.DataFrame,
    model_scores: pl.DataFrame,
    members: pl.DataFrame,
    model_version: str,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores per SCORES_SCHEMA, ring scores `ring_id, ring_score`)."""
    rings = ring_scores(members, model_scores)
    scored = (
        features.join(model_scores.select("user_id", "model_score"), on="user_id", how="left")
        .join(members, on="user_id", how="left")
        .join(rings, on="ring_id", how="left")
        .with_columns(
            pl.when(pl.col("ring_score").is_not_null())
            .then((1 - RING_BLEND) * pl.col("model_score") + RING_BLEND * pl.col("ring_score"))
            .otherwise(pl.col("model_score"))
            .clip(0.0, 1.0)
            .cast(pl.Float32)
            .alias("score"),
            reasons_expr().alias("reasons"),
            pl.lit(model_version).alias("model_version"),
        )
        .sort("user_id")
    )
    return conform_frame(scored, SCORES_SCHEMA), rings
