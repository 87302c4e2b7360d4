"""The analyst workbench: the graph the page draws, and verdicts.

Graph reads go through the GraphStore seam like every analyst read (plain `def`, bounded by
`service.graph_timeout_s`, audited, masked). Verdicts go to the verdict store; writing one needs
the investigator's WRITE_VERDICT, reading them READ_GRAPH. A ring verdict records the ring's
members from the served snapshot (every member, no graph read), so the next batch labels exactly
the users the investigator judged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import JSONResponse

from graphfraud.errors import NotFound
from graphfraud.graph.base import MAX_RING_LINKS, GraphStore
from graphfraud.service.auth import ROLE_PERMISSIONS, Permission, Principal
from graphfraud.service.context import ServiceContext
from graphfraud.service.masking import Masking
from graphfraud.service.routes.score import SECURED
from graphfraud.service.schemas import (
    GraphOut,
    VerdictIn,
    VerdictListOut,
    VerdictOut,
    WhoAmIOut,
    error_responses,
)
from graphfraud.service.workbench import (
    DEFAULT_MEMBERS_DRAWN,
    MAX_MEMBERS_DRAWN,
    neighbourhood_graph,
    ring_graph,
)
from graphfraud.verdicts.store import NewVerdict, Subject, Verdict

Id = Annotated[str, Path(min_length=1, max_length=256)]
Drawn = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_MEMBERS_DRAWN,
        description="how many of the ring's members to draw, riskiest first (show more)",
    ),
]
ROLES = "Roles: analyst (PII masked), investigator (unmasked), admin (masked). Audited."


def verdict_out(v: Verdict) -> dict[str, Any]:
    return {
        "id": v.id,
        "subject": v.subject.value,
        "subject_id": v.subject_id,
        "outcome": v.outcome.value,
        "note": v.note,
        "members": len(v.members),
        "key_id": v.key_id,
        "role": v.role,
        "run_id": v.run_id,
        "recorded_at": v.recorded_at,
    }


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["analyst"])
    errors = error_responses(401, 403, 404, 422, 429, 503)

    def masking(who: Principal) -> Masking:
        registry = ctx.holder.serving().snapshot.registry
        return Masking(not who.can(Permission.UNMASKED_PII), registry)

    def ring_payload(g: GraphStore, ring_id: str, drawn: int, mask: Masking) -> dict[str, Any]:
        view = g.ring(ring_id)
        shown = view.members[:drawn]
        holdings = g.holdings([m.user_id for m in shown])
        return ring_graph(view, holdings, mask, drawn=drawn, max_links=MAX_RING_LINKS)

    def near_payload(g: GraphStore, user_id: str, mask: Masking) -> dict[str, Any]:
        near = g.neighbours(user_id)
        ids = [near.user.user_id, *(m.user_id for m in near.neighbours)]
        return neighbourhood_graph(near, g.holdings(ids), mask)

    @router.get(
        "/whoami",
        response_model=WhoAmIOut,
        responses=error_responses(401, 429),
        openapi_extra=SECURED,
        summary="The caller's role and permissions (what the page may offer)",
        description="Roles: any. The key is identified by its fingerprint only.",
    )
    def whoami(request: Request) -> dict[str, Any]:
        who = ctx.authorize(request, Permission.SCORE)
        return {
            "key_id": who.key_id,
            "role": who.role.value,
            "permissions": sorted(p.value for p in ROLE_PERMISSIONS[who.role]),
        }

    @router.get(
        "/users/{user_id}/graph",
        response_model=GraphOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="The graph around a user: its ring (or its direct neighbours) with identifiers",
        description=(
            "Users and the emails, phones, devices and IPs they hold as nodes; look-alike links "
            "between identifiers, each with its evidence; ring links capped per kind (`cut` says "
            "what was left out). `scope=neighbours` gives the user's direct links even when it is "
            "in a ring (expanding a node). " + ROLES
        ),
    )
    def user_graph(
        user_id: Id,
        request: Request,
        scope: Annotated[str, Query(pattern="^(auto|neighbours)$")] = "auto",
        members: Drawn = DEFAULT_MEMBERS_DRAWN,
    ) -> dict[str, Any]:
        ids = {"user_id": user_id}
        who = ctx.authorize_audited(request, Permission.READ_GRAPH, "read_user_graph", ids)
        mask = masking(who)

        def read(g: GraphStore) -> dict[str, Any]:
            ring = g.ring_of(user_id) if scope == "auto" else None
            if ring is None:
                payload = near_payload(g, user_id, mask)
            else:
                payload = ring_payload(g, ring.ring_id, members, mask)
            return {"focus": user_id, **payload}

        return ctx.audited(request, who, "read_user_graph", ids, lambda: ctx.read_graph(read))

    @router.get(
        "/rings/{ring_id}/graph",
        response_model=GraphOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="One ring's graph: members, the identifiers that tie them, links with evidence",
        description=ROLES,
    )
    def ring_graph_route(
        ring_id: Id, request: Request, members: Drawn = DEFAULT_MEMBERS_DRAWN
    ) -> dict[str, Any]:
        ids = {"ring_id": ring_id}
        who = ctx.authorize_audited(request, Permission.READ_GRAPH, "read_ring_graph", ids)
        mask = masking(who)
        return ctx.audited(
            request,
            who,
            "read_ring_graph",
            ids,
            lambda: {
                "focus": None,
                **ctx.read_graph(lambda g: ring_payload(g, ring_id, members, mask)),
            },
        )

    @router.post(
        "/verdicts",
        response_model=VerdictOut,
        status_code=201,
        responses=errors,
        openapi_extra=SECURED,
        summary="Record a verdict on a user or a ring (confirmed_fraud, legit, needs_review)",
        description=(
            "Append-only: a later verdict supersedes an earlier one, nothing is overwritten. The "
            "next batch reads verdicts as labels (`graphfraud run --verdicts`): newest wins, a "
            "user's own verdict over its ring's, `legit` clears a fraud label. A ring verdict "
            "covers the ring's members in the served snapshot. Role: investigator. Audited."
        ),
    )
    def record_verdict(body: VerdictIn, request: Request) -> JSONResponse:
        ids = {body.subject: body.subject_id, "outcome": body.outcome}
        who = ctx.authorize_audited(request, Permission.WRITE_VERDICT, "record_verdict", ids)

        def write() -> dict[str, Any]:
            snapshot = ctx.holder.serving().snapshot
            if body.subject == Subject.USER.value:
                if not snapshot.knows(body.subject_id):
                    raise NotFound(
                        f"no user {body.subject_id!r} in the served snapshot",
                        hint="verdicts are on users and rings the page shows",
                    )
                members: tuple[str, ...] = (body.subject_id,)
            else:
                if snapshot.ring(body.subject_id) is None:
                    raise NotFound(f"no ring {body.subject_id!r} in the served snapshot")
                members = snapshot.ring_members(body.subject_id)
            verdict = ctx.verdicts.store().record(
                NewVerdict(
                    subject=Subject(body.subject),
                    subject_id=body.subject_id,
                    outcome=body.outcome,
                    note=body.note,
                    members=members,
                    key_id=who.key_id,
                    role=who.role.value,
                    run_id=snapshot.info.run_id,
                )
            )
            return verdict_out(verdict)

        out = ctx.audited(request, who, "record_verdict", ids, write)
        return JSONResponse(out, status_code=201)

    @router.get(
        "/verdicts",
        response_model=VerdictListOut,
        responses=errors,
        openapi_extra=SECURED,
        summary="The verdicts on one user or ring, newest first",
        description="Roles: analyst, investigator, admin. Audited.",
    )
    def list_verdicts(
        request: Request,
        subject: Annotated[str, Query(pattern="^(user|ring)$")],
        subject_id: Annotated[str, Query(alias="id", min_length=1, max_length=256)],
    ) -> dict[str, Any]:
        ids = {subject: subject_id}
        who = ctx.authorize_audited(request, Permission.READ_GRAPH, "read_verdicts", ids)
        return ctx.audited(
            request,
            who,
            "read_verdicts",
            ids,
            lambda: {
                "subject": subject,
                "subject_id": subject_id,
                "verdicts": [
                    verdict_out(v) for v in ctx.verdicts.store().of(Subject(subject), subject_id)
                ],
            },
        )

    return router
