"""`FoldEnsemble`: the K fold models of one candidate, scoring as their mean.

This is what a candidate *is* once trained out-of-fold, what the registry saves as one version
and loads back, and how unlabelled users are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from graphfraud.model.inputs import GraphInputs
from graphfraud.model.risk import ModelInput, RiskModel


def fold_dir(i: int) -> str:
    return f"fold_{i}"


class FoldEnsemble:
    """The fold models of one candidate kind; `predict` is their mean."""

    def __init__(self, kind: str, members: Sequence[RiskModel]) -> None:
        self.kind = kind
        self.members = list(members)

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        inputs = GraphInputs.of(data)  # the members share the graph's label-free inputs
        scores = np.zeros(inputs.data.num_nodes, dtype=np.float64)
        for member in self.members:
            scores += member.predict(inputs, rows)
        return (scores / max(len(self.members), 1)).astype(np.float32)

    def params(self) -> dict[str, object]:
        return dict(self.members[0].params()) if self.members else {}

    def save(self, directory: Path) -> None:
        for i, member in enumerate(self.members):
            member.save(directory / fold_dir(i))
