"""Namesake crowds are compared only where a pair can still link, and the links are those of
comparing everything."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from graphfraud.config import LinkSettings, load_settings
from graphfraud.identifiers import BUILTIN
from graphfraud.ingest.validate import ingest
from graphfraud.linking import link
from graphfraud.linking.link import Links, build_links
from graphfraud.linking.lookalike import NO_BACKGROUND, NumberBackground
from graphfraud.linking.weights import link_weight, max_linkable_support
from graphfraud.synthetic import generate_population
from tests.linking.test_link import _devices, _email, _users


@pytest.mark.parametrize(("prior", "decay", "floor"), [(0.85, 0.5, 0.1), (0.6, 1.0, 0.05)])
def test_no_support_past_the_bound_reaches_the_weight_floor(
    prior: float, decay: float, floor: float
) -> None:
    bound = max_linkable_support(prior, decay, floor)
    assert bound is not None
    weights = [prior * (2 / s) ** decay for s in range(bound - 1, bound + 200)]
    assert weights[0] >= floor  # one below the bound still links at similarity 1
    assert max(weights[2:]) < floor  # nothing past it does
    assert max_linkable_support(1.0, 0.0, 0.1) is None  # a kind whose weight never fades


def _unpruned(
    monkeypatch: pytest.MonkeyPatch, users: pl.DataFrame, devices: pl.DataFrame, s: LinkSettings
) -> Links:
    """The links of comparing every crowd all against all (no bound), for reference."""
    with monkeypatch.context() as patch:
        patch.setattr(link, "namesake_bound", lambda rule, settings: None)
        return build_links(users, devices, s)


@pytest.mark.parametrize("seed", [3, 4])
def test_pruned_crowds_give_the_links_of_comparing_everything(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A weight floor of 0.3 puts the bound at 17 accounts: the population's common first
    names (`priya`, `rahul`: 40-80 accounts) are crowds past it."""
    settings = load_settings()
    population = generate_population(5_000, seed)
    day = ingest(population.users, population.devices, settings.ingest)
    strict = LinkSettings(max_block=10, min_fuzzy_weight=0.3)
    pruned = build_links(day.users, day.devices, strict)
    everything = _unpruned(monkeypatch, day.users, day.devices, strict)
    assert pruned.links.equals(everything.links)
    assert pruned.links.filter(pl.col("kind") == "email_similar").height > 100
    # fewer comparisons, and the similar pairs kept are those of the full pass that can link
    assert pruned.stats["email_similar_candidates"] < everything.stats["email_similar_candidates"]
    key = ["user_a", "user_b", "kind"]
    assert pruned.lookalikes.join(everything.lookalikes, on=key, how="anti").is_empty()
    dropped = everything.lookalikes.join(pruned.lookalikes, on=key, how="anti")
    assert dropped.height > 100
    assert dropped.join(everything.links, on=key, how="semi").is_empty()


def _numbers(rng: np.random.Generator, n: int) -> list[int]:
    """Suffix numbers as honest people pick them: birth years, two-digit years, or any number
    up to 9999 (none in the ring's 470-545)."""
    kind = rng.integers(3, size=n)
    years = rng.integers(1960, 2006, size=n)
    spread = rng.integers(1, 9_000, size=n)
    spread = np.where(spread >= 470, spread + 76, spread)
    return np.where(kind == 0, years, np.where(kind == 1, years % 100, spread)).tolist()


