"""`graphfraud intraday …`: the intraday store of accounts scored since the last snapshot."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

intraday_app = typer.Typer(
    help="The intraday store (GRAPHFRAUD_INTRADAY__*): accounts scored since the last snapshot.",
    no_args_is_help=True,
)


@intraday_app.command("export")
def export(
    out: Path = typer.Option(
        ..., "--out", metavar="FILE", help="Parquet file to write (user_id, emerging_ring_id)"
    ),
) -> None:
    """Write the emerging-ring memberships of the shared store (Redis / Valkey), for tonight's
    batch to adopt: `graphfraud run … --emerging FILE` (GRAPHFRAUD_RINGS__EMERGING).

    The in-process `memory` backend lives inside one service process and cannot be exported."""
    from graphfraud.config import load_settings
    from graphfraud.errors import ConfigError
    from graphfraud.scoring.emerging import emerging_memberships
    from graphfraud.scoring.intraday import open_intraday_store

    settings = load_settings()
    if settings.intraday.backend == "memory":
        raise ConfigError(
            "the memory intraday store lives inside the service process: nothing to export here",
            hint="share the store through Redis (GRAPHFRAUD_INTRADAY__BACKEND=redis)",
        )
    store = open_intraday_store(settings.intraday)
    try:
        frame = emerging_memberships(store)
    finally:
        store.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    frame.write_parquet(tmp)
    tmp.replace(out)
    rings = frame["emerging_ring_id"].n_unique() if frame.height else 0
    Console().print(f"wrote {frame.height} accounts in {rings} emerging rings to {out}")


def register(app: typer.Typer) -> None:
    app.add_typer(intraday_app, name="intraday")
