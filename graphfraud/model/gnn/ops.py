"""The GNN's one message-passing primitive: an evidence-weighted neighbour mean as a CSR product.

Propagation is `torch.sparse` CSR @ dense (via PyG's `spmm`), so no pyg-lib / torch-sparse is
needed and messages are never materialised per edge.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import spmm

from graphfraud.errors import ArtifactError

Adj = tuple[Tensor, Tensor | None]  # P and (for training) Pᵀ as CSR


def csr_tensor(a: Any, device: torch.device) -> Tensor:
    """A scipy sparse matrix as a torch CSR tensor (float32, sorted indices)."""
    a = sp.csr_matrix(a)
    a.sort_indices()
    with warnings.catch_warnings():
        # torch labels CSR "beta" and warns on every run; the products used here are tested
        # against the full-graph pass, so the warning would only alarm operators.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        return torch.sparse_csr_tensor(
            torch.from_numpy(a.indptr.astype(np.int64)),
            torch.from_numpy(a.indices.astype(np.int64)),
            torch.from_numpy(a.data.astype(np.float32)),
            size=a.shape,
            device=device,
            check_invariants=False,
        )


def adj_tensors(a: Any, device: torch.device, grad: bool) -> Adj:
    """P, plus Pᵀ only when a backward pass will need it."""
    return csr_tensor(a, device), csr_tensor(a.T, device) if grad else None


class _SparseMean(torch.autograd.Function):
    """`P @ h` with the gradient `Pᵀ @ g` from a precomputed CSR transpose.

    torch's own CSR backward transposes P on every step, which made an epoch ~5x slower. Plans
    that are only evaluated (validation, scoring) carry no transpose.
    """

    @staticmethod
    def forward(ctx: Any, h: Tensor, adj: Tensor, adj_t: Tensor | None) -> Tensor:
        ctx.adj_t = adj_t
        out: Tensor = spmm(adj, h, reduce="sum")
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        if ctx.adj_t is None:
            raise ArtifactError("this plan was built without gradients (grad=False)")
        return spmm(ctx.adj_t, grad, reduce="sum"), None, None


class RelationMeanConv(MessagePassing):  # type: ignore[misc]
    """Evidence-weighted neighbour mean over one relation: `P_r @ h` as one sparse product."""

    def __init__(self) -> None:
        super().__init__(aggr="sum")

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        out: Tensor = _SparseMean.apply(x, adj[0], adj[1])  # type: ignore[no-untyped-call]
        return out
