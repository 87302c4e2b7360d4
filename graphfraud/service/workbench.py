"""The analyst page's graph: users and the identifiers they hold as nodes, masked per role.

A user connects to the emails, phones, devices and IPs it holds; a look-alike link
(`email_similar`, `phone_sequential`, …) connects the two identifiers it compares; an exact link
(two users sharing a value) is the shared identifier itself, so a device held by 150 accounts is
one hub with 150 spokes instead of a 150-clique. Only identifiers that tie something are drawn:
held by two or more of the drawn users, or an end of a drawn link.

Node ids never carry a value (`i:<kind>:<digest>`): a masked caller sees the masked value as the
label and cannot read the raw one back from an id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphfraud.graph.base import Holding, LinkEvidence, Member, Neighbourhood, RingView
from graphfraud.rings.wording import ring_in_words
from graphfraud.service.masking import Masking, mask_text

DEFAULT_MEMBERS_DRAWN = 150  # a bigger ring is drawn riskiest first, with "show more"
MAX_MEMBERS_DRAWN = 500


def user_node_id(user_id: str) -> str:
    return f"u:{user_id}"


def identifier_node_id(kind: str, value: str) -> str:
    digest = hashlib.sha256(f"{kind}\x00{value}".encode()).hexdigest()[:16]
    return f"i:{kind}:{digest}"


@dataclass(frozen=True)
class GraphView:
    """What one graph request draws: users (riskiest first), the ring's links among them, and
    the identifiers those users hold."""

    users: tuple[Member, ...]
    links: tuple[LinkEvidence, ...]
    holdings: tuple[Holding, ...]


def _user_node(m: Member, mask: Masking, ring_members: set[str]) -> dict[str, Any]:
    return {
        "id": user_node_id(m.user_id),
        "type": "user",
        "user_id": m.user_id,
        "score": _num(m.score),
        "label": m.label,
        "email": mask.email(m.email),
        "phone": mask.phone(m.phone),
        "created_at": m.created_at,
        "in_ring": m.user_id in ring_members,
    }


def _num(value: float | None) -> float | None:
    return None if value is None or value != value else round(float(value), 6)


def link_out(link: LinkEvidence, mask: Masking) -> dict[str, Any]:
    evidence = link.evidence
    if mask.masked:
        for raw in (link.value_a, link.value_b):
            masked_raw = mask.value(link.kind, raw)
            if raw and masked_raw and masked_raw != raw:
                evidence = evidence.replace(raw, masked_raw)
        evidence = mask_text(evidence)
    return {
        "user_a": link.user_a,
        "user_b": link.user_b,
        "kind": link.kind,
        "value_a": mask.value(link.kind, link.value_a),
        "value_b": mask.value(link.kind, link.value_b),
        "similarity": _num(link.similarity),
        "support": link.support,
        "weight": _num(link.weight),
        "evidence": evidence,
    }


def graph_elements(
    view: GraphView, mask: Masking, ring_members: Iterable[str] = ()
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(nodes, edges) for the page, every value masked by `mask`."""
    registry = mask.registry
    drawn = {m.user_id for m in view.users}
    in_ring = set(ring_members)
    holders_here: dict[tuple[str, str], list[str]] = {}
    holders_all: dict[tuple[str, str], int] = {}
    for h in view.holdings:
        if h.user_id in drawn:
            holders_here.setdefault((h.kind, h.value), []).append(h.user_id)
            holders_all[(h.kind, h.value)] = h.holders
    wanted = {key for key, users in holders_here.items() if len(users) >= 2}
    edges: list[dict[str, Any]] = []
    for link in view.links:
        if link.user_a not in drawn or link.user_b not in drawn:
            continue
        kind = registry.exact_kind_of(link.kind) if registry.spec_of_link(link.kind) else None
        ends = (
            (kind, link.value_a, link.user_a),
            (kind, link.value_b, link.user_b),
        )
        held = kind is not None and all(
            v is not None and u in holders_here.get((kind, v), ()) for _, v, u in ends
        )
        payload = link_out(link, mask)
        if held and kind is not None and link.value_a == link.value_b and link.kind == kind:
            continue  # an exact link is the shared identifier node itself
        if held and kind is not None and link.value_a is not None and link.value_b is not None:
            wanted.update({(kind, link.value_a), (kind, link.value_b)})
            source = identifier_node_id(kind, link.value_a)
            target = identifier_node_id(kind, link.value_b)
        else:  # no identifier to hang it on: a user-to-user edge carries the evidence
            source, target = user_node_id(link.user_a), user_node_id(link.user_b)
        edges.append(
            {
                "id": f"l:{link.kind}:{link.user_a}:{link.user_b}",
                "source": source,
                "target": target,
                "relation": "link",
                **payload,
            }
        )
    nodes = [_user_node(m, mask, in_ring) for m in view.users]
    for kind, value in sorted(wanted):
        users_here = sorted(holders_here.get((kind, value), []))
        spec = registry.spec_of_link(kind)
        label = spec.label if spec is not None else kind
        nodes.append(
            {
                "id": identifier_node_id(kind, value),
                "type": "identifier",
                "kind": kind,
                "value": mask.value(kind, value),
                "holders": holders_all.get((kind, value), len(users_here)),
                "held_here": len(users_here),
                "evidence": _holders_words(
                    label,
                    mask.value(kind, value) or "",
                    holders_all.get((kind, value), 0),
                    users_here,
                ),
            }
        )
        edges += [
            {
                "id": f"h:{kind}:{u}:{identifier_node_id(kind, value)}",
                "source": user_node_id(u),
                "target": identifier_node_id(kind, value),
                "relation": "holds",
                "kind": kind,
            }
            for u in users_here
        ]
    return nodes, edges


