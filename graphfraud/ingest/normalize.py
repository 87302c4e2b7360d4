"""Canonical forms of the identifiers users type: emails, phones, device ids, IPs, names.

Every normaliser comes twice: a scalar function (the online service normalises one new user at a
time) and a vectorised one over a polars Series (the batch normalises millions). Both apply the same
rules, and the tests assert they agree on random input. Unparseable values become null; the caller
keeps the raw value beside the canonical one, so nothing typed is lost.

Rules, with the example pair each one folds:
- email: strip, lower-case, exactly one `@`, plausible ASCII local part and domain; domain typos
  folded (`gmial.com` → `gmail.com`, `googlemail.com` → `gmail.com`); `+tag` removed everywhere;
  dots removed in Gmail local parts (`John.Doe+x@GMail.com` ~ `johndoe@gmail.com`).
- phone: E.164 via `phonenumbers`, accepted only when `is_valid_number` (`098765 43210` ~
  `+91 98765 43210` → `+919876543210`). Mobile-shaped numbers of the default region take a
  vectorised fast path (checked against `phonenumbers` by a property test); only the unique
  leftovers go through `phonenumbers`. Letters among the digits make a phone null
  (`+91 98AB CD1234`): `phonenumbers` would read them as a keypad (`9822231234`), inventing a
  real-looking number that may be someone else's. A label before the digits (`tel:`, `Mob`) and
  an extension after them (`ext. 12`, `x12`) are fine.
- device id: strip, lower-case (ASCII ids; see `ascii_lower`), collapse inner whitespace
  (`" AB  12 "` ~ `"ab 12"`).
- IP: `ipaddress` on unique values; IPv6 compressed, IPv4-mapped IPv6 folded to IPv4
  (`::ffff:10.0.0.1` ~ `10.0.0.1`).
- name: strip and collapse whitespace, case kept.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
import polars as pl
from rapidfuzz.distance import OSA

# Whitespace is spelt out instead of `str.strip()` / regex `\s`: Python and Rust (polars) disagree
# on what counts as whitespace (e.g. U+001C..U+001F), and scalar and vectorised forms must agree.
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u200b\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_WS_RUN = f"[{WHITESPACE}]+"
_WS_RUN_RE = re.compile(_WS_RUN)

NULL_TOKENS = frozenset({"", "nan", "null", "none", "n/a", "#n/a"})
"""Strings (compared case-insensitively after stripping) that spreadsheets and pandas write for
'no value'; they are read as null in every field."""


def ascii_lower(value: str) -> str:
    """Lower-case ASCII letters only when the value is ASCII: Python's and polars' (Rust's)
    Unicode case tables differ by version (U+10D50 has a lower case in one and not the other), and
    the online and batch forms of an identifier must be the very same string."""
    return value.lower() if value.isascii() else value


def ascii_lower_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `ascii_lower`."""
    return (
        pl.when(expr.str.contains(r"^[\x00-\x7f]*$")).then(expr.str.to_lowercase()).otherwise(expr)
    )


def clean_text(raw: str | None) -> str | None:
    """Strip whitespace; null tokens (`NaN`, `null`, `None`, …) and empty strings become None."""
    if raw is None:
        return None
    value = raw.strip(WHITESPACE)
    return None if value.lower() in NULL_TOKENS else value


def clean_text_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `clean_text`."""
    value = expr.str.strip_chars(WHITESPACE)
    return pl.when(value.str.to_lowercase().is_in(list(NULL_TOKENS))).then(None).otherwise(value)


def _series_name(raw: pl.Series, default: str) -> str:
    return raw.name or default


# ---- emails ---------------------------------------------------------------------------------

DOMAIN_TYPOS: dict[str, str] = {
    # gmail
    "googlemail.com": "gmail.com",
    "gmial.com": "gmail.com",
    "gmai.com": "gmail.com",
    "gmal.com": "gmail.com",
    "gmali.com": "gmail.com",
    "gamil.com": "gmail.com",
    "gmaill.com": "gmail.com",
    "gnail.com": "gmail.com",
    "gmail.co": "gmail.com",
    "gmail.con": "gmail.com",
    "gmail.cm": "gmail.com",
    "gmail.om": "gmail.com",
    "gmail.comm": "gmail.com",
    # yahoo
    "yaho.com": "yahoo.com",
    "yahooo.com": "yahoo.com",
    "yhoo.com": "yahoo.com",
    "yaoo.com": "yahoo.com",
    "yahoo.co": "yahoo.com",
    "yahoo.con": "yahoo.com",
    "yahoo.cm": "yahoo.com",
    # hotmail / outlook
    "hotmial.com": "hotmail.com",
    "hotmai.com": "hotmail.com",
    "hotmal.com": "hotmail.com",
    "hotnail.com": "hotmail.com",
    "hotmail.co": "hotmail.com",
    "hotmail.con": "hotmail.com",
    "outlok.com": "outlook.com",
    "outloo.com": "outlook.com",
    "outlook.co": "outlook.com",
    "outlook.con": "outlook.com",
    # rediff, icloud
    "redifmail.com": "rediffmail.com",
    "rediffmal.com": "rediffmail.com",
    "rediffmail.co": "rediffmail.com",
    "rediffmail.con": "rediffmail.com",
    "iclod.com": "icloud.com",
    "icloud.co": "icloud.com",
    "icloud.con": "icloud.com",
}
"""Misspelt domains folded to the real one. Only whole-domain matches: `yahoo.co.in` stays."""

PROVIDER_DOMAINS: tuple[str, ...] = (
    "gmail.com", "yahoo.com", "yahoo.co.in", "hotmail.com", "outlook.com", "rediffmail.com",
    "icloud.com",
)  # fmt: skip
"""Big providers whose one-keystroke misspellings (`gmsil.com`, `yahoo.co.im`) fold to them."""

REAL_NEAR_MISSES: frozenset[str] = frozenset(
    {"ymail.com", "gmx.com", "mail.com", "email.com", "yahoo.co.uk", "yahoo.in", "yahoo.co.id",
     "yahoo.co.jp", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "outlook.in",
     "outlook.de", "outlook.fr", "icloud.de", "rediff.com", "gmail.co.in", "live.com", "msn.com"}
)  # fmt: skip
"""Real domains one keystroke away from a provider: never folded."""


def fold_domain(domain: str) -> str:
    """A domain with typos folded: the table first, then any domain one edit (OSA: substitution,
    insertion, deletion or transposition) away from a big provider, unless it is a real domain."""
    known = DOMAIN_TYPOS.get(domain)
    if known is not None:
        return known
    if domain in PROVIDER_DOMAINS or domain in REAL_NEAR_MISSES or not _DOMAIN_RE.match(domain):
        return domain
    for provider in PROVIDER_DOMAINS:
        if (
            abs(len(provider) - len(domain)) <= 1
            and OSA.distance(domain, provider, score_cutoff=1) <= 1
        ):
            return provider
    # Gmail has one domain worldwide, so gmail.<anything> and gmailcom.com are typos of it (unlike
    # yahoo.fr or hotmail.co.uk, which are real).
    label = domain.split(".", 1)[0]
    if label in ("gmail", "gmailcom", "gmailco"):
        return GMAIL_DOMAIN
    return domain


def _fold_domains_expr(domains: pl.Series) -> dict[str, str]:
    """The folding map of a column's distinct domains (one Python call per distinct domain)."""
    return {d: f for d in domains.drop_nulls().unique().to_list() if (f := fold_domain(d)) != d}


GMAIL_DOMAIN = "gmail.com"
MAX_LOCAL_CHARS = 64
MAX_DOMAIN_CHARS = 253
_LOCAL_PATTERN = r"^[a-z0-9!#$%&'*+/=?^_`{|}~.\-]+$"
_DOMAIN_PATTERN = (
    r"^(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9\-]{1,59})$"
)
_LOCAL_RE = re.compile(_LOCAL_PATTERN)
_DOMAIN_RE = re.compile(_DOMAIN_PATTERN)


@dataclass(frozen=True)
class CanonicalEmail:
    """A canonical email and its parts; `email == f"{local}@{domain}"`."""

    email: str
    local: str
    domain: str


def canonical_email(raw: str | None) -> CanonicalEmail | None:
    """Canonical form of a typed email, or None when it does not parse as an email."""
    value = clean_text(raw)
    if value is None:
        return None
    value = value.lower()
    if value.count("@") != 1:
        return None
    local, domain = value.split("@")
    domain = domain.rstrip(".")
    domain = fold_domain(domain)
    if (
        len(domain) > MAX_DOMAIN_CHARS
        or not _DOMAIN_RE.match(domain)
        or len(local) > MAX_LOCAL_CHARS
        or not _LOCAL_RE.match(local)
    ):
        return None
    local = local.split("+", 1)[0]
    if domain == GMAIL_DOMAIN:
        local = local.replace(".", "")
    if not local:
        return None
    return CanonicalEmail(email=f"{local}@{domain}", local=local, domain=domain)


def normalize_emails(raw: pl.Series) -> pl.DataFrame:
    """Vectorised `canonical_email`: columns `email_raw`, `email`, `email_local`, `email_domain`.

    `email_raw` is the input unchanged; the other three are null together when it does not parse.
    """
    frame = pl.DataFrame({"email_raw": raw.cast(pl.String)})
    value = clean_text_expr(pl.col("email_raw")).str.to_lowercase()
    domains = frame.select(value.str.extract(r"@([^@]*)$", 1).str.strip_chars_end(".")).to_series()
    domain_map = _fold_domains_expr(domains)
    parts = (
        frame.lazy()
        .with_columns(_v=value)
        .with_columns(
            _ok=pl.col("_v").str.count_matches("@", literal=True) == 1,
            _local=pl.col("_v").str.extract(r"^([^@]*)@", 1),
            _domain=pl.col("_v").str.extract(r"@([^@]*)$", 1).str.strip_chars_end("."),
        )
        .with_columns(_domain=pl.col("_domain").replace(domain_map))
        .with_columns(
            _ok=pl.col("_ok")
            & (pl.col("_domain").str.len_chars() <= MAX_DOMAIN_CHARS)
            & pl.col("_domain").str.contains(_DOMAIN_PATTERN)
            & (pl.col("_local").str.len_chars() <= MAX_LOCAL_CHARS)
            & pl.col("_local").str.contains(_LOCAL_PATTERN),
            _local=pl.col("_local").str.extract(r"^([^+]*)", 1),
        )
        .with_columns(
            _local=pl.when(pl.col("_domain") == GMAIL_DOMAIN)
            .then(pl.col("_local").str.replace_all(".", "", literal=True))
            .otherwise(pl.col("_local"))
        )
        .with_columns(_ok=pl.col("_ok").fill_null(False) & (pl.col("_local").str.len_chars() > 0))
        .select(
            "email_raw",
            email=pl.when("_ok").then(pl.concat_str("_local", pl.lit("@"), "_domain")),
            email_local=pl.when("_ok").then("_local"),
            email_domain=pl.when("_ok").then("_domain"),
        )
    )
    return parts.collect()


# ---- phones ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FastPath:
    """Digit shapes of one region's mobile numbers that map to E.164 without `phonenumbers`.

    `with_plus` / `without_plus` are regexes over the digits (plus sign removed) whose first group
    is the national significant number. Each shape is checked against `phonenumbers` (same E.164,
    `is_valid_number` true) by a property test, so the fast path changes no answer, only speed.
    """

    country_code: str
    with_plus: str
    without_plus: str


_FAST_PATHS: dict[str, _FastPath] = {
    # India: 10-digit mobiles start with 6-9; written bare, with trunk 0, with 91, with IDD 0091,
    # or +91 with a stray trunk 0 (`+91 (0) 98765 43210`).
    "IN": _FastPath(
        country_code="91",
        with_plus=r"^910?([6-9][0-9]{9})$",
        without_plus=r"^(?:0|91|0091)?([6-9][0-9]{9})$",
    ),
}
_PHONE_SEPARATED = r"^\+?[0-9 ()./\-]*[0-9][0-9 ()./\-]*$"
"""Digits and the usual separators only, at most one leading `+`; such values are reduced to
`[+]digits` before lookup, so `987-654-3210` and `(987) 654 3210` share one cache entry."""
_PHONE_SEPARATED_RE = re.compile(_PHONE_SEPARATED)
_PHONE_SEPARATED_PLUS = r"^\(?\+"
_PHONE_SEPARATED_PLUS_RE = re.compile(_PHONE_SEPARATED_PLUS)
_EXCEL_FLOAT = r"^([0-9]+)\.0+$"
"""`9876543210.0`: a phone that went through a spreadsheet as a float."""
_EXCEL_FLOAT_RE = re.compile(_EXCEL_FLOAT)
MAX_PHONE_CHARS = 64
_PHONE_EXTENSION = r"[ ,]*(?:[Ee]?[Xx][Tt](?:[Nn]|[Ee][Nn][Ss][Ii][Oo][Nn])?|[Xx])[ .:]*[0-9]+$"
_PHONE_EXTENSION_RE = re.compile(_PHONE_EXTENSION)
_PHONE_LETTER_AFTER_DIGIT = r"(?s)[0-9\uff10-\uff19\u0660-\u0669\u06f0-\u06f9].*[A-Za-z]"
"""A letter after a digit (ASCII, full-width or Arabic-Indic), once a trailing extension is cut."""
_PHONE_LETTER_AFTER_DIGIT_RE = re.compile(_PHONE_LETTER_AFTER_DIGIT)


def _phone_key(raw: str | None) -> str | None:
    """The lookup key of a typed phone: `[+]digits` for plain numbers, else the stripped text."""
    value = clean_text(raw)
    if value is None or len(value) > MAX_PHONE_CHARS:
        return None
    if _PHONE_LETTER_AFTER_DIGIT_RE.search(_PHONE_EXTENSION_RE.sub("", value, count=1)):
        return None
    value = _EXCEL_FLOAT_RE.sub(r"\1", value)
    if _PHONE_SEPARATED_RE.match(value) or (
        value.startswith("(+") and _PHONE_SEPARATED_RE.match(value[1:])
    ):
        plus = "+" if _PHONE_SEPARATED_PLUS_RE.match(value) else ""
        return plus + re.sub(r"[^0-9]", "", value)
    return value


def _phone_key_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `_phone_key`."""
    value = clean_text_expr(expr)
    value = pl.when(value.str.len_chars() <= MAX_PHONE_CHARS).then(value)
    lettered = value.str.replace(_PHONE_EXTENSION, "").str.contains(_PHONE_LETTER_AFTER_DIGIT)
    value = pl.when(~lettered).then(value)
    value = value.str.replace(_EXCEL_FLOAT, "${1}")
    plain = value.str.contains(_PHONE_SEPARATED) | (
        value.str.starts_with("(+") & value.str.slice(1).str.contains(_PHONE_SEPARATED)
    )
    plus = (
        pl.when(value.str.contains(_PHONE_SEPARATED_PLUS)).then(pl.lit("+")).otherwise(pl.lit(""))
    )
    digits = value.str.replace_all(r"[^0-9]", "")
    return pl.when(plain).then(pl.concat_str(plus, digits)).otherwise(value)


def _fast_phone(key: str, region: str) -> str | None:
    fast = _FAST_PATHS.get(region)
    if fast is None:
        return None
    if key.startswith("+"):
        match = re.match(fast.with_plus, key[1:])
    else:
        match = re.match(fast.without_plus, key)
    return f"+{fast.country_code}{match.group(1)}" if match else None


def _parse_phone_uncached(key: str, region: str) -> str | None:
    """`phonenumbers` on one key: E.164 when the number is valid, else None."""
    try:
        number = phonenumbers.parse(key, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_parse_phone = lru_cache(maxsize=65536)(_parse_phone_uncached)
"""Cached for the online path, where the same few numbers recur; the batch path dedupes itself."""


def canonical_phone(raw: str | None, region: str = "IN") -> str | None:
    """E.164 form of a typed phone (`region` for numbers written without +country), or None."""
    key = _phone_key(raw)
    if key is None:
        return None
    return _fast_phone(key, region) or _parse_phone(key, region)


def normalize_phones(raw: pl.Series, region: str) -> pl.Series:
    """Vectorised `canonical_phone`: E.164 or null, same length and order as `raw`.

    Cost: a few polars passes, then `phonenumbers` once per *unique* key that the fast path does not
    cover (foreign numbers, landlines, odd text) — never once per row.
    """
    name = _series_name(raw, "phone")
    # Lazy, so the cleaned value `_phone_key_expr` refers to several times is computed once.
    frame = (
        pl.DataFrame({"raw": raw.cast(pl.String)})
        .lazy()
        .with_columns(key=_phone_key_expr(pl.col("raw")))
        .collect()
    )
    fast = _FAST_PATHS.get(region)
    if fast is not None:
        national = (
            pl.when(pl.col("key").str.starts_with("+"))
            .then(pl.col("key").str.slice(1).str.extract(fast.with_plus, 1))
            .otherwise(pl.col("key").str.extract(fast.without_plus, 1))
        )
        frame = frame.with_columns(
            e164=pl.when(national.is_not_null()).then(
                pl.concat_str(pl.lit(f"+{fast.country_code}"), national)
            )
        )
    else:
        frame = frame.with_columns(e164=pl.lit(None, dtype=pl.String))
    leftovers = (
        frame.filter(pl.col("e164").is_null() & pl.col("key").is_not_null())
        .get_column("key")
        .unique()
    )
    if len(leftovers):
        keys = leftovers.to_list()
        parsed = pl.DataFrame(
            {"key": keys, "_parsed": [_parse_phone_uncached(k, region) for k in keys]},
            schema={"key": pl.String, "_parsed": pl.String},
        )
        frame = frame.join(parsed, on="key", how="left", maintain_order="left").with_columns(
            e164=pl.coalesce("e164", "_parsed")
        )
    return frame.get_column("e164").alias(name)


# ---- device ids, IPs, names -----------------------------------------------------------------


def canonical_device(raw: str | None) -> str | None:
    """Canonical device id: stripped, ASCII lower-cased, inner whitespace collapsed; None when
    empty."""
    value = clean_text(raw)
    if value is None:
        return None
    return ascii_lower(_WS_RUN_RE.sub(" ", value))


def device_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `canonical_device` as an expression."""
    return ascii_lower_expr(clean_text_expr(expr).str.replace_all(_WS_RUN, " "))


def normalize_devices(raw: pl.Series) -> pl.Series:
    """Vectorised `canonical_device`."""
    name = _series_name(raw, "device_id")
    return pl.select(device_expr(pl.lit(raw.cast(pl.String)))).to_series().alias(name)


def canonical_name(raw: str | None) -> str | None:
    """Display name with whitespace stripped and collapsed; case and emoji kept."""
    value = clean_text(raw)
    return None if value is None else _WS_RUN_RE.sub(" ", value)


def name_expr(expr: pl.Expr) -> pl.Expr:
    """Vectorised `canonical_name` as an expression."""
    return clean_text_expr(expr).str.replace_all(_WS_RUN, " ")


def normalize_names(raw: pl.Series) -> pl.Series:
    """Vectorised `canonical_name`."""
    name = _series_name(raw, "name")
    return pl.select(name_expr(pl.lit(raw.cast(pl.String)))).to_series().alias(name)


_IPV4_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
_IPV4_PATTERN = rf"^{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}$"
"""Exactly the dotted quads `ipaddress` accepts (no leading zeros), already canonical."""


def canonical_ip(raw: str | None) -> str | None:
    """Canonical IP text (IPv6 compressed, IPv4-mapped IPv6 as IPv4), or None when invalid."""
    value = clean_text(raw)
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def normalize_ips(raw: pl.Series) -> pl.Series:
    """Vectorised `canonical_ip`: plain IPv4 by regex, `ipaddress` on unique values with a colon."""
    name = _series_name(raw, "ip")
    frame = pl.DataFrame({"raw": raw.cast(pl.String)}).with_columns(
        value=clean_text_expr(pl.col("raw"))
    )
    frame = frame.with_columns(
        ip=pl.when(pl.col("value").str.contains(_IPV4_PATTERN)).then(pl.col("value"))
    )
    candidates = (
        frame.filter(pl.col("ip").is_null() & pl.col("value").str.contains(":", literal=True))
        .get_column("value")
        .unique()
    )
    if len(candidates):
        values = candidates.to_list()
        parsed = pl.DataFrame(
            {"value": values, "_parsed": [canonical_ip(v) for v in values]},
            schema={"value": pl.String, "_parsed": pl.String},
        )
        frame = frame.join(parsed, on="value", how="left", maintain_order="left").with_columns(
            ip=pl.coalesce("ip", "_parsed")
        )
    return frame.get_column("ip").alias(name)


# ---- UPI ids ----------------------------------------------------------------------------------

PSP_ALIASES: dict[str, str] = {
    # Google Pay's handles at a bank, folded to the bank's own (`rahul@okicici` ~ `rahul@icici`)
    "okicici": "icici",
    "okhdfcbank": "hdfcbank",
    "oksbi": "sbi",
    "okaxis": "axisbank",
    # Paytm's bank handles
    "ptaxis": "axisbank",
    "pthdfc": "hdfcbank",
    "ptsbi": "sbi",
    "ptyes": "yesbank",
}
"""Payment-app handles that name the same bank as its own handle."""

_UPI_HANDLE = r"^[a-z0-9][a-z0-9._\-]{1,63}$"
_CONTROL = r"[\x00-\x1f\x7f-\x9f]"
"""C0 and C1 control characters (one pattern for Python's `re` and polars' regex)."""
_UPI_PSP = r"^[a-z][a-z0-9]{1,31}$"


def normalize_upis(raw: pl.Series) -> pl.DataFrame:
    """UPI ids (`Rahul.Sharma1@OKICICI`) → `upi, upi_handle, upi_psp` (`rahul.sharma1@icici`).

    Lower-case, exactly one `@`, a handle of 2-64 letters, digits, `.`, `_` or `-` starting with a
    letter or digit, a PSP of letters and digits; PSP aliases folded (`PSP_ALIASES`). The three
    columns are null together when the value is not a UPI id. `canonical_upi` is the scalar twin.
    """
    value = clean_text_expr(pl.col("raw")).str.to_lowercase()
    handle = value.str.extract(r"^([^@]*)@", 1)
    psp = value.str.extract(r"@([^@]*)$", 1).replace(PSP_ALIASES)
    ok = (
        (value.str.count_matches("@", literal=True) == 1)
        & handle.str.contains(_UPI_HANDLE)
        & psp.str.contains(_UPI_PSP)
    ).fill_null(False)
    return (
        pl.DataFrame({"raw": raw.cast(pl.String)})
        .lazy()
        .select(
            upi=pl.when(ok).then(pl.concat_str(handle, pl.lit("@"), psp)),
            upi_handle=pl.when(ok).then(handle),
            upi_psp=pl.when(ok).then(psp),
        )
        .collect()
    )


# ---- declared tokens (hashes, account numbers) -----------------------------------------------


def normalize_tokens(raw: pl.Series, *, case_sensitive: bool = False) -> pl.Series:
    """Opaque tokens of a declared kind (a PAN hash, a bank-account hash): stripped, inner
    whitespace collapsed, lower-cased unless `case_sensitive`; null tokens and values holding
    control characters become null (a NUL inside a hash is a broken feed, not an identifier)."""
    value = clean_text_expr(pl.col("raw")).str.replace_all(_WS_RUN, " ")
    if not case_sensitive:
        value = ascii_lower_expr(value)
    value = pl.when(value.str.contains(_CONTROL)).then(None).otherwise(value)
    return pl.DataFrame({"raw": raw.cast(pl.String)}).select(value.alias(raw.name or "value"))[:, 0]


_UPI_HANDLE_RE = re.compile(_UPI_HANDLE)
_UPI_PSP_RE = re.compile(_UPI_PSP)
_CONTROL_RE = re.compile(_CONTROL)


def canonical_upi(raw: str | None) -> tuple[str, str, str] | None:
    """Scalar `normalize_upis`: (upi, handle, psp), or None when it is not a UPI id."""
    value = clean_text(raw)
    if value is None:
        return None
    value = value.lower()
    if value.count("@") != 1:
        return None
    handle, psp = value.split("@")
    psp = PSP_ALIASES.get(psp, psp)
    if not _UPI_HANDLE_RE.match(handle) or not _UPI_PSP_RE.match(psp):
        return None
    return f"{handle}@{psp}", handle, psp


def canonical_token(raw: str | None, *, case_sensitive: bool = False) -> str | None:
    """Scalar `normalize_tokens`."""
    value = clean_text(raw)
    if value is None:
        return None
    value = _WS_RUN_RE.sub(" ", value)
    if not case_sensitive:
        value = ascii_lower(value)
    return None if _CONTROL_RE.search(value) else value
