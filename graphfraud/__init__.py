"""graphfraud: graph-based fraud-ring detection.

Pipeline: ingest → normalise → link → rings → features → model → scores, published to a run
directory (Parquet + manifest), to Neo4j over Bolt, and served by a FastAPI scoring service.

The public API, for notebooks and other programs (`__all__`; each name is imported on first use,
so `import graphfraud` stays cheap):

```python
import graphfraud

run = graphfraud.open_run("runs/today")      # a finished run directory
run.scores(); run.rings(); run.links()        # polars frames
ring = run.ring_of("u0000042")                # RingView: members, links with evidence
graph = ring.to_networkx()                    # needs the `notebooks` extra (networkx)
```
plus the settings (`load_settings`, `Settings`), the batch (`run_pipeline`), the graph store
(`open_graph_store`), the model registry (`ModelRegistry`), the synthetic population and the
error tree (`graphfraud.errors`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from graphfraud.config import Settings, load_settings
    from graphfraud.errors import (
        ArtifactError,
        ConfigError,
        GraphFraudError,
        GraphStoreError,
        GraphStoreUnavailable,
        InputDataError,
        NotFound,
        TrainingFailed,
    )
    from graphfraud.evaluate import Evaluation, average_precision, precision_recall
    from graphfraud.graph import open_graph_store
    from graphfraud.graph.base import LinkEvidence, LinkExplanation, Member, RingView
    from graphfraud.model.registry import ModelRegistry
    from graphfraud.pipeline import RunResult, run_pipeline
    from graphfraud.results import Run, UserScore, open_run
    from graphfraud.scoring.reasons import reason_table
    from graphfraud.synthetic import generate_population, write_population

# name -> module it lives in; resolved by __getattr__ on first use.
_EXPORTS: dict[str, str] = {
    "open_run": "graphfraud.results",
    "Run": "graphfraud.results",
    "UserScore": "graphfraud.results",
    "RingView": "graphfraud.graph.base",
    "Member": "graphfraud.graph.base",
    "LinkEvidence": "graphfraud.graph.base",
    "LinkExplanation": "graphfraud.graph.base",
    "Evaluation": "graphfraud.evaluate",
    "precision_recall": "graphfraud.evaluate",
    "average_precision": "graphfraud.evaluate",
    "reason_table": "graphfraud.scoring.reasons",
    "Settings": "graphfraud.config",
    "load_settings": "graphfraud.config",
    "run_pipeline": "graphfraud.pipeline",
    "RunResult": "graphfraud.pipeline",
    "open_graph_store": "graphfraud.graph",
    "ModelRegistry": "graphfraud.model.registry",
    "generate_population": "graphfraud.synthetic",
    "write_population": "graphfraud.synthetic",
    "GraphFraudError": "graphfraud.errors",
    "ConfigError": "graphfraud.errors",
    "InputDataError": "graphfraud.errors",
    "ArtifactError": "graphfraud.errors",
    "TrainingFailed": "graphfraud.errors",
    "GraphStoreError": "graphfraud.errors",
    "GraphStoreUnavailable": "graphfraud.errors",
    "NotFound": "graphfraud.errors",
}

__all__ = [
    "ArtifactError",
    "ConfigError",
    "Evaluation",
    "GraphFraudError",
    "GraphStoreError",
    "GraphStoreUnavailable",
    "InputDataError",
    "LinkEvidence",
    "LinkExplanation",
    "Member",
    "ModelRegistry",
    "NotFound",
    "RingView",
    "Run",
    "RunResult",
    "Settings",
    "TrainingFailed",
    "UserScore",
    "__version__",
    "average_precision",
    "generate_population",
    "load_settings",
    "open_graph_store",
    "open_run",
    "precision_recall",
    "reason_table",
    "run_pipeline",
    "write_population",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'graphfraud' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
