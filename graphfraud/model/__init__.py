"""Risk models: graph dataset, inputs, gradient boosting, the GNN, their blend, training, registry.

`dataset` builds `GraphData` from the run's frames; `inputs` derives the shared label-free inputs;
`gbm`, `gnn/` and `stack` are the `RiskModel`s (`risk`), listed in `kinds`; `train` fits them
out-of-fold into `FoldEnsemble`s (`ensemble`); `promotion` picks one and decides whether it
replaces the promoted model in the `registry`.
"""
