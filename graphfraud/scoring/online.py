"""Score an account the last batch has not seen, from its identifiers, against a snapshot.

Matching (index lookups only, never a scan; see `scoring.snapshot.IdentifierIndex`):
- `email` / `phone` / `device` / `ip`: snapshot users holding the same canonical value;
- `email_similar`: users in the same email-stem block (`linking.keys.email_stem`) — and in the
  blocks of the stem's one-deletion variants — whose local part has normalised Levenshtein
  similarity ≥ `LinkSettings.email_similarity`; blocks over `max_block` are skipped;
- `phone_similar`: numbers within `LinkSettings.phone_max_gap` found by bisection on the sorted
  numbers (the exact form of the batch's phone blocks, with no block boundary to miss).
A value held by more than `max_share` snapshot users is a hub: reported, never linked.

Weights are the batch's `link_weight(kind, similarity, support)` with support = snapshot holders
of the value (fuzzy: block / window size) + 1 for the new account.

Score (a noisy-or, every term in [0, 1]):
    w_u   = 1 − Π_kinds (1 − w_kind)                     strength of the tie to matched user u
    U     = 1 − Π_u (1 − w_u · score_u)                  risk passed on by matched users
    w_r   = 1 − Π_{u in ring r} (1 − w_u)                tie to ring r; keep max w_r·ring_score_r
    R     = w_r · ring_score_r
    score = 1 − (1 − neutral)(1 − U)(1 − R)
so an account that matches nothing gets the snapshot's neutral score, a strong tie to a risky ring
pulls it towards that ring's score, and weak ties (a shared IP) move it little. The ring is
reported (`ring_id`) only when w_r ≥ `RingSettings.min_weight`, the batch's bar to join a ring.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from graphfraud.config import LinkSettings
from graphfraud.linking.compare import similarity_matrix
from graphfraud.linking.keys import email_stem, phone_number
from graphfraud.linking.weights import link_weight as _link_weight
from graphfraud.schema import LinkKind
from graphfraud.scoring.snapshot import SCORE_DECIMALS, IdentifierIndex, ScoreSnapshot

MAX_DEVICES = 20  # identifiers per kind in one request (more is abuse, not an account)
MAX_IPS = 20
MAX_FUZZY_CANDIDATES = 200  # best-scoring look-alike emails kept per request
_CLIP = 0.999

REASON_BY_KIND = {
    LinkKind.EMAIL: "EMAIL_VARIANT",
    LinkKind.EMAIL_SIMILAR: "LOOKALIKE_EMAIL",
    LinkKind.PHONE: "SHARED_PHONE",
    LinkKind.PHONE_SIMILAR: "SEQUENTIAL_PHONE",
    LinkKind.DEVICE: "SHARED_DEVICE",
    LinkKind.IP: "SHARED_IP",
}


@dataclass(frozen=True)
class NewIdentity:
    """Canonical identifiers of the account to score (see `canonical_identity`)."""

    email: str | None = None
    email_local: str | None = None
    email_domain: str | None = None
    phone: str | None = None  # E.164
    devices: tuple[str, ...] = ()
    ips: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.email or self.phone or self.devices or self.ips)


@dataclass(frozen=True)
class Match:
    """One link between the new account and a snapshot user (the evidence returned)."""

    kind: str
    row: int
    user_id: str
    value: str  # the new account's canonical value
    matched_value: str  # the snapshot user's value (== value for exact kinds)
    similarity: float
    support: int
    weight: float


@dataclass(frozen=True)
class Hub:
    """An identifier shared by too many snapshot users to link on (a café IP, an emulator id)."""

    kind: str
    value: str
    support: int


@dataclass(frozen=True)
class OnlineScore:
    score: float
    ring_id: str | None
    ring_score: float | None
    ring_strength: float
    reasons: tuple[str, ...]
    matches: tuple[Match, ...]
    hubs: tuple[Hub, ...] = field(default_factory=tuple)
    model_version: str = ""
    scored_at: str = ""
    snapshot: str = ""


def canonical_identity(
    *,
    email: str | None,
    phone: str | None,
    device_ids: Sequence[str] = (),
    ips: Sequence[str] = (),
    region: str = "IN",
) -> tuple[NewIdentity, list[str]]:
    """Normalise raw identifiers with the batch's rules: (identity, fields that did not parse)."""
    from graphfraud.ingest.normalize import (
        canonical_device,
        canonical_email,
        canonical_ip,
        canonical_phone,
    )

    rejected: list[str] = []
    canon_email = canonical_email(email) if email else None
    if email and canon_email is None:
        rejected.append("email")
    canon_phone = canonical_phone(phone, region) if phone else None
    if phone and canon_phone is None:
        rejected.append("phone")
    devices = _unique(canonical_device(d) for d in device_ids[:MAX_DEVICES])
    if len(devices) < len([d for d in device_ids[:MAX_DEVICES] if d and d.strip()]):
        rejected.append("device_ids")
    canon_ips = _unique(canonical_ip(i) for i in ips[:MAX_IPS])
    if len(canon_ips) < len({i for i in ips[:MAX_IPS] if i}):
        rejected.append("ips")
    identity = NewIdentity(
        email=canon_email.email if canon_email else None,
        email_local=canon_email.local if canon_email else None,
        email_domain=canon_email.domain if canon_email else None,
        phone=canon_phone,
        devices=devices,
        ips=canon_ips,
    )
    return identity, rejected


