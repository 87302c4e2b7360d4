"""Vectorised primitives: weighted draws, random hex ids, IP addresses, phone formats, timestamps.

Everything here works on whole columns (numpy arrays / polars Series) so a million users cost
a handful of array operations, not a million Python calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import polars as pl

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_HEX_UPPER = np.frombuffer(b"0123456789ABCDEF", dtype=np.uint8)

IST_OFFSET_S = 19_800  # India Standard Time is UTC+05:30; people sign up by local clock
DAY_S = 86_400

# Share of sign-ups per IST hour: quiet 1-6 am, lunch bump, evening peak 8-11 pm.
HOUR_WEIGHTS = np.array(
    [2.2, 1.2, 0.7, 0.4, 0.3, 0.4, 0.8, 1.6, 2.8, 3.8, 4.4, 4.8,
     5.2, 5.0, 4.6, 4.4, 4.5, 4.8, 5.3, 6.0, 6.8, 7.2, 6.4, 4.2],
)  # fmt: skip


def zipf_p(k: int, s: float = 1.0) -> np.ndarray:
    """Probabilities of ranks 1..k under a Zipf law with exponent s (rank 1 most popular)."""
    w: np.ndarray = 1.0 / np.arange(1, k + 1, dtype=np.float64) ** s
    out: np.ndarray = w / w.sum()
    return out


def pick(rng: np.random.Generator, values: Sequence[str], n: int, s: float = 1.0) -> pl.Series:
    """n draws from `values` (ordered by popularity) with Zipf(s) weights, as a String Series."""
    idx = rng.choice(len(values), size=n, p=zipf_p(len(values), s))
    return pl.Series(values, dtype=pl.String).gather(idx)


def weighted(rng: np.random.Generator, pairs: Sequence[tuple[str, float]], n: int) -> pl.Series:
    """n draws from (value, weight) pairs."""
    vals = [v for v, _ in pairs]
    w = np.array([p for _, p in pairs], dtype=np.float64)
    idx = rng.choice(len(vals), size=n, p=w / w.sum())
    return pl.Series(vals, dtype=pl.String).gather(idx)


def hex_ids(rng: np.random.Generator, n: int, length: int, *, upper: bool = False) -> pl.Series:
    """n random hex strings of `length` characters (Android ids, fingerprints)."""
    table = _HEX_UPPER if upper else _HEX
    codes = table[rng.integers(0, 16, size=(n, length), dtype=np.uint8)]
    return pl.Series(codes.view(f"S{length}").ravel()).cast(pl.String)


def uuid_ids(rng: np.random.Generator, n: int, *, upper: bool = True) -> pl.Series:
    """n random UUID-shaped ids, like iOS identifierForVendor (`6F9619FF-8B86-D011-…`)."""
    table = _HEX_UPPER if upper else _HEX
    codes = table[rng.integers(0, 16, size=(n, 36), dtype=np.uint8)]
    codes[:, [8, 13, 18, 23]] = ord("-")
    return pl.Series(codes.view("S36").ravel()).cast(pl.String)


def ipv4(rng: np.random.Generator, prefixes: Sequence[str], n: int) -> pl.Series:
    """n IPv4 addresses inside the given /16 prefixes (uniform prefix, random host)."""
    pre = pl.Series(prefixes, dtype=pl.String).gather(rng.integers(0, len(prefixes), size=n))
    c = pl.Series(rng.integers(0, 256, size=n)).cast(pl.String)
    d = pl.Series(rng.integers(1, 255, size=n)).cast(pl.String)
    return pl.select(pl.concat_str([pl.lit(pre), pl.lit(c), pl.lit(d)], separator=".")).to_series()


def ipv6(rng: np.random.Generator, prefixes: Sequence[str], n: int) -> pl.Series:
    """n uncompressed IPv6 addresses under the given 32-bit prefixes (leading zeros kept, as
    some loggers write them; the normaliser must compress)."""
    pre = pl.Series(prefixes, dtype=pl.String).gather(rng.integers(0, len(prefixes), size=n))
    codes = _HEX[rng.integers(0, 16, size=(n, 29), dtype=np.uint8)]
    codes[:, [4, 9, 14, 19, 24]] = ord(":")
    host = pl.Series(codes.view("S29").ravel()).cast(pl.String)
    return pl.select(pl.concat_str([pl.lit(pre), pl.lit(host)], separator=":")).to_series()


# How people type an Indian mobile number (10 national digits `s`), with rough shares.
PHONE_FORMATS: tuple[tuple[str, float], ...] = (
    ("plain", 0.40),  # 9876543210
    ("plus91_space", 0.12),  # +91 98765 43210
    ("plus91", 0.15),  # +919876543210
    ("zero_space", 0.05),  # 098765 43210
    ("zero", 0.06),  # 09876543210
    ("dashed", 0.03),  # 91-987-654-3210
    ("plus91_dash", 0.05),  # +91-9876543210
    ("split", 0.04),  # 98765-43210
    ("plus91_sp", 0.06),  # +91 9876543210
    ("cc", 0.04),  # 919876543210
)


def phone_format_codes(rng: np.random.Generator, n: int) -> np.ndarray:
    w = np.array([p for _, p in PHONE_FORMATS])
    return rng.choice(len(PHONE_FORMATS), size=n, p=w / w.sum()).astype(np.int8)


def format_phones(national: pl.Series, code: pl.Series) -> pl.Series:
    """Render 10-digit national numbers (Int64; 0 or null = no phone) as `code` selects."""
    s = pl.col("n").cast(pl.String)
    a5, b5 = s.str.slice(0, 5), s.str.slice(5, 5)
    a3, b3, c4 = s.str.slice(0, 3), s.str.slice(3, 3), s.str.slice(6, 4)
    rendered = [
        s,
        pl.concat_str([pl.lit("+91 "), a5, pl.lit(" "), b5]),
        pl.concat_str([pl.lit("+91"), s]),
        pl.concat_str([pl.lit("0"), a5, pl.lit(" "), b5]),
        pl.concat_str([pl.lit("0"), s]),
        pl.concat_str([pl.lit("91-"), a3, pl.lit("-"), b3, pl.lit("-"), c4]),
        pl.concat_str([pl.lit("+91-"), s]),
        pl.concat_str([a5, pl.lit("-"), b5]),
        pl.concat_str([pl.lit("+91 "), s]),
        pl.concat_str([pl.lit("91"), s]),
    ]
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for i in reversed(range(len(rendered))):
        expr = pl.when(pl.col("f") == i).then(rendered[i]).otherwise(expr)
    frame = pl.DataFrame({"n": national, "f": code})
    return frame.select(
        pl.when(pl.col("n").is_null() | (pl.col("n") == 0)).then(None).otherwise(expr)
    ).to_series()


def mobile_numbers(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 10-digit Indian mobile numbers (first digit 6-9, 9 most common)."""
    first = rng.choice(np.array([9, 8, 7, 6]), size=n, p=[0.45, 0.20, 0.22, 0.13])
    return first.astype(np.int64) * 1_000_000_000 + rng.integers(0, 1_000_000_000, size=n)


