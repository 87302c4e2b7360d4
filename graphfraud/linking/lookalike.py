"""Look-alike handles, one account at a time: the batch's rules (`link._lookalike_links`) for the
online scorer, with the constants both use.

Two handles of a look-alike kind (email, UPI) are similar when
- their normalised Levenshtein similarity reaches `LinkSettings.email_similarity`, or
- they carry suffix numbers in one *run* on the same local stem (`amitp001 … amitp035`: sorted
  distinct numbers cut where two neighbours are more than `SUFFIX_RUN_GAP` apart), similarity
  `gap_similarity(run span / (run size − 1))` — edit similarity alone cuts such runs into decades;
- they are the same name parts in the other order with the same digits, whatever separates
  them (`priya.verma` ~ `verma_priya` ~ `vermapriya`, `priya.verma07` ~ `verma07priya`:
  `reordered`), similarity `LinkSettings.email_similarity`, the least any accepted look-alike
  scores: every character is there, but a reordering is no closer than an edit the rule
  accepts — when the two hold one `name_key` in a block of at most `max_block` accounts. A
  reordering *and* another number (`priya.verma` ~ `verma.priya07`) is two changes, like the
  one-edit rule's two edits: every honest `verma.priya<birth year>` would otherwise pair with
  every `priya.verma` of the name;
and the best of these counts half on different providers. Support is how crowded the name is
across providers (accounts per local stem, at least 2), shrunk inside a numbered sequence by the
surplus of accounts in the pair's numeric window over what chance puts there — the stem's local
density, or its crowd at the other names' share of that window (`NumberBackground`: birth
years crowd every name), whichever is more — beyond chance's spread (`sequential_support`); for two
different stems with one name key, the accounts on that key
(`reordered_support`): `rahul.sharma` ~ `sharma.rahul` among thousands of Rahul Sharmas weighs
next to nothing. `tests/scoring/test_lookalike_online.py` holds these equal to the batch's links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphfraud.linking.compare import gap_similarity, window_support
from graphfraud.linking.keys import MIN_NAME_PART, handle_digits, local_stem

# Numbers at the end of a handle (john.doe07 → 7), at most 9 digits.
SUFFIX = r"(\d{1,9})$"
# Handles with fewer letters than this are numbers (`9876543210@ybl`): near-identical strings
# there are neighbouring numbers, not look-alike names, so they are not compared as text.
MIN_HANDLE_LETTERS = 3
# Sequential-suffix support counts accounts within this many numbers of the pair.
SUFFIX_WINDOW = 5
# Half-width of the suffix-number range used to estimate a stem's local density.
SUFFIX_DENSITY_SPAN = 50
# Suffix numbers further apart than this are never treated as one sequence.
SEQUENCE_MAX_GAP = 20
# Suffix numbers at most this far apart continue a run (amitp001, amitp002, amitp004 …).
SUFFIX_RUN_GAP = 5
# Similarity multiplier for look-alike handles on different providers.
CROSS_DOMAIN_DISCOUNT = 0.5
# How far around its own number an account's stem neighbours are read online: the support
# windows and any run reaching that far.
SUFFIX_READ_SPAN = SUFFIX_DENSITY_SPAN + SEQUENCE_MAX_GAP + SUFFIX_WINDOW

_SUFFIX_RE = re.compile(SUFFIX)
_LETTER = re.compile(r"[a-z]")


def suffix_number(local: str | None) -> int | None:
    """The handle's trailing number (`john.doe07` → 7), None without one."""
    found = _SUFFIX_RE.search(local) if local else None
    return int(found.group(1)) if found else None


def comparable(local: str | None) -> bool:
    """Enough letters to be compared as a name (see MIN_HANDLE_LETTERS)."""
    return bool(local) and len(_LETTER.findall(local or "")) >= MIN_HANDLE_LETTERS


