"""Planted fraud rings: which signals each ring shares, how strongly, and when it signs up.

A ring is a block of fraud rows whose fields are overwritten by one or two *signals*. Each signal
reaches only part of the ring (`COVERAGE`, drawn per ring and signal), so rings are not cliques,
and members a signal misses keep an honest-looking identity. The loops here run per ring and per
ring member (a few percent of users), never per user.

| ring_kind | signals (coverage 70-90 % each unless noted) |
|---|---|
| sequential_email | base + counter on one domain: `priya.verma01..12@gmail.com`, `loot_lucky007@`; base is a popular name half the time; counter padded 0/2/3, step 1 or gaps 1-3; 10 % of members on another domain |
| sequential_phone | one batch of SIMs: consecutive (50 %), gaps 1-3 (35 %) or 1-9 (15 %); order shuffled half the time |
| gmail_variant | one mailbox, many spellings: dots anywhere, +tags, googlemail.com, a capital |
| device_farm | 1-4 emulator-like or plain Android ids shared by the covered members, 80 % from 1-3 cloud IPs |
| typo_domain | one local part on gmial.com / gmail.co / gmaill.com … (and the real gmail.com half the time) |
| camouflaged | one of shared handset / sequential phones / sequential emails at 55-80 %, plus, at shares drawn per ring: café IP (and its computers), a tablet also used by 1-4 honest users, honest users' own phones signed in on, 0-3 honest users' phone numbers (never a member's only trace); its look-alike emails spread over several providers |
| sparse | no identifier spans the ring: members hang in a chain or a tree (branching drawn per ring), each tied to one earlier member by a single tie of its own, a handset or a home connection the two share, or one person's name parts in another order as their handles (`priya.verma` ~ `verma_priya`), the mix drawn per ring |
| slow | one of the email/phone/handset signals, sign-ups spread over 3-11 weeks |
| mixed | an email signal + a phone/device/UPI signal, or sequential phones + a device farm |
| upi_mule | counter handles on one PSP (`rahul.sharma1@ybl`, `…2@icici`), or one or two collector VPAs every covered account pays out to, plus a phone/device/email signal |

Every ring also has a traffic source (cloud IPs 25 %, carrier NAT / IPv6 handsets 40 %,
residential 35 %), a
phone-typing habit (85 % of members), sometimes one reused display name (25 % of rings) or a spare
handset (20 %). Timing: a burst minutes apart (80 % of non-slow rings) or spread over 1-10 days.
"""  # noqa: E501

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import polars as pl

from graphfraud.synthetic import vocab
from graphfraud.synthetic.honest import Venues, device_ids
from graphfraud.synthetic.people import FEMALE_FIRST, LAST, MALE_FIRST
from graphfraud.synthetic.render import (
    DAY_S,
    PHONE_FORMATS,
    hex_ids,
    ipv4,
    ipv6,
    signup_times,
    zipf_p,
)
from graphfraud.synthetic.upi import psp_choice

# ring kind → share of rings. Every kind appears once before any repeats (see `plan_rings`).
RING_KINDS: dict[str, float] = {
    "sequential_email": 0.18,
    "sequential_phone": 0.14,
    "gmail_variant": 0.12,
    "device_farm": 0.15,
    "typo_domain": 0.08,
    "camouflaged": 0.12,
    "slow": 0.11,
    "mixed": 0.10,
    "upi_mule": 0.08,
}
EMAIL_SIGNALS = ("sequential_email", "gmail_variant", "typo_domain")


@dataclass(frozen=True)
class RingRecipes:
    """Which recipes a population's rings follow.

    `BASE_RECIPES`: the kinds of `RING_KINDS` with fixed camouflage, what every seeded test
    population draws. `HARD_RECIPES` (#14): also `sparse` rings, and camouflage drawn per ring
    (shares of café use, café computers and a shared tablet, honest people's own phones signed
    in on, 0-3 borrowed honest numbers, look-alike emails spread over several providers).
    """

    kinds: Mapping[str, float]
    drawn_camouflage: bool


