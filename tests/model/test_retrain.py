"""The retrain policy on its own (`model/retrain.py`): a table of cases, no training."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from graphfraud.config import ModelSettings
from graphfraud.model.registry import ModelCard
from graphfraud.model.retrain import Policy, RetrainFacts, decide_retrain

NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
SETTINGS = ModelSettings(retrain_max_age_days=7, retrain_psi=0.25, retrain_new_labels=100)


def _card(days_old: float, n_labelled: int = 1000) -> ModelCard:
    return ModelCard(
        version="gbm-promoted",
        kind="gbm",
        metrics={"auprc": 0.8, "n_labelled": float(n_labelled)},
        data_fingerprint="0" * 64,
        feature_names=("f0",),
        relation_names=("device",),
        params={},
        package_version="0",
        training_seconds=0.0,
        created_at=(NOW - timedelta(days=days_old)).isoformat(timespec="seconds"),
        members=3,
        files={},
    )


FRESH = _card(3)
CASES = [
    # policy, promoted, facts, train?, words the reason must hold
    ("always", FRESH, RetrainFacts(1012, 0.01, "f0"), True, "policy always"),
    ("always", None, RetrainFacts(1012), True, "policy always"),
    ("never", FRESH, RetrainFacts(5000, 0.9, "f0"), False, "policy never; model 3.0 days old"),
    ("never", None, RetrainFacts(1012), True, "no promoted model"),
    ("never", FRESH, RetrainFacts(1012, mismatch="missing features ['f1']"), True, "cannot"),
    ("auto", None, RetrainFacts(1012), True, "no promoted model"),
    ("auto", FRESH, RetrainFacts(1012, 0.04, "f0"), False, "model 3.0 days old, max PSI 0.04"),
    ("auto", FRESH, RetrainFacts(1012, 0.04, "f0"), False, "12 new labels"),
    ("auto", FRESH, RetrainFacts(1012), False, "no previous run to measure drift"),
    ("auto", _card(7), RetrainFacts(1012, 0.04), True, "model 7.0 days old ≥ 7"),
    ("auto", _card(6.9), RetrainFacts(1012, 0.04), False, "model 6.9 days old"),
    ("auto", FRESH, RetrainFacts(1012, 0.25, "n_ip"), True, "n_ip PSI 0.25 ≥ 0.25"),
    ("auto", FRESH, RetrainFacts(1012, 0.2499, "n_ip"), False, "max PSI 0.25 (n_ip)"),
    ("auto", FRESH, RetrainFacts(1100), True, "100 new labels ≥ 100"),
    ("auto", FRESH, RetrainFacts(1099), False, "99 new labels"),
    ("auto", FRESH, RetrainFacts(900), False, "0 new labels"),  # fewer labels: not new ones
    ("auto", _card(30), RetrainFacts(2000, 0.5, "x"), True, "30.0 days old ≥ 7; x PSI 0.50"),
    ("auto", FRESH, RetrainFacts(1012, mismatch="extra features ['f9']"), True, "cannot score"),
]


@pytest.mark.parametrize(("policy", "promoted", "facts", "train", "words"), CASES)
def test_decision_table(
    policy: Policy, promoted: ModelCard | None, facts: RetrainFacts, train: bool, words: str
) -> None:
    decision = decide_retrain(policy, promoted, facts, SETTINGS, NOW)
    assert decision.train is train
    assert words in decision.reason
    assert decision.summary().startswith("retrain: yes" if train else "retrain: skipped")


def test_the_summary_line_says_what_was_looked_at() -> None:
    decision = decide_retrain("auto", FRESH, RetrainFacts(1012, 0.04, "n_ip"), SETTINGS, NOW)
    assert decision.summary() == (
        "retrain: skipped (model 3.0 days old, max PSI 0.04 (n_ip), 12 new labels)"
    )
    assert decision.as_dict() == {"policy": "auto", "train": False, "reason": decision.reason}
