"""Score an account the batch has not seen: against the snapshot *and* today's accounts, with the
batch's own features and model, and catch the rings forming among today's accounts.

One request (`score_account`):
1. **Links.** The account's canonical identifiers are matched against the snapshot
   (`scoring.online.find_matches`) and against the intraday store of accounts scored since the
   snapshot (`IntradayStore.lookup`, one round trip) by the batch's rules: exact values, look-alike
   handles in shared stem blocks (Levenshtein ≥ the batch's bar), phone numbers within the
   batch's gap. Weights are the batch's `link_weight`, support counting both populations.
2. **Ring.** A tie to a snapshot ring (noisy-or over its members, ≥ `RingSettings.min_weight`)
   joins that ring. Otherwise a tie of that strength to one of today's accounts makes the two an
   *emerging ring*: it takes the oldest emerging ring id among the strongly tied accounts (merging
   the others into it) or starts one, and its features are the batch's `ring_features` over its
   members and their links.
3. **Model.** The account's feature row is the batch's `user_features` over its one-account
   frames (population counts from the snapshot, `model.features.Population`); its model inputs
   are `model.ego.ego_row` over its neighbours (snapshot users' state from the batch, today's
   accounts' state from their record); the run's model scores it (`scoring.online_model`). The
   score is the batch's: the model's, blended with the ring's score (`RING_BLEND`), so it may
   fall below the neutral score as well as rise above it.
4. **Record.** The account is stored with its index entries and what its later neighbours need
   (its state, model score, ring, links to earlier accounts); accounts an emerging ring took in
   are stored again with its id. `record=False` is a what-if: nothing is written.

Without an online model (a run scored by the prior, a model with no GBM) the link evidence
scores it (`scoring.online.combine`, now over both populations); without the intraday store
(server down) the snapshot alone is matched and nothing is recorded. Either is said in
`AccountScore.degraded`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import polars as pl

from graphfraud.config import LinkSettings, RingSettings
from graphfraud.errors import IntradayUnavailable
from graphfraud.identifiers import (
    EMAIL_KIND,
    IdentifierRegistry,
    IdentifierSpec,
    Linkage,
    Source,
)
from graphfraud.linking.compare import gap_similarity
from graphfraud.linking.keys import handle_stem, local_stem, phone_number, stem_deletion_keys
from graphfraud.linking.lookalike import SUFFIX_READ_SPAN, suffix_number
from graphfraud.model.ego import Ego, Neighbourhood, one_hop
from graphfraud.model.features import RING_COLUMNS, OneAccount, account_features
from graphfraud.rings.features import ring_features
from graphfraud.scoring.intraday.base import (
    IntradayAccount,
    IntradayMatches,
    IntradayQuery,
    IntradayStore,
)
from graphfraud.scoring.online import (
    Elsewhere,
    Handle,
    Hub,
    Match,
    NewIdentity,
    combine,
    find_matches,
    link_weight,
)
from graphfraud.scoring.online_model import OnlineModel
from graphfraud.scoring.scores import RING_BLEND, reasons_of, ring_scores
from graphfraud.scoring.snapshot import SCORE_DECIMALS, ScoreSnapshot

EMERGING_KIND = "_emerging"  # store index: emerging ring id → its members (no registry kind)
EMERGING_PREFIX = "em-"
_CLIP = 0.999
MAX_RING_READ = 200  # members an emerging ring is read with (a bigger one is a hub, not a ring)


@dataclass(frozen=True)
class Link:
    """One link of the scored account to a snapshot user (`row` ≥ 0) or to one of today's
    accounts (`row` = -1)."""

    kind: str
    user_id: str
    row: int
    value: str
    matched_value: str
    similarity: float
    support: int
    weight: float

    @property
    def intraday(self) -> bool:
        return self.row < 0


@dataclass(frozen=True)
class AccountScore:
    """The verdict on one new account, and what it rests on."""

    score: float
    model_score: float | None  # the model's own P(fraud), before the ring blend
    ring_id: str | None  # a snapshot ring it joined, or its emerging ring
    ring_score: float | None
    ring_strength: float
    emerging: bool  # ring_id names an emerging ring
    ring_size: int
    reasons: tuple[str, ...]
    links: tuple[Link, ...]
    hubs: tuple[Hub, ...]
    model_version: str
    model_part: str | None  # "gbm" when the model scored, None when link evidence did
    snapshot: str
    scored_at: str
    recorded: bool
    degraded: tuple[str, ...] = field(default_factory=tuple)  # "intraday", "model"


@dataclass(frozen=True)
class AccountRequest:
    user_id: str
    identity: NewIdentity
    raw: Mapping[str, Any]  # kind → raw value(s) as typed (the email's rewrite feature)
    created_at: datetime
    record: bool = True


# ---- the account in the store -------------------------------------------------------------------


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


def suffix_space(kind: str, stem: str) -> str:
    """Store number space: one local stem's handle suffix numbers (names hold no ':' and at most
    64 characters, so the stem is digested)."""
    return f"{kind}.n.{hashlib.sha256(stem.encode('utf-8')).hexdigest()[:16]}"


def index_of(
    identity: NewIdentity, registry: IdentifierRegistry
) -> tuple[dict[str, tuple[str, ...]], dict[str, tuple[str, ...]], dict[str, tuple[int, ...]]]:
    """(exact values, blocks, numbers) the account is found by: its values; per look-alike kind
    its stem blocks and local stem; per sequence kind its number, per look-alike kind its
    handle's suffix number on its local stem."""
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


