"""Train and score the same small GNN on CUDA and on CPU; the results must agree.

Dropout is off and TF32 disabled so the two runs differ only by floating-point rounding
(parameters are initialised on the CPU generator in both). Prints both timings and the speed-up.
Exits 2 with a clear message when this machine has no CUDA device.

    .venv/bin/python benchmarks/gpu_check.py [--nodes 200000] [--edges 2000000] [--epochs 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from graphfraud.model.base import GraphData
from graphfraud.model.dataset import random_graph_data
from graphfraud.model.gnn import GNNModel


def run(device: str, data: GraphData, epochs: int) -> tuple[np.ndarray, float, GNNModel]:
    model = GNNModel(device=device, dropout=0.0, max_epochs=epochs, patience=epochs + 1)
    start = time.perf_counter()
    model.fit(data, data.labelled, seed=0)
    scores = model.predict(data)
    if device == "cuda":
        torch.cuda.synchronize()
    return scores, time.perf_counter() - start, model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=200_000)
    ap.add_argument("--edges", type=int, default=2_000_000)
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print(
            f"gpu_check: no CUDA device visible to torch {torch.__version__} "
            "(CPU-only build or no driver) - nothing to check.",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    data = random_graph_data(args.nodes, args.edges, seed=1)
    print(
        f"workload: {args.nodes:,} nodes, {data.edge_index.shape[1]:,} directed edges, "
        f"{data.x.shape[1]} features, {int(data.labelled.sum()):,} labels, {args.epochs} epochs, "
        f"GPU {torch.cuda.get_device_name(0)}, CPU threads {args.threads}"
    )
    run("cuda", random_graph_data(2_000, 10_000, seed=2), 3)  # warm up CUDA context + kernels
    gpu, t_gpu, gpu_model = run("cuda", data, args.epochs)
    print(f"cuda done in {t_gpu:.2f}s; now the same on the CPU", flush=True)
    cpu, t_cpu, _ = run("cpu", data, args.epochs)
    # A model trained on the GPU must load and score on a CPU-only scorer.
    with tempfile.TemporaryDirectory() as tmp:
        gpu_model.save(Path(tmp))
        reloaded = GNNModel.load(Path(tmp), gpu_model.params(), device="cpu")
        moved = reloaded.predict(data)
    moved_diff = float(np.abs(moved - gpu).max())
    unl = ~data.labelled
    max_diff = float(np.abs(gpu - cpu).max())
    rho = float(spearmanr(gpu[unl], cpu[unl]).statistic)
    labels = data.labels[data.labelled]
    auc_gpu = roc_auc_score(labels, gpu[data.labelled])
    auc_cpu = roc_auc_score(labels, cpu[data.labelled])
    print(f"cuda {t_gpu:7.2f}s  cpu {t_cpu:7.2f}s  speed-up {t_cpu / t_gpu:5.1f}x")
    print(
        f"max |score diff| {max_diff:.2e}, Spearman {rho:.5f}, "
        f"AUC cuda {auc_gpu:.4f} cpu {auc_cpu:.4f}"
    )
    print(f"GPU-trained model scored on CPU: max |score diff| {moved_diff:.2e}")
    ok = max_diff < 2e-2 and rho > 0.99 and abs(auc_gpu - auc_cpu) < 5e-3 and moved_diff < 1e-3
    print("gpu_check: OK" if ok else "gpu_check: FAILED - CUDA and CPU results disagree")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