def test_a_numbered_ring_inside_a_namesake_crowd_is_still_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """190 honest `rahul.sharma<n>` (birth years, two-digit years, any number) and a ring
    `rahul.sharma501 … 512` on one stem, among 2,000 accounts of 40 other names numbered the
    same way: past the bound, only the pairs whose numbers could be a sequence are compared, and
    only the ring's link. Birth years crowd every name, so the namesakes born in one decade are
    no sequence (`lookalike.NumberBackground`)."""
    rng = np.random.default_rng(5)
    seps = (".", "_", "")
    honest = list(
        dict.fromkeys(f"rahul{seps[i % 3]}sharma{n}" for i, n in enumerate(_numbers(rng, 230)))
    )[:190]
    ring = [f"rahul.sharma{501 + i}" for i in range(12)]
    others = [
        f"{first}.{last}{n}"
        for first in ("kiran", "vijay", "sunil", "mohan", "gita", "lata", "ravi", "usha")
        for last in ("rao", "iyer", "nair", "das", "jain")
        for n in dict.fromkeys(_numbers(rng, 60))
    ]
    handles = honest + ring + others
    users = _users([{"user_id": f"u{i:04d}", **_email(h)} for i, h in enumerate(handles)])
    settings = LinkSettings(max_block=20)
    bound = max_linkable_support(0.85, 0.5, settings.min_fuzzy_weight)
    assert bound is not None
    crowd = len(honest) + len(ring)
    assert crowd > bound
    found = build_links(users, _devices([]), settings)
    everything = _unpruned(monkeypatch, users, _devices([]), settings)
    assert found.links.equals(everything.links)
    on_stem = found.links.filter(
        (pl.col("kind") == "email_similar") & pl.col("value_a").str.starts_with("rahul")
    )
    members = {f"u{len(honest) + i:04d}" for i in range(12)}
    linked = set(on_stem["user_a"]) | set(on_stem["user_b"])
    assert linked == members  # all of the ring, none of the namesakes
    assert on_stem.height == 12 * 11 // 2
    compared = [links.stats["email_similar_candidates"] for links in (found, everything)]
    assert compared[1] - compared[0] > crowd**2 // 2  # the crowd was not compared whole
    assert on_stem["support"].max() < crowd  # the sequence shrank the crowd's support
    assert link_weight("email_similar", 1.0, crowd, BUILTIN) < settings.min_fuzzy_weight


def test_the_number_background_counts_every_handle_numbered_in_a_window() -> None:
    background = NumberBackground.of(np.array([1987, 1990, 1990, 7, 1987, 2001]), handles=10)
    lo, hi = np.array([1985, 0, -5, 2002]), np.array([1990, 10, 1987, 2100])
    assert background.within(lo, hi).tolist() == [4, 1, 3, 0]
    assert NO_BACKGROUND.within(lo, hi).tolist() == [0, 0, 0, 0]


def test_a_pair_with_an_end_on_a_crowded_stem_links_only_as_a_sequence_on_it() -> None:
    """Stem 0 is crowded (3 accounts past a bound of 2), stem 1 is not: of the pairs with an
    end on stem 0, only the two near numbers on it may link; `linkable` then weighs their
    window (against a crowd of 3 and no background, the three numbers 5, 6, 7 are a run)."""
    from graphfraud.linking.namesakes import Namesakes

    names = Namesakes(
        stem=np.array([0, 0, 0, 1, 1, -1]),
        number=np.array([5, 6, 900, 7, -1, -1]),
        crowd=np.array([3.0, 2.0]),
        max_support=2,
    )
    a = np.array([0, 0, 0, 3, 3, 5])
    b = np.array([1, 2, 3, 4, 5, 4])
    # near numbers on the crowded stem; far; across stems; then pairs with no crowded end
    assert names.may_link(a, b).tolist() == [True, False, False, True, True, True]
    assert not names.linkable(a, b)[1:3].any()
    assert names.linkable(a, b)[3:].all()


@pytest.mark.parametrize("crowded", [True, False], ids=["support-by-stem", "support-by-pair"])
def test_the_batch_weighs_every_sequence_as_the_online_scorer_does(crowded: bool) -> None:
    """`sequential_supports` (the batch: each distinct stem and numbers weighed once) gives
    every pair the support `sequential_support` (the online scorer: one pair) gives it, when
    the support is the stem's crowd and when it is not."""
    from graphfraud.linking.lookalike import sequential_support, sequential_supports

    rng = np.random.default_rng(8)
    stems = rng.integers(0, 6, size=600)
    numbers = np.where(
        rng.random(600) < 0.5, rng.integers(1970, 2005, 600), rng.integers(0, 400, 600)
    )
    crowd = np.bincount(stems).astype(np.float64)
    pick = rng.integers(0, 600, size=400)
    stem = stems[pick]
    a = numbers[pick]
    b = a + rng.integers(-4, 5, size=400)
    support = crowd[stem] if crowded else crowd[stem] + rng.integers(0, 3, size=400)
    batch = sequential_supports(support, stems, numbers, stem, a, b, handles=900)
    background = NumberBackground.of(numbers, handles=900)
    online = [
        sequential_support(int(s), int(x), int(y), np.sort(numbers[stems == g]), background)
        for s, g, x, y in zip(support, stem, a, b, strict=True)
    ]
    assert batch.tolist() == online
    assert (batch < support).any()  # some windows are dense enough to shrink the crowd
