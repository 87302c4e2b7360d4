"""The FastAPI app factory: `create_app(settings, run_dir, graph_store)`.

Start-up loads the run's snapshot in a background thread (so `/healthz` answers at once and
`/readyz` is 503 until it is in memory), optionally starts polling `<runs_root>/CURRENT`, and
opens the audit log. Nothing is global: two apps in one process share no state.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from graphfraud import __version__
from graphfraud.config import Settings
from graphfraud.errors import GraphFraudError
from graphfraud.graph.base import GraphStore
from graphfraud.model.registry import ModelRegistry
from graphfraud.scoring.intraday import open_intraday_store
from graphfraud.scoring.store import open_score_store
from graphfraud.service.audit import AuditLog
from graphfraud.service.auth import API_KEY_HEADER, KeyRing
from graphfraud.service.context import ServiceContext
from graphfraud.service.errors import install_error_handlers
from graphfraud.service.headers import docs_page
from graphfraud.service.intraday import IntradayService
from graphfraud.service.logs import ServiceMiddleware
from graphfraud.service.metrics import ServiceMetrics
from graphfraud.service.ratelimit import FailedAuthLimiter
from graphfraud.service.routes import admin, analyst, ops, score, workbench
from graphfraud.service.state import SnapshotHolder
from graphfraud.service.verdicts import VerdictAccess

log = logging.getLogger("graphfraud.service")
STATIC_DIR = Path(__file__).parent / "static"
VERDICTS_FILE = "verdicts.sqlite3"  # beside the audit log unless GRAPHFRAUD_VERDICTS__* say

DESCRIPTION = f"""Fraud-ring scores for the real-time scorer, rings and link evidence for analysts.

Send your key in the `{API_KEY_HEADER}` header. Roles: `scorer` (scores), `analyst` (+ rings,
PII masked), `investigator` (+ unmasked PII, verdicts), `admin` (+ reload). Errors are
`{{"error", "detail", "hint"}}`. The analyst page is at [/ui/](/ui/).
"""


def swagger_assets() -> Path:
    """Swagger UI's files, shipped by the swagger-ui-bundle package (so /docs needs no CDN)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(str(swagger_ui_path))


def _graph_factory(settings: Settings) -> Any:
    # A read nobody waits for need not be retried: the driver gives up within the route's budget.
    budget = settings.service.graph_timeout_s
    graph = settings.graph.model_copy(
        update={
            "retry_time_s": min(settings.graph.retry_time_s, budget),
            "connect_timeout_s": min(settings.graph.connect_timeout_s, budget),
        }
    )

    def open_store(run_dir: Path) -> GraphStore | None:
        try:
            from graphfraud.graph.factory import open_graph_store
        except ImportError:  # the graph package is optional for a scores-only replica
            return None
        try:
            return open_graph_store(graph, run_dir)
        except GraphFraudError as exc:
            log.warning(
                "graph store not available; analyst routes will answer 503",
                extra={"error": str(exc)},
            )
            return None

    return open_store


def create_app(
    settings: Settings, run_dir: Path | None = None, graph_store: GraphStore | None = None
) -> FastAPI:
    """Build the app. `run_dir`: the run to serve (else `<runs_root>/CURRENT`); `graph_store`: the
    store analysts read through (default: `open_graph_store(settings.graph, run_dir)` per
    snapshot)."""
    svc = settings.service
    runs_root = svc.runs_root or (run_dir.resolve().parent if run_dir is not None else None)
    metrics = ServiceMetrics()
    intraday = IntradayService(open_intraday_store(settings.intraday), metrics)
    holder = SnapshotHolder(
        runs_root=runs_root,
        metrics=metrics,
        graph_store=graph_store,
        graph_factory=None if graph_store is not None else _graph_factory(settings),
        min_user_ratio=svc.swap_min_user_ratio,
        model_registry=ModelRegistry(
            settings.model.registry, signing_key=settings.model.signing_key
        ),
        model_device=settings.model.device,
        on_swap=intraday.forget_known,
        open_scores=functools.partial(
            open_score_store, backend=svc.score_store, verify=svc.score_store_verify
        ),
    )
    keys = KeyRing.parse(svc.api_keys)
    audit = AuditLog(svc.audit_log)
    ctx = ServiceContext(
        settings=settings,
        holder=holder,
        keys=keys,
        audit=audit,
        metrics=metrics,
        limiter=FailedAuthLimiter(svc.auth_fail_budget, svc.auth_fail_window_s),
        intraday=intraday,
        verdicts=VerdictAccess(
            settings.verdicts.target(svc.audit_log.parent / VERDICTS_FILE) or VERDICTS_FILE
        ),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not len(keys):
            log.warning("no API keys configured: every protected route answers 401")
        audit.open()
        if holder.current is None and holder.status().loading is None:
            first = run_dir.resolve() if run_dir is not None else holder.current_pointer()
            if first is not None:
                holder.load_in_background(first)
            else:
                log.warning("no run to serve: pass --run or write <runs_root>/CURRENT")
        holder.start_polling(svc.reload_poll_s)
        try:
            yield
        finally:
            holder.close()
            ctx.close()
            intraday.close()
            ctx.verdicts.close()
            audit.close()

    app = FastAPI(
        title="graphfraud",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below, with a CSP that pins its inline script
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.holder = holder
    install_error_handlers(app)
    app.include_router(score.build_router(ctx))
    app.include_router(analyst.build_router(ctx))
    app.include_router(workbench.build_router(ctx))
    app.include_router(admin.build_router(ctx))
    app.include_router(ops.build_router(ctx))

    @app.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/ui/")

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> Response:
        root_path = request.scope.get("root_path", "").rstrip("/")
        return docs_page(
            f"{root_path}/openapi.json", f"{app.title} - Swagger UI", f"{root_path}/docs/assets"
        )

    app.mount("/docs/assets", StaticFiles(directory=swagger_assets()), name="docs-assets")

    if STATIC_DIR.is_dir():
        app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui")

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            schema.setdefault("components", {})["securitySchemes"] = {
                "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}
            }
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(
        ServiceMiddleware,
        metrics=metrics,
        max_body_bytes=svc.max_body_bytes,
        log_access=svc.access_log,
    )
    return app
