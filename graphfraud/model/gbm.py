"""Gradient-boosting baseline on neighbour aggregates (GADBench's XGBGraph, LightGBM edition).

Inputs: `[x, 1-hop weighted mean/std of x, 2-hop mean, per-relation means, degrees, leave-self-out
label rates]` (see `GraphInputs.blocks`). GADBench found trees on such aggregates beat most
fraud GNNs, so this is the bar every other candidate must clear.

Weights are LightGBM's own text model (`Booster.model_to_string`) plus a small JSON sidecar:
reading them parses numbers and cannot run code, unlike the pickles this replaced.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
from sklearn.model_selection import train_test_split

from graphfraud.config import available_cpus
from graphfraud.errors import ArtifactError, ConfigError, InputDataError
from graphfraud.model.inputs import GraphInputs
from graphfraud.model.risk import ModelInput, balanced_to_prior

WEIGHTS_FILE = "gbm.txt"  # LightGBM text model
META_FILE = "gbm.json"  # what the booster does not hold: base rate, balancing, input width
FORMAT = 2  # 1 was a joblib pickle (`gbm.joblib`), never loaded
EARLY_STOPPING_MIN_ROWS = 200
VALIDATION_FRACTION = 0.15
# Early stopping is only as good as its validation log-loss, and on a quiet night that is an
# average over a handful of fraud labels: with 3-7 of them the best round is noise (1 to 20
# trees in most folds measured) and LightGBM keeps only the trees up to it, which rank the
# held-out users far worse than `max_iter` trees do. The rarer class in the validation rows
# must reach this count, else no rows are held out and all of them grow `max_iter` trees
# (benchmarks/bench_gbm.py).
EARLY_STOPPING_MIN_CLASS = 20
# Fewer rows than this are scored on one thread: starting OpenMP's team costs more than the
# trees cost for a few rows (the online scorer predicts one account at a time).
SMALL_PREDICT_ROWS = 1000


def early_stopping_split(
    y: npt.NDArray[np.int8], seed: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64] | None]:
    """(rows to grow trees on, validation rows or None): a seeded stratified 15 % split once
    there are `EARLY_STOPPING_MIN_ROWS` labels and the split holds `EARLY_STOPPING_MIN_CLASS` of
    each class; else no split (every row grows trees, no early stopping)."""
    rows = np.arange(len(y), dtype=np.int64)
    n_val = int(np.ceil(VALIDATION_FRACTION * len(y)))
    rarer = int(min((y == 1).sum(), (y == 0).sum()))
    if len(y) < EARLY_STOPPING_MIN_ROWS or rarer * VALIDATION_FRACTION < EARLY_STOPPING_MIN_CLASS:
        return rows, None
    grow, val = train_test_split(rows, test_size=max(n_val, 2), stratify=y, random_state=seed)
    return np.sort(grow), np.sort(val)


class GBMModel:
    """LightGBM (early stopping; class-balanced only if asked) on graph aggregates.

    Parameter names are the batch's own (as in scikit-learn's HistGradientBoosting, which this
    replaced): `max_iter` trees at most, `max_leaf_nodes` leaves, `min_samples_leaf` rows per
    leaf, `l2_regularization`, stopping after `n_iter_no_change` rounds without a better
    validation log-loss. Only the trees up to the best round are kept. With too few labels of a
    class for that log-loss to mean anything (`early_stopping_split`), all `max_iter` are grown.

    `num_threads` (LightGBM's threads for training and for scoring `SMALL_PREDICT_ROWS` rows or
    more; None: the CPUs this process may run on) is how this host runs the model, not part of
    it: it is not in `params()`, so a card trained on a big host loads on a small one.
    """

    kind = "gbm"

    def __init__(
        self,
        *,
        max_iter: int = 200,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        label_features: bool = True,
        per_relation: bool = False,
        n_iter_no_change: int = 10,
        balanced: bool = False,
        num_threads: int | None = None,
    ) -> None:
        self._params: dict[str, Any] = {
            "max_iter": max_iter,
            "learning_rate": learning_rate,
            "max_leaf_nodes": max_leaf_nodes,
            "min_samples_leaf": min_samples_leaf,
            "l2_regularization": l2_regularization,
            "label_features": label_features,
            "per_relation": per_relation,
            "n_iter_no_change": n_iter_no_change,
            "balanced": balanced,
        }
        if num_threads is not None and num_threads < 1:
            raise ConfigError(f"num_threads must be at least 1, got {num_threads}")
        self._num_threads = num_threads
        self._booster: lgb.Booster | None = None
        self._pos_rate = 0.5
        self._n_inputs = 0

    def params(self) -> dict[str, object]:
        return dict(self._params)

    def _inputs(
        self, inputs: GraphInputs, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        x, _ = inputs.matrix(
            label_features=bool(self._params["label_features"]),
            per_relation=bool(self._params.get("per_relation", False)),
            rows=rows,
        )
        return x

    def threads(self, rows: int | None = None) -> int:
        """LightGBM threads for training (`rows` None) or for scoring `rows` rows. Always set:
        LightGBM's own default is every core of the host, which under a CPU limit or next to
        other jobs is many times slower than one thread."""
        if rows is not None and rows < SMALL_PREDICT_ROWS:
            return 1
        return self._num_threads if self._num_threads is not None else available_cpus()

    def _booster_params(self, seed: int) -> dict[str, Any]:
        p = self._params
        return {
            "objective": "binary",
            "learning_rate": p["learning_rate"],
            "num_leaves": p["max_leaf_nodes"],
            "min_data_in_leaf": p["min_samples_leaf"],
            "lambda_l2": p["l2_regularization"],
            "max_bin": 255,
            "seed": seed,
            "num_threads": self.threads(),
            # Same inputs and seed, same trees, whatever the thread count.
            "deterministic": True,
            "force_col_wise": True,
            "verbose": -1,
        }

    def fit(self, data: ModelInput, train_mask: npt.NDArray[np.bool_], seed: int) -> None:
        inputs = GraphInputs.of(data)
        y = inputs.data.labels[train_mask].astype(np.int8)
        if y.size == 0 or (y == 1).sum() < 2 or (y == 0).sum() < 2:
            raise InputDataError(
                "need at least 2 fraud and 2 legit labels to train", column="label"
            )
        x_fit = self._inputs(inputs, train_mask)
        p = self._params
        # Unweighted by default: ranking metrics gain nothing from balancing, and the scores
        # stay probabilities at the base rate without a correction.
        weight = None
        if p["balanced"]:
            counts = np.bincount(y, minlength=2).astype(np.float64)
            weight = (len(y) / (2.0 * counts))[y]
        grow, val = early_stopping_split(y, seed)
        # A column empty or constant on the grown rows is one bin: LightGBM never splits on it.
        train_set = lgb.Dataset(
            x_fit[grow], y[grow], weight=None if weight is None else weight[grow]
        )
        valid_sets: list[lgb.Dataset] = []
        callbacks: list[Callable[..., Any]] = []
        if val is not None:
            valid_sets = [
                lgb.Dataset(
                    x_fit[val],
                    y[val],
                    weight=None if weight is None else weight[val],
                    reference=train_set,
                )
            ]
            callbacks = [lgb.early_stopping(p["n_iter_no_change"], verbose=False)]
        booster = lgb.train(
            self._booster_params(seed),
            train_set,
            num_boost_round=p["max_iter"],
            valid_sets=valid_sets,
            callbacks=callbacks,
        )
        # Keep only the trees up to the best round (what `model_to_string` writes once early
        # stopping has one): the later ones would cost every prediction. The fitted model is
        # the saved one, so a loaded model scores exactly as the fitted one did.
        self._booster = lgb.Booster(model_str=booster.model_to_string())
        self._pos_rate = float((y == 1).mean())
        self._n_inputs = int(x_fit.shape[1])

    def predict(
        self, data: ModelInput, rows: npt.NDArray[np.bool_] | None = None
    ) -> npt.NDArray[np.float32]:
        """P(fraud) per node; with `rows`, only those nodes are scored (the rest are 0). The
        inputs are stacked a chunk of rows at a time (`GraphInputs.matrix_chunks`): trees
        score each row alone, so the scores are those of one stacked matrix."""
        if self._booster is None:
            raise ArtifactError("GBM model used before fit/load")
        inputs = GraphInputs.of(data)
        n = inputs.data.num_nodes
        total = n if rows is None else int(rows.sum())
        threads = self.threads(total)
        raw: list[npt.NDArray[np.float64]] = []
        for x in inputs.matrix_chunks(
            label_features=bool(self._params["label_features"]),
            per_relation=bool(self._params.get("per_relation", False)),
            rows=rows,
        ):
            if x.shape[1] != self._n_inputs:
                raise ArtifactError(
                    f"GBM expects {self._n_inputs} inputs, got {x.shape[1]}",
                    hint="score with the run's ring members (build_graph_data(..., members)) "
                    "and the feature set the model was trained on",
                )
            raw.append(self._raw(x, threads))
        p = self._calibrated(np.concatenate(raw) if raw else np.zeros(0))
        if rows is None:
            return p
        out = np.zeros(n, dtype=np.float32)
        out[rows] = p
        return out

    @property
    def input_options(self) -> tuple[bool, bool]:
        """(label_features, per_relation): which `GraphInputs.matrix` columns the model reads."""
        return bool(self._params["label_features"]), bool(self._params.get("per_relation", False))

    def predict_rows(self, x: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """P(fraud) for input rows built elsewhere (the online scorer's `model.ego` rows)."""
        if self._booster is None:
            raise ArtifactError("GBM model used before fit/load")
        if x.ndim != 2 or x.shape[1] != self._n_inputs:
            raise ArtifactError(f"GBM expects {self._n_inputs} inputs, got shape {x.shape}")
        return self._calibrated(self._raw(x, self.threads(len(x))))

    def _raw(self, x: npt.NDArray[np.float32], threads: int) -> npt.NDArray[np.float64]:
        assert self._booster is not None
        # Explicit every time: a loaded booster would otherwise use the thread count saved in
        # its text by the host that trained it.
        p: npt.NDArray[np.float64] = np.asarray(
            self._booster.predict(x, num_threads=threads), dtype=np.float64
        )
        return p

    def _calibrated(self, p: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """P(fraud) at the training base rate (balanced training inflates the odds)."""
        if self._params["balanced"]:
            return balanced_to_prior(p, self._pos_rate)
        return p.astype(np.float32)

    def save(self, directory: Path) -> None:
        """LightGBM's text model + a JSON sidecar: nothing that runs code on load."""
        if self._booster is None:
            raise ArtifactError("cannot save an unfitted GBM")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / WEIGHTS_FILE).write_text(self._booster.model_to_string(), encoding="utf-8")
        meta = {
            "format": FORMAT,
            "pos_rate": self._pos_rate,
            "balanced": bool(self._params["balanced"]),
            "n_inputs": self._n_inputs,
        }
        (directory / META_FILE).write_text(json.dumps(meta, sort_keys=True) + "\n")

    @classmethod
    def load(cls, directory: Path, params: dict[str, Any], *, device: str = "auto") -> GBMModel:
        """Inverse of `save`; `device` is ignored (trees score on the CPU), threads are this
        host's (`num_threads` None). A pickle from an older graphfraud is refused, never
        opened."""
        del device
        if (directory / "gbm.joblib").exists():
            raise ArtifactError(
                f"{directory} holds a GBM saved as a pickle (gbm.joblib) by an older graphfraud; "
                "pickles are never loaded, since loading one runs code",
                hint="retrain (`graphfraud run`) to save it in the current format",
            )
        model = cls(**params)
        try:
            meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
            text = (directory / WEIGHTS_FILE).read_text(encoding="utf-8")
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise ValueError("unknown sidecar format")
            model._booster = lgb.Booster(model_str=text)
            model._pos_rate = float(meta["pos_rate"])
            model._n_inputs = int(meta["n_inputs"])
            model._params["balanced"] = bool(meta["balanced"])
        except (OSError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            raise ArtifactError(
                f"{directory}: not a readable graphfraud GBM ({type(exc).__name__}: {exc})",
                hint="retrain (`graphfraud run`) or roll back to another model version",
            ) from exc
        if model._booster.num_feature() != model._n_inputs:
            raise ArtifactError(f"{directory}: GBM booster and sidecar disagree on its inputs")
        return model
