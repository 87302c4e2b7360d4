"""An incremental night's links are a full night's, to the bit: day 1 → day 2 and back (where
every addition becomes a deletion), with blocks small enough that changes push them across
`max_block`, `max_crowd` and `max_share`."""

from __future__ import annotations

import polars as pl
import pytest

from graphfraud.config import LinkSettings, load_settings
from graphfraud.identifiers import BUILTIN
from graphfraud.ingest.validate import Ingested, ingest
from graphfraud.linking.blocking import handle_reordered_pairs
from graphfraud.linking.link import Links, PreviousLinks, build_links, handle_frame, user_index
from graphfraud.linking.weights import max_linkable_support
from graphfraud.synthetic import generate_population
from graphfraud.synthetic.nights import two_nights
from graphfraud.synthetic.rings import BASE_RECIPES, RingRecipes
from tests.linking.test_link import _devices, _email, _users


def _nights(
    seed: int, recipes: RingRecipes = BASE_RECIPES, **shares: float
) -> tuple[Ingested, Ingested]:
    settings = load_settings()
    registry = settings.identifier_registry()
    population = generate_population(2_000, 20 + seed, recipes=recipes)
    nights = two_nights(population, seed, **shares)
    return (
        ingest(nights.day1_users, nights.day1_devices, settings.ingest, registry=registry),
        ingest(nights.day2_users, nights.day2_devices, settings.ingest, registry=registry),
    )


SMALL = LinkSettings(max_block=5, max_crowd=30, window=3, max_share=6)


def _incremental_is_full(
    before: pl.DataFrame, after: pl.DataFrame, devices: pl.DataFrame, settings: LinkSettings
) -> tuple[Links, Links]:
    """(full, incremental) links of the night `after` on `before`, asserted equal."""
    full_before = build_links(before, devices, settings)
    full = build_links(after, devices, settings)
    previous = PreviousLinks(before, devices, full_before.links, full_before.lookalikes)
    incremental = build_links(after, devices, settings, previous=previous)
    assert incremental.links.equals(full.links)
    assert incremental.lookalikes.equals(full.lookalikes)
    return full, incremental


# A weight floor of 0.3 puts the namesake bound at 17 accounts (`linking.namesakes`): crowds
# of common first names (`priya`, `rahul`) pass it and cross it between the nights.
PRUNED = SMALL.model_copy(update={"min_fuzzy_weight": 0.3})


@pytest.mark.parametrize(
    ("seed", "settings"),
    [(0, LinkSettings()), (1, SMALL), (2, SMALL), (4, PRUNED)],
    ids=["default", "small-blocks", "small-blocks-2", "pruned-crowds"],
)
def test_incremental_links_equal_a_full_run_both_ways(seed: int, settings: LinkSettings) -> None:
    day1, day2 = _nights(seed, new_share=0.08, changed_share=0.04, deleted_share=0.03)
    for before, after in ((day1, day2), (day2, day1)):
        full_before = build_links(before.users, before.devices, settings)
        full = build_links(after.users, after.devices, settings)
        incremental = build_links(
            after.users,
            after.devices,
            settings,
            previous=PreviousLinks(
                before.users, before.devices, full_before.links, full_before.lookalikes
            ),
        )
        assert full.links.height > 500
        assert incremental.links.equals(full.links)
        assert incremental.lookalikes.equals(full.lookalikes)
        assert incremental.support.sort("kind", "value").equals(full.support.sort("kind", "value"))
        # it did compare less than everyone (else this test proves nothing about reuse)
        focus = incremental.stats["email_similar_focus_users"]
        assert 0 < focus < after.users.height // 2
        assert incremental.stats["email_similar_reused_pairs"] > 0
        if settings is PRUNED:  # crowded stems that changed are compared again, whole
            assert incremental.stats["email_similar_focus_stems"] > 0
        for kind in ("email", "device", "ip"):
            assert 0 < incremental.stats[f"{kind}_focus_users"] < after.users.height
        assert sum(v for k, v in incremental.stats.items() if k.endswith("_reused_links")) > 100
        assert (
            incremental.stats["email_similar_candidates"] < full.stats["email_similar_candidates"]
        )


