"""Risk models: graph dataset, gradient-boosting baseline, PyG GNN, training, registry."""
