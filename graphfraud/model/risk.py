"""What every risk model promises: the `RiskModel` protocol and scores at the base rate.

Training, the fold ensemble, stacking and the registry are typed against `RiskModel`, never a
concrete class, so a new kind is one class plus one line in `model/kinds.py`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import numpy.typing as npt

from graphfraud.model.base import GraphData
from graphfraud.model.inputs import GraphInputs

# What a model reads: a bare `GraphData`, or `GraphInputs` to share the label-free inputs (the
# adjacency, neighbour aggregates, encoded columns) between folds, candidates and scoring calls.
ModelInput = GraphData | GraphInputs


class RiskModel(Protocol):
    """A trainable user-risk model.

    `fit` sees labels only where `train_mask` is true (callers also hide the others from the
    inputs, `GraphInputs.with_visible_labels`). `predict` gives P(fraud) for every node in node
    order, or with `rows` for those nodes only (the others are 0). `save` writes the fitted
    weights into a directory; `load` reads them back with the `params()` saved beside them and
    must not run code from the files (the registry's trust rule).
    """

    kind: str

    def fit(self, data: ModelInput, train_mask: npt.NDArray[np.bool_], seed: int) -> None: ...

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]: ...

    def params(self) -> dict[str, object]: ...

    def save(self, directory: Path) -> None: ...

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> Self: ...


def balanced_to_prior(p: npt.NDArray[Any], pos_rate: float) -> npt.NDArray[np.float32]:
    """Undo class balancing: a model trained 50/50 reports odds inflated by (1-π)/π.

    Ranking is unchanged; the scores become probabilities at the training base rate π again,
    which is what downstream ring scoring and analysts read.
    """
    q: npt.NDArray[np.float64] = np.clip(p.astype(np.float64), 1e-7, 1 - 1e-7)
    odds = q / (1 - q) * (pos_rate / (1 - pos_rate))
    out: npt.NDArray[np.float32] = (odds / (1 + odds)).astype(np.float32)
    return out
