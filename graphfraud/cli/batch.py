"""CLI verbs: batch (`synth`; the pipeline verbs live in `graphfraud.cli.pipeline`)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.console import Console

SYNTH_HELP = (
    "Generate a seeded synthetic checkout/BNPL population with planted fraud rings.\n\n"
    "Writes OUT/users, OUT/devices (the batch input contract: raw emails, phones in mixed "
    "formats, ISO timestamps, sparse labels) and OUT/truth (user_id, is_fraud, ring_id, "
    "ring_kind: for `graphfraud evaluate`, never as input). Honest users are made to look "
    "alike (popular names, families and cyber-cafés sharing devices, carrier NAT IPs); rings "
    "share identifiers only partly and most carry no label. Same --seed, same files.\n\n"
    "Example: graphfraud synth --users 100000 --seed 7 --out data/ && "
    "graphfraud run --users data/users.csv --devices data/devices.csv --out runs/today"
)


def synth(
    out: Path = typer.Option(
        ..., "--out", "-o", metavar="DIR", help="directory for users/devices/truth files"
    ),
    users: int = typer.Option(
        10_000, "--users", "-n", min=1, metavar="N", help="number of accounts"
    ),
    seed: int = typer.Option(
        42, "--seed", min=0, metavar="N", help="random seed: same seed, same files"
    ),
    fraud_share: float = typer.Option(
        0.04, "--fraud-share", min=0.0, max=0.5, help="share of accounts in planted rings"
    ),
    fmt: str = typer.Option("csv", "--format", "-f", metavar="FORMAT", help="csv or parquet"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress, summary only"),
    recipes: str = typer.Option(
        "base",
        "--recipes",
        metavar="NAME",
        help="ring recipes: base, or hard (also sparse rings, and camouflage drawn per ring)",
    ),
) -> None:
    from graphfraud.errors import ConfigError
    from graphfraud.synthetic import RECIPES, generate_population, summarize, write_population

    if recipes not in RECIPES:
        raise ConfigError(f"unknown ring recipes {recipes!r}", hint=" or ".join(RECIPES))

    console = Console(stderr=True, quiet=quiet)
    t0 = time.perf_counter()
    with console.status("generating", spinner="dots") as status:
        pop = generate_population(
            users,
            seed,
            fraud_share=fraud_share,
            progress=lambda s: status.update(s),
            recipes=RECIPES[recipes],
        )
        status.update(f"writing {fmt}")
        paths = write_population(pop, out, fmt=fmt.lower())
    s = summarize(pop)
    kinds = ", ".join(f"{k} {v}" for k, v in s["rings_by_kind"].items()) or "none"
    lab = s["labels"]
    typer.echo(
        f"Generated {s['users']:,} users (seed {seed}) with {s['devices']:,} device sightings "
        f"in {time.perf_counter() - t0:.1f}s: {s['fraud']:,} fraudsters "
        f"({s['fraud_share']:.2%}) in {s['rings']:,} rings of {s['ring_size_min']}-"
        f"{s['ring_size_max']} members ({kinds}). Labels: {lab['1']:,} fraud, {lab['0']:,} "
        f"legitimate, {lab['unknown']:,} unknown. Files: "
        + ", ".join(str(p) for p in paths.values())
        + "."
    )


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
    app.command("synth", help=SYNTH_HELP)(synth)
