"""Namesake crowds: which look-alike pairs on one crowded local stem can still link.

Two handles on one local stem (`rahul.sharma12` ~ `rahul.sharma87`, any provider) have the
stem's crowd, every account on it, as their support (`link._lookalike_links`), so their weight
is at most `prior · (2 / crowd) ** decay`: below `min_fuzzy_weight` once the crowd passes
`weights.max_linkable_support` (145 accounts for emails), whatever their similarity. Only a
numbered sequence, whose support shrinks with the surplus of accounts in the pair's numeric
window (`lookalike.sequential_supports`), lifts such a pair back over the cut. So on a stem
crowded past the bound
- a namesake crowd is not compared all against all, only its pairs whose numbers can do that
  (`sequence_pairs`): the rest cost comparisons that grow with the crowd's square (475M at 2M
  users) and could never link;
- two handles on *different* local stems have the larger crowd as their support and no sequence
  lowers it, so a pair with an end on a crowded stem links only as a sequence on that one stem
  (`may_link`): at 1M users that rules out over half of the other passes' candidates (most of
  the one-deletion pass's: `rahulsharma` ~ `rahulsarma`) before they are compared;
- a pair from any other pass is a similar pair only if it `linkable` too, so the similar pairs
  an incremental night reuses (`LOOKALIKES_FILE`) are the same whichever pass found them.
The links are exactly those of comparing everything (`tests/linking/test_namesakes.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
import polars as pl

from graphfraud.config import LinkSettings
from graphfraud.identifiers import LinkRule
from graphfraud.linking.lookalike import SEQUENCE_MAX_GAP, sequential_supports
from graphfraud.linking.weights import max_linkable_support


def namesake_bound(rule: LinkRule, settings: LinkSettings) -> int | None:
    """The crowd past which a pair of the look-alike `rule` on one stem needs a sequence to
    link (None: its weight never fades with the crowd)."""
    return max_linkable_support(rule.prior, rule.decay, settings.min_fuzzy_weight)


@dataclass(frozen=True)
class Namesakes:
    """A kind's handles: each uid's local stem id and suffix number (-1: none), and the
    accounts on each stem."""

    stem: npt.NDArray[np.int64]  # by uid
    number: npt.NDArray[np.int64]  # by uid
    crowd: npt.NDArray[np.float64]  # by stem id
    max_support: int  # `weights.max_linkable_support` of the kind

    @classmethod
    def of(cls, emails: pl.DataFrame, max_support: int) -> Namesakes:
        """From a kind's handles (`link.handle_frame`: `uid, local_stem, num`)."""
        keyed = emails.select(
            pl.col("uid").cast(pl.Int64),
            pl.col("local_stem").rank("dense").cast(pl.Int64).fill_null(0) - 1,
            pl.col("num").fill_null(-1),
        )
        uid, sid = keyed["uid"].to_numpy(), keyed["local_stem"].to_numpy()
        stem = np.full(int(uid.max(initial=-1)) + 1, -1, np.int64)
        number = np.full(len(stem), -1, np.int64)
        stem[uid], number[uid] = sid, keyed["num"].to_numpy()
        crowd = np.bincount(sid[sid >= 0], minlength=max(int(sid.max(initial=-1)) + 1, 1))
        return cls(stem, number, crowd.astype(np.float64), max_support)

    @cached_property
    def _crowded(self) -> npt.NDArray[np.bool_]:
        """By uid: one byte each, so that a test over 100M candidate pairs gathers from 4 MB
        rather than from the stems and crowds."""
        crowd = self.crowd[np.maximum(self.stem, 0)]
        return np.asarray((self.stem >= 0) & (crowd > self.max_support))

    def crowded(self, uid: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Per uid: is its local stem crowded past `max_support`?"""
        return self._crowded[uid]

    def may_link(self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Per pair, by the cheap tests alone: could it link? False when an end is on a crowded
        stem, unless both are on that stem with numbers at most `SEQUENCE_MAX_GAP` apart (a
        sequence's window, which `linkable` weighs)."""
        out: npt.NDArray[np.bool_] = ~(self._crowded[a] | self._crowded[b])
        at = np.flatnonzero(~out)
        a, b = a[at], b[at]
        x, y = self.number[a], self.number[b]
        near = (x >= 0) & (y >= 0) & (np.abs(x - y) <= SEQUENCE_MAX_GAP)
        out[at] = near & (self.stem[a] == self.stem[b])
        return out

    def linkable(self, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Per pair: could it link? False for a pair with an end on a crowded stem, but for a
        sequence on that stem whose window's surplus shrinks its support to `max_support`."""
        out = self.may_link(a, b)
        at = np.flatnonzero(out & self.crowded(a))  # near numbers on one crowded stem
        out[at] = self._in_reach(self.stem[a[at]], self.number[a[at]], self.number[b[at]])
        return out

    def sequence_pairs(self, rows: pl.DataFrame, key: str) -> pl.DataFrame:
        """`a, b` (a < b): the pairs inside each block of `rows` (`uid`, `key`; one crowded stem
        per block) that `linkable` — both numbered, at most `SEQUENCE_MAX_GAP` apart, their
        window's surplus enough. Tested on distinct numbers, then expanded to accounts."""
        uid = rows["uid"].cast(pl.Int64).to_numpy()
        accounts = pl.DataFrame(
            {
                "block": rows[key].rank("dense").cast(pl.Int64).to_numpy(),
                "stem": self.stem[uid],
                "num": self.number[uid],
                "uid": uid,
            }
        ).filter(pl.col("num") >= 0)
        numbers = accounts.select("block", "stem", "num").unique().sort("block", "num")
        block, num = numbers["block"].to_numpy(), numbers["num"].to_numpy()
        # distinct numbers of a block at most SEQUENCE_MAX_GAP apart: at most that many steps
        left, right = [np.arange(len(num))], [np.arange(len(num))]
        for step in range(1, SEQUENCE_MAX_GAP + 1):
            near = (block[step:] == block[:-step]) & (num[step:] - num[:-step] <= SEQUENCE_MAX_GAP)
            left.append(np.flatnonzero(near))
            right.append(np.flatnonzero(near) + step)
        i, j = np.concatenate(left), np.concatenate(right)
        stem = numbers["stem"].to_numpy()
        keep = self._in_reach(stem[i], num[i], num[j])
        pairs = pl.DataFrame({"block": block[i[keep]], "x": num[i[keep]], "y": num[j[keep]]})
        side = accounts.select("block", "num", "uid")
        found = (
            pairs.join(side.rename({"num": "x"}), on=["block", "x"])
            .join(side.rename({"num": "y", "uid": "uid_b"}), on=["block", "y"])
            .filter((pl.col("x") != pl.col("y")) | (pl.col("uid") < pl.col("uid_b")))
        )
        return found.select(
            pl.min_horizontal("uid", "uid_b").cast(pl.UInt32).alias("a"),
            pl.max_horizontal("uid", "uid_b").cast(pl.UInt32).alias("b"),
        )

    def _in_reach(
        self, stem: npt.NDArray[np.int64], x: npt.NDArray[np.int64], y: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Per pair on one crowded `stem` with numbers `x`, `y`: can its sequential support
        reach `max_support`?"""
        ok: npt.NDArray[np.bool_] = (x >= 0) & (y >= 0) & (np.abs(x - y) <= SEQUENCE_MAX_GAP)
        at = np.flatnonzero(ok)
        if at.size:
            numbered = (self.number >= 0) & (self.stem >= 0)
            support = sequential_supports(
                self.crowd[stem[at]],
                self.stem[numbered],
                self.number[numbered],
                stem[at],
                x[at],
                y[at],
                int((self.stem >= 0).sum()),
            )
            ok[at] = support <= self.max_support
        return ok
