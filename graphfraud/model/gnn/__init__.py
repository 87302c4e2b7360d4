"""Relation-aware GNN for heterophilous fraud graphs (PyTorch Geometric, exact mini-batches).

One idea per module: `ops` (the sparse neighbour-mean op and layer), `network` (ego / neighbour
separation per relation), `plans` (receptive fields: which rows each layer computes),
`encoding` (inputs through their quantiles to N(0, 1)), `training` (the loop, early stopping),
`model` (`GNNModel`, the `RiskModel` the batch trains). Blending with the GBM is
`model/stack.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphfraud.model.gnn.model import GNNModel

__all__ = ["GNNModel"]


def __getattr__(name: str) -> Any:
    """`GNNModel` on first use: importing a submodule (`state`, `encoding`) must not load torch."""
    if name == "GNNModel":
        from graphfraud.model.gnn.model import GNNModel

        return GNNModel
    raise AttributeError(name)