def link_weight(kind: str, similarity: float, support: int) -> float:
    """The batch's weight, rounded so evidence reads 0.36, not 0.36000000000000004."""
    return round(_link_weight(kind, similarity, support), SCORE_DECIMALS)


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _exact(
    index: IdentifierIndex,
    snapshot: ScoreSnapshot,
    kind: str,
    values: Sequence[str],
    link: LinkSettings,
    hubs: list[Hub],
) -> list[Match]:
    table = {LinkKind.EMAIL: index.email, LinkKind.DEVICE: index.device, LinkKind.IP: index.ip}[
        LinkKind(kind)
    ]
    out: list[Match] = []
    for value, (lo, hi) in zip(values, table.bounds(list(values)), strict=True):
        held = hi - lo
        if held == 0:
            continue
        if held > link.max_share:
            hubs.append(Hub(str(kind), value, held))
            continue
        weight = link_weight(kind, 1.0, held + 1)
        for row in table.rows[lo:hi].tolist():
            out.append(
                Match(str(kind), row, snapshot.user_ids[row], value, value, 1.0, held + 1, weight)
            )
    return out


def _similar_emails(
    index: IdentifierIndex, snapshot: ScoreSnapshot, identity: NewIdentity, link: LinkSettings
) -> list[Match]:
    local, domain, email = identity.email_local, identity.email_domain, identity.email
    stem = email_stem(local, domain)
    if stem is None or local is None or email is None:
        return []
    stem_local = stem.rsplit("@", 1)[0]
    keys = [stem]
    if len(stem_local) >= 4:  # the batch's deletion-neighbourhood pass (one edit in the letters)
        keys += [f"{stem_local[:i]}{stem_local[i + 1 :]}@{domain}" for i in range(len(stem_local))]
    rows_parts = []
    block_size = 0
    for lo, hi in index.stem.bounds(list(dict.fromkeys(keys))):
        size = hi - lo
        if 0 < size <= link.max_block:
            rows_parts.append(index.stem.rows[lo:hi])
            block_size = max(block_size, size)
    if not rows_parts:
        return []
    rows = np.unique(np.concatenate(rows_parts))
    emails = index.email_of_row.gather(rows).to_list()
    locals_ = index.local_of_row.gather(rows).to_list()
    keep = [i for i, e in enumerate(emails) if e is not None and e != email and locals_[i]]
    if not keep:
        return []
    sims = similarity_matrix([local], [locals_[i] for i in keep], workers=1)[0]
    order = np.argsort(-sims, kind="stable")[:MAX_FUZZY_CANDIDATES]
    support = block_size + 1
    out = []
    for j in order.tolist():
        sim = round(float(sims[j]), 4)
        if sim < link.email_similarity:
            break
        i = keep[j]
        row = int(rows[i])
        out.append(
            Match(
                str(LinkKind.EMAIL_SIMILAR),
                row,
                snapshot.user_ids[row],
                email,
                str(emails[i]),
                sim,
                support,
                link_weight(LinkKind.EMAIL_SIMILAR, sim, support),
            )
        )
    return out


