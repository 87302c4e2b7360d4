"""The GNN's training loop: fixed receptive-field batches, early stopping on validation AUPRC,
and an early exit for a network whose validation ranking stays at chance (`HOPELESS_STEPS`).

Class imbalance: `BCEWithLogits(pos_weight = #neg/#pos)`. Deterministic on CPU for a fixed seed
(seeded init, dropout, batch order and label-trick draws; sparse CSR products). CUDA sparse
kernels may differ in the last bits; `benchmarks/gpu_check.py` bounds that.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn

from graphfraud.metrics import average_precision, roc_auc
from graphfraud.model.gate import auc_lower_bound
from graphfraud.model.gnn.network import RelationalSepNet
from graphfraud.model.gnn.plans import Plan

log = logging.getLogger(__name__)

HOPELESS_STEPS = 30  # optimiser steps a network gets to rank validation better than chance


def label_slots(label_input: float) -> int:
    """Extra propagated input columns for the label trick: [known fraud, known legit]."""
    return 2 if label_input > 0 else 0


def with_label_inputs(
    x_prop: Tensor, labels: npt.NDArray[np.int8], rows: npt.NDArray[np.int64], slots: int
) -> Tensor:
    """`x_prop` plus the label-trick columns, showing the labels of `rows` only."""
    if not slots:
        return x_prop
    shown = torch.zeros((len(labels), 2), dtype=x_prop.dtype)  # 0/1: exact in half precision
    at, seen = torch.from_numpy(rows), torch.from_numpy(labels[rows])
    shown[at, 0] = (seen == 1).to(x_prop.dtype)
    shown[at, 1] = (seen == 0).to(x_prop.dtype)
    return torch.cat([x_prop, shown.to(x_prop.device)], dim=1)


@dataclass(frozen=True)
class Schedule:
    """Optimiser and stopping settings of one network (the GNN's params)."""

    lr: float
    weight_decay: float
    max_epochs: int
    patience: int
    label_input: float


def train_network(
    build: Callable[[], RelationalSepNet],
    inputs: tuple[Tensor, Tensor | None],
    labels: npt.NDArray[np.int8],
    fit_idx: npt.NDArray[np.int64],
    plans: list[Plan],
    val_plan: Plan,
    schedule: Schedule,
    seed: int,
) -> tuple[RelationalSepNet, int]:
    """Train one network with early stopping on validation AUPRC; (best net, epochs run).

    An epoch is one pass over the training labels in batches of targets, each computed on its
    receptive field only. With k batches per epoch, `max_epochs` and `patience` are divided by
    k, so the optimiser-step budget does not grow with the graph. With the label trick
    (`label_input > 0`) each step shows a random share of the training labels as inputs and
    learns on the others, so no node ever sees its own label.
    """
    x_prop, x_label = inputs
    device = x_prop.device
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    slots = label_slots(schedule.label_input)
    y = torch.from_numpy(labels.astype(np.float32)).to(device)
    n_pos = int((labels[fit_idx] == 1).sum())
    pos_weight = torch.tensor((len(fit_idx) - n_pos) / max(n_pos, 1), device=device)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    net = build()
    opt = torch.optim.AdamW(net.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)
    max_epochs = max(1, -(-schedule.max_epochs // len(plans)))
    patience = max(2, round(schedule.patience / len(plans)))  # the nearest whole epochs
    # Validation sees every training label as input, never its own (as scoring will).
    x_eval = with_label_inputs(x_prop, labels, fit_idx, slots)
    assert val_plan.targets is not None
    val_y = labels[val_plan.targets.cpu().numpy()]
    shown = np.zeros(len(labels), dtype=bool)
    best, best_state, since, epoch = -1.0, copy.deepcopy(net.state_dict()), 0, 0
    # A network whose validation ranking is still near chance after `HOPELESS_STEPS` optimiser
    # steps stops: on a quiet night or with labels that carry no signal it would otherwise
    # chase noise in the validation AUPRC for the whole budget, to be refused by the gate
    # anyway. One test, once: the lower 95 % bound of its mean ROC-AUC over the later half of
    # those epochs at or below 0.5. (The best epoch's bound, tested every epoch, is a maximum
    # over dozens of noisy draws: networks fed shuffled labels beat chance by it in 3-5 of 18
    # trials.)
    hopeless_after = max(1, round(HOPELESS_STEPS / len(plans)))
    val_pos, val_neg = int((val_y == 1).sum()), int((val_y == 0).sum())
    aucs: list[float] = []
    for epoch in range(max_epochs):
        net.train()
        for b in rng.permutation(len(plans)):
            targets = plans[b].targets
            assert targets is not None
            x_in = x_prop
            if slots:  # show some labels, learn on the others
                shown[:] = False
                shown[fit_idx[rng.random(len(fit_idx)) < schedule.label_input]] = True
                x_in = with_label_inputs(x_prop, labels, np.flatnonzero(shown), slots)
                learn = torch.from_numpy(~shown[targets.cpu().numpy()]).to(device)
            else:
                learn = torch.ones(len(targets), dtype=torch.bool, device=device)
            if not bool(learn.any()):
                continue
            opt.zero_grad()
            logits = net(x_in, x_label, plans[b])
            loss = loss_fn(logits[learn], y[targets][learn])
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            val_logits = net(x_eval, x_label, val_plan)
        val_scores = val_logits.cpu().numpy()
        score = average_precision(val_y, val_scores)
        if val_pos and val_neg and epoch < hopeless_after:
            aucs.append(roc_auc(val_y, val_scores))
        if epoch + 1 == hopeless_after and aucs:
            later = float(np.mean(aucs[len(aucs) // 2 :]))
            if auc_lower_bound(later, val_pos, val_neg) <= 0.5:
                log.info("gnn: validation near chance after %d epochs: stopping", epoch + 1)
                if score > best + 1e-5:
                    best, best_state = score, copy.deepcopy(net.state_dict())
                break
        if score > best + 1e-5:
            best, best_state, since = score, copy.deepcopy(net.state_dict()), 0
        else:
            since += 1
            if since >= patience:
                break
    net.load_state_dict(best_state)
    net.eval()
    log.debug("gnn: %d epochs x %d batches, best AUPRC %.4f", epoch + 1, len(plans), best)
    return net, epoch + 1
