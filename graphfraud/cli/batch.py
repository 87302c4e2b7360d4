"""CLI verbs: batch (filled in by its owner)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach this module's verbs to the root app."""
