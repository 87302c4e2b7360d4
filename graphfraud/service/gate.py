"""The sanity checks a snapshot must pass before it is served (every swap: start-up, reload,
`CURRENT` polling). Failing any keeps the served snapshot — or, at start-up, none: /readyz stays
503 rather than answering every user with 0.0.

| check         | refused when                                                          |
|---------------|-----------------------------------------------------------------------|
| status        | the run's manifest does not say `status: complete` (missing included) |
| users         | no scored users, or fewer than `service.swap_min_user_ratio` (50 %)   |
|               | of the served snapshot's                                              |
| scores        | any user's score is null or NaN (it would be served as 0.0)           |
| model version | no model version, or users without one                                |

A legitimate large shrink (a market closed) is served by restarting on the new run (a first load
has nothing to compare with) or with `GRAPHFRAUD_SERVICE__SWAP_MIN_USER_RATIO` lowered (0: off).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphfraud.scoring.snapshot import SnapshotInfo

UNKNOWN_VERSIONS = frozenset({"", "unknown"})


@dataclass(frozen=True)
class Rejection:
    """A swap the gate refused: shown by /v1/admin/snapshot until the next one."""

    run: str
    reasons: tuple[str, ...]
    rejected_at: str

    def public(self) -> dict[str, Any]:
        return {"run": self.run, "reasons": list(self.reasons), "rejected_at": self.rejected_at}


def swap_problems(
    new: SnapshotInfo, served: SnapshotInfo | None, *, min_user_ratio: float
) -> list[str]:
    """Why `new` must not replace `served` (empty: it may)."""
    problems: list[str] = []
    if new.status != "complete":
        problems.append(
            f"its manifest says status {new.status!r}, not 'complete'"
            if new.status
            else "its manifest has no status (a finished run says 'complete')"
        )
    if new.users == 0:
        problems.append("it has no scored users")
    elif served is not None and new.users < min_user_ratio * served.users:
        problems.append(
            f"it has {new.users:,} users, under {min_user_ratio:.0%} of the {served.users:,} "
            f"served by {served.run_id!r}"
        )
    if new.null_scores:
        problems.append(f"{new.null_scores:,} user(s) without a score (null or NaN)")
    if new.model_version in UNKNOWN_VERSIONS:
        problems.append("no model version in its scores or manifest")
    elif new.unversioned:
        problems.append(f"{new.unversioned:,} user(s) without a model version")
    return problems


def rejection(run: str, problems: list[str]) -> Rejection:
    return Rejection(run, tuple(problems), datetime.now(UTC).isoformat(timespec="seconds"))
