"""Quality benchmark: graphfraud vs the textbook baseline on synthetic populations.

Workload: `--users` synthetic users (default 100,000) for each of `--seeds` (default 1 2 3); the
full batch (`run_pipeline`) and `evaluate` on users whose label the run did not see.
Textbook baseline: users joined only by *exactly* shared raw identifiers (email as typed, lower-
cased; phone as typed; device id; IP), identifiers shared by > 10 accounts ignored, connected
components as rings, score = share of labelled fraud in the component.

Also printed for graphfraud: communities vs suspected rings (`honest_in_community`,
`honest_in_suspected`: share of honest users in any community / in a suspected ring;
`suspected_recall`, `suspected_precision`: ring recall and precision of the suspected rings
alone), ring recall per planted ring kind (`ring_recall[kind]`, mean over seeds) and which path
scored (model kind, or the fallback and why).

    .venv/bin/python benchmarks/bench_quality.py [--users 100000] [--seeds 1 2 3]
        [--fraud-share 0.005]  # a quiet night
        [--models gbm]         # candidates (default: the settings')
        [--recipes hard]       # ring recipes (default hard: with sparse rings and drawn
                               # camouflage, #14; `base` gives the populations of before)
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import igraph as ig
import numpy as np
import polars as pl
from _common import out_dir
from sklearn.metrics import average_precision_score, roc_auc_score

from graphfraud.config import load_settings
from graphfraud.evaluate import evaluate_run, load_truth, ring_recovery
from graphfraud.pipeline import run_pipeline
from graphfraud.synthetic import RECIPES, generate_population, write_population

METRICS = (
    "roc_auc",
    "average_precision",
    "precision_at_k",
    "ring_recall",
    "ring_precision",
    "largest_ring_ratio",
)
SUSPECTED = (
    "honest_in_community",
    "honest_in_suspected",
    "suspected_rings",
    "suspected_recall",
    "suspected_precision",
)


def textbook_baseline(
    users: pl.DataFrame, devices: pl.DataFrame, truth: pl.DataFrame
) -> dict[str, float]:
    idx = users.select("user_id").with_row_index("v")
    holders = (
        pl.concat(
            [
                users.select(
                    "user_id",
                    ("e:" + pl.col("email").str.strip_chars().str.to_lowercase()).alias("val"),
                ),
                users.select("user_id", ("p:" + pl.col("phone").str.strip_chars()).alias("val")),
                devices.select("user_id", ("d:" + pl.col("device_id")).alias("val")),
                devices.select("user_id", ("i:" + pl.col("ip")).alias("val")),
            ]
        )
        .filter(pl.col("val").is_not_null() & (pl.col("val").str.len_chars() > 2))
        .unique()
    )
    ok = holders.group_by("val").len().filter((pl.col("len") >= 2) & (pl.col("len") <= 10))
    held = holders.join(ok, on="val", how="semi").join(idx, on="user_id")
    first = held.group_by("val").agg(pl.col("v").first().alias("v0"))
    edges = held.join(first, on="val").filter(pl.col("v") != pl.col("v0"))
    g = ig.Graph(
        n=idx.height,
        edges=np.column_stack([edges["v"].to_numpy(), edges["v0"].to_numpy()]).tolist(),
    )
    comp = pl.Series("comp", g.connected_components().membership)
    lab = users.select(
        "user_id",
        (pl.col("label").cast(pl.Utf8).str.strip_chars() == "1").fill_null(False).alias("f"),
        (pl.col("label").cast(pl.Utf8).str.strip_chars().fill_null("") == "").alias("unlabelled"),
    )
    df = (
        idx.with_columns(comp)
        .join(lab, on="user_id")
        .with_columns(
            pl.len().over("comp").alias("size"), pl.col("f").sum().over("comp").alias("nf")
        )
        .with_columns((pl.col("nf") / pl.col("size")).alias("score"))
    )
    ev = df.filter(pl.col("unlabelled")).join(truth.select("user_id", "is_fraud"), on="user_id")
    y, s = ev["is_fraud"].to_numpy(), ev["score"].to_numpy()
    k = int(y.sum())
    p_at_k = float(y[np.argsort(-s, kind="stable")[:k]].mean())
    members = df.filter(pl.col("size") >= 2).select(
        "user_id", pl.col("comp").cast(pl.Utf8).alias("ring_id")
    )
    ring_scores = (
        df.group_by("comp")
        .agg(pl.col("score").first().alias("ring_score"))
        .select(pl.col("comp").cast(pl.Utf8).alias("ring_id"), "ring_score")
    )
    _, recall, precision, lp, lt = ring_recovery(members, truth, ring_scores)
    return {
        "roc_auc": float(roc_auc_score(y, s)),
        "average_precision": float(average_precision_score(y, s)),
        "precision_at_k": p_at_k,
        "ring_recall": recall,
        "ring_precision": precision,
        "largest_ring_ratio": lp / lt if lt else float("nan"),
    }


def _sd(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--fraud-share", type=float, default=0.04)
    parser.add_argument("--models", nargs="+", default=None, help="model candidates")
    parser.add_argument("--recipes", choices=sorted(RECIPES), default="hard", help="ring recipes")
    args = parser.parse_args()
    print(
        f"workload: {args.users:,} synthetic users × seeds {args.seeds}, fraud share "
        f"{args.fraud_share}, {args.recipes} ring recipes; evaluation on unlabelled users"
    )
    extra: dict[str, list[float]] = {m: [] for m in SUSPECTED}
    ours: dict[str, list[float]] = {m: [] for m in METRICS}
    base: dict[str, list[float]] = {m: [] for m in METRICS}
    by_kind: dict[str, list[float]] = {}
    for seed in args.seeds:
        root = out_dir(f"quality-{args.users}-{seed}-{args.fraud_share}-{args.recipes}")
        pop = generate_population(
            args.users, seed, fraud_share=args.fraud_share, recipes=RECIPES[args.recipes]
        )
        paths = write_population(pop, root / "data", fmt="parquet")
        settings = load_settings()
        settings.model.registry = root / "models"
        if args.models:
            settings.model.candidates = args.models
        t0 = time.perf_counter()
        run_pipeline(paths["users"], paths["devices"], root / "run", settings)
        took = time.perf_counter() - t0
        result = evaluate_run(root / "run", paths["truth"])
        ev = result.as_dict()
        for kind, recall in result.recall_by_kind.items():
            by_kind.setdefault(kind, []).append(recall)
        truth = load_truth(Path(paths["truth"]))
        tb = textbook_baseline(pop.users, pop.devices, truth)
        for m in METRICS:
            ours[m].append(float(ev[m]))
            base[m].append(tb[m])
        print(
            f"seed {seed}: run {took:.1f}s; ours " + " ".join(f"{m}={ev[m]:.4f}" for m in METRICS)
        )
        print(f"seed {seed}: textbook  " + " ".join(f"{m}={tb[m]:.4f}" for m in METRICS))
        for m in SUSPECTED:
            extra[m].append(float(ev.get(m, float("nan"))))
        manifest = json.loads((root / "run" / "manifest.json").read_text())
        model = manifest.get("model", {})
        print(
            f"seed {seed}: rings    "
            + " ".join(f"{m}={float(ev[m]):.4f}" for m in SUSPECTED)
            + f" cut={manifest.get('rings_suspected', {}).get('cut')}"
        )
        print(
            f"seed {seed}: recall by kind "
            + " ".join(f"{k}={v:.3f}" for k, v in sorted(result.recall_by_kind.items()))
        )
        print(
            f"seed {seed}: scored by {model.get('kind')} ({model.get('version')}); "
            f"fallback: {model.get('metrics', {}).get('fallback', '-')}; "
            f"gate: {model.get('metrics', {}).get('gate', '-')}; "
            f"model stage {manifest['stages']['model']['seconds']:.1f}s"
        )
    print(f"\n{'metric':22s} {'graphfraud':>18s} {'textbook baseline':>20s}")
    for m in METRICS:
        o, b = ours[m], base[m]
        print(
            f"{m:22s} {statistics.mean(o):>10.4f} ± {_sd(o):.4f} "
            f"{statistics.mean(b):>12.4f} ± {_sd(b):.4f}"
        )
    for m in SUSPECTED:
        seen = [v for v in extra[m] if v == v]  # NaN: no suspected ring of ≥ 3 that night
        mean = statistics.mean(seen) if seen else float("nan")
        print(f"{m:22s} {mean:>10.4f} ± {_sd(seen):.4f}  ({len(seen)} of {len(extra[m])} seeds)")
    for kind, values in sorted(by_kind.items()):
        name = f"ring_recall[{kind}]"
        print(f"{name:34s} {statistics.mean(values):>6.4f} ± {_sd(values):.4f}")


if __name__ == "__main__":
    main()