# ---- links to today's accounts ------------------------------------------------------------------


def intraday_links(
    found: IntradayMatches,
    request: AccountRequest,
    snapshot: ScoreSnapshot,
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
                Link(spec.name, uid, -1, value, value, 1.0, total + 1, weight)
                for uid in held.user_ids
            ]
        for rule in spec.links:
            if rule.match == Linkage.LOOKALIKE:
                _today_handles(found, request, spec, handles, stem_numbers, stem_counts)
            elif rule.match == Linkage.SEQUENCE:
                links += _sequence_today(found, request, snapshot, spec, rule.kind, link)
    elsewhere = Elsewhere(holders, handles, stem_numbers, stem_counts)
    return links, hubs, elsewhere


def _today_handles(
    found: IntradayMatches,
    request: AccountRequest,
    spec: IdentifierSpec,
    handles: dict[str, list[Handle]],
    stem_numbers: dict[str, np.ndarray],
    stem_counts: dict[str, int],
) -> None:
    """Today's look-alike candidates of one kind: accounts in the stem blocks or numbered on the
    local stem, with that stem's numbers and crowd."""
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
    stem_numbers[spec.name] = np.array([n for n, _ in window], dtype=np.int64)
    stem_counts[spec.name] = crowd.count if crowd is not None else 0
    out = []
    for uid in ids:
        account = found.accounts.get(uid)
        held = account.payload.get("h", {}).get(spec.name) if account is not None else None
        value = (account.identifiers.get(spec.name) or ("",))[0] if account is not None else ""
        if held and value:
            other_stem = local_stem(held[0])
            count = stem_counts[spec.name] + 1 if other_stem == name else 1
            out.append(Handle(uid, -1, value, held[0], held[1], count))
    handles[spec.name] = out


