"""CLI verbs: `graphfraud models list|show|promote|rollback` over the model registry."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

REGISTRY_OPTION = typer.Option(
    None,
    "--registry",
    "-r",
    envvar="GRAPHFRAUD_MODEL__REGISTRY",
    metavar="DIR",
    show_default="models/, in the working directory (the model.registry setting)",
    help="model registry directory",
)

models_app = typer.Typer(
    name="models",
    help=(
        "Inspect and manage trained risk models: every `graphfraud run` saves its candidates "
        "here and promotes the selected one (see graphfraud.model.registry for the policy)."
    ),
    no_args_is_help=True,
)


def _registry(path: Path | None):  # type: ignore[no-untyped-def]
    from graphfraud.config import load_settings
    from graphfraud.model.registry import ModelRegistry

    settings = load_settings().model
    return ModelRegistry(
        path if path is not None else settings.registry, signing_key=settings.signing_key
    )


def _fmt(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"


@models_app.command("list")
def list_models(registry: Path | None = REGISTRY_OPTION) -> None:
    """All saved versions, oldest first; the promoted one is starred."""
    reg = _registry(registry)
    cards = reg.list()
    if not cards:
        typer.echo(f"No models in {reg.root} yet (train one with `graphfraud run`).")
        return
    promoted = reg.promoted()
    table = Table(title=f"models in {reg.root}")
    for col in ("", "version", "kind", "AUPRC", "ROC-AUC", "labelled", "features", "created"):
        # Versions are what users copy into `promote`: never truncate them.
        table.add_column(col, no_wrap=col == "version", overflow="fold")
    for card in cards:
        star = "*" if promoted is not None and promoted.version == card.version else ""
        table.add_row(
            star,
            card.version,
            card.kind,
            _fmt(card.metrics.get("auprc")),
            _fmt(card.metrics.get("roc_auc")),
            str(int(card.metrics.get("n_labelled", 0))),
            str(len(card.feature_names)),
            card.created_at,
        )
    Console().print(table)


@models_app.command("show")
def show_model(
    version: str = typer.Argument(None, help="version to show (default: the promoted one)"),
    registry: Path | None = REGISTRY_OPTION,
    as_json: bool = typer.Option(False, "--json", help="print the model card as JSON"),
) -> None:
    """One model card: metrics, data fingerprint, features, params, files."""
    from graphfraud.errors import NotFound

    reg = _registry(registry)
    card = reg.show(version) if version else reg.promoted()
    if card is None:
        raise NotFound(f"no promoted model in {reg.root}", hint="give a VERSION, see `models list`")
    if as_json:
        typer.echo(json.dumps(card.to_json(), indent=2, sort_keys=True))
        return
    promoted = reg.promoted()
    table = Table(title=card.version, show_header=False)
    table.add_column("field")
    table.add_column("value", overflow="fold")
    rows = {
        "kind": card.kind,
        "promoted": "yes" if promoted and promoted.version == card.version else "no",
        "created": card.created_at,
        "package": card.package_version,
        "training": f"{card.training_seconds:.1f}s, {card.members} fold models",
        "metrics": ", ".join(f"{k} {v:.4g}" for k, v in sorted(card.metrics.items())),
        "data": card.data_fingerprint,
        "trained by run": card.trained_on.get("run_id", "-"),
        "inputs": ", ".join(
            f"{k.removesuffix('_sha256')} {v[:12]}…"
            for k, v in card.trained_on.items()
            if k.endswith("_sha256")
        )
        or "-",
        "features": ", ".join(card.feature_names),
        "relations": ", ".join(card.relation_names),
        "params": json.dumps(card.params, sort_keys=True),
    }
    for key, value in rows.items():
        table.add_row(key, value)
    Console().print(table)


@models_app.command("promote")
def promote_model(
    version: str = typer.Argument(..., help="version to promote (see `models list`)"),
    registry: Path | None = REGISTRY_OPTION,
) -> None:
    """Make VERSION the model used to score; the previous one stays on the rollback stack."""
    card = _registry(registry).promote(version)
    typer.echo(f"Promoted {card.version} ({card.kind}, AUPRC {_fmt(card.metrics.get('auprc'))}).")


@models_app.command("rollback")
def rollback_model(registry: Path | None = REGISTRY_OPTION) -> None:
    """Re-promote the model that was promoted before the current one."""
    card = _registry(registry).rollback()
    typer.echo(f"Rolled back to {card.version} ({card.kind}).")


@models_app.command("history")
def history(registry: Path | None = REGISTRY_OPTION) -> None:
    """Promotions, rollbacks and the nights' picks that were not promoted, oldest first, with
    the run and the reason."""
    events = _registry(registry).history()
    if not events:
        typer.echo("No promotions yet.")
        return
    table = Table()
    for col in ("at", "action", "version", "run", "reason"):
        table.add_column(col, overflow="fold")
    for e in events:
        table.add_row(
            str(e.get("at")),
            str(e.get("action")),
            str(e.get("version")),
            str(e.get("run_id", "")),
            str(e.get("reason", "")),
        )
    Console().print(table)


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
    app.add_typer(models_app, name="models")
