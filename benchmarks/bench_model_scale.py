"""Model stage at scale: `train_and_score` on a seeded random graph (default 1M nodes / 3M links).

Prints the workload, the time to build the aggregates, the out-of-fold training + scoring time
per candidate and the peak RSS. The brief's budget: ≤ 5 min on 2 CPU cores for 1M users.

    nice .venv/bin/python benchmarks/bench_model_scale.py [--nodes 1000000] [--edges 3000000]
        [--label-share 0.2] [--candidates gbm] [--folds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from graphfraud.config import ModelSettings
from graphfraud.model.dataset import random_graph_data
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.train import train_and_score


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--edges", type=int, default=3_000_000)
    ap.add_argument("--features", type=int, default=16)
    ap.add_argument("--label-share", type=float, default=0.2)
    ap.add_argument("--candidates", default="gbm")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    data = random_graph_data(
        args.nodes, args.edges, features=args.features, label_share=args.label_share, seed=0
    )
    t_data = time.perf_counter() - t0
    print(
        f"workload: {data.num_nodes:,} nodes, {data.edge_index.shape[1]:,} directed edges over "
        f"{len(data.relation_names)} relations, {data.x.shape[1]} features, "
        f"{int(data.labelled.sum()):,} labels, folds {args.folds}, candidates {args.candidates}, "
        f"threads {args.threads}"
    )
    t0 = time.perf_counter()
    x, _ = GraphInputs(data).matrix()
    print(
        f"graph inputs: {x.shape[1]} columns in {time.perf_counter() - t0:.1f}s "
        f"(data {t_data:.1f}s)"
    )
    settings = ModelSettings(
        folds=args.folds, seed=7, device="cpu", candidates=args.candidates.split(",")
    )
    t0 = time.perf_counter()
    result = train_and_score(data, settings)
    total = time.perf_counter() - t0
    for kind in settings.candidates:
        m = result.metrics
        print(
            f"{kind}: OOF AUPRC {m[f'{kind}.auprc']:.4f} ROC-AUC {m[f'{kind}.roc_auc']:.4f} "
            f"in {m[f'{kind}.seconds']:.1f}s"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"train_and_score total {total:.1f}s, peak RSS {rss:.2f} GiB, selected {result.model_kind}"
    )


if __name__ == "__main__":
    main()