def _sequence_today(
    found: IntradayMatches,
    request: AccountRequest,
    snapshot: ScoreSnapshot,
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
        out.append(Link(kind, uid, -1, value, f"+{num}", sim, size + 1, weight))
    return out


def _snapshot_links(matches: Sequence[Match]) -> list[Link]:
    """`online.Match`es as links (row -1: a look-alike of one of today's accounts)."""
    return [
        Link(m.kind, m.user_id, m.row, m.value, m.matched_value, m.similarity, m.support, m.weight)
        for m in matches
    ]


def _strengths(links: Sequence[Link]) -> dict[str, float]:
    """Pair strength per linked account: the batch's noisy-or over its links."""
    miss: dict[str, float] = {}
    for lk in links:
        miss[lk.user_id] = miss.get(lk.user_id, 1.0) * (1.0 - min(lk.weight, _CLIP))
    return {uid: 1.0 - m for uid, m in miss.items()}


# ---- rings --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RingChoice:
    ring_id: str | None
    strength: float
    emerging: bool
    members: tuple[IntradayAccount, ...] = ()  # an emerging ring's other members
    absorb: tuple[IntradayAccount, ...] = ()  # accounts to store again under `ring_id`


def emerging_ring_id(first_member: str) -> str:
    """A stable id for the emerging ring started by `first_member` (a replay gets the same)."""
    return EMERGING_PREFIX + hashlib.sha256(first_member.encode("utf-8")).hexdigest()[:12]


def choose_ring(
    store: IntradayStore | None,
    snapshot: ScoreSnapshot,
    links: Sequence[Link],
    found: IntradayMatches | None,
    rings: RingSettings,
    request: AccountRequest,
) -> RingChoice:
    """The ring the account joins, by the batch's objective: Leiden's constant Potts model gains
    Σ_j s_ij − γ·|ring| from joining a ring, over its pairs strong enough to join a ring at all
    (s ≥ `min_weight`), γ the batch's `resolution`. Candidates: the snapshot rings of its
    snapshot neighbours, today's emerging rings, and a new emerging ring with its strong
    neighbours of today in no emerging ring (gain Σ (s_ij − γ)). The best positive gain wins;
    none, no ring. Many weak ties never add up to a ring (a café's IP)."""
    accounts = found.accounts if found is not None else {}
    gamma = rings.resolution
    strong = {u: s for u, s in _strengths(links).items() if s >= rings.min_weight}
    if not strong:
        return RingChoice(None, 0.0, emerging=False)
    tie: dict[tuple[bool, str], float] = {}  # (emerging, ring id) → Σ strengths into it
    miss: dict[tuple[bool, str], float] = {}
    loose: list[IntradayAccount] = []  # today's strong neighbours in no ring
    for uid, strength in strong.items():
        row = snapshot.row_of(uid)
        key: tuple[bool, str] | None = None
        if row is not None:
            code = int(snapshot.ring_code[row])
            key = (False, snapshot.ring_ids[code]) if code >= 0 else None
        elif uid in accounts:
            # Today's accounts group among themselves: one that joined a snapshot ring is still
            # free to start or join an emerging ring (the night's Leiden decides between them).
            payload = accounts[uid].payload
            if payload.get("er"):
                key = (True, str(payload["er"]))
            else:
                loose.append(accounts[uid])
        if key is not None:
            tie[key] = tie.get(key, 0.0) + strength
            miss[key] = miss.get(key, 1.0) * (1.0 - strength)
    today = _emerging_rings(store, [k[1] for k in tie if k[0]], request)
    gains: dict[tuple[bool, str], float] = {}
    for key, total in tie.items():
        emerging, ring_id = key
        size = today.get(ring_id, (1, ()))[0] if emerging else snapshot.ring_size(ring_id)
        gains[key] = total - gamma * size
    fresh = [a for a in loose if strong[a.user_id] > gamma]
    fresh_gain = sum(strong[a.user_id] - gamma for a in fresh)
    best = max(gains, key=lambda k: (gains[k], not k[0], k[1]), default=None)
    if fresh and (best is None or fresh_gain > gains[best]) and store is not None:
        first = min(
            [(a.created_at, a.user_id) for a in fresh]
            + [(request.created_at.timestamp(), request.user_id)]
        )
        strength = 1.0 - math.prod(1.0 - strong[a.user_id] for a in fresh)
        members = tuple(sorted(fresh, key=lambda a: (a.created_at, a.user_id)))
        return RingChoice(
            emerging_ring_id(first[1]), strength, emerging=True, members=members, absorb=members
        )
    if best is None or gains[best] <= 0:
        return RingChoice(None, 0.0, emerging=False)
    emerging, ring_id = best
    strength = 1.0 - miss[best]
    if not emerging:
        return RingChoice(ring_id, strength, emerging=False)
    return RingChoice(ring_id, strength, emerging=True, members=today.get(ring_id, (0, ()))[1])


def _emerging_rings(
    store: IntradayStore | None, ring_ids: Sequence[str], request: AccountRequest
) -> dict[str, tuple[int, tuple[IntradayAccount, ...]]]:
    """Today's emerging rings among `ring_ids`: size and members, oldest first, in one lookup (a
    ring past MAX_RING_READ is a hub: its size only)."""
    if store is None or not ring_ids:
        return {}
    found = store.lookup(
        IntradayQuery(
            values={EMERGING_KIND: list(ring_ids)},
            exclude=request.user_id or None,
            limit=MAX_RING_READ,
        )
    )
    out = {}
    for ring_id, held in found.values.get(EMERGING_KIND, {}).items():
        members = [found.accounts[u] for u in held.user_ids if u in found.accounts]
        out[ring_id] = (held.count, tuple(sorted(members, key=lambda a: (a.created_at, a.user_id))))
    return out


# ---- features and model -------------------------------------------------------------------------


def _one_account(
    request: AccountRequest,
    snapshot: ScoreSnapshot,
    model: OnlineModel,
    found: IntradayMatches | None,
    today: Mapping[str, Mapping[str, int]],
    links: Sequence[Link],
    ring: dict[str, Any] | None,
) -> OneAccount:
    """The account as the batch's feature functions see it, counts over snapshot + today."""
    registry = snapshot.registry
    identity = request.identity
    values: dict[str, str | None] = {}
    for spec in registry.of_source(Source.USERS):
        parts = identity.parts.get(spec.name, {})
        if spec.keep_raw:
            raw = request.raw.get(spec.name)
            values[spec.raw_column] = raw if isinstance(raw, str) and raw else None
        for column in spec.normaliser.columns:
            values[column] = parts.get(column)
    index = snapshot.identifiers
    # The account itself counts once: already among the snapshot's holders when it is a known
    # user (the batch-vs-online check re-scores those), else on top of them.
    own = 0 if snapshot.row_of(request.user_id) is not None else 1
    support: dict[str, dict[str, int]] = {}
    for kind, mine in identity.values.items():
        table = index.exact.get(kind) if index is not None else None
        held = [hi - lo for lo, hi in table.bounds(list(mine))] if table else [0] * len(mine)
        support[kind] = {
            value: n + today.get(kind, {}).get(value, 0) + own
            for value, n in zip(mine, held, strict=True)
        }
    sighting = {
        s.name: identity.values.get(s.name, ()) for s in registry.of_source(Source.SIGHTINGS)
    }
    best: dict[tuple[str, str], float] = {}
    for lk in links:
        best[(lk.user_id, lk.kind)] = max(best.get((lk.user_id, lk.kind), 0.0), lk.weight)
    stem_n = domain_n = 0
    email = handle_of(registry.spec(EMAIL_KIND), identity) if EMAIL_KIND in registry.names else None
    if email is not None and (stem := email[2]) is not None:
        stem_n = own
        if index is not None and EMAIL_KIND in index.stems:
            ((lo, hi),) = index.stems[EMAIL_KIND].bounds([stem])
            stem_n += hi - lo
        if found is not None and (held_today := found.blocks.get(EMAIL_KIND, {}).get(stem)):
            stem_n += held_today.count
    domain = values.get("email_domain")
    if domain:
        ((lo, hi),) = model.domains.bounds([domain])
        domain_n = hi - lo + own
    return OneAccount(
        values=values,
        sightings=max((len(v) for v in sighting.values()), default=0),
        sighting_values=sighting,
        created_at=request.created_at,
        support=support,
        stem_n=stem_n,
        domain_n=domain_n,
        links=tuple((uid, kind, w) for (uid, kind), w in best.items()),
        ring=ring,
    )


def _emerging_ring_frame(
    request: AccountRequest,
    choice: RingChoice,
    links: Sequence[Link],
    registry: IdentifierRegistry,
) -> pl.DataFrame:
    """The batch's `ring_features` over an emerging ring: its members (with the account) and the
    links among them (each stored once, on the later account of the pair)."""
    assert choice.ring_id is not None
    ids = [request.user_id, *(a.user_id for a in choice.members)]
    inside = set(ids)
    created = [request.created_at] + [
        datetime.fromtimestamp(a.created_at, tz=UTC) for a in choice.members
    ]
    rows: list[tuple[str, str, str, float]] = [
        (request.user_id, lk.user_id, lk.kind, lk.weight)
        for lk in links
        if lk.intraday and lk.user_id in inside
    ]
    for account in choice.members:
        for other, kind, weight in account.payload.get("l", ()):
            if other in inside:
                rows.append((account.user_id, other, kind, float(weight)))
    pairs = [(min(a, b), max(a, b), k, w) for a, b, k, w in rows if a != b]
    ring_links = pl.DataFrame(
        pairs,
        schema={"user_a": pl.String, "user_b": pl.String, "kind": pl.String, "weight": pl.Float32},
        orient="row",
    ).unique(["user_a", "user_b", "kind"], keep="first")
    members = pl.DataFrame({"user_id": ids, "ring_id": [choice.ring_id] * len(ids)})
    users = pl.DataFrame(
        {"user_id": ids, "created_at": created, "label": [None] * len(ids)},
        schema={"user_id": pl.String, "created_at": pl.Datetime("us", "UTC"), "label": pl.Int8},
    )
    return ring_features(members, users, ring_links, registry)


def _neighbourhood(
    model: OnlineModel, links: Sequence[Link], accounts: Mapping[str, IntradayAccount]
) -> tuple[Neighbourhood, float]:
    """The account's neighbours' state (snapshot rows from the batch, today's accounts from
    their record) with per-relation weights, and how many are labelled fraud."""
    relations = model.state.meta.relation_names
    width = model.state.width
    rows: dict[int, dict[int, float]] = {}
    today: dict[str, dict[int, float]] = {}
    for lk in links:
        r = relations.index(lk.kind)
        into = rows.setdefault(lk.row, {}) if lk.row >= 0 else today.setdefault(lk.user_id, {})
        into[r] = max(into.get(r, 0.0), lk.weight)
    parts: list[Neighbourhood] = []
    fraud_near = 0.0
    if rows:
        order = np.array(sorted(rows), dtype=np.int64)
        weights = np.zeros((len(order), len(relations)), dtype=np.float32)
        for i, row in enumerate(order.tolist()):
            for r, w in rows[row].items():
                weights[i, r] = w
        part = Neighbourhood.of_rows(model.state, order, weights)
        fraud_near = float(part.fraud.sum())
        parts.append(part)
    kept = [
        uid for uid in today if accounts.get(uid, _EMPTY).payload.get("fs") == feature_set(model)
    ]
    if kept:
        docs = [accounts[uid].payload for uid in kept]
        weights = np.zeros((len(kept), len(relations)), dtype=np.float32)
        for i, uid in enumerate(kept):
            for r, w in today[uid].items():
                weights[i, r] = w
        scal = np.array([d["s"] for d in docs], dtype=np.float32)
        zeros = np.zeros(len(kept), dtype=np.float32)
        parts.append(
            Neighbourhood(
                x=np.array([d["x"] for d in docs], dtype=np.float32).reshape(len(kept), width),
                m1=np.array([d["m1"] for d in docs], dtype=np.float32).reshape(len(kept), width),
                log_count=scal[:, 0],
                weighted_degree=scal[:, 1],
                known=zeros,
                fraud=zeros,
                w_known=scal[:, 2],
                w_fraud=scal[:, 3],
                weights=weights,
            )
        )
    return Neighbourhood.concat(parts, width, len(relations)), fraud_near


_EMPTY = IntradayAccount(user_id="-", created_at=0.0)


def feature_set(model: OnlineModel) -> str:
    """Names the columns of a stored account's state: an account recorded under a snapshot with
    other features offers no state (its links still count)."""
    return _names_digest(model.state.meta.aggregated)


def _names_digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(names).encode("utf-8")).hexdigest()[:16]


