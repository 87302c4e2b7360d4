"""`gnn_stack`: a fitted GNN and a fitted GBM, their logits blended.

Their errors differ — the GNN is strongest on rings nobody has labelled yet, the GBM on rings
with labelled members — so the blend beats both. The batch never refits for it: fold k's stack
is GNN_k joined with GBM_k, its GNN share chosen on out-of-fold scores (`train.stack_run`).

Saved as the GNN's files with the GBM's in `gbm/`; the card's params are the GNN's plus
`stack_weight` (the GNN's share) and `gbm` (the GBM's params).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.model.gbm import GBMModel
from graphfraud.model.gnn import GNNModel
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.risk import ModelInput

GBM_DIR = "gbm"


def logit_blend(
    p_gnn: npt.NDArray[np.floating[Any]], p_gbm: npt.NDArray[np.floating[Any]], gnn_weight: float
) -> npt.NDArray[np.float32]:
    """`gnn_weight`·logit(p_gnn) + (1-`gnn_weight`)·logit(p_gbm), back to a probability."""
    q = np.clip(np.stack([p_gnn, p_gbm]).astype(np.float64), 1e-7, 1 - 1e-7)
    z = np.log(q / (1 - q))
    mixed = gnn_weight * z[0] + (1.0 - gnn_weight) * z[1]
    out: npt.NDArray[np.float32] = (1.0 / (1.0 + np.exp(-mixed))).astype(np.float32)
    return out


class StackModel:
    """GNN and GBM on the same inputs, `gnn_weight` on the GNN's logit."""

    kind = "gnn_stack"

    def __init__(self, gnn: GNNModel, gbm: GBMModel, gnn_weight: float = 0.5) -> None:
        self.gnn, self.gbm, self.gnn_weight = gnn, gbm, float(gnn_weight)

    @classmethod
    def from_params(
        cls, params: dict[str, Any], *, device: str = "auto", num_threads: int | None = None
    ) -> StackModel:
        """An unfitted stack from card-style params (the GNN's + `stack_weight` + `gbm`);
        `num_threads` is the GBM's (see `GBMModel`)."""
        gnn_params = {k: v for k, v in params.items() if k not in ("stack", "stack_weight", "gbm")}
        return cls(
            GNNModel(device=device, **gnn_params),
            GBMModel(num_threads=num_threads, **dict(params.get("gbm") or {})),
            float(params.get("stack_weight", 0.5)),
        )

    def fit(self, data: ModelInput, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        inputs = GraphInputs.of(data)
        self.gnn.fit(inputs, train_mask, seed)
        self.gbm.fit(inputs, train_mask, seed)

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        """P(fraud) per node; with `rows`, only those nodes are scored (the rest are 0)."""
        inputs = GraphInputs.of(data)
        prob = logit_blend(
            self.gnn.predict(inputs, rows), self.gbm.predict(inputs, rows), self.gnn_weight
        )
        if rows is not None:
            prob = np.where(rows, prob, np.float32(0.0)).astype(np.float32)
        return prob

    def params(self) -> dict[str, object]:
        return {**self.gnn.params(), "stack_weight": self.gnn_weight, "gbm": self.gbm.params()}

    def save(self, directory: Path) -> None:
        self.gnn.save(directory)
        self.gbm.save(directory / GBM_DIR)

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> StackModel:
        return cls(
            GNNModel.load(directory, params, device=device),
            GBMModel.load(directory / GBM_DIR, dict(params.get("gbm") or {})),
            float(params.get("stack_weight", 0.5)),
        )
