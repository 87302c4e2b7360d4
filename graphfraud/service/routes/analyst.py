"""Analyst routes: rings and link explanations through the GraphStore seam, masked and audited.

These are plain `def` handlers (run in the thread pool) because graph stores block; a slow or dead
graph database therefore never touches the event loop that answers the score hot path, and
`ServiceContext.read_graph` bounds each read by `service.graph_timeout_s`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query, Request

from graphfraud.errors import NotFound
from graphfraud.graph.base import LinkExplanation, Member, RingHistory, RingView
from graphfraud.scoring.emerging import EmergingRing, read_emerging_ring
from graphfraud.scoring.suspected import is_suspected
from graphfraud.service.auth import Permission
from graphfraud.service.context import ServiceContext
from graphfraud.service.masking import Masking
from graphfraud.service.routes.score import SECURED
from graphfraud.service.schemas import (
    EmergingRingOut,
    ExplanationOut,
    RingHistoryOut,
    RingOut,
    UserRingResponse,
    error_responses,
)
from graphfraud.service.workbench import link_out

Id = Annotated[str, Path(min_length=1, max_length=256)]
T = TypeVar("T")
DECIMALS = 6


def _num(value: Any) -> Any:
    """Round floats (float32 artifacts read as 0.8700000047683716) and drop NaN."""
    if isinstance(value, float):
        return None if value != value else round(value, DECIMALS)
    return value


def member_out(m: Member, mask: Masking) -> dict[str, Any]:
    return {
        "user_id": m.user_id,
        "score": _num(m.score),
        "email": mask.email(m.email),
        "phone": mask.phone(m.phone),
        "label": m.label,
        "created_at": m.created_at,
    }


def ring_out(view: RingView, mask: Masking) -> dict[str, Any]:
    return {
        "ring_id": view.ring_id,
        "size": view.size,
        "ring_score": _num(view.ring_score),
        "features": {k: _num(v) for k, v in view.features.items()},
        "members": [member_out(m, mask) for m in view.members],
        "links": [link_out(link, mask) for link in view.links],
        "truncated": view.truncated,
        "model_version": view.model_version,
        "masked": mask.masked,
    }


def ring_history_out(history: RingHistory) -> dict[str, Any]:
    """Ids and counts only: a ring's history holds no PII to mask."""
    return {
        "ring_id": history.ring_id,
        "live": history.live,
        "events": [
            {
                "run_id": e.run_id,
                "at": e.at,
                "ring_id": e.ring_id,
                "event": e.event,
                "other_ring_id": e.other_ring_id,
                "size_before": e.size_before,
                "size_after": e.size_after,
                "shared": e.shared,
            }
            for e in history.events
        ],
        "truncated": history.truncated,
    }


def emerging_ring_out(
    ring: EmergingRing, mask: Masking, cut: float = float("inf")
) -> dict[str, Any]:
    """`cut`: the served run's suspected-ring cut (`scoring.suspected`)."""
    return {
        "ring_id": ring.ring_id,
        "size": len(ring.members),
        "ring_score": _num(ring.ring_score),
        "suspected_ring": is_suspected(ring.ring_score, cut),
        "features": {k: _num(v) for k, v in ring.features.items() if k != "ring_id"},
        "members": [
            {
                "user_id": a.user_id,
                "created_at": datetime.fromtimestamp(a.created_at, tz=UTC).isoformat(),
                "score": _num(a.payload.get("sc")),
                "model_score": _num(a.payload.get("ms")),
                "identifiers": {
                    kind: [mask.value(kind, v) for v in values]
                    for kind, values in a.identifiers.items()
                    if not kind.startswith("_")
                },
            }
            for a in ring.members
        ],
        "links": [
            {"user_a": a, "user_b": b, "kind": kind, "weight": _num(w)}
            for a, b, kind, w in ring.links
        ],
        "truncated": ring.truncated,
        "masked": mask.masked,
    }


