"""Identities as people type them: names, emails, phone numbers, sign-up times.

Every user (honest or not) starts as one of these; ring builders later overwrite the fields a ring
shares. Emails follow the patterns Indians really use (`rahul.sharma87@gmail.com`,
`rahulsharma1990@yahoo.co.in`, `rsharma12@…`, nicknames, handles), with Zipf-popular names, so
thousands of unrelated honest people look alike.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import polars as pl

from graphfraud.synthetic import vocab
from graphfraud.synthetic.render import (
    mobile_numbers,
    phone_format_codes,
    pick,
    signup_times,
    weighted,
)

MALE_FIRST = vocab.words(vocab.MALE_FIRST)
FEMALE_FIRST = vocab.words(vocab.FEMALE_FIRST)
LAST = vocab.words(vocab.LAST)

# (pattern id, weight): see `_local_part` for what each one renders.
_PATTERNS = np.array(
    [0.10, 0.12, 0.13, 0.06, 0.08, 0.06, 0.08, 0.09, 0.06, 0.04, 0.05, 0.04, 0.04, 0.03]
)
_SUFFIXES = np.array([0.35, 0.35, 0.2, 0.1])  # yy, random 1-999, yyyy, ddmm
PLUS_TAGS = ("shopping", "amazon", "flipkart", "bnpl", "offers", "shop", "pay", "1", "work")

MISSING_EMAIL = 0.03
MISSING_PHONE = 0.06
DOMAIN_TYPO = 0.003  # honest users who mistype their provider
PLUS_TAG = 0.004  # honest gmail users who use +tags


def draw_people(rng: np.random.Generator, n: int, start: datetime, days: int) -> pl.DataFrame:
    """n independent identities: first, last, birth_year, email, phone (Int64 national number,
    0 = none given), phone_fmt (Int8 code), name, created (epoch seconds)."""
    male = rng.random(n) < 0.52
    frame = pl.DataFrame(
        {
            "male": male,
            "fm": pick(rng, MALE_FIRST, n, s=0.9),
            "ff": pick(rng, FEMALE_FIRST, n, s=0.9),
            "last": pick(rng, LAST, n, s=0.85),
            "birth_year": 2025
            - np.clip(np.round(rng.normal(31, 9, size=n)), 18, 72).astype(np.int32),
        }
    ).select(
        pl.when(pl.col("male")).then(pl.col("fm")).otherwise(pl.col("ff")).alias("first"),
        "last",
        "birth_year",
    )
    frame = frame.with_columns(
        email=render_emails(rng, frame["first"], frame["last"], frame["birth_year"]),
        phone=pl.Series(mobile_numbers(rng, n)),
        phone_fmt=pl.Series(phone_format_codes(rng, n)),
        created=pl.Series(signup_times(rng, n, start, days)),
    )
    frame = frame.with_columns(name=display_names(rng, frame["first"], frame["last"]))
    no_email = rng.random(n) < MISSING_EMAIL
    no_phone = rng.random(n) < MISSING_PHONE
    return frame.with_columns(
        pl.when(pl.lit(pl.Series(no_email))).then(None).otherwise(pl.col("email")).alias("email"),
        pl.when(pl.lit(pl.Series(no_phone))).then(0).otherwise(pl.col("phone")).alias("phone"),
    )


def render_emails(
    rng: np.random.Generator, first: pl.Series, last: pl.Series, birth_year: pl.Series
) -> pl.Series:
    """Emails for people with these names, in the patterns real people choose."""
    n = len(first)
    frame = pl.DataFrame(
        {
            "first": first,
            "last": last,
            "yyyy": birth_year.cast(pl.String),
            "rnd": pl.Series(
                np.where(rng.random(n) < 0.6, rng.integers(1, 100, n), rng.integers(100, 1000, n))
            ).cast(pl.String),
            "ddmm": pl.Series(rng.integers(1, 29, n) * 100 + rng.integers(1, 13, n)).cast(
                pl.String
            ),
            "pattern": rng.choice(len(_PATTERNS), size=n, p=_PATTERNS / _PATTERNS.sum()),
            "suffix": rng.choice(len(_SUFFIXES), size=n, p=_SUFFIXES),
            "handle": pick(rng, vocab.HANDLE_WORDS, n, s=0.5),
            "domain": weighted(rng, vocab.HONEST_DOMAINS, n),
            "typo": pick(rng, vocab.TYPO_DOMAINS, n, s=0.7),
            "u": rng.random(n),
            "tag": pick(rng, PLUS_TAGS, n, s=0.5),
        }
    )
    f, last_c = pl.col("first"), pl.col("last")
    nick = pl.when(f.is_in(list(vocab.NICKNAMES))).then(f.replace(vocab.NICKNAMES)).otherwise(f)
    yy = pl.col("yyyy").str.slice(2, 2)
    suf = (
        pl.when(pl.col("suffix") == 0)
        .then(yy)
        .when(pl.col("suffix") == 1)
        .then(pl.col("rnd"))
        .when(pl.col("suffix") == 2)
        .then(pl.col("yyyy"))
        .otherwise(pl.col("ddmm"))
    )
    ini_f, ini_l = f.str.slice(0, 1), last_c.str.slice(0, 1)
    locals_ = [
        pl.concat_str([f, pl.lit("."), last_c]),
        pl.concat_str([f, pl.lit("."), last_c, suf]),
        pl.concat_str([f, last_c, suf]),
        pl.concat_str([f, pl.lit("_"), last_c, suf]),
        pl.concat_str([ini_f, last_c, suf]),
        pl.concat_str([f, ini_l, suf]),
        pl.concat_str([f, pl.col("yyyy")]),
        pl.concat_str([f, pl.col("rnd")]),
        pl.concat_str([nick, suf]),
        pl.concat_str([last_c, pl.lit("."), f, suf]),
        pl.concat_str([f, last_c]),
        pl.when(pl.col("u") < 0.5)
        .then(pl.concat_str([pl.col("handle"), pl.lit("."), f]))
        .otherwise(pl.concat_str([pl.col("handle"), pl.lit("_"), pl.col("rnd")])),
        pl.concat_str([f, pl.col("ddmm")]),
        pl.concat_str([nick, pl.lit("."), last_c]),
    ]
    frame = frame.with_columns(local=by_code(frame, "pattern", locals_))
    local = pl.col("local")
    gmail = pl.col("domain") == "gmail.com"
    local = (
        pl.when(gmail & (pl.col("u") < PLUS_TAG))
        .then(pl.concat_str([local, pl.lit("+"), pl.col("tag")]))
        .otherwise(local)
    )
    v = pl.Series(rng.random(n))
    domain = pl.when(pl.lit(v) < DOMAIN_TYPO).then(pl.col("typo")).otherwise(pl.col("domain"))
    email = pl.concat_str([local, pl.lit("@"), domain])
    # As typed: a few capitalise the first letter, some keep caps lock on, some leave a space.
    w = pl.lit(pl.Series(rng.random(n)))
    email = (
        pl.when(w < 0.02)
        .then(pl.concat_str([email.str.slice(0, 1).str.to_uppercase(), email.str.slice(1)]))
        .when(w < 0.027)
        .then(email.str.to_uppercase())
        .when(w < 0.032)
        .then(pl.concat_str([email, pl.lit(" ")]))
        .otherwise(email)
    )
    return frame.select(email.alias("email")).to_series()


def by_code(frame: pl.DataFrame, code: str, exprs: list[pl.Expr]) -> pl.Series:
    """Evaluate `exprs[k]` only on the rows whose `code` column equals k (much cheaper than a
    when/then chain, which renders every branch for every row); result in the frame's row order."""
    if frame.height == 0:
        return pl.Series("_out", [], dtype=pl.String)
    indexed = frame.with_row_index("_row")
    parts = [
        part.select(pl.col("_row"), exprs[int(part[code][0])].alias("_out"))
        for part in indexed.partition_by(code, maintain_order=False)
    ]
    return pl.concat(parts).sort("_row")["_out"]


