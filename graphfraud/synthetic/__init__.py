"""Seeded synthetic checkout / BNPL population with planted fraud rings and a truth file.

`generate_population(n_users, seed)` returns users and device sightings exactly as the batch input
contract expects them (raw, messy strings) plus the truth (`graphfraud.schema.TRUTH_SCHEMA`).
Honest users are built to be hard: Zipf-popular Indian names give thousands of look-alike emails,
families and cyber-cafés share devices and IPs, carriers put many users behind one NAT address.
Rings share identifiers only partly (70-90 % of members per signal), and most are unlabelled.
"""

from __future__ import annotations

from graphfraud.synthetic.population import (
    LabelPolicy,
    Population,
    generate_population,
    summarize,
    write_population,
)
from graphfraud.synthetic.rings import (
    BASE_RECIPES,
    HARD_RECIPES,
    RECIPES,
    RING_KINDS,
    RingRecipes,
)

__all__ = [
    "BASE_RECIPES",
    "HARD_RECIPES",
    "RECIPES",
    "RING_KINDS",
    "LabelPolicy",
    "Population",
    "RingRecipes",
    "generate_population",
    "summarize",
    "write_population",
]