def explanation_out(exp: LinkExplanation, mask: Masking) -> dict[str, Any]:
    return {
        "user_a": exp.user_a,
        "user_b": exp.user_b,
        "connected": exp.connected,
        "path": list(exp.path),
        "hops": [[link_out(link, mask) for link in hop] for hop in exp.hops],
        "masked": mask.masked,
    }


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["analyst"])
    errors = error_responses(401, 403, 404, 422, 429, 503)

    def graph_read(
        request: Request, action: str, ids: dict[str, Any], read: Callable[[], T]
    ) -> tuple[T, Masking]:
        """One rule for every graph read: READ_GRAPH to see it, audited either way, PII masked
        (by the served run's identifier kinds) unless the caller may see it unmasked."""
        who = ctx.authorize_audited(request, Permission.READ_GRAPH, action, ids)
        result = ctx.audited(request, who, action, ids, read)
        registry = ctx.holder.serving().snapshot.registry
        return result, Masking(not who.can(Permission.UNMASKED_PII), registry)

    @router.get(
        "/users/{user_id}/ring",
        response_model=UserRingResponse,
        responses=errors,
        openapi_extra=SECURED,
        summary="The ring a user belongs to, with members, links and evidence",
        description=(
            "Roles: analyst (PII masked), investigator (unmasked), admin (masked). Audited."
        ),
    )
    def user_ring(user_id: Id, request: Request) -> dict[str, Any]:
        ids = {"user_id": user_id}
        view, mask = graph_read(
            request, "read_user_ring", ids, lambda: ctx.read_graph(lambda g: g.ring_of(user_id))
        )
        return {"user_id": user_id, "ring": ring_out(view, mask) if view is not None else None}

    @router.get(
        "/rings/{ring_id}",
        response_model=RingOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="One ring by id",
        description=(
            "Roles: analyst (PII masked), investigator (unmasked), admin (masked). Audited."
        ),
    )
    def ring_detail(ring_id: Id, request: Request) -> dict[str, Any]:
        ids = {"ring_id": ring_id}
        view, mask = graph_read(
            request, "read_ring", ids, lambda: ctx.read_graph(lambda g: g.ring(ring_id))
        )
        return ring_out(view, mask)

    @router.get(
        "/rings/{ring_id}/history",
        response_model=RingHistoryOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="What happened to a ring id across batch runs, live or retired",
        description=(
            "Ring lineage (`graphfraud.rings.lineage`): born, grew, shrank, merged_into, "
            "split_from, dissolved, with member counts, oldest first. A ring keeps its id while "
            "a ring holds most of its members; a retired id keeps its history and is never "
            "issued again. Roles: analyst, investigator, admin. Audited."
        ),
    )
    def ring_history(ring_id: Id, request: Request) -> dict[str, Any]:
        ids = {"ring_id": ring_id}
        history, _ = graph_read(
            request,
            "read_ring_history",
            ids,
            lambda: ctx.read_graph(lambda g: g.ring_history(ring_id)),
        )
        return ring_history_out(history)

    @router.get(
        "/links/explain",
        response_model=ExplanationOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="Why two users are linked: shortest chain of links with evidence",
        description=(
            "Roles: analyst (PII masked), investigator (unmasked), admin (masked). Audited."
        ),
    )
    def explain(
        request: Request,
        a: Annotated[str, Query(min_length=1, max_length=256, examples=["u000123"])],
        b: Annotated[str, Query(min_length=1, max_length=256, examples=["u000456"])],
    ) -> dict[str, Any]:
        ids = {"a": a, "b": b}
        exp, mask = graph_read(
            request, "explain_link", ids, lambda: ctx.read_graph(lambda g: g.explain_link(a, b))
        )
        return explanation_out(exp, mask)

    @router.get(
        "/emerging-rings/{ring_id}",
        response_model=EmergingRingOut,
        responses=error_responses(401, 403, 404, 422, 429, 503),
        openapi_extra=SECURED,
        summary="A ring forming among accounts scored since the last batch",
        description=(
            "From the intraday store (no graph database): the members oldest first with their "
            "online scores, the links among them, the batch's ring features over them and the "
            "ring's score from the members' model scores. The next batch records which of its "
            "rings grew from it. Roles: analyst, investigator, admin (identifiers masked unless "
            "investigator). Audited."
        ),
    )
    def emerging_ring(ring_id: Id, request: Request) -> dict[str, Any]:
        principal = ctx.authorize_audited(
            request, Permission.READ_GRAPH, "read_emerging_ring", {"ring_id": ring_id}
        )
        store = ctx.intraday.store
        if store is None:
            raise NotFound("no intraday store is configured")
        snapshot = ctx.holder.serving().snapshot
        registry = snapshot.registry
        mask = Masking(not principal.can(Permission.UNMASKED_PII), registry)

        def read() -> dict[str, Any]:
            ring = read_emerging_ring(store, ring_id, registry)
            if ring is None:
                raise NotFound(
                    f"no emerging ring {ring_id!r}",
                    hint="its accounts left the store (a snapshot has them, or they expired)",
                )
            return emerging_ring_out(ring, mask, snapshot.info.ring_cut)

        return ctx.audited(request, principal, "read_emerging_ring", {"ring_id": ring_id}, read)

    return router