def _name_families(night: int) -> pl.DataFrame:
    """Accounts on eight names, each written in both orders (separators vary, digits kept): the
    i-th name has i + 1 accounts on night 1; on night 2 the even names gain one, the odd ones
    lose their last and one account moves to the next name, so blocks cross max_block = 4 both
    ways and most pairs stay as they were."""
    names = [
        ("priya", "verma"), ("amit", "kumar"), ("zara", "khan"), ("ravi", "teja"),
        ("neha", "joshi"), ("arjun", "rao"), ("meera", "iyer"), ("kabir", "bose"),
    ]  # fmt: skip
    forms = ["{a}.{b}", "{b}_{a}", "{b}{a}", "{a}{b}", "{b}.{a}", "{a}_{b}", "{b}-{a}", "{a}.{b}"]
    domains = ["gmail.com", "yahoo.com"]
    rows = []
    for i, (a, b) in enumerate(names):
        n = i + 1 + (0 if night == 1 else (1 if i % 2 == 0 else -1))
        for j in range(n):
            local = forms[(i + j) % len(forms)].format(a=a, b=b) + ("7" if j % 3 == 2 else "")
            moved = night == 2 and i == 2 and j == 0
            if moved:  # the first zara khan now writes as a ravi teja
                local = "teja.ravi"
            rows.append({"user_id": f"n{i}-{j}", **_email(local, domains[(i * j) % 2])})
    return _users(rows)


def test_incremental_reordered_names_equal_a_full_run() -> None:
    settings = LinkSettings(max_block=4)
    day1, day2 = _name_families(1), _name_families(2)
    devices = _devices([])
    for night in (day1, day2):  # the nights do hold reordered pairs
        emails = handle_frame(user_index(night), BUILTIN.spec("email"))
        assert handle_reordered_pairs(emails, max_block=4).height >= 3
    for before, after in ((day1, day2), (day2, day1)):
        _, incremental = _incremental_is_full(before, after, devices, settings)
        assert incremental.stats["email_similar_reused_pairs"] > 0
        assert 0 < incremental.stats["email_similar_focus_users"] < after.height


def test_a_name_key_block_crossing_max_block_refocuses_its_unchanged_pairs() -> None:
    """`priya.verma` ~ `verma_priya` (neither changes) are paired while their name key holds at
    most max_block accounts; a newcomer `priya.verma9` pushes it past and the pair must go."""
    settings = LinkSettings(max_block=3, window=2)  # no sorted neighbourhood spans u1, u2
    day1 = _users(
        [
            {"user_id": "u1", **_email("priya.verma")},
            {"user_id": "u2", **_email("verma_priya", "yahoo.com")},
            {"user_id": "u3", **_email("priyaverma2")},
            {"user_id": "u5", **_email("zoya.khan")},
        ]
    )
    day2 = pl.concat([day1, _users([{"user_id": "u4", **_email("priya.verma9")}])])
    devices = _devices([])
    for before, after in ((day1, day2), (day2, day1)):
        full, _ = _incremental_is_full(before, after, devices, settings)
        reordered = full.lookalikes.filter((pl.col("user_a") == "u1") & (pl.col("user_b") == "u2"))
        assert reordered.height == (1 if after is day1 else 0)


