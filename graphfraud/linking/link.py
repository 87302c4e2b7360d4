"""Link stage: users + device sightings → typed, weighted, evidenced user-user links.

Every identifier kind of the registry (`graphfraud.identifiers`) links users who share a canonical
value; kinds with a look-alike rule (email, UPI) also compare blocked handles, kinds with a
sequence rule (phone) runs of near-consecutive numbers. Each link row keeps its evidence:
kind, both canonical values, similarity, support (how many users share the value or crowd the
block) and weight. Values held by more than `max_share` users are hubs: never linked pairwise, so a
cyber-café never glues unrelated rings together; they stay visible as identifier support.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.config import LinkSettings
from graphfraud.engine import SERIAL, Engine, hash_partitions, map_frames, slices
from graphfraud.identifiers import (
    BUILTIN,
    IdentifierRegistry,
    IdentifierSpec,
    Linkage,
    LinkRule,
    Source,
)
from graphfraud.linking.blocking import (
    handle_candidate_pairs,
    handle_reordered_pairs,
    handle_run_pairs,
    number_candidate_pairs,
    pair_key_expr,
    shared_value_groups,
    unpack_pair_keys,
)
from graphfraud.linking.compare import (
    block_similar_pairs,
    number_gap_similarity,
    score_candidates,
    string_similarity,
    window_support,
)
from graphfraud.linking.keys import handle_stem_expr, local_stem_expr, with_name_key
from graphfraud.linking.lookalike import (
    CROSS_DOMAIN_DISCOUNT,
    MIN_HANDLE_LETTERS,
    SEQUENCE_MAX_GAP,
    SUFFIX,
    SUFFIX_RUN_GAP,
    sequential_supports,
)
from graphfraud.linking.namesakes import Namesakes, namesake_bound
from graphfraud.linking.weights import link_weight_expr
from graphfraud.schema import LINKS_SCHEMA, conform_frame

# Half-width of the number range used to estimate how densely phone numbers are allocated.
_PHONE_DENSITY_SPAN = 5_000

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Links:
    """The link artifact plus what the feature stage needs to know about identifiers, and the
    similar handle pairs an incremental night reuses."""

    links: pl.DataFrame  # LINKS_SCHEMA
    support: pl.DataFrame  # kind, value, support — every identifier value, hubs included
    stats: dict[str, int] = field(default_factory=dict)
    # user_a, user_b, kind, similarity: every look-alike pair at or above the similarity
    # threshold that could link (`linking.namesakes`), before the weight filter (LOOKALIKES_FILE)
    lookalikes: pl.DataFrame = field(default_factory=pl.DataFrame)


@dataclass(frozen=True)
class Focus:
    """The pairs an incremental night compares again (`linking.incremental`): every pair with
    an end in `users`, every pair on one of the `stems`, plus the few listed in `pairs`."""

    users: npt.NDArray[np.bool_]  # a mask over today's uids
    pairs: npt.NDArray[np.uint64]  # sorted packed keys (`blocking.pair_key_expr`), today's uids
    # by today's uid: an id of its local stem if every pair on that stem is in focus, else -1
    stems: npt.NDArray[np.int64] | None = None

    def touches(self, frame: pl.DataFrame) -> npt.NDArray[np.bool_]:
        """Per row of `frame` (`a, b`): is the pair in focus?"""
        a, b = frame["a"].to_numpy(), frame["b"].to_numpy()
        hit = self.users[a] | self.users[b]
        if self.stems is not None:
            hit |= (self.stems[a] >= 0) & (self.stems[a] == self.stems[b])
        if len(self.pairs):
            keys = np.minimum(a, b).astype(np.uint64) << np.uint64(32) | np.maximum(a, b)
            at = np.minimum(np.searchsorted(self.pairs, keys), len(self.pairs) - 1)
            hit |= self.pairs[at] == keys
        return np.asarray(hit)

    def select(self, frame: pl.DataFrame, *, inside: bool = True) -> pl.DataFrame:
        """The rows of `frame` in focus (or, with `inside=False`, the others)."""
        hit = self.touches(frame)
        return frame.filter(pl.Series(hit if inside else ~hit))

    def stem_count(self) -> int:
        """How many local stems are in focus."""
        return 0 if self.stems is None else int(np.unique(self.stems[self.stems >= 0]).size)

    def rows(self) -> npt.NDArray[np.bool_]:
        """A mask over uids: those with a pair in focus whatever the other end (`users`, and
        everyone on a focused stem), which a crowd compares against its whole block."""
        return self.users if self.stems is None else self.users | (self.stems >= 0)


@dataclass(frozen=True)
class Reuse:
    """What an incremental night reuses for one look-alike kind (`linking.incremental`)."""

    focus: Focus  # the pairs to compare again
    similar: pl.DataFrame  # a, b (today's uids), similarity: last night's pairs, both ends here


@dataclass(frozen=True)
class PreviousLinks:
    """The previous night's artifacts an incremental link stage compares and reuses."""

    users: pl.DataFrame  # its users artifact
    devices: pl.DataFrame  # its devices artifact
    links: pl.DataFrame  # its LINKS_FILE
    lookalikes: pl.DataFrame  # its LOOKALIKES_FILE


