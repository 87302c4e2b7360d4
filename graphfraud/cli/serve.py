"""CLI verb: `graphfraud serve --run DIR` (uvicorn; the app is `graphfraud.service.create_app`)."""

from __future__ import annotations

import os
from pathlib import Path

import typer

from graphfraud.config import ServiceSettings

RUN_ENV = "GRAPHFRAUD_SERVE_RUN"  # hands --run to worker processes when --workers > 1
# uvicorn kills a worker that has not answered its supervisor's ping within this many seconds
# (its default, 5 s, is shorter than a spawned worker's imports on a busy host: every worker
# was killed and respawned before it could answer, forever)
WORKER_HEALTHCHECK_S = 60
_SERVICE = ServiceSettings()  # the defaults the help shows (one definition: graphfraud/config.py)
# Served from a runs directory's CURRENT (no --run), the service follows the pointer the nightly
# moves: it checks it this often unless told otherwise.
FOLLOW_POLL_S = 30.0


def serve(
    run: Path | None = typer.Option(
        None,
        "--run",
        envvar=RUN_ENV,
        metavar="DIR",
        show_default="<runs-root>/CURRENT",
        help="finished run directory to serve",
    ),
    host: str | None = typer.Option(
        None,
        "--host",
        metavar="HOST",
        show_default=_SERVICE.host,
        help="address to bind; 0.0.0.0 listens on every interface (containers) "
        "[env: GRAPHFRAUD_SERVICE__HOST]",
    ),
    port: int | None = typer.Option(
        None,
        "--port",
        metavar="PORT",
        min=1,
        max=65535,
        show_default=str(_SERVICE.port),
        help="TCP port to listen on [env: GRAPHFRAUD_SERVICE__PORT]",
    ),
    workers: int | None = typer.Option(
        None,
        "--workers",
        metavar="N",
        min=1,
        show_default=str(_SERVICE.workers),
        help="worker processes, each holding its own snapshot in memory (share today's accounts "
        "between them with GRAPHFRAUD_INTRADAY__BACKEND=redis) [env: GRAPHFRAUD_SERVICE__WORKERS]",
    ),
    runs_root: Path | None = typer.Option(
        None,
        "--runs-root",
        metavar="DIR",
        show_default="the parent of --run",
        help="reloads may only name runs under it; <runs-root>/CURRENT names the run to serve "
        "[env: GRAPHFRAUD_SERVICE__RUNS_ROOT]",
    ),
    reload_poll: float | None = typer.Option(
        None,
        "--reload-poll",
        metavar="SECONDS",
        show_default=f"{FOLLOW_POLL_S:g} without --run (following CURRENT), 0 (off) with it",
        help="seconds between checks of <runs-root>/CURRENT for a new run to swap in; 0 = off "
        "[env: GRAPHFRAUD_SERVICE__RELOAD_POLL_S]",
    ),
    audit_log: Path | None = typer.Option(
        None,
        "--audit-log",
        metavar="FILE",
        show_default=f"{_SERVICE.audit_log}, in the working directory",
        help="append-only audit file, one JSON line per analyst read and admin action "
        "[env: GRAPHFRAUD_SERVICE__AUDIT_LOG]",
    ),
    log_level: str = typer.Option(
        "info",
        "--service-log-level",
        envvar="GRAPHFRAUD_LOG_LEVEL",
        metavar="LEVEL",
        help="level of the service's JSON log lines: debug | info | warning | error",
    ),
) -> None:
    """Serve scores (hot path, in memory), new-user scoring, analyst ring views and ops endpoints.

    Nightly: `graphfraud serve --runs-root RUNS_DIR` serves the run RUNS_DIR/CURRENT names and
    swaps in the next one when `graphfraud nightly` (or the DAG) moves it.

    API keys come from GRAPHFRAUD_SERVICE__API_KEYS, a JSON list of "key:role" or
    "sha256:<hex>:role" (roles: scorer, analyst, investigator, admin). OpenAPI docs at /docs,
    the analyst page at /ui/.
    """
    import uvicorn

    from graphfraud.config import load_settings
    from graphfraud.errors import ConfigError
    from graphfraud.service.app import create_app
    from graphfraud.service.logs import configure_logging, uvicorn_log_config

    settings = load_settings()
    svc = settings.service
    overrides = {
        "host": host,
        "port": port,
        "workers": workers,
        "runs_root": runs_root,
        "reload_poll_s": reload_poll,
        "audit_log": audit_log,
    }
    for name, value in overrides.items():
        if value is not None:
            setattr(svc, name, value)
    if run is None and reload_poll is None and "reload_poll_s" not in svc.model_fields_set:
        svc.reload_poll_s = FOLLOW_POLL_S
        overrides["reload_poll_s"] = FOLLOW_POLL_S  # and so to every worker
    if run is not None and not run.is_dir():
        raise ConfigError(
            f"--run {run} is not a directory", hint="point --run at a finished run directory"
        )
    if run is None and svc.runs_root is None:
        raise ConfigError(
            "nothing to serve", hint="pass --run DIR or --runs-root with a CURRENT file"
        )
    configure_logging(log_level)
    log_config = uvicorn_log_config(log_level)
    common = {
        "host": svc.host,
        "port": svc.port,
        "log_config": log_config,
        "access_log": False,
        "timeout_graceful_shutdown": 10,
    }
    if svc.workers <= 1:
        uvicorn.run(create_app(settings, run), **common)  # type: ignore[arg-type]
        return
    # Several processes: each builds its own app (and snapshot) from the environment.
    env = {
        f"GRAPHFRAUD_SERVICE__{k.upper()}": str(v)
        for k, v in overrides.items()
        if v is not None and k not in ("host", "port", "workers")
    }
    os.environ.update(env)
    if run is not None:
        os.environ[RUN_ENV] = str(run.resolve())
    uvicorn.run(
        "graphfraud.cli.serve:app_from_env",
        factory=True,
        workers=svc.workers,
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
        **common,  # type: ignore[arg-type]
    )


def app_from_env() -> object:
    """uvicorn factory for worker processes (settings and run from the environment)."""
    from graphfraud.config import load_settings
    from graphfraud.service.app import create_app

    run = os.environ.get(RUN_ENV)
    return create_app(load_settings(), Path(run) if run else None)


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
    app.command("serve")(serve)
