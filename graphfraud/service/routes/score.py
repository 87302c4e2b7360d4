"""Real-time scorer routes: the precomputed lookup (hot path) and the on-the-fly score."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from graphfraud.scoring.online import canonical_identity, score_new_user
from graphfraud.scoring.reasons import reason_table
from graphfraud.service.auth import Permission
from graphfraud.service.context import ServiceContext
from graphfraud.service.errors import BadRequest
from graphfraud.service.masking import mask_value
from graphfraud.service.schemas import (
    REQUEST_FIELD,
    NewUserRequest,
    OnlineScoreResponse,
    ScoreResponse,
    VocabularyResponse,
    error_responses,
)

SECURED: dict[str, Any] = {"security": [{"ApiKeyAuth": []}]}
MAX_MATCHES_SHOWN = 100
JSON = "application/json"


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["score"])
    keys = ctx.keys
    holder = ctx.holder
    unknown = ctx.metrics.unknown_users

    @router.get(
        "/users/{user_id}/score",
        response_model=ScoreResponse,
        responses=error_responses(401, 403, 422, 503),
        openapi_extra=SECURED,
        summary="Precomputed score of a user (in-memory lookup)",
        description=(
            "Answered from the in-memory snapshot only: no database, no model. An unknown "
            'user gets 200 with `known: false`, `reasons: ["UNKNOWN_USER"]` and the '
            "snapshot's neutral score (its base rate: the mean score of all scored users). "
            "Roles: any."
        ),
    )
    async def user_score(
        user_id: Annotated[str, Path(min_length=1, max_length=256, examples=["u000123"])],
        request: Request,
    ) -> Response:
        principal = keys.authorize(request.headers.get("x-api-key"), Permission.SCORE)
        request.scope.setdefault("state", {})["key_id"] = principal.key_id
        body, known = holder.serving().snapshot.score_json(user_id)
        if not known:
            unknown.inc()
        return Response(body, media_type=JSON)

    @router.post(
        "/score",
        response_model=OnlineScoreResponse,
        responses=error_responses(401, 403, 413, 422, 503),
        openapi_extra=SECURED,
        summary="Score an account the last batch has not seen",
        description=(
            "Normalises the identifiers with the batch's rules, links them to snapshot users "
            "by exact and fuzzy index lookups (email stem block + Levenshtein, sequential "
            "phones) and scores with a noisy-or of link weight × neighbour score and the "
            "best-matched ring's score (see `graphfraud.scoring.online`). Matched users' "
            "emails and phones are masked. Roles: any."
        ),
    )
    async def score_new(body: NewUserRequest, request: Request) -> Response:
        ctx.authorize(request, Permission.SCORE)
        snapshot = holder.serving().snapshot
        registry = snapshot.registry
        extra = [n for n in registry.names if n not in REQUEST_FIELD]
        unknown = sorted(set(body.identifiers) - set(extra))
        if unknown:
            raise BadRequest(
                f"identifiers: unknown kind {unknown[0]!r}",
                hint=(
                    f"use the field {REQUEST_FIELD[unknown[0]]!r}"
                    if unknown[0] in REQUEST_FIELD
                    else f"kinds here: {', '.join(extra) or 'none'} (GET /v1/vocabulary)"
                ),
            )
        identity, rejected_kinds = canonical_identity(
            body.raw_identifiers(),
            registry=registry,
            region=body.region or ctx.settings.ingest.default_region,
        )
        rejected = [body.field_of(kind) for kind in rejected_kinds]
        result = score_new_user(
            snapshot, identity, ctx.settings.link, ring_min_weight=ctx.settings.rings.min_weight
        )
        ctx.metrics.online_scores.labels("yes" if result.matches else "no").inc()
        payload = {
            "user_id": body.user_id,
            "known": False,
            "score": result.score,
            "ring_id": result.ring_id,
            "ring_score": result.ring_score,
            "ring_strength": result.ring_strength,
            "reasons": result.reasons,
            "model_version": result.model_version,
            "scored_at": result.scored_at,
            "snapshot": result.snapshot,
            "matches": [
                {
                    "kind": m.kind,
                    "user_id": m.user_id,
                    "value": m.value,
                    "matched_value": mask_value(m.kind, m.matched_value, registry),
                    "similarity": m.similarity,
                    "support": m.support,
                    "weight": m.weight,
                    "user_score": float(snapshot.score[m.row]),
                    "ring_id": snapshot.record(m.row).ring_id,
                }
                for m in result.matches[:MAX_MATCHES_SHOWN]
            ],
            "matches_total": len(result.matches),
            "hubs": [{"kind": h.kind, "value": h.value, "support": h.support} for h in result.hubs],
            "rejected": rejected,
        }
        return Response(orjson.dumps(payload), media_type=JSON)

    @router.get(
        "/vocabulary",
        response_model=VocabularyResponse,
        responses=error_responses(401, 503),
        openapi_extra=SECURED,
        summary="Identifier kinds, link kinds and reason codes of the served snapshot, in words",
        description=(
            "What the scores and the page speak of: each identifier kind (built in or declared "
            "in settings) with its link kinds and legend colours, and every reason code with its "
            "wording, most important first. Roles: any."
        ),
    )
    async def vocabulary(request: Request) -> Response:
        ctx.authorize(request, Permission.SCORE)
        registry = holder.serving().snapshot.registry
        payload = {
            "identifiers": registry.public(),
            "reasons": [
                {"code": r.code, "text": r.text, "priority": r.priority}
                for r in reason_table(registry).values()
            ],
        }
        return Response(orjson.dumps(payload), media_type=JSON)

    return router
