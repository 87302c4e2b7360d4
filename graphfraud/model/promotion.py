"""Which model scores: the night's pick among its candidates, and whether it is promoted.

**Selection** (`select_best`): the candidate with the highest out-of-fold AUPRC; a tie goes to
the earlier, simpler candidate (`gbm` before `gnn` before `gnn_stack`); a candidate without a
finite AUPRC is picked only when no candidate has one.

**Promotion** (`decide_promotion`): the pick replaces the promoted model when
* nothing is promoted yet, or the promoted model cannot score this data (it was trained on
  another feature set or other relations) — the fallbacks: a model that cannot score is no
  model; or
* it is not worse than the promoted model **on the same validation rows**: the pick's
  out-of-fold rows whose label the promoted model did not train on (new labels, changed
  labels), both models scored with the same inputs (each row's fold labels hidden from the
  label aggregates, as in the pick's own out-of-fold pass; `promoted_out_of_fold`). Its AUPRC
  there must be no worse than the promoted model's minus `PROMOTION_TOLERANCE` (a tie
  promotes: the newer model has seen newer data). Rows the promoted model trained on are left
  out because it would score them in-sample, flattered.
* When those rows hold fewer than `MIN_ROWS_PER_CLASS` of either class (the same labels as the
  night the promoted model trained, or its training run is not at hand to tell), the pick's
  AUPRC is compared with the promoted card's recorded one instead, and the reason says so. A
  promoted card without an AUPRC counts as 0.

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

import numpy as np
import numpy.typing as npt

from graphfraud.metrics import average_precision
from graphfraud.model.base import GraphData
from graphfraud.model.ensemble import FoldEnsemble
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.registry import ModelCard
from graphfraud.model.risk import ModelInput

PROMOTION_TOLERANCE = 0.02
MIN_ROWS_PER_CLASS = 5


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
    """The decision and why (recorded in the run's manifest and the registry's history);
    `same_rows` when both models were compared on the same validation rows."""

    promote: bool
    reason: str
    same_rows: SameRows | None = None


@dataclass(frozen=True)
class SameRows:
    """Both models' AUPRC on the same validation rows (`rows` of them, `positives` fraud)."""

    candidate: float
    promoted: float
    rows: int
    positives: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "candidate_auprc": self.candidate,
            "promoted_auprc": self.promoted,
            "rows": self.rows,
            "positives": self.positives,
        }


def promoted_out_of_fold(
    model: FoldEnsemble,
    data: ModelInput,
    fold_ids: npt.NDArray[np.int64],
    rows: npt.NDArray[np.bool_],
) -> npt.NDArray[np.float32]:
    """The promoted `model`'s score of each of `rows` (labelled, `fold_ids >= 0`) with the
    inputs the candidate's fold model saw: that fold's labels hidden from the label aggregates.
    NaN elsewhere."""
    inputs = GraphInputs.of(data)
    labelled = fold_ids >= 0
    out = np.full(inputs.data.num_nodes, np.nan, dtype=np.float32)
    for f in np.unique(fold_ids[rows & labelled]):
        held = rows & (fold_ids == f)
        hidden = inputs.with_visible_labels(labelled & (fold_ids != f))
        out[held] = model.predict(hidden, held)[held]
    return out


def compare_on_rows(
    labels: npt.NDArray[np.int8],
    candidate: npt.NDArray[np.float32],
    promoted: npt.NDArray[np.float32],
    rows: npt.NDArray[np.bool_],
) -> SameRows | None:
    """AUPRC of both score vectors on `rows`; None with fewer than `MIN_ROWS_PER_CLASS` of a
    class there (too few to tell two models apart)."""
    y = labels[rows]
    positives = int((y == 1).sum())
    if min(positives, int((y == 0).sum())) < MIN_ROWS_PER_CLASS:
        return None
    return SameRows(
        average_precision(y, candidate[rows]),
        average_precision(y, promoted[rows]),
        int(rows.sum()),
        positives,
    )


def decide_promotion(
    auprc: float,
    data: GraphData,
    current: ModelCard | None,
    *,
    tolerance: float = PROMOTION_TOLERANCE,
    same_rows: SameRows | None = None,
    why_not_same_rows: str = "",
) -> Promotion:
    """Should a model with out-of-fold `auprc` on `data` replace `current` (the promoted one)?

    With `same_rows` the comparison is on those rows; without, against the card's recorded
    AUPRC, and `why_not_same_rows` goes into the reason."""
    if current is None:
        return Promotion(True, "nothing promoted yet")
    if (current.feature_names, current.relation_names) != (
        data.feature_names,
        data.relation_names,
    ):
        return Promotion(True, f"promoted {current.version} cannot score this feature set")
    if not math.isfinite(auprc):
        return Promotion(False, "no finite out-of-fold AUPRC")
    if same_rows is not None:
        on = f"on the same {same_rows.rows} validation rows ({same_rows.positives} fraud)"
        mine, theirs = same_rows.candidate, same_rows.promoted
        if mine < theirs - tolerance:
            return Promotion(
                False,
                f"AUPRC {mine:.4f} is more than {tolerance} below promoted {current.version}'s "
                f"{theirs:.4f} {on}",
                same_rows,
            )
        return Promotion(
            True, f"AUPRC {mine:.4f} within {tolerance} of or above {theirs:.4f} {on}", same_rows
        )
    bar = current.metrics.get("auprc", 0.0)
    if not math.isfinite(bar):
        bar = 0.0
    note = f" ({why_not_same_rows}: against its card)" if why_not_same_rows else ""
    if auprc < bar - tolerance:
        return Promotion(
            False,
            f"AUPRC {auprc:.4f} is more than {tolerance} below promoted "
            f"{current.version}'s {bar:.4f}{note}",
        )
    return Promotion(True, f"AUPRC {auprc:.4f} within {tolerance} of or above {bar:.4f}{note}")
