"""Real-time scorer routes: the precomputed lookup (hot path) and the on-the-fly score.

`POST /v1/score` answers every role with the verdict (score, ring, reasons) and how many links
of each kind it rests on. Which customers those links reach — their ids, values, scores — is
evidence for roles that may read the graph (`Permission.READ_GRAPH`), audited like every
analyst read: otherwise a scorer key would be a reverse lookup from an email or a phone to the
accounts holding it.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from graphfraud.scoring.online import OnlineScore, canonical_identity, score_new_user
from graphfraud.scoring.reasons import reason_table
from graphfraud.scoring.snapshot import ScoreSnapshot
from graphfraud.service.auth import Permission
from graphfraud.service.context import ServiceContext
from graphfraud.service.errors import BadRequest
from graphfraud.service.masking import Masking
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


def evidence(result: OnlineScore, snapshot: ScoreSnapshot, mask: Masking) -> dict[str, Any]:
    """The matched accounts and hub identifiers behind a verdict (READ_GRAPH roles only)."""
    return {
        "matches": [
            {
                "kind": m.kind,
                "user_id": m.user_id,
                "value": m.value,
                "matched_value": mask.value(m.kind, m.matched_value),
                "similarity": m.similarity,
                "support": m.support,
                "weight": m.weight,
                "user_score": float(snapshot.score[m.row]),
                "ring_id": snapshot.record(m.row).ring_id,
            }
            for m in result.matches[:MAX_MATCHES_SHOWN]
        ],
        "hubs": [{"kind": h.kind, "value": h.value, "support": h.support} for h in result.hubs],
    }


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["score"])
    holder = ctx.holder
    unknown = ctx.metrics.unknown_users

    @router.get(
        "/users/{user_id}/score",
        response_model=ScoreResponse,
        responses=error_responses(401, 403, 422, 429, 503),
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
        ctx.authorize(request, Permission.SCORE)
        body, known = holder.serving().snapshot.score_json(user_id)
        if not known:
            unknown.inc()
        return Response(body, media_type=JSON)

    @router.post(
        "/score",
        response_model=OnlineScoreResponse,
        responses=error_responses(401, 403, 413, 422, 429, 503),
        openapi_extra=SECURED,
        summary="Score an account the last batch has not seen",
        description=(
            "Normalises the identifiers with the batch's rules, links them to snapshot users "
            "by exact and fuzzy index lookups (email stem block + Levenshtein, sequential "
            "phones) and scores with a noisy-or of link weight × neighbour score and the "
            "best-matched ring's score (see `graphfraud.scoring.online`). Roles: any. A "
            "scorer gets the verdict and `match_counts` only (`matches` and `hubs` are null); "
            "analyst, investigator and admin also get the matched accounts with their evidence "
            "(emails and phones masked unless investigator), and that disclosure is audited."
        ),
    )
    async def score_new(body: NewUserRequest, request: Request) -> Response:
        principal = ctx.authorize(request, Permission.SCORE)
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
        payload: dict[str, Any] = {
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
            "match_counts": dict(Counter(m.kind for m in result.matches)),
            "matches_total": len(result.matches),
            "matches": None,
            "hubs": None,
            "rejected": rejected,
        }
        if principal.can(Permission.READ_GRAPH):
            mask = Masking(not principal.can(Permission.UNMASKED_PII), registry)
            shown = [m.user_id for m in result.matches[:MAX_MATCHES_SHOWN]]
            ids = {"user_id": body.user_id, "matched": shown}
            payload |= ctx.audited(
                request,
                principal,
                "score_new_account",
                ids,
                lambda: evidence(result, snapshot, mask),
            )
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