def _round(values: Any) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(values, dtype=np.float64).ravel()]


# ---- one request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorer:
    """What one request needs, fixed per served snapshot (and the shared store)."""

    snapshot: ScoreSnapshot
    model: OnlineModel | None
    store: IntradayStore | None
    link: LinkSettings
    rings: RingSettings


def score_account(scorer: Scorer, request: AccountRequest) -> AccountScore:
    """Link, ring, score and (unless a what-if) record one new account; see the module doc."""
    snapshot, registry, link = scorer.snapshot, scorer.snapshot.registry, scorer.link
    degraded: list[str] = []
    store = scorer.store
    found: IntradayMatches | None = None
    today_links: list[Link] = []
    today_hubs: list[Hub] = []
    elsewhere = Elsewhere()
    if store is not None:
        try:
            found = store.lookup(intraday_query(request, registry, link))
        except IntradayUnavailable:
            store = None
            degraded.append("intraday")
        else:
            today_links, today_hubs, elsewhere = intraday_links(found, request, snapshot, link)
    matches, hubs = find_matches(snapshot, request.identity, link, elsewhere)
    # A known user re-scored would match itself: no link to oneself, as in the batch.
    links = [lk for lk in _snapshot_links(matches) + today_links if lk.user_id != request.user_id]
    hubs = hubs + today_hubs
    try:
        choice = choose_ring(store, snapshot, links, found, scorer.rings, request)
    except IntradayUnavailable:
        store = None
        degraded.append("intraday")
        choice = RingChoice(None, 0.0, emerging=False)
    if scorer.model is None:
        degraded.append("model")
    result = verdict(scorer, request, links, hubs, choice, found, elsewhere.holders)
    recorded = False
    if request.record and store is not None:
        try:
            _record(store, scorer, request, result, links, choice, found)
            recorded = True
        except IntradayUnavailable:
            degraded.append("intraday")
    fields = {k: v for k, v in result.__dict__.items() if k not in ("state", "ring_features")}
    return AccountScore(**fields, recorded=recorded, degraded=tuple(dict.fromkeys(degraded)))


