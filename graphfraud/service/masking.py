"""PII masking for analysts without the investigator role.

`john.doe1@gmail.com` → `j***1@gmail.com`; `+919876543210` → `+91******3210` (country code and
the last four digits kept: enough to tell numbers apart in a ring, not enough to call anyone).
Device ids and IPs are shown as they are: they are the evidence analysts compare.
"""

from __future__ import annotations

import re

import phonenumbers

_EMAIL_RE = re.compile(r"[^\s@,;:()<>\"']+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"\+\d{7,15}")
EMAIL_KINDS = frozenset({"email", "email_similar"})
PHONE_KINDS = frozenset({"phone", "phone_similar"})


def mask_email(value: str | None) -> str | None:
    if not value:
        return value
    local, at, domain = value.rpartition("@")
    if not at:
        return _mask_middle(value)
    if len(local) <= 2:
        return f"{local[:1]}***@{domain}"
    return f"{local[0]}***{local[-1]}@{domain}"


def _country_code(e164: str) -> str:
    try:
        return str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        return e164[1:3]


def mask_phone(value: str | None) -> str | None:
    if not value:
        return value
    digits = value.lstrip("+")
    if not value.startswith("+") or not digits.isdigit():
        return _mask_middle(value)
    cc = _country_code(value)
    rest = digits[len(cc) :]
    if len(rest) <= 4:
        return f"+{cc}{'*' * len(rest)}"
    return f"+{cc}{'*' * (len(rest) - 4)}{rest[-4:]}"


def _mask_middle(value: str) -> str:
    if len(value) <= 4:
        return "*" * len(value)
    return f"{value[:1]}{'*' * (len(value) - 2)}{value[-1:]}"


def mask_value(kind: str, value: str | None) -> str | None:
    """Mask one link value according to its kind."""
    if kind in EMAIL_KINDS:
        return mask_email(value)
    if kind in PHONE_KINDS:
        return mask_phone(value)
    return value


def mask_text(text: str) -> str:
    """Mask every email address and E.164 number inside free text (link evidence sentences)."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or "", text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)) or "", text)