BASE_RECIPES = RingRecipes(RING_KINDS, drawn_camouflage=False)
HARD_RECIPES = RingRecipes({**RING_KINDS, "sparse": 0.08}, drawn_camouflage=True)
RECIPES = {"base": BASE_RECIPES, "hard": HARD_RECIPES}
OTHER_SIGNALS = ("sequential_phone", "device_farm", "shared_device", "shared_upi", "sequential_upi")
COVERAGE = (0.7, 0.9)  # share of members a signal reaches, drawn per ring and signal
CAMOUFLAGED_COVERAGE = (0.55, 0.8)
BIG_RING = 0.06  # rings drawn from 31..60 members; the rest mostly 3..30
RING_DOMAINS = (
    ("gmail.com", 0.55), ("outlook.com", 0.12), ("yahoo.com", 0.10), ("rediffmail.com", 0.08),
    ("hotmail.com", 0.07), ("yandex.com", 0.04), ("protonmail.com", 0.04),
)  # fmt: skip
GMAIL_TYPOS = tuple(d for d in vocab.TYPO_DOMAINS if d.startswith("gm") or d.startswith("gn"))


@dataclass(frozen=True)
class RingPlan:
    """One planted ring: rows [start, start+size) of the fraud block."""

    ring_id: str
    kind: str
    start: int
    size: int
    signals: tuple[str, ...]
    timing: str  # burst | spread | slow


def plan_rings(
    rng: np.random.Generator, n_fraud: int, kinds_mix: Mapping[str, float] = RING_KINDS
) -> list[RingPlan]:
    """Ring sizes summing to n_fraud (mostly 3-30, a few up to 60) and a kind for each."""
    sizes: list[int] = []
    total = 0
    while total < n_fraud:
        if rng.random() < BIG_RING:
            s = int(rng.integers(31, 61))
        else:
            s = int(np.clip(round(rng.lognormal(math.log(8), 0.6)), 3, 30))
        s = min(s, n_fraud - total)
        if s < 3:
            if sizes:
                sizes[-1] += s
            total += s
            break
        sizes.append(s)
        total += s
    kinds = list(kinds_mix)
    weights = np.array([kinds_mix[k] for k in kinds])
    first = list(rng.permutation(kinds))  # every kind once, then by weight
    chosen = first[: len(sizes)] + list(
        rng.choice(kinds, size=max(0, len(sizes) - len(kinds)), p=weights / weights.sum())
    )
    plans: list[RingPlan] = []
    start = 0
    width = max(4, len(str(len(sizes))))
    order = rng.permutation(len(sizes))  # ring ids say nothing about kind or size
    for i, (size, kind) in enumerate(zip(sizes, chosen, strict=True)):
        plans.append(
            RingPlan(
                ring_id=f"R{int(order[i]) + 1:0{width}d}",
                kind=str(kind),
                start=start,
                size=size,
                signals=_signals_for(rng, str(kind)),
                timing=_timing_for(rng, str(kind)),
            )
        )
        start += size
    return plans


def _signals_for(rng: np.random.Generator, kind: str) -> tuple[str, ...]:
    if kind in (
        "sequential_email",
        "sequential_phone",
        "gmail_variant",
        "device_farm",
        "typo_domain",
    ):
        return (kind,)
    if kind == "upi_mule":
        if rng.random() < 0.5:
            return ("sequential_upi",)
        second = str(rng.choice(["sequential_phone", "shared_device", "sequential_email"]))
        return ("shared_upi", second)
    if kind == "camouflaged":
        return (
            str(rng.choice(["shared_device", "sequential_phone", "sequential_email"])),
            "camouflage",
        )
    if kind == "sparse":
        return ("sparse_ties",)
    if kind == "slow":
        return (
            str(
                rng.choice(
                    [
                        "sequential_email",
                        "sequential_phone",
                        "shared_device",
                        "gmail_variant",
                        "typo_domain",
                    ]
                )
            ),
        )
    # mixed: one email signal + one other, or phones + a farm
    if rng.random() < 0.8:
        return (str(rng.choice(EMAIL_SIGNALS)), str(rng.choice(OTHER_SIGNALS)))
    return ("sequential_phone", "device_farm")