def verdict(
    scorer: Scorer,
    request: AccountRequest,
    links: Sequence[Link],
    hubs: Sequence[Hub],
    choice: RingChoice,
    found: IntradayMatches | None = None,
    today: Mapping[str, Mapping[str, int]] | None = None,
) -> Verdict:
    """Score the account given its links and ring (no I/O): by the run's model when one is
    loaded, else by link evidence. `found`/`today`: the intraday lookup's answer and holder
    counts (None: snapshot only)."""
    if scorer.model is None:
        return _by_link_evidence(scorer, request, links, hubs, choice)
    return _by_model(scorer.model, scorer, request, links, hubs, choice, found, today or {})


@dataclass(frozen=True)
class Verdict:
    score: float
    model_score: float | None
    ring_id: str | None
    ring_score: float | None
    ring_strength: float
    emerging: bool
    ring_size: int
    reasons: tuple[str, ...]
    links: tuple[Link, ...]
    hubs: tuple[Hub, ...]
    model_version: str
    model_part: str | None
    snapshot: str
    scored_at: str
    state: dict[str, Any] = field(default_factory=dict)  # what the record stores for neighbours
    ring_features: dict[str, Any] | None = None  # its emerging ring's, for its members' state


def _by_model(
    model: OnlineModel,
    scorer: Scorer,
    request: AccountRequest,
    links: Sequence[Link],
    hubs: Sequence[Hub],
    choice: RingChoice,
    found: IntradayMatches | None,
    today: Mapping[str, Mapping[str, int]],
) -> Verdict:
    snapshot, registry = scorer.snapshot, scorer.snapshot.registry
    accounts = found.accounts if found is not None else {}
    ring_id = choice.ring_id
    ring_known = ring_fraud = 0.0
    code = snapshot.ring_code_of(ring_id) if ring_id and not choice.emerging else None
    ring: dict[str, Any] | None = None
    if ring_id is not None and choice.emerging:
        ring = _emerging_ring_frame(request, choice, links, registry).row(0, named=True)
    elif ring_id is not None:
        ring = (
            model.ring_features(ring_id).row(0, named=True) if ring_id in model.ring_row else None
        )
        if code is not None:
            ring_known, ring_fraud = float(model.ring_known[code]), float(model.ring_fraud[code])
    latest = model.latest
    if latest is None or latest < request.created_at:
        latest = request.created_at
    feats = account_features(
        _one_account(request, snapshot, model, found, today, links, ring),
        latest=latest,
        max_share=scorer.link.max_share,
        strong=scorer.rings.min_weight,
        registry=registry,
    )
    meta = model.state.meta
    x_row = np.array([feats.get(c, np.nan) for c in meta.feature_names], dtype=np.float32)
    nb, fraud_near = _neighbourhood(model, links, accounts)
    ego = Ego(x_row, ring_known=ring_known, ring_fraud=ring_fraud)
    model_score = model.predict(ego, nb)
    ring_score: float | None = None
    ring_size = 0
    if ring_id is not None and choice.emerging:
        scores = pl.DataFrame(
            {
                "user_id": [request.user_id, *(a.user_id for a in choice.members)],
                "model_score": [model_score]
                + [
                    float(a.payload.get("ms", a.payload.get("sc", 0.0)) or 0.0)
                    for a in choice.members
                ],
            }
        )
        member_frame = scores.select("user_id", pl.lit(ring_id).alias("ring_id"))
        ring_score = float(ring_scores(member_frame, scores)["ring_score"][0])
        ring_size = scores.height
    elif code is not None:
        ring_score = snapshot.ring_score_of(code)
        ring_size = int(ring["size"]) if ring else 0
    score = model_score
    if ring_score is not None:
        score = (1 - RING_BLEND) * model_score + RING_BLEND * ring_score
    codes = reasons_of(
        {**feats, "lbl_ring_fraud": ring_fraud, "lbl_nb_fraud_n": fraud_near}, registry
    )
    reasons = ["NEW_USER"]
    if ring_id is not None:
        reasons.append("EMERGING_RING" if choice.emerging else "NEAR_RING")
    reasons += [c for c in codes if c not in reasons]
    if hubs:
        reasons.append("HUB_IDENTIFIER")
    info = snapshot.info
    state = one_hop(meta, ego, nb)
    return Verdict(
        score=round(min(max(score, 0.0), 1.0), SCORE_DECIMALS),
        model_score=round(model_score, SCORE_DECIMALS),
        ring_id=ring_id,
        ring_score=None if ring_score is None else round(ring_score, SCORE_DECIMALS),
        ring_strength=round(choice.strength, SCORE_DECIMALS),
        emerging=bool(ring_id and choice.emerging),
        ring_size=ring_size,
        reasons=tuple(reasons),
        links=tuple(sorted(links, key=lambda lk: (-lk.weight, lk.kind, lk.user_id))),
        hubs=tuple(hubs),
        model_version=model.version,
        model_part=model.part,
        snapshot=info.run_id,
        scored_at=info.scored_at,
        ring_features=ring if choice.emerging else None,
        state={
            "fs": feature_set(model),
            "x": _round(state["x"]),
            "m1": _round(state["m1"]),
            "s": _round(
                [state["log_count"], state["weighted_degree"], state["w_known"], state["w_fraud"]]
            ),
        },
    )