def day_weights(start: datetime, days: int) -> np.ndarray:
    """Relative sign-up volume per day: growth over the year, busier weekends, sale-season peaks."""
    d = np.arange(days, dtype=np.float64)
    weekday = (start.weekday() + np.arange(days)) % 7  # 0 = Monday
    w = (0.8 + 0.4 * d / max(days - 1, 1)) * np.where(weekday >= 5, 1.25, 1.0)
    w *= np.where(weekday == 4, 1.1, 1.0)
    for centre, width, height in ((0.74, 6.0, 1.6), (0.80, 4.0, 1.3), (0.95, 5.0, 0.6)):
        w *= 1.0 + height * np.exp(-(((d - centre * days) / width) ** 2))  # festive sales
    out: np.ndarray = w / w.sum()
    return out


def signup_times(rng: np.random.Generator, n: int, start: datetime, days: int) -> np.ndarray:
    """n sign-up instants (epoch seconds, UTC) following the daily and weekly rhythm."""
    day = rng.choice(days, size=n, p=day_weights(start, days))
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    t0 = int(start.timestamp())
    return t0 + day * DAY_S + hour * 3600 - IST_OFFSET_S + rng.integers(0, 3600, size=n)


def iso_utc(epoch_s: pl.Series) -> pl.Series:
    """Epoch seconds → ISO-8601 strings like `2025-03-14T18:22:05Z`."""
    return (
        (epoch_s.cast(pl.Int64) * 1_000_000)
        .cast(pl.Datetime("us", "UTC"))
        .dt.to_string("%Y-%m-%dT%H:%M:%SZ")
    )


DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)