def _timing_for(rng: np.random.Generator, kind: str) -> str:
    if kind == "slow":
        return "slow"
    return "burst" if rng.random() < 0.8 else "spread"


@dataclass
class FraudBlock:
    """Mutable columns of the fraud rows while rings are written into them (Python lists: the
    block is a few percent of users and is edited member by member)."""

    first: list[str]
    last: list[str]
    email: list[str | None]
    phone: list[int]
    phone_fmt: list[int]
    name: list[str | None]
    created: list[int]
    upi: list[str | None] = field(default_factory=list)  # planted VPAs (None: not planted)
    ring_id: list[str] = field(default_factory=list)
    ring_kind: list[str] = field(default_factory=list)
    dev_uidx: list[int] = field(default_factory=list)
    dev_id: list[str] = field(default_factory=list)
    dev_ip: list[str | None] = field(default_factory=list)
    dev_seen: list[int] = field(default_factory=list)


class _Stream:
    """Random values drawn in vectorised chunks and handed out one at a time, never repeating a
    draw (so two rings never get the same device id by accident)."""

    def __init__(self, draw: Callable[[int], list[str]], chunk: int) -> None:
        self._draw, self._chunk = draw, max(256, chunk)
        self._buf: list[str] = []

    def __call__(self) -> str:
        if not self._buf:
            self._buf = self._draw(self._chunk)[::-1]
        return self._buf.pop()


class _Pools:
    """Per-kind value streams the per-member code takes from."""

    def __init__(self, rng: np.random.Generator, n: int, venues: Venues) -> None:
        pool = pl.Series(venues.cgnat_pool, dtype=pl.String)
        p = zipf_p(len(pool), 0.6)
        self.device = _Stream(lambda k: device_ids(rng, k).to_list(), 2 * n)
        self.home = _Stream(lambda k: ipv4(rng, vocab.BROADBAND_PREFIXES, k).to_list(), 2 * n)
        self.handset = _Stream(lambda k: ipv6(rng, vocab.JIO_V6_PREFIXES, k).to_list(), n)
        self.datacenter = _Stream(
            lambda k: ipv4(rng, vocab.DATACENTER_PREFIXES, k).to_list(), n // 3
        )
        self.nat = _Stream(lambda k: pool.gather(rng.choice(len(pool), size=k, p=p)).to_list(), n)


def build_rings(
    rng: np.random.Generator,
    plans: list[RingPlan],
    block: FraudBlock,
    honest_phones: np.ndarray,
    venues: Venues,
    start: datetime,
    days: int,
    honest_devices: list[str] | None = None,
    recipes: RingRecipes = BASE_RECIPES,
) -> None:
    """Write every planned ring into `block` (fields, device sightings, truth columns).
    Camouflage sightings of honest users are appended to the block's device rows too.
    `honest_devices[i]`: honest user i's own (first) device, which camouflaged rings sign in on
    when `recipes.drawn_camouflage`."""
    pools = _Pools(rng, len(block.email), venues)
    if not block.upi:
        block.upi = [None] * len(block.email)
    ring_starts = signup_times(rng, len(plans), start, days)
    for plan, t0 in zip(plans, ring_starts, strict=True):
        members = list(range(plan.start, plan.start + plan.size))
        block.ring_id.extend([plan.ring_id] * plan.size)
        block.ring_kind.extend([plan.kind] * plan.size)
        _times(rng, plan, block, members, int(t0), int(start.timestamp()) + days * DAY_S)
        ctx = _RingContext(rng, plan, block, members, honest_phones, venues, pools)
        ctx.drawn = recipes.drawn_camouflage
        ctx.identity_defaults()
        has_devices: set[int] = set()
        lo, hi = CAMOUFLAGED_COVERAGE if plan.kind == "camouflaged" else COVERAGE
        if plan.kind == "sparse":  # the ties reach everyone: each member hangs on one
            lo = hi = 1.0
        covers = _covers_everyone(
            rng,
            members,
            plan.signals,
            [ctx.cover(float(rng.uniform(lo, hi))) for _ in plan.signals],
        )
        for signal, covered in zip(plan.signals, covers, strict=True):
            if signal == "sequential_email":
                ctx.sequential_email(covered)
            elif signal == "sequential_phone":
                ctx.sequential_phone(covered)
            elif signal == "gmail_variant":
                ctx.gmail_variant(covered)
            elif signal == "typo_domain":
                ctx.typo_domain(covered)
            elif signal == "device_farm":
                has_devices |= ctx.device_farm(covered)
            elif signal == "shared_device":
                has_devices |= ctx.shared_device(covered, n_devices=int(rng.integers(1, 3)))
            elif signal == "shared_upi":
                ctx.shared_upi(covered)
            elif signal == "sequential_upi":
                ctx.sequential_upi(covered)
            elif signal == "sparse_ties":
                ctx.sparse_ties(covered)
            elif signal == "camouflage":
                ctx.camouflage(honest_devices if ctx.drawn else None)
        ctx.own_devices(skip=has_devices)


