"""Score → band: one definition, half-open thresholds, nothing fails open."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphfraud.config import DecisionSettings, load_settings
from graphfraud.errors import ConfigError
from graphfraud.scoring.decision import Bands

BANDS = Bands(0.2, 0.5, ("allow", "review", "decline"))


def test_thresholds_are_half_open_from_below() -> None:
    assert BANDS.of_score(0.0) == "allow"
    assert BANDS.of_score(0.1999) == "allow"
    assert BANDS.of_score(0.2) == "review"
    assert BANDS.of_score(0.4999) == "review"
    assert BANDS.of_score(0.5) == "decline"
    assert BANDS.of_score(1.0) == "decline"


def test_a_nan_score_is_never_allowed() -> None:
    assert BANDS.of_score(math.nan) == "decline"
    assert BANDS.column(pl.Series([None, 0.1], dtype=pl.Float32)).to_list() == ["decline", "allow"]


@given(st.lists(st.floats(0, 1), min_size=1, max_size=50), st.floats(0, 1), st.floats(0, 1))
def test_the_batch_column_and_the_online_band_agree(
    scores: list[float], a: float, b: float
) -> None:
    bands = Bands(min(a, b), max(a, b), ("ok", "look", "stop"))
    column = bands.column(pl.Series(scores, dtype=pl.Float64)).to_list()
    assert column == [bands.of_score(s) for s in scores]
    idx = bands.index(np.array(scores))
    assert (np.diff(idx[np.argsort(scores, kind="stable")]) >= 0).all()  # monotone in the score


def test_names_and_thresholds_come_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRAPHFRAUD_DECISION__DECISION_THRESHOLD", "0.8")
    monkeypatch.setenv("GRAPHFRAUD_DECISION__BANDS", '["pass", "check", "block"]')
    bands = Bands.of(load_settings().decision)
    assert (bands.review, bands.decline) == (0.2, 0.8)
    assert bands.of_score(0.7) == "check"
    assert bands.of_score(0.8) == "block"


@pytest.mark.parametrize(
    "env",
    [
        {"GRAPHFRAUD_DECISION__REVIEW_THRESHOLD": "0.9"},  # above the decision threshold
        {"GRAPHFRAUD_DECISION__BANDS": '["a", "a", "b"]'},
        {"GRAPHFRAUD_DECISION__BANDS": '["a", "b"]'},
        {"GRAPHFRAUD_DECISION__DECISION_THRESHOLD": "1.5"},
    ],
)
def test_a_bad_operating_point_is_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="GRAPHFRAUD_DECISION"):
        load_settings()


def test_defaults() -> None:
    assert Bands.of(DecisionSettings()).names == ("allow", "review", "decline")
