"""Identifier kinds, declared once: what each kind is, how it is normalised, linked, weighed,
explained, masked and drawn.

Every stage iterates over an `IdentifierRegistry` instead of naming kinds: ingest (which input
columns, which normaliser), linking (exact shared values, look-alike handles, numeric sequences),
weights (prior and rarity decay), evidence sentences, features, the graph (node label and
relationship type), the snapshot's indexes, the online scorer, masking, reason codes and the UI
legend. Adding a built-in kind means adding one `IdentifierSpec` here (plus its normaliser and
tests); adding an exact-match kind is a settings change (`Settings.identifiers`, see
`DeclaredIdentifier`), no code.

A spec missing a part fails at import (a dataclass field without a default) or when the registry is
built (`IdentifierRegistry.__post_init__` checks names, labels, wording and templates). Unknown
kinds fail closed: `link_rule` and `spec` raise instead of defaulting, and masking an unknown kind
hides the whole value (`service.masking`).

A run directory records the declared kinds it was built with (`manifest.json`, key
`identifiers`), so readers of a run (graph tables, the snapshot) rebuild the same registry without
the batch's settings (`registry_from_manifest`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import polars as pl

from graphfraud.errors import ArtifactError, ConfigError
from graphfraud.ingest import normalize as nz


class Source(StrEnum):
    """Which input file holds a kind: one value per user row, or many per device sighting."""

    USERS = "users"
    SIGHTINGS = "devices"


class Linkage(StrEnum):
    """How two users' values of one kind become a link."""

    EXACT = "exact"  # the same canonical value
    # look-alike handles before the `@`: near-identical (john.doe1 ~ john.doe2) or one name's
    # parts reordered (priya.verma ~ verma_priya), `linking.lookalike`
    LOOKALIKE = "lookalike"
    SEQUENCE = "sequence"  # numbers a few apart (SIM cards bought in a batch)


class Mask(StrEnum):
    """How a value is shown to a role that may not see PII (`service.masking`)."""

    EMAIL = "email"  # j***1@gmail.com: first and last character of the part before `@`
    PHONE = "phone"  # +91******3210: country code and the last four digits
    HASH = "hash"  # ab…89: enough to compare two values, not to recover one
    FULL = "full"  # ****
    NONE = "none"  # shown as is (device ids and IPs are the evidence analysts compare)


_NAME = re.compile(r"^[a-z][a-z0-9_]{1,30}$")
_CODE = re.compile(r"^[A-Z][A-Z0-9_]{2,40}$")
_LABEL = re.compile(r"^[A-Z][A-Za-z0-9]{1,40}$")
_REL = re.compile(r"^[A-Z][A-Z0-9_]{2,40}$")
_COLOUR = re.compile(r"^#[0-9a-f]{6}$")
EVIDENCE_FIELDS = frozenset({"support", "similarity"})
"""Placeholders an evidence template may use: `{support}` (users sharing the value, or the crowd
of a look-alike) and `{similarity}` (percent)."""


@dataclass(frozen=True)
class LinkRule:
    """One way a kind links two users, with everything downstream needs to weigh and explain it.

    `weight = prior × similarity × min(1, (2 / support) ** decay)` (`linking.weights`). The
    reason code is given to a user whose strongest link of this kind reaches `reason_min_weight`
    (> 0 always); `reason_priority` orders reasons across kinds and the fixed ones
    (`scoring.reasons`).
    """

    kind: str  # the link kind, e.g. "email" (exact) or "email_similar"
    match: Linkage
    prior: float
    decay: float
    reason: str
    reason_text: str
    reason_min_weight: float
    reason_priority: int
    evidence: str  # one sentence without the values, e.g. "same device, used by {support} users"
    colour: str  # legend colour in the UI

    def evidence_sentence(self, support: int, similarity: float) -> str:
        return self.evidence.format(support=support, similarity=round(similarity * 100))


@dataclass(frozen=True)
class Normaliser:
    """Canonical form of one kind, vectorised for the batch and scalar for the online scorer.

    `vector(raw, region)` returns a frame with `columns` (the first is the canonical value, the
    others its parts, e.g. an email's local part and domain), null where the input does not parse.
    `scalar(raw, region)` returns the same columns for one value, or None, in microseconds (the
    online path): the two are twins that a property test holds equal on random input.
    """

    columns: tuple[str, ...]
    vector: Callable[[pl.Series, str], pl.DataFrame]
    scalar: Callable[[str | None, str], dict[str, str] | None]


