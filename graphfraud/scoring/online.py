"""Link an account the last batch has not seen to the snapshot's users, by the batch's rules, and
score it from that link evidence alone when no model can (`combine`).

Matching (index lookups only, never a scan; see `scoring.snapshot.IdentifierIndex`), for every
kind of the snapshot's identifier registry (`graphfraud.identifiers`):
- exact: snapshot users holding the same canonical value (email, phone, device, IP, UPI id and
  every declared kind);
- look-alike (email, UPI): the batch's candidate passes for one handle (its stem and the stems
  one deletion away, its name on any provider, its sorted neighbours on its provider, the
  numbered handles on its name, the handles on its name key) scored by the batch's rules
  (`similar_handles`, `linking.lookalike`: Levenshtein with the batch's cutoff, numbered runs,
  reordered names, the cross-provider discount, support = the crowd on the name, shrunk inside a
  sequence, or on the name key for a reordering);
- sequence (phone): numbers within `LinkSettings.phone_max_gap` found by bisection on the sorted
  numbers (the exact form of the batch's number runs, with no block boundary to miss), scored
  with the batch's `gap_similarity`.
A value held by more than `max_share` users is a hub: reported, never linked. `Elsewhere` adds
the accounts scored since the snapshot (today's, `scoring.today`): their holders count towards
supports and hub bars, their handles are look-alike candidates.

Weights are the batch's `link_weight(kind, similarity, support)`.

The link-evidence score (`combine`, a noisy-or, every term in [0, 1]; `scoring.account` scores
with the run's model instead whenever one is loaded):
    w_u   = 1 − Π_kinds (1 − w_kind)                     strength of the tie to matched user u
    U     = 1 − Π_u (1 − w_u · score_u)                  risk passed on by matched users
    w_r   = 1 − Π_{u in ring r} (1 − w_u)                tie to ring r; keep max w_r·ring_score_r
    R     = w_r · ring_score_r
    score = 1 − (1 − neutral)(1 − U)(1 − R)
so an account that matches nothing gets the snapshot's neutral score, a strong tie to a risky ring
pulls it towards that ring's score, and weak ties (a shared IP) move it little. The ring is
reported (`ring_id`) only when w_r reaches the batch's bar to join a ring
(`RingSettings.min_weight`, passed in by the caller).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.config import LinkSettings
from graphfraud.identifiers import BUILTIN, IdentifierRegistry, IdentifierSpec, Linkage, Source
from graphfraud.linking.compare import gap_similarity, similarity_matrix
from graphfraud.linking.keys import (
    handle_stem,
    local_stem,
    name_key,
    phone_number,
    stem_deletion_keys,
)
from graphfraud.linking.lookalike import (
    CROSS_DOMAIN_DISCOUNT,
    NO_BACKGROUND,
    SUFFIX_READ_SPAN,
    NumberBackground,
    comparable,
    reordered,
    reordered_support,
    run_partners,
    sequential_support,
    stem_support,
    suffix_number,
)
from graphfraud.linking.weights import WEIGHT_CLIP
from graphfraud.linking.weights import link_weight as _link_weight
from graphfraud.scoring.snapshot import SCORE_DECIMALS, IdentifierIndex
from graphfraud.scoring.store import RingRecord, ScoreStore

MAX_VALUES_PER_KIND = 20  # identifiers of one kind in one request (more is abuse, not an account)
MAX_FUZZY_CANDIDATES = 200  # best-scoring look-alike handles kept per request
PREFILTER_ABOVE = 64  # candidate rows past which the text test runs before anything else
_CLIP = WEIGHT_CLIP


@dataclass(frozen=True)
class NewIdentity:
    """Canonical identifiers of the account to score (see `canonical_identity`): per kind its
    values, and the canonical columns of a user-held kind's value (an email's local part and
    domain, say)."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parts: Mapping[str, Mapping[str, str]] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not any(self.values.values())

    def first(self, kind: str) -> str | None:
        found = self.values.get(kind, ())
        return found[0] if found else None


@dataclass(frozen=True)
class Match:
    """One link between the new account and a snapshot user (the evidence returned)."""

    kind: str
    user_id: str
    value: str  # the new account's canonical value
    matched_value: str  # the snapshot user's value (== value for exact kinds)
    similarity: float
    support: int
    weight: float
    intraday: bool = False  # a look-alike of one of today's accounts (`Elsewhere`)


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