def _covers_everyone(
    rng: np.random.Generator,
    members: list[int],
    signals: tuple[str, ...],
    covers: list[list[int]],
) -> list[list[int]]:
    """Give every member at least one of the ring's identity signals.

    Each signal reaches only part of the ring, but one actor runs every account, so each account
    carries at least one trace of it; a member with none would be planted truth that no detector
    could ever see. Members no signal reached join one signal drawn at random.
    """
    linkable = [i for i, sig in enumerate(signals) if sig != "camouflage"]
    if not linkable:
        return covers
    out = [list(c) for c in covers]
    reached = {m for i in linkable for m in out[i]}
    for m in members:
        if m not in reached:
            out[linkable[int(rng.integers(0, len(linkable)))]].append(m)
    return [sorted(c) for c in out]


def _times(
    rng: np.random.Generator,
    plan: RingPlan,
    block: FraudBlock,
    members: list[int],
    t0: int,
    end_s: int,
) -> None:
    """Sign-up times of a ring starting at t0: minutes apart (burst), over days (spread) or over
    weeks (slow); shifted back if the ring would run past the end of the period."""
    m = len(members)
    if plan.timing == "slow":
        span = int(rng.integers(21, 76)) * DAY_S
    elif plan.timing == "spread":
        span = int(rng.integers(1, 11)) * DAY_S
    else:
        span = 0
    t0 = min(t0, end_s - span)
    if span:
        offsets = np.sort(rng.integers(0, span, size=m))
        offsets[0], offsets[-1] = 0, span  # the ring really does take that long
    else:  # a script or a crew working through a list: minutes apart
        offsets = np.cumsum(rng.exponential(rng.uniform(2, 45) * 60, size=m)).astype(np.int64)
    for i, u in enumerate(members):
        block.created[u] = t0 + int(offsets[i])


