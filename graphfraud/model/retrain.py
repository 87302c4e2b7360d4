"""Whether a night trains its models or scores with the promoted one (`model.retrain`).

* `always`: train every night (the candidates compete, the pick is promoted by
  `model/promotion.py`).
* `never`: score with the promoted model; train only when none is promoted or it cannot score
  tonight's feature set (a model that cannot score is no model), and say so.
* `auto`: train when any of these holds, else score with the promoted model:
  the promoted model is `retrain_max_age_days` old; a feature's PSI against the previous run
  (`report/drift.py`) reaches `retrain_psi`; `retrain_new_labels` more users are labelled than
  it trained on (tonight's labelled users minus its card's `n_labelled`: a relabelled user is
  not counted). Without a previous run there is no drift to measure; age and labels decide.

`decide_retrain` is a pure function of those facts, so the table of cases is a unit test; the
pipeline gathers the facts and records the decision (`manifest.model.retrain`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from graphfraud.config import ModelSettings
from graphfraud.model.registry import ModelCard

Policy = Literal["auto", "always", "never"]


@dataclass(frozen=True)
class RetrainFacts:
    """What the policy looks at. `max_psi` is None without a previous run to compare with."""

    n_labelled: int
    max_psi: float | None = None
    drifted: str | None = None  # the feature with `max_psi`
    mismatch: str | None = None  # why the promoted model cannot score tonight, if it cannot


@dataclass(frozen=True)
class RetrainDecision:
    """Train or not, and why in one line (`retrain: skipped (model 3.0 days old, …)`)."""

    policy: Policy
    train: bool
    reason: str

    def summary(self) -> str:
        return f"retrain: {'yes' if self.train else 'skipped'} ({self.reason})"

    def as_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "train": self.train, "reason": self.reason}


def model_age_days(card: ModelCard, now: datetime) -> float:
    """Days since `card` was trained (its `created_at`)."""
    created = datetime.fromisoformat(card.created_at)
    return max(0.0, (now - created).total_seconds() / 86400)


def new_labels(card: ModelCard, n_labelled: int) -> int:
    return max(0, n_labelled - int(card.metrics.get("n_labelled", 0)))


def decide_retrain(
    policy: Policy,
    promoted: ModelCard | None,
    facts: RetrainFacts,
    settings: ModelSettings,
    now: datetime,
) -> RetrainDecision:
    """The policy's decision for tonight (see the module docstring)."""
    if policy == "always":
        return RetrainDecision(policy, True, "policy always")
    if promoted is None:
        return RetrainDecision(policy, True, f"no promoted model to score with (policy {policy})")
    if facts.mismatch is not None:
        return RetrainDecision(
            policy, True, f"promoted {promoted.version} cannot score tonight: {facts.mismatch}"
        )
    age = model_age_days(promoted, now)
    labels = new_labels(promoted, facts.n_labelled)
    psi_text = (
        "no previous run to measure drift"
        if facts.max_psi is None
        else f"max PSI {_psi(facts.max_psi)}" + (f" ({facts.drifted})" if facts.drifted else "")
    )
    state = f"model {age:.1f} days old, {psi_text}, {labels} new labels"
    if policy == "never":
        return RetrainDecision(policy, False, f"policy never; {state}")
    triggers = []
    if age >= settings.retrain_max_age_days:
        triggers.append(f"model {age:.1f} days old ≥ {settings.retrain_max_age_days:g}")
    if facts.max_psi is not None and facts.max_psi >= settings.retrain_psi:
        triggers.append(
            f"{facts.drifted or 'a feature'} PSI {_psi(facts.max_psi)} ≥ {settings.retrain_psi:g}"
        )
    if labels >= settings.retrain_new_labels:
        triggers.append(f"{labels} new labels ≥ {settings.retrain_new_labels}")
    if triggers:
        return RetrainDecision(policy, True, "; ".join(triggers))
    return RetrainDecision(policy, False, state)


def _psi(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{value:.2f}"