RawIdentifiers = Mapping[str, str | Sequence[str] | None]


def canonical_identity(
    raw: RawIdentifiers, *, registry: IdentifierRegistry = BUILTIN, region: str = "IN"
) -> tuple[NewIdentity, list[str]]:
    """Normalise raw identifiers (kind → a value, or values for device/IP kinds) with the batch's
    rules: (identity, kinds whose values did not parse). Unknown kinds raise (`spec`)."""
    values: dict[str, tuple[str, ...]] = {}
    parts: dict[str, Mapping[str, str]] = {}
    rejected: list[str] = []
    for kind, given in raw.items():
        spec = registry.spec(kind)
        if given is None:
            continue
        typed = [given] if isinstance(given, str) else list(given)[:MAX_VALUES_PER_KIND]
        typed = [t for t in typed if t and t.strip()]
        if spec.source == Source.USERS:
            typed = typed[:1]
        canonical = [spec.normaliser.scalar(t, region) for t in typed]
        good = [c for c in canonical if c is not None]
        if len(good) < len(typed):
            rejected.append(kind)
        if good:
            values[kind] = _unique(c[spec.value_column] for c in good)
            if spec.source == Source.USERS:
                parts[kind] = good[0]
    return NewIdentity(values=values, parts=parts), rejected


def link_weight(kind: str, similarity: float, support: int, registry: IdentifierRegistry) -> float:
    """The batch's weight, rounded so evidence reads 0.36, not 0.36000000000000004."""
    return round(_link_weight(kind, similarity, support, registry), SCORE_DECIMALS)


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in values if v))


def _exact(
    index: IdentifierIndex,
    kind: str,
    values: Sequence[str],
    link: LinkSettings,
    hubs: list[Hub],
    elsewhere: Mapping[str, int],
) -> list[Match]:
    table = index.exact[kind]
    out: list[Match] = []
    for value, (lo, hi) in zip(values, table.bounds(list(values)), strict=True):
        held = hi - lo
        if held == 0:
            continue
        total = held + elsewhere.get(value, 0)
        if total > link.max_share:
            hubs.append(Hub(kind, value, total))
            continue
        weight = link_weight(kind, 1.0, total + 1, index.registry)
        for user_id in index.holders_of(table.rows[lo:hi]):
            out.append(Match(kind, user_id, value, value, 1.0, total + 1, weight))
    return out


