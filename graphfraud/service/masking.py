"""PII masking for analysts without the investigator role.

Each identifier kind declares its rule (`identifiers.Mask`): `john.doe1@gmail.com` →
`j***1@gmail.com` (UPI ids alike); `+919876543210` → `+91******3210` (country code and the last
four digits kept: enough to tell numbers apart in a ring, not enough to call anyone); declared
hashes → `ab…89`; device ids and IPs are shown as they are: they are the evidence analysts
compare. A link kind the registry does not know is masked whole (fail closed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import phonenumbers

from graphfraud.identifiers import BUILTIN, IdentifierRegistry, Mask

_EMAIL_RE = re.compile(r"[^\s@,;:()<>\"']+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"\+\d{7,15}")


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


def mask_hash(value: str | None) -> str | None:
    """First and last two characters of a token: tells two hashes apart, recovers nothing."""
    if not value:
        return value
    return f"{value[:2]}…{value[-2:]}" if len(value) > 6 else "*" * len(value)


def mask_full(value: str | None) -> str | None:
    return "****" if value else value


def _shown(value: str | None) -> str | None:
    return value


_MASKS: dict[Mask, Callable[[str | None], str | None]] = {
    Mask.EMAIL: mask_email,
    Mask.PHONE: mask_phone,
    Mask.HASH: mask_hash,
    Mask.FULL: mask_full,
    Mask.NONE: _shown,
}


def mask_value(kind: str, value: str | None, registry: IdentifierRegistry = BUILTIN) -> str | None:
    """Mask one link value by its kind's rule; an unknown kind is masked whole."""
    spec = registry.spec_of_link(kind)
    return _MASKS[spec.mask if spec is not None else Mask.FULL](value)


def mask_text(text: str) -> str:
    """Mask every email address and E.164 number inside free text (link evidence sentences)."""
    text = _EMAIL_RE.sub(lambda m: mask_email(m.group(0)) or "", text)
    return _PHONE_RE.sub(lambda m: mask_phone(m.group(0)) or "", text)


@dataclass(frozen=True)
class Masking:
    """What one caller may see: `masked` unless its role may read PII, by the kinds of
    `registry` (the served run's)."""

    masked: bool
    registry: IdentifierRegistry = BUILTIN

    def value(self, kind: str, value: str | None) -> str | None:
        return mask_value(kind, value, self.registry) if self.masked else value

    def email(self, value: str | None) -> str | None:
        return mask_email(value) if self.masked else value

    def phone(self, value: str | None) -> str | None:
        return mask_phone(value) if self.masked else value