def display_names(rng: np.random.Generator, first: pl.Series, last: pl.Series) -> pl.Series:
    """Display names as typed: mostly `Rahul Sharma`, some lower/upper case, initials, missing."""
    n = len(first)
    u = pl.lit(pl.Series(rng.random(n)))
    f, la = pl.col("first"), pl.col("last")
    full = pl.concat_str([f, pl.lit(" "), la])
    expr = (
        pl.when(u < 0.70)
        .then(full.str.to_titlecase())
        .when(u < 0.80)
        .then(full)
        .when(u < 0.84)
        .then(full.str.to_uppercase())
        .when(u < 0.87)
        .then(
            pl.concat_str(
                [f.str.slice(0, 1).str.to_uppercase(), pl.lit(". "), la.str.to_titlecase()]
            )
        )
        .when(u < 0.89)
        .then(
            pl.concat_str(
                [f.str.to_titlecase(), pl.lit(" "), la.str.slice(0, 1).str.to_uppercase()]
            )
        )
        .when(u < 0.95)
        .then(f.str.to_titlecase())
        .otherwise(None)
    )
    return pl.DataFrame({"first": first, "last": last}).select(expr.alias("name")).to_series()


def canonical_email_key() -> pl.Expr:
    """The mailbox an email reaches: lower-case, trimmed; gmail dots and +tags folded. Two honest
    people can never own the same mailbox, so this is what must be unique among them."""
    e = pl.col("email").str.strip_chars().str.to_lowercase()
    local, domain = e.str.extract(r"^([^@]*)@", 1), e.str.extract(r"@(.*)$", 1)
    is_gmail = domain.is_in(["gmail.com", "googlemail.com"])
    local = (
        pl.when(is_gmail)
        .then(local.str.replace(r"\+.*$", "").str.replace_all(".", "", literal=True))
        .otherwise(local)
    )
    domain = pl.when(is_gmail).then(pl.lit("gmail.com")).otherwise(domain)
    return pl.concat_str([local, pl.lit("@"), domain])