@dataclass(frozen=True)
class IdentifierSpec:
    """One kind of identifier a user can hold: a node kind of the identity graph."""

    name: str  # "email"; also the exact link kind
    label: str  # wording for people: "email address"
    source: Source
    column: str  # input column (users or device-sightings file)
    normaliser: Normaliser
    keep_raw: bool  # users.parquet keeps `<name>_raw`, the value as typed, beside the canonical
    links: tuple[LinkRule, ...]
    mask: Mask
    graph_label: str  # Neo4j node label
    holds_type: str  # relationship type User -> identifier
    declared: bool = False  # from settings, not built in
    # LOOKALIKE kinds: canonical columns holding the handle and the provider (`local@domain`)
    handle_columns: tuple[str, str] | None = None

    @property
    def value_column(self) -> str:
        """The canonical value's column in users.parquet / devices.parquet."""
        return self.normaliser.columns[0]

    @property
    def raw_column(self) -> str:
        return f"{self.name}_raw"

    def rule(self, match: Linkage) -> LinkRule | None:
        return next((r for r in self.links if r.match == match), None)


def _check_spec(spec: IdentifierSpec) -> list[str]:
    """Everything wrong with one spec (empty when it is complete)."""
    problems = []
    if not _NAME.match(spec.name):
        problems.append(f"name {spec.name!r} must match {_NAME.pattern}")
    if not spec.label.strip():
        problems.append("label is empty")
    if not _LABEL.match(spec.graph_label):
        problems.append(f"graph_label {spec.graph_label!r} must match {_LABEL.pattern}")
    if not _REL.match(spec.holds_type):
        problems.append(f"holds_type {spec.holds_type!r} must match {_REL.pattern}")
    exact = spec.rule(Linkage.EXACT)
    if exact is None or exact.kind != spec.name:
        problems.append(f"needs an exact link rule named {spec.name!r}")
    for rule in spec.links:
        if rule.match != Linkage.EXACT and rule.kind != f"{spec.name}_similar":
            problems.append(f"link kind {rule.kind!r} must be named {spec.name}_similar")
        if rule.match == Linkage.LOOKALIKE and spec.handle_columns is None:
            problems.append("a look-alike rule needs handle_columns")
        if rule.match != Linkage.EXACT and spec.source != Source.USERS:
            problems.append("fuzzy rules need one value per user (source users)")
        if not 0 < rule.prior <= 1:
            problems.append(f"{rule.kind}: prior must be in (0, 1]")
        if not 0 <= rule.decay <= 2:
            problems.append(f"{rule.kind}: decay must be in [0, 2]")
        if not _CODE.match(rule.reason):
            problems.append(f"{rule.kind}: reason code {rule.reason!r} must match {_CODE.pattern}")
        if not rule.reason_text.strip():
            problems.append(f"{rule.kind}: reason_text is empty")
        if not 0 <= rule.reason_min_weight < 1:
            problems.append(f"{rule.kind}: reason_min_weight must be in [0, 1)")
        used = set(re.findall(r"{(\w+)}", rule.evidence))
        if not rule.evidence.strip() or not used <= EVIDENCE_FIELDS:
            problems.append(f"{rule.kind}: evidence may only use {sorted(EVIDENCE_FIELDS)}")
        if not _COLOUR.match(rule.colour):
            problems.append(f"{rule.kind}: colour {rule.colour!r} is not #rrggbb")
    return [f"identifier kind {spec.name!r}: {p}" for p in problems]