def _by_link_evidence(
    scorer: Scorer,
    request: AccountRequest,
    links: Sequence[Link],
    hubs: Sequence[Hub],
    choice: RingChoice,
) -> Verdict:
    """No online model: the snapshot's link evidence (`online.combine`), with the emerging ring
    still tracked so the next batch can adopt it."""
    del request
    snapshot = scorer.snapshot
    matches = [
        Match(lk.kind, lk.row, lk.user_id, lk.value, lk.matched_value, lk.similarity,
              lk.support, lk.weight)
        for lk in links
        if not lk.intraday
    ]  # fmt: skip
    base = combine(snapshot, matches, hubs, ring_min_weight=scorer.rings.min_weight)
    emerging = choice.emerging and choice.ring_id is not None
    reasons = list(base.reasons)
    if emerging:
        reasons.insert(1, "EMERGING_RING")
    return Verdict(
        score=base.score,
        model_score=None,
        ring_id=choice.ring_id if emerging else base.ring_id,
        ring_score=None if emerging else base.ring_score,
        ring_strength=round(choice.strength, SCORE_DECIMALS) if emerging else base.ring_strength,
        emerging=emerging,
        ring_size=len(choice.members) + 1 if emerging else 0,
        reasons=tuple(reasons),
        links=tuple(sorted(links, key=lambda lk: (-lk.weight, lk.kind, lk.user_id))),
        hubs=tuple(hubs),
        model_version=base.model_version,
        model_part=None,
        snapshot=base.snapshot,
        scored_at=base.scored_at,
    )