def _keys(emails: pl.Series) -> pl.Series:
    return pl.DataFrame({"email": emails}).select(canonical_email_key()).to_series()


def make_emails_unique(
    rng: np.random.Generator, people: pl.DataFrame, mutable: np.ndarray
) -> pl.Series:
    """Emails of `people` (first, last, birth_year, email) with no two rows on one mailbox,
    changing only `mutable` rows. Like a real sign-up form: a taken address makes the person pick
    another pattern (a few tries), then add digits. Immutable rows (ring members) win ties: their
    sharing is the planted signal."""
    emails = people["email"]
    order = np.lexsort((np.arange(len(emails)), mutable))  # immutable rows first
    back = np.argsort(order)
    key = _keys(emails)
    for attempt in range(12):
        first = key.gather(order).is_first_distinct().to_numpy()[back]
        redo = np.flatnonzero(~first & key.is_not_null().to_numpy() & mutable)
        if len(redo) == 0:
            break
        sub = people[redo]
        if attempt < 3:
            new = render_emails(rng, sub["first"], sub["last"], sub["birth_year"])
        else:
            digits = pl.Series(rng.integers(1, 10_000, size=len(redo))).cast(pl.String)
            new = (
                pl.DataFrame({"e": emails.gather(redo), "d": digits})
                .select(
                    pl.concat_str(
                        [
                            pl.col("e").str.extract(r"^([^@+]*)", 1),
                            pl.col("d"),
                            pl.lit("@"),
                            pl.col("e").str.extract(r"@(.*)$", 1),
                        ]
                    )
                )
                .to_series()
            )
        emails = emails.scatter(redo, new)
        key = key.scatter(redo, _keys(new))
    return emails


TWIN_SAME_MAILBOX = 0.3  # second accounts that reuse the first one's Gmail with a dot or +tag


def twin_mailboxes(
    rng: np.random.Generator, emails: pl.Series, rows: np.ndarray, src: np.ndarray
) -> pl.Series:
    """Some honest second accounts reuse the first account's Gmail mailbox, spelled differently
    (`rahulsharma@` → `rahul.sharma@`, `rahulsharma+2@`): honest look-alikes of a Gmail-variant
    ring, two accounts strong. Applied after uniqueness, on purpose."""
    pick_ = rng.random(len(rows)) < TWIN_SAME_MAILBOX
    rows, src = rows[pick_], src[pick_]
    base = emails.gather(src).str.strip_chars().str.to_lowercase()
    frame = pl.DataFrame(
        {
            "local": base.str.extract(r"^([^@+]*)", 1),
            "domain": base.str.extract(r"@(.*)$", 1),
            "cut": rng.integers(1, 6, size=len(rows)),
            "tag": rng.random(len(rows)) < 0.4,
            "n": rng.integers(1, 10, size=len(rows)),
        }
    )
    local = pl.col("local")
    dotted = (
        pl.when(local.str.contains(".", literal=True))
        .then(local.str.replace_all(".", "", literal=True))
        .otherwise(
            pl.concat_str(
                [local.str.slice(0, pl.col("cut")), pl.lit("."), local.str.slice(pl.col("cut"))]
            )
        )
    )
    variant = (
        pl.when(pl.col("tag"))
        .then(pl.concat_str([local, pl.lit("+"), pl.col("n").cast(pl.String)]))
        .otherwise(dotted)
    )
    new = frame.select(
        pl.when(
            pl.col("domain").is_in(["gmail.com", "googlemail.com"]) & (local.str.len_chars() > 5)
        )
        .then(pl.concat_str([variant, pl.lit("@"), pl.col("domain")]))
        .otherwise(None)
        .alias("e")
    )["e"]
    keep = new.is_not_null().to_numpy()
    return emails.scatter(rows[keep], new.filter(new.is_not_null())) if keep.any() else emails
