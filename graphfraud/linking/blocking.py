"""Blocking: which user pairs are compared at all. Never all pairs.

Every function takes small integer user indexes (`uid`, u32) plus the value to block on and returns
candidate pairs `(a, b)` with `a < b`, as columnar joins so the stage can move to a distributed
engine unchanged. Blocks larger than `max_block` are skipped: a pair drawn from a block of thousands
carries almost no weight (see `weights.rarity`) and would cost millions of comparisons.

Passes for near-duplicate emails (union, deduplicated):
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
"""

from __future__ import annotations

import polars as pl

PAIR_SCHEMA = {"a": pl.UInt32, "b": pl.UInt32}


def _empty_pairs() -> pl.DataFrame:
    return pl.DataFrame(schema=PAIR_SCHEMA)


def pairs_within_blocks(keys: pl.DataFrame, max_block: int, key: str = "key") -> pl.DataFrame:
    """All pairs (a < b) of uids sharing a key value, skipping blocks larger than max_block.

    `keys` has columns `uid` and `key`; duplicate (uid, key) rows are ignored.
    """
    keyed = keys.select("uid", key).drop_nulls().unique()
    sizes = keyed.group_by(key).len()
    keep = sizes.filter((pl.col("len") >= 2) & (pl.col("len") <= max_block)).select(key)
    keyed = keyed.join(keep, on=key, how="semi")
    if keyed.is_empty():
        return _empty_pairs()
    pairs = (
        keyed.join(keyed, on=key, suffix="_b")
        .filter(pl.col("uid") < pl.col("uid_b"))
        .select(pl.col("uid").alias("a"), pl.col("uid_b").alias("b"))
    )
    return pairs.cast(PAIR_SCHEMA)  # type: ignore[arg-type]


