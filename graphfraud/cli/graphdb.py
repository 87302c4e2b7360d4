"""CLI verbs for the graph database: `publish` a run, and `graphdb start|stop|status` for the
local ArcadeDB Bolt server (for people without a Neo4j)."""

from __future__ import annotations

import shlex
from pathlib import Path

import typer
from rich.console import Console

from graphfraud.config import GraphSettings, load_settings
from graphfraud.errors import ConfigError

console = Console()

graphdb_app = typer.Typer(
    name="graphdb",
    help=(
        "A local Bolt + Cypher server (ArcadeDB, bundled JRE) bound to 127.0.0.1, for people "
        "without Neo4j. The password comes from GRAPHFRAUD_GRAPH__PASSWORD (8+ characters); "
        "the user is `root`.\n\n"
        "Example: GRAPHFRAUD_GRAPH__PASSWORD=… graphfraud graphdb start --dir graphdb/"
    ),
    no_args_is_help=True,
)

DIR_OPTION = typer.Option(
    Path("graphdb"), "--dir", metavar="DIR", help="server data, log, pid/port file"
)


def _graph_settings(
    uri: str | None, user: str | None = None, database: str | None = None
) -> GraphSettings:
    graph = load_settings().graph
    if uri is not None:
        graph.uri = uri
    if user is not None:
        graph.user = user
    if database is not None:
        graph.database = database
    return graph


