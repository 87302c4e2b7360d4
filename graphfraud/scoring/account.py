"""Score an account the batch has not seen: against the snapshot *and* today's accounts, with the
batch's own features and model (`score_account`, one request):

1. **Links**: by the batch's rules and weights to snapshot users (`scoring.online`) and to
   today's accounts (`scoring.today`, one store round trip), supports counting both.
2. **Ring**: a snapshot ring, an emerging ring or a new one (`scoring.emerging.choose_ring`).
3. **Model**: the batch's features of the account (`model.features.account_features`) and its
   model inputs over its neighbours (`model.ego.ego_row`: snapshot users' state from the run,
   today's accounts' state from their record), scored by the run's model
   (`scoring.online_model`); the score is the batch's (the model's, blended with the ring's
   score), so it may fall below the neutral score as well as rise above it.
4. **Record**: the account with its index entries and the state its later neighbours read;
   today's accounts it links to are stored again with it as a neighbour (`with_neighbour`).
   `record=False` is a what-if: nothing is written.

Without an online model (a run scored by the prior, a model with no GBM) the link evidence
scores it (`scoring.online.combine`); without the intraday store (server down or slow) the
snapshot alone is matched and nothing is recorded. `AccountScore.degraded` says which.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.config import LinkSettings, RingSettings
from graphfraud.errors import InputDataError, IntradayUnavailable
from graphfraud.identifiers import (
    EMAIL_KIND,
    Linkage,
    Source,
)
from graphfraud.linking.weights import combine_weights
from graphfraud.model.ego import Ego, Neighbourhood, one_hop
from graphfraud.model.features import RING_COLUMNS, OneAccount, account_features
from graphfraud.scoring.emerging import (
    EMERGING_KIND,
    RingChoice,
    choose_ring,
    emerging_ring_row,
)
from graphfraud.scoring.intraday.base import (
    IntradayAccount,
    IntradayMatches,
    IntradayStore,
)
from graphfraud.scoring.online import (
    Elsewhere,
    Hub,
    Match,
    combine,
    find_matches,
)
from graphfraud.scoring.online_model import OnlineModel
from graphfraud.scoring.scores import RING_BLEND, one_ring_score, reasons_of
from graphfraud.scoring.snapshot import SCORE_DECIMALS
from graphfraud.scoring.store import ScoreStore
from graphfraud.scoring.suspected import is_suspected
from graphfraud.scoring.today import (
    AccountRequest,
    Link,
    by_pair_and_kind,
    handle_of,
    index_of,
    intraday_links,
    intraday_query,
    snapshot_links,
)


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
    model_part: str | None  # "gbm" / "gnn" / "gnn_stack" when the model scored, None: links did
    snapshot: str
    scored_at: str
    recorded: bool
    suspected_ring: bool = False  # its ring is a suspected ring (`scoring.suspected`)
    degraded: tuple[str, ...] = field(default_factory=tuple)  # "intraday", "model"


def _one_account(
    request: AccountRequest,
    snapshot: ScoreStore,
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
    own = 0 if snapshot.knows(request.user_id) else 1
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
    best = by_pair_and_kind(links)
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
        domain_n = model.domains.get(domain, 0) + own
    return OneAccount(
        values=values,
        sightings=max((len(v) for v in sighting.values()), default=0),
        sighting_values=sighting,
        created_at=request.created_at,
        support=support,
        stem_n=stem_n,
        domain_n=domain_n,
        links=tuple((uid, kind, w) for uid, kinds in best.items() for kind, w in kinds.items()),
        ring=ring,
    )


@dataclass(frozen=True)
class Neighbours:
    """The account's neighbours as its model reads them."""

    nb: Neighbourhood  # their batch state (node positions) or recorded state (today's accounts)
    hidden: npt.NDArray[np.float32] | None  # their GNN states, row for row (None: no GNN)
    stateless: npt.NDArray[np.bool_] | None  # today's accounts recorded without GNN states
    fraud_near: float  # how many are labelled fraud