def run_partners(
    numbers: npt.NDArray[np.int64], mine: int, max_block: int
) -> tuple[set[int], float]:
    """(the other numbers in `mine`'s run, the run's similarity) among a stem's suffix numbers,
    sorted (one per account, repeats kept; `mine` included or not). Empty when `mine` is alone,
    or when more than `max_block` accounts share the run: the batch never pairs a block that big
    (`blocking.handle_run_pairs`)."""
    distinct = np.unique(np.append(numbers, mine))
    at = int(np.searchsorted(distinct, mine))
    gaps = np.diff(distinct)
    lo = at
    while lo > 0 and gaps[lo - 1] <= SUFFIX_RUN_GAP:
        lo -= 1
    hi = at
    while hi < len(gaps) and gaps[hi] <= SUFFIX_RUN_GAP:
        hi += 1
    run = distinct[lo : hi + 1]
    if len(run) < 2 or _between(numbers, int(run[0]), int(run[-1])) + 1 > max_block:
        return set(), 0.0
    span = float(run[-1] - run[0]) / (len(run) - 1)
    similarity = float(np.float32(gap_similarity(float(np.float32(span)), SUFFIX_RUN_GAP)))
    return {int(n) for n in run if n != mine}, similarity


def _between(numbers: npt.NDArray[np.int64], lo: int, hi: int) -> int:
    """How many of the sorted `numbers` lie in [lo, hi]."""
    return int(np.searchsorted(numbers, hi, side="right") - np.searchsorted(numbers, lo))


# A run must stand out of what chance puts in its window by this many standard deviations (of
# a Poisson count): a common name's thousands of accounts fluctuate by dozens around any number.
SEQUENCE_Z = 2.0


@dataclass(frozen=True)
class NumberBackground:
    """How the suffix numbers of a kind's handles fall, over every name: birth years (`1987`,
    `87`) and small numbers are common under any name, so a common name's accounts crowd there
    without any sequence. Sorted distinct numbers, how many handles hold a number below each
    (and, last, in all), and how many handles (with a local stem, numbered or not) there are."""

    numbers: npt.NDArray[np.int64]
    cumulative: npt.NDArray[np.int64]  # one longer than `numbers`, from 0
    handles: int

    @classmethod
    def of(cls, numbers: npt.NDArray[np.int64], handles: int) -> NumberBackground:
        """From every numbered handle's number (any order) and the count of all handles."""
        distinct, counts = np.unique(numbers, return_counts=True)
        cumulative = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(distinct.astype(np.int64), cumulative, handles)

    def within(self, lo: npt.NDArray[np.int64], hi: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Handles numbered within [lo, hi], per window."""
        right = np.searchsorted(self.numbers, hi, side="right")
        left = np.searchsorted(self.numbers, np.maximum(lo, 0), side="left")
        return np.asarray(self.cumulative[right] - self.cumulative[left], dtype=np.int64)


NO_BACKGROUND = NumberBackground(np.zeros(0, np.int64), np.zeros(1, np.int64), 0)


def _expected(
    support: float | npt.NDArray[np.float64],
    around: npt.NDArray[np.integer[Any]],
    in_window: npt.NDArray[np.integer[Any]],
    lo: npt.NDArray[np.int64],
    hi: npt.NDArray[np.int64],
    background: npt.NDArray[np.int64],
    handles: int,
) -> npt.NDArray[np.float64]:
    """Accounts chance puts in a stem's window [lo, hi]: the more of the stem's own density
    around it (`around` within ±SUFFIX_DENSITY_SPAN) and of the stem's crowd (`support`) at
    the share of the *other* names' handles numbered there (`background` of `handles`, all
    names, less the stem's own `in_window` of `support`: a small population's ring must not
    make its own numbers look common)."""
    local = around * (hi - lo + 1) / (2 * SUFFIX_DENSITY_SPAN + 1)
    others = np.maximum(background - in_window, 0) / np.maximum(handles - support, 1)
    return np.asarray(np.maximum(local, support * others), dtype=np.float64)


def _shrunk(
    support: float | npt.NDArray[np.float64],
    in_window: npt.NDArray[np.integer[Any]],
    expected: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The crowd divided by the window's surplus over chance (at least 1)."""
    surplus = np.maximum(in_window - expected - SEQUENCE_Z * np.sqrt(expected), 1.0)
    return np.asarray(np.minimum(support, np.ceil(support / surplus)), dtype=np.float64)


