"""UPI ids (VPAs) as Indian payment apps hand them out, for honest people and households.

A VPA is `handle@psp`. Apps derive the handle from what they already know: the mobile number
(`9876543210@ybl`, PhonePe/Paytm style), the Gmail local part (`rahul.sharma87@okicici`, Google
Pay style — so namesakes' handles look alike exactly as their emails do), or a name the user
picks (`rahulsharma@axl`). Some households pay from one member's VPA: the family shares it, an
honest twin of a ring's shared payout VPA. Users type them in any case and sometimes name the
bank's own handle instead of the app's (`@icici` for `@okicici`).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from graphfraud.synthetic.render import zipf_p

PSPS = (
    "ybl", "okicici", "okhdfcbank", "oksbi", "okaxis", "paytm", "ibl", "axl", "apl", "upi",
    "ptyes", "icici", "sbi", "hdfcbank", "axisbank", "yesbank", "freecharge", "jupiteraxis",
)  # fmt: skip
"""Payment-service handles, most used first."""
HAS_UPI = 0.65  # users who give a UPI id at checkout
STYLES = np.array([0.45, 0.30, 0.25])  # mobile number, Gmail local part, chosen name
FAMILY_UPI = 0.3  # households whose members pay from the head's VPA
UPPER = 0.05  # typed in capitals
BANK_ALIAS = {"okicici": "icici", "okhdfcbank": "hdfcbank", "oksbi": "sbi", "okaxis": "axisbank"}


def psp_choice(rng: np.random.Generator, n: int) -> np.ndarray:
    """n PSP handles, Zipf-popular."""
    return np.asarray(PSPS, dtype=object)[rng.choice(len(PSPS), size=n, p=zipf_p(len(PSPS), 1.1))]


def honest_upis(
    rng: np.random.Generator,
    first: pl.Series,
    last: pl.Series,
    emails: pl.Series,
    phones: np.ndarray,
    head: np.ndarray | None = None,
) -> pl.Series:
    """One VPA per person (null for those who give none). `phones`: national numbers (0 = none);
    `head`: row of each row's household head (itself for heads and singletons) or None."""
    n = len(first)
    frame = pl.DataFrame(
        {
            "style": rng.choice(3, size=n, p=STYLES),
            "first": first.str.to_lowercase(),
            "last": last.str.to_lowercase(),
            "sep": np.asarray(["", ".", "_", ""], dtype=object)[rng.integers(0, 4, n)].tolist(),
            "num": rng.integers(0, 100, n),
            "with_num": rng.random(n) < 0.5,
            "phone": phones,
            "local": emails.str.extract(r"^([^@+]+)", 1).str.to_lowercase(),
        }
    )
    chosen = pl.concat_str(
        "first",
        "sep",
        "last",
        pl.when("with_num").then(pl.col("num").cast(pl.String).str.zfill(2)).otherwise(pl.lit("")),
    )
    style = frame["style"].to_numpy()
    handle = frame.select(
        pl.when(pl.col("style") == 0)
        .then(pl.when(pl.col("phone") > 0).then(pl.col("phone").cast(pl.String)))
        .when(pl.col("style") == 1)
        .then(pl.col("local"))
        .otherwise(chosen)
        .fill_null(chosen)
    ).to_series()
    psp = psp_choice(rng, n)
    google = np.char.startswith(psp.astype(str), "ok")
    # Google Pay's handle comes from the Gmail address; others rarely do
    vpa = (handle + "@" + pl.Series(psp.tolist(), dtype=pl.String)).to_numpy().astype(object)
    vpa[(style == 1) & ~google & (rng.random(n) < 0.5)] = None
    if head is not None:
        family = (head != np.arange(n)) & (rng.random(n) < FAMILY_UPI)
        vpa[family] = vpa[head[family]]
    vpa[rng.random(n) >= HAS_UPI] = None
    return pl.Series(vpa.tolist(), dtype=pl.String)


def typed(rng: np.random.Generator, vpa: pl.Series) -> pl.Series:
    """VPAs as users type them: now and then in capitals or with the bank's own handle."""
    n = len(vpa)
    upper = pl.Series(rng.random(n) < UPPER)
    alias = pl.Series(rng.random(n) < 0.15)
    out = vpa
    for app, bank in BANK_ALIAS.items():
        out = pl.select(
            pl.when(pl.lit(alias) & out.str.ends_with(f"@{app}"))
            .then(out.str.replace(f"@{app}$", f"@{bank}"))
            .otherwise(out)
        ).to_series()
    return pl.select(pl.when(pl.lit(upper)).then(out.str.to_uppercase()).otherwise(out)).to_series()