def _neighbourhood(
    model: OnlineModel,
    snapshot: ScoreStore,
    links: Sequence[Link],
    accounts: Mapping[str, IntradayAccount],
) -> Neighbours:
    """The account's neighbours' state (snapshot users' from the batch, at their node positions
    in the run's model arrays; today's accounts from their record) with per-relation weights."""
    relations = model.state.meta.relation_names
    width = model.state.width
    batch: dict[str, dict[int, float]] = {}
    today: dict[str, dict[int, float]] = {}
    for lk in links:
        r = relations.index(lk.kind)
        into = today.setdefault(lk.user_id, {}) if lk.intraday else batch.setdefault(lk.user_id, {})
        into[r] = max(into.get(r, 0.0), lk.weight)
    at = snapshot.positions(list(batch))
    rows = {int(p): batch[uid] for uid, p in zip(batch, at.tolist(), strict=True) if p >= 0}
    parts: list[Neighbourhood] = []
    hidden: list[npt.NDArray[np.float32]] = []
    stateless: list[bool] = []
    fraud_near = 0.0
    states = model.gnn_states
    if rows:
        order = np.array(sorted(rows), dtype=np.int64)
        weights = np.zeros((len(order), len(relations)), dtype=np.float32)
        for i, row in enumerate(order.tolist()):
            for r, w in rows[row].items():
                weights[i, r] = w
        part = Neighbourhood.of_rows(model.state, order, weights)
        fraud_near = float(part.fraud.sum())
        parts.append(part)
        if states is not None:
            hidden.append(states.of_rows(order))
            stateless += [False] * len(order)
    fs = feature_set(model)
    kept = [uid for uid in today if accounts.get(uid, _EMPTY).payload.get("fs") == fs]
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
                x=np.stack([unpack(d["x"], width) for d in docs]),
                m1=np.stack([unpack(d["m1"], width) for d in docs]),
                log_count=scal[:, 0],
                weighted_degree=scal[:, 1],
                known=zeros,
                fraud=zeros,
                w_known=scal[:, 2],
                w_fraud=scal[:, 3],
                weights=weights,
            )
        )
        if states is not None:
            shape = states.matrix.shape[1:]
            for doc in docs:
                mine = doc.get("gv") == model.version and isinstance(doc.get("g"), str)
                hidden.append(
                    unpack(doc["g"], int(np.prod(shape)), GNN_DTYPE).reshape(1, *shape)
                    if mine
                    else np.zeros((1, *shape), np.float32)
                )
                stateless.append(not mine)
    nb = Neighbourhood.concat(parts, width, len(relations))
    if states is None:
        return Neighbours(nb, None, None, fraud_near)
    held = (
        np.concatenate(hidden)
        if hidden
        else np.zeros((0, *states.matrix.shape[1:]), dtype=np.float32)
    )
    return Neighbours(nb, held, np.array(stateless, dtype=bool), fraud_near)


_EMPTY = IntradayAccount(user_id="-", created_at=0.0)


def feature_set(model: OnlineModel) -> str:
    """Names the columns of a stored account's state: an account recorded under a snapshot with
    other features offers no state (its links still count)."""
    return _names_digest(model.state.meta.aggregated)


def _names_digest(names: Sequence[str]) -> str:
    return hashlib.sha256("\x1f".join(names).encode("utf-8")).hexdigest()[:16]


STATE_DTYPE = "<f4"
GNN_DTYPE = "<f2"  # GNN states, stored as the run stores them (`model/gnn/state.py`)


def pack(values: Any, dtype: str = STATE_DTYPE) -> str:
    """A state vector as the stored payload holds it: float32 bytes in base64 (a 60-column row
    is 320 characters that decode in one step, where a JSON list of numbers parses each)."""
    return base64.b64encode(np.asarray(values, dtype=dtype).tobytes()).decode("ascii")


def unpack(text: str, width: int, dtype: str = STATE_DTYPE) -> npt.NDArray[np.float32]:
    """Inverse of `pack`; InputDataError for a vector of another width (another feature set)."""
    try:
        values = np.frombuffer(base64.b64decode(text, validate=True), dtype=dtype)
    except (ValueError, TypeError) as exc:
        raise InputDataError("a stored intraday state vector is unreadable") from exc
    if values.shape != (width,):
        raise InputDataError(
            f"a stored intraday state vector has {values.size} values, not {width}"
        )
    return values.astype(np.float32)


def _round(values: Any) -> list[float]:
    return [round(float(v), 6) for v in np.asarray(values, dtype=np.float64).ravel()]


