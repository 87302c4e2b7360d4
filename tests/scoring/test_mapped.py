"""The mapped score store refuses whatever it cannot trust: a missing, partial, altered, corrupt
or stale store, or an unfinished run — nothing is served from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from graphfraud import schema
from graphfraud.errors import ArtifactError
from graphfraud.scoring.mapped import META_FILE, open_mapped_store, store_path, write_score_store
from graphfraud.scoring.snapshot import load_snapshot
from tests.service.factories import UNICODE_USER, write_run


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "r1")


def test_a_written_store_opens_and_answers_like_the_parquet(run: Path) -> None:
    mapped = open_mapped_store(run, verify=True)
    memory = load_snapshot(run)
    assert mapped.user(UNICODE_USER) == memory.user(UNICODE_USER) is not None
    assert mapped.holders("device", "dev-ring-a") == ("a1", "a2", "a3", "a4")
    assert mapped.ring_members("ring-a") == memory.ring_members("ring-a")
    assert not any(p.name.startswith(".") for p in store_path(run).parent.iterdir())


def test_a_missing_store_is_refused_with_what_to_do(run: Path) -> None:
    shutil.rmtree(store_path(run))
    with pytest.raises(ArtifactError, match="missing") as err:
        open_mapped_store(run)
    assert "SCORE_STORE=memory" in str(err.value)


def test_a_truncated_file_is_refused(run: Path) -> None:
    path = store_path(run) / "score.npy"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ArtifactError, match=r"partial|unreadable"):
        open_mapped_store(run)


def test_a_file_of_another_shape_is_refused(run: Path) -> None:
    np.save(store_path(run) / "ring_code.npy", np.zeros(3, np.int32), allow_pickle=False)
    with pytest.raises(ArtifactError, match="partial or altered"):
        open_mapped_store(run)


def test_flipped_bytes_fail_the_checksum_when_verified(run: Path) -> None:
    path = store_path(run) / "score.npy"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    open_mapped_store(run)  # sizes and shapes still hold: only the checksum tells
    with pytest.raises(ArtifactError, match="corrupt"):
        open_mapped_store(run, verify=True)


def test_a_store_of_other_scores_is_stale(run: Path) -> None:
    scores = pl.read_parquet(run / schema.SCORES_FILE)
    scores.with_columns(pl.col("score") * 0.5).write_parquet(run / schema.SCORES_FILE)
    with pytest.raises(ArtifactError, match="stale"):
        open_mapped_store(run)
    write_score_store(run)  # the score stage rewrites both
    assert open_mapped_store(run, verify=True).user("a1") == load_snapshot(run).user("a1")


def test_an_unfinished_run_or_a_broken_meta_is_refused(run: Path) -> None:
    manifest = json.loads((run / schema.MANIFEST_FILE).read_text())
    meta = store_path(run) / META_FILE
    meta.write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        open_mapped_store(run)
    write_score_store(run)
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format": 99}))
    with pytest.raises(ArtifactError, match="another format"):
        open_mapped_store(run)
    write_score_store(run)
    (run / schema.MANIFEST_FILE).write_text(json.dumps({**manifest, "status": "running"}))
    with pytest.raises(ArtifactError, match="not finished"):
        open_mapped_store(run)


def test_a_rewrite_replaces_the_whole_store(run: Path) -> None:
    extra = store_path(run) / "leftover.npy"
    np.save(extra, np.zeros(1), allow_pickle=False)
    write_score_store(run)
    assert not extra.exists()
    open_mapped_store(run, verify=True)
