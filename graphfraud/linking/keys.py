"""Blocking keys: which users are even compared. Shared by the batch and the online scorer.

Each key has a scalar form (one value, for the service) and a polars expression (millions of rows,
for the batch); tests assert they agree.

- handle stem: a handle (an email's local part, a UPI handle) without digits and separators, plus
  its provider: `john.doe12@gmail.com` and `johndoe7@gmail.com` share `johndoe@gmail.com`;
- stem deletion keys: a stem of at least `MIN_DELETION_LETTERS` letters and each of its
  one-letter deletions (`priyaverma` ~ `priyavarma` share `priyavrma`);
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