def _phones(
    index: IdentifierIndex,
    snapshot: ScoreSnapshot,
    identity: NewIdentity,
    link: LinkSettings,
    hubs: list[Hub],
) -> list[Match]:
    number = phone_number(identity.phone)
    if number is None or identity.phone is None:
        return []
    numbers, rows = index.phone.window(number, link.phone_max_gap)
    out: list[Match] = []
    exact = numbers == number
    held = int(exact.sum())
    if held > link.max_share:
        hubs.append(Hub(str(LinkKind.PHONE), identity.phone, held))
    elif held:
        weight = link_weight(LinkKind.PHONE, 1.0, held + 1)
        for row in rows[exact].tolist():
            out.append(
                Match(
                    str(LinkKind.PHONE),
                    row,
                    snapshot.user_ids[row],
                    identity.phone,
                    identity.phone,
                    1.0,
                    held + 1,
                    weight,
                )
            )
    near = ~exact
    window = int(near.sum())
    if 0 < window <= link.max_block:
        support = window + 1
        phones = index.phone_of_row.gather(rows[near]).to_list()
        for row, num, other in zip(
            rows[near].tolist(), numbers[near].tolist(), phones, strict=True
        ):
            gap = abs(int(num) - number)
            sim = round(1.0 - 0.5 * (gap - 1) / max(link.phone_max_gap - 1, 1), 4)
            out.append(
                Match(
                    str(LinkKind.PHONE_SIMILAR),
                    row,
                    snapshot.user_ids[row],
                    identity.phone,
                    str(other or f"+{num}"),
                    sim,
                    support,
                    link_weight(LinkKind.PHONE_SIMILAR, sim, support),
                )
            )
    return out


def find_matches(
    snapshot: ScoreSnapshot, identity: NewIdentity, link: LinkSettings
) -> tuple[list[Match], list[Hub]]:
    """Every link the new account would get against the snapshot's users."""
    index = snapshot.identifiers
    if index is None:
        return [], []
    hubs: list[Hub] = []
    matches: list[Match] = []
    if identity.email:
        matches += _exact(index, snapshot, LinkKind.EMAIL, [identity.email], link, hubs)
        matches += _similar_emails(index, snapshot, identity, link)
    matches += _phones(index, snapshot, identity, link, hubs)
    if identity.devices:
        matches += _exact(index, snapshot, LinkKind.DEVICE, identity.devices, link, hubs)
    if identity.ips:
        matches += _exact(index, snapshot, LinkKind.IP, identity.ips, link, hubs)
    return matches, hubs


def combine(
    snapshot: ScoreSnapshot,
    matches: Sequence[Match],
    hubs: Sequence[Hub] = (),
    *,
    ring_min_weight: float = 0.25,
) -> OnlineScore:
    """Turn matches into a score with the noisy-or in the module docstring."""
    info = snapshot.info
    miss_by_row: dict[int, float] = {}
    for m in matches:
        miss_by_row[m.row] = miss_by_row.get(m.row, 1.0) * (1.0 - min(m.weight, _CLIP))
    user_miss = 1.0
    ring_miss: dict[int, float] = {}
    for row, miss in miss_by_row.items():
        tie = 1.0 - miss
        user_miss *= 1.0 - tie * float(snapshot.score[row])
        code = int(snapshot.ring_code[row])
        if code >= 0:
            ring_miss[code] = ring_miss.get(code, 1.0) * miss
    best_code, best_value, best_strength = -1, 0.0, 0.0
    for code, miss in ring_miss.items():
        strength = 1.0 - miss
        value = strength * (snapshot.ring_score_of(code) or 0.0)
        if value > best_value or (best_code < 0 and strength > best_strength):
            best_code, best_value, best_strength = code, value, strength
    score = 1.0 - (1.0 - info.neutral_score) * user_miss * (1.0 - best_value)
    reasons = ["NEW_USER"]
    reasons += list(
        dict.fromkeys(REASON_BY_KIND[LinkKind(m.kind)] for m in _strongest_first(matches))
    )
    ring_id: str | None = None
    ring_score: float | None = None
    if best_code >= 0 and best_strength >= ring_min_weight:
        ring_id = snapshot.ring_ids[best_code]
        ring_score = snapshot.ring_score_of(best_code)
        reasons.insert(1, "NEAR_RING")
    if hubs:
        reasons.append("HUB_IDENTIFIER")
    return OnlineScore(
        score=round(min(max(score, 0.0), 1.0), SCORE_DECIMALS),
        ring_id=ring_id,
        ring_score=ring_score,
        ring_strength=round(best_strength, SCORE_DECIMALS),
        reasons=tuple(reasons),
        matches=tuple(_strongest_first(matches)),
        hubs=tuple(hubs),
        model_version=info.model_version,
        scored_at=info.scored_at,
        snapshot=info.run_id,
    )


def _strongest_first(matches: Sequence[Match]) -> list[Match]:
    return sorted(matches, key=lambda m: (-m.weight, m.kind, m.user_id))


def score_new_user(
    snapshot: ScoreSnapshot,
    identity: NewIdentity,
    link: LinkSettings,
    *,
    ring_min_weight: float = 0.25,
) -> OnlineScore:
    """Link a new account to the snapshot's users and rings and score it (pure, no I/O)."""
    matches, hubs = find_matches(snapshot, identity, link)
    return combine(snapshot, matches, hubs, ring_min_weight=ring_min_weight)
