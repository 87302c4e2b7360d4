"""Today's accounts: how a scored account is found in the intraday store and linked to the
accounts scored since the snapshot, by the batch's rules.

An account is stored under index entries (`index_of`): its exact values per kind, its look-alike
handles' stem blocks and name across providers, its phone number and its handle's suffix number
per name. One lookup (`intraday_query`) asks for the entries a new account would share; its
answer becomes exact and sequential links (`intraday_links`) and the look-alike candidates and
counts the snapshot matching scores together with the snapshot's (`scoring.online.Elsewhere`),
so supports and hub bars count both populations, as the batch will tonight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from graphfraud.config import LinkSettings
from graphfraud.identifiers import (
    IdentifierRegistry,
    IdentifierSpec,
    Linkage,
)
from graphfraud.linking.compare import gap_similarity
from graphfraud.linking.keys import (
    handle_stem,
    local_stem,
    name_key,
    phone_number,
    stem_deletion_keys,
)
from graphfraud.linking.lookalike import SUFFIX_READ_SPAN, comparable, suffix_number
from graphfraud.linking.weights import combine_weights
from graphfraud.scoring.intraday.base import (
    IntradayMatches,
    IntradayQuery,
)
from graphfraud.scoring.online import (
    Elsewhere,
    Handle,
    Hub,
    Match,
    NewIdentity,
    link_weight,
)
from graphfraud.scoring.store import ScoreStore


@dataclass(frozen=True)
class Link:
    """One link of the scored account to a snapshot user or (`intraday`) to one of today's
    accounts."""

    kind: str
    user_id: str
    intraday: bool
    value: str
    matched_value: str
    similarity: float
    support: int
    weight: float


@dataclass(frozen=True)
class AccountRequest:
    user_id: str
    identity: NewIdentity
    raw: Mapping[str, Any]  # kind → raw value(s) as typed (the email's rewrite feature)
    created_at: datetime
    record: bool = True


def handle_of(spec: IdentifierSpec, identity: NewIdentity) -> tuple[str, str, str | None] | None:
    """(handle, provider, stem) of a look-alike kind's value, or None."""
    if spec.handle_columns is None:
        return None
    parts = identity.parts.get(spec.name, {})
    local, domain = (parts.get(c) for c in spec.handle_columns)
    if local is None or domain is None:
        return None
    return local, domain, handle_stem(local, domain)


def stem_space(kind: str) -> str:
    """Store block space: a look-alike kind's local stems (accounts per name across providers)."""
    return f"{kind}.ls"


def name_space(kind: str) -> str:
    """Store block space: a look-alike kind's name keys (`keys.name_key`, both orders of a name)
    of its comparable handles."""
    return f"{kind}.nk"


def suffix_space(kind: str, stem: str) -> str:
    """Store number space: one local stem's handle suffix numbers (names hold no ':' and at most
    64 characters, so the stem is digested)."""
    return f"{kind}.n.{hashlib.sha256(stem.encode('utf-8')).hexdigest()[:16]}"


def index_of(
    identity: NewIdentity, registry: IdentifierRegistry
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, tuple[int, ...]]]:
    """(exact values, blocks, numbers) the account is found by: its values; per look-alike kind
    its stem blocks, local stem and name key; per sequence kind its number, per look-alike kind
    its handle's suffix number on its local stem."""
    values: dict[str, tuple[str, ...]] = {}
    blocks: dict[str, tuple[str, ...]] = {}
    numbers: dict[str, tuple[int, ...]] = {}
    for spec in registry.kinds:
        given = identity.values.get(spec.name)
        if not given:
            continue
        values[spec.name] = given
        if spec.rule(Linkage.LOOKALIKE) is not None and (h := handle_of(spec, identity)):
            local, _, stem = h
            if stem is not None:
                blocks[spec.name] = tuple(stem_deletion_keys(stem))
            name = local_stem(local)
            if name:
                blocks[stem_space(spec.name)] = (name,)
                if (n := suffix_number(local)) is not None:
                    numbers[suffix_space(spec.name, name)] = (n,)
            key = name_key(local) if comparable(local) else None
            if key:
                blocks[name_space(spec.name)] = (key,)
        if spec.rule(Linkage.SEQUENCE) is not None:
            number = phone_number(given[0])
            if number is not None:
                numbers[spec.name] = (number,)
    return values, blocks, numbers


def intraday_query(
    request: AccountRequest, registry: IdentifierRegistry, link: LinkSettings
) -> IntradayQuery:
    values, blocks, numbers = index_of(request.identity, registry)
    gap = link.phone_max_gap
    windows = {
        k: (n[0] - (gap if k in registry.names else SUFFIX_READ_SPAN),
            n[0] + (gap if k in registry.names else SUFFIX_READ_SPAN))
        for k, n in numbers.items()
    }  # fmt: skip
    return IntradayQuery(
        values=values,
        blocks=blocks,
        windows=windows,
        exclude=request.user_id or None,
        limit=link.max_share,
    )


