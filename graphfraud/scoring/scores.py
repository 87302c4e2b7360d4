"""User and ring scores with short reason codes: the artifact the service serves.

Ring risk comes from the members' model scores (a ring with few labels still scores high when its
members look like known fraud) and is blended back into each member's score: accounts run by one
actor share one fate, so a quiet member of a risky ring inherits part of its risk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.config import DecisionSettings
from graphfraud.identifiers import BUILTIN, IdentifierRegistry
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    RING_SCORES_FILE,
    RING_SCORES_SCHEMA,
    RINGS_FILE,
    SCORES_SCHEMA,
    conform_frame,
)
from graphfraud.scoring.decision import Bands
from graphfraud.scoring.reasons import reason_table

# Share of a ring member's final score that comes from its ring (0 = model score only).
RING_BLEND = 0.5

# A reason's condition: every (feature column, at least) must hold, with "at least" meaning
# strictly above when the bar is 0. As data, so the batch's vectorised test (`reason_rules`) and
# the online scorer's one-row test (`reasons_of`) are one definition.
Condition = tuple[tuple[str, float], ...]
_FIXED_CONDITIONS: dict[str, Condition] = {
    "RING_LABELLED_FRAUD": (("lbl_ring_fraud", 0.0),),
    "NEAR_LABELLED_FRAUD": (("lbl_nb_fraud_n", 0.0),),
    "SIGNUP_BURST": (("ring_creation_burst", 0.6), ("ring_size", 3.0)),
    "DENSE_RING": (("ring_density", 0.5), ("ring_size", 3.0)),
    "HUB_DEVICE": (("n_hub_devices", 0.0),),
}
MAX_REASONS = 5


@dataclass(frozen=True)
class Scores:
    """The score stage's artifact: per-user scores with reasons, and per-ring scores."""

    users: pl.DataFrame  # SCORES_SCHEMA
    rings: pl.DataFrame  # RING_SCORES_SCHEMA


def reason_conditions(registry: IdentifierRegistry = BUILTIN) -> tuple[tuple[str, Condition], ...]:
    """(code, condition), in the order reasons are listed: each link kind's reason when the
    user's strongest link of that kind reaches its bar (and is a link at all), and the fixed
    ones."""
    conditions = dict(_FIXED_CONDITIONS)
    for rule in registry.rules:
        bar = (("max_w_" + rule.kind, 0.0), ("max_w_" + rule.kind, rule.reason_min_weight))
        conditions[rule.reason] = bar
    return tuple((code, conditions[code]) for code in reason_table(registry) if code in conditions)


def _holds(value: float, bar: float) -> bool:
    return value > 0 if bar == 0 else value >= bar


def _expr(condition: Condition) -> pl.Expr:
    parts = [pl.col(c) > 0 if bar == 0 else pl.col(c) >= bar for c, bar in condition]
    out = parts[0]
    for part in parts[1:]:
        out = out & part
    return out


def reason_rules(registry: IdentifierRegistry = BUILTIN) -> tuple[tuple[str, pl.Expr], ...]:
    """`reason_conditions` as expressions on the feature table."""
    return tuple((code, _expr(cond)) for code, cond in reason_conditions(registry))


def reasons_of(features: Mapping[str, float], registry: IdentifierRegistry = BUILTIN) -> list[str]:
    """`reasons_expr` for one feature row (a missing or NaN feature never holds)."""
    out = []
    for code, condition in reason_conditions(registry):
        if all(
            (v := features.get(c)) is not None and v == v and _holds(float(v), bar)
            for c, bar in condition
        ):
            out.append(code)
    return out[:MAX_REASONS]


def prior_scores(features: pl.DataFrame) -> npt.NDArray[np.float32]:
    """The label-free score for runs with too few labels, or whose trained model ranks the
    labels near chance, and no promoted model: the structural ring prior
    (`model.prior.ring_prior`: sign-up bursts, identifiers shared past a household, blocks of
    look-alike identifiers or devices), recomputed from the columns it reads so that a run
    written before the feature table carried `prior_ring` gets the same score."""
    from graphfraud.model.features import prior_of

    return prior_of(features).astype(np.float32)


