"""GBM candidate alone on quiet and normal nights: out-of-fold quality, and vs scikit-learn.

Workload: for each population `--pops SEED:FRAUD_SHARE ...` (default 1:0.005 2:0.005 3:0.01
1:0.04 2:0.04) `--users` synthetic users (default 20,000); the batch runs once up to its
features (`graphfraud run` with only the gbm candidate), then the GBM is trained out-of-fold on
the batch's own ring-grouped folds for each model seed (`--model-seeds`, default 7 8 9).
Reported per population and model seed: out-of-fold AP and ROC-AUC over the labelled users (what
the run's manifest calls `gbm.auprc` / `gbm.roc_auc`, and what picks the candidate), and the AP /
ROC-AUC of the run's final user scores (ring blending included) over the unlabelled users
against the truth (what `graphfraud evaluate` reports).

`--variants` picks what is trained: `gbm` (graphfraud's GBM as it is) and `hgb` (scikit-learn's
HistGradientBoostingClassifier on the same inputs, split and parameters: the model the GBM
replaced, kept here as the reference).

    GRAPHFRAUD_MODEL__NUM_THREADS=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_gbm.py \
        [--users 20000] [--pops 1:0.005 2:0.005 1:0.04] [--model-seeds 7 8 9] [--variants gbm hgb]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import polars as pl
from _common import out_dir
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.model_selection import train_test_split

from graphfraud.config import load_settings
from graphfraud.evaluate import load_truth
from graphfraud.model.base import GraphData
from graphfraud.model.dataset import build_graph_data
from graphfraud.model.gbm import GBMModel
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.risk import ModelInput, RiskModel
from graphfraud.model.train import _fold_ids, out_of_fold, ranking_metrics
from graphfraud.pipeline import run_pipeline
from graphfraud.rundir import RunDir
from graphfraud.schema import FEATURES_FILE, LINKS_FILE, MEMBERS_FILE, USERS_FILE
from graphfraud.scoring.scores import build_scores
from graphfraud.synthetic import generate_population, write_population


def hgb_split(
    y: npt.NDArray[np.int8], seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """The early-stopping split the scikit-learn GBM had: seeded, stratified, 15 % once there are
    200 labels and both classes can spare two."""
    rows = np.arange(len(y), dtype=np.int64)
    if len(y) < 200 or min((y == 1).sum(), (y == 0).sum()) < 2:
        return rows, None
    n_val = max(int(np.ceil(0.15 * len(y))), 2)
    grow, val = train_test_split(rows, test_size=n_val, stratify=y, random_state=seed)
    return np.sort(grow), np.sort(val)


class HGBReference(GBMModel):
    """scikit-learn's HistGradientBoosting with the GBM's inputs, split and parameters (the
    model before the LightGBM switch; fit/predict only, never saved)."""

    def fit(self, data: ModelInput, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        inputs = GraphInputs.of(data)
        y = inputs.data.labels[train_mask].astype(np.int8)
        x = self._inputs(inputs, train_mask)
        p = self._params
        grow, val = hgb_split(y, seed)
        self._clf = HistGradientBoostingClassifier(
            max_iter=p["max_iter"],
            learning_rate=p["learning_rate"],
            max_leaf_nodes=p["max_leaf_nodes"],
            min_samples_leaf=p["min_samples_leaf"],
            l2_regularization=p["l2_regularization"],
            early_stopping=val is not None,
            n_iter_no_change=p["n_iter_no_change"],
            random_state=seed,
        )
        self._dead = np.isnan(x[grow]).all(axis=0)
        x[:, self._dead] = 0.0
        if val is None:
            self._clf.fit(x, y)
        else:
            self._clf.fit(x[grow], y[grow], X_val=x[val], y_val=y[val])
        self._n_inputs = int(x.shape[1])
        self.trees = int(self._clf.n_iter_)

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        inputs = GraphInputs.of(data)
        x = self._inputs(inputs, rows)
        x[:, self._dead] = 0.0
        p = self._clf.predict_proba(x)[:, 1].astype(np.float32)
        if rows is None:
            return p
        out = np.zeros(inputs.data.num_nodes, dtype=np.float32)
        out[rows] = p
        return out


def _gbm() -> GBMModel:
    return GBMModel(num_threads=load_settings().model.num_threads)


VARIANTS: dict[str, Callable[[], RiskModel]] = {"gbm": _gbm, "hgb": HGBReference}


@dataclass(frozen=True)
class Population:
    data: GraphData
    features: pl.DataFrame
    members: pl.DataFrame
    truth: pl.DataFrame


def population(users: int, seed: int, share: float) -> Population:
    """The batch's GraphData for one synthetic population (cached under the bench output)."""
    root = out_dir(f"gbm-{users}-{seed}-{share}")
    run = RunDir(root / "run")
    if not (root / "done").exists():
        pop = generate_population(users, seed, fraud_share=share)
        paths = write_population(pop, root / "data", fmt="parquet")
        settings = load_settings()
        settings.model.registry = root / "models"
        settings.model.candidates = ["gbm"]
        run_pipeline(paths["users"], paths["devices"], run.path, settings)
        (root / "done").write_text("")
    features, members = run.read(FEATURES_FILE), run.read(MEMBERS_FILE)
    data = build_graph_data(
        features, run.read(LINKS_FILE), run.read(USERS_FILE).select("user_id", "label"), members
    )
    return Population(data, features, members, load_truth(root / "data" / "truth.parquet"))