@dataclass(frozen=True)
class IdentifierRegistry:
    """The kinds a run knows, in a fixed order (features, relations and reasons follow it)."""

    kinds: tuple[IdentifierSpec, ...]

    def __post_init__(self) -> None:
        problems = [p for spec in self.kinds for p in _check_spec(spec)]
        names = [s.name for s in self.kinds]
        link_kinds = [r.kind for s in self.kinds for r in s.links]
        codes = [r.reason for s in self.kinds for r in s.links]
        for what, values in (
            ("kind name", names),
            ("link kind", link_kinds),
            ("reason code", codes),
            ("input column", [s.column for s in self.kinds]),
            ("graph label", [s.graph_label for s in self.kinds]),
            ("relationship type", [s.holds_type for s in self.kinds]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                problems.append(f"{what} used twice: {', '.join(repeated)}")
        if problems:
            raise ConfigError("; ".join(problems))

    def __iter__(self) -> Iterable[IdentifierSpec]:  # type: ignore[override]
        return iter(self.kinds)

    @cached_property
    def _by_name(self) -> dict[str, IdentifierSpec]:
        return {s.name: s for s in self.kinds}

    @cached_property
    def _by_link(self) -> dict[str, tuple[IdentifierSpec, LinkRule]]:
        return {r.kind: (s, r) for s in self.kinds for r in s.links}

    def spec(self, name: str) -> IdentifierSpec:
        """The spec of a kind; unknown names raise (never a silent default)."""
        found = self._by_name.get(name)
        if found is None:
            raise ArtifactError(
                f"unknown identifier kind {name!r}", hint=f"known: {', '.join(self.names)}"
            )
        return found

    def link_rule(self, kind: str) -> LinkRule:
        """The rule of a link kind; unknown kinds raise (a link never weighs 0 silently)."""
        found = self._by_link.get(kind)
        if found is None:
            raise ArtifactError(
                f"unknown link kind {kind!r}", hint=f"known: {', '.join(self.link_kinds)}"
            )
        return found[1]

    def spec_of_link(self, kind: str) -> IdentifierSpec | None:
        found = self._by_link.get(kind)
        return None if found is None else found[0]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.kinds)

    @property
    def rules(self) -> tuple[LinkRule, ...]:
        return tuple(r for s in self.kinds for r in s.links)

    @property
    def link_kinds(self) -> tuple[str, ...]:
        """Every link kind, in registry order: the model's relations and the feature columns."""
        return tuple(r.kind for r in self.rules)

    def of_source(self, source: Source) -> tuple[IdentifierSpec, ...]:
        return tuple(s for s in self.kinds if s.source == source)

    def with_rule(self, match: Linkage) -> tuple[tuple[IdentifierSpec, LinkRule], ...]:
        return tuple((s, r) for s in self.kinds for r in s.links if r.match == match)

    @property
    def declared(self) -> tuple[IdentifierSpec, ...]:
        return tuple(s for s in self.kinds if s.declared)

    def exact_kind_of(self, kind: str) -> str:
        """The exact link kind of the identifier behind a link kind (`email_similar` → `email`)."""
        spec = self.spec_of_link(kind)
        return kind if spec is None else spec.name

    def public(self) -> list[dict[str, Any]]:
        """JSON-safe description (the API's `/v1/identifiers` and the UI legend)."""
        return [
            {
                "name": s.name,
                "label": s.label,
                "source": str(s.source),
                "declared": s.declared,
                "graph_label": s.graph_label,
                "links": [
                    {
                        "kind": r.kind,
                        "match": str(r.match),
                        "reason": r.reason,
                        "reason_text": r.reason_text,
                        "colour": r.colour,
                    }
                    for r in s.links
                ],
            }
            for s in self.kinds
        ]


# ---- normalisers of the built-in kinds --------------------------------------------------------


def _email_frame(raw: pl.Series, _region: str) -> pl.DataFrame:
    return nz.normalize_emails(raw).drop("email_raw")


def _email_one(raw: str | None, _region: str) -> dict[str, str] | None:
    found = nz.canonical_email(raw)
    if found is None:
        return None
    return {"email": found.email, "email_local": found.local, "email_domain": found.domain}


def _phone_frame(raw: pl.Series, region: str) -> pl.DataFrame:
    return nz.normalize_phones(raw, region).alias("phone").to_frame()


def _phone_one(raw: str | None, region: str) -> dict[str, str] | None:
    found = nz.canonical_phone(raw, region)
    return None if found is None else {"phone": found}


def _device_frame(raw: pl.Series, _region: str) -> pl.DataFrame:
    return nz.normalize_devices(raw).alias("device_id").to_frame()


def _ip_frame(raw: pl.Series, _region: str) -> pl.DataFrame:
    return nz.normalize_ips(raw).alias("ip").to_frame()


def _upi_frame(raw: pl.Series, _region: str) -> pl.DataFrame:
    return nz.normalize_upis(raw)


def _upi_one(raw: str | None, _region: str) -> dict[str, str] | None:
    found = nz.canonical_upi(raw)
    if found is None:
        return None
    return dict(zip(("upi", "upi_handle", "upi_psp"), found, strict=True))


def _single(column: str, one: Callable[[str | None], str | None]) -> Normaliser:
    """A normaliser whose scalar form is a hand-written twin of the vectorised one."""
    vector = {"device_id": _device_frame, "ip": _ip_frame}[column]

    def scalar(raw: str | None, _region: str) -> dict[str, str] | None:
        found = one(raw)
        return None if found is None else {column: found}

    return Normaliser((column,), vector, scalar)


def _exact(
    kind: str,
    prior: float,
    decay: float,
    reason: str,
    reason_text: str,
    evidence: str,
    colour: str,
    *,
    priority: int,
    min_weight: float = 0.0,
) -> LinkRule:
    return LinkRule(
        kind,
        Linkage.EXACT,
        prior,
        decay,
        reason,
        reason_text,
        min_weight,
        priority,
        evidence,
        colour,
    )


EMAIL = IdentifierSpec(
    name="email",
    label="email address",
    source=Source.USERS,
    column="email",
    normaliser=Normaliser(("email", "email_local", "email_domain"), _email_frame, _email_one),
    keep_raw=True,
    links=(
        _exact(
            "email", 1.0, 0.0, "EMAIL_VARIANT", "shares one email inbox with other accounts "
            "(dots, +tags or a mistyped domain folded)", "same canonical email, held by "
            "{support} users", "#5f3dc4", priority=40,
        ),
        LinkRule(
            "email_similar", Linkage.LOOKALIKE, 0.85, 0.5, "LOOKALIKE_EMAIL",
            "has an email that looks like other accounts' (a counter, one edit apart or its name "
            "parts reordered)", 0.1, 50,
            "look-alike email local parts ({similarity}% similar, {support} look-alike "
            "accounts)", "#9775fa",
        ),
    ),
    mask=Mask.EMAIL,
    graph_label="Email",
    holds_type="HAS_EMAIL",
    handle_columns=("email_local", "email_domain"),
)  # fmt: skip
PHONE = IdentifierSpec(
    name="phone",
    label="phone number",
    source=Source.USERS,
    column="phone",
    normaliser=Normaliser(("phone",), _phone_frame, _phone_one),
    keep_raw=True,
    links=(
        _exact(
            "phone", 1.0, 0.0, "SHARED_PHONE", "shares a phone number with other accounts",
            "same phone number, held by {support} users", "#1971c2", priority=60,
        ),
        LinkRule(
            "phone_similar", Linkage.SEQUENCE, 0.7, 0.5, "SEQUENTIAL_PHONE",
            "has a phone number a few digits from other accounts' (SIMs bought in a batch)", 0.1,
            70, "near-sequential phone numbers ({similarity}% close, {support} numbers in range)",
            "#74c0fc",
        ),
    ),
    mask=Mask.PHONE,
    graph_label="Phone",
    holds_type="HAS_PHONE",
)  # fmt: skip
DEVICE = IdentifierSpec(
    name="device",
    label="device",
    source=Source.SIGHTINGS,
    column="device_id",
    normaliser=_single("device_id", nz.canonical_device),
    keep_raw=False,
    links=(
        _exact(
            "device", 0.9, 0.5, "SHARED_DEVICE", "signs in from a device other accounts use",
            "same device, used by {support} users", "#d9480f", priority=30, min_weight=0.2,
        ),
    ),
    mask=Mask.NONE,
    graph_label="Device",
    holds_type="USES_DEVICE",
)  # fmt: skip
IP = IdentifierSpec(
    name="ip",
    label="IP address",
    source=Source.SIGHTINGS,
    column="ip",
    normaliser=_single("ip", nz.canonical_ip),
    keep_raw=False,
    links=(
        _exact(
            "ip", 0.35, 0.5, "SHARED_IP", "signs in from an IP address few other accounts use",
            "same IP address, used by {support} users", "#868e96", priority=100, min_weight=0.1,
        ),
    ),
    mask=Mask.NONE,
    graph_label="IP",
    holds_type="USES_IP",
)  # fmt: skip
UPI = IdentifierSpec(
    name="upi",
    label="UPI id",
    source=Source.USERS,
    column="upi",
    normaliser=Normaliser(("upi", "upi_handle", "upi_psp"), _upi_frame, _upi_one),
    keep_raw=True,
    links=(
        _exact(
            "upi", 1.0, 0.0, "SHARED_UPI", "pays or is paid through a UPI id other accounts use",
            "same UPI id, held by {support} users", "#2b8a3e", priority=62,
        ),
        LinkRule(
            "upi_similar", Linkage.LOOKALIKE, 0.85, 0.5, "LOOKALIKE_UPI",
            "has a UPI handle that looks like other accounts' (a counter, one edit apart or its "
            "name parts reordered)", 0.1,
            64, "look-alike UPI handles ({similarity}% similar, {support} look-alike "
            "accounts)", "#8ce99a",
        ),
    ),
    mask=Mask.EMAIL,
    graph_label="UPI",
    holds_type="HAS_UPI",
    handle_columns=("upi_handle", "upi_psp"),
)  # fmt: skip

BUILTIN_KINDS: tuple[IdentifierSpec, ...] = (EMAIL, PHONE, DEVICE, IP, UPI)
# Built-in kinds some stages mean by name (the dedicated-IP merge, the shared-device ratio).
EMAIL_KIND, PHONE_KIND, DEVICE_KIND, IP_KIND, UPI_KIND = (s.name for s in BUILTIN_KINDS)

# ---- user-declared exact-match kinds -------------------------------------------------------------

DECLARED_PRIORITY = 75  # after the built-in identity reasons, before the ring-shape ones
_DECLARED_COLOURS = ("#e8590c", "#c2255c", "#0c8599", "#5c940d", "#862e9c", "#a61e4d")


def _token_normaliser(name: str, case_sensitive: bool) -> Normaliser:
    def vector(raw: pl.Series, _region: str) -> pl.DataFrame:
        return nz.normalize_tokens(raw, case_sensitive=case_sensitive).alias(name).to_frame()

    def scalar(raw: str | None, _region: str) -> dict[str, str] | None:
        found = nz.canonical_token(raw, case_sensitive=case_sensitive)
        return None if found is None else {name: found}

    return Normaliser((name,), vector, scalar)


def declared_spec(
    name: str,
    *,
    column: str | None = None,
    label: str | None = None,
    prior: float = 1.0,
    decay: float = 0.0,
    reason: str | None = None,
    reason_text: str | None = None,
    mask: Mask = Mask.HASH,
    case_sensitive: bool = False,
    position: int = 0,
) -> IdentifierSpec:
    """An exact-match kind from settings: one value per user, in the users file's `column`.

    Defaults suit a hashed identifier (PAN, bank account, address): one value held by two users
    weighs fully and does not fade with support (`decay` 0), like a shared mailbox; values are
    masked as hashes.
    """
    words = label or name.replace("_", " ")
    code = reason or f"SHARED_{name.upper()}"
    camel = "".join(part.capitalize() for part in name.split("_"))
    return IdentifierSpec(
        name=name,
        label=words,
        source=Source.USERS,
        column=column or name,
        normaliser=_token_normaliser(name, case_sensitive),
        keep_raw=False,
        links=(
            _exact(
                name,
                prior,
                decay,
                code,
                reason_text or f"shares a {words} with other accounts",
                f"same {words}, held by {{support}} users",
                _DECLARED_COLOURS[position % len(_DECLARED_COLOURS)],
                priority=DECLARED_PRIORITY + position,
            ),
        ),
        mask=mask,
        graph_label=camel,
        holds_type=f"HAS_{name.upper()}",
        declared=True,
    )


def registry_for(declared: Sequence[Mapping[str, Any]] = ()) -> IdentifierRegistry:
    """The built-in kinds plus declared ones (each a mapping of `declared_spec`'s arguments, as
    `DeclaredIdentifier.model_dump()` gives). Raises ConfigError naming what is wrong."""
    extra = []
    for i, item in enumerate(declared):
        args = dict(item)
        name = args.pop("name", None)
        if not isinstance(name, str):
            raise ConfigError(f"declared identifier #{i + 1} has no name")
        if name in BUILTIN.names:
            raise ConfigError(f"declared identifier {name!r} is a built-in kind")
        mask = args.pop("mask", Mask.HASH)
        try:
            extra.append(declared_spec(name, mask=Mask(mask), position=i, **args))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"declared identifier {name!r}: {exc}") from exc
    return IdentifierRegistry((*BUILTIN_KINDS, *extra)) if extra else BUILTIN


def registry_from_manifest(manifest: Mapping[str, Any]) -> IdentifierRegistry:
    """The registry a run was built with (runs older than declared kinds: the built-ins)."""
    declared = manifest.get("identifiers", [])
    if not isinstance(declared, list):
        raise ArtifactError("manifest.json: `identifiers` is not a list")
    return registry_for(declared)


BUILTIN = IdentifierRegistry(BUILTIN_KINDS)

__all__ = [
    "BUILTIN",
    "IdentifierRegistry",
    "IdentifierSpec",
    "LinkRule",
    "Linkage",
    "Mask",
    "Normaliser",
    "Source",
    "declared_spec",
    "registry_for",
    "registry_from_manifest",
]
