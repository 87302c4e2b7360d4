"""The HTTP service: `create_app(settings, run_dir, graph_store)` (see `graphfraud.service.app`).

`create_app` is imported on first use: the swap gate (`service.gate`), which the nightly's
pointer checks share, must not pull in the app, and with it the online model and torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphfraud.service.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from graphfraud.service.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
