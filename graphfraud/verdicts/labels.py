"""Verdicts as labels for the next batch.

Per user, the newest user-level verdict wins; without one, the newest verdict on a ring the user
was a member of when it was recorded. `confirmed_fraud` sets label 1, `legit` sets 0 (reviewed,
not fraud: it clears a fraud label from the input), `needs_review` leaves the input's label.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from graphfraud.verdicts.store import Outcome, Subject

_LABEL_OF = {Outcome.CONFIRMED_FRAUD.value: 1, Outcome.LEGIT.value: 0}


@dataclass(frozen=True)
class VerdictLabels:
    users: pl.DataFrame  # the input users with labels overridden
    counts: dict[str, int]  # what the manifest records


def verdict_labels(verdicts: pl.DataFrame) -> pl.DataFrame:
    """user_id → the winning verdict's outcome and label (null for needs_review)."""
    per_user = verdicts.explode("members").rename({"members": "user_id"}).drop_nulls("user_id")
    return (
        per_user.with_columns(user_level=pl.col("subject") == Subject.USER.value)
        .sort(["user_id", "user_level", "id"], descending=[False, True, True])
        .unique("user_id", keep="first", maintain_order=True)
        .select(
            "user_id",
            "outcome",
            verdict_label=pl.col("outcome").replace_strict(
                _LABEL_OF, default=None, return_dtype=pl.Int64
            ),
        )
    )


def apply_verdicts(users: pl.DataFrame, verdicts: pl.DataFrame) -> VerdictLabels:
    """`users` (with a `label` column) with each user's winning verdict applied."""
    winners = verdict_labels(verdicts)
    label_type = users.schema["label"]
    joined = users.join(winners, on="user_id", how="left")
    new_label = (
        pl.when(pl.col("verdict_label").is_not_null())
        .then(pl.col("verdict_label"))
        .otherwise(pl.col("label").cast(pl.Int64))
    )
    changed = joined.select(
        (new_label.is_not_null() & (new_label != pl.col("label").cast(pl.Int64)).fill_null(True))
        .sum()
        .alias("n")
    ).item()
    out = joined.with_columns(label=new_label.cast(label_type)).drop("outcome", "verdict_label")
    matched = joined.filter(pl.col("outcome").is_not_null())
    counts = {
        "verdicts": verdicts.height,
        "users_with_verdict": matched.height,
        "labelled_fraud": int((matched["outcome"] == Outcome.CONFIRMED_FRAUD.value).sum()),
        "labelled_legit": int((matched["outcome"] == Outcome.LEGIT.value).sum()),
        "needs_review": int((matched["outcome"] == Outcome.NEEDS_REVIEW.value).sum()),
        "labels_changed": int(changed),
        "unknown_users": winners.height - matched.height,
        "last_verdict_id": int(verdicts["id"].max() or 0) if verdicts.height else 0,  # type: ignore[arg-type]
    }
    return VerdictLabels(out.select(users.columns), counts)
