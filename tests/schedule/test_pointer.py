"""The current pointer: atomic, names only runs that passed the service's swap checks, is the
next night's `--previous`, and its run is never rewritten in place."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from graphfraud.errors import ArtifactError
from graphfraud.schedule.pointer import (
    move_current,
    read_current,
    resolve_previous,
    write_current,
)
from graphfraud.schedule.runs import hold_run
from tests.schedule.conftest import copy_run

RATIO = 0.5


def test_no_pointer_before_the_first_night_and_a_full_night_then(tmp_path: Path) -> None:
    assert read_current(tmp_path) is None
    assert resolve_previous(tmp_path / "CURRENT") is None
    assert resolve_previous(None) is None
    assert resolve_previous(tmp_path / "some-run") == tmp_path / "some-run"


def test_a_good_run_moves_it_and_the_next_night_builds_on_it(
    night_one: Path, tmp_path: Path
) -> None:
    day1 = copy_run(night_one, tmp_path, "day1")
    assert move_current(tmp_path, day1, min_user_ratio=RATIO) == tmp_path / "day1"
    assert (tmp_path / "CURRENT").read_text() == "day1\n"
    assert read_current(tmp_path) == tmp_path / "day1"
    assert resolve_previous(tmp_path / "CURRENT") == tmp_path / "day1"
    assert move_current(tmp_path, day1, min_user_ratio=RATIO) == tmp_path / "day1"  # idempotent
    assert not list(tmp_path.glob(".CURRENT.*"))  # no temporary file left


@pytest.mark.parametrize(
    ("manifest", "why"),
    [
        ({"status": "failed", "failed_stage": "link", "error": "boom"}, "failed in stage 'link'"),
        ({"status": "running"}, "status 'running'"),
        ({"checks_failed": ["score PSI 0.4 over 0.25"]}, "check failed: score PSI"),
    ],
)
def test_a_bad_run_leaves_the_pointer_where_it_was(
    night_one: Path, tmp_path: Path, manifest: dict[str, object], why: str
) -> None:
    day1 = copy_run(night_one, tmp_path, "day1")
    write_current(tmp_path, day1)
    bad = copy_run(night_one, tmp_path, "day2", **manifest)
    with pytest.raises(ArtifactError) as refused:
        move_current(tmp_path, bad, min_user_ratio=RATIO)
    assert why in str(refused.value)
    assert "still names 'day1'" in str(refused.value)
    assert read_current(tmp_path) == tmp_path / "day1"


def test_null_scores_or_a_shrunken_population_are_refused(night_one: Path, tmp_path: Path) -> None:
    day1 = copy_run(night_one, tmp_path, "day1")
    write_current(tmp_path, day1)
    nulls = copy_run(night_one, tmp_path, "nulls")
    scores = pl.read_parquet(nulls / "scores.parquet")
    scores.with_columns(
        pl.when(pl.int_range(pl.len()) < 3).then(None).otherwise(pl.col("score")).alias("score")
    ).write_parquet(nulls / "scores.parquet")
    with pytest.raises(ArtifactError, match="3 user"):
        move_current(tmp_path, nulls, min_user_ratio=RATIO)
    small = copy_run(night_one, tmp_path, "small")
    scores.head(scores.height // 10).write_parquet(small / "scores.parquet")
    with pytest.raises(ArtifactError, match="under 50%"):
        move_current(tmp_path, small, min_user_ratio=RATIO)
    assert read_current(tmp_path) == tmp_path / "day1"


def test_the_pointer_names_only_runs_inside_the_runs_directory(
    night_one: Path, tmp_path: Path
) -> None:
    elsewhere = copy_run(night_one, tmp_path, "elsewhere")
    runs = tmp_path / "runs"
    runs.mkdir()
    with pytest.raises(ArtifactError, match="directly inside"):
        move_current(runs, elsewhere, min_user_ratio=RATIO)
    for text in ("../elsewhere", "", "/etc", "nope"):
        (runs / "CURRENT").write_text(text)
        with pytest.raises(ArtifactError):
            read_current(runs)


def test_the_current_run_is_never_rewritten_in_place(night_one: Path, tmp_path: Path) -> None:
    day1 = copy_run(night_one, tmp_path, "day1")
    write_current(tmp_path, day1)
    with pytest.raises(ArtifactError, match="is the current run"), hold_run(day1, "test"):
        pass
    with hold_run(copy_run(night_one, tmp_path, "day2"), "test") as lock:
        assert lock.owner is not None
    assert json.loads((day1 / "manifest.json").read_text())["status"] == "complete"
