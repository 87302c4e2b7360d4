"""Blocking: which user pairs are compared at all. Never all pairs.

Every function takes small integer user indexes (`uid`, u32) plus the value to block on and returns
candidate pairs `(a, b)` with `a < b`, as columnar joins so the stage can move to a distributed
engine unchanged. Inside, a pair travels as one packed u64 key (`a << 32 | b`): the passes are
concatenated and deduplicated on that one column, which is far cheaper than on two. Blocks larger
than `max_block` are skipped: a pair drawn from a block of thousands carries almost no weight (see
`weights.rarity`) and would cost millions of comparisons.

Passes for near-duplicate handles — email local parts, UPI handles — on a provider (union,
deduplicated):
- stem: same letters-only local part on the same domain (`john.doe1` ~ `johndoe22`);
- stem deletion neighbourhood: the stems are one deletion apart, which catches one substitution,
  insertion, deletion or transposition (`priya.verma1` ~ `priya.varma2` share `priyavrma`);
- sorted neighbourhood: neighbours in sort order of the local part, and of its reverse, within a
  window (catches what differs in ways the stem hides, e.g. `ab12cd` ~ `ab13cd`);
- cross-domain stem: the same stem on different providers (`user_19@yahoo.com` ~
  `user_21@hotmail.com`), the one pass that compares across domains;
- numbered stem: the same stem with suffix numbers in the same bucket of ten (two overlapping
  bucketings), so a run `priya.verma01 … 12` is still compared when `priyaverma` has thousands
  of namesakes and its whole block is too large to compare.

Reordered names (`priya.verma` ~ `verma_priya` ~ `vermapriya`) are a pass of their own,
`handle_reordered_pairs`: they are not near each other as strings, so no pass above finds them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.linking.keys import MIN_DELETION_LETTERS, MIN_NAME_PART, handle_digits_expr

_SHIFT = 1 << 32


def pair_key_expr(a: str = "a", b: str = "b") -> pl.Expr:
    """One UInt64 per unordered pair of u32 uids: `min << 32 | max`, named `ab`."""
    low = pl.min_horizontal(a, b).cast(pl.UInt64)
    high = pl.max_horizontal(a, b).cast(pl.UInt64)
    return (low * _SHIFT + high).alias("ab")


def unpack_pair_keys(keys: pl.Series) -> pl.DataFrame:
    """`a, b` (u32) columns from packed pair keys (see `pair_key_expr`)."""
    return pl.DataFrame({"ab": keys.cast(pl.UInt64)}).select(
        (pl.col("ab") // _SHIFT).cast(pl.UInt32).alias("a"),
        (pl.col("ab") % _SHIFT).cast(pl.UInt32).alias("b"),
    )


def _shared_keys(keyed: pl.DataFrame, on: list[str]) -> pl.DataFrame:
    """Distinct rows of `keyed` (no nulls) whose `on` values occur more than once.

    Most keys are held once (a stem's deletion variants, a rare name): a hash pre-filter drops
    those before the exact grouping on strings. A hash collision only lets a row through to it.
    """
    hashed = pl.col(on[0]).hash()
    for column in on[1:]:
        hashed = hashed ^ pl.col(column).hash()
    return keyed.drop_nulls().filter(hashed.is_duplicated()).unique()


def _block_pair_keys(keyed: pl.DataFrame, max_block: int, on: list[str]) -> pl.Series:
    """Packed pairs of distinct `uid`s sharing the `on` values, for blocks of 2..max_block rows.

    `keyed` must hold distinct rows without nulls.
    """
    keyed = keyed.filter(pl.len().over(on).is_between(2, max_block))
    return (
        keyed.join(keyed, on=on, suffix="_b")
        .filter(pl.col("uid") < pl.col("uid_b"))
        .select(pair_key_expr("uid", "uid_b"))
        .to_series()
    )


def pairs_within_blocks(keys: pl.DataFrame, max_block: int, key: str = "key") -> pl.DataFrame:
    """All pairs (a < b) of uids sharing a key value, skipping blocks larger than max_block.

    `keys` has columns `uid` and `key`; duplicate (uid, key) rows are ignored.
    """
    keyed = _shared_keys(keys.select(pl.col("uid").cast(pl.UInt32), key), [key])
    return unpack_pair_keys(_block_pair_keys(keyed, max_block, [key]))


def shared_value_groups(
    holders: pl.DataFrame, max_share: int, focus: npt.NDArray[np.bool_] | None = None
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pairs of users holding the same canonical value, and the support of every value.

    `holders`: columns `uid`, `value`. Returns (pairs with `a, b, value, support`, `value,
    support` for all values — those above `max_share` are the hubs, never paired). Support
    counts distinct users, so one user seen twice on a device is one. With `focus` (a mask over
    uids), only the pairs with a focused end (support still counts everyone).
    """
    # in input order: the identifier support written with the links is the same file every run
    held = holders.select("uid", "value").drop_nulls().unique(maintain_order=True)
    support = held.group_by("value", maintain_order=True).agg(
        pl.len().cast(pl.Int32).alias("support")
    )
    shared = support.filter((pl.col("support") >= 2) & (pl.col("support") <= max_share))
    held = held.join(shared, on="value", how="inner")
    if focus is None:
        left, keep = held, pl.col("uid") < pl.col("uid_b")
    else:
        left = held.filter(pl.Series(focus[held["uid"].to_numpy()]))
        keep = pl.col("uid") != pl.col("uid_b")
    pairs = (
        left.join(held.select("uid", "value"), on="value", suffix="_b")
        .filter(keep)
        .select(
            pl.min_horizontal("uid", "uid_b").cast(pl.UInt32).alias("a"),
            pl.max_horizontal("uid", "uid_b").cast(pl.UInt32).alias("b"),
            "value",
            "support",
        )
    )
    if focus is not None:
        pairs = pairs.unique(["a", "b", "value"])  # a pair with two focused ends came twice
    return pairs, support


def deletion_variants(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`frame` with `column` replaced by `key`: the value itself plus every one-character deletion
    of it, one row each; the other columns are carried along. Rows may repeat: deleting either
    `o` of `moon` gives `mon`."""
    base = frame.select(pl.exclude(column), pl.col(column).alias("key")).drop_nulls("key")
    value, i = pl.col("key"), pl.col("_i")
    deletions = (
        base.with_columns(pl.int_ranges(0, value.str.len_chars()).alias("_i"))
        .explode("_i")
        .drop_nulls("_i")  # the empty string has no deletion
        .with_columns(pl.concat_str([value.str.head(i), value.str.slice(i + 1)]).alias("key"))
        .drop("_i")
    )
    return pl.concat([base, deletions])


def sorted_neighbourhood(
    frame: pl.DataFrame, sort_key: pl.Expr, group: str, window: int
) -> pl.DataFrame:
    """Pairs of rows at most `window - 1` apart in the order of `sort_key`, within one `group`."""
    return unpack_pair_keys(_sorted_neighbour_keys(frame, sort_key, group, window))


def _sorted_neighbour_keys(
    frame: pl.DataFrame, sort_key: pl.Expr, group: str, window: int
) -> pl.Series:
    """Packed pairs of `sorted_neighbourhood`: one sort, then shifted numpy slices per step."""
    ordered = (
        frame.select("uid", pl.col(group).alias("grp"), sort_key.alias("sk"))
        .drop_nulls()
        .sort("grp", "sk", "uid")  # ties (one shared handle) in uid order: the same every night
    )
    uid = ordered["uid"].cast(pl.UInt64).to_numpy()
    grp = ordered["grp"].rle_id().to_numpy()  # sorted, so one run per group
    parts = [np.empty(0, dtype=np.uint64)]
    for step in range(1, window):
        same = grp[step:] == grp[:-step]
        a, b = uid[:-step][same], uid[step:][same]
        parts.append(np.minimum(a, b) * np.uint64(_SHIFT) + np.maximum(a, b))
    return pl.Series("ab", np.concatenate(parts), dtype=pl.UInt64)


def handle_candidate_pairs(emails: pl.DataFrame, *, window: int, max_block: int) -> pl.DataFrame:
    """Candidate pairs for fuzzy handle comparison (`local@domain`: emails, UPI ids).

    `emails`: `uid`, `local`, `domain`, `stem` (see keys.handle_stem_expr) and
    optionally `local_stem` (keys.local_stem_expr, for the cross-domain and numbered passes),
    `num` (the local part's numeric suffix) and `crowded` (on a local stem crowded past the
    namesake bound, `linking.namesakes`: the one-deletion pass pairs such a stem with no other,
    since a pair of two stems with a crowded end cannot link).
    """
    emails = emails.with_columns(pl.col("uid").cast(pl.UInt32))
    with_domain = emails.filter(pl.col("domain").is_not_null())
    keys: list[pl.Expr] = [pl.when(pl.col("domain").is_not_null()).then(pl.col("stem"))]
    if "local_stem" in emails.columns:
        name = pl.col("local_stem")
        keys.append(name)
        if "num" in emails.columns:
            num = pl.col("num")
            keys += [pl.format("{}#{}", name, num // 10), pl.format("{}~{}", name, (num + 5) // 10)]
    passes = [
        _block_pair_keys(
            _shared_keys(emails.select("uid", key.alias("key")), ["key"]), max_block, ["key"]
        )
        for key in keys
    ]
    passes += [
        _stem_neighbour_keys(with_domain, max_block),
        _sorted_neighbour_keys(with_domain, pl.col("local"), "domain", window),
        _sorted_neighbour_keys(with_domain, pl.col("local").str.reverse(), "domain", window),
    ]
    return unpack_pair_keys(_distinct_keys(passes))


def _distinct_keys(passes: list[pl.Series]) -> pl.Series:
    """The distinct packed keys of all passes, sorted: a sort and a neighbour test beat a hash
    unique on one u64 column (and fix the candidates' order)."""
    keys = np.sort(np.concatenate([p.to_numpy() for p in passes]))
    first = np.ones(len(keys), dtype=np.bool_)
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    return pl.Series("ab", keys[first], dtype=pl.UInt64)


def _stem_neighbour_keys(emails: pl.DataFrame, max_block: int) -> pl.Series:
    """Users whose stems (same domain) are one deletion apart, e.g. `priyaverma` ~ `priyavarma`.

    Works on distinct stems, not users: each stem's variants are generated once, stems sharing a
    variant on the same domain are paired, and only then expanded to their users (skipped when
    that would make more than max_block²/2 pairs, the size of one full block). Identical stems
    are the stem pass's job. Variants are of the letters alone, keyed with a domain number: short
    strings that polars keeps inline, where `priyaverma@gmail.com` would need a heap buffer.
    A `crowded` stem (see `handle_candidate_pairs`) still counts in the variants' blocks, so
    the blocks are the same, but its pairs are not expanded.
    """
    crowded = pl.col("crowded").first() if "crowded" in emails.columns else pl.lit(False)
    stems = (
        emails.filter(pl.col("stem").is_not_null())
        .group_by("stem")
        .agg(pl.col("uid"), pl.col("domain").first(), crowded.alias("crowded"))
        .with_row_index("sid")
    )
    letters = pl.col("stem").str.len_chars() - pl.col("domain").str.len_chars() - 1
    local = stems.select(
        pl.col("sid").alias("uid"),
        pl.col("domain").rank("dense").cast(pl.UInt32).alias("did"),
        pl.col("stem").str.head(letters).alias("s"),
    ).filter(pl.col("s").str.len_chars() >= MIN_DELETION_LETTERS)
    shared = _shared_keys(deletion_variants(local, "s"), ["did", "key"])
    stem_pairs = unpack_pair_keys(_block_pair_keys(shared, max_block, ["did", "key"]))
    sizes = stems.filter(~pl.col("crowded")).select("sid", pl.col("uid").list.len().alias("n"))
    members = stems.select("sid", "uid").explode("uid")
    user_pairs = (
        stem_pairs.join(sizes.rename({"sid": "a", "n": "na"}), on="a")
        .join(sizes.rename({"sid": "b", "n": "nb"}), on="b")
        .filter(pl.col("na").cast(pl.Int64) * pl.col("nb") <= max_block * max_block // 2)
        .join(members.rename({"sid": "a", "uid": "ua"}), on="a")
        .join(members.rename({"sid": "b", "uid": "ub"}), on="b")
    )
    return user_pairs.select(pair_key_expr("ua", "ub")).to_series()


def number_runs(
    frame: pl.DataFrame, *, group: str | None, number: str, max_gap: int
) -> pl.DataFrame:
    """`uid, run, run_size, run_span` for rows whose numbers form runs within their group.

    Sorted distinct numbers (per group) are cut wherever two neighbours are more than `max_gap`
    apart; runs of one number are dropped. Shared by sequential phones and numbered emails.
    """
    keys = [group] if group else []
    numbered = frame.select("uid", *keys, number).drop_nulls()
    distinct = (
        numbered.select(*keys, number)
        .unique()
        .sort([*keys, number])
        .with_columns(
            (
                (pl.col(number).diff().fill_null(max_gap + 1) > max_gap)
                | (pl.col(group) != pl.col(group).shift(1)).fill_null(True)
                if group
                else pl.col(number).diff().fill_null(max_gap + 1) > max_gap
            )
            .cum_sum()
            .alias("run")
        )
        .with_columns(
            pl.len().over("run").alias("run_size"),
            (pl.col(number).max().over("run") - pl.col(number).min().over("run")).alias("run_span"),
        )
        .filter(pl.col("run_size") >= 2)
    )
    return numbered.join(distinct, on=[*keys, number]).select(
        "uid", number, "run", "run_size", "run_span"
    )


def handle_run_pairs(emails: pl.DataFrame, *, max_gap: int, max_block: int) -> pl.DataFrame:
    """Pairs of accounts in one run of near-consecutive suffix numbers on the same stem
    (`amitp001 … amitp035`, on any provider): `a, b, na, nb, run_size, run_span`.

    Edit similarity alone cuts such a run into decades (`amitp005` ~ `amitp017` is only 75 %
    similar); the run says they are one sequence.
    """
    runs = number_runs(emails, group="local_stem", number="num", max_gap=max_gap)
    pairs = pairs_within_blocks(runs.select("uid", pl.col("run").alias("key")), max_block)
    nums = runs.select("uid", "num", "run_size", "run_span")
    return (
        pairs.join(nums.rename({"uid": "a", "num": "na"}), on="a")
        .join(nums.select(pl.col("uid").alias("b"), pl.col("num").alias("nb")), on="b")
        .filter(pl.col("na") != pl.col("nb"))
        .select("a", "b", "na", "nb", "run_size", "run_span")
    )


def handle_reordered_pairs(emails: pl.DataFrame, *, max_block: int) -> pl.DataFrame:
    """Pairs of accounts whose handles are one name in another order with the same digits
    (`lookalike.reordered`), on any providers: `a, b` (a < b).

    `emails`: `uid`, `local`, `local_stem`, `name` (`keys.with_name_key`). Blocks on the name
    key, which both orders share, and skips a key held by more than `max_block` accounts (a
    common name written both ways by its crowd: `rahul.sharma` ~ `sharma.rahul` would be
    thousands of pairs of next to no weight), like every other block.
    """
    keyed = _shared_keys(
        emails.select(
            pl.col("uid").cast(pl.UInt32),
            "name",
            "local_stem",
            handle_digits_expr().alias("digits"),
        ),
        ["name"],
    )
    keyed = keyed.filter(pl.len().over("name").is_between(2, max_block))
    pairs = keyed.join(keyed, on="name", suffix="_b").filter(
        (pl.col("uid") < pl.col("uid_b"))
        & (pl.col("local_stem") != pl.col("local_stem_b"))
        & (pl.col("digits") == pl.col("digits_b"))
    )
    return pairs.filter(
        reordered_expr("local_stem", "local_stem_b") & reordered_expr("local_stem_b", "local_stem")
    ).select(pl.col("uid").alias("a"), pl.col("uid_b").alias("b"))


def reordered_expr(a: str, b: str) -> pl.Expr:
    """`lookalike._rotated_by_a_name` over stem columns: `b` is `a` rotated by at least
    `MIN_NAME_PART` letters, at the smallest rotation that matches."""
    n = pl.col(a).str.len_chars()
    k = pl.concat_str([pl.col(a), pl.col(a)]).str.find(pl.col(b), literal=True).cast(pl.Int64)
    same_length = n == pl.col(b).str.len_chars()
    return same_length & k.is_between(MIN_NAME_PART, n - MIN_NAME_PART)


def number_candidate_pairs(phones: pl.DataFrame, *, max_gap: int, max_block: int) -> pl.DataFrame:
    """Pairs of accounts whose (distinct) numbers sit in one run of near-sequential numbers.

    `phones`: `uid`, `number` (Int64 digits of the E.164 number). Sorted distinct numbers are cut
    into runs wherever two neighbours are more than `max_gap` apart; every pair inside a run is a
    candidate, so a ring of SIM cards bought in sequence is a clique, not a chain of neighbours.
    Runs with more than `max_block` accounts are skipped. Returns `a, b, na, nb, gap, run_size,
    run_span`.
    """
    numbered = phones.select("uid", "number").drop_nulls().unique()
    keyed = number_runs(numbered, group=None, number="number", max_gap=max_gap)
    pairs = pairs_within_blocks(keyed.select("uid", pl.col("run").alias("key")), max_block)
    nums = keyed.select("uid", "number", "run_size", "run_span")
    return (
        pairs.join(nums.rename({"uid": "a", "number": "na"}), on="a")
        .join(nums.select(pl.col("uid").alias("b"), pl.col("number").alias("nb")), on="b")
        .with_columns((pl.col("na") - pl.col("nb")).abs().alias("gap"))
        .filter(pl.col("gap") > 0)  # the same number is an exact phone link, not a sequence
        .select("a", "b", "na", "nb", "gap", "run_size", "run_span")
    )
