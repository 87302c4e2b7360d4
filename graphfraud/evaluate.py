"""Evaluate a run against a truth file: user ranking quality and ring recovery.

Users: only those whose label was NOT given to the run (the model never saw their truth) —
ROC-AUC, average precision, precision at K (K = number of fraudsters among them).
Rings: recall = share of true rings (≥ 3 members) matched by a predicted ring with Jaccard ≥ 0.5;
precision = of the K highest-scored predicted rings of ≥ 3 (K = number of true rings of ≥ 3), the
share whose members are mostly fraud; and the largest predicted ring over the largest true ring
(hubs gluing rings together push it up).
Communities vs suspected rings: the share of honest users in any community and in a suspected
ring (`suspected_ring`), and the ring recall / precision of the suspected rings alone (recall
as above; precision = share of suspected rings of ≥ 3 whose members are mostly fraud).
Ring recall per kind of planted ring (`recall_by_kind`), when the truth names kinds (`ring_kind`,
as the synthetic generator writes it): the misses hide in one kind (camouflaged, sparse rings)
while the overall recall looks fine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from graphfraud.errors import InputDataError
from graphfraud.ingest.read import read_table
from graphfraud.metrics import average_precision as _average_precision
from graphfraud.metrics import roc_auc
from graphfraud.rundir import RunDir
from graphfraud.schema import MEMBERS_FILE, RING_SCORES_FILE, SCORES_FILE, USERS_FILE

MIN_RING = 3
MATCH_JACCARD = 0.5


@dataclass(frozen=True)
class Evaluation:
    eval_users: int
    eval_fraud: int
    roc_auc: float
    average_precision: float
    precision_at_k: float
    true_rings: int
    ring_recall: float
    ring_precision: float
    largest_predicted_ring: int
    largest_true_ring: int
    largest_ring_ratio: float
    honest_in_community: float = float("nan")
    honest_in_suspected: float = float("nan")
    suspected_rings: int = 0
    suspected_recall: float = float("nan")
    suspected_precision: float = float("nan")
    recall_by_kind: dict[str, float] = field(default_factory=dict)  # ring_kind → ring recall

    def as_dict(self) -> dict[str, float | int | dict[str, float]]:
        return asdict(self)

    def flat(self) -> dict[str, float | int]:
        """`as_dict` with the per-kind recalls as `ring_recall[<kind>]` entries (tables)."""
        out: dict[str, float | int] = {
            k: v for k, v in self.as_dict().items() if not isinstance(v, dict)
        }
        out.update({f"ring_recall[{k}]": v for k, v in sorted(self.recall_by_kind.items())})
        return out


def load_truth(path: Path) -> pl.DataFrame:
    """The truth file (CSV or Parquet): `user_id, is_fraud[, ring_id[, ring_kind]]`."""
    table = read_table(path, role="truth")
    if table.malformed.height:  # a truth row dropped would bias every metric, so none is
        first = table.malformed.row(0, named=True)
        raise InputDataError(
            f"{table.malformed.height} malformed row(s), the first on line {first['input_line']}"
            f" ({first['reason']})",
            file=str(path),
        )
    raw = table.rows
    if "is_fraud" not in raw.columns:
        raise InputDataError("missing required column", file=str(path), column="is_fraud")
    ring = pl.col("ring_id") if "ring_id" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    kind = pl.col("ring_kind") if "ring_kind" in raw.columns else pl.lit(None, dtype=pl.Utf8)
    return raw.select(
        pl.col("user_id").cast(pl.Utf8),
        pl.col("is_fraud")
        .cast(pl.Utf8)
        .str.strip_chars()
        .cast(pl.Float64, strict=False)
        .fill_null(0)
        .cast(pl.Int8),
        ring.cast(pl.Utf8).replace("", None).alias("ring_id"),
        kind.cast(pl.Utf8).replace("", None).alias("ring_kind"),
    )


def _best_match(predicted: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """`t, nt, j` per true ring: its size and the best Jaccard of any predicted ring with it
    (null when no predicted ring holds a member)."""
    true_m = truth.filter(pl.col("ring_id").is_not_null()).select(
        "user_id", pl.col("ring_id").alias("t")
    )
    t_size = true_m.group_by("t").agg(pl.len().alias("nt"))
    pred_m = predicted.select("user_id", pl.col("ring_id").alias("p"))
    p_size = pred_m.group_by("p").agg(pl.len().alias("np"))
    inter = pred_m.join(true_m, on="user_id").group_by("p", "t").agg(pl.len().alias("i"))
    jac = (
        inter.join(p_size, on="p")
        .join(t_size, on="t")
        .with_columns((pl.col("i") / (pl.col("np") + pl.col("nt") - pl.col("i"))).alias("j"))
    )
    best = jac.group_by("t").agg(pl.col("j").max())
    return t_size.join(best, on="t", how="left")


def recall_by_kind(predicted: pl.DataFrame, truth: pl.DataFrame) -> dict[str, float]:
    """Ring recall (true rings ≥ 3 matched with Jaccard ≥ 0.5) per `ring_kind` of the truth;
    empty when the truth names no kinds."""
    if "ring_kind" not in truth.columns:
        return {}
    kinds = (
        truth.filter(pl.col("ring_id").is_not_null() & pl.col("ring_kind").is_not_null())
        .group_by("ring_id")
        .agg(pl.col("ring_kind").first())
        .rename({"ring_id": "t"})
    )
    per = (
        _best_match(predicted, truth)
        .filter(pl.col("nt") >= MIN_RING)
        .join(kinds, on="t")
        .group_by("ring_kind")
        .agg((pl.col("j").fill_null(0) >= MATCH_JACCARD).mean().alias("recall"))
        .sort("ring_kind")
    )
    return dict(zip(per["ring_kind"].to_list(), per["recall"].to_list(), strict=True))


def _fraud_shares(members: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
    """`ring_id, fraud_share` of each predicted ring of at least MIN_RING members (a member
    missing from the truth counts as honest): a ring is precise when most of it is fraud."""
    return (
        members.join(truth.select("user_id", "is_fraud"), on="user_id", how="left")
        .group_by("ring_id")
        .agg(pl.len().alias("n"), pl.col("is_fraud").fill_null(0).mean().alias("fraud_share"))
        .filter(pl.col("n") >= MIN_RING)
        .select("ring_id", "fraud_share")
    )


def ring_recovery(
    predicted: pl.DataFrame, truth: pl.DataFrame, ring_scores: pl.DataFrame
) -> tuple[int, float, float, int, int]:
    """(true rings ≥ 3, recall, precision, largest predicted, largest true)."""
    best = _best_match(predicted, truth)
    t_size = best.select("t", "nt")
    big_true = best.filter(pl.col("nt") >= MIN_RING)
    pred_m = predicted.select("user_id", pl.col("ring_id").alias("p"))
    p_size = pred_m.group_by("p").agg(pl.len().alias("np"))
    matched = big_true.filter(pl.col("j") >= MATCH_JACCARD).height
    recall = matched / big_true.height if big_true.height else float("nan")
    k = big_true.height
    purity = (
        _fraud_shares(predicted, truth)
        .join(ring_scores.select("ring_id", "ring_score"), on="ring_id", how="left")
        .sort(["ring_score", "ring_id"], descending=[True, False], nulls_last=True)
        .head(k)
    )
    precision = float((purity["fraud_share"] > 0.5).mean()) if purity.height else float("nan")  # type: ignore[arg-type]
    largest_p = int(p_size["np"].max() or 0) if p_size.height else 0  # type: ignore[arg-type]
    largest_t = int(t_size["nt"].max() or 0) if t_size.height else 0  # type: ignore[arg-type]
    return k, recall, precision, largest_p, largest_t


def evaluate_run(run_dir: Path, truth_path: Path) -> Evaluation:
    """Score a finished run directory against the truth file."""
    run = RunDir(run_dir)
    truth = load_truth(truth_path)
    scores = run.read(SCORES_FILE, columns=["user_id", "score"])
    given = run.read(USERS_FILE, columns=["user_id", "label"])
    unseen = (
        given.filter(pl.col("label").is_null())
        .join(scores, on="user_id")
        .join(truth.select("user_id", "is_fraud"), on="user_id")
    )
    y = unseen["is_fraud"].to_numpy()
    s = unseen["score"].to_numpy()
    both = len(np.unique(y)) == 2
    auc = roc_auc(y, s) if both else float("nan")
    ap = _average_precision(y, s) if both else float("nan")
    k = int(y.sum())
    top = np.argsort(-s, kind="stable")[:k]
    p_at_k = float(y[top].mean()) if k else float("nan")
    members = run.read(MEMBERS_FILE)
    rings = run.read(RING_SCORES_FILE)
    n_true, recall, precision, largest_p, largest_t = ring_recovery(members, truth, rings)
    suspected = suspected_recovery(members, truth, rings)
    return Evaluation(
        eval_users=len(y),
        eval_fraud=k,
        roc_auc=auc,
        average_precision=ap,
        precision_at_k=p_at_k,
        true_rings=n_true,
        ring_recall=recall,
        ring_precision=precision,
        largest_predicted_ring=largest_p,
        largest_true_ring=largest_t,
        largest_ring_ratio=largest_p / largest_t if largest_t else float("nan"),
        **suspected,  # type: ignore[arg-type]  # fields of these names and types
        recall_by_kind=recall_by_kind(members, truth),
    )


def precision_recall(truth: pl.Series, scores: pl.Series) -> pl.DataFrame:
    """The precision-recall curve of `scores` against 0/1 `truth`: `threshold, precision,
    recall` from the highest threshold down (scikit-learn's points; the last has recall 0 and no
    threshold, so it is dropped). Its area is `average_precision(truth, scores)`."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(truth.to_numpy(), scores.to_numpy())
    return pl.DataFrame(
        {"threshold": thresholds, "precision": precision[:-1], "recall": recall[:-1]}
    ).reverse()


