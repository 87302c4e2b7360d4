"""Receptive-field plans: which rows each GNN layer computes, and from which.

Cost follows the labels, not the graph: a training batch is computed exactly on its L-hop
receptive field, so a step costs the same on any graph; only scoring everyone is a full pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
import torch
from torch import Tensor

from graphfraud.model.aggregate import Adjacency
from graphfraud.model.gnn.ops import Adj, adj_tensors


@dataclass(frozen=True)
class Step:
    """One layer of a plan: rows S_l from rows S_{l-1}, every relation in one sparse product.

    `adj` interleaves the relations' row-normalised adjacencies: its row `i·R + k` is row i's
    mean over `relations[k]`, so `adj @ h` viewed as `[|S_l|, R·hidden]` is every relation's
    neighbour mean side by side, with no copy: one product and one transposed product per
    layer, where R of each (and a sum of R gradients into h) cost a sixth of a training step.
    """

    keep: Tensor | None  # S_l's positions in S_{l-1} (None: all nodes)
    adj: Adj
    relations: list[int]


@dataclass(frozen=True)
class Plan:
    """Which rows each layer computes: the whole graph, or only a batch's receptive field.

    Layer l computes rows `S_l` from rows `S_{l-1} ⊇ S_l ∪ N(S_l)`, with the full graph's
    row-normalised adjacency sliced to `S_l × S_{l-1}`, so a batch's logits are exactly what the
    full-graph pass gives them, at the cost of its L-hop neighbourhood only.
    """

    inputs: Tensor | None  # node ids of S_0 (None: all nodes)
    layers: list[Step]
    targets: Tensor | None  # node ids of S_L, sorted (None: all nodes)


def full_plan(adj: Adjacency, layers: int, device: torch.device) -> Plan:
    """Every layer over every node (scoring only: it carries no transposes for a backward)."""
    relations = adj.linked_relations
    step = Step(None, adj_tensors(adj.interleaved, device, grad=False), relations)
    return Plan(None, [step] * layers, None)


def receptive_plan(
    adj: Adjacency,
    targets: npt.NDArray[np.int64],
    layers: int,
    device: torch.device,
    *,
    grad: bool = False,
) -> Plan:
    """The exact computation for `targets` only (training batches with `grad`, validation)."""
    sets = receptive_sets(adj, targets, layers)
    relations = adj.linked_relations
    steps = []
    for rows, cols in zip(sets[1:], sets[:-1], strict=True):
        keep = torch.from_numpy(np.searchsorted(cols, rows)).to(device)
        sliced = _interleaved(adj, rows, cols)
        steps.append(Step(keep, adj_tensors(sliced, device, grad), relations))
    return Plan(torch.from_numpy(sets[0]).to(device), steps, torch.from_numpy(sets[-1]).to(device))


def _interleaved(
    adj: Adjacency, rows: npt.NDArray[np.int64], cols: npt.NDArray[np.int64]
) -> sp.csr_matrix:
    """`adj.interleaved` sliced to `rows` × `cols`, interleaved alike (`Step`)."""
    r = len(adj.linked_relations)
    if not r:
        return sp.csr_matrix((0, len(cols)))
    ids = (rows[:, None] * r + np.arange(r)[None, :]).ravel()
    out: sp.csr_matrix = adj.interleaved[ids][:, cols]
    return out


def receptive_sets(
    adj: Adjacency, targets: npt.NDArray[np.int64], layers: int
) -> list[npt.NDArray[np.int64]]:
    """[S_0, …, S_L]: the sorted node sets each layer reads, S_L = targets."""
    sets = [np.unique(targets)]
    for _ in range(layers):
        rows = sets[-1]
        sets.append(np.union1d(rows, adj.weighted[rows].indices))
    sets.reverse()  # S_0 ⊇ S_1 ⊇ … ⊇ S_L = targets
    return sets


def field_batches(
    adj: Adjacency,
    order: npt.NDArray[np.int64],
    layers: int,
    batch_size: int,
    max_field: int,
) -> list[npt.NDArray[np.int64]]:
    """`order` in equal batches of at most `batch_size` targets, shrunk until a batch's L-hop
    receptive field holds at most `max_field` nodes.

    On a large graph the 2-hop field of a few thousand users is the whole graph, so a step
    would cost a full-graph pass; bounding the field makes a step's cost independent of the
    graph's size. Graphs whose fields already fit keep `batch_size` batches.
    """
    n_batches = max(1, -(-len(order) // batch_size))
    for _ in range(8):  # the field grows sub-linearly in the batch, so a few rounds suffice
        batches = np.array_split(order, n_batches)
        size = len(receptive_sets(adj, batches[0], layers)[0])
        if size <= max_field or n_batches >= len(order):
            break
        n_batches = min(len(order), int(np.ceil(n_batches * size / max_field * 1.1)))
    return batches
