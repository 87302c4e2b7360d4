"""Relation-aware GNN for heterophilous fraud graphs (PyTorch Geometric, exact mini-batches).

One idea per module: `ops` (the sparse neighbour-mean op and layer), `network` (ego / neighbour
separation per relation), `plans` (receptive fields: which rows each layer computes),
`encoding` (inputs through their quantiles to N(0, 1)), `training` (the loop, early stopping),
`model` (`GNNModel`, the `RiskModel` the batch trains). Blending with the GBM is
`model/stack.py`.
"""

from graphfraud.model.gnn.model import GNNModel

__all__ = ["GNNModel"]
