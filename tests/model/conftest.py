"""Seeded toy graphs with a planted signal, shared by the model tests."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from graphfraud.model.base import GraphData
from graphfraud.model.dataset import build_graph_data


def planted_frames(
    n: int = 600, seed: int = 0, label_share: float = 0.8
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, np.ndarray]:
    """Users with fraud rings (dense device/phone links among fraudsters, homophily) plus
    camouflage links from fraudsters to honest users (heterophily), weakly informative features.

    Returns (features, links, labels, truth) — `labels` hides a share of the truth.
    """
    rng = np.random.default_rng(seed)
    ids = [f"u{i:05d}" for i in range(n)]
    ring_size, n_rings = 6, n // 40
    fraud_nodes = rng.choice(n, size=ring_size * n_rings, replace=False)
    truth = np.zeros(n, dtype=np.int8)
    truth[fraud_nodes] = 1
    rows: list[tuple[str, str, str, float]] = []
    for r in range(n_rings):
        ring = fraud_nodes[r * ring_size : (r + 1) * ring_size]
        for i in range(ring_size):
            for j in range(i + 1, ring_size):
                if rng.random() < 0.6:
                    kind = "device" if rng.random() < 0.5 else "phone_similar"
                    rows.append((ids[ring[i]], ids[ring[j]], kind, float(rng.uniform(0.5, 1.0))))
    for _ in range(n * 2):  # background links, weak
        a, b = rng.choice(n, size=2, replace=False)
        rows.append((ids[a], ids[b], "ip", float(rng.uniform(0.02, 0.2))))
    for f in fraud_nodes:  # camouflage: fraudsters link to honest users too
        b = int(rng.integers(n))
        if b != f:
            rows.append((ids[f], ids[b], "email_similar", float(rng.uniform(0.2, 0.6))))
    links = pl.DataFrame(rows, schema=["user_a", "user_b", "kind", "weight"], orient="row")
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 0] += 0.6 * truth  # weak ego signal
    x[rng.random(n) < 0.05, 2] = np.nan
    features = pl.DataFrame({"user_id": ids, **{f"f{i}": x[:, i] for i in range(4)}})
    lab = np.where(rng.random(n) < label_share, truth, -1)
    labels = pl.DataFrame(
        {
            "user_id": ids,
            "label": pl.Series([None if v < 0 else int(v) for v in lab], dtype=pl.Int8),
        }
    )
    return features, links, labels, truth


@pytest.fixture(autouse=True)
def _two_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def planted() -> tuple[GraphData, np.ndarray]:
    features, links, labels, truth = planted_frames()
    return build_graph_data(features, links, labels), truth