def shared_value_groups(holders: pl.DataFrame, max_share: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Pairs of users holding the same canonical value, and the support of every value.

    `holders`: columns `uid`, `value`. Returns (pairs with `a, b, value, support`, `value,
    support` for all values — those above `max_share` are the hubs, never paired). Support
    counts distinct users, so one user seen twice on a device is one.
    """
    held = holders.select("uid", "value").drop_nulls().unique()
    support = held.group_by("value").agg(pl.len().cast(pl.Int32).alias("support"))
    shared = support.filter((pl.col("support") >= 2) & (pl.col("support") <= max_share))
    held = held.join(shared, on="value", how="inner")
    pairs = (
        held.join(held.select("uid", "value"), on="value", suffix="_b")
        .filter(pl.col("uid") < pl.col("uid_b"))
        .select(
            pl.col("uid").cast(pl.UInt32).alias("a"),
            pl.col("uid_b").cast(pl.UInt32).alias("b"),
            "value",
            "support",
        )
    )
    return pairs, support


def deletion_variants(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """`uid, key` rows: the value itself plus every one-character deletion of it."""
    base = frame.select("uid", pl.col(column).alias("key")).drop_nulls()
    exploded = (
        base.with_columns(pl.int_ranges(0, pl.col("key").str.len_chars()).alias("i"))
        .explode("i")
        .select(
            "uid",
            pl.concat_str(
                [pl.col("key").str.head(pl.col("i")), pl.col("key").str.slice(pl.col("i") + 1)]
            ).alias("key"),
        )
    )
    return pl.concat([base, exploded]).unique()


def sorted_neighbourhood(
    frame: pl.DataFrame, sort_key: pl.Expr, group: str, window: int
) -> pl.DataFrame:
    """Pairs of rows at most `window - 1` apart in the order of `sort_key`, within one `group`."""
    ordered = (
        frame.select("uid", pl.col(group).alias("grp"), sort_key.alias("sk"))
        .drop_nulls()
        .sort("grp", "sk")
    )
    parts = []
    for step in range(1, window):
        parts.append(
            ordered.select(
                pl.col("uid").alias("a"),
                pl.col("uid").shift(-step).alias("b"),
                (pl.col("grp") == pl.col("grp").shift(-step)).alias("same"),
            ).filter(pl.col("same"))
        )
    if not parts:
        return _empty_pairs()
    pairs = pl.concat(parts).select(
        pl.min_horizontal("a", "b").alias("a"), pl.max_horizontal("a", "b").alias("b")
    )
    return pairs.cast(PAIR_SCHEMA)  # type: ignore[arg-type]


def email_candidate_pairs(emails: pl.DataFrame, *, window: int, max_block: int) -> pl.DataFrame:
    """Candidate pairs for fuzzy email comparison.

    `emails`: `uid`, `email_local`, `email_domain`, `stem` (see keys.email_stem_expr) and
    optionally `local_stem` (keys.local_stem_expr, for the cross-domain and numbered passes) and
    `num` (the local part's numeric suffix).
    """
    with_domain = emails.filter(pl.col("email_domain").is_not_null())
    passes = [
        pairs_within_blocks(with_domain.select("uid", pl.col("stem").alias("key")), max_block),
        _stem_neighbour_pairs(with_domain, max_block),
        sorted_neighbourhood(with_domain, pl.col("email_local"), "email_domain", window),
        sorted_neighbourhood(
            with_domain, pl.col("email_local").str.reverse(), "email_domain", window
        ),
    ]
    if "local_stem" in emails.columns:
        passes.append(
            pairs_within_blocks(emails.select("uid", pl.col("local_stem").alias("key")), max_block)
        )
        if "num" in emails.columns:
            numbered = emails.filter(
                pl.col("num").is_not_null() & pl.col("local_stem").is_not_null()
            )
            buckets = pl.concat(
                [
                    numbered.select(
                        "uid", pl.format("{}#{}", "local_stem", pl.col("num") // 10).alias("key")
                    ),
                    numbered.select(
                        "uid",
                        pl.format("{}~{}", "local_stem", (pl.col("num") + 5) // 10).alias("key"),
                    ),
                ]
            )
            passes.append(pairs_within_blocks(buckets, max_block))
    return unique_pairs(pl.concat(passes))


def _stem_neighbour_pairs(emails: pl.DataFrame, max_block: int) -> pl.DataFrame:
    """Users whose stems (same domain) are one deletion apart, e.g. `priyaverma` ~ `priyavarma`.

    Works on distinct stems, not users: each stem's variants are generated once, stems sharing a
    variant are paired, and only then expanded to their users (skipped when that would make more
    than max_block²/2 pairs, the size of one full block). Identical stems are the stem pass's job.
    """
    stems = (
        emails.filter(pl.col("stem").is_not_null())
        .group_by("stem")
        .agg(pl.col("uid"))
        .sort("stem")
        .with_row_index("sid")
        .with_columns(pl.col("uid").list.len().alias("n"))
    )
    local = stems.select(
        pl.col("sid").alias("uid"),
        pl.col("stem").str.split("@").list.first().alias("s"),
        pl.col("stem").str.split("@").list.last().alias("domain"),
    ).filter(pl.col("s").str.len_chars() >= 4)
    variants = deletion_variants(local, "s").join(local.select("uid", "domain"), on="uid")
    keyed = variants.select("uid", pl.concat_str(["key", "domain"], separator="@").alias("key"))
    stem_pairs = unique_pairs(pairs_within_blocks(keyed, max_block))
    sizes = stems.select(pl.col("sid").cast(pl.UInt32), "n")
    members = stems.select(pl.col("sid").cast(pl.UInt32), "uid")
    user_pairs = (
        stem_pairs.join(sizes.rename({"sid": "a", "n": "na"}), on="a")
        .join(sizes.rename({"sid": "b", "n": "nb"}), on="b")
        .filter(pl.col("na").cast(pl.Int64) * pl.col("nb") <= max_block * max_block // 2)
        .join(members.rename({"sid": "a", "uid": "ua"}), on="a")
        .join(members.rename({"sid": "b", "uid": "ub"}), on="b")
        .explode("ua")
        .explode("ub")
    )
    return user_pairs.select(
        pl.min_horizontal("ua", "ub").cast(pl.UInt32).alias("a"),
        pl.max_horizontal("ua", "ub").cast(pl.UInt32).alias("b"),
    )


def unique_pairs(pairs: pl.DataFrame) -> pl.DataFrame:
    """Distinct (a, b) rows, deduplicated on one packed 64-bit key (faster than two columns)."""
    shift = 1 << 32
    packed = pl.col("a").cast(pl.UInt64) * shift + pl.col("b").cast(pl.UInt64)
    return (
        pairs.select(packed.alias("ab"))
        .unique()
        .select(
            (pl.col("ab") // shift).cast(pl.UInt32).alias("a"),
            (pl.col("ab") % shift).cast(pl.UInt32).alias("b"),
        )
    )


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


def email_run_pairs(emails: pl.DataFrame, *, max_gap: int, max_block: int) -> pl.DataFrame:
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


def phone_candidate_pairs(phones: pl.DataFrame, *, max_gap: int, max_block: int) -> pl.DataFrame:
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
