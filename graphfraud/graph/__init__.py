"""GraphStore seam: publish the identity graph, read a user's ring, explain a link.

`open_graph_store(settings.graph, run_dir)` returns the embedded store (empty uri) or the
Neo4j store (`bolt://…`); see docs/graph.md for the graph model.
"""

from graphfraud.graph.factory import open_graph_store

__all__ = ["open_graph_store"]