@dataclass(frozen=True)
class Elsewhere:
    """What the accounts outside the snapshot (today's, from the intraday store) add to the
    matching: holders per exact value (support and hub bars count them), and per look-alike
    kind their candidate handles, the suffix numbers on the account's local stem and how many
    of them share that stem, and its name key."""

    holders: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    handles: Mapping[str, Sequence[Handle]] = field(default_factory=dict)
    stem_numbers: Mapping[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    stem_counts: Mapping[str, int] = field(default_factory=dict)
    name_counts: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Handle:
    """A look-alike kind's value as the rules compare it: the handle, its provider, and how many
    accounts share its local stem (the crowd behind its support) and, for the account being
    scored, its name key (`keys.name_key`: the crowd behind a reordering's support and block)."""

    user_id: str  # "" for the account being scored
    value: str
    local: str
    domain: str
    stem_count: int
    intraday: bool = False  # one of today's accounts, not a snapshot user
    name_count: int = 0


def similar_handles(
    kind: str,
    mine: Handle,
    candidates: Sequence[Handle],
    stem_numbers: npt.NDArray[np.int64],
    link: LinkSettings,
    registry: IdentifierRegistry,
    count_of: Callable[[str], int] | None = None,
    background: NumberBackground = NO_BACKGROUND,
) -> list[tuple[Handle, float, int, float]]:
    """(candidate, similarity, support, weight) for the candidates the batch's look-alike rules
    link to `mine` (see `linking.lookalike`), strongest first. `stem_numbers`: suffix numbers of
    the accounts on `mine`'s local stem around its own (repeats kept, `mine`'s included);
    `count_of(stem)`: accounts on a stem, for candidates whose `stem_count` is -1;
    `background`: the snapshot's numbers over every name (`mine` not among them; today's
    accounts neither, a day's sign-ups move its shares by a few percent at most)."""
    if not comparable(mine.local):
        return []
    pool = [c for c in dict((c.user_id, c) for c in candidates).values()
            if c.value != mine.value and comparable(c.local)]  # fmt: skip
    if not pool:
        return []
    # With the batch's score cutoff: rapidfuzz applies it to the normalised distance, so a
    # pair exactly at the threshold is out in both.
    threshold = link.email_similarity
    lev = similarity_matrix(
        [mine.local], [c.local for c in pool], score_cutoff=threshold, workers=1
    )[0]
    my_num = suffix_number(mine.local)
    my_stem = local_stem(mine.local)
    my_name = name_key(mine.local)
    # the batch's reordered pass pairs a name key's accounts only up to max_block of them
    name_block = 2 <= mine.name_count <= link.max_block
    stem_numbers = np.sort(stem_numbers)
    partners, run_sim = (
        run_partners(stem_numbers, my_num, link.max_block)
        if my_num is not None and my_stem
        else (set(), 0.0)
    )
    out = []
    for c, text_sim in zip(pool, lev.tolist(), strict=True):
        their_stem = local_stem(c.local)
        # two stems of one name key: a reordering's support (and, in its block, its similarity)
        same_name = my_name is not None and their_stem != my_stem and name_key(c.local) == my_name
        if text_sim < threshold and not partners and not same_name:
            continue  # no rule can link it
        num = suffix_number(c.local)
        same_stem = my_stem is not None and their_stem == my_stem
        in_run = same_stem and num is not None and num in partners
        swapped = same_name and name_block and reordered(mine.local, c.local)
        sim = max(
            text_sim if text_sim >= link.email_similarity else 0.0,
            run_sim if in_run else 0.0,
            threshold if swapped else 0.0,
        )
        if sim <= 0.0:
            continue
        if c.domain != mine.domain:
            sim *= CROSS_DOMAIN_DISCOUNT
        sim = float(np.float32(sim))
        theirs = c.stem_count
        if theirs < 0:
            other = local_stem(c.local)
            theirs = count_of(other) if count_of is not None and other else 0
        support = stem_support([mine.stem_count, theirs])
        if same_name:
            support = reordered_support(support, mine.name_count)
        if same_stem and my_num is not None and num is not None:
            support = sequential_support(support, my_num, num, stem_numbers, background, my_num)
        weight = link_weight(kind, sim, support, registry)
        if weight >= link.min_fuzzy_weight:
            out.append((c, round(sim, 4), support, weight))
    out.sort(key=lambda t: (-t[3], t[0].user_id))
    return out[:MAX_FUZZY_CANDIDATES]


def snapshot_handles(
    index: IdentifierIndex, spec: IdentifierSpec, identity: NewIdentity, link: LinkSettings
) -> tuple[Handle | None, list[Handle], npt.NDArray[np.int64]]:
    """The account's handle of a look-alike kind, the snapshot's candidates for it (its stem
    blocks up to `max_crowd`, and the numbered handles on its local stem around its number), and
    those numbers; (None, [], []) without a comparable handle."""
    empty = np.zeros(0, dtype=np.int64)
    parts = identity.parts.get(spec.name, {})
    value = identity.first(spec.name)
    if spec.handle_columns is None or value is None:
        return None, [], empty
    local, domain = (parts.get(c) for c in spec.handle_columns)
    stem = handle_stem(local, domain)
    if local is None or domain is None:
        return None, [], empty
    numbers_index = index.stem_numbers.get(spec.name)
    my_stem = local_stem(local)
    count = 1 + (numbers_index.counts([my_stem])[0] if numbers_index and my_stem else 0)
    my_name = name_key(local) if comparable(local) else None
    names = index.names.get(spec.name)
    name_rows = names.lookup(my_name) if names is not None and my_name else np.zeros(0, np.uint32)
    mine = Handle("", value, local, domain, count, name_count=1 + len(name_rows))
    # The batch's candidate passes (`blocking.handle_candidate_pairs`) for one handle: its stem
    # and the stems one deletion away (crowds up to max_crowd), its name on any provider, its
    # sorted neighbours on its provider, and the numbered handles on its name around its number.
    rows_parts = []
    if stem is not None and spec.name in index.stems:
        table = index.stems[spec.name]
        for lo, hi in table.bounds(stem_deletion_keys(stem)):
            if 0 < hi - lo <= link.max_crowd:
                rows_parts.append(table.rows[lo:hi])
    if numbers_index is not None and my_stem and 0 < count - 1 <= link.max_block:
        rows_parts.append(numbers_index.rows_of(my_stem))
    if spec.name in index.handle_order and comparable(local):
        rows_parts.append(index.handle_order[spec.name].neighbours(local, domain, link.window))
    if len(name_rows) + 1 > link.max_block:
        name_rows = name_rows[:0]  # a crowd on the name key: its count only
    rows_parts.append(name_rows)
    numbers = empty
    numbered: npt.NDArray[Any] = np.zeros(0, dtype=np.uint32)
    my_num = suffix_number(local)
    if numbers_index is not None and my_stem and my_num is not None:
        numbers, numbered_rows = numbers_index.numbered(
            my_stem, my_num - SUFFIX_READ_SPAN, my_num + SUFFIX_READ_SPAN
        )
        # Run partners are at most max_block accounts (the batch's block bound); a name whose
        # numbers around this one are a crowd (`user123…`) adds its counts, not candidates.
        if len(numbered_rows) <= link.max_crowd:
            numbered = numbered_rows
            rows_parts.append(numbered)
    if not rows_parts:
        return mine, [], numbers
    rows = np.unique(np.concatenate(rows_parts))
    if len(rows) > PREFILTER_ABOVE and comparable(local):
        # A crowd (a common name's block): keep the rows a rule can link — similar enough as
        # text, or numbered on the name around this handle — before building candidates.
        texts = index.handle_of_row[spec.name].take(rows)
        sims = similarity_matrix(
            [local], [t or "" for t in texts], score_cutoff=link.email_similarity, workers=1
        )[0]
        rows = rows[
            (sims >= link.email_similarity) | np.isin(rows, numbered) | np.isin(rows, name_rows)
        ]
    return mine, handles_of_rows(index, spec.name, rows), numbers


def handles_of_rows(index: IdentifierIndex, kind: str, rows: npt.NDArray[Any]) -> list[Handle]:
    """The snapshot users at these index positions as `Handle`s (those without a value of the
    kind left out). Their stem counts are left at -1: `similar_handles` looks them up for the
    few that match."""
    values = index.value_of_row[kind].take(rows)
    locals_ = index.handle_of_row[kind].take(rows)
    domains = index.domain_of_row[kind].take(rows)
    ids = index.holders_of(rows)
    return [
        Handle(uid, value, local, domain, -1)
        for uid, value, local, domain in zip(ids, values, locals_, domains, strict=True)
        if value and local and domain
    ]


def stem_counter(index: IdentifierIndex, kind: str) -> Callable[[str], int]:
    """Accounts on a local stem in the snapshot (0 for a kind without the index)."""
    table = index.stem_numbers.get(kind)
    if table is None:
        return lambda stem: 0
    return lambda stem: table.counts([stem])[0]


def background_of(index: IdentifierIndex, kind: str) -> NumberBackground:
    """The snapshot's suffix numbers over every name of a look-alike kind (none without the
    index)."""
    table = index.stem_numbers.get(kind)
    return NO_BACKGROUND if table is None else table.background


def _lookalikes(
    index: IdentifierIndex,
    spec: IdentifierSpec,
    kind: str,
    identity: NewIdentity,
    link: LinkSettings,
    elsewhere: Elsewhere,
) -> list[Match]:
    """Look-alike links to snapshot users and to `elsewhere`'s handles, counted over both
    populations."""
    mine, candidates, numbers = snapshot_handles(index, spec, identity, link)
    if mine is None:
        return []
    named = list(candidates)
    named += elsewhere.handles.get(spec.name, ())
    if not named:
        return []
    stem_count = mine.stem_count + elsewhere.stem_counts.get(spec.name, 0)
    name_count = mine.name_count + elsewhere.name_counts.get(spec.name, 0)
    mine = Handle(
        mine.user_id, mine.value, mine.local, mine.domain, stem_count, name_count=name_count
    )
    numbers = np.concatenate([numbers, elsewhere.stem_numbers.get(spec.name, numbers[:0])])
    if (n := suffix_number(mine.local)) is not None:
        numbers = np.append(numbers, n)
    return [
        Match(
            kind,
            c.user_id,
            mine.value,
            c.value,
            sim,
            support,
            round(weight, SCORE_DECIMALS),
            c.intraday,
        )
        for c, sim, support, weight in similar_handles(
            kind,
            mine,
            named,
            numbers,
            link,
            index.registry,
            stem_counter(index, spec.name),
            background_of(index, spec.name),
        )
    ]


def _sequence(
    index: IdentifierIndex,
    spec: IdentifierSpec,
    kind: str,
    identity: NewIdentity,
    link: LinkSettings,
) -> list[Match]:
    value = identity.first(spec.name)
    number = phone_number(value)
    if number is None or value is None:
        return []
    numbers, rows = index.numbers[spec.name].window(number, link.phone_max_gap)
    near = numbers != number  # the same number is an exact link
    window = int(near.sum())
    if not 0 < window <= link.max_block:
        return []
    support = window + 1
    others = index.value_of_row[spec.name].take(rows[near])
    ids = index.holders_of(rows[near])
    out = []
    for uid, num, other in zip(ids, numbers[near].tolist(), others, strict=True):
        sim = round(gap_similarity(float(abs(int(num) - number)), link.phone_max_gap), 4)
        weight = link_weight(kind, sim, support, index.registry)
        out.append(Match(kind, uid, value, str(other or f"+{num}"), sim, support, weight))
    return out


def find_matches(
    snapshot: ScoreStore,
    identity: NewIdentity,
    link: LinkSettings,
    elsewhere: Elsewhere | None = None,
) -> tuple[list[Match], list[Hub]]:
    """Every link the new account would get against the snapshot's users, kind by kind, and
    its look-alike links to `elsewhere`'s handles (today's accounts). Today's holders
    count towards each value's support and hub bar, as the batch will count them tonight."""
    out = elsewhere or Elsewhere()
    index = snapshot.identifiers
    if index is None:
        return [], []
    hubs: list[Hub] = []
    matches: list[Match] = []
    for spec in index.registry.kinds:
        values = identity.values.get(spec.name)
        if not values:
            continue
        others = out.holders.get(spec.name, {})
        matches += _exact(index, spec.name, values, link, hubs, others)
        for rule in spec.links:
            if rule.match == Linkage.LOOKALIKE:
                matches += _lookalikes(index, spec, rule.kind, identity, link, out)
            elif rule.match == Linkage.SEQUENCE:
                matches += _sequence(index, spec, rule.kind, identity, link)
    return matches, hubs


def combine(
    snapshot: ScoreStore,
    matches: Sequence[Match],
    hubs: Sequence[Hub] = (),
    *,
    ring_min_weight: float,
) -> OnlineScore:
    """Turn matches into a score with the noisy-or in the module docstring."""
    info = snapshot.info
    miss_by_user: dict[str, float] = {}
    for m in matches:
        if m.intraday:
            continue  # today's accounts have no batch score
        miss_by_user[m.user_id] = miss_by_user.get(m.user_id, 1.0) * (1.0 - min(m.weight, _CLIP))
    user_miss = 1.0
    ring_miss: dict[str, float] = {}
    for user_id, miss in miss_by_user.items():
        record = snapshot.user(user_id)
        if record is None:
            continue
        tie = 1.0 - miss
        user_miss *= 1.0 - tie * record.score
        if record.ring_id is not None:
            ring_miss[record.ring_id] = ring_miss.get(record.ring_id, 1.0) * miss
    best: RingRecord | None = None
    best_value, best_strength = 0.0, 0.0
    for rid, miss in ring_miss.items():
        ring = snapshot.ring(rid)
        if ring is None:
            continue
        strength = 1.0 - miss
        value = strength * (ring.score or 0.0)
        if value > best_value or (best is None and strength > best_strength):
            best, best_value, best_strength = ring, value, strength
    score = 1.0 - (1.0 - info.neutral_score) * user_miss * (1.0 - best_value)
    reasons = ["NEW_USER"]
    registry = snapshot.registry
    reasons += list(
        dict.fromkeys(registry.link_rule(m.kind).reason for m in _strongest_first(matches))
    )
    ring_id: str | None = None
    ring_score: float | None = None
    if best is not None and best_strength >= ring_min_weight:
        ring_id, ring_score = best.ring_id, best.score
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
    snapshot: ScoreStore,
    identity: NewIdentity,
    link: LinkSettings,
    *,
    ring_min_weight: float,
) -> OnlineScore:
    """Link a new account to the snapshot's users and rings and score it (pure, no I/O)."""
    matches, hubs = find_matches(snapshot, identity, link)
    return combine(snapshot, matches, hubs, ring_min_weight=ring_min_weight)