def intraday_links(
    found: IntradayMatches,
    request: AccountRequest,
    snapshot: ScoreStore,
    link: LinkSettings,
) -> tuple[list[Link], list[Hub], Elsewhere]:
    """Exact and sequence links to today's accounts, their hubs, and what today's accounts add
    to the snapshot matching (`online.Elsewhere`: holders, look-alike candidates, stem counts)."""
    registry = snapshot.registry
    index = snapshot.identifiers
    identity = request.identity
    links: list[Link] = []
    hubs: list[Hub] = []
    holders: dict[str, dict[str, int]] = {}
    handles: dict[str, list[Handle]] = {}
    stem_numbers: dict[str, np.ndarray] = {}
    stem_counts: dict[str, int] = {}
    name_counts: dict[str, int] = {}
    for spec in registry.kinds:
        mine = identity.values.get(spec.name)
        if not mine:
            continue
        held_today = found.values.get(spec.name, {})
        holders[spec.name] = {v: h.count for v, h in held_today.items()}
        table = index.exact.get(spec.name) if index is not None else None
        in_snapshot = (
            dict(zip(mine, (hi - lo for lo, hi in table.bounds(list(mine))), strict=True))
            if table is not None
            else {}
        )
        for value, held in held_today.items():
            total = held.count + in_snapshot.get(value, 0)
            if held.hub or total > link.max_share:
                if in_snapshot.get(value, 0) == 0:  # else the snapshot pass reports it
                    hubs.append(Hub(spec.name, value, total))
                continue
            weight = link_weight(spec.name, 1.0, total + 1, registry)
            links += [
                Link(spec.name, uid, True, value, value, 1.0, total + 1, weight)
                for uid in held.user_ids
            ]
        for rule in spec.links:
            if rule.match == Linkage.LOOKALIKE:
                _today_handles(
                    found, request, spec, handles, stem_numbers, stem_counts, name_counts
                )
            elif rule.match == Linkage.SEQUENCE:
                links += _sequence_today(found, request, snapshot, spec, rule.kind, link)
    elsewhere = Elsewhere(holders, handles, stem_numbers, stem_counts, name_counts)
    return links, hubs, elsewhere


def _today_handles(
    found: IntradayMatches,
    request: AccountRequest,
    spec: IdentifierSpec,
    handles: dict[str, list[Handle]],
    stem_numbers: dict[str, np.ndarray],
    stem_counts: dict[str, int],
    name_counts: dict[str, int],
) -> None:
    """Today's look-alike candidates of one kind: accounts in the stem blocks, numbered on the
    local stem or on the name key, with that stem's numbers and crowd and the name key's crowd."""
    mine = handle_of(spec, request.identity)
    if mine is None:
        return
    name = local_stem(mine[0])
    crowd = found.blocks.get(stem_space(spec.name), {}).get(name or "")
    ids = dict.fromkeys(
        u
        for key, held in found.blocks.get(spec.name, {}).items()
        if not held.hub
        for u in held.user_ids
    )
    window = found.windows.get(suffix_space(spec.name, name), ()) if name else ()
    ids |= dict.fromkeys(u for _, u in window)
    named = found.blocks.get(name_space(spec.name), {}).get(name_key(mine[0]) or "")
    if named is not None:
        ids |= dict.fromkeys(named.user_ids)  # none when a hub: its count only
    stem_numbers[spec.name] = np.array([n for n, _ in window], dtype=np.int64)
    stem_counts[spec.name] = crowd.count if crowd is not None else 0
    name_counts[spec.name] = named.count if named is not None else 0
    out = []
    for uid in ids:
        account = found.accounts.get(uid)
        held = account.payload.get("h", {}).get(spec.name) if account is not None else None
        value = (account.identifiers.get(spec.name) or ("",))[0] if account is not None else ""
        if held and value:
            other_stem = local_stem(held[0])
            count = stem_counts[spec.name] + 1 if other_stem == name else 1
            out.append(Handle(uid, value, held[0], held[1], count, intraday=True))
    handles[spec.name] = out


def _sequence_today(
    found: IntradayMatches,
    request: AccountRequest,
    snapshot: ScoreStore,
    spec: IdentifierSpec,
    kind: str,
    link: LinkSettings,
) -> list[Link]:
    value = request.identity.first(spec.name)
    number = phone_number(value)
    window = [(n, u) for n, u in found.windows.get(spec.name, ()) if n != number]
    if number is None or value is None or not window:
        return []
    index = snapshot.identifiers
    in_snapshot = 0
    if index is not None and spec.name in index.numbers:
        numbers, _ = index.numbers[spec.name].window(number, link.phone_max_gap)
        in_snapshot = int((numbers != number).sum())
    size = len(window) + in_snapshot
    if size > link.max_block:
        return []
    out = []
    for num, uid in window:
        sim = round(gap_similarity(float(abs(num - number)), link.phone_max_gap), 4)
        weight = link_weight(kind, sim, size + 1, snapshot.registry)
        out.append(Link(kind, uid, True, value, f"+{num}", sim, size + 1, weight))
    return out


def snapshot_links(matches: Sequence[Match]) -> list[Link]:
    """`online.Match`es as links (`intraday`: a look-alike of one of today's accounts)."""
    return [
        Link(m.kind, m.user_id, m.intraday, m.value, m.matched_value, m.similarity, m.support,
             m.weight)
        for m in matches
    ]  # fmt: skip


def strengths(links: Sequence[Link]) -> dict[str, float]:
    """Pair strength per linked account: the batch's noisy-or over its links."""
    weights: dict[str, list[float]] = {}
    for lk in links:
        weights.setdefault(lk.user_id, []).append(lk.weight)
    return {uid: combine_weights(ws) for uid, ws in weights.items()}


def by_pair_and_kind(links: Iterable[Link]) -> dict[str, dict[str, float]]:
    """Linked account → link kind → the strongest weight: one link per pair and kind, as the
    batch keeps them."""
    out: dict[str, dict[str, float]] = {}
    for lk in links:
        kinds = out.setdefault(lk.user_id, {})
        kinds[lk.kind] = max(kinds.get(lk.kind, 0.0), lk.weight)
    return out
