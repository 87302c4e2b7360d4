"""The HTTP service: `create_app(settings, run_dir, graph_store)` (see `graphfraud.service.app`)."""

from __future__ import annotations

from graphfraud.service.app import create_app

__all__ = ["create_app"]
