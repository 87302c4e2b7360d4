"""The label-free structural ring prior: how much a user looks like a member of an organised ring.

Read from the user's own feature row only (no labels, no neighbours), so the batch, the online
scorer's one-account row and a night with no usable labels compute it alike. Three kinds of
evidence, each in [0, 1], combined by noisy-OR (any one strong signal is enough):

* **sign-up burst** — the share of the user's community that signed up within the ring
  stage's burst window (`ring_creation_burst`), for communities of at least 3: a couple that
  opened accounts together is ordinary, a dozen accounts within hours is not;
* **identifiers shared past a household** — the user's own email / phone / UPI handle held by
  more accounts than a household shares (`log_<kind>_support`, holders including the user):
  2 holders count 0, each one more a third, 5 or more count fully;
* **a block of look-alike identifiers or shared devices** across the community
  (`ring_identifier_similarity`, `ring_shared_device_ratio`), at half weight: families share
  devices too.

On 20k-user quiet nights (0.5 % fraud, seeds 1 and 2) the prior alone ranks unlabelled fraud at
AP 0.69 and 0.90, where the old `0.6·max_strength + 0.4·ring_density` stopgap scored 0.02. As a
model feature (`PRIOR_FEATURE`, `benchmarks/bench_model_stage.py --prior-feature`) it raised
quiet-night AP but moved the calibrated suspected-ring cut (docs/models.md), so the models do not
read it yet.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

PRIOR_FEATURE = "prior_ring"  # its column in the feature table
MIN_BURST_SIZE = 3  # a community smaller than this has no sign-up burst to speak of
HOUSEHOLD_HOLDERS = 2  # holders of one identifier that a household explains
HOLDERS_TO_FULL = 3  # holders past the household at which the evidence is full
BLOCK_WEIGHT = 0.5


def is_holder_support(name: str) -> bool:
    """`log_<kind>_support`: how many accounts hold the user's own identifier of a kind."""
    return name.startswith("log_") and name.endswith("_support") and not name.startswith("log_max_")


def prior_inputs(names: tuple[str, ...] | list[str]) -> list[str]:
    """The columns of `names` the prior reads."""
    fixed = ("in_ring", "ring_size", "ring_creation_burst", "ring_identifier_similarity",
             "ring_shared_device_ratio")  # fmt: skip
    return [n for n in names if n in fixed or is_holder_support(n)]


def ring_prior(x: F32, names: tuple[str, ...]) -> F32:
    """The prior of each row of `x` (columns named by `names`; missing columns count 0)."""
    index = {n: i for i, n in enumerate(names)}

    def col(name: str) -> npt.NDArray[np.float64]:
        if name not in index:
            return np.zeros(x.shape[0], dtype=np.float64)
        return np.nan_to_num(x[:, index[name]].astype(np.float64), nan=0.0)

    in_ring = col("in_ring") > 0
    burst = np.where(in_ring & (col("ring_size") >= MIN_BURST_SIZE), col("ring_creation_burst"), 0)
    holders = np.zeros(x.shape[0], dtype=np.float64)
    for name in names:
        if is_holder_support(name):
            # a count, stored as float32 log1p: round back to the whole number
            holders = np.maximum(holders, np.rint(np.expm1(col(name))))
    shared = (holders - HOUSEHOLD_HOLDERS) / HOLDERS_TO_FULL
    block = np.where(
        in_ring, np.maximum(col("ring_identifier_similarity"), col("ring_shared_device_ratio")), 0
    )
    parts = [np.clip(p, 0.0, 1.0) for p in (burst, shared, BLOCK_WEIGHT * block)]
    missing = np.ones(x.shape[0], dtype=np.float64)
    for p in parts:
        missing *= 1.0 - p
    out: F32 = (1.0 - missing).astype(np.float32)
    return out
