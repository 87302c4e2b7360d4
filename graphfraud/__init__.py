"""graphfraud: graph-based fraud-ring detection.

Pipeline: ingest → normalise → link → rings → features → model → scores, published to a run
directory (Parquet + manifest), to Neo4j over Bolt, and served by a FastAPI scoring service.
"""

from __future__ import annotations

__version__ = "0.1.0"
