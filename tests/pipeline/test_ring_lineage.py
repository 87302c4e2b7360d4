"""Ring ids across three nights of the rings stage on the committed 2,000-user sample: night 1 is
the real batch's rings; nights 2 and 3 rerun the stage on edited links (two rings merged, one
split, one dissolved, one grown, one shrunk, a new one formed, then the dissolved one formed
again), each night pointing at the one before as `--previous` does."""

from __future__ import annotations

import itertools
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from graphfraud.config import Settings, load_settings
from graphfraud.pipeline import stage_ingest, stage_link, stage_rings
from graphfraud.rundir import RunDir
from graphfraud.schema import (
    DEVICES_FILE,
    IDENTIFIERS_FILE,
    LINKS_FILE,
    LINKS_SCHEMA,
    MANIFEST_FILE,
    MEMBERS_FILE,
    RING_EVENTS_FILE,
    RING_HISTORY_FILE,
    RING_IDS_FILE,
    RINGS_FILE,
    USERS_FILE,
    polars_schema,
)

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "synthetic"


@pytest.fixture(scope="module")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="module")
def night1(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> RunDir:
    run = RunDir(tmp_path_factory.mktemp("night1") / "run")
    stage_ingest(run, SAMPLE / "users.csv", SAMPLE / "devices.csv", settings)
    stage_link(run, settings)
    stage_rings(run, settings)
    return run


def _groups(run: RunDir) -> dict[str, list[str]]:
    members = run.read(MEMBERS_FILE).group_by("ring_id").agg(pl.col("user_id").sort())
    return dict(members.iter_rows())


def _clique(users: list[str], tag: str) -> list[dict[str, Any]]:
    return [
        {
            "user_a": a,
            "user_b": b,
            "kind": "device",
            "value_a": tag,
            "value_b": tag,
            "similarity": 1.0,
            "support": len(users),
            "weight": 0.95,
            "evidence": f"share device {tag}",
        }
        for a, b in itertools.combinations(sorted(users), 2)
    ]


def _next_night(
    before: RunDir, out: Path, isolate: set[str], cliques: dict[str, list[str]]
) -> RunDir:
    """A run whose previous is `before`, with `before`'s links minus every link touching
    `isolate`, plus a strong clique on each group of `cliques`."""
    run = RunDir(out)
    run.ensure()
    for name in (USERS_FILE, DEVICES_FILE, IDENTIFIERS_FILE):
        shutil.copy(before.file(name), run.file(name))
    manifest = before.manifest()
    started = datetime.fromisoformat(manifest["created_at"]) + timedelta(days=1)
    manifest.update(
        run_id=f"{out.name}-{started:%Y%m%d}",
        created_at=started.isoformat(),
        previous={"run_id": manifest["run_id"], "path": str(before.path.resolve())},
    )
    manifest.pop("stages", None)
    run.write_json(MANIFEST_FILE, manifest)
    links = before.read(LINKS_FILE)
    gone = pl.col("user_a").is_in(list(isolate)) | pl.col("user_b").is_in(list(isolate))
    added = pl.DataFrame(
        [row for tag, users in cliques.items() for row in _clique(users, tag)],
        schema=polars_schema(LINKS_SCHEMA),
    )
    run.write(LINKS_FILE, pl.concat([links.filter(~gone), added]))
    return run


def _ring_of(run: RunDir, user: str) -> str | None:
    ids = run.read(MEMBERS_FILE).filter(pl.col("user_id") == user)["ring_id"]
    return str(ids[0]) if ids.len() else None


def _events(run: RunDir) -> dict[str, tuple[str, str | None, int, int, int | None]]:
    frame = run.read(RING_EVENTS_FILE)
    assert frame["ring_id"].is_unique().all()
    return {
        r[0]: tuple(r[1:])  # type: ignore[misc]
        for r in frame.select(
            "ring_id", "event", "other_ring_id", "size_before", "size_after", "shared"
        ).rows()
    }


@pytest.fixture(scope="module")
def plan(night1: RunDir) -> dict[str, Any]:
    """Pick the night-1 rings to edit: the six largest distinct rings, and five users in none."""
    groups = _groups(night1)
    by_size = sorted(groups, key=lambda r: (-len(groups[r]), r))
    big = [r for r in by_size if len(groups[r]) >= 5]
    assert len(big) >= 6, "the sample should hold six rings of at least five members"
    merge_a, merge_b, split, dissolve, grow, shrink = big[:6]
    ringed = set(night1.read(MEMBERS_FILE)["user_id"])
    loners = sorted(set(night1.read(USERS_FILE)["user_id"]) - ringed)[:5]
    return {
        "groups": groups,
        "merge": (merge_a, merge_b),
        "split": split,
        "dissolve": dissolve,
        "grow": grow,
        "shrink": shrink,
        "loners": loners,
    }


@pytest.fixture(scope="module")
def night2(night1: RunDir, plan: dict[str, Any], settings: Settings) -> RunDir:
    g = plan["groups"]
    a, b = plan["merge"]
    split = g[plan["split"]]
    half = len(split) // 2 + 1  # the bigger part holds most of the ring
    shrink = g[plan["shrink"]]
    newcomer, *strangers = plan["loners"][:4]
    isolate = {
        *g[a],
        *g[b],
        *split,
        *g[plan["dissolve"]],
        *g[plan["grow"]],
        newcomer,
        *shrink,
        *strangers,
    }
    run = _next_night(
        night1,
        night1.path.parent / "night2",
        isolate,
        {
            "merged": g[a] + g[b],
            "split-big": split[:half],
            "split-small": split[half:],
            "grown": [*g[plan["grow"]], newcomer],
            "shrunk": shrink[1:],
            "strangers": strangers,
        },
    )
    stage_rings(run, settings)
    return run


def test_night1_issues_every_ring_and_records_its_birth(night1: RunDir) -> None:
    events = night1.read(RING_EVENTS_FILE)
    rings = night1.read(RINGS_FILE)
    assert set(events["event"]) == {"born"}
    assert sorted(events["ring_id"]) == sorted(rings["ring_id"])
    assert night1.read(RING_IDS_FILE)["ring_id"].sort().equals(rings["ring_id"].sort())
    assert night1.manifest()["stages"]["rings"]["ring_events"]["born"] == rings.height


def test_night2_keeps_ids_where_most_members_stay_and_records_what_changed(
    night1: RunDir, night2: RunDir, plan: dict[str, Any]
) -> None:
    g = plan["groups"]
    a, b = plan["merge"]
    survivor, absorbed = (a, b) if (len(g[a]), b) > (len(g[b]), a) else (b, a)
    split_old = plan["split"]
    half = len(g[split_old]) // 2 + 1
    part = _ring_of(night2, g[split_old][-1])
    born = _ring_of(night2, plan["loners"][1])
    assert part is not None
    assert born is not None
    events = _events(night2)
    merged = len(g[a]) + len(g[b])
    assert _ring_of(night2, g[absorbed][0]) == survivor
    assert events[survivor] == ("grew", None, len(g[survivor]), merged, len(g[survivor]))
    assert events[absorbed] == ("merged_into", survivor, len(g[absorbed]), 0, len(g[absorbed]))
    assert _ring_of(night2, g[split_old][0]) == split_old
    assert events[split_old] == ("shrank", None, len(g[split_old]), half, half)
    small = len(g[split_old]) - half
    assert events[part] == ("split_from", split_old, 0, small, small)
    assert events[plan["dissolve"]] == ("dissolved", None, len(g[plan["dissolve"]]), 0, None)
    grow = plan["grow"]
    assert _ring_of(night2, plan["loners"][0]) == grow
    assert events[grow] == ("grew", None, len(g[grow]), len(g[grow]) + 1, len(g[grow]))
    shrink = plan["shrink"]
    assert _ring_of(night2, g[shrink][1]) == shrink
    assert _ring_of(night2, g[shrink][0]) is None
    assert events[shrink] == (
        "shrank",
        None,
        len(g[shrink]),
        len(g[shrink]) - 1,
        len(g[shrink]) - 1,
    )
    assert events[born] == ("born", None, 0, 3, None)
    assert part not in g
    assert born not in g


def test_night2_untouched_rings_keep_their_ids(
    night1: RunDir, night2: RunDir, plan: dict[str, Any]
) -> None:
    before, after = _groups(night1), _groups(night2)
    edited = {*plan["merge"], plan["split"], plan["dissolve"], plan["grow"], plan["shrink"]}
    same = [r for r in before if r not in edited and after.get(r) == before[r]]
    assert len(same) >= 0.9 * (len(before) - len(edited))
    # Every ring whose membership is exactly last night's has last night's id.
    by_members = {tuple(m): r for r, m in before.items()}
    for ring_id, members in after.items():
        if tuple(members) in by_members:
            assert ring_id == by_members[tuple(members)]
    changed = set(_events(night2))
    assert not changed & set(same)


def test_rerunning_a_night_gives_the_same_ids_and_events(
    night2: RunDir, settings: Settings
) -> None:
    names = (MEMBERS_FILE, RINGS_FILE, RING_EVENTS_FILE, RING_HISTORY_FILE, RING_IDS_FILE)
    first = {n: night2.read(n) for n in names}
    stage_rings(night2, settings)
    for name in names:
        assert night2.read(name).equals(first[name]), name


def test_night3_never_reissues_a_retired_id(
    night1: RunDir, night2: RunDir, plan: dict[str, Any], settings: Settings
) -> None:
    dissolved = plan["dissolve"]
    members = plan["groups"][dissolved]
    night3 = _next_night(night2, night2.path.parent / "night3", set(members), {"back": members})
    stage_rings(night3, settings)
    back = _ring_of(night3, members[0])
    assert back is not None
    assert back != dissolved
    assert _events(night3)[back] == ("born", None, 0, len(members), None)
    issued_by = {
        night: set(run.read(RING_IDS_FILE)["ring_id"])
        for night, run in (("1", night1), ("2", night2), ("3", night3))
    }
    assert issued_by["1"] <= issued_by["2"] <= issued_by["3"]
    for run, earlier in ((night2, issued_by["1"]), (night3, issued_by["2"])):
        ids = run.read(RING_IDS_FILE)
        fresh = set(ids.filter(pl.col("born_run_id") == run.manifest()["run_id"])["ring_id"])
        assert fresh
        assert not fresh & earlier
        live = set(run.read(MEMBERS_FILE)["ring_id"])
        retired = set(ids.filter(pl.col("retired_run_id").is_not_null())["ring_id"])
        assert not live & retired
    history = night3.read(RING_HISTORY_FILE)
    assert history.height == sum(r.read(RING_EVENTS_FILE).height for r in (night1, night2, night3))
    assert history.filter(pl.col("ring_id") == dissolved)["event"].to_list() == [
        "born",
        "dissolved",
    ]
    assert json.loads(night3.file(MANIFEST_FILE).read_text())["stages"]["rings"]["ring_events"]