def test_a_crowd_crossing_the_namesake_bound_refocuses_its_pairs_with_other_stems() -> None:
    """`priyavrma` ~ `priya.verma` (neither changes) join two stems, so their support is the
    larger crowd: 18 accounts on `priyaverma` put it past the bound (17 at a weight floor of
    0.3) and the pair is never compared; when 8 of them leave, 10 do not, and it links."""
    settings = LinkSettings(min_fuzzy_weight=0.3)
    domains = ["yahoo.com", "outlook.com", "rediffmail.com", "hotmail.com", "proton.me"]
    forms = ["priyaverma", "priya.verma", "priya_verma", "priya-verma"]
    crowd = [{"user_id": f"c{i:02d}", **_email(forms[i % 4], domains[i // 4])} for i in range(17)]
    rows = [
        {"user_id": "a", **_email("priya.verma")},
        {"user_id": "b", **_email("priyavrma")},
        {"user_id": "z", **_email("zoya.khan")},
        *crowd,
    ]
    day1 = _users(rows)
    day2 = day1.filter(~pl.col("user_id").is_in([f"c{i:02d}" for i in range(9, 17)]))
    assert max_linkable_support(0.85, 0.5, settings.min_fuzzy_weight) == 17
    on_stem = [f.filter(pl.col("email_local").str.contains("verma")).height for f in (day1, day2)]
    assert on_stem == [18, 10]
    devices = _devices([])
    for before, after in ((day1, day2), (day2, day1)):
        full, _ = _incremental_is_full(before, after, devices, settings)
        pair = full.links.filter((pl.col("user_a") == "a") & (pl.col("user_b") == "b"))
        assert pair["kind"].to_list() == (["email_similar"] if after is day2 else [])


def test_lookalike_pairs_hold_every_similar_pair_before_the_weight_filter() -> None:
    day1, _ = _nights(3)
    found = build_links(day1.users, day1.devices, LinkSettings())
    similar = found.lookalikes
    assert similar["similarity"].min() >= LinkSettings().email_similarity * 0.5
    assert (similar["user_a"] < similar["user_b"]).all()
    linked = found.links.filter(pl.col("kind").str.ends_with("_similar")).filter(
        pl.col("kind") != "phone_similar"
    )
    # every look-alike link is among the similar pairs; some pairs weigh too little to link
    assert linked.join(similar, on=["user_a", "user_b", "kind"], how="anti").is_empty()
    assert similar.height > linked.height


def test_a_hub_that_gains_a_holder_refocuses_only_whoever_crosses_the_bar() -> None:
    """A café IP with more than `max_share` holders on both nights is never paired, so its
    newcomer sends none of its old holders back to linking; a value that crosses the bar does."""
    from graphfraud.identifiers import BUILTIN
    from graphfraud.linking.incremental import exact_reuse
    from graphfraud.linking.link import user_index

    ip = next(s for s in BUILTIN.kinds if s.name == "ip")
    ids = [f"u{i:02d}" for i in range(12)]

    def sightings(cafe: list[str], shared: list[str]) -> pl.DataFrame:
        rows = [(u, "10.0.0.1") for u in cafe] + [(u, "10.0.0.2") for u in shared]
        return pl.DataFrame(rows, schema=["user_id", ip.value_column], orient="row")

    users = user_index(pl.DataFrame({"user_id": ids}))
    before = sightings(ids[:8], ids[8:10])  # the café: 8 holders; 10.0.0.2: a pair
    after = sightings(ids[:9], ids[8:11])  # u08 joins the café, u10 joins the pair
    links = pl.DataFrame({"user_a": ["u08"], "user_b": ["u09"], "kind": ["ip"]})
    previous = PreviousLinks(users, before, links, pl.DataFrame())
    focus, _ = exact_reuse(users, after, previous, ip, max_share=6)
    assert sorted(users.filter(pl.Series(focus))["user_id"]) == ["u08", "u09", "u10"]
    # the same night with a higher bar: the café was paired and now holds a newcomer
    focus, _ = exact_reuse(users, after, previous, ip, max_share=10)
    assert int(focus.sum()) == 11


def test_a_run_too_big_to_pair_on_both_nights_refocuses_only_its_newcomer() -> None:
    """A suffix-number run of more than `max_block` accounts is never paired: a newcomer to it
    refocuses none of its old members, while a run that crosses the bar, or a small run that
    changes, refocuses all of its members; the links are a full night's either way."""
    from graphfraud.linking.incremental import lookalike_reuse

    def people(handles: list[str]) -> pl.DataFrame:
        return _users([{"user_id": h, **_email(h)} for h in handles])

    big = [f"amitpatel{1970 + i}" for i in range(8)]  # 8 > max_block: never paired
    small = ["nehasingh11", "nehasingh12", "nehasingh13"]
    crossing = [f"ravikumar{21 + i}" for i in range(5)]  # 5: paired, until a sixth joins
    newcomers = ["amitpatel1978", "nehasingh14", "ravikumar26"]
    before_users = people(big + small + crossing)
    after_users = people(big + small + crossing + newcomers)
    no_devices = _devices([])
    full_before = build_links(before_users, no_devices, SMALL)
    previous = PreviousLinks(before_users, no_devices, full_before.links, full_before.lookalikes)
    indexed = user_index(after_users)
    reuse = lookalike_reuse(indexed, previous, BUILTIN.spec("email"), "email_similar", SMALL)
    focused = set(indexed.filter(pl.Series(reuse.focus.users))["user_id"])
    assert focused == {"amitpatel1978", *small, "nehasingh14", *crossing, "ravikumar26"}
    full, _ = _incremental_is_full(before_users, after_users, no_devices, SMALL)
    assert full.lookalikes.height > 0