def publish(
    run: Path = typer.Option(..., "--run", metavar="DIR", help="a finished run directory"),
    graph_uri: str | None = typer.Option(
        None,
        "--graph-uri",
        envvar="GRAPHFRAUD_GRAPH__URI",
        metavar="URI",
        show_default="empty: embedded, no copy",
        help="bolt://host:7687 (Neo4j 5 or `graphfraud graphdb`)",
    ),
    graph_user: str | None = typer.Option(
        None,
        "--graph-user",
        envvar="GRAPHFRAUD_GRAPH__USER",
        metavar="USER",
        show_default=GraphSettings().user,
        help="database user (`root` for `graphfraud graphdb`)",
    ),
    graph_database: str | None = typer.Option(
        None,
        "--graph-database",
        envvar="GRAPHFRAUD_GRAPH__DATABASE",
        metavar="NAME",
        show_default="the server's default database",
        help="database to publish into",
    ),
    full: bool = typer.Option(
        False,
        "--full",
        envvar="GRAPHFRAUD_GRAPH__FULL_PUBLISH",
        help="rewrite the whole graph (MERGE everything, then sweep) instead of a delta",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar"),
    bulk_csv: Path | None = typer.Option(
        None,
        "--bulk-csv",
        metavar="DIR",
        show_default="none: publish over Bolt",
        help="instead, write the whole graph into DIR (new or empty) as `neo4j-admin database "
        "import full` CSVs, for a first publish of a large graph, and print the command that "
        "imports them into --graph-database; connects to nothing (--graph-uri and --full are "
        "not used). Later nights publish their delta over Bolt as usual",
    ),
) -> None:
    """Publish a run's identity graph (users, identifiers, links, rings) to the graph database.

    Sends only what changed since the run the graph holds (its meta node names it; its run
    directory is found through the run's --previous, the path recorded at publish, or beside
    RUN): new and changed nodes and relationships, and deletes for those that left (erased users
    vanish). When that run cannot be found or no longer matches what was published, or with
    --full, it publishes everything and says why. Idempotent and crash-safe: rerun after any
    failure. The password is read from GRAPHFRAUD_GRAPH__PASSWORD only (never a flag).

    What it did (full or delta, why, counts) is recorded in RUN/manifest.json under
    stages.publish.

    With --bulk-csv DIR it writes import files instead (docs/graph.md, "A first publish by
    bulk import") and prints the neo4j-admin command; the imported graph's meta node names RUN,
    so the next publish over Bolt sends only what changed.

    Example: graphfraud publish --run runs/2026-12-01 --graph-uri bolt://127.0.0.1:7687

    Example: graphfraud publish --run runs/2026-12-01 --bulk-csv import/2026-12-01
    --graph-database graphfraud
    """
    from graphfraud.pipeline import stage_publish
    from graphfraud.rundir import RunDir

    settings = load_settings()
    settings.graph = _graph_settings(graph_uri, graph_user, graph_database)
    if bulk_csv is not None:
        _write_bulk_csv(run, bulk_csv, settings.graph.database)
        return
    report = stage_publish(RunDir(run), settings, progress=not quiet, full=full)
    where = settings.graph.uri or "embedded store (the run directory itself)"
    console.print(
        f"[green]published[/green] run {report.run_id} to {where} ({report.mode}: "
        f"{report.reason}): {report.nodes:,} nodes, {report.relationships:,} relationships; "
        f"upserted {report.upserted_nodes:,} nodes, {report.upserted_relationships:,} "
        f"relationships, deleted {report.deleted_nodes:,} nodes, "
        f"{report.deleted_relationships:,} relationships; {report.rows:,} rows in "
        f"{report.seconds:.1f}s",
        highlight=False,
        soft_wrap=True,  # one line, whatever the terminal width (schedulers grep it)
    )


def _write_bulk_csv(run: Path, out: Path, database: str | None) -> None:
    from graphfraud.graph.bulk import write_import_csvs

    export = write_import_csvs(run, out)
    name = database or "neo4j"
    console.print(
        f"[green]wrote[/green] run {export.run_id} as import files in {out}: "
        f"{export.nodes:,} nodes, {export.relationships:,} relationships, "
        f"{len(export.files)} header/data file pairs. On the Neo4j server, import them into "
        "a database that does not exist yet (then CREATE DATABASE it, or start Neo4j for the "
        "default one):",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(export.command(name))
    schema = shlex.quote(str(out / "schema.cypher"))
    console.print(
        f"then create the constraints: cypher-shell -d {name} -f {schema} "
        "(or let the next `graphfraud publish` create them)",
        highlight=False,
        soft_wrap=True,
    )


@graphdb_app.command("start")
def start(
    directory: Path = DIR_OPTION,
    bolt_port: int | None = typer.Option(
        None,
        "--bolt-port",
        metavar="PORT",
        show_default="7687, or any free port",
        help="Bolt port (drivers, cypher-shell)",
    ),
    http_port: int | None = typer.Option(
        None,
        "--http-port",
        metavar="PORT",
        show_default="2480, or any free port",
        help="HTTP port (ArcadeDB's studio)",
    ),
    database: str = typer.Option(
        "graphfraud", "--database", metavar="NAME", help="created on first start"
    ),
    heap: str = typer.Option("1g", "--heap", metavar="SIZE", help="JVM heap, e.g. 512m, 2g"),
) -> None:
    """Start the server in the background and wait until it answers `RETURN 1`."""
    from graphfraud.graph.server import start_server

    password = load_settings().graph.password.get_secret_value()
    if not password:
        raise ConfigError(
            "set GRAPHFRAUD_GRAPH__PASSWORD (8+ characters) before starting the graph server"
        )
    server = start_server(
        directory,
        password,
        bolt_port=bolt_port,
        http_port=http_port,
        database=database,
        heap=heap,
    )
    console.print(f"[green]graph server up[/green] pid {server.pid}: {server.uri}", highlight=False)
    console.print(
        f"  export GRAPHFRAUD_GRAPH__URI={server.uri} GRAPHFRAUD_GRAPH__USER=root "
        f"GRAPHFRAUD_GRAPH__DATABASE={server.database}",
        highlight=False,
    )


@graphdb_app.command("stop")
def stop(directory: Path = DIR_OPTION) -> None:
    """Stop the server started from --dir (SIGTERM, data flushed)."""
    from graphfraud.graph.server import stop_server

    if stop_server(directory):
        console.print("graph server stopped")
    else:
        console.print(f"no graph server running from {directory}")


@graphdb_app.command("status")
def status(directory: Path = DIR_OPTION) -> None:
    """Say whether the server from --dir runs, where, and which run is published in it."""
    from graphfraud.graph.server import server_status

    server = server_status(directory)
    if server is None:
        console.print(f"no graph server running from {directory}")
        raise typer.Exit(3)
    console.print(
        f"graph server running: pid {server.pid}, {server.uri}, database {server.database}, "
        f"since {server.started_at}",
        highlight=False,
    )
    password = load_settings().graph.password.get_secret_value()
    if password:
        from graphfraud.graph.factory import open_driver
        from graphfraud.graph.neo4j import Neo4jGraphStore

        settings = load_settings().graph.model_copy(
            update={
                "uri": server.uri,
                "user": server.user,
                "database": server.database,
                "retry_time_s": 2.0,
            }
        )
        store = Neo4jGraphStore(open_driver(settings), server.database, owns_driver=True)
        try:
            meta = store.published()
        finally:
            store.close()
        if meta is None:
            console.print("  nothing published yet")
        else:
            console.print(
                f"  published run {meta.get('run_id')} ({meta.get('status')}, "
                f"target {meta.get('target_run_id')}, finished {meta.get('finished_at')})",
                highlight=False,
            )


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
    app.command("publish")(publish)
    app.add_typer(graphdb_app, name="graphdb")
