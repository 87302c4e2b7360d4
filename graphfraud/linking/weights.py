"""How much a link is worth: kind prior × similarity × rarity of the shared value.

Rarity is the point: a device used by 400 people says little about any two of them, a device shared
by three strangers says a lot. With `support` = number of distinct users holding the value (for
fuzzy kinds: how crowded the neighbourhood of the pair is),

    rarity(s) = sqrt(2 / s)    (s = 2 → 1.0, s = 3 → 0.82, s = 10 → 0.45, s = 50 → 0.2)

The square root keeps a 10-account device farm clearly linked (1/s would rate it below a family
of three) while a café shared by hundreds fades out. Mailboxes and phone numbers do not fade:
honest people share a device or a network, but thirteen accounts behind one inbox or one SIM are
one actor (decay 0). Values shared by more than `max_share` users are hubs and never linked
pairwise. Each kind's prior and decay are declared once, in `graphfraud.identifiers`.
Shared by the batch (vectorised) and the online scorer (scalar).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import polars as pl

from graphfraud.identifiers import BUILTIN, IdentifierRegistry


def rarity(support: int, decay: float = 0.5) -> float:
    """(2/support)**decay, capped at 1."""
    return float(min(1.0, (2.0 / max(support, 2)) ** decay))


def link_weight(
    kind: str, similarity: float, support: int, registry: IdentifierRegistry = BUILTIN
) -> float:
    """Scalar weight of one link in [0, 1]; an unknown kind raises (never weighs 0 silently)."""
    rule = registry.link_rule(kind)
    return rule.prior * similarity * rarity(support, rule.decay)


def link_weight_expr(
    registry: IdentifierRegistry = BUILTIN,
    kind: str = "kind",
    similarity: str = "similarity",
    support: str = "support",
) -> pl.Expr:
    """Vectorised `link_weight` over a links frame; an unknown kind fails the expression."""
    rules = registry.rules
    prior = pl.col(kind).replace_strict({r.kind: r.prior for r in rules}, return_dtype=pl.Float32)
    decay = pl.col(kind).replace_strict({r.kind: r.decay for r in rules}, return_dtype=pl.Float64)
    rare = (2.0 / pl.col(support).clip(lower_bound=2)).pow(decay).clip(upper_bound=1.0)
    return (prior * pl.col(similarity) * rare).cast(pl.Float32)


def max_linkable_support(prior: float, decay: float, min_weight: float) -> int | None:
    """The largest support at which a link of this prior can still weigh `min_weight` (at
    similarity 1), one more for float rounding; None when weight does not fade with support.

    Pairs crowded past it cannot link, whatever their similarity: the look-alike pass skips
    comparing them (`linking.link.Namesakes`). Email look-alikes (0.85, 0.5, 0.1): 145."""
    if decay <= 0:
        return None
    bound: float = 2.0 * (prior / min_weight) ** (1.0 / decay)
    return math.floor(bound) + 1


WEIGHT_CLIP = 0.999  # one link never makes a pair certain


def combine_weights_expr(weight: str = "weight") -> pl.Expr:
    """Pair strength from several links: noisy-or, 1 - Π(1 - w). Independent evidence adds up,
    but never past 1."""
    return (1.0 - (1.0 - pl.col(weight).clip(0.0, WEIGHT_CLIP)).log().sum().exp()).cast(pl.Float32)


def combine_weights(weights: Iterable[float]) -> float:
    """`combine_weights_expr` for one pair's link weights (the online scorer)."""
    return 1.0 - math.prod(1.0 - min(w, WEIGHT_CLIP) for w in weights)
