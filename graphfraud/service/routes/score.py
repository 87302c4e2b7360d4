"""Real-time scorer routes: the precomputed lookup (hot path) and the on-the-fly score.

`POST /v1/score` answers every role with the verdict (score, ring, reasons) and how many links
of each kind it rests on. Which customers those links reach — their ids, values, scores — is
evidence for roles that may read the graph (`Permission.READ_GRAPH`), audited like every
analyst read: otherwise a scorer key would be a reverse lookup from an email or a phone to the
accounts holding it.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from graphfraud.scoring.account import AccountScore, Scorer, score_account
from graphfraud.scoring.decision import Bands
from graphfraud.scoring.online import canonical_identity
from graphfraud.scoring.reasons import reason_table
from graphfraud.scoring.store import ScoreStore
from graphfraud.scoring.today import AccountRequest
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


def evidence(result: AccountScore, snapshot: ScoreStore, mask: Masking) -> dict[str, Any]:
    """The matched accounts and hub identifiers behind a verdict (READ_GRAPH roles only)."""
    matches = []
    for lk in result.links[:MAX_MATCHES_SHOWN]:
        record = None if lk.intraday else snapshot.user(lk.user_id)
        matches.append(
            {
                "kind": lk.kind,
                "user_id": lk.user_id,
                "today": lk.intraday,
                "value": lk.value,
                "matched_value": mask.value(lk.kind, lk.matched_value),
                "similarity": lk.similarity,
                "support": lk.support,
                "weight": lk.weight,
                "user_score": None if record is None else record.score,
                "ring_id": None if record is None else record.ring_id,
            }
        )
    hubs = [{"kind": h.kind, "value": h.value, "support": h.support} for h in result.hubs]
    return {"matches": matches, "hubs": hubs}


def build_router(ctx: ServiceContext) -> APIRouter:
    router = APIRouter(prefix="/v1", tags=["score"])
    holder = ctx.holder
    unknown = ctx.metrics.unknown_users
    bands = Bands.of(ctx.settings.decision)  # the operating point this service serves

    @router.get(
        "/users/{user_id}/score",
        response_model=ScoreResponse,
        responses=error_responses(401, 403, 422, 429, 503),
        openapi_extra=SECURED,
        summary="Precomputed score of a user (score-store lookup)",
        description=(
            "Answered from the served run's score store only: no database, no model. An unknown "
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
        body, known = holder.serving().snapshot.score_json(user_id, bands)
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
            "Normalises the identifiers with the batch's rules and links them, by the batch's "
            "rules and weights, to snapshot users and to the accounts scored since the snapshot "
            "(the intraday store, shared by the replicas). A strong tie to one of those forms or "
            "joins an emerging ring. The run's model scores the account on the batch's features "
            "of it and its neighbourhood, blended with its ring's score as the batch blends "
            "(see `graphfraud.scoring.account`): ties only to long-standing good customers can "
            "score below the neutral score. The account is recorded (by `user_id`; "
            "`record: false` is a what-if). Store down or no online model: `degraded` says "
            "what was done without. Roles: any. A "
            "scorer gets the verdict and `match_counts` only (`matches` and `hubs` are null); "
            "analyst, investigator and admin also get the matched accounts with their evidence "
            "(emails and phones masked unless investigator), and that disclosure is audited."
        ),
    )
    def score_new(body: NewUserRequest, request: Request) -> Response:
        # A plain `def`: the intraday store is a blocking client, so FastAPI runs this in its
        # thread pool and the event loop keeps answering the precomputed lookups.
        principal = ctx.authorize(request, Permission.SCORE)
        serving = holder.serving()
        snapshot = serving.snapshot
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
        raw = body.raw_identifiers()
        identity, rejected_kinds = canonical_identity(
            raw, registry=registry, region=body.region or ctx.settings.ingest.default_region
        )
        rejected = [body.field_of(kind) for kind in rejected_kinds]
        created = body.created_at.astimezone(UTC) if body.created_at else datetime.now(UTC)
        account = AccountRequest(
            user_id=body.user_id or "",
            identity=identity,
            raw=raw,
            created_at=created,
            record=body.record and bool(body.user_id),
        )
        scorer = Scorer(
            snapshot, serving.online, ctx.intraday.store, ctx.settings.link, ctx.settings.rings
        )
        result = score_account(scorer, account)
        if "intraday" in result.degraded:
            ctx.intraday.unavailable()
        ctx.metrics.online_scores.labels("yes" if result.links else "no").inc()
        payload: dict[str, Any] = {
            "user_id": body.user_id,
            "known": False,
            "score": result.score,
            "band": bands.of_score(result.score),
            "model_score": result.model_score,
            "ring_id": result.ring_id,
            "emerging": result.emerging,
            "ring_size": result.ring_size,
            "suspected_ring": result.suspected_ring,
            "ring_score": result.ring_score,
            "ring_strength": result.ring_strength,
            "reasons": result.reasons,
            "model_version": result.model_version,
            "model_part": result.model_part,
            "scored_at": result.scored_at,
            "snapshot": result.snapshot,
            "match_counts": dict(Counter(lk.kind for lk in result.links)),
            "matches_total": len(result.links),
            "matches": None,
            "hubs": None,
            "rejected": rejected,
            "recorded": result.recorded,
            "degraded": list(result.degraded),
        }
        if principal.can(Permission.READ_GRAPH):
            mask = Masking(not principal.can(Permission.UNMASKED_PII), registry)
            shown = [lk.user_id for lk in result.links[:MAX_MATCHES_SHOWN]]
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