class _RingContext:
    """The per-ring editing operations; each signal overwrites the covered members' fields."""

    def __init__(
        self,
        rng: np.random.Generator,
        plan: RingPlan,
        block: FraudBlock,
        members: list[int],
        honest_phones: np.ndarray,
        venues: Venues,
        pools: _Pools,
    ) -> None:
        self.rng, self.plan, self.b, self.members = rng, plan, block, members
        self.honest_phones, self.venues, self.pools = honest_phones, venues, pools
        self.n_honest = len(honest_phones)
        r = rng.random()  # where the ring's traffic comes from
        self.ip_mode = "datacenter" if r < 0.25 else ("nat" if r < 0.65 else "residential")
        if plan.kind == "sparse" and self.ip_mode == "datacenter":  # its own IPs would span it
            self.ip_mode = "residential"
        self.dc_ips = [pools.datacenter() for _ in range(int(rng.integers(1, 4)))]
        self.fmt = int(rng.integers(0, len(PHONE_FORMATS)))
        self.phone_traced: set[int] = set()  # members whose planted phone is a ring trace
        self.drawn = False  # camouflage drawn per ring (`RingRecipes.drawn_camouflage`)

    # ---- helpers ---------------------------------------------------------------------------
    def cover(self, p: float) -> list[int]:
        """Members a signal reaches: each with probability p, at least two."""
        rng, ms = self.rng, self.members
        hit = [u for u in ms if rng.random() < p]
        if len(hit) < 2:
            hit = sorted(
                {*hit, *(int(x) for x in rng.choice(ms, size=min(2, len(ms)), replace=False))}
            )
        return hit

    def ip(self) -> str:
        if self.ip_mode == "datacenter" and self.rng.random() < 0.7:
            return self.dc_ips[int(self.rng.integers(0, len(self.dc_ips)))]
        if self.ip_mode == "residential":
            return self.pools.home()
        if self.rng.random() < 0.25:  # a Jio handset: its own IPv6 address
            return self.pools.handset()
        return self.pools.nat()

    def sight(self, uidx: int, device: str, ip: str | None, seen: int) -> None:
        b = self.b
        b.dev_uidx.append(uidx)
        b.dev_id.append(device)
        b.dev_ip.append(ip)
        b.dev_seen.append(seen)

    def name_base(self) -> tuple[str, str]:
        rng = self.rng
        names = MALE_FIRST if rng.random() < 0.6 else FEMALE_FIRST
        f = names[int(rng.choice(len(names), p=zipf_p(len(names), 0.9)))]
        la = LAST[int(rng.choice(len(LAST), p=zipf_p(len(LAST), 0.85)))]
        return f, la

    # ---- identity ---------------------------------------------------------------------------
    def identity_defaults(self) -> None:
        """Phone format habit of the crew; some rings reuse one name for many accounts."""
        rng, b = self.rng, self.b
        for u in self.members:
            if rng.random() < 0.85:
                b.phone_fmt[u] = self.fmt
        if rng.random() < 0.25:
            u0 = self.members[0]
            for u in self.members[1:]:
                if rng.random() < 0.4:
                    b.name[u] = b.name[u0]

    def sequential_email(self, covered: list[int]) -> None:
        """`base` + counter on one domain: priya.verma01..priya.verma12@gmail.com, deals7..@…"""
        rng, b = self.rng, self.b
        if rng.random() < 0.5:
            f, la = self.name_base()
            base = [f"{f}.{la}", f"{f}{la}", f"{f}_{la}", f"{f[0]}{la}", f"{f}{la[0]}"][
                int(rng.integers(0, 5))
            ]
        else:
            w = vocab.NON_NAME_BASES
            second = [w[int(rng.integers(0, len(w)))], LAST[int(rng.integers(0, len(LAST)))], ""]
            base = (
                w[int(rng.integers(0, len(w)))]
                + ["", ".", "_"][int(rng.integers(0, 3))]
                + second[int(rng.integers(0, 3))]
            )
        sep = ["", "", "", ".", "_"][int(rng.integers(0, 5))]
        pad = [0, 0, 2, 2, 3][int(rng.integers(0, 5))]
        n = int(rng.choice([0, 1, 1, 1, int(rng.integers(2, 90))]))
        gaps = rng.random() < 0.3
        domains = [d for d, _ in RING_DOMAINS]
        p = np.array([w for _, w in RING_DOMAINS])
        main = domains[int(rng.choice(len(domains), p=p / p.sum()))]
        # camouflaged crews spread their look-alikes over several providers
        spread = self.drawn and self.plan.kind == "camouflaged"
        stay = float(rng.uniform(0.3, 0.9)) if spread else 0.9
        for u in covered:
            dom = main if rng.random() < stay else domains[int(rng.integers(0, len(domains)))]
            b.email[u] = f"{base}{sep}{n:0{pad}d}@{dom}" if pad else f"{base}{sep}{n}@{dom}"
            n += int(rng.integers(1, 4)) if gaps else 1

    def _handle_base(self) -> str:
        """A handle stem a crew would script: a popular name or a deal word."""
        rng = self.rng
        if rng.random() < 0.6:
            f, la = self.name_base()
            return [f"{f}.{la}", f"{f}{la}", f"{f}_{la}", f"{f[0]}{la}"][int(rng.integers(0, 4))]
        w = vocab.NON_NAME_BASES
        return w[int(rng.integers(0, len(w)))] + ["", ".", "_"][int(rng.integers(0, 3))]

    def sequential_upi(self, covered: list[int]) -> None:
        """Counter handles on one PSP, now and then on another or the bank's alias:
        rahul.sharma1@ybl … rahul.sharma9@ybl, cashback07@okicici ~ cashback08@icici."""
        rng, b = self.rng, self.b
        base = self._handle_base()
        main, other = (str(p) for p in psp_choice(rng, 2))
        n = int(rng.choice([1, 1, 0, int(rng.integers(2, 60))]))
        pad = [0, 0, 2][int(rng.integers(0, 3))]
        for u in covered:
            psp = main if rng.random() < 0.85 else other
            b.upi[u] = f"{base}{n:0{pad}d}@{psp}" if pad else f"{base}{n}@{psp}"
            n += 1 if rng.random() < 0.7 else int(rng.integers(2, 4))

    def shared_upi(self, covered: list[int]) -> None:
        """Mule payouts: every covered account pays out to one of one or two collector VPAs."""
        rng, b = self.rng, self.b
        collectors = [
            f"{self._handle_base()}{int(rng.integers(1, 999))}@{psp_choice(rng, 1)[0]}"
            for _ in range(int(rng.integers(1, 3)))
        ]
        for u in covered:
            b.upi[u] = collectors[int(rng.integers(0, len(collectors)))]

    def sequential_phone(self, covered: list[int]) -> None:
        """Numbers from one batch of SIMs: consecutive, or with small gaps."""
        rng, b = self.rng, self.b
        base = int(rng.choice([9, 8, 7, 6])) * 1_000_000_000 + int(rng.integers(0, 999_000_000))
        r = rng.random()
        top = 2 if r < 0.5 else (4 if r < 0.85 else 10)
        nums = base + np.cumsum(rng.integers(1, top, size=len(covered)))
        if rng.random() < 0.5:  # SIMs handed out in no particular order
            nums = rng.permutation(nums)
        for u, num in zip(covered, nums, strict=True):
            b.phone[u] = int(num)
        self.phone_traced.update(covered)

    def gmail_variant(self, covered: list[int]) -> None:
        """One Gmail mailbox, many spellings: dots anywhere, +tags, googlemail.com, capitals."""
        rng, b = self.rng, self.b
        f, la = self.name_base()
        base = f"{f}{la}" + (str(int(rng.integers(1, 100))) if rng.random() < 0.4 else "")
        seen: set[str] = set()
        for u in covered:
            for _ in range(50):
                chars = list(base)
                dots = rng.random(len(chars) - 1) < rng.uniform(0.05, 0.4)
                local = "".join(
                    c + ("." if i < len(dots) and dots[i] else "") for i, c in enumerate(chars)
                )
                if rng.random() < 0.35:
                    tag = ["shop", "bnpl", "x", "1", "2", "pay", "new", "deal"][
                        int(rng.integers(0, 8))
                    ]
                    local += (
                        "+" + tag + (str(int(rng.integers(1, 99))) if rng.random() < 0.5 else "")
                    )
                if rng.random() < 0.1:
                    local = local[0].upper() + local[1:]
                dom = "googlemail.com" if rng.random() < 0.1 else "gmail.com"
                email = f"{local}@{dom}"
                if email.lower() not in seen:
                    seen.add(email.lower())
                    b.email[u] = email
                    break

    def typo_domain(self, covered: list[int]) -> None:
        """One local part registered on many misspellings of a provider."""
        rng, b = self.rng, self.b
        f, la = self.name_base()
        local = [f"{f}.{la}", f"{f}{la}", f"{f}{la}{int(rng.integers(1, 100))}"][
            int(rng.integers(0, 3))
        ]
        doms = list(GMAIL_TYPOS) if rng.random() < 0.7 else list(vocab.TYPO_DOMAINS)
        doms = [doms[int(i)] for i in rng.permutation(len(doms))]
        if rng.random() < 0.5:
            doms.insert(int(rng.integers(0, 3)), "gmail.com")  # the real mailbox, too
        for i, u in enumerate(covered):
            loop = i // len(doms)
            b.email[u] = f"{local}{loop if loop else ''}@{doms[i % len(doms)]}"

    # ---- devices ----------------------------------------------------------------------------
    def device_farm(self, covered: list[int]) -> set[int]:
        """A handful of emulators or rooted phones driving many accounts from cloud IPs."""
        rng, b = self.rng, self.b
        k = max(1, min(4, math.ceil(len(covered) / int(rng.integers(6, 20)))))
        farm: list[str] = []
        for _ in range(k):
            style = rng.random()
            if style < 0.4:
                farm.append(hex_ids(rng, 1, 16).item())
            elif style < 0.6:
                farm.append("sdk_gphone64_x86_64-" + hex_ids(rng, 1, 12).item())
            elif style < 0.8:
                farm.append("generic_x86-" + hex_ids(rng, 1, 8).item())
            else:
                farm.append(
                    "emulator-"
                    + str(5554 + 2 * int(rng.integers(0, 16)))
                    + "-"
                    + hex_ids(rng, 1, 8).item()
                )
        for u in covered:
            dev = farm[int(rng.integers(0, k))]
            ip = (
                self.dc_ips[int(rng.integers(0, len(self.dc_ips)))]
                if rng.random() < 0.8
                else self.pools.nat()
            )
            self.sight(self.n_honest + u, dev, ip, b.created[u] + int(rng.integers(0, 300)))
            if k > 1 and rng.random() < 0.25:
                other = farm[int(rng.integers(0, k))]
                self.sight(
                    self.n_honest + u, other, ip, b.created[u] + int(rng.integers(300, 5 * DAY_S))
                )
        return set(covered)

    def shared_device(self, covered: list[int], n_devices: int) -> set[int]:
        """One or two ordinary handsets passed around the crew."""
        rng, b = self.rng, self.b
        devs = [self.pools.device() for _ in range(n_devices)]
        for u in covered:
            self.sight(
                self.n_honest + u,
                devs[int(rng.integers(0, n_devices))],
                self.ip(),
                b.created[u] + int(rng.integers(0, 300)),
            )
        return set(covered)

    def own_devices(self, skip: set[int]) -> None:
        """Members without a ring device use their own (one, sometimes two). A few rings keep a
        spare handset that part of the crew also touches."""
        rng, b = self.rng, self.b
        spare = self.pools.device() if rng.random() < 0.2 else None
        if self.plan.kind == "sparse":  # a handset the crew shares would span the ring
            spare = None
        for u in self.members:
            if u not in skip:
                self.sight(
                    self.n_honest + u,
                    self.pools.device(),
                    self.ip(),
                    b.created[u] + int(rng.integers(0, 300)),
                )
                if rng.random() < 0.25:
                    self.sight(
                        self.n_honest + u,
                        self.pools.device(),
                        self.ip(),
                        b.created[u] + int(rng.exponential(10 * DAY_S)),
                    )
            if spare is not None and rng.random() < 0.3:
                self.sight(
                    self.n_honest + u, spare, self.ip(), b.created[u] + int(rng.integers(0, DAY_S))
                )

    def camouflage(self, honest_devices: list[str] | None = None) -> None:
        """Hide among honest users: sign up from a café's IP (sometimes its computers), share a
        'family' tablet with a few honest people, borrow honest people's phone numbers (never
        over a member's only ring trace: a member with none would be truth no detector could
        see) and, with `honest_devices`, sign in on honest people's own phones. Drawn
        camouflage (`self.drawn`) draws each tactic's share per ring; otherwise they are fixed
        (and the random draws are those of the recipe before #14)."""
        rng, b, v = self.rng, self.b, self.venues
        if self.drawn:
            at_cafe, on_pc = float(rng.uniform(0.2, 0.8)), float(rng.uniform(0.0, 0.5))
            on_tablet, tablet_users, borrowed = float(rng.uniform(0.2, 0.6)), (1, 5), (0, 4)
        else:
            at_cafe, on_pc, on_tablet, tablet_users, borrowed = 0.6, 0.3, 0.4, (1, 4), (1, 3)
        if v.cafe_ips:
            c = int(rng.integers(0, len(v.cafe_ips)))
            for u in self.members:
                if rng.random() < at_cafe:
                    pcs = v.cafe_devices[c]
                    dev = (
                        pcs[int(rng.integers(0, len(pcs)))]
                        if pcs and rng.random() < on_pc
                        else self.pools.device()
                    )
                    self.sight(
                        self.n_honest + u,
                        dev,
                        v.cafe_ips[c],
                        b.created[u] + int(rng.integers(0, 3 * DAY_S)),
                    )
        if self.n_honest == 0:
            return
        tablet = self.pools.device()
        for u in self.members:
            if rng.random() < on_tablet:
                self.sight(
                    self.n_honest + u,
                    tablet,
                    self.pools.nat(),
                    b.created[u] + int(rng.integers(0, 10 * DAY_S)),
                )
        for h in rng.integers(0, self.n_honest, size=int(rng.integers(*tablet_users))):
            self.sight(
                int(h),
                tablet,
                self.pools.home(),
                b.created[self.members[0]] + int(rng.integers(-30 * DAY_S, 30 * DAY_S)),
            )
        if honest_devices:
            for h in rng.integers(0, self.n_honest, size=int(rng.integers(0, 3))):
                u = self.members[int(rng.integers(0, len(self.members)))]
                if honest_devices[int(h)]:
                    self.sight(
                        self.n_honest + u,
                        honest_devices[int(h)],
                        self.pools.nat(),
                        b.created[u] + int(rng.integers(0, 5 * DAY_S)),
                    )
        free = [u for u in self.members if u not in self.phone_traced]
        for h in rng.integers(0, self.n_honest, size=int(rng.integers(*borrowed))):
            if not self.honest_phones[int(h)]:
                continue
            if self.drawn:
                if free:
                    b.phone[free[int(rng.integers(0, len(free)))]] = int(self.honest_phones[int(h)])
                continue
            u = self.members[int(rng.integers(0, len(self.members)))]
            if u not in self.phone_traced:
                b.phone[u] = int(self.honest_phones[int(h)])

    def sparse_ties(self, covered: list[int]) -> None:
        """A ring no identifier spans: each member (in random order) hangs on the previous one,
        or, at a share drawn per ring, on any earlier one (a tree), by one tie of its own: a
        handset the two pass between them, a home connection they share, or one person's name
        parts in another order as their two handles."""
        rng, b = self.rng, self.b
        order = [covered[int(i)] for i in rng.permutation(len(covered))]
        branch = float(rng.uniform(0.0, 0.6))
        mix = rng.dirichlet(np.ones(3))
        domains = [d for d, _ in RING_DOMAINS]
        handled: set[int] = set()  # one handle per member: a second would erase its first tie
        for i in range(1, len(order)):
            u = order[i]
            w = order[i - 1] if rng.random() >= branch else order[int(rng.integers(0, i))]
            tie = int(rng.choice(3, p=mix))
            if tie == 2 and (u in handled or w in handled):
                tie = 0
            seen = b.created[u] + int(rng.integers(0, DAY_S))
            if tie == 0:
                handset = self.pools.device()
                self.sight(self.n_honest + u, handset, self.ip(), seen)
                self.sight(
                    self.n_honest + w, handset, self.ip(), seen + int(rng.integers(60, DAY_S))
                )
            elif tie == 1:
                home = self.pools.home()
                self.sight(self.n_honest + u, self.pools.device(), home, seen)
                self.sight(self.n_honest + w, self.pools.device(), home, seen + 600)
            else:
                f, la = self.name_base()
                seps = [".", "_", ""]
                first = f"{f}{seps[int(rng.integers(0, 3))]}{la}"
                second = f"{la}{seps[int(rng.integers(0, 3))]}{f}"
                if rng.random() < 0.5:
                    second += str(int(rng.integers(1, 100)))
                for x, local in ((w, first), (u, second)):
                    b.email[x] = f"{local}@{domains[int(rng.integers(0, len(domains)))]}"
                handled.update((u, w))
