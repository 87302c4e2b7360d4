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


def test_one_name_in_another_order_is_a_lookalike_weighed_by_its_crowd() -> None:
    """`priya.verma` ~ `verma_priya` ~ `vermapriya` (no edit distance makes them alike) link at
    the similarity threshold, halved across providers, with support = the accounts on the name
    key; a reordering with another number is two changes; a common name written both ways by its
    crowd links no one; a rotation by one letter is no reordering."""
    settings = LinkSettings()
    ring = [
        {"user_id": "p1", **_email("priya.verma")},
        {"user_id": "p2", **_email("verma_priya", "yahoo.com")},
        {"user_id": "p3", **_email("vermapriya")},
        {"user_id": "p4", **_email("verma.priya07")},
        {"user_id": "x1", **_email("annabel")},
        {"user_id": "x2", **_email("nnabela")},
    ]
    crowd = [{"user_id": f"c{i:03d}", **_email(f"rahul.sharma{i}")} for i in range(150)]
    crowd += [{"user_id": f"d{i}", **_email(f"sharma_rahul{i}", "yahoo.com")} for i in range(3)]
    crowd += [{"user_id": f"m{i:02d}", **_email(f"amit.kumar{i}")} for i in range(30)]
    crowd += [{"user_id": "n0", **_email("kumaramit0")}]
    links = build_links(_users(ring + crowd), _devices([]), settings).links
    similar = links.filter(pl.col("kind") == "email_similar")
    got = {
        (r["user_a"], r["user_b"]): (r["similarity"], r["support"], r["evidence"])
        for r in similar.iter_rows(named=True)
    }
    weight = {(r["user_a"], r["user_b"]): r["weight"] for r in similar.iter_rows(named=True)}
    threshold = settings.email_similarity
    assert got[("p1", "p3")][:2] == (pytest.approx(threshold), 4)
    assert got[("p1", "p2")][:2] == (pytest.approx(threshold / 2), 4)  # another provider
    assert "look-alike email local parts" in got[("p1", "p3")][2]
    assert ("p1", "p4") not in got  # reordered, and a number added
    assert ("p3", "p4") not in got  # one stem: 77 % similar as text, under the threshold
    assert ("x1", "x2") not in got
    # rahul.sharma ~ sharma_rahul: 153 accounts on the key, past max_block: never paired
    assert not [pair for pair in got if {pair[0][0], pair[1][0]} == {"c", "d"}]
    # amit.kumar ~ kumaramit among 31 on the key: paired, but as weak as namesakes in a crowd
    assert got[("m00", "n0")][:2] == (pytest.approx(threshold), 31)
    assert weight[("m00", "n0")] < weight[("p1", "p3")] / 2
    assert weight[("m00", "n0")] <= weight[("m01", "m02")]  # amit.kumar1 ~ amit.kumar2


def _upi(handle: str, psp: str = "ybl") -> dict[str, object]:
    return {"upi": f"{handle}@{psp}", "upi_handle": handle, "upi_psp": psp}


def test_upi_ids_link_exactly_and_as_lookalike_handles() -> None:
    users = _users(
        [
            {"user_id": "a", **_upi("rahul.sharma1")},
            {"user_id": "b", **_upi("rahul.sharma2")},
            {"user_id": "c", **_upi("rahul.sharma1")},  # the same VPA as a
            {"user_id": "d", **_upi("9876543210")},  # phone-number handles: numbers, not names
            {"user_id": "e", **_upi("9876543211")},
            {"user_id": "f", **_upi("zara.khan77", "paytm")},
        ]
    )
    devices = _devices([])
    links = build_links(users, devices, LinkSettings()).links
    got = {(r["user_a"], r["user_b"], r["kind"]) for r in links.iter_rows(named=True)}
    assert ("a", "c", "upi") in got
    assert ("a", "b", "upi_similar") in got
    assert ("b", "c", "upi_similar") in got
    assert not any({"d", "e"} <= {a, b} for a, b, _ in got)
    assert not any("f" in (a, b) for a, b, _ in got)
    exact = links.filter(pl.col("kind") == "upi").row(0, named=True)
    assert exact["evidence"] == "same UPI id, held by 2 users"
    assert exact["weight"] == pytest.approx(1.0)
    similar = links.filter(pl.col("kind") == "upi_similar").row(0, named=True)
    assert "look-alike UPI handles" in similar["evidence"]
    assert 0 < similar["weight"] < 1


def test_a_upi_id_held_by_a_crowd_is_a_hub() -> None:
    users = _users([{"user_id": f"u{i}", **_upi("collect.fees", "paytm")} for i in range(6)])
    linked = build_links(users, _devices([]), LinkSettings(max_share=5))
    assert linked.links.filter(pl.col("kind") == "upi").is_empty()
    assert linked.stats["upi_hubs"] == 1


def test_declared_kind_links_on_shared_values_only() -> None:
    from graphfraud.identifiers import registry_for
    from graphfraud.schema import users_schema

    registry = registry_for([{"name": "pan_hash"}])
    schema = users_schema(registry)
    rows = [("a", "h1"), ("b", "h1"), ("c", "h2"), ("d", "h3"), ("e", None)]
    users = conform_frame(
        pl.DataFrame(
            [
                {
                    **{f: None for f in polars_schema(schema)},
                    "user_id": u,
                    "pan_hash": h,
                    "created_at": datetime(2026, 1, 1, tzinfo=UTC),
                }
                for u, h in rows
            ],
            schema=polars_schema(schema),
        ),
        schema,
    )
    links = build_links(users, _devices([]), LinkSettings(), registry=registry).links
    assert links.select("user_a", "user_b", "kind", "value_a").rows() == [
        ("a", "b", "pan_hash", "h1")
    ]
    assert links["evidence"][0] == "same pan hash, held by 2 users"