def average_precision(truth: pl.Series, scores: pl.Series) -> float:
    """Average precision (the area under the precision-recall curve) of `scores`."""
    return _average_precision(truth.to_numpy(), scores.to_numpy())


def suspected_recovery(
    members: pl.DataFrame, truth: pl.DataFrame, rings: pl.DataFrame
) -> dict[str, float | int]:
    """Honest users in a community vs in a suspected ring; recall and precision of the
    suspected rings (empty when the run predates suspected rings)."""
    if "suspected_ring" not in rings.columns:
        return {}
    flagged = rings.filter(pl.col("suspected_ring").fill_null(False)).select("ring_id")
    honest = truth.filter(pl.col("is_fraud") == 0).select("user_id")
    in_any = honest.join(members, on="user_id", how="semi").height
    in_suspected = honest.join(
        members.join(flagged, on="ring_id", how="semi"), on="user_id", how="semi"
    ).height
    kept = members.join(flagged, on="ring_id", how="semi")
    _, recall, _, _, _ = ring_recovery(kept, truth, rings)
    purity = _fraud_shares(kept, truth)
    return {
        "honest_in_community": in_any / honest.height if honest.height else float("nan"),
        "honest_in_suspected": in_suspected / honest.height if honest.height else float("nan"),
        "suspected_rings": flagged.height,
        "suspected_recall": recall,
        "suspected_precision": float((purity["fraud_share"] > 0.5).mean())  # type: ignore[arg-type]
        if purity.height
        else float("nan"),
    }
