"""Verdicts become the next batch's labels: newest wins, a user verdict beats a ring's, legit
clears a fraud label, needs_review leaves the input alone; the ingest stage counts them."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from graphfraud.config import load_settings
from graphfraud.pipeline import stage_ingest
from graphfraud.rundir import RunDir
from graphfraud.verdicts.labels import apply_verdicts
from graphfraud.verdicts.store import NewVerdict, Outcome, SqliteVerdictStore, Subject

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "synthetic"


def _v(subject: Subject, sid: str, outcome: Outcome, members: tuple[str, ...]) -> NewVerdict:
    return NewVerdict(subject, sid, outcome, "", members, "k", "investigator", None)


def _store(tmp: Path, verdicts: list[NewVerdict]) -> SqliteVerdictStore:
    store = SqliteVerdictStore(tmp / "verdicts.sqlite3")
    for v in verdicts:
        store.record(v)
    return store


def test_newest_wins_user_beats_ring_legit_clears(tmp_path: Path) -> None:
    users = pl.DataFrame(
        {"user_id": ["a", "b", "c", "d", "e", "f"], "label": [None, 1, 1, 0, None, 1]},
        schema={"user_id": pl.String, "label": pl.Int8},
    )
    store = _store(
        tmp_path,
        [
            _v(Subject.USER, "a", Outcome.LEGIT, ("a",)),
            _v(Subject.USER, "a", Outcome.CONFIRMED_FRAUD, ("a",)),  # newer: a is fraud
            _v(Subject.USER, "b", Outcome.LEGIT, ("b",)),  # clears b's input fraud label
            _v(Subject.RING, "r1", Outcome.CONFIRMED_FRAUD, ("c", "d", "e", "f", "ghost")),
            _v(Subject.USER, "d", Outcome.NEEDS_REVIEW, ("d",)),  # user-level: keeps d's 0
            _v(Subject.USER, "f", Outcome.LEGIT, ("f",)),  # older than nothing: f's own verdict
        ],
    )
    applied = apply_verdicts(users, store.frame())
    assert applied.users.schema == users.schema
    assert applied.users["label"].to_list() == [1, 0, 1, 0, 1, 0]
    assert applied.counts == {
        "verdicts": 6,
        "users_with_verdict": 6,
        "labelled_fraud": 3,  # a, c, e
        "labelled_legit": 2,  # b, f
        "needs_review": 1,  # d
        "labels_changed": 4,  # a None→1, b 1→0, e None→1, f 1→0
        "unknown_users": 1,  # ghost
        "last_verdict_id": 6,
    }


def test_a_later_ring_verdict_does_not_beat_a_user_verdict(tmp_path: Path) -> None:
    users = pl.DataFrame(
        {"user_id": ["a"], "label": [None]}, schema={"user_id": pl.String, "label": pl.Int8}
    )
    store = _store(
        tmp_path,
        [
            _v(Subject.USER, "a", Outcome.LEGIT, ("a",)),
            _v(Subject.RING, "r", Outcome.CONFIRMED_FRAUD, ("a",)),
        ],
    )
    assert apply_verdicts(users, store.frame()).users["label"].to_list() == [0]


def test_no_verdicts_change_nothing(tmp_path: Path) -> None:
    users = pl.DataFrame(
        {"user_id": ["a", "b"], "label": [None, 1]}, schema={"user_id": pl.String, "label": pl.Int8}
    )
    applied = apply_verdicts(users, _store(tmp_path, []).frame())
    assert applied.users.equals(users)
    assert applied.counts["labels_changed"] == 0


def test_the_ingest_stage_reads_verdicts_as_labels(tmp_path: Path) -> None:
    raw = pl.read_csv(SAMPLE / "users.csv", infer_schema_length=0)
    unlabelled = raw.filter(pl.col("label").is_null() | (pl.col("label") == ""))["user_id"][:3]
    fraud = raw.filter(pl.col("label") == "1")["user_id"][:2]
    store = _store(
        tmp_path,
        [
            *(_v(Subject.USER, u, Outcome.CONFIRMED_FRAUD, (u,)) for u in unlabelled),
            _v(Subject.RING, "r-old", Outcome.LEGIT, tuple(fraud)),
        ],
    )
    settings = load_settings()
    settings.verdicts.path = store.path
    run = RunDir(tmp_path / "run")
    stage_ingest(run, SAMPLE / "users.csv", SAMPLE / "devices.csv", settings)
    users = run.read("users.parquet")
    labels = dict(zip(users["user_id"].to_list(), users["label"].to_list(), strict=True))
    assert [labels[u] for u in unlabelled] == [1, 1, 1]
    assert [labels[u] for u in fraud] == [0, 0]
    counts = run.manifest()["verdicts"]
    assert counts["verdicts"] == 4
    assert (counts["labelled_fraud"], counts["labelled_legit"], counts["labels_changed"]) == (
        3,
        2,
        5,
    )
    assert run.manifest()["stages"]["ingest"]["verdicts"] == counts
    assert "dsn" not in run.manifest()["settings"]["verdicts"]
