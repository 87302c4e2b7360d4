"""How much a link is worth: kind prior × similarity × rarity of the shared value.

Rarity is the point: a device used by 400 people says little about any two of them, a device shared
by three strangers says a lot. With `support` = number of distinct users holding the value (for
fuzzy kinds: how crowded the neighbourhood of the pair is),

    rarity(s) = sqrt(2 / s)    (s = 2 → 1.0, s = 3 → 0.82, s = 10 → 0.45, s = 50 → 0.2)

The square root keeps a 10-account device farm clearly linked (1/s would rate it below a family
of three) while a café shared by hundreds fades out. Mailboxes and phone numbers do not fade:
honest people share a device or a network, but thirteen accounts behind one inbox or one SIM are
one actor (`KIND_DECAY` = 0). Values shared by more than `max_share` users are hubs and never
linked pairwise.
Shared by the batch (vectorised) and the online scorer (scalar).
"""

from __future__ import annotations

import polars as pl

from graphfraud.schema import LinkKind

# Prior strength of each kind when the value is held by exactly two users at similarity 1.
KIND_PRIOR: dict[str, float] = {
    LinkKind.EMAIL: 1.0,
    LinkKind.PHONE: 1.0,
    LinkKind.DEVICE: 0.9,
    LinkKind.EMAIL_SIMILAR: 0.85,
    LinkKind.PHONE_SIMILAR: 0.7,
    LinkKind.IP: 0.35,
}


# Exponent of the rarity decay per kind: 0.5 = sqrt(2/s), 0 = no decay.
KIND_DECAY: dict[str, float] = {
    LinkKind.EMAIL: 0.0,
    LinkKind.PHONE: 0.0,
    LinkKind.DEVICE: 0.5,
    LinkKind.EMAIL_SIMILAR: 0.5,
    LinkKind.PHONE_SIMILAR: 0.5,
    LinkKind.IP: 0.5,
}


def rarity(support: int, decay: float = 0.5) -> float:
    """(2/support)**decay, capped at 1."""
    return float(min(1.0, (2.0 / max(support, 2)) ** decay))


def link_weight(kind: str, similarity: float, support: int) -> float:
    """Scalar weight of one link in [0, 1]."""
    return KIND_PRIOR[kind] * similarity * rarity(support, KIND_DECAY[kind])


def link_weight_expr(
    kind: str = "kind", similarity: str = "similarity", support: str = "support"
) -> pl.Expr:
    """Vectorised `link_weight` over a links frame."""
    prior = pl.col(kind).replace_strict(KIND_PRIOR, default=0.0, return_dtype=pl.Float32)
    decay = pl.col(kind).replace_strict(KIND_DECAY, default=0.5, return_dtype=pl.Float64)
    rare = (2.0 / pl.col(support).clip(lower_bound=2)).pow(decay).clip(upper_bound=1.0)
    return (prior * pl.col(similarity) * rare).cast(pl.Float32)


def combine_weights_expr(weight: str = "weight") -> pl.Expr:
    """Pair strength from several links: noisy-or, 1 - Π(1 - w). Independent evidence adds up,
    but never past 1."""
    return (1.0 - (1.0 - pl.col(weight).clip(0.0, 0.999)).log().sum().exp()).cast(pl.Float32)
