"""One ring's features without DataFrames are the batch's `ring_features` rows."""

from __future__ import annotations

import polars as pl
import pytest

from graphfraud import schema
from graphfraud.rings.features import intra_ring_links, one_ring_features
from tests.online_run import OnlineRun


def test_one_ring_features_are_the_batch_rows(online_run: OnlineRun) -> None:
    run = online_run.run_dir
    rings = pl.read_parquet(run / schema.RINGS_FILE)
    members = pl.read_parquet(run / schema.MEMBERS_FILE)
    users = pl.read_parquet(run / schema.USERS_FILE, columns=["user_id", "created_at", "label"])
    links = pl.read_parquet(run / schema.LINKS_FILE)
    intra = intra_ring_links(links, members)
    people = members.join(users, on="user_id", how="left")
    checked = 0
    for want in rings.head(120).iter_rows(named=True):
        ring = people.filter(pl.col("ring_id") == want["ring_id"])
        ring_links = intra.filter(pl.col("ring_id") == want["ring_id"])
        got = one_ring_features(
            ring["user_id"].to_list(),
            ring["created_at"].to_list(),
            ring["label"].to_list(),
            ring_links.select("user_a", "user_b", "kind", "weight").rows(),
        )
        for column, value in got.items():
            expected = want[column]
            if isinstance(expected, float):
                assert value == pytest.approx(expected, rel=1e-5, abs=1e-6), (column, want)
            else:
                assert value == expected, (column, want["ring_id"])
        checked += 1
    assert checked >= 50


def test_one_ring_score_is_the_batch_ring_score() -> None:
    from graphfraud.scoring.scores import one_ring_score, ring_scores

    rng = __import__("numpy").random.default_rng(4)
    for size in (1, 2, 3, 7, 40):
        scores = rng.random(size).tolist()
        ids = [f"u{i}" for i in range(size)]
        batch = ring_scores(
            pl.DataFrame({"user_id": ids, "ring_id": ["R"] * size}),
            pl.DataFrame({"user_id": ids, "model_score": scores}),
        )["ring_score"][0]
        assert one_ring_score(scores) == pytest.approx(batch, rel=1e-6)
