"""The relation-aware network: ego / neighbour separation per relation, residual, LayerNorm.

Fraudsters camouflage by linking to honest users, so a node's own representation must not be
blurred into its neighbours' (GraphSAGE with a root weight, R-GCN weights per link kind;
Platonov et al. 2023: ``-sep`` models win on Tolokers). Label features are ego-only: they go
straight to the head and are never propagated, since a neighbour's label rate contains this
node's own label.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from typing import cast

import numpy as np
import torch
from torch import Tensor, nn

from graphfraud.model.gnn.ops import RelationMeanConv, csr_rows
from graphfraud.model.gnn.plans import Plan, Step

# Nodes per chunk of a full-graph layer: its every-relation means are [chunk·R, hidden], a few MB
# that the allocator reuses, where all 1M nodes' at once were 1 GB faulted in afresh per layer.
FULL_PASS_CHUNK = 16_384


class Dropout(nn.Module):
    """`nn.Dropout` whose CPU masks come from numpy's PCG64, seeded from torch's generator.

    torch's CPU `bernoulli_` draws ~40M numbers a second: a seventh of a training step at 100k
    users went to dropout masks. numpy's generator gives the same keep rate (to 2⁻¹⁶, scaled to
    stay unbiased) about ten times faster, and is as deterministic for a fixed seed.
    """

    LEVELS = 1 << 16

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p
        self._cut = round(p * self.LEVELS)  # drop a unit when its 16-bit draw is below this
        self._rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self._cut == 0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        draws = np.frombuffer(self._rng.bytes(2 * x.numel()), dtype=np.uint16)
        keep = torch.from_numpy((draws >= self._cut).reshape(x.shape))
        scale = self.LEVELS / (self.LEVELS - self._cut)
        return x * keep.to(x.dtype).mul_(scale)


class RelationalSepNet(nn.Module):
    """h ← h + Dropout(ReLU(LN(W_self h + Σ_r W_r · mean_r(h)))); head sees [h_L, label feats].

    `W_r = Σ_b a_rb V_b` (R-GCN basis decomposition, Schlichtkrull et al. 2018) when there are
    more relations than `bases`: the dense products, which dominate the cost at 1M users, drop
    from R+1 to bases+1 per layer while every relation keeps its own learned mix.
    """

    def __init__(
        self,
        in_prop: int,
        in_label: int,
        hidden: int,
        layers: int,
        relations: int,
        dropout: float,
        bases: int = 2,
    ) -> None:
        super().__init__()
        n_basis = min(relations, bases)
        self.encode = nn.Sequential(nn.Linear(in_prop, hidden), nn.ReLU(), Dropout(dropout))
        self.conv = RelationMeanConv()
        self.self_lin = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers))
        self.rel_lin = nn.ModuleList(
            nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(n_basis))
            for _ in range(layers)
        )
        if relations <= bases:  # one basis per relation: plain per-relation weights
            coef = torch.eye(relations).repeat(layers, 1, 1)
        else:
            coef = torch.randn(layers, relations, n_basis) / n_basis**0.5
        self.rel_coef = nn.Parameter(coef)
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(layers))
        self.dropout = Dropout(dropout)
        self.label_enc = nn.Linear(in_label, hidden) if in_label else None
        self.head = nn.Sequential(
            nn.Linear(hidden * (2 if in_label else 1), hidden), nn.ReLU(), nn.Linear(hidden, 1)
        )

    def forward(self, x_prop: Tensor, x_label: Tensor | None, plan: Plan) -> Tensor:
        """Logits for `plan.targets` (every node for a full plan)."""
        return self.readout(self.embed(x_prop, plan), x_label, plan.targets)

    def embed(self, x_prop: Tensor, plan: Plan) -> Tensor:
        """h_L for `plan.targets`: everything that depends on the graph, nothing on labels.
        Each h_l is dropped once h_{l+1} is computed (a full pass: 128 MB a layer at 1M)."""
        last: Tensor = deque(self.layer_states(x_prop, plan), maxlen=1)[0]
        return last

    def layer_states(self, x_prop: Tensor, plan: Plan) -> Iterator[Tensor]:
        """h_0, …, h_L in turn, h_l over the rows layer l computes (every node for a full plan):
        a new node's layers read its neighbours' h_0 … h_{L-1} (`GNNModel.predict_node`). In
        turn, so that a caller can store each and let it go (a full pass: 128 MB a layer)."""
        if plan.inputs is not None:
            x_prop = x_prop[plan.inputs]
        h = self.encode_inputs(x_prop)
        yield h
        for i, step in enumerate(plan.layers):
            if step.keep is None:
                h = self._full_layer(i, h, step)
            else:
                h_self = h[step.keep]
                means = self.conv(h, step.adj).view(h_self.shape[0], -1) if step.relations else None
                h = self.layer(i, h_self, means, step.relations)
            yield h

    def encode_inputs(self, x_prop: Tensor) -> Tensor:
        """h_0 from the stored input codes (half precision, `encoding.CODE_DTYPE`), widened to
        float32 `FULL_PASS_CHUNK` rows at a time outside autograd: a float32 copy of every
        node's inputs would undo what storing them in half saves (0.9 GB at 1M users)."""
        if torch.is_grad_enabled() or x_prop.shape[0] <= FULL_PASS_CHUNK:
            h: Tensor = self.encode(x_prop.float())
            return h
        width = cast(nn.Linear, self.encode[0]).out_features
        out = torch.empty(x_prop.shape[0], width, device=x_prop.device)
        for lo in range(0, x_prop.shape[0], FULL_PASS_CHUNK):
            out[lo : lo + FULL_PASS_CHUNK] = self.encode(x_prop[lo : lo + FULL_PASS_CHUNK].float())
        return out

    def _full_layer(self, i: int, h: Tensor, step: Step) -> Tensor:
        """Layer `i` over every node, `FULL_PASS_CHUNK` nodes at a time: each row's sums and
        products are the ones the whole-graph product gives it."""
        out = torch.empty_like(h)
        r = len(step.relations)
        for lo in range(0, h.shape[0], FULL_PASS_CHUNK):
            hi = min(lo + FULL_PASS_CHUNK, h.shape[0])
            means = None
            if r:
                rows = csr_rows(step.adj[0], lo * r, hi * r)
                means = self.conv(h, (rows, None)).view(hi - lo, -1)
            out[lo:hi] = self.layer(i, h[lo:hi], means, step.relations)
        return out

    def layer(
        self, i: int, h_self: Tensor, means: Tensor | None, relations: Sequence[int]
    ) -> Tensor:
        """Layer `i` of some nodes from their own h and their neighbours' mean h per relation:
        `means` is `[n, R·hidden]`, the means over `relations` side by side (relations without
        neighbours left out; None when no relation has any). One definition for the full-graph
        pass and for one new node."""
        z = self.self_lin[i](h_self)
        if means is not None:
            # W_r = Σ_b a_rb V_b first (R·B tiny matrices), then one dense product over the
            # means side by side: mixing the [n, h] means per basis instead costs memory passes
            # over [n, h, R] that took a third of a training step.
            basis = cast(nn.ModuleList, self.rel_lin[i])
            bases = torch.stack([cast(nn.Linear, lin).weight for lin in basis])  # [B, out, in]
            per_rel = torch.einsum("rb,boi->rio", self.rel_coef[i][list(relations)], bases)
            z = z + means @ per_rel.flatten(0, 1)
        out: Tensor = h_self + self.dropout(torch.relu(self.norms[i](z)))
        return out

    def readout(self, h: Tensor, x_label: Tensor | None, targets: Tensor | None) -> Tensor:
        """Logits from h_L and the targets' ego label features; every node's (no `targets`) a
        `FULL_PASS_CHUNK` at a time, as `_full_layer` goes: the head's [n, 2·hidden] input and
        activations were 0.6 GB at 1M users."""
        if targets is None and h.shape[0] > FULL_PASS_CHUNK:
            return torch.cat(
                [
                    self.readout(
                        h[lo : lo + FULL_PASS_CHUNK],
                        None if x_label is None else x_label[lo : lo + FULL_PASS_CHUNK],
                        None,
                    )
                    for lo in range(0, h.shape[0], FULL_PASS_CHUNK)
                ]
            )
        if self.label_enc is not None and x_label is not None:
            lab = x_label if targets is None else x_label[targets]
            h = torch.cat([h, torch.relu(self.label_enc(lab.float()))], dim=1)
        out: Tensor = self.head(h).squeeze(-1)
        return out
