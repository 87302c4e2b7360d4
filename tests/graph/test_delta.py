"""The delta between two runs' graphs, and how a publish picks the run it builds on (no server)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from graphfraud.graph.delta import (
    GraphDelta,
    PhaseDelta,
    choose_base,
    diff_phases,
    graph_digest,
    graph_phases,
    row_hashes,
)
from graphfraud.graph.tables import load_tables
from graphfraud.schema import MANIFEST_FILE, SCORES_FILE
from tests.graph.factories import LONG, NEW_USER, R1, R2, R3, C, D, Q, U, write_run


def _digest(run: Path) -> str:
    phases = graph_phases(load_tables(run))
    return graph_digest(phases, {p.name: row_hashes(p.rows) for p in phases})


def _delta(old: Path, new: Path) -> GraphDelta:
    a, b = graph_phases(load_tables(old)), graph_phases(load_tables(new))
    return diff_phases(
        a, b, {p.name: row_hashes(p.rows) for p in a}, {p.name: row_hashes(p.rows) for p in b}
    )


def _phase(delta: GraphDelta, name: str) -> PhaseDelta:
    return next(d for d in delta.phases if d.phase.name == name)


def _keys(frame: pl.DataFrame, *columns: str) -> set[Any]:
    if "props" in frame.columns and not set(columns) <= set(frame.columns):
        frame = frame.with_columns(pl.col("props").struct.field("kind"))
    rows = frame.select(columns).rows()
    return {r[0] if len(r) == 1 else r for r in rows}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("delta")
    return write_run(root / "old"), write_run(root / "new", run_id="run-2", newer=True)


def test_delta_holds_exactly_what_changed(runs: tuple[Path, Path]) -> None:
    delta = _delta(*runs)
    users = _phase(delta, "users")
    # score or ring changes (R1's score moved, so every R1 member changed), plus the new user
    assert _keys(users.upserts, "key") == {Q, U, C, LONG, D, "d2", "e1", "e2", NEW_USER}
    assert users.deleted.height == 0
    rings = _phase(delta, "rings")
    assert (_keys(rings.upserts, "key"), _keys(rings.deleted, "key")) == ({R1, R3}, {R2})
    links = _phase(delta, "links")
    assert _keys(links.upserts, "user_a", "user_b", "kind") == {
        (Q, NEW_USER, "email"),
        ("e1", "e2", "email"),  # now inside ring R3: its ring tag changed
    }
    assert _keys(links.deleted, "user_a", "user_b", "kind") == {
        (LONG, C, "ip"),
        ("e4", "e5", "ip"),
        (LONG, D, "email_similar"),
        ("d2", D, "device"),
    }
    members = _phase(delta, "memberships")
    assert _keys(members.deleted, "user_id", "ring_id") == {(LONG, R1), (D, R2), ("d2", R2)}
    # R2 is DETACH DELETEd, which takes its memberships along: only LONG's is sent
    assert _keys(members.to_delete, "user_id", "ring_id") == {(LONG, R1)}
    # only new memberships: R1's moved score is on its Ring node, not on every member's edge
    assert _keys(members.upserts, "user_id", "ring_id") == {
        (NEW_USER, R1),
        ("e1", R3),
        ("e2", R3),
    }
    # carol's device and IP sightings are gone: dev-c is held by nobody, fe80::1 still by LONG
    assert _keys(_phase(delta, "device_identifiers").deleted, "value") == {"dev-c"}
    assert _phase(delta, "ip_identifiers").deleted.height == 0
    device_holds = _phase(delta, "device_holds")
    assert _keys(device_holds.deleted, "user_id", "value") == {(C, "dev-c")}
    assert device_holds.to_delete.height == 0  # detached with dev-c
    assert _keys(_phase(delta, "ip_holds").to_delete, "user_id", "value") == {(C, "fe80::1")}
    assert _keys(_phase(delta, "email_holds").upserts, "user_id") == {NEW_USER}
    assert delta.count(node=True, upserted=False) == 2  # R2, dev-c


def test_same_run_has_an_empty_delta(runs: tuple[Path, Path]) -> None:
    delta = _delta(runs[1], runs[1])
    assert delta.rows == 0
    assert all(d.upserts.height == d.deleted.height == 0 for d in delta.phases)


def test_a_kind_only_one_run_has_is_all_upserts_or_all_deletes(runs: tuple[Path, Path]) -> None:
    """A run without the email kind deletes every email node (their edges go with them)."""
    old, new = runs
    a = graph_phases(load_tables(old))
    b = tuple(p for p in graph_phases(load_tables(new)) if not p.name.startswith("email_"))
    hashes = {p.name: row_hashes(p.rows) for p in a}
    delta = diff_phases(a, b, hashes, {p.name: row_hashes(p.rows) for p in b})
    emails = _phase(delta, "email_identifiers")
    assert emails.deleted.height == load_tables(old).identifiers["email"].height > 0
    assert _phase(delta, "email_holds").deleted.height > 0
    assert _phase(delta, "email_holds").to_delete.height == 0  # detached with the emails
    back = diff_phases(b, a, {p.name: row_hashes(p.rows) for p in b}, hashes)
    assert _phase(back, "email_identifiers").upserts.height == emails.deleted.height


def test_digest_is_stable_and_sees_any_change(runs: tuple[Path, Path], tmp_path: Path) -> None:
    old, _ = runs
    assert _digest(old) == _digest(old)
    copy = tmp_path / "copy"
    shutil.copytree(old, copy)
    assert _digest(copy) == _digest(old)
    scores = pl.read_parquet(copy / SCORES_FILE)
    scores.with_columns(
        score=pl.when(pl.col("user_id") == "e5").then(0.06).otherwise(pl.col("score"))
    ).write_parquet(copy / SCORES_FILE)
    assert _digest(copy) != _digest(old)


def _meta(run: Path, **extra: Any) -> dict[str, Any]:
    tables = load_tables(run)
    return {
        "run_id": tables.run_id,
        "target_run_id": tables.run_id,
        "status": "complete",
        "digest": _digest(run),
        "run_path": str(run),
        **extra,
    }


def test_base_is_the_run_the_graph_holds(runs: tuple[Path, Path]) -> None:
    old, new = runs
    base = choose_base(_meta(old), new, "run-2", full=False)
    assert (base.run_id, base.run_dir, base.reason) == ("run-1", old, "delta from run run-1")


def test_base_is_found_through_previous_or_beside_the_run(
    runs: tuple[Path, Path], tmp_path: Path
) -> None:
    old, new = runs
    nights = tmp_path / "nights"
    shutil.copytree(old, nights / "a-day1")
    shutil.copytree(new, nights / "b-day2")
    meta = _meta(old, run_path="/nowhere/moved")
    beside = choose_base(meta, nights / "b-day2", "run-2", full=False)
    assert beside.run_dir == nights / "a-day1"
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(new, elsewhere / "day2")
    manifest = json.loads((elsewhere / "day2" / MANIFEST_FILE).read_text())
    manifest["previous"] = {"run_id": "run-1", "path": str(nights / "a-day1")}
    (elsewhere / "day2" / MANIFEST_FILE).write_text(json.dumps(manifest))
    assert choose_base(meta, elsewhere / "day2", "run-2", False).run_dir == nights / "a-day1"


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("full", "a full publish was asked for"),
        ("empty", "the graph holds no published run"),
        ("unfinished", "unfinished publish of run run-9"),
        ("no-digest", "published without a digest"),
        ("gone", "the directory of run run-1, which the graph holds, was not found"),
        ("changed", "no longer holds what was published as run-1"),
    ],
)
def test_full_publish_when_the_base_cannot_be_trusted(
    runs: tuple[Path, Path], tmp_path: Path, case: str, reason: str
) -> None:
    old, new = runs
    meta: dict[str, Any] | None = _meta(old)
    assert meta is not None
    if case == "empty":
        meta = None
    elif case == "unfinished":
        meta.update(status="publishing", target_run_id="run-9")
    elif case == "no-digest":
        del meta["digest"]
    elif case == "gone":
        meta["run_path"] = str(tmp_path / "deleted")
    elif case == "changed":
        copy = tmp_path / "changed"
        shutil.copytree(old, copy)
        pl.read_parquet(copy / SCORES_FILE).with_columns(score=pl.lit(0.5)).write_parquet(
            copy / SCORES_FILE
        )
        meta["run_path"] = str(copy)
    lone = tmp_path / "lone" / "new"
    shutil.copytree(new, lone)  # no sibling holds run-1
    base = choose_base(meta, lone, "run-2", full=case == "full")
    assert base.run_id is None
    assert reason in base.reason


def test_a_crashed_publish_resumes_as_a_delta_of_its_own_target(runs: tuple[Path, Path]) -> None:
    old, new = runs
    meta = _meta(old, status="publishing", target_run_id="run-2")
    assert choose_base(meta, new, "run-2", full=False).run_id == "run-1"
