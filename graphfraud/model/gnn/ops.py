"""The GNN's one message-passing primitive: an evidence-weighted neighbour mean as a CSR product.

Propagation is `torch.sparse` CSR @ dense, so no pyg-lib / torch-sparse is needed and messages
are never materialised per edge.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor
from torch_geometric.nn import MessagePassing

from graphfraud.errors import ArtifactError

Adj = tuple[Tensor, Tensor | None]  # P and (for training) Pᵀ as CSR


def csr_tensor(a: Any, device: torch.device) -> Tensor:
    """A scipy sparse matrix as a torch CSR tensor (float32, sorted indices)."""
    a = sp.csr_matrix(a)
    a.sort_indices()
    return _csr(
        torch.from_numpy(a.indptr.astype(np.int64)).to(device),
        torch.from_numpy(a.indices.astype(np.int64)).to(device),
        torch.from_numpy(a.data.astype(np.float32)).to(device),
        a.shape,
    )


def _csr(crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    with warnings.catch_warnings():
        # torch labels CSR "beta" and warns on every run; the products used here are tested
        # against the full-graph pass, so the warning would only alarm operators.
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        warnings.filterwarnings("ignore", message="Sparse invariant checks are implicitly")
        return torch.sparse_csr_tensor(crow, col, values, size=shape, check_invariants=False)


def csr_product(adj: Tensor, h: Tensor) -> Tensor:
    """`adj @ h` for a CSR `adj`. On CPU through torch's row-parallel reduction kernel: the
    default CSR product goes through MKL and copies its output (1.6x the time of a 1M-user
    full pass, and a transient copy of the [n·R, hidden] result). One thread sums each row in
    index order, so it is deterministic."""
    out: Tensor = torch.sparse.mm(adj, h) if adj.is_cuda else torch.sparse.mm(adj, h, "sum")
    return out


def csr_rows(adj: Tensor, lo: int, hi: int) -> Tensor:
    """Rows `lo:hi` of a CSR tensor, sharing its column indices and values."""
    crow = adj.crow_indices()
    start, end = int(crow[lo]), int(crow[hi])
    return _csr(
        crow[lo : hi + 1] - start,
        adj.col_indices()[start:end],
        adj.values()[start:end],
        (hi - lo, adj.shape[1]),
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
        return csr_product(adj, h)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None]:
        if ctx.adj_t is None:
            raise ArtifactError("this plan was built without gradients (grad=False)")
        return csr_product(ctx.adj_t, grad), None, None


class RelationMeanConv(MessagePassing):  # type: ignore[misc]
    """Evidence-weighted neighbour mean over one relation: `P_r @ h` as one sparse product."""

    def __init__(self) -> None:
        super().__init__(aggr="sum")

    def forward(self, x: Tensor, adj: Adj) -> Tensor:
        out: Tensor = _SparseMean.apply(x, adj[0], adj[1])  # type: ignore[no-untyped-call]
        return out
