"""The run report: what a night did and how it moved against the previous night.

`drift` defines PSI once; `contents` computes a typed `RunReport` from run artifacts (pure
once read); `html` renders `report.html` (self-contained); `summary` the CLI's one screen.
The pipeline writes both at the end of every run (`pipeline.stage_report`), and `graphfraud
report --run DIR [--previous DIR]` rebuilds them.
"""
