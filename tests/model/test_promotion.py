"""The promotion policy on its own: no training, hand-made cards and candidates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from graphfraud.model.base import GraphData
from graphfraud.model.promotion import PROMOTION_TOLERANCE, decide_promotion, select_best
from graphfraud.model.registry import ModelCard

NAN = float("nan")


def _data(features: tuple[str, ...] = ("f0", "f1"), relations: tuple[str, ...] = ("device",)):
    return GraphData(
        user_ids=np.array(["a", "b"], dtype=object),
        x=np.zeros((2, len(features)), dtype=np.float32),
        feature_names=features,
        edge_index=np.zeros((2, 0), dtype=np.int64),
        edge_type=np.zeros(0, dtype=np.int64),
        edge_weight=np.zeros(0, dtype=np.float32),
        relation_names=relations,
        labels=np.array([1, 0], dtype=np.int8),
    )


def _card(auprc: float | None, data: GraphData) -> ModelCard:
    return ModelCard(
        version="gbm-promoted",
        kind="gbm",
        metrics={} if auprc is None else {"auprc": auprc},
        data_fingerprint="0" * 64,
        feature_names=data.feature_names,
        relation_names=data.relation_names,
        params={},
        package_version="0",
        training_seconds=0.0,
        created_at="2026-01-01T00:00:00+00:00",
        members=3,
        files={},
    )


@dataclass(frozen=True)
class _Run:
    kind: str
    auprc: float


def test_tolerance_is_the_largest_drop_that_still_promotes() -> None:
    data = _data()
    current = _card(0.80, data)
    assert decide_promotion(0.80 - PROMOTION_TOLERANCE + 1e-9, data, current).promote
    assert decide_promotion(0.90, data, current).promote
    kept = decide_promotion(0.80 - PROMOTION_TOLERANCE - 1e-3, data, current)
    assert not kept.promote
    assert "below promoted gbm-promoted" in kept.reason
    assert not decide_promotion(0.75, data, current, tolerance=0.01).promote
    assert decide_promotion(0.75, data, current, tolerance=0.06).promote


def test_a_tie_with_the_promoted_model_promotes_the_new_one() -> None:
    data = _data()
    assert decide_promotion(0.8, data, _card(0.8, data)).promote


def test_fallbacks_nothing_promoted_or_a_promoted_model_that_cannot_score() -> None:
    data = _data()
    assert decide_promotion(0.1, data, None).promote  # first model ever
    other_features = _card(0.99, _data(features=("f0", "f9")))
    assert decide_promotion(0.1, data, other_features).promote
    other_relations = _card(0.99, _data(relations=("device", "ip")))
    decision = decide_promotion(0.1, data, other_relations)
    assert decision.promote
    assert "cannot score" in decision.reason
    assert decide_promotion(0.1, data, _card(None, data)).promote  # a card without AUPRC: 0


def test_a_candidate_without_a_finite_auprc_never_replaces_a_usable_model() -> None:
    data = _data()
    assert not decide_promotion(NAN, data, _card(0.5, data)).promote
    assert decide_promotion(NAN, data, None).promote  # nothing to protect: a model beats none


def test_selection_takes_the_best_auprc_and_ties_go_to_the_simpler_candidate() -> None:
    runs = [_Run("gbm", 0.8), _Run("gnn", 0.9), _Run("gnn_stack", 0.85)]
    assert select_best(runs).kind == "gnn"
    tied = [_Run("gbm", 0.9), _Run("gnn", 0.9), _Run("gnn_stack", 0.9)]
    assert select_best(tied).kind == "gbm"
    assert select_best([_Run("gbm", NAN), _Run("gnn", 0.1)]).kind == "gnn"
    assert select_best([_Run("gbm", NAN), _Run("gnn", NAN)]).kind == "gbm"
    with pytest.raises(ValueError, match="at least one"):
        select_best([])


def test_on_the_same_rows_the_comparison_ignores_the_cards_recorded_auprc() -> None:
    """A promoted model whose card boasts 0.99 (a different night's data) but scores 0.60 on
    tonight's rows is beaten by a 0.70 candidate; within the tolerance promotes, beyond keeps."""
    from graphfraud.model.promotion import SameRows

    data = _data()
    boastful = _card(0.99, data)
    won = decide_promotion(0.70, data, boastful, same_rows=SameRows(0.70, 0.60, 400, 40))
    assert won.promote
    assert "on the same 400 validation rows (40 fraud)" in won.reason
    assert won.same_rows is not None
    close = SameRows(0.60 - PROMOTION_TOLERANCE + 1e-9, 0.60, 400, 40)
    assert decide_promotion(0.99, data, _card(0.1, data), same_rows=close).promote
    lost = decide_promotion(0.99, data, _card(0.1, data), same_rows=SameRows(0.50, 0.60, 400, 40))
    assert not lost.promote
    assert "below promoted gbm-promoted's 0.6000 on the same 400" in lost.reason


def test_without_same_rows_the_reason_says_why_and_uses_the_card() -> None:
    data = _data()
    decision = decide_promotion(
        0.7, data, _card(0.8, data), why_not_same_rows="only 3 validation rows it did not train on"
    )
    assert not decision.promote
    assert "only 3 validation rows it did not train on: against its card" in decision.reason


def test_compare_on_rows_needs_both_classes_and_scores_the_same_rows() -> None:
    from graphfraud.model.promotion import MIN_ROWS_PER_CLASS, compare_on_rows

    labels = np.array([1] * 6 + [0] * 6 + [-1] * 3, dtype=np.int8)
    rows = labels >= 0
    perfect = np.where(labels == 1, 0.9, 0.1).astype(np.float32)
    backwards = (1 - perfect).astype(np.float32)
    same = compare_on_rows(labels, perfect, backwards, rows)
    assert same is not None
    assert (same.candidate, same.rows, same.positives) == (1.0, 12, 6)
    assert same.promoted < 0.6
    few = rows.copy()
    few[: 6 - MIN_ROWS_PER_CLASS + 1] = False  # leaves MIN_ROWS_PER_CLASS - 1 fraud rows
    assert compare_on_rows(labels, perfect, backwards, few) is None
