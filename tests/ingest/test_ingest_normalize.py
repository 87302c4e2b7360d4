"""Normalisers: worked examples, scalar == vectorised, idempotence, and the phone fast path
checked against `phonenumbers` itself."""

from __future__ import annotations

import phonenumbers
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphfraud.ingest.normalize import (
    DOMAIN_TYPOS,
    WHITESPACE,
    CanonicalEmail,
    canonical_device,
    canonical_email,
    canonical_ip,
    canonical_name,
    canonical_phone,
    canonical_token,
    canonical_upi,
    normalize_devices,
    normalize_emails,
    normalize_ips,
    normalize_names,
    normalize_phones,
    normalize_tokens,
    normalize_upis,
)

# Text that exercises the edges: ASCII email/phone alphabet, whitespace of both worlds, the
# characters where Python and Rust disagree, unicode case oddities, emoji.
_ALPHABET = st.sampled_from(
    list("abcXYZ019.+-_@() /:f")
    + list(WHITESPACE)
    + ["\x1c", "\x1f", "K", "İ", "ß", "Σ", "😀", "\ufffd", "#", "%"]
)
messy_text = st.one_of(st.none(), st.text(_ALPHABET, max_size=30), st.text(max_size=20))


# ---- emails -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John.Doe+promo@GMail.com ", "johndoe@gmail.com"),
        ("j.o.h.n.doe@googlemail.com", "johndoe@gmail.com"),
        ("john.doe@gmial.com", "johndoe@gmail.com"),
        ("john.doe@gmai.com", "johndoe@gmail.com"),
        ("john.doe@gmail.co", "johndoe@gmail.com"),
        ("john.doe@gmail.con", "johndoe@gmail.com"),
        ("john.doe@gamil.com", "johndoe@gmail.com"),
        ("john.doe@gmaill.com", "johndoe@gmail.com"),
        ("john.doe+x@yaho.com", "john.doe@yahoo.com"),
        ("john.doe@yahooo.com", "john.doe@yahoo.com"),
        ("john.doe@yahoo.co", "john.doe@yahoo.com"),
        ("john.doe@yahoo.co.in", "john.doe@yahoo.co.in"),
        ("a.b@hotmial.com", "a.b@hotmail.com"),
        ("a.b@hotmail.co", "a.b@hotmail.com"),
        ("a.b@outlok.com", "a.b@outlook.com"),
        ("a.b@redifmail.com", "a.b@rediffmail.com"),
        ("a.b+tag+more@corp.example.in", "a.b@corp.example.in"),
        ("a@gmail.com.", "a@gmail.com"),
    ],
)
def test_canonical_email_examples(raw: str, expected: str) -> None:
    result = canonical_email(raw)
    assert result is not None
    assert result.email == expected
    assert result == CanonicalEmail(expected, *expected.split("@"))


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "  ",
        "NaN",
        "null",
        "None",
        "no-at-sign",
        "a@@b.com",
        "a@b@c.com",
        "@gmail.com",
        "a@",
        "a@localhost",
        "a@b.c0m",
        "😀@gmail.com",
        "john@gmail😀.com",
        "a b@gmail.com",
        "+tag@gmail.com",
        "...@gmail.com",
        "x" * 65 + "@gmail.com",
        "a@-bad.com",
    ],
)
def test_canonical_email_rejects(raw: str | None) -> None:
    assert canonical_email(raw) is None


def test_domain_typo_targets_are_canonical() -> None:
    for typo, real in DOMAIN_TYPOS.items():
        assert real not in DOMAIN_TYPOS, typo
        assert canonical_email(f"x@{typo}") == canonical_email(f"x@{real}")


def _emails_scalar(values: list[str | None]) -> list[tuple[str | None, str | None, str | None]]:
    out = []
    for v in values:
        c = canonical_email(v)
        out.append((c.email, c.local, c.domain) if c else (None, None, None))
    return out


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(messy_text, st.emails().map(lambda e: f" {e.upper()} ")), max_size=20))
def test_emails_scalar_equals_vectorised(values: list[str | None]) -> None:
    frame = normalize_emails(pl.Series(values, dtype=pl.String))
    assert frame.columns == ["email_raw", "email", "email_local", "email_domain"]
    assert frame.get_column("email_raw").to_list() == values
    vectorised = list(frame.select("email", "email_local", "email_domain").iter_rows())
    assert vectorised == _emails_scalar(values)


@settings(max_examples=200, deadline=None)
@given(st.one_of(messy_text, st.emails()))
def test_email_idempotent(raw: str | None) -> None:
    once = canonical_email(raw)
    if once is not None:
        assert canonical_email(once.email) == once
        assert once.email == f"{once.local}@{once.domain}"


