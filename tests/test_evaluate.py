"""Ring recovery against a truth file: recall per planted ring kind beside the overall one."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from graphfraud.evaluate import load_truth, recall_by_kind, ring_recovery


def _truth() -> pl.DataFrame:
    rows = [(f"a{i}", 1, "RA", "camouflaged") for i in range(4)]
    rows += [(f"b{i}", 1, "RB", "camouflaged") for i in range(3)]
    rows += [(f"c{i}", 1, "RC", "sparse") for i in range(5)]
    rows += [(f"h{i}", 0, None, None) for i in range(6)]
    return pl.DataFrame(
        rows, schema=["user_id", "is_fraud", "ring_id", "ring_kind"], orient="row"
    ).with_columns(pl.col("is_fraud").cast(pl.Int8))


def _predicted() -> pl.DataFrame:
    groups = {
        "P1": ["a0", "a1", "a2", "a3", "h0"],  # RA whole, one honest user along: Jaccard 0.8
        "P2": ["b0", "h1", "h2"],  # RB split: 1/5
        "P3": ["b1", "b2"],  # 2/3: matched
        "P4": ["c0", "c1"],  # RC in pieces: 2/5 at best
        "P5": ["c2", "c3"],
    }
    return pl.DataFrame(
        [(u, r) for r, us in groups.items() for u in us],
        schema=["user_id", "ring_id"],
        orient="row",
    )


def test_recall_by_kind_splits_the_overall_recall() -> None:
    scores = pl.DataFrame({"ring_id": ["P1", "P2"], "ring_score": [0.9, 0.1]})
    n, recall, _, largest_p, largest_t = ring_recovery(_predicted(), _truth(), scores)
    assert (n, largest_p, largest_t) == (3, 5, 5)
    assert recall == 2 / 3
    assert recall_by_kind(_predicted(), _truth()) == {"camouflaged": 1.0, "sparse": 0.0}


def test_a_truth_without_kinds_has_no_recall_by_kind(tmp_path: Path) -> None:
    path = tmp_path / "truth.csv"
    _truth().drop("ring_kind").write_csv(path)
    truth = load_truth(path)
    assert truth["ring_kind"].null_count() == truth.height
    assert recall_by_kind(_predicted(), truth) == {}
    with_kinds = tmp_path / "kinds.csv"
    _truth().write_csv(with_kinds)
    assert recall_by_kind(_predicted(), load_truth(with_kinds)) == {
        "camouflaged": 1.0,
        "sparse": 0.0,
    }


def test_flat_rows_name_each_kind() -> None:
    """The CLI's table prints `flat()`: scalars only, one `ring_recall[kind]` row per kind."""
    from graphfraud.evaluate import Evaluation

    nan = float("nan")
    result = Evaluation(10, 2, nan, nan, nan, 3, 2 / 3, 1.0, 5, 5, 1.0, recall_by_kind=_KINDS)
    flat = result.flat()
    assert all(isinstance(v, int | float) for v in flat.values())
    assert flat["ring_recall[camouflaged]"] == 1.0
    assert flat["ring_recall[sparse]"] == 0.0
    assert "recall_by_kind" not in flat
    assert result.as_dict()["recall_by_kind"] == _KINDS


_KINDS = {"sparse": 0.0, "camouflaged": 1.0}