@dataclass(frozen=True)
class Scorer:
    """What one request needs, fixed per served snapshot (and the shared store)."""

    snapshot: ScoreStore
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
    links = [lk for lk in snapshot_links(matches) + today_links if lk.user_id != request.user_id]
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
    suspected_ring: bool = False
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
    known_ring = snapshot.ring(ring_id) if ring_id and not choice.emerging else None
    ring: dict[str, Any] | None = None
    if ring_id is not None and choice.emerging:
        ring = emerging_ring_row(request, choice, links, registry)
    elif ring_id is not None:
        ring = (
            model.ring_features(ring_id).row(0, named=True) if ring_id in model.ring_row else None
        )
        if known_ring is not None:
            ring_known, ring_fraud = model.ring_labels(ring_id)
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
    near = _neighbourhood(model, snapshot, links, accounts)
    nb, fraud_near = near.nb, near.fraud_near
    ego = Ego(x_row, ring_known=ring_known, ring_fraud=ring_fraud)
    model_score, own_states = model.predict(ego, nb, near.hidden, near.stateless)
    ring_score: float | None = None
    ring_size = 0
    if ring_id is not None and choice.emerging:
        others = [
            float(a.payload.get("ms", a.payload.get("sc", 0.0)) or 0.0) for a in choice.members
        ]
        ring_score = one_ring_score([model_score, *others])
        ring_size = 1 + len(others)
    elif known_ring is not None:
        ring_score = known_ring.score
        ring_size = int(ring["size"]) if ring else 0
    score = model_score
    if ring_score is not None:
        score = (1 - RING_BLEND) * model_score + RING_BLEND * ring_score
    # the batch's rule: a snapshot ring as the batch judged it, an emerging one by the run's cut
    suspected = (
        is_suspected(ring_score, snapshot.info.ring_cut)
        if choice.emerging
        else known_ring is not None and known_ring.suspected
    )
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
        suspected_ring=bool(ring_id is not None and suspected),
        ring_features=ring if choice.emerging else None,
        state={
            "fs": feature_set(model),
            "x": pack(state["x"]),
            "m1": pack(state["m1"]),
            "s": _round(
                [state["log_count"], state["weighted_degree"], state["w_known"], state["w_fraud"]]
            ),
            **(
                {}
                if own_states is None
                else {"g": pack(own_states.ravel(), GNN_DTYPE), "gv": model.version}
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
        Match(lk.kind, lk.user_id, lk.value, lk.matched_value, lk.similarity, lk.support,
              lk.weight)
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
        # no model, no emerging ring score: only a snapshot ring can be a suspected one
        suspected_ring=not emerging
        and base.ring_id is not None
        and (ring := snapshot.ring(base.ring_id)) is not None
        and ring.suspected,
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
    batch = [
        IntradayAccount(
            user_id=request.user_id,
            created_at=request.created_at.timestamp(),
            identifiers=values,
            blocks=blocks,
            numbers=numbers,
            payload=payload,
        )
    ]
    # Today's accounts it links to, stored again with it as a neighbour (and the ring that took
    # them in): the state a later account reads from them is then what the batch would see.
    accounts = found.accounts if found is not None else {}
    absorbed = {a.user_id for a in choice.absorb} if emerging else set()
    pair_links = by_pair_and_kind(lk for lk in links if lk.intraday)
    in_ring = {a.user_id for a in choice.members} | absorbed if emerging else set()
    # Only ties that could hold a ring together are worth a write: a weak one (a shared carrier
    # IP) barely moves a neighbour's means, and today's crowds would cost a write per member.
    tie = {u: combine_weights(k.values()) for u, k in pair_links.items()}
    strongest = sorted(
        (u for u in pair_links if tie[u] >= scorer.rings.min_weight), key=lambda u: (-tie[u], u)
    )
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
        batch.append(
            IntradayAccount(
                user_id=account.user_id,
                created_at=account.created_at,
                identifiers=identifiers,
                blocks=account.blocks,
                numbers=account.numbers,
                payload=payload,
            )
        )
    store.record_many(batch)  # one round trip


MAX_REFRESHED = 8  # today's neighbours stored again per request (the strongest ties first)


def with_neighbour(
    payload: Mapping[str, Any],
    model: OnlineModel,
    kinds: Mapping[str, float],
    x_new: str | None,
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
    width = model.state.width
    x = unpack(payload["x"], width).astype(np.float64)
    m1 = unpack(payload["m1"], width).astype(np.float64)
    log_count, weighted, w_known, w_fraud = payload["s"]
    pair = float(sum(kinds.values()))  # the adjacency sums the link weights over kinds
    strength = combine_weights(kinds.values())
    total = weighted + pair
    if total > 0:
        m1 = (m1 * weighted + pair * unpack(x_new, width).astype(np.float64)) / total
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
        "x": pack(x),
        "m1": pack(m1),
        "s": _round([math.log1p(math.expm1(log_count) + 1), total, w_known, w_fraud]),
    }
