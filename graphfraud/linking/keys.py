"""Blocking keys: which users are even compared. Shared by the batch and the online scorer.

Each key has a scalar form (one value, for the service) and a polars expression (millions of rows,
for the batch); tests assert they agree.

- handle stem: a handle (an email's local part, a UPI handle) without digits and separators, plus
  its provider: `john.doe12@gmail.com` and `johndoe7@gmail.com` share `johndoe@gmail.com`;
- stem deletion keys: a stem of at least `MIN_DELETION_LETTERS` letters and each of its
  one-letter deletions (`priyaverma` ~ `priyavarma` share `priyavrma`);
- name key: the local stem's smallest rotation, so one person's name parts in either order
  share it, whatever separates them: `priya.verma`, `verma_priya07` and `vermapriya` all give
  `apriyaverm` (see `name_key`);
- phone block: the E.164 number without its last two digits, so sequential numbers
  (+919876543210, +919876543211) share a block.
"""

from __future__ import annotations

import re

import polars as pl

PHONE_BLOCK_DROP = 2
_STEM_STRIP = re.compile(r"[0-9._\-+]")
_STEM_STRIP_PATTERN = r"[0-9._\-+]"
_MIN_STEM = 3
MIN_DELETION_LETTERS = 4
"""Stems shorter than this get no deletion variants: `amit` → `ami`, `mit`, … would pair most
short names with each other."""


def handle_stem(local: str | None, domain: str | None) -> str | None:
    """Stem key of a canonical handle; None when too short to mean anything (e.g. '12@x.com')."""
    if not local or not domain:
        return None
    stem = _STEM_STRIP.sub("", local)
    return f"{stem}@{domain}" if len(stem) >= _MIN_STEM else None


def stem_deletion_keys(stem: str) -> list[str]:
    """`letters@domain` and its one-letter deletions (the batch's stem-neighbourhood pass, for one
    value); only the stem itself when it has fewer than MIN_DELETION_LETTERS letters."""
    letters, _, domain = stem.rpartition("@")
    keys = [stem]
    if len(letters) >= MIN_DELETION_LETTERS:
        keys += [f"{letters[:i]}{letters[i + 1 :]}@{domain}" for i in range(len(letters))]
    return list(dict.fromkeys(keys))


MIN_NAME_PART = _MIN_STEM
"""A reordered handle's two parts are each at least this long: a name part, not a letter or two
(`priya|verma` ~ `verma|priya`, never `p|riyaverma` ~ `riyaverma|p`); the stem's own minimum."""


def name_key(local: str | None) -> str | None:
    """The name key of a canonical handle: the smallest rotation of its local stem (digits and
    separators dropped), None when the stem is too short to hold two name parts.

    Two handles whose stems differ only in the order of two name parts are rotations of one
    another, so they share the key: `priya.verma` and `verma_priya07` (stems `priyaverma`,
    `vermapriya`) both give `apriyaverm`. Splitting at separators would miss handles written
    without one (`vermapriya`); a rotation needs no guess at where one name ends. Which rotations
    count as a reordering is `lookalike.reordered`'s rule.
    """
    stem = local_stem(local)
    if stem is None or len(stem) < 2 * MIN_NAME_PART:
        return None
    return min(stem[i:] + stem[:i] for i in range(len(stem)))


_NOT_DIGIT = re.compile(r"[^0-9]")
_NOT_DIGIT_PATTERN = r"[^0-9]"


def handle_digits(local: str) -> str:
    """The digits of a handle, in order (`verma_priya07` → `07`): what a reordering must keep."""
    return _NOT_DIGIT.sub("", local)


def handle_digits_expr(local: str = "local") -> pl.Expr:
    return pl.col(local).str.replace_all(_NOT_DIGIT_PATTERN, "")


def with_name_key(frame: pl.DataFrame, local: str = "local", out: str = "name") -> pl.DataFrame:
    """`frame` with `out`, `name_key` of column `local`, as a column. Each distinct stem's
    rotations are generated once (one row per letter) and the smallest kept: vectorised, and
    bounded by the distinct stems' total length."""
    stems = (
        frame.select(local_stem_expr(local).alias("_s"))
        .drop_nulls()
        .unique()
        .filter(pl.col("_s").str.len_chars() >= 2 * MIN_NAME_PART)
    )
    s, i = pl.col("_s"), pl.col("_i")
    keys = (
        stems.with_columns(pl.int_ranges(0, s.str.len_chars()).alias("_i"))
        .explode("_i")
        .select("_s", pl.concat_str([s.str.slice(i), s.str.head(i)]).alias(out))
        .group_by("_s")
        .agg(pl.col(out).min())
    )
    return (
        frame.with_columns(local_stem_expr(local).alias("_s"))
        .join(keys, on="_s", how="left", maintain_order="left")
        .drop("_s")
    )


def handle_stem_expr(local: str = "local", domain: str = "domain") -> pl.Expr:
    stem = pl.col(local).str.replace_all(_STEM_STRIP_PATTERN, "")
    return (
        pl.when(pl.col(domain).is_not_null() & (stem.str.len_chars() >= _MIN_STEM))
        .then(pl.concat_str([stem, pl.lit("@"), pl.col(domain)]))
        .otherwise(None)
    )


def local_stem(local: str | None) -> str | None:
    """Stem of a local part alone (any domain): how common a name is across providers."""
    if not local:
        return None
    stem = _STEM_STRIP.sub("", local)
    return stem if len(stem) >= _MIN_STEM else None


def local_stem_expr(local: str = "local") -> pl.Expr:
    stem = pl.col(local).str.replace_all(_STEM_STRIP_PATTERN, "")
    return pl.when(stem.str.len_chars() >= _MIN_STEM).then(stem).otherwise(None)


def phone_block(e164: str | None) -> str | None:
    """Block key of an E.164 number (None for numbers too short to block)."""
    if not e164 or len(e164) < 8:
        return None
    return e164[:-PHONE_BLOCK_DROP]


def phone_block_expr(col: str = "phone") -> pl.Expr:
    return (
        pl.when(pl.col(col).str.len_chars() >= 8)
        .then(pl.col(col).str.slice(0, pl.col(col).str.len_chars() - PHONE_BLOCK_DROP))
        .otherwise(None)
    )


def phone_number(e164: str | None) -> int | None:
    """The digits of an E.164 number as an integer (for sequential-gap checks)."""
    if not e164:
        return None
    digits = e164.lstrip("+")
    return int(digits) if digits.isdigit() else None