def sequential_support(
    support: int,
    a: int,
    b: int,
    numbers: npt.NDArray[np.int64],
    background: NumberBackground,
    newcomer: int | None = None,
) -> int:
    """`link._sequential_support` for one pair on one stem: `numbers` are the stem's accounts'
    suffix numbers, sorted (one per account, repeats kept), both ends of the pair included;
    `newcomer`, a numbered handle counted on top of `background` (the account scored online,
    which the snapshot's background does not hold)."""
    if abs(a - b) > SEQUENCE_MAX_GAP:
        return support
    lo, hi = min(a, b) - SUFFIX_WINDOW, max(a, b) + SUFFIX_WINDOW
    in_window = _between(numbers, max(lo, 0), hi)
    mid = (lo + hi) // 2
    around = _between(numbers, max(mid - SUFFIX_DENSITY_SPAN, 0), mid + SUFFIX_DENSITY_SPAN)
    window = np.array([lo]), np.array([hi])
    common = background.within(*window) + int(newcomer is not None and lo <= newcomer <= hi)
    handles = background.handles + int(newcomer is not None)
    counted = np.array([in_window])
    expected = _expected(float(support), np.array([around]), counted, *window, common, handles)
    return int(_shrunk(float(support), counted, expected)[0])


def sequential_supports(
    support: npt.NDArray[np.float64],
    stems: npt.NDArray[np.int64],
    numbers: npt.NDArray[np.int64],
    stem: npt.NDArray[np.int64],
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    handles: int,
) -> npt.NDArray[np.float64]:
    """`sequential_support` for many pairs, each on one stem (`stem`) with numbers `a`, `b` at
    most `SEQUENCE_MAX_GAP` apart: `stems, numbers` are every numbered account's stem id and
    number, `handles` how many handles have a local stem (`link._sequential_support`,
    `linking.namesakes`). Each distinct (stem, numbers) is weighed once: a namesake crowd's
    millions of pairs hold few, and its callers' `support` is the stem's crowd (checked: a pair
    whose support differs from its stem's makes every pair weigh on its own)."""
    low, gap = np.minimum(a, b), np.abs(a - b)
    # stem (29 bits), the lower number (< 10⁹, SUFFIX: 30 bits), the gap (≤ 20: 5 bits)
    distinct, back = np.unique((stem << 35) | (low << 5) | gap, return_inverse=True)
    back = back.ravel()
    group = distinct >> 35
    lo = ((distinct >> 5) & ((1 << 30) - 1)) - SUFFIX_WINDOW
    hi = lo + (distinct & 31) + 2 * SUFFIX_WINDOW
    in_window = window_support(stems, numbers, lo, hi, group)
    mid = (lo + hi) // 2
    span = SUFFIX_DENSITY_SPAN
    around = window_support(stems, numbers, mid - span, mid + span, group)
    common = NumberBackground.of(numbers, handles).within(lo, hi)
    crowd = np.empty(len(distinct), np.float64)
    crowd[back] = support
    if np.array_equal(crowd[back], support):
        expected = _expected(crowd, around, in_window, lo, hi, common, handles)
        return _shrunk(crowd, in_window, expected)[back]
    counted = in_window[back]
    expected = _expected(support, around[back], counted, lo[back], hi[back], common[back], handles)
    return _shrunk(support, counted, expected)


def stem_support(counts: Sequence[int]) -> int:
    """Support of a look-alike pair: the more crowded of its two local stems, at least 2."""
    return max([2, *counts])


def reordered(a: str, b: str) -> bool:
    """Are handles (local parts) `a` and `b` one name in another order: the same digits, and
    stems `reordered_names`? (`priya.verma` ~ `verma_priya`, not ~ `verma_priya07`.)"""
    sa, sb = local_stem(a), local_stem(b)
    return (
        sa is not None
        and sb is not None
        and handle_digits(a) == handle_digits(b)
        and reordered_names(sa, sb)
    )


def reordered_names(a: str, b: str) -> bool:
    """Are local stems `a` and `b` one name in another order: different, and each the other
    rotated by at least `MIN_NAME_PART` letters either way (`priyaverma` ~ `vermapriya`, rotated
    by 5)? Both directions are tested at the smallest rotation that matches, so the rule is
    symmetric. Two stems with one `keys.name_key` are rotations of each other; a rotation by one
    or two letters (`annabel` ~ `nnabela`) is not two names swapped."""
    return a != b and _rotated_by_a_name(a, b) and _rotated_by_a_name(b, a)


def _rotated_by_a_name(a: str, b: str) -> bool:
    k = (a + a).find(b) if len(a) == len(b) else -1
    return MIN_NAME_PART <= k <= len(a) - MIN_NAME_PART


def reordered_support(support: int, name_count: int) -> int:
    """Support of a reordered pair: its stems' crowd, or the accounts on its name key if more
    (both orders of one common name, every provider)."""
    return max(support, name_count)
