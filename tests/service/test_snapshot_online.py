"""Snapshot loading and the online scorer, without HTTP."""

from __future__ import annotations

from pathlib import Path

import orjson
import polars as pl
import pytest

from graphfraud.config import LinkSettings, RingSettings
from graphfraud.errors import ArtifactError
from graphfraud.linking.weights import link_weight
from graphfraud.scoring.online import NewIdentity, canonical_identity, score_new_user
from graphfraud.scoring.snapshot import load_snapshot

from .factories import RING_A, UNICODE_USER, write_run

RING_BAR = RingSettings().min_weight


def test_snapshot_lookup_known_unknown_and_unicode(runs_root: Path) -> None:
    snap = load_snapshot(runs_root / "r1")
    assert snap.info.users == 16
    assert snap.info.rings == 2
    assert snap.info.online_ready
    body, known = snap.score_json("a1")
    doc = orjson.loads(body)
    assert known
    assert doc["score"] == 0.95
    assert doc["ring_id"] == "ring-a"
    assert doc["ring_score"] == 0.87
    assert doc["reasons"][0] == "RING_LABELLED_FRAUD"
    assert doc["snapshot"] == "r1"
    body, known = snap.score_json("nobody")
    doc = orjson.loads(body)
    assert not known
    assert doc["score"] == snap.info.neutral_score
    assert doc["ring_id"] is None
    # neutral score = mean score of the snapshot (documented base rate)
    mean = pl.read_parquet(runs_root / "r1" / "scores.parquet")["score"].mean()
    assert snap.info.neutral_score == pytest.approx(mean, abs=1e-6)
    assert snap.user(UNICODE_USER) is not None


def test_snapshot_rejects_duplicate_ids_and_missing_files(tmp_path: Path) -> None:
    run = write_run(tmp_path / "dup")
    scores = pl.read_parquet(run / "scores.parquet")
    pl.concat([scores, scores.head(1)]).write_parquet(run / "scores.parquet")
    with pytest.raises(ArtifactError, match="duplicate"):
        load_snapshot(run)
    (run / "scores.parquet").unlink()
    with pytest.raises(ArtifactError, match="does not exist"):
        load_snapshot(run)
    with pytest.raises(ArtifactError):
        load_snapshot(tmp_path / "nope")


def test_new_user_near_ring_scores_high_with_evidence(runs_root: Path) -> None:
    snap = load_snapshot(runs_root / "r1")
    identity, rejected = canonical_identity(
        {
            "email": "John.Doe7@GMAIL.com",
            "phone": "+91 98765 43215",
            "device": ["DEV-RING-A "],
            "ip": [],
        }
    )
    assert rejected == []
    assert identity.first("email") == "johndoe7@gmail.com"
    result = score_new_user(snap, identity, LinkSettings(), ring_min_weight=RING_BAR)
    assert result.ring_id == "ring-a"
    assert result.ring_score == 0.87
    assert result.score > 0.9 > snap.info.neutral_score
    kinds = {m.kind for m in result.matches}
    assert kinds == {"device", "email_similar", "phone_similar"}
    assert {m.user_id for m in result.matches} == set(RING_A)
    device = next(m for m in result.matches if m.kind == "device")
    assert device.support == 5
    assert device.weight == pytest.approx(link_weight("device", 1.0, 5), abs=1e-6)
    assert "NEAR_RING" in result.reasons
    assert result.reasons[0] == "NEW_USER"


def test_new_user_with_no_match_gets_neutral_score(runs_root: Path) -> None:
    snap = load_snapshot(runs_root / "r1")
    identity, _ = canonical_identity({"email": "someone.else@proton.me", "phone": None})
    result = score_new_user(snap, identity, LinkSettings(), ring_min_weight=RING_BAR)
    assert result.matches == ()
    assert result.ring_id is None
    assert result.score == snap.info.neutral_score


def test_weak_ip_link_moves_score_little_and_hubs_are_not_linked(runs_root: Path) -> None:
    snap = load_snapshot(runs_root / "r1")
    weak = score_new_user(
        snap, NewIdentity({"ip": ("203.0.113.5",)}), LinkSettings(), ring_min_weight=RING_BAR
    )
    assert {m.user_id for m in weak.matches} == {"h1", "h2"}
    assert weak.ring_id is None
    assert weak.score - snap.info.neutral_score < 0.05
    hub = score_new_user(
        snap,
        NewIdentity({"device": ("dev-ring-a",)}),
        LinkSettings(max_share=3),
        ring_min_weight=RING_BAR,
    )
    assert hub.matches == ()
    assert hub.hubs[0].support == 4
    assert "HUB_IDENTIFIER" in hub.reasons


def test_canonical_identity_reports_unparseable_fields() -> None:
    identity, rejected = canonical_identity(
        {"email": "not an email", "phone": "12", "ip": ["999.1.1.1"], "upi": "no handle"}
    )
    assert identity.empty
    assert set(rejected) == {"email", "phone", "ip", "upi"}


def test_new_user_upi_matches_exactly_and_as_a_lookalike_with_the_batch_weights(
    runs_root: Path,
) -> None:
    snap = load_snapshot(runs_root / "r1")
    exact, _ = canonical_identity({"upi": " CASHBACK2@YBL "})
    got = score_new_user(snap, exact, LinkSettings(), ring_min_weight=RING_BAR)
    by_kind = {(m.kind, m.user_id): m for m in got.matches}
    assert by_kind[("upi", "b2")].weight == pytest.approx(link_weight("upi", 1.0, 2), abs=1e-6)
    assert {u for k, u in by_kind if k == "upi_similar"} == {"b1", "b3"}
    assert got.reasons[:3] == ("NEW_USER", "NEAR_RING", "SHARED_UPI")
    assert got.ring_id == "ring-b"

    # look-alike handles by the batch's rules (`linking.lookalike`): cashback1..3 + 4 are one
    # numbered run (similarity 1.0 for consecutive numbers), and inside a sequence the support
    # (4 accounts on the stem) shrinks by the run's surplus over the stem's density: to 2
    lookalike, _ = canonical_identity({"upi": "cashback4@ybl"})
    online = score_new_user(snap, lookalike, LinkSettings(), ring_min_weight=RING_BAR)
    m = next(m for m in online.matches if m.user_id == "b3")
    assert m.kind == "upi_similar"
    assert m.similarity == pytest.approx(1.0)
    assert m.support == 2
    assert m.weight == pytest.approx(link_weight("upi_similar", m.similarity, 2), abs=1e-6)
    assert "LOOKALIKE_UPI" in online.reasons
