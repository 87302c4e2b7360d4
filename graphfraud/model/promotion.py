"""Which model scores: the night's pick among its candidates, and whether it is promoted.

**Selection** (`select_best`): the candidate with the highest out-of-fold AUPRC; a tie goes to
the earlier, simpler candidate (`gbm` before `gnn` before `gnn_stack`); a candidate without a
finite AUPRC is picked only when no candidate has one.

**Promotion** (`decide_promotion`): the pick replaces the promoted model when
* nothing is promoted yet, or the promoted model cannot score this data (it was trained on
  another feature set or other relations) — the fallbacks: a model that cannot score is no
  model; or
* its AUPRC is no worse than the promoted model's recorded AUPRC minus `PROMOTION_TOLERANCE`
  (a tie promotes: the newer model has seen newer data). A promoted card without an AUPRC
  counts as 0.

A bigger drop usually means broken labels or features: the night's scores are still returned
(tagged with the new version) but the promoted model stays, and a human decides with
`graphfraud models promote|rollback`. A pick without a finite AUPRC never replaces a promoted
model that can score the data: nothing fails open.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from graphfraud.model.base import GraphData
from graphfraud.model.registry import ModelCard

PROMOTION_TOLERANCE = 0.02


class Scored(Protocol):
    """What selection reads of a candidate."""

    @property
    def auprc(self) -> float: ...


C = TypeVar("C", bound=Scored)


def select_best(runs: Sequence[C]) -> C:
    """Highest out-of-fold AUPRC; ties (and all-NaN) go to the earliest candidate."""
    if not runs:
        raise ValueError("select_best needs at least one candidate")

    def rank(i: int) -> tuple[float, int]:
        auprc = runs[i].auprc
        return (auprc if math.isfinite(auprc) else -1.0, -i)

    return runs[max(range(len(runs)), key=rank)]


@dataclass(frozen=True)
class Promotion:
    """The decision and why (recorded in the run's manifest)."""

    promote: bool
    reason: str


def decide_promotion(
    auprc: float,
    data: GraphData,
    current: ModelCard | None,
    *,
    tolerance: float = PROMOTION_TOLERANCE,
) -> Promotion:
    """Should a model with out-of-fold `auprc` on `data` replace `current` (the promoted one)?"""
    if current is None:
        return Promotion(True, "nothing promoted yet")
    if (current.feature_names, current.relation_names) != (
        data.feature_names,
        data.relation_names,
    ):
        return Promotion(True, f"promoted {current.version} cannot score this feature set")
    if not math.isfinite(auprc):
        return Promotion(False, "no finite out-of-fold AUPRC")
    bar = current.metrics.get("auprc", 0.0)
    if not math.isfinite(bar):
        bar = 0.0
    if auprc < bar - tolerance:
        return Promotion(
            False,
            f"AUPRC {auprc:.4f} is more than {tolerance} below promoted "
            f"{current.version}'s {bar:.4f}",
        )
    return Promotion(True, f"AUPRC {auprc:.4f} within {tolerance} of or above {bar:.4f}")
