"""The link stage on hand-made users: kinds, evidence, weights, hubs, determinism."""

from __future__ import annotations

from datetime import UTC, datetime

import polars as pl
import pytest

from graphfraud.config import LinkSettings
from graphfraud.linking.link import build_links
from graphfraud.schema import (
    DEVICES_SCHEMA,
    LINKS_SCHEMA,
    USERS_SCHEMA,
    conform_frame,
    polars_schema,
)


def _users(rows: list[dict[str, object]]) -> pl.DataFrame:
    base = {f: None for f in polars_schema(USERS_SCHEMA)}
    full = [{**base, "created_at": datetime(2026, 1, 1, tzinfo=UTC), **r} for r in rows]
    return conform_frame(pl.DataFrame(full, schema=polars_schema(USERS_SCHEMA)), USERS_SCHEMA)


def _email(local: str, domain: str = "gmail.com") -> dict[str, object]:
    return {"email": f"{local}@{domain}", "email_local": local, "email_domain": domain}


def _devices(rows: list[tuple[str, str, str | None]]) -> pl.DataFrame:
    frame = pl.DataFrame(
        [{"user_id": u, "device_id": d, "ip": ip, "seen_at": None} for u, d, ip in rows],
        schema=polars_schema(DEVICES_SCHEMA),
    )
    return conform_frame(frame, DEVICES_SCHEMA)


@pytest.fixture
def population() -> tuple[pl.DataFrame, pl.DataFrame]:
    users = _users(
        [
            {"user_id": "a", **_email("john.doe1"), "phone": "+919876543210"},
            {"user_id": "b", **_email("john.doe2"), "phone": "+919876543211"},
            {"user_id": "c", **_email("john.doe1"), "phone": "+919000000001"},  # same email as a
            {"user_id": "d", **_email("zed.q"), "phone": "+918000000000"},
            {"user_id": "e", **_email("yy.kk"), "phone": "+917000000000"},
        ]
    )
    # dev1 shared by d and e only; "cafe" shared by everyone (a hub at max_share=4).
    devices = _devices(
        [("d", "dev1", None), ("e", "dev1", None)] + [(u, "cafe", "10.0.0.1") for u in "abcde"]
    )
    return users, devices


def test_links_carry_kind_evidence_and_weight(
    population: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    users, devices = population
    links = build_links(users, devices, LinkSettings(max_share=4)).links
    assert links.schema == pl.DataFrame(schema=polars_schema(LINKS_SCHEMA)).schema
    got = {(r["user_a"], r["user_b"], r["kind"]) for r in links.iter_rows(named=True)}
    assert ("a", "c", "email") in got
    assert ("d", "e", "device") in got
    assert ("a", "b", "email_similar") in got
    assert ("a", "b", "phone_similar") in got
    # the café device and IP (5 users > max_share 4) link nobody
    assert not links.filter(pl.col("value_a") == "cafe").height
    assert not links.filter(pl.col("kind") == "ip").height
    assert (links["user_a"] < links["user_b"]).all()
    assert links["weight"].is_between(0, 1).all()
    assert links["evidence"].str.len_chars().min() > 10  # type: ignore[operator]
    # evidence sentences never carry the identifier values (PII stays in value_a/value_b)
    assert not links["evidence"].str.contains("@").any()


def test_rarer_shared_values_weigh_more(population: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    users, devices = population
    loose = build_links(users, devices, LinkSettings(max_share=10)).links
    cafe = loose.filter((pl.col("kind") == "device") & (pl.col("value_a") == "cafe"))[
        "weight"
    ].max()
    pair = loose.filter((pl.col("kind") == "device") & (pl.col("value_a") == "dev1"))[
        "weight"
    ].max()
    assert pair > 1.5 * cafe  # type: ignore[operator]


def test_one_link_per_pair_and_kind_and_deterministic(
    population: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    users, devices = population
    twice = pl.concat([devices, devices.with_columns(pl.col("device_id").replace("dev1", "dev2"))])
    first = build_links(users, twice, LinkSettings(max_share=4)).links
    again = build_links(
        users.sample(fraction=1.0, shuffle=True, seed=1), twice, LinkSettings(max_share=4)
    ).links
    assert first.select("user_a", "user_b", "kind").is_unique().all()
    assert first.equals(again)


def test_a_run_of_suffixes_is_one_strong_sequence() -> None:
    """`amitp001 … amitp035` links across decades (as text, amitp005 ~ amitp017 is only 75 %
    similar, under the 80 % threshold), strongly enough to hold a ring together, and more
    strongly than the same stem's scattered numbers (amitp100, amitp137, …)."""
    run = [{"user_id": f"r{i:03d}", **_email(f"amitp{i:03d}")} for i in range(1, 36)]
    scattered = [{"user_id": f"s{n}", **_email(f"amitp{n}")} for n in range(100, 1000, 37)]
    links = build_links(_users(run + scattered), _devices([]), LinkSettings()).links
    similar = links.filter(pl.col("kind") == "email_similar")
    in_run = similar.filter(
        pl.col("user_a").str.starts_with("r") & pl.col("user_b").str.starts_with("r")
    )
    assert in_run.filter((pl.col("user_a") == "r005") & (pl.col("user_b") == "r017")).height == 1
    assert in_run.height == 35 * 34 // 2
    assert in_run["weight"].min() >= LinkSettings().min_fuzzy_weight  # type: ignore[operator]
    # one-digit look-alikes far apart in number (amitp003 ~ amitp803) are links, but weaker
    # than any link inside the run
    apart = similar.filter(pl.col("user_b").str.starts_with("s"))
    assert apart["weight"].max() < in_run["weight"].min()  # type: ignore[operator]
