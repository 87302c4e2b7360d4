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
    """Pairs of users holding the same canonical value, and the hub values held by too many.

    `holders`: columns `uid`, `value`. Returns (pairs with `a, b, value, support`, hubs with
    `value, support`). Support counts distinct users, so one user seen twice on a device is one.
    """
    held = holders.select("uid", "value").drop_nulls().unique()
    support = held.group_by("value").agg(pl.len().cast(pl.Int32).alias("support"))
    hubs = support.filter(pl.col("support") > max_share)
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
    return pairs, hubs


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
    """Candidate pairs for fuzzy email comparison (same canonical domain only).

    `emails`: `uid`, `email_local`, `email_domain`, `stem` (see keys.email_stem_expr) and
    optionally `local_stem` (keys.local_stem_expr) for the cross-domain pass.
    """
    with_domain = emails.filter(pl.col("email_domain").is_not_null())
    stem_pairs = pairs_within_blocks(
        with_domain.select("uid", pl.col("stem").alias("key")), max_block
    )
    stem_local = with_domain.select(
        "uid",
        pl.col("stem").str.split("@").list.first().alias("s"),
        "email_domain",
    ).filter(pl.col("s").str.len_chars() >= 4)
    variants = deletion_variants(stem_local, "s").join(
        stem_local.select("uid", "email_domain"), on="uid"
    )
    variant_pairs = pairs_within_blocks(
        variants.select("uid", pl.concat_str(["key", "email_domain"], separator="@").alias("key")),
        max_block,
    )
    sn = sorted_neighbourhood(with_domain, pl.col("email_local"), "email_domain", window)
    sn_rev = sorted_neighbourhood(
        with_domain, pl.col("email_local").str.reverse(), "email_domain", window
    )
    passes = [stem_pairs, variant_pairs, sn, sn_rev]
    if "local_stem" in emails.columns:
        passes.append(
            pairs_within_blocks(emails.select("uid", pl.col("local_stem").alias("key")), max_block)
        )
    return pl.concat(passes).unique()


def phone_candidate_pairs(phones: pl.DataFrame, *, max_gap: int, max_block: int) -> pl.DataFrame:
    """Pairs of accounts whose (distinct) numbers sit in one run of near-sequential numbers.

    `phones`: `uid`, `number` (Int64 digits of the E.164 number). Sorted distinct numbers are cut
    into runs wherever two neighbours are more than `max_gap` apart; every pair inside a run is a
    candidate, so a ring of SIM cards bought in sequence is a clique, not a chain of neighbours.
    Runs with more than `max_block` accounts are skipped. Returns `a, b, na, nb, gap, run_size,
    run_span`.
    """
    numbered = phones.select("uid", "number").drop_nulls().unique()
    runs = (
        numbered.select(pl.col("number").unique().sort())
        .with_columns(
            (pl.col("number").diff().fill_null(max_gap + 1) > max_gap).cum_sum().alias("run")
        )
        .with_columns(
            pl.len().over("run").alias("run_size"),
            (pl.col("number").max().over("run") - pl.col("number").min().over("run")).alias(
                "run_span"
            ),
        )
        .filter(pl.col("run_size") >= 2)
    )
    keyed = numbered.join(runs, on="number")
    pairs = pairs_within_blocks(keyed.select("uid", pl.col("run").alias("key")), max_block)
    nums = keyed.select("uid", "number", "run_size", "run_span")
    return (
        pairs.join(nums.rename({"uid": "a", "number": "na"}), on="a")
        .join(nums.select(pl.col("uid").alias("b"), pl.col("number").alias("nb")), on="b")
        .with_columns((pl.col("na") - pl.col("nb")).abs().alias("gap"))
        .filter(pl.col("gap") > 0)  # the same number is an exact phone link, not a sequence
        .select("a", "b", "na", "nb", "gap", "run_size", "run_span")
    )