def user_index(users: pl.DataFrame) -> pl.DataFrame:
    """Users sorted by id with a dense u32 `uid`: the stage's internal key (never leaves it)."""
    return users.sort("user_id").with_row_index("uid")


def _exact_links(
    holders: pl.DataFrame, kind: str, max_share: int, focus: npt.NDArray[np.bool_] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    pairs, support = shared_value_groups(holders, max_share, focus)
    links = pairs.select(
        "a",
        "b",
        pl.lit(kind).alias("kind"),
        pl.col("value").alias("value_a"),
        pl.col("value").alias("value_b"),
        pl.lit(1.0, dtype=pl.Float32).alias("similarity"),
        pl.col("support").cast(pl.Int32),
    )
    return links, support.select(pl.lit(kind).alias("kind"), "value", "support")


def _exact_links_on(
    engine: Engine,
    holders: pl.DataFrame,
    kind: str,
    max_share: int,
    focus: npt.NDArray[np.bool_] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`_exact_links` with the values spread over `engine` (every holder of a value in one
    part: its pairs and support are those of the whole)."""
    parts = hash_partitions(holders.drop_nulls("value"), "value", engine.partitions)
    if len(parts) == 1:
        return _exact_links(holders, kind, max_share, focus)
    done = engine.map(_exact_links, parts, kind, max_share, focus)
    return pl.concat([links for links, _ in done]), pl.concat([support for _, support in done])


def similar_handle_pairs(
    emails: pl.DataFrame,
    settings: LinkSettings,
    focus: Focus | None = None,
    engine: Engine = SERIAL,
    max_support: int | None = None,
) -> tuple[pl.DataFrame, int]:
    """`a, b, similarity` for every blocked handle pair at or above the threshold that could
    link, and how many comparisons it took. Small blocks are enumerated as candidate pairs,
    compared only if they `Namesakes.may_link`; the namesake crowds (more than `max_block` users
    on one stem) are scored all-against-all with `cdist`, but for those on a local stem held by
    more than `max_support` accounts, where only the pairs of a numbered sequence can link
    (`linking.namesakes`). Reordered names (`blocking.handle_reordered_pairs`) score the
    threshold (`linking.lookalike`).

    `emails`: `uid, local, domain, stem, local_stem, num, name`. With `focus`, only the pairs in
    focus are compared (`linking.incremental`): the blocks are still formed over everyone, so
    those pairs are exactly the full pass's. `engine` scores slices of the candidates and the crowds
    (by stem) in parallel; the pairs are the same.
    """
    threshold = settings.email_similarity
    namesakes = None if max_support is None else Namesakes.of(emails, max_support)
    uid = emails["uid"].cast(pl.Int64).to_numpy()
    on_crowd = np.zeros(len(uid), np.bool_) if namesakes is None else namesakes.crowded(uid)
    blocked = emails.with_columns(pl.Series("crowded", on_crowd))
    candidates = handle_candidate_pairs(
        blocked, window=settings.window, max_block=settings.max_block
    )
    if focus is not None:
        candidates = focus.select(candidates)
    if namesakes is not None:  # what cannot link is not compared
        candidates = candidates.filter(pl.Series(_may_link(namesakes, candidates)))
    texts = emails.select("uid", pl.col("local").alias("text"))
    scored = map_frames(
        engine, score_candidates, slices(candidates, engine.partitions), texts, threshold
    )
    # the handles of the namesake crowds: stems of more than max_block, up to max_crowd
    in_crowds = (
        blocked.filter(pl.col("stem").is_not_null())
        .select("uid", "stem", "local", "crowded")
        .filter(pl.len().over("stem").is_between(settings.max_block + 1, settings.max_crowd))
    )
    crowded = in_crowds["crowded"]
    in_crowds = in_crowds.drop("crowded")
    compare_crowd = partial(
        block_similar_pairs,
        key="stem",
        text="local",
        min_size=settings.max_block,
        max_size=settings.max_crowd,
        threshold=threshold,
        focus=None if focus is None else focus.rows(),
    )
    whole = in_crowds.filter(~crowded)
    crowds = map_frames(engine, compare_crowd, hash_partitions(whole, "stem", engine.partitions))
    crowd_cells = int((whole.group_by("stem").len()["len"].cast(pl.Int64) ** 2).sum())
    if namesakes is not None:
        sequences = namesakes.sequence_pairs(in_crowds.filter(crowded), "stem")
        if focus is not None:
            sequences = focus.select(sequences)
        crowds = pl.concat([crowds, score_candidates(sequences, texts, threshold)])
        crowd_cells += sequences.height
    runs = handle_run_pairs(emails, max_gap=SUFFIX_RUN_GAP, max_block=settings.max_block)
    reordered = handle_reordered_pairs(emails, max_block=settings.max_block)
    if focus is not None:
        runs = focus.select(runs)
        reordered = focus.select(reordered)
        crowds = pl.concat([crowds, _crowd_pairs_in(focus.pairs, in_crowds, threshold)])
        crowd_cells = crowds.height
    in_runs = runs.select(
        "a",
        "b",
        number_gap_similarity(pl.col("run_span") / (pl.col("run_size") - 1), SUFFIX_RUN_GAP).alias(
            "similarity"
        ),
    )
    names = reordered.select("a", "b", pl.lit(threshold, dtype=pl.Float32).alias("similarity"))
    # the best similarity per pair (a < b), grouped on one packed u64: a two-column key is
    # row-encoded first, and at 1M users these are ~15M rows
    best = (
        pl.concat([scored, crowds, in_runs, names])
        .group_by(pair_key_expr())
        .agg(pl.col("similarity").max())
    )
    both = pl.concat([unpack_pair_keys(best["ab"]), best.select("similarity")], how="horizontal")
    if namesakes is not None:
        a, b = (both[c].cast(pl.Int64).to_numpy() for c in ("a", "b"))
        both = both.filter(pl.Series(namesakes.linkable(a, b)))
    return both, candidates.height + crowd_cells + reordered.height


def _may_link(
    namesakes: Namesakes, pairs: pl.DataFrame, chunk: int = 1 << 23
) -> npt.NDArray[np.bool_]:
    """`Namesakes.may_link` of `pairs` (`a, b`), a chunk at a time: at 4M users they are 150M
    candidates, whose uids would take 2.4 GB as int64 at once."""
    parts = [np.empty(0, np.bool_)]
    for start in range(0, pairs.height, chunk):
        part = pairs.slice(start, chunk)
        a, b = (part[c].cast(pl.Int64).to_numpy() for c in ("a", "b"))
        parts.append(namesakes.may_link(a, b))
    return np.concatenate(parts)


def _crowd_pairs_in(
    keys: npt.NDArray[np.uint64], in_crowds: pl.DataFrame, threshold: float
) -> pl.DataFrame:
    """`block_similar_pairs` for just the pairs `keys` (packed): those on one crowd stem
    (`in_crowds`: `uid, stem, local` of the crowds' handles)."""
    side = in_crowds.select(pl.col("uid").cast(pl.UInt32), "stem", "local")
    pairs = (
        unpack_pair_keys(pl.Series(keys))
        .join(side.rename({"uid": "a"}), on="a")
        .join(side.rename({"uid": "b"}), on="b", suffix="_b")
        .filter(pl.col("stem") == pl.col("stem_b"))
    )
    similarity = string_similarity(
        pairs["local"].to_list(), pairs["local_b"].to_list(), score_cutoff=threshold
    )
    return pairs.select("a", "b", pl.Series("similarity", similarity)).filter(
        pl.col("similarity") >= threshold
    )


def handle_frame(users: pl.DataFrame, spec: IdentifierSpec) -> pl.DataFrame:
    """The comparable handles of one look-alike kind: `uid, email, local, domain, stem,
    local_stem, num, name` (`users` indexed by `user_index`, plus `user_id` when present)."""
    assert spec.handle_columns is not None  # the registry checks it for look-alike kinds
    local, domain = spec.handle_columns
    keep = [c for c in ("uid", "user_id") if c in users.columns]
    emails = users.select(
        *keep,
        pl.col(spec.value_column).alias("email"),
        pl.col(local).alias("local"),
        pl.col(domain).alias("domain"),
    ).filter(
        pl.col("local").is_not_null()
        & pl.col("domain").is_not_null()
        & (pl.col("local").str.count_matches(r"[a-z]") >= MIN_HANDLE_LETTERS)
    )
    return with_name_key(
        emails.with_columns(
            handle_stem_expr().alias("stem"),
            local_stem_expr().alias("local_stem"),
            pl.col("local").str.extract(SUFFIX, 1).cast(pl.Int64, strict=False).alias("num"),
        )
    )


def _lookalike_links(
    users: pl.DataFrame,
    spec: IdentifierSpec,
    kind: str,
    settings: LinkSettings,
    registry: IdentifierRegistry,
    reuse: Reuse | None = None,
    engine: Engine = SERIAL,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Look-alike handles of one kind (`john.doe1@gmail.com` ~ `john.doe2@gmail.com`,
    `rahul.sharma1@ybl` ~ `rahul.sharma2@ybl`): the links, and every similar pair before the
    weight filter (`a, b, similarity`: what an incremental night reuses).

    With `reuse`, only the pairs in `reuse.focus` are compared; the previous night's
    similar pairs stand for the rest. Support and weight are always recomputed over everyone:
    they change when a crowd grows or shrinks."""
    emails = handle_frame(users, spec).drop("user_id", strict=False)
    bound = namesake_bound(registry.link_rule(kind), settings)
    if reuse is None:
        similar, n_candidates = similar_handle_pairs(
            emails, settings, engine=engine, max_support=bound
        )
    else:
        fresh, n_candidates = similar_handle_pairs(emails, settings, reuse.focus, engine, bound)
        kept = reuse.focus.select(reuse.similar, inside=False)
        similar = pl.concat([kept, fresh.select(kept.columns)])
    # Everything up to the weight filter works on integer ids (millions of pairs at 1M users);
    # the email strings are joined only onto the links that survive it.
    side = emails.select(
        "uid",
        pl.col("email").rank("dense").alias("eid"),
        pl.col("domain").rank("dense").alias("did"),
        pl.col("local_stem").rank("dense").alias("sid"),
        pl.col("name").rank("dense").alias("nid"),
        "num",
    )
    pairs = (
        similar.join(
            side.rename({c: f"{c}_a" for c in side.columns if c != "uid"}),
            left_on="a",
            right_on="uid",
        )
        .join(
            side.rename({c: f"{c}_b" for c in side.columns if c != "uid"}),
            left_on="b",
            right_on="uid",
        )
        .filter(pl.col("eid_a") != pl.col("eid_b"))  # identical emails are exact links
    )
    if pairs.is_empty():
        return pairs.select("a", "b"), similar, n_candidates
    # The same handle on two providers is common among honest namesakes (amit.dubey@gmail.com,
    # amit.dubey@yahoo.com): a cross-provider match counts as half as similar.
    pairs = pairs.with_columns(
        pl.when(pl.col("did_a") != pl.col("did_b"))
        .then(pl.col("similarity") * CROSS_DOMAIN_DISCOUNT)
        .otherwise(pl.col("similarity"))
        .alias("similarity")
    )
    # Support: how crowded the name is, across all providers (numbered runs: see below).
    stem_size = side.group_by("sid").agg(pl.len().cast(pl.Int32).alias("n")).drop_nulls()
    pairs = (
        pairs.join(stem_size.rename({"sid": "sid_a", "n": "n_a"}), on="sid_a", how="left")
        .join(stem_size.rename({"sid": "sid_b", "n": "n_b"}), on="sid_b", how="left")
        .with_columns(
            pl.max_horizontal(pl.col("n_a").fill_null(2), pl.col("n_b").fill_null(2), 2).alias(
                "support"
            )
        )
        .drop("n_a", "n_b", "eid_a", "eid_b", "did_a", "did_b")
    )
    # Two different stems of one name key (priya.verma ~ verma_priya): the crowd on the key, both
    # orders of the name on every provider (`lookalike.reordered_support`).
    name_size = side.group_by("nid").agg(pl.len().cast(pl.Int32).alias("n_name")).drop_nulls()
    pairs = (
        pairs.join(name_size.rename({"nid": "nid_a"}), on="nid_a", how="left")
        .with_columns(
            pl.when((pl.col("nid_a") == pl.col("nid_b")) & (pl.col("sid_a") != pl.col("sid_b")))
            .then(pl.max_horizontal("support", "n_name"))
            .otherwise(pl.col("support"))
            .alias("support")
        )
        .drop("n_name", "nid_a", "nid_b")
    )
    pairs = _sequential_support(pairs, side)
    pairs = pairs.with_columns(pl.lit(kind).alias("kind"))
    # Namesakes in a crowd (rahul.sharma12 ~ rahul.sharma87 among thousands) are similar but
    # weigh next to nothing: dropping them keeps the graph (and every later stage) small.
    pairs = pairs.filter(link_weight_expr(registry) >= settings.min_fuzzy_weight)
    values = emails.select("uid", "email")
    links = (
        pairs.join(values.rename({"uid": "a", "email": "value_a"}), on="a")
        .join(values.rename({"uid": "b", "email": "value_b"}), on="b")
        .select(
            "a",
            "b",
            "kind",
            "value_a",
            "value_b",
            pl.col("similarity").cast(pl.Float32),
            pl.col("support").cast(pl.Int32),
        )
    )
    return links, similar, n_candidates


def _sequential_support(pairs: pl.DataFrame, side: pl.DataFrame) -> pl.DataFrame:
    """Lower the support of pairs inside a run of near-consecutive suffix numbers.

    A run (priya.verma01 … priya.verma12) is the signal, not one close pair: honest namesakes
    land near each other by chance, and birth years crowd every common name into 1975-2005. So
    the accounts in the pair's numeric window are compared with how many chance would put there:
    the more of the stem's local density (±SUFFIX_DENSITY_SPAN around the pair; a global range
    would let one `anjali7` make `anjali1970 … anjali2007` look like a run) and the stem's crowd
    at the share of the other names' handles numbered in that window
    (`lookalike.NumberBackground`: a birth-year hump is narrower than the local range). Only a
    surplus beyond chance's spread (`lookalike.SEQUENCE_Z`) shrinks the crowd.
    """
    in_sequence = (
        (pl.col("sid_a") == pl.col("sid_b"))
        & pl.col("num_a").is_not_null()
        & pl.col("num_b").is_not_null()
        # only near numbers can be a sequence: amitp003 ~ amitp803 is a one-digit typo, not a run
        & ((pl.col("num_a") - pl.col("num_b")).abs() <= SEQUENCE_MAX_GAP)
    )
    mask = pairs.select(in_sequence.fill_null(False)).to_series().to_numpy()
    if not mask.any():
        return pairs
    seq = pairs.select("sid_a", "num_a", "num_b", "support").filter(pl.Series(mask))
    pts = side.filter(pl.col("num").is_not_null() & pl.col("sid").is_not_null())
    # written in place of the pairs in a sequence (no join of millions of wide rows on a, b)
    support = pairs["support"].cast(pl.Float64).to_numpy().copy()
    support[mask] = sequential_supports(
        seq["support"].cast(pl.Float64).to_numpy(),
        pts["sid"].cast(pl.Int64).to_numpy(),
        pts["num"].to_numpy(),
        seq["sid_a"].cast(pl.Int64).to_numpy(),
        seq["num_a"].to_numpy(),
        seq["num_b"].to_numpy(),
        side["sid"].count(),
    )
    return pairs.with_columns(pl.Series("support", support))


def _sequence_links(
    users: pl.DataFrame,
    spec: IdentifierSpec,
    kind: str,
    settings: LinkSettings,
    registry: IdentifierRegistry,
    reuse: Reuse | None = None,
    engine: Engine = SERIAL,
) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """Runs of near-consecutive numbers of one kind (SIM cards bought in a batch). A sort and a
    scan over the numbers, cheap at any size (on any engine, here): an incremental night
    (`reuse`) reruns it whole."""
    nothing = pl.DataFrame(schema={"a": pl.UInt32, "b": pl.UInt32, "similarity": pl.Float32})
    phones = users.select(
        "uid",
        pl.col(spec.value_column).alias("phone"),
        pl.col(spec.value_column)
        .str.strip_chars_start("+")
        .cast(pl.Int64, strict=False)
        .alias("number"),
    ).filter(pl.col("number").is_not_null())
    pairs = number_candidate_pairs(
        phones, max_gap=settings.phone_max_gap, max_block=settings.max_share
    )
    n_candidates = pairs.height
    if pairs.is_empty():
        return pairs.select("a", "b"), nothing, n_candidates
    # Honest numbers are spread thin, so a run of accounts a few numbers apart is rare — unless
    # the range is densely allocated. Support = 2 + how many accounts the run's span would hold at
    # the density seen within ±_PHONE_DENSITY_SPAN of it. Similarity falls with the run's mean step.
    numbers = phones["number"].unique().to_numpy()
    mid = (pairs["na"].to_numpy() + pairs["nb"].to_numpy()) // 2
    group = np.zeros(len(numbers), dtype=np.int64)
    around = window_support(
        group,
        numbers,
        mid - _PHONE_DENSITY_SPAN,
        mid + _PHONE_DENSITY_SPAN,
        np.zeros(len(mid), dtype=np.int64),
    )
    width = pairs["run_span"].to_numpy() + 1
    local = 2 + np.ceil(around * width / (2 * _PHONE_DENSITY_SPAN + 1)).astype(np.int64)
    pairs = pairs.with_columns(
        (pl.col("run_span") / (pl.col("run_size") - 1).clip(lower_bound=1)).alias("step")
    )
    e164 = phones.select("uid", "phone")
    links = (
        pairs.with_columns(pl.Series("support", np.maximum(local, 2)))
        .join(e164.rename({"uid": "a", "phone": "value_a"}), on="a")
        .join(e164.rename({"uid": "b", "phone": "value_b"}), on="b")
        .select(
            "a",
            "b",
            pl.lit(kind).alias("kind"),
            "value_a",
            "value_b",
            number_gap_similarity(pl.col("step"), settings.phone_max_gap).alias("similarity"),
            pl.col("support").cast(pl.Int32),
        )
    )
    return links, nothing, n_candidates


def _evidence_expr(rule: LinkRule) -> pl.Expr:
    """One sentence per link of `rule`'s kind from its template, without the identifier values
    (they may be PII and are masked separately from value_a/value_b)."""
    fill = {
        "support": pl.col("support").cast(pl.Utf8),
        "similarity": (pl.col("similarity") * 100).round(0).cast(pl.Int32).cast(pl.Utf8),
    }
    pieces = re.split(r"{(\w+)}", rule.evidence)  # text, field, text, field, …
    return pl.concat_str([fill[p] if i % 2 else pl.lit(p) for i, p in enumerate(pieces) if p])


_FUZZY_PASSES = {
    Linkage.LOOKALIKE: ("comparing look-alike {}s", _lookalike_links),
    Linkage.SEQUENCE: ("comparing near-sequential {}s", _sequence_links),
}


def build_links(
    users: pl.DataFrame,
    devices: pl.DataFrame,
    settings: LinkSettings,
    *,
    registry: IdentifierRegistry = BUILTIN,
    progress: Progress | None = None,
    previous: PreviousLinks | None = None,
    engine: Engine = SERIAL,
) -> Links:
    """All links between users, with evidence, for every kind of `registry`. Deterministic for a
    given input. With `previous`, only the pairs today's changes can make a difference to are
    linked again and the rest of last night's links are kept (`linking.incremental`); the
    links are the same either way, and on any `engine`."""
    say = progress or (lambda _msg: None)
    indexed = user_index(users)
    uid_of = indexed.select("uid", "user_id")
    sightings = devices.join(uid_of, on="user_id", how="inner")
    stats: dict[str, int] = {}
    parts: list[pl.DataFrame] = []
    supports: list[pl.DataFrame] = []
    similar: dict[str, pl.DataFrame] = {}  # link kind -> a, b, similarity
    reused: list[pl.DataFrame] = []  # last night's final links no change can touch
    for spec in registry.kinds:
        kind = spec.name
        source = indexed if spec.source == Source.USERS else sightings
        holders = source.select("uid", pl.col(spec.value_column).alias("value"))
        t0 = time.perf_counter()
        say(f"linking shared {kind}s")
        focus = None
        if previous is not None:
            from graphfraud.linking.incremental import exact_reuse

            focus, kept = exact_reuse(indexed, source, previous, spec, settings.max_share)
            reused.append(kept)
            stats[f"{kind}_focus_users"] = int(focus.sum())
            stats[f"{kind}_reused_links"] = kept.height
        links, support = _exact_links_on(engine, holders, kind, settings.max_share, focus)
        parts.append(links)
        supports.append(support)
        stats[f"{kind}_links"] = links.height
        stats[f"{kind}_hubs"] = support.filter(pl.col("support") > settings.max_share).height
        stats[f"{kind}_ms"] = int((time.perf_counter() - t0) * 1000)
    for match, (message, find) in _FUZZY_PASSES.items():
        for spec, rule in registry.with_rule(match):
            kind = rule.kind
            t0 = time.perf_counter()
            say(message.format(spec.name))
            reuse = None
            if previous is not None and match == Linkage.LOOKALIKE:
                from graphfraud.linking.incremental import lookalike_reuse

                bound = namesake_bound(rule, settings)
                reuse = lookalike_reuse(indexed, previous, spec, kind, settings, bound)
                stats[f"{kind}_focus_users"] = int(reuse.focus.users.sum())
                stats[f"{kind}_focus_pairs"] = len(reuse.focus.pairs)
                stats[f"{kind}_focus_stems"] = reuse.focus.stem_count()
                stats[f"{kind}_reused_pairs"] = reuse.similar.height
            links, pairs, n_candidates = find(
                indexed, spec, kind, settings, registry, reuse, engine
            )
            parts.append(links)
            similar[kind] = pairs.select("a", "b", "similarity")
            stats[f"{kind}_candidates"] = n_candidates
            stats[f"{kind}_links"] = links.height
            stats[f"{kind}_ms"] = int((time.perf_counter() - t0) * 1000)
    all_links = _assemble_links(parts, registry, uid_of)
    out = conform_frame(all_links, LINKS_SCHEMA)
    if reused:
        out = pl.concat([out, *(conform_frame(r, LINKS_SCHEMA) for r in reused)]).sort(
            ["user_a", "user_b", "kind"]
        )
    support_all = pl.concat(supports) if supports else pl.DataFrame()
    stats["links"] = out.height
    return Links(
        links=out, support=support_all, stats=stats, lookalikes=_named_pairs(similar, uid_of)
    )


def _assemble_links(
    parts: list[pl.DataFrame], registry: IdentifierRegistry, uid_of: pl.DataFrame
) -> pl.DataFrame:
    """The links of every kind's parts as written (`user_a, user_b, kind, value_a, value_b,
    similarity, support, weight, evidence`), sorted by user pair and kind.

    One kind at a time: its sort, its dedup and its evidence sentence never hold every kind's
    millions of rows at once (at 1M users, sorting them all on strings and building every
    kind's sentence for every row cost 1.5 GB more than the links themselves). `parts` is
    emptied."""
    columns = ["a", "b", "kind", "value_a", "value_b", "similarity", "support"]
    by_kind: dict[str, list[pl.DataFrame]] = {}
    for part in parts:
        if part.height:
            by_kind.setdefault(str(part["kind"][0]), []).append(part.select(columns))
    parts.clear()  # each kind's raw links go as soon as its final ones exist
    if not by_kind:
        return pl.DataFrame(schema={c: pl.Utf8 for c in columns})
    done = [
        _kind_links(pl.concat(by_kind.pop(kind), how="vertical_relaxed"), registry, uid_of)
        for kind in sorted(by_kind)
    ]
    return _in_pair_order(done).drop("a", "b")


def _in_pair_order(kinds: list[pl.DataFrame]) -> pl.DataFrame:
    """`kinds` (one frame per link kind, kinds in order, one row per pair in each) as one
    frame sorted by `a, b, kind`. A stable sort on the packed pair keeps the kinds in order;
    the rows are gathered a column at a time, each unsorted column dropped once its sorted copy
    exists, so the links (a GB at 1M users) are never held twice. `kinds` is emptied."""
    keys = np.concatenate([k.select(pair_key_expr())["ab"].to_numpy() for k in kinds])
    order = pl.Series(np.argsort(keys, kind="stable"))
    del keys
    frame = pl.concat(kinds, how="vertical_relaxed", rechunk=False)
    kinds.clear()
    columns: dict[str, pl.Series] = {}
    for name in frame.columns:
        columns[name] = frame[name].gather(order)
        frame = frame.drop(name)
    return pl.DataFrame(columns)


def _kind_links(
    links: pl.DataFrame, registry: IdentifierRegistry, uid_of: pl.DataFrame
) -> pl.DataFrame:
    """One kind's links, weighed, with their evidence, one per pair: exact pairs can repeat
    through several shared values (two shared devices), and the strongest value is kept (the
    smallest of equally strong ones), so a pair has at most one link per kind."""
    best = (
        links.with_columns(link_weight_expr(registry).alias("weight"))
        .sort(["a", "b", "weight", "value_a"], descending=[False, False, True, False])
        .unique(["a", "b"], keep="first", maintain_order=True)
    )
    rule = registry.link_rule(str(links["kind"][0]))
    return _with_user_ids(best, uid_of).with_columns(_evidence_expr(rule).alias("evidence"))


def _with_user_ids(frame: pl.DataFrame, uid_of: pl.DataFrame) -> pl.DataFrame:
    """`frame` (`a, b`: uids, sorted) with `user_a, user_b`. A uid is its user id's rank
    (`user_index`), so ids are gathered by position, not joined, and uid order is user id order:
    the rows stay sorted by user id (at 1M users, joining and re-sorting tens of millions of
    pairs by their string ids took half a minute)."""
    ids = uid_of.sort("uid")["user_id"]
    return frame.with_columns(
        ids.gather(frame["a"]).alias("user_a"), ids.gather(frame["b"]).alias("user_b")
    )


def _named_pairs(parts: dict[str, pl.DataFrame], uid_of: pl.DataFrame) -> pl.DataFrame:
    """Similar pairs keyed by user id (`user_a < user_b`), sorted by kind and pair: the
    LOOKALIKES_FILE, one kind at a time (no sort of every kind's millions of pairs on text)."""
    named = [
        _with_user_ids(pairs.sort("a", "b"), uid_of).select(
            "user_a", "user_b", pl.lit(kind).alias("kind"), "similarity"
        )
        for kind, pairs in sorted(parts.items())
        if pairs.height
    ]
    if not named:
        return pl.DataFrame(
            schema={"user_a": pl.Utf8, "user_b": pl.Utf8, "kind": pl.Utf8, "similarity": pl.Float32}
        )
    return pl.concat(named)