def _record(
    store: IntradayStore,
    scorer: Scorer,
    request: AccountRequest,
    verdict: Verdict,
    links: Sequence[Link],
    choice: RingChoice,
    found: IntradayMatches | None,
) -> None:
    """Store the account, then the accounts its emerging ring took in, under the ring's id."""
    registry = scorer.snapshot.registry
    values, blocks, numbers = index_of(request.identity, registry)
    emerging = verdict.ring_id if verdict.emerging else None
    if emerging:
        values = {**values, EMERGING_KIND: (emerging,)}
    handles = {
        spec.name: [h[0], h[1]]
        for spec in registry.kinds
        if spec.rule(Linkage.LOOKALIKE) is not None and (h := handle_of(spec, request.identity))
    }
    payload: dict[str, Any] = {
        "h": handles,
        "ms": verdict.model_score,
        "sc": verdict.score,
        "er": emerging,
        "sr": None if verdict.emerging else verdict.ring_id,
        "l": [[lk.user_id, lk.kind, round(lk.weight, 6)] for lk in links if lk.intraday][:200],
        **verdict.state,
    }
    store.record(
        IntradayAccount(
            user_id=request.user_id,
            created_at=request.created_at.timestamp(),
            identifiers=values,
            blocks=blocks,
            numbers=numbers,
            payload=payload,
        )
    )
    # Today's accounts it links to, stored again with it as a neighbour (and the ring that took
    # them in): the state a later account reads from them is then what the batch would see.
    accounts = found.accounts if found is not None else {}
    absorbed = {a.user_id for a in choice.absorb} if emerging else set()
    pair_links: dict[str, dict[str, float]] = {}
    for lk in links:
        if lk.intraday:
            kinds = pair_links.setdefault(lk.user_id, {})
            kinds[lk.kind] = max(kinds.get(lk.kind, 0.0), lk.weight)
    in_ring = {a.user_id for a in choice.members} | absorbed if emerging else set()
    strongest = sorted(pair_links, key=lambda u: (-max(pair_links[u].values()), u))
    for uid in strongest[:MAX_REFRESHED] + sorted(absorbed - set(pair_links)):
        account = accounts.get(uid) or next((a for a in choice.absorb if a.user_id == uid), None)
        if account is None:
            continue
        payload = dict(account.payload)
        if scorer.model is not None and uid in pair_links:
            payload |= with_neighbour(
                payload,
                scorer.model,
                pair_links[uid],
                verdict.state.get("x"),
                scorer.rings.min_weight,
                verdict.ring_features if uid in in_ring else None,
            )
        identifiers = dict(account.identifiers)
        if uid in absorbed:
            identifiers[EMERGING_KIND] = (emerging,)  # type: ignore[assignment]
            payload["er"] = emerging
        store.record(
            IntradayAccount(
                user_id=account.user_id,
                created_at=account.created_at,
                identifiers=identifiers,
                blocks=account.blocks,
                numbers=account.numbers,
                payload=payload,
            )
        )


MAX_REFRESHED = 20  # today's neighbours stored again per request (the strongest links first)