def one(pop: Population, build: Callable[[], RiskModel], model_seed: int) -> dict[str, float]:
    """Out-of-fold AP / ROC-AUC on the labelled users; AP / ROC-AUC of the run's final user
    scores (model score blended with its ring's, `build_scores`) on the unlabelled ones."""
    data = pop.data
    settings = load_settings().model
    settings.seed = model_seed
    fold_ids, _ = _fold_ids(data, settings, data.ring_index)
    t0 = time.perf_counter()
    scores, _, _ = out_of_fold(GraphInputs(data), build, fold_ids, model_seed)
    took = time.perf_counter() - t0
    labelled = fold_ids >= 0
    ap, roc = ranking_metrics(data.labels[labelled], scores[labelled])
    model_scores = pl.DataFrame({"user_id": data.user_ids.astype(str), "model_score": scores})
    users = build_scores(pop.features, model_scores, pop.members, "bench").users
    unseen = (
        pl.DataFrame({"user_id": data.user_ids[~labelled].astype(str)})
        .join(users.select("user_id", "score"), on="user_id")
        .join(pop.truth.select("user_id", "is_fraud"), on="user_id")
    )
    run_ap, run_roc = ranking_metrics(unseen["is_fraud"].to_numpy(), unseen["score"].to_numpy())
    return {"ap": ap, "roc": roc, "run_ap": run_ap, "run_roc": run_roc, "seconds": took}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument(
        "--pops", nargs="+", default=["1:0.005", "2:0.005", "3:0.01", "1:0.04", "2:0.04"]
    )
    parser.add_argument("--model-seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--variants", nargs="+", default=["gbm", "hgb"], choices=list(VARIANTS))
    args = parser.parse_args()
    print(
        f"workload: {args.users:,} users × populations {args.pops}, model seeds "
        f"{args.model_seeds}; GBM threads {load_settings().model.num_threads}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print(
        f"{'population':16s} {'labels +/all':>13s} {'variant':8s} "
        f"{'oof AP':>17s} {'oof ROC-AUC':>17s} {'run AP':>17s} {'run ROC-AUC':>17s} {'s':>5s}"
    )
    for name in args.pops:
        seed, share = name.split(":")
        pop = population(args.users, int(seed), float(share))
        data = pop.data
        n_pos, n_lab = int((data.labels == 1).sum()), int((data.labels >= 0).sum())
        for variant in args.variants:
            rows = [one(pop, VARIANTS[variant], s) for s in args.model_seeds]
            cells = []
            for key in ("ap", "roc", "run_ap", "run_roc"):
                values = [r[key] for r in rows]
                cells.append(
                    "/".join(f"{v:.3f}" for v in values)
                    if len(values) <= 3
                    else f"{statistics.mean(values):.3f}"
                )
            secs = statistics.mean(r["seconds"] for r in rows)
            print(
                f"{name:16s} {n_pos:>5d}/{n_lab:<7d} {variant:8s} "
                + " ".join(f"{c:>17s}" for c in cells)
                + f" {secs:>5.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