def _holders_words(label: str, shown: str, holders: int, here: Sequence[str]) -> str:
    """ "device a3f9… used by 150 accounts (150 drawn here)"."""
    total = max(holders, len(here))
    return (
        f"{label} {shown} used by {total} account{'s' if total != 1 else ''}"
        f" ({len(here)} drawn here)"
    )


def _cut_words(cut_kinds: Sequence[str], max_links: int) -> list[str]:
    return [
        f"{kind}: only the strongest {max_links} links are shown; weaker ones were cut"
        for kind in cut_kinds
    ]


def ring_graph(
    ring: RingView,
    holdings: Sequence[Holding],
    mask: Masking,
    *,
    drawn: int,
    max_links: int,
) -> dict[str, Any]:
    """The page's payload for one ring: its riskiest `drawn` members, their links and ties."""
    users = ring.members[:drawn]
    nodes, edges = graph_elements(
        GraphView(users, ring.links, tuple(holdings)), mask, (m.user_id for m in ring.members)
    )
    cut = _cut_words(ring.cut_kinds, max_links)
    if len(ring.members) < ring.size:
        cut.append(
            f"the ring has {ring.size} members; the {len(ring.members)} riskiest can be listed"
        )
    return {
        "ring": {
            "ring_id": ring.ring_id,
            "size": ring.size,
            "ring_score": _num(ring.ring_score),
            "features": {
                k: (_num(v) if isinstance(v, float) else v) for k, v in ring.features.items()
            },
            "features_text": ring_in_words({**ring.features, "size": ring.size}, all_features=True),
            "model_version": ring.model_version,
            "truncated": ring.truncated,
            "cut_kinds": list(ring.cut_kinds),
        },
        "members": [
            {"user_id": m.user_id, "score": _num(m.score), "label": m.label} for m in ring.members
        ],
        "drawn_members": len(users),
        "more_members": max(0, len(ring.members) - len(users)),
        "nodes": nodes,
        "edges": edges,
        "cut": cut,
        "masked": mask.masked,
    }


def neighbourhood_graph(
    near: Neighbourhood, holdings: Sequence[Holding], mask: Masking
) -> dict[str, Any]:
    """The page's payload for a user in no ring (or a node being expanded): it, its direct
    neighbours and the links between them."""
    users = (near.user, *(m for m in near.neighbours if m.user_id != near.user.user_id))
    nodes, edges = graph_elements(GraphView(users, near.links, tuple(holdings)), mask)
    return {
        "ring": None,
        "members": [],
        "drawn_members": len(users),
        "more_members": 0,
        "nodes": nodes,
        "edges": edges,
        "cut": (
            [f"only the strongest {len(near.links)} of this user's links are shown"]
            if near.truncated
            else []
        ),
        "masked": mask.masked,
    }
