"""An account scored online gets the look-alike links the batch would give it tonight."""

from __future__ import annotations

import re

import numpy as np
import polars as pl
import pytest

from graphfraud import schema
from graphfraud.linking.link import build_links
from graphfraud.linking.lookalike import reordered
from graphfraud.scoring.online import canonical_identity, find_matches
from graphfraud.scoring.snapshot import load_snapshot
from tests.online_run import OnlineRun

PROBE = "probe-000"


def _probes(users: pl.DataFrame, n: int) -> list[str]:
    """Emails an actor would sign up with next to existing ones: the next number of a handle, a
    typo, the same handle on another provider, a number dropped."""
    rng = np.random.default_rng(5)
    locals_ = users.select("email_local", "email_domain").drop_nulls()
    numbered = locals_.filter(pl.col("email_local").str.contains(r"\d$"))
    out: list[str] = []
    for local, domain in numbered.sample(n // 2, seed=1).iter_rows():
        digits = len(local) - len(local.rstrip("0123456789"))
        number = int(local[-digits:]) + int(rng.integers(1, 4))
        out.append(f"{local[:-digits]}{number:0{digits}d}@{domain}")
    for local, domain in locals_.sample(n - n // 2, seed=2).iter_rows():
        choice = int(rng.integers(3))
        if choice == 0 and len(local) > 4:
            i = int(rng.integers(1, len(local) - 2))
            local = local[:i] + local[i + 1] + local[i] + local[i + 2 :]
        elif choice == 1:
            domain = "yahoo.com" if domain != "yahoo.com" else "gmail.com"
        else:
            local = local.rstrip("0123456789") or local
        out.append(f"{local}@{domain}")
    return out


def _batch_links_of(
    online_run: OnlineRun, users: pl.DataFrame, devices: pl.DataFrame, email: str
) -> dict[str, tuple[float, int, float]]:
    snapshot_registry = load_snapshot(online_run.run_dir).registry
    spec = snapshot_registry.spec("email")
    parsed = spec.normaliser.scalar(email, "IN")
    assert parsed is not None
    row = {"user_id": PROBE, "email_raw": email, **parsed}
    probe = pl.DataFrame([row]).with_columns(
        pl.lit(None, pl.Datetime("us", "UTC")).alias("created_at")
    )
    augmented = pl.concat([users, probe], how="diagonal_relaxed")
    links = build_links(augmented, devices, online_run.settings.link, registry=snapshot_registry)
    mine = links.links.filter(
        ((pl.col("user_a") == PROBE) | (pl.col("user_b") == PROBE))
        & (pl.col("kind") == "email_similar")
    )
    return {
        (b if a == PROBE else a): (float(sim), int(sup), float(w))
        for a, b, sim, sup, w in mine.select(
            "user_a", "user_b", "similarity", "support", "weight"
        ).iter_rows()
    }


def _online_equals_batch(online_run: OnlineRun, probes: list[str]) -> dict[str, set[str]]:
    """Each probe's online look-alike links are its batch links, to the similarity, support and
    weight; returns the linked users' emails per probe."""
    snapshot = load_snapshot(online_run.run_dir)
    users = pl.read_parquet(online_run.run_dir / schema.USERS_FILE)
    devices = pl.read_parquet(online_run.run_dir / schema.DEVICES_FILE)
    email_of = dict(users.select("user_id", "email").iter_rows())
    linked: dict[str, set[str]] = {}
    for email in probes:
        want = _batch_links_of(online_run, users, devices, email)
        identity, _ = canonical_identity({"email": email}, registry=snapshot.registry)
        matches, _ = find_matches(snapshot, identity, online_run.settings.link)
        got = {
            m.user_id: (m.similarity, m.support, m.weight)
            for m in matches
            if m.kind == "email_similar"
        }
        assert set(got) == set(want), email
        for user_id, (sim, support, weight) in want.items():
            assert got[user_id][0] == pytest.approx(sim, abs=1e-4), (email, user_id)
            assert got[user_id][1] == support, (email, user_id)
            assert got[user_id][2] == pytest.approx(weight, abs=1e-5), (email, user_id)
        linked[email] = {email_of[u] for u in want}
    return linked


def test_online_lookalike_links_are_the_batch_links_of_the_account(online_run: OnlineRun) -> None:
    users = pl.read_parquet(online_run.run_dir / schema.USERS_FILE)
    linked = _online_equals_batch(online_run, _probes(users, 24))
    assert len(linked) == 24
    assert sum(map(len, linked.values())) >= 24  # the probes do land next to existing handles


def _reordered_probes(users: pl.DataFrame, n: int) -> list[str]:
    """Existing two-part handles (`first.last`, `first_last07`) with their parts swapped, joined
    by another separator or none, their number kept or dropped, on the same or another
    provider."""
    rng = np.random.default_rng(9)
    two_parts = (
        users.select("email_local", "email_domain")
        .drop_nulls()
        .filter(pl.col("email_local").str.contains(r"^[a-z]{3,}[._][a-z]{3,}[0-9]*$"))
        .unique()
        .sort("email_local", "email_domain")
    )
    out: list[str] = []
    for local, domain in two_parts.sample(n, seed=3).iter_rows():
        name = local.rstrip("0123456789")
        first, last = re.split(r"[._]", name)
        sep = ["", ".", "_"][int(rng.integers(3))]
        number = local[len(name) :] if rng.random() < 0.75 else ""
        if rng.random() < 0.5:
            domain = "yahoo.com" if domain != "yahoo.com" else "gmail.com"
        out.append(f"{last}{sep}{first}{number}@{domain}")
    return out


def test_online_reordered_names_are_the_batch_links_of_the_account(online_run: OnlineRun) -> None:
    users = pl.read_parquet(online_run.run_dir / schema.USERS_FILE)
    linked = _online_equals_batch(online_run, _reordered_probes(users, 16))
    assert len(linked) == 16
    # most probes link to the handle they reorder: the rule fires online as in the batch
    swapped = [
        probe
        for probe, emails in linked.items()
        if any(reordered(probe.split("@")[0], e.split("@")[0]) for e in emails)
    ]
    assert len(swapped) >= 8