def ring_scores(members: pl.DataFrame, user_scores: pl.DataFrame) -> pl.DataFrame:
    """`ring_id, ring_score`: mean member score, pulled up by the riskiest quarter of members."""
    joined = members.join(user_scores.select("user_id", "model_score"), on="user_id", how="left")
    return joined.group_by("ring_id").agg(
        (0.5 * pl.col("model_score").mean() + 0.5 * pl.col("model_score").quantile(0.75, "linear"))
        .cast(pl.Float32)
        .alias("ring_score")
    )


def one_ring_score(model_scores: Sequence[float]) -> float:
    """`ring_scores` for one ring's members (the online scorer's emerging rings)."""
    values = np.asarray(model_scores, dtype=np.float64)
    return float(np.float32(0.5 * values.mean() + 0.5 * np.quantile(values, 0.75)))


def reasons_expr(registry: IdentifierRegistry = BUILTIN) -> pl.Expr:
    """A list of reason codes per user, most important first, at most MAX_REASONS."""
    codes = [
        pl.when(cond).then(pl.lit(code)).otherwise(None) for code, cond in reason_rules(registry)
    ]
    return pl.concat_list(codes).list.drop_nulls().list.head(MAX_REASONS)


def blended_expr() -> pl.Expr:
    """The final score: the model's, blended with its ring's when it is in one."""
    return (
        pl.when(pl.col("ring_score").is_not_null())
        .then((1 - RING_BLEND) * pl.col("model_score") + RING_BLEND * pl.col("ring_score"))
        .otherwise(pl.col("model_score"))
        .clip(0.0, 1.0)
        .cast(pl.Float32)
        .alias("score")
    )


def build_scores(
    features: pl.DataFrame,
    model_scores: pl.DataFrame,
    members: pl.DataFrame,
    model_version: str,
    registry: IdentifierRegistry = BUILTIN,
    *,
    ring_cut: float = float("inf"),
    bands: Bands | None = None,
) -> Scores:
    """User scores (SCORES_SCHEMA) and ring scores (RING_SCORES_SCHEMA). `ring_cut`: the
    suspected-ring cut (`scoring.suspected`; inf: none); `bands`: the operating point (default:
    the settings' defaults)."""
    from graphfraud.scoring.suspected import suspected_expr

    rings = ring_scores(members, model_scores).with_columns(suspected_expr(ring_cut))
    scored = (
        features.join(model_scores.select("user_id", "model_score"), on="user_id", how="left")
        .join(members, on="user_id", how="left")
        .join(rings, on="ring_id", how="left")
        .with_columns(
            blended_expr(),
            reasons_expr(registry).alias("reasons"),
            pl.lit(model_version).alias("model_version"),
            pl.col("suspected_ring").fill_null(False),
        )
        .sort("user_id")
    )
    scored = scored.with_columns((bands or Bands.of(DecisionSettings())).column(scored["score"]))
    return Scores(
        users=conform_frame(scored, SCORES_SCHEMA),
        rings=conform_frame(rings.sort("ring_id"), RING_SCORES_SCHEMA),
    )


def scored_rings(run: RunDir) -> pl.DataFrame:
    """rings.parquet with each ring's `ring_score` and `suspected_ring` (null until the score
    stage has run; a run scored before suspected rings existed says null)."""
    rings = run.read(RINGS_FILE)
    scores = (
        run.read(RING_SCORES_FILE)
        if run.exists(RING_SCORES_FILE)
        else pl.DataFrame(schema={"ring_id": pl.String, "ring_score": pl.Float32})
    )
    if "suspected_ring" not in scores.columns:
        scores = scores.with_columns(pl.lit(None, pl.Boolean).alias("suspected_ring"))
    return rings.join(
        scores.select("ring_id", "ring_score", "suspected_ring"), on="ring_id", how="left"
    )
