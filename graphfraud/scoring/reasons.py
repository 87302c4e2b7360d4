"""Reason codes: one table, with wording, shared by the batch, the online scorer, the API, the CLI
and the page.

Each identifier link kind brings its own reason (`identifiers.LinkRule.reason`); the codes below
are the ones about rings, labels and the online path. `priority` orders the reasons of one user
(lower first): what an analyst should read first — confirmed fraud nearby, then the strongest
identity evidence, then the ring's shape.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphfraud.identifiers import BUILTIN, IdentifierRegistry


@dataclass(frozen=True)
class Reason:
    code: str
    text: str
    priority: int


FIXED_REASONS: tuple[Reason, ...] = (
    Reason("UNKNOWN_USER", "not in the last batch run: the neutral score (the base rate)", 0),
    Reason("NEW_USER", "an account the last batch has not seen, scored from its identifiers", 1),
    Reason("NEAR_RING", "strongly tied to the members of a known ring", 5),
    Reason(
        "EMERGING_RING",
        "in a ring forming among accounts that signed up since the last batch",
        6,
    ),
    Reason("RING_LABELLED_FRAUD", "is in a ring with accounts confirmed as fraud", 10),
    Reason("NEAR_LABELLED_FRAUD", "is linked to an account confirmed as fraud", 20),
    Reason(
        "SIGNUP_BURST", "is in a ring of 3+ whose members mostly signed up within 48 hours", 80
    ),
    Reason("DENSE_RING", "is in a ring of 3+ where most members are linked to each other", 90),
    Reason("HUB_DEVICE", "uses a device too many accounts share to link on (emulator, kiosk)", 110),
    Reason("HUB_IDENTIFIER", "holds an identifier shared by too many accounts to link on", 120),
)  # fmt: skip


def reason_table(registry: IdentifierRegistry = BUILTIN) -> dict[str, Reason]:
    """Every reason code a run with this registry can give, in priority order."""
    reasons = [
        *FIXED_REASONS,
        *(Reason(r.reason, r.reason_text, r.reason_priority) for r in registry.rules),
    ]
    return {r.code: r for r in sorted(reasons, key=lambda r: (r.priority, r.code))}


def reason_text(code: str, registry: IdentifierRegistry = BUILTIN) -> str:
    """The wording of a code; an unknown code is shown as itself, never dropped."""
    found = reason_table(registry).get(code)
    return found.text if found else code
