"""Incremental look-alike linking: which comparisons a night with few changes must redo.

A look-alike pair's similarity is a function of its two handles alone; whether the pair is
compared at all depends on blocks, windows and runs formed over everyone. So tonight's similar
pairs are last night's (`LOOKALIKES_FILE`), except the pairs with an end in the *focus*, which are
compared again, against everyone, by the full pass's own blocking:
- users whose handle is new or changed (deleted users, and changed users' old handles, count
  through what they leave behind below);
- the members of every block (stem, local stem, numbered buckets, name key) holding a changed
  handle whose size crossed `max_block` or `max_crowd` between the nights (it is compared
  differently, or not at all); a reordered pair is otherwise a function of its two stems;
- the users of stems that share a deletion variant with a changed stem, where that pair of stems
  is a candidate on one night and not on the other;
- (pairs, not users) unchanged handles fewer than `window` apart in either sort order with a
  changed handle between them;
- the members of every suffix-number run holding a changed handle, on either night, but for
  those in a run of more than `max_block` accounts that night and in no run, or in another such
  run, the other night: a run that big is never paired (`blocking.handle_run_pairs`), so they
  have no run pairs either night (at 1M users, birth-year runs of common names hold hundreds of
  accounts: this halves the focus);
- (pairs on one stem, not users) every pair on a local stem crowded past the namesake bound on
  either night (`linking.namesakes`): which of them can link depends on every account on the
  stem and on every name's numbers, which any night moves;
- the users of local stems crowded past that bound on one night only: their pairs with other
  stems can link on the other night alone.
Support and weight are recomputed for every pair over everyone (a crowd grows or shrinks with
each change), so the links are exactly the full pass's — `tests/linking/test_incremental.py`
holds them equal.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.config import LinkSettings
from graphfraud.identifiers import IdentifierSpec, Source
from graphfraud.linking.blocking import deletion_variants, number_runs
from graphfraud.linking.keys import MIN_DELETION_LETTERS
from graphfraud.linking.link import Focus, PreviousLinks, Reuse, handle_frame, user_index
from graphfraud.linking.lookalike import SUFFIX_RUN_GAP

_HANDLE = ["user_id", "email", "local", "domain"]


def lookalike_reuse(
    indexed: pl.DataFrame,
    previous: PreviousLinks,
    spec: IdentifierSpec,
    kind: str,
    settings: LinkSettings,
    max_support: int | None = None,
) -> Reuse:
    """Tonight's focus for one look-alike kind and last night's similar pairs of the others.

    `indexed`: today's users (`link.user_index`); `max_support`: the kind's
    `namesakes.namesake_bound`."""
    now = handle_frame(indexed, spec)
    before = handle_frame(user_index(previous.users), spec)
    added = now.join(before.select(_HANDLE), on=_HANDLE, how="anti", nulls_equal=True)
    removed = before.join(now.select(_HANDLE), on=_HANDLE, how="anti", nulls_equal=True)
    runs_now, runs_before = _runs(now), _runs(before)
    focus = pl.concat(
        [
            added["user_id"],
            _flipped_block_members(now, before, added, removed, settings),
            _flipped_stem_neighbours(now, before, added, removed, settings.max_block),
            _run_members(runs_now, runs_before, added["user_id"], settings.max_block),
            _run_members(runs_before, runs_now, removed["user_id"], settings.max_block),
            _flipped_crowd_members(now, before, max_support),
        ]
    ).unique()
    uid_of = indexed.select("uid", "user_id")
    mask = np.zeros(indexed.height, dtype=np.bool_)
    mask[uid_of.join(focus.to_frame("user_id"), on="user_id")["uid"].to_numpy()] = True
    pairs = _window_pairs(now, added, removed, uid_of, settings.window)
    similar = (
        previous.lookalikes.filter(pl.col("kind") == kind)
        .join(uid_of.rename({"uid": "a", "user_id": "user_a"}), on="user_a")
        .join(uid_of.rename({"uid": "b", "user_id": "user_b"}), on="user_b")
        .select("a", "b", pl.col("similarity").cast(pl.Float32))
    )
    stems = _crowded_stems(now, before, max_support, len(mask))
    return Reuse(focus=Focus(users=mask, pairs=pairs, stems=stems), similar=similar)


def exact_reuse(
    indexed: pl.DataFrame,
    source: pl.DataFrame,
    previous: PreviousLinks,
    spec: IdentifierSpec,
    max_share: int,
) -> tuple[npt.NDArray[np.bool_], pl.DataFrame]:
    """(the focus, last night's links to keep) for one exact kind.

    A value whose holders changed (someone gained, lost or erased it) has a new support and new
    pairs: all of its holders today are in focus and are linked again against everyone. A pair
    with neither end in focus shares only values held exactly as last night, or hubs (more than
    `max_share` holders both nights: never paired, a café IP's newcomer refocuses nobody), so
    its link (or its absence) is last night's. `indexed`: today's users (`link.user_index`);
    `source`: them or their sightings, whichever holds the kind."""
    column = spec.value_column
    before = previous.users if spec.source == Source.USERS else previous.devices
    today = source.select("user_id", pl.col(column).alias("value")).drop_nulls().unique()
    yesterday = before.select("user_id", pl.col(column).alias("value")).drop_nulls().unique()
    hubs = (
        today.group_by("value")
        .len()
        .filter(pl.col("len") > max_share)
        .join(
            yesterday.group_by("value").len().filter(pl.col("len") > max_share),
            on="value",
            how="semi",
        )
        .select("value")
    )
    changed = (
        pl.concat(
            [
                today.join(yesterday, on=["user_id", "value"], how="anti"),
                yesterday.join(today, on=["user_id", "value"], how="anti"),
            ]
        )
        .select("value")
        .join(hubs, on="value", how="anti")
    )
    focus = today.join(changed, on="value", how="semi").select("user_id").unique()
    mask = np.zeros(indexed.height, dtype=np.bool_)
    mask[indexed.join(focus, on="user_id")["uid"].to_numpy()] = True
    present = indexed.select("user_id")
    kept = (
        previous.links.filter(pl.col("kind") == spec.name)
        .join(focus.rename({"user_id": "user_a"}), on="user_a", how="anti")
        .join(focus.rename({"user_id": "user_b"}), on="user_b", how="anti")
        .join(present.rename({"user_id": "user_a"}), on="user_a", how="semi")
        .join(present.rename({"user_id": "user_b"}), on="user_b", how="semi")
    )
    return mask, kept


def _crowded(frame: pl.DataFrame, max_support: int) -> pl.DataFrame:
    """`local_stem` of the stems crowded past `max_support` in `frame`."""
    return (
        frame.group_by("local_stem")
        .len()
        .filter(pl.col("len") > max_support)
        .drop_nulls("local_stem")
        .select("local_stem")
    )


def _flipped_crowd_members(
    now: pl.DataFrame, before: pl.DataFrame, max_support: int | None
) -> pl.Series:
    """Today's users of local stems crowded past `max_support` on one night only: a pair of
    two stems with a crowded end cannot link (`Namesakes.may_link`), so such a stem's pairs
    with every other stem could link on one night and not on the other."""
    if max_support is None:
        return pl.Series("user_id", [], dtype=pl.Utf8)
    today, yesterday = _crowded(now, max_support), _crowded(before, max_support)
    flipped = pl.concat(
        [
            today.join(yesterday, on="local_stem", how="anti"),
            yesterday.join(today, on="local_stem", how="anti"),
        ]
    )
    return now.join(flipped, on="local_stem", how="semi")["user_id"]


def _crowded_stems(
    now: pl.DataFrame, before: pl.DataFrame, max_support: int | None, size: int
) -> npt.NDArray[np.int64] | None:
    """`Focus.stems`: the local stems crowded past `max_support` on either night, by today's
    uid (`size` of them). Which of their pairs can link (`linking.namesakes`) depends on every
    account on the stem and on every name's numbers (`lookalike.NumberBackground`), which any
    night moves, so all of their pairs are compared again: the pairs a numbered sequence can
    lift are few by construction."""
    if max_support is None:
        return None
    focused = pl.concat([_crowded(now, max_support), _crowded(before, max_support)]).unique()
    stems = np.full(size, -1, np.int64)
    on = now.join(focused.with_row_index("id"), on="local_stem")
    stems[on["uid"].to_numpy()] = on["id"].cast(pl.Int64).to_numpy()
    return stems


def _block_keys() -> dict[str, pl.Expr]:
    """The block keys of `blocking.handle_candidate_pairs` (and the crowds' `stem`), and of
    `blocking.handle_reordered_pairs` (`name`)."""
    name, num = pl.col("local_stem"), pl.col("num")
    return {
        "stem": pl.col("stem"),
        "local_stem": name,
        "decade": pl.format("{}#{}", name, num // 10),
        "shifted": pl.format("{}~{}", name, (num + 5) // 10),
        "name": pl.col("name"),
    }


def _way(max_block: int, crowd: int) -> pl.Expr:
    """How a block of `n` handles is compared: 0 not at all (n < 2), 1 as pairs, 2 as a crowd
    (`compare.block_similar_pairs`), 3 not at all (too big)."""
    n = pl.col("n").fill_null(0)
    return pl.when(n < 2).then(0).when(n <= max_block).then(1).when(n <= crowd).then(2).otherwise(3)


def _flipped_block_members(
    now: pl.DataFrame,
    before: pl.DataFrame,
    added: pl.DataFrame,
    removed: pl.DataFrame,
    settings: LinkSettings,
) -> pl.Series:
    """Today's members of blocks with a changed handle whose way of comparison changed: pairs
    (2..max_block), a crowd (stems up to max_crowd), or nothing."""
    found: list[pl.Series] = [pl.Series("user_id", [], dtype=pl.Utf8)]
    for name, key in _block_keys().items():
        changed = (
            pl.concat([added.select(key.alias("key")), removed.select(key.alias("key"))])
            .drop_nulls()
            .unique()
        )
        if changed.is_empty():
            continue
        crowd = settings.max_crowd if name == "stem" else settings.max_block

        def sizes(
            frame: pl.DataFrame, key: pl.Expr = key, changed: pl.DataFrame = changed
        ) -> pl.DataFrame:
            return (
                frame.select(key.alias("key"))
                .join(changed, on="key", how="semi")
                .group_by("key")
                .agg(pl.len().alias("n"))
            )

        flipped = (
            changed.join(sizes(now), on="key", how="left")
            .with_columns(_way(settings.max_block, crowd).alias("today"))
            .drop("n")
            .join(sizes(before), on="key", how="left")
            .with_columns(_way(settings.max_block, crowd).alias("yesterday"))
            .filter(pl.col("today") != pl.col("yesterday"))
            .select("key")
        )
        found.append(
            now.select("user_id", key.alias("key")).join(flipped, on="key", how="semi")["user_id"]
        )
    return pl.concat(found)


def _stem_pairs(frame: pl.DataFrame, changed: pl.DataFrame, max_block: int) -> pl.DataFrame:
    """`stem, stem_b`: the stem pairs `blocking._stem_neighbour_keys` compares through a
    deletion variant that one of the `changed` stems holds."""
    stems = (
        frame.filter(pl.col("stem").is_not_null())
        .group_by("stem")
        .agg(pl.len().alias("n"), pl.col("domain").first(), pl.col("local_stem").first())
        .filter(pl.col("local_stem").str.len_chars() >= MIN_DELETION_LETTERS)
    )
    variants = deletion_variants(
        stems.select("stem", "domain", "local_stem"), "local_stem"
    ).unique()
    touched = variants.join(changed, on="stem", how="semi").select("domain", "key").unique()
    blocks = variants.join(touched, on=["domain", "key"], how="semi").filter(
        pl.len().over("domain", "key").is_between(2, max_block)
    )
    sizes = stems.select("stem", "n")
    return (
        blocks.join(blocks, on=["domain", "key"], suffix="_b")
        .filter(pl.col("stem") < pl.col("stem_b"))
        .join(sizes, on="stem")
        .join(sizes.rename({"stem": "stem_b", "n": "n_b"}), on="stem_b")
        .filter(pl.col("n").cast(pl.Int64) * pl.col("n_b") <= max_block * max_block // 2)
        .select("stem", "stem_b")
        .unique()
    )


def _flipped_stem_neighbours(
    now: pl.DataFrame,
    before: pl.DataFrame,
    added: pl.DataFrame,
    removed: pl.DataFrame,
    max_block: int,
) -> pl.Series:
    """Today's users of stems whose deletion-neighbour pairing with another stem differs
    between the nights (a changed stem's size, or a variant block's, crossed a bound)."""
    changed = pl.concat([added.select("stem"), removed.select("stem")]).drop_nulls().unique()
    if changed.is_empty():
        return pl.Series("user_id", [], dtype=pl.Utf8)
    today, yesterday = _stem_pairs(now, changed, max_block), _stem_pairs(before, changed, max_block)
    flipped = pl.concat(
        [
            today.join(yesterday, on=["stem", "stem_b"], how="anti"),
            yesterday.join(today, on=["stem", "stem_b"], how="anti"),
        ]
    )
    stems = pl.concat([flipped["stem"], flipped["stem_b"]]).unique().to_frame("stem")
    return now.join(stems, on="stem", how="semi")["user_id"]


def _window_pairs(
    now: pl.DataFrame,
    added: pl.DataFrame,
    removed: pl.DataFrame,
    uid_of: pl.DataFrame,
    window: int,
) -> npt.NDArray[np.uint64]:
    """Packed pairs (today's uids) of unchanged handles whose sorted-neighbourhood candidacy a
    change can flip: fewer than `window` unchanged handles apart, with a changed handle (today's
    or yesterday's) between them, in either sort order.

    Unchanged handles keep their relative order across the nights; a pair's distance differs
    only by the changed handles between them, and it is a candidate on either night only when at
    most `window - 1` unchanged ones lie between."""
    found = [np.empty(0, dtype=np.uint64)]
    if added.is_empty() and removed.is_empty():
        return found[0]
    kept = now.join(added.select("user_id"), on="user_id", how="anti").join(uid_of, on="user_id")
    steps = [(i, j) for i in range(1, window + 1) for j in range(1, window + 1 - i)]
    left_step = np.array([i for i, _ in steps], dtype=np.int64)
    right_step = np.array([j for _, j in steps], dtype=np.int64)
    for sort_key in (pl.col("local"), pl.col("local").str.reverse()):
        ordered = pl.concat(
            [
                kept.select("user_id", "domain", sort_key.alias("sk"), pl.col("uid")),
                *(
                    f.select(
                        "user_id",
                        "domain",
                        sort_key.alias("sk"),
                        pl.lit(None, pl.UInt32).alias("uid"),
                    )
                    for f in (added, removed)
                ),
            ]
        ).sort("domain", "sk", "user_id")  # the passes' order (uid order is user_id order)
        is_kept = ordered["uid"].is_not_null().to_numpy()
        before_me = np.cumsum(is_kept) - is_kept  # unchanged handles before each row
        gaps = np.unique(before_me[~is_kept])
        uids = ordered["uid"].drop_nulls().to_numpy().astype(np.uint64)
        left = (gaps[:, None] - left_step).ravel()
        right = (gaps[:, None] - 1 + right_step).ravel()
        ok = (left >= 0) & (right < len(uids))
        a, b = uids[left[ok]], uids[right[ok]]
        found.append(np.minimum(a, b) << np.uint64(32) | np.maximum(a, b))
    return np.unique(np.concatenate(found))


def _runs(frame: pl.DataFrame) -> pl.DataFrame:
    """`user_id, run, accounts`: each user's suffix-number run (`blocking.handle_run_pairs`) and
    how many accounts it holds."""
    runs = number_runs(
        frame.select("uid", "local_stem", "num"),
        group="local_stem",
        number="num",
        max_gap=SUFFIX_RUN_GAP,
    ).join(frame.select("uid", "user_id"), on="uid")
    return runs.select("user_id", "run", pl.col("uid").n_unique().over("run").alias("accounts"))


def _run_members(
    runs: pl.DataFrame, other: pl.DataFrame, changed: pl.Series, max_block: int
) -> pl.Series:
    """Users in a suffix-number run of one night (`runs`, `_runs`) that holds a changed handle,
    unless neither night pairs them by run: their run there, and theirs the other night
    (`other`, if any), hold more than `max_block` accounts."""
    if changed.is_empty():
        return pl.Series("user_id", [], dtype=pl.Utf8)
    hit = runs.filter(pl.col("user_id").is_in(changed.implode())).select("run").unique()
    members = runs.join(hit, on="run", how="semi")
    paired_there = other.filter(pl.col("accounts") <= max_block).select("user_id")
    never_paired = members.filter(pl.col("accounts") > max_block).join(
        paired_there, on="user_id", how="anti"
    )
    return members.join(never_paired.select("user_id"), on="user_id", how="anti")["user_id"]