# ---- phones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+91 98765 43210",
        "098765 43210",
        "91-987-654-3210",
        "9876543210",
        "+919876543210",
        "(+91) 98765-43210",
        "0091 98765 43210",
        "+91 (0) 98765 43210",
        "9876543210.0",
        " 98765\u00a043210 ",
        "+91-9876543210 ext 12",
        "98765 43210 x12",
        "tel: +91 98765 43210",
        "Mob: 098765 43210",
    ],
)
def test_phone_spellings_fold_to_one_number(raw: str) -> None:
    assert canonical_phone(raw) == "+919876543210"
    assert normalize_phones(pl.Series([raw]), "IN").to_list() == ["+919876543210"]


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+1 650 253 0000", "IN", "+16502530000"),
        ("(650) 253-0000", "US", "+16502530000"),
        ("+44 (0)20 7946 0000", "IN", "+442079460000"),
        ("12345678", "IN", None),
        ("0919876543210", "IN", None),  # `091` is no Indian prefix: phonenumbers calls it invalid
        ("call me", "IN", None),
        ("nan", "IN", None),
        ("", "IN", None),
        (None, "IN", None),
        ("9" * 200, "IN", None),
        ("+1 650 253 0000 ext. 123", "IN", "+16502530000"),
    ],
)
def test_phone_examples(raw: str | None, region: str, expected: str | None) -> None:
    assert canonical_phone(raw, region) == expected
    assert normalize_phones(pl.Series([raw], dtype=pl.String), region).to_list() == [expected]


mobile = st.from_regex(r"[6-9][0-9]{9}", fullmatch=True)
separator = st.sampled_from(["", " ", "-", ".", "  "])


@st.composite
def spelt_mobile(draw: st.DrawFn) -> tuple[str, str]:
    """(national number, one way a person writes it) for an Indian mobile."""
    n = draw(mobile)
    sep = draw(separator)
    body = draw(st.sampled_from([n, f"{n[:5]}{sep}{n[5:]}", f"{n[:3]}{sep}{n[3:6]}{sep}{n[6:]}"]))
    prefix = draw(
        st.sampled_from(
            ["", "0", "91", "91" + sep, "0091", "+91", "+91" + sep, "+91 0", "(+91) ", "+91(0)"]
        )
    )
    return n, f"{prefix}{body}"


@settings(max_examples=400, deadline=None)
@given(spelt_mobile())
def test_phone_fast_path_agrees_with_phonenumbers(case: tuple[str, str]) -> None:
    national, raw = case
    parsed = phonenumbers.parse(raw, "IN")
    assert phonenumbers.is_valid_number(parsed)
    expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    assert expected == f"+91{national}"
    assert canonical_phone(raw) == expected
    assert normalize_phones(pl.Series([raw]), "IN").to_list() == [expected]


@pytest.mark.parametrize(
    "raw",
    [
        "+91 98AB CD1234",  # phonenumbers reads the letters as a keypad: +919822231234
        "+91 98765 4321O",  # a letter O for a zero
        "1-800-FLOWERS",
        "9876543210abc",
        "+91 ９８ＡＢ CD1234",
        "+91 98765 x 43210 ext 1",
    ],
)
def test_letters_among_the_digits_never_become_a_number(raw: str) -> None:
    assert canonical_phone(raw) is None
    assert normalize_phones(pl.Series([raw]), "IN").to_list() == [None]


@settings(max_examples=300, deadline=None)
@given(spelt_mobile(), st.integers(0, 12), st.sampled_from(list("ABCDEFGHIJKLMNOPQRSTUVWYZabcdo")))
def test_a_letter_inside_a_valid_number_makes_it_null(
    case: tuple[str, str], at: int, letter: str
) -> None:
    _, raw = case
    digits = [i for i, ch in enumerate(raw) if ch.isdigit()]
    cut = digits[min(at, len(digits) - 1)] + 1  # after some digit, so never a leading label
    lettered = raw[:cut] + letter + raw[cut:]
    assert canonical_phone(lettered) is None
    assert normalize_phones(pl.Series([lettered]), "IN").to_list() == [None]


phone_text = st.one_of(
    messy_text,
    st.text(st.sampled_from(list("0123456789+-() .")), max_size=18),
    st.text(st.sampled_from(list("0123456789+ .:ABOxXtTeEnN,٣９")), max_size=18),
    spelt_mobile().map(lambda c: c[1]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(phone_text, max_size=20), st.sampled_from(["IN", "US", "GB"]))
def test_phones_scalar_equals_vectorised(values: list[str | None], region: str) -> None:
    vectorised = normalize_phones(pl.Series(values, dtype=pl.String), region).to_list()
    assert vectorised == [canonical_phone(v, region) for v in values]


@settings(max_examples=200, deadline=None)
@given(phone_text, st.sampled_from(["IN", "US"]))
def test_phone_idempotent(raw: str | None, region: str) -> None:
    once = canonical_phone(raw, region)
    if once is not None:
        assert once.startswith("+")
        assert canonical_phone(once, region) == once


# ---- devices, IPs, names ----------------------------------------------------------------------


def test_device_examples() -> None:
    raws = [" AB  12 ", "ab 12", "Ab\t12", "", "NaN", None]
    expected = ["ab 12", "ab 12", "ab 12", None, None, None]
    assert [canonical_device(r) for r in raws] == expected
    assert normalize_devices(pl.Series(raws, dtype=pl.String)).to_list() == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.0.0.1", "10.0.0.1"),
        (" 10.0.0.1 ", "10.0.0.1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("010.0.0.1", None),
        ("256.1.1.1", None),
        ("1.2.3", None),
        ("garbage", None),
        ("nan", None),
        (None, None),
    ],
)
def test_ip_examples(raw: str | None, expected: str | None) -> None:
    assert canonical_ip(raw) == expected
    assert normalize_ips(pl.Series([raw], dtype=pl.String)).to_list() == [expected]