def with_neighbour(
    payload: Mapping[str, Any],
    model: OnlineModel,
    kinds: Mapping[str, float],
    x_new: Sequence[float] | None,
    strong: float,
    ring: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A stored account's state once a new account links to it by `kinds` (kind → weight): the
    batch's graph features and 1-hop aggregates updated in place (degree, per-kind counts and
    maxima, the weighted means of its neighbours' x), and its ring's features when the new
    account's emerging ring holds it."""
    if payload.get("fs") != feature_set(model) or x_new is None:
        return {}
    names = model.state.meta.aggregated
    at = {n: i for i, n in enumerate(names)}
    x = list(payload["x"])
    m1 = np.asarray(payload["m1"], dtype=np.float64)
    log_count, weighted, w_known, w_fraud = payload["s"]
    pair = float(sum(kinds.values()))  # the adjacency sums the link weights over kinds
    strength = 1.0 - math.prod(1.0 - min(w, _CLIP) for w in kinds.values())
    total = weighted + pair
    if total > 0:
        m1 = (m1 * weighted + pair * np.asarray(x_new, dtype=np.float64)) / total
        w_known, w_fraud = w_known * weighted / total, w_fraud * weighted / total
    bump = {"degree": 1.0, "weighted_degree": strength, "strong_degree": float(strength >= strong)}
    for name, step in bump.items():
        if name in at:
            x[at[name]] += step
    if "max_strength" in at:
        x[at["max_strength"]] = max(x[at["max_strength"]], strength)
    for kind, weight in kinds.items():
        if f"n_{kind}" in at:
            x[at[f"n_{kind}"]] += 1.0
        if f"max_w_{kind}" in at:
            x[at[f"max_w_{kind}"]] = max(x[at[f"max_w_{kind}"]], weight)
    if ring is not None:
        if "in_ring" in at:
            x[at["in_ring"]] = 1.0
        for column in RING_COLUMNS:
            if f"ring_{column}" in at and ring.get(column) is not None:
                x[at[f"ring_{column}"]] = float(ring[column])
    return {
        "x": _round(x),
        "m1": _round(m1),
        "s": _round([math.log1p(math.expm1(log_count) + 1), total, w_known, w_fraud]),
    }


# ---- emerging rings for analysts ----------------------------------------------------------------


@dataclass(frozen=True)
class EmergingRing:
    """An emerging ring as it stands: members (oldest first), the links among them, the batch's
    ring features over them, and its score from the members' model scores (`ring_scores`)."""

    ring_id: str
    members: tuple[IntradayAccount, ...]
    links: tuple[tuple[str, str, str, float], ...]  # user_a, user_b, kind, weight
    features: dict[str, Any]
    ring_score: float | None
    truncated: bool  # more members than MAX_RING_READ: the rest are not listed


def read_emerging_ring(
    store: IntradayStore, ring_id: str, registry: IdentifierRegistry
) -> EmergingRing | None:
    """The emerging ring `ring_id`, or None when no live account is in it."""
    found = store.lookup(IntradayQuery(values={EMERGING_KIND: [ring_id]}, limit=MAX_RING_READ))
    held = found.values.get(EMERGING_KIND, {}).get(ring_id)
    if held is None:
        return None
    members = tuple(
        sorted(
            (found.accounts[u] for u in held.user_ids if u in found.accounts),
            key=lambda a: (a.created_at, a.user_id),
        )
    )
    if not members:
        return None
    inside = {a.user_id for a in members}
    links = tuple(
        (account.user_id, str(other), str(kind), float(weight))
        for account in members
        for other, kind, weight in account.payload.get("l", ())
        if other in inside
    )
    ids = [a.user_id for a in members]
    frame = pl.DataFrame(
        [(min(a, b), max(a, b), k, w) for a, b, k, w in links if a != b],
        schema={"user_a": pl.String, "user_b": pl.String, "kind": pl.String, "weight": pl.Float32},
        orient="row",
    ).unique(["user_a", "user_b", "kind"], keep="first")
    users = pl.DataFrame(
        {
            "user_id": ids,
            "created_at": [datetime.fromtimestamp(a.created_at, tz=UTC) for a in members],
            "label": [None] * len(ids),
        },
        schema={"user_id": pl.String, "created_at": pl.Datetime("us", "UTC"), "label": pl.Int8},
    )
    ring_frame = pl.DataFrame({"user_id": ids, "ring_id": [ring_id] * len(ids)})
    features = ring_features(ring_frame, users, frame, registry).row(0, named=True)
    scored = [
        (a.user_id, float(a.payload["ms"])) for a in members if a.payload.get("ms") is not None
    ]
    ring_score = None
    if scored:
        scores = pl.DataFrame(scored, schema={"user_id": pl.String, "model_score": pl.Float64},
                              orient="row")  # fmt: skip
        ring_score = float(ring_scores(ring_frame, scores)["ring_score"][0])
    return EmergingRing(ring_id, members, links, features, ring_score, held.count > len(members))


def emerging_memberships(store: IntradayStore, chunk: int = 1_000) -> pl.DataFrame:
    """`user_id, emerging_ring_id` of every live account in an emerging ring: what the night's
    batch adopts (`rings.adopt`). Walks the whole store in chunks, off the request path."""
    ids: list[str] = []
    rings: list[str] = []
    batch: list[str] = []

    def flush() -> None:
        for account in store.get(batch):
            ring = account.identifiers.get(EMERGING_KIND)
            if ring:
                ids.append(account.user_id)
                rings.append(ring[0])
        batch.clear()

    for uid in store.user_ids():
        batch.append(uid)
        if len(batch) >= chunk:
            flush()
    flush()
    return pl.DataFrame(
        {"user_id": ids, "emerging_ring_id": rings},
        schema={"user_id": pl.String, "emerging_ring_id": pl.String},
    ).sort("emerging_ring_id", "user_id")
