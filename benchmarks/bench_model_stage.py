"""The model stage alone, on finished runs: seconds per candidate and quality of the final score.

Workload: each `RUN_ROOT` is a directory `bench_quality.py` left behind (`data/` with the truth
file, `run/` a finished run). The model stage (`model.stage.score_users`, a fresh registry, the
settings' candidates or `--models`) reruns on the run's features, links, labels and rings, then
the user scores are rebuilt as the score stage builds them and evaluated on the users whose label
the run did not see. Prints, per run: the stage's seconds, each candidate's out-of-fold AUPRC /
ROC-AUC / seconds, which path scored, and the unlabelled users' AP and ROC-AUC of the final score.
Reruns the stage without redoing ingest, linking and rings, so a model change is measured in
minutes, not tens of minutes.

    .venv/bin/python benchmarks/bench_model_stage.py RUN_ROOT [RUN_ROOT ...] [--models gbm gnn]

Candidates' parameters come from the settings (`GRAPHFRAUD_MODEL__PARAMS='{"gnn": {...}}'`).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from functools import partial
from pathlib import Path

import polars as pl
from sklearn.metrics import average_precision_score, roc_auc_score

from graphfraud.config import load_settings
from graphfraud.evaluate import load_truth
from graphfraud.model.dataset import build_graph_data
from graphfraud.model.features import prior_of
from graphfraud.model.prior import PRIOR_FEATURE
from graphfraud.model.registry import ModelRegistry
from graphfraud.model.stage import score_users
from graphfraud.pipeline import run_registry
from graphfraud.rundir import RunDir
from graphfraud.schema import FEATURES_FILE, LINKS_FILE, MEMBERS_FILE, USERS_FILE
from graphfraud.scoring.scores import build_scores, prior_scores


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("roots", nargs="+", type=Path, help="bench_quality output directories")
    parser.add_argument("--models", nargs="+", default=None, help="model candidates")
    parser.add_argument(
        "--prior-feature",
        action="store_true",
        help=f"add the structural prior as a model feature ({PRIOR_FEATURE}; not on main: it "
        "moves the suspected-ring cut, docs/models.md)",
    )
    args = parser.parse_args()
    settings = load_settings()
    if args.models:
        settings.model.candidates = args.models
    print(
        f"workload: the model stage of {len(args.roots)} run(s), "
        f"candidates {settings.model.candidates}, params {settings.model.params or 'tuned'}"
    )
    aps: list[float] = []
    took: list[float] = []
    for root in args.roots:
        run = RunDir(root / "run")
        features = run.read(FEATURES_FILE)
        if args.prior_feature and PRIOR_FEATURE not in features.columns:
            features = features.with_columns(pl.Series(PRIOR_FEATURE, prior_of(features)))
        users = run.read(USERS_FILE, columns=["user_id", "label"])
        members = run.read(MEMBERS_FILE)
        data = build_graph_data(
            features,
            run.read(LINKS_FILE),
            users,
            members,
            relations=run_registry(run).link_kinds,
        )
        with tempfile.TemporaryDirectory() as models:
            registry = ModelRegistry(Path(models))
            t0 = time.perf_counter()
            result = score_users(
                data,
                settings.model,
                registry,
                partial(prior_scores, features),
                model_params=settings.model.params,
            )
            seconds = time.perf_counter() - t0
        model_scores = pl.DataFrame(
            {"user_id": data.user_ids.astype(str), "model_score": result.scores}
        )
        scored = build_scores(features, model_scores, members, result.version).users
        truth = load_truth(root / "data" / "truth.parquet")
        unseen = (
            users.filter(pl.col("label").is_null())
            .join(scored.select("user_id", "score"), on="user_id")
            .join(truth.select("user_id", "is_fraud"), on="user_id")
        )
        y, s = unseen["is_fraud"].to_numpy(), unseen["score"].to_numpy()
        ap, auc = float(average_precision_score(y, s)), float(roc_auc_score(y, s))
        aps.append(ap)
        took.append(seconds)
        m = result.metrics
        kinds = [k.removesuffix(".auprc") for k in m if k.endswith(".auprc")]
        print(
            f"{root.name}: {data.num_nodes:,} users, {int((data.labels == 1).sum())} fraud / "
            f"{int((data.labels == 0).sum())} legit labels; model stage {seconds:.1f}s; scored by "
            f"{result.kind}; unlabelled AP {ap:.4f} ROC-AUC {auc:.4f}"
        )
        for kind in kinds:
            if kind + ".roc_auc" not in m or kind == "selected":
                continue
            print(
                f"    {kind:12s} OOF AUPRC {m[kind + '.auprc']:.4f} ROC-AUC "
                f"{m[kind + '.roc_auc']:.4f} {m.get(kind + '.seconds', float('nan')):6.1f}s"
            )
        for key in ("fallback", "skipped", "prior_weight"):
            if key in m:
                print(f"    {key}: {m[key]}")
    spread = statistics.stdev(aps) if len(aps) > 1 else 0.0
    print(
        f"mean unlabelled AP {statistics.mean(aps):.4f} ± {spread:.4f}; "
        f"mean model stage {statistics.mean(took):.1f}s"
    )


if __name__ == "__main__":
    main()