def test_name_keeps_case_and_emoji() -> None:
    raws = ["  Ana   María 😀 ", "None", None]
    assert [canonical_name(r) for r in raws] == ["Ana María 😀", None, None]
    assert normalize_names(pl.Series(raws, dtype=pl.String)).to_list() == [
        "Ana María 😀",
        None,
        None,
    ]


ip_text = st.one_of(
    messy_text,
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda a: a.exploded.upper()),
    st.text(st.sampled_from(list("0123456789abcdef:.")), max_size=20),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ip_text, max_size=20))
def test_ips_scalar_equals_vectorised_and_idempotent(values: list[str | None]) -> None:
    vectorised = normalize_ips(pl.Series(values, dtype=pl.String)).to_list()
    scalar = [canonical_ip(v) for v in values]
    assert vectorised == scalar
    assert [canonical_ip(v) for v in scalar if v is not None] == [v for v in scalar if v]


@settings(max_examples=300, deadline=None)
@given(st.lists(messy_text, max_size=20))
def test_devices_and_names_scalar_equals_vectorised(values: list[str | None]) -> None:
    series = pl.Series(values, dtype=pl.String)
    devices = [canonical_device(v) for v in values]
    names = [canonical_name(v) for v in values]
    assert normalize_devices(series).to_list() == devices
    assert normalize_names(series).to_list() == names
    assert [canonical_device(d) for d in devices] == devices
    assert [canonical_name(n) for n in names] == names


@pytest.mark.parametrize(
    ("domain", "folded"),
    [
        ("gmsil.com", "gmail.com"),  # substitution
        ("gmial.com", "gmail.com"),  # transposition
        ("gmail.cm", "gmail.com"),  # deletion
        ("yahoo.co.im", "yahoo.co.in"),
        ("gmail.in", "gmail.com"),  # right provider, wrong ending
        ("gmailcom.com", "gmail.com"),
        ("hotmail.co.uk", "hotmail.co.uk"),  # real
        ("ymail.com", "ymail.com"),  # a real domain one keystroke from gmail.com
        ("gmx.com", "gmx.com"),
        ("tcs.com", "tcs.com"),
    ],
)
def test_fold_domain_one_keystroke_typos_of_big_providers(domain: str, folded: str) -> None:
    from graphfraud.ingest.normalize import fold_domain

    assert fold_domain(domain) == folded
    assert canonical_email(f"someone@{domain}") == CanonicalEmail(
        email=f"someone@{folded}", local="someone", domain=folded
    )


# ---- UPI ids and declared tokens ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" Rahul.Sharma1@OKICICI ", ("rahul.sharma1@icici", "rahul.sharma1", "icici")),
        ("rahul.sharma1@icici", ("rahul.sharma1@icici", "rahul.sharma1", "icici")),
        ("9876543210@ybl", ("9876543210@ybl", "9876543210", "ybl")),
        ("a_b-c.d@paytm", ("a_b-c.d@paytm", "a_b-c.d", "paytm")),
        ("a@b@c", None),
        ("rahul sharma@ybl", None),
        ("@ybl", None),
        ("rahul@", None),
        ("rahul@ok-icici", None),
        ("NaN", None),
        (None, None),
    ],
)
def test_upi_canonical_forms(raw: str | None, expected: tuple[str, str, str] | None) -> None:
    assert canonical_upi(raw) == expected
    row = normalize_upis(pl.Series([raw], dtype=pl.String)).row(0)
    assert (None if row[0] is None else row) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet="aZ09._-@ +\x00okicybl", max_size=24), max_size=30))
def test_upi_scalar_and_vectorised_agree(values: list[str]) -> None:
    frame = normalize_upis(pl.Series(values, dtype=pl.String))
    assert [None if r[0] is None else r for r in frame.rows()] == [canonical_upi(v) for v in values]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(max_size=16), max_size=30), st.booleans())
def test_token_scalar_and_vectorised_agree(values: list[str], case_sensitive: bool) -> None:
    got = normalize_tokens(pl.Series(values, dtype=pl.String), case_sensitive=case_sensitive)
    assert got.to_list() == [canonical_token(v, case_sensitive=case_sensitive) for v in values]


def test_tokens_fold_case_and_space_and_refuse_control_characters() -> None:
    assert canonical_token("  AB12  CD ") == "ab12 cd"
    assert canonical_token("AB12", case_sensitive=True) == "AB12"
    assert canonical_token("ab\x00cd") is None
