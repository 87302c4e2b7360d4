"""Honest structure: households, cyber-cafés and offices, carrier NAT, and device sightings.

These are the innocent reasons accounts share identifiers. A detector that flags every shared
device or IP drowns in families and cafés; that is exactly what this module makes it face.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from graphfraud.synthetic import vocab
from graphfraud.synthetic.render import DAY_S, hex_ids, ipv4, ipv6, uuid_ids, zipf_p

FAMILY_SHARE = 0.35  # honest users living with other users of the service
FAMILY_SIZES = (np.array([2, 3, 4, 5]), np.array([0.38, 0.30, 0.20, 0.12]))
FAMILY_SURNAME = 0.85  # household members who share the head's surname
FAMILY_PHONE = 0.08  # members who enter the head's phone number
FAMILY_DEVICE = 0.6  # households with a shared tablet / laptop
BROADBAND = 0.7  # households with a home connection (others are mobile-only)
OWN_DEVICES = (np.array([1, 2, 3, 4]), np.array([0.72, 0.21, 0.05, 0.02]))
PLACEHOLDER_DEVICE = 0.006  # own devices reporting a placeholder id shared by many
RESIGHT = 0.10  # own devices seen a second time, from another network
VENUE_PER_USERS = 2500  # one café/office per this many honest users
VENUE_SIZE = (20, 400)
DUPLICATE_ACCOUNTS = 0.004  # honest people who open a second account (forgot password, new email)
FAMILY_SEQ_PHONE = 0.04  # households whose SIMs were bought together: numbers a few apart
CORPORATE_SIMS = 0.2  # offices that hand out company SIMs with consecutive numbers
VPN = 0.02  # sightings through a VPN / iCloud Private Relay / cloud exit (shared by many)
HONEST_EMULATOR = 0.0005  # PC gamers on BlueStacks-style emulators


@dataclass(frozen=True)
class HonestWorld:
    """The honest side after structure is added: people (all rows, fraud rows untouched),
    honest device sightings, venues, and second accounts (row, row of the first account)."""

    people: pl.DataFrame
    devices: pl.DataFrame
    venues: Venues
    twin_rows: np.ndarray
    twin_src: np.ndarray
    household_head: np.ndarray  # per honest row: the row of its household's head (or itself)


@dataclass(frozen=True)
class Venues:
    """Shared places ring builders can hide in: café IPs and the café computers' device ids."""

    cafe_ips: list[str]
    cafe_devices: list[list[str]]
    cgnat_pool: list[str]


def device_ids(rng: np.random.Generator, n: int) -> pl.Series:
    """n fresh device ids in the shapes real SDKs send: Android ids (16 hex), iOS vendor ids
    (upper-case UUID), web fingerprints (32 hex)."""
    kind = rng.choice(3, size=n, p=[0.5, 0.25, 0.25])
    android, ios, web = hex_ids(rng, n, 16), uuid_ids(rng, n), hex_ids(rng, n, 32)
    return (
        pl.DataFrame({"k": kind, "a": android, "i": ios, "w": web})
        .select(
            pl.when(pl.col("k") == 0)
            .then(pl.col("a"))
            .when(pl.col("k") == 1)
            .then(pl.col("i"))
            .otherwise(pl.col("w"))
        )
        .to_series()
    )


def cgnat_pool(rng: np.random.Generator, n_users: int) -> pl.Series:
    """Carrier-grade NAT exits: few addresses, each in front of many subscribers."""
    return ipv4(rng, vocab.MOBILE_PREFIXES, max(50, n_users // 200)).unique(maintain_order=True)


def draw_cgnat(rng: np.random.Generator, pool: pl.Series, n: int) -> pl.Series:
    return pool.gather(rng.choice(len(pool), size=n, p=zipf_p(len(pool), 0.6)))


def honest_structure(
    rng: np.random.Generator, people: pl.DataFrame, n_honest: int, end_s: int
) -> HonestWorld:
    """Rewrite rows 0..n_honest-1 of `people` into households, workplaces and second accounts,
    and draw their device sightings (uidx, device_id, ip, seen)."""
    h = n_honest
    # ---- households: consecutive row blocks (rows are shuffled later, so blocks leak nothing)
    sizes_v, sizes_p = FAMILY_SIZES
    sizes = rng.choice(sizes_v, size=int(FAMILY_SHARE * h / 3) + 1, p=sizes_p)
    sizes = sizes[np.cumsum(sizes) <= int(FAMILY_SHARE * h)]
    in_family = int(sizes.sum())
    hh = np.arange(h, dtype=np.int64) + len(sizes)  # singletons get their own household id
    hh[:in_family] = np.repeat(np.arange(len(sizes)), sizes)
    head = np.arange(h, dtype=np.int64)
    head[:in_family] = np.repeat(np.cumsum(sizes) - sizes, sizes)
    member = head != np.arange(h)

    first = people["first"].to_numpy()[:h]
    last = people["last"].to_numpy()[:h].copy()
    same_name = member & (rng.random(h) < FAMILY_SURNAME)
    last[same_name] = last[head[same_name]]
    phone = people["phone"].to_numpy()[:h].copy()
    share_phone = member & (rng.random(h) < FAMILY_PHONE)
    phone[share_phone] = phone[head[share_phone]]
    seq_hh = member & ~share_phone & (phone[head] > 0)
    seq_hh &= rng.random(int(hh.max()) + 1)[hh] < FAMILY_SEQ_PHONE
    phone[seq_hh] = phone[head[seq_hh]] + rng.integers(1, 6, size=int(seq_hh.sum()))

    # ---- second accounts of honest people: same person, new email, often same phone & device
    n_dup = int(DUPLICATE_ACCOUNTS * h)
    dup_rows = np.arange(h - n_dup, h)  # singletons at the end of the honest block
    dup_src = rng.integers(0, max(h - n_dup, 1), size=n_dup)
    first = first.copy()
    first[dup_rows], last[dup_rows] = first[dup_src], last[dup_src]
    keep_phone = rng.random(n_dup) < 0.6
    phone[dup_rows[keep_phone]] = phone[dup_src[keep_phone]]
    created = people["created"].to_numpy().copy()
    # the second account comes later than the first, within the period
    created[dup_rows] = created[dup_src] + (rng.random(n_dup) * (end_s - created[dup_src])).astype(
        np.int64
    )
    byear = people["birth_year"].to_numpy().copy()
    byear[dup_rows] = byear[dup_src]

    devices, venues = _honest_devices(rng, created[:h], hh, head, dup_rows, dup_src, phone)

    n = len(people)
    people = people.with_columns(
        first=pl.Series(np.concatenate([first, people["first"].to_numpy()[h:]])),
        last=pl.Series(np.concatenate([last, people["last"].to_numpy()[h:]])),
        phone=pl.Series(np.concatenate([phone, people["phone"].to_numpy()[h:]])),
        created=pl.Series(created),
        birth_year=pl.Series(byear),
    )
    # surname changed → the email/name must follow (re-rendered for those rows only)
    from graphfraud.synthetic.people import display_names, render_emails

    redo = np.flatnonzero(
        np.concatenate([same_name | np.isin(np.arange(h), dup_rows), np.zeros(n - h, bool)])
    )
    sub = people[redo]
    had_email = sub["email"].is_not_null()
    new_email = render_emails(rng, sub["first"], sub["last"], sub["birth_year"])
    new_email = pl.select(
        pl.when(pl.lit(had_email)).then(pl.lit(new_email)).otherwise(None)
    ).to_series()
    had_name = sub["name"].is_not_null()
    new_name = display_names(rng, sub["first"], sub["last"])
    new_name = pl.select(
        pl.when(pl.lit(had_name)).then(pl.lit(new_name)).otherwise(None)
    ).to_series()
    people = people.with_columns(
        email=people["email"].scatter(redo, new_email), name=people["name"].scatter(redo, new_name)
    )

    return HonestWorld(people, devices, venues, dup_rows, dup_src, head)


def _honest_devices(
    rng: np.random.Generator,
    created: np.ndarray,
    hh: np.ndarray,
    head: np.ndarray,
    dup_rows: np.ndarray,
    dup_src: np.ndarray,
    phone: np.ndarray,
) -> tuple[pl.DataFrame, Venues]:
    """Device sightings of honest users; also gives office workers their company SIM numbers
    (edits `phone` in place)."""
    h = len(created)
    n_hh = int(hh.max()) + 1
    home_ip = ipv4(rng, vocab.BROADBAND_PREFIXES, n_hh)
    has_home = rng.random(n_hh) < BROADBAND
    pool = cgnat_pool(rng, h)
    vpn = ipv4(rng, vocab.DATACENTER_PREFIXES, max(20, h // 5000))

    # own devices
    k = rng.choice(OWN_DEVICES[0], size=h, p=OWN_DEVICES[1])
    own_u = np.repeat(np.arange(h), k)
    m = len(own_u)
    own_id = device_ids(rng, m)
    placeholder = rng.random(m) < PLACEHOLDER_DEVICE
    ph_vals = [v for v, _ in vocab.PLACEHOLDER_DEVICE_IDS]
    ph_p = np.array([p for _, p in vocab.PLACEHOLDER_DEVICE_IDS])
    own_id = own_id.scatter(
        np.flatnonzero(placeholder),
        pl.Series(ph_vals).gather(rng.choice(len(ph_vals), size=int(placeholder.sum()), p=ph_p)),
    )
    emu = np.flatnonzero(rng.random(m) < HONEST_EMULATOR)
    own_id = own_id.scatter(
        emu,
        ("generic_x86-" + hex_ids(rng, len(emu), 8))
        if len(emu)
        else pl.Series([], dtype=pl.String),
    )
    first_dev = np.cumsum(k) - k  # row of each user's first own device
    # a second account of an honest person is used from the same phone most of the time
    same_dev = rng.random(len(dup_rows)) < 0.7
    own_id = own_id.scatter(
        first_dev[dup_rows[same_dev]], own_id.gather(first_dev[dup_src[same_dev]])
    )

    net = rng.choice(3, size=m, p=[0.45, 0.37, 0.18])  # home / carrier NAT / IPv6 handset
    net = np.where((net == 0) & ~has_home[hh[own_u]], 1, net)
    ip = _network_ips(rng, net, home_ip.gather(hh[own_u]), pool, vpn)
    seen = created[own_u] + np.where(
        np.arange(m) == first_dev[own_u],
        rng.integers(0, 300, m),
        rng.exponential(20 * DAY_S, m).astype(np.int64),
    )
    rows = [pl.DataFrame({"uidx": own_u, "device_id": own_id, "ip": ip, "seen": seen})]

    # second sighting of some own devices, from another network; some SDKs upper-case the id
    again = np.flatnonzero(rng.random(m) < RESIGHT)
    net2 = np.where(net[again] == 0, 1, np.where(rng.random(len(again)) < 0.5, 0, 2))
    net2 = np.where((net2 == 0) & ~has_home[hh[own_u[again]]], 1, net2)
    re_id = own_id.gather(again)
    upper = rng.random(len(again)) < 0.1
    re_id = pl.select(
        pl.when(pl.lit(pl.Series(upper)))
        .then(pl.lit(re_id).str.to_uppercase())
        .otherwise(pl.lit(re_id))
    ).to_series()
    rows.append(
        pl.DataFrame(
            {
                "uidx": own_u[again],
                "device_id": re_id,
                "ip": _network_ips(rng, net2, home_ip.gather(hh[own_u[again]]), pool, vpn),
                "seen": seen[again] + rng.exponential(30 * DAY_S, len(again)).astype(np.int64),
            }
        )
    )

    # shared family device (tablet / laptop), seen at home
    fam_hh = np.unique(hh[head != np.arange(h)])
    fam_hh = fam_hh[rng.random(len(fam_hh)) < FAMILY_DEVICE]
    fam_dev = hex_ids(rng, len(fam_hh), 32)
    dev_of_hh = np.full(n_hh, -1)
    dev_of_hh[fam_hh] = np.arange(len(fam_hh))
    users = np.flatnonzero((dev_of_hh[hh] >= 0) & (rng.random(h) < 0.8))
    rows.append(
        pl.DataFrame(
            {
                "uidx": users,
                "device_id": fam_dev.gather(dev_of_hh[hh[users]]),
                "ip": _network_ips(
                    rng, np.where(has_home[hh[users]], 0, 1), home_ip.gather(hh[users]), pool, vpn
                ),
                "seen": created[users] + rng.exponential(10 * DAY_S, len(users)).astype(np.int64),
            }
        )
    )

    # cyber-cafés and offices: one or two egress IPs; cafés also lend their computers
    n_venues = max(1, h // VENUE_PER_USERS)
    v_size = np.clip(rng.lognormal(np.log(70), 0.8, n_venues), *VENUE_SIZE).astype(np.int64)
    v_size = np.minimum(v_size, h)
    is_cafe = rng.random(n_venues) < 0.6
    n_pc = np.where(is_cafe, rng.integers(1, 7, n_venues), 0)
    v_ip = ipv4(rng, vocab.BROADBAND_PREFIXES, 2 * n_venues)
    pcs = hex_ids(rng, int(n_pc.sum()), 32)
    pc_start = np.cumsum(n_pc) - n_pc
    vis_v = np.repeat(np.arange(n_venues), v_size)
    vis_u = rng.integers(0, h, size=len(vis_v))
    # some offices hand out company SIMs: the staff's numbers run in sequence with small gaps
    corp = ~is_cafe & (rng.random(n_venues) < CORPORATE_SIMS)
    staff = np.flatnonzero(corp[vis_v] & (rng.random(len(vis_v)) < 0.5))
    if len(staff):
        base = 9_000_000_000 + rng.integers(0, 999_000_000, size=n_venues)
        step = rng.integers(1, 4, size=len(staff))
        phone[vis_u[staff]] = base[vis_v[staff]] + _rank_within(vis_v[staff], step)
    use_pc = is_cafe[vis_v] & (rng.random(len(vis_v)) < 0.6)
    pc_idx = pc_start[vis_v] + (rng.random(len(vis_v)) * np.maximum(n_pc[vis_v], 1)).astype(
        np.int64
    )
    own_pick = first_dev[vis_u] + (rng.random(len(vis_v)) * k[vis_u]).astype(np.int64)
    dev = pl.select(
        pl.when(pl.lit(pl.Series(use_pc)))
        .then(
            pl.lit(pcs.gather(np.where(use_pc, pc_idx, 0)) if len(pcs) else own_id.gather(own_pick))
        )
        .otherwise(pl.lit(own_id.gather(own_pick)))
    ).to_series()
    rows.append(
        pl.DataFrame(
            {
                "uidx": vis_u,
                "device_id": dev,
                "ip": v_ip.gather(2 * vis_v + (rng.random(len(vis_v)) < 0.2)),
                "seen": created[vis_u] + rng.exponential(40 * DAY_S, len(vis_u)).astype(np.int64),
            }
        )
    )
    devices = pl.concat(rows)
    cafes = np.flatnonzero(is_cafe)
    venues = Venues(
        cafe_ips=v_ip.gather(2 * cafes).to_list(),
        cafe_devices=[pcs.slice(int(pc_start[c]), int(n_pc[c])).to_list() for c in cafes],
        cgnat_pool=pool.to_list(),
    )
    return devices, venues


def _rank_within(group: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Running sum of `step` restarted at each new value of the sorted `group` array."""
    total = np.cumsum(step)
    starts = np.r_[0, np.flatnonzero(np.diff(group)) + 1]
    offset = np.repeat(total[starts] - step[starts], np.diff(np.r_[starts, len(group)]))
    out: np.ndarray = total - offset
    return out


def _network_ips(
    rng: np.random.Generator, net: np.ndarray, home: pl.Series, pool: pl.Series, vpn: pl.Series
) -> pl.Series:
    """IP per sighting: 0 = the household's broadband IP, 1 = a carrier NAT exit, 2 = an IPv6
    handset address (unique); any of them is replaced by a VPN / relay exit with prob. `VPN`."""
    n = len(net)
    cg = draw_cgnat(rng, pool, n)
    v6 = ipv6(rng, vocab.JIO_V6_PREFIXES, n)
    relay = vpn.gather(rng.choice(len(vpn), size=n, p=zipf_p(len(vpn), 0.8)))
    use_vpn = rng.random(n) < VPN
    return (
        pl.DataFrame({"net": net, "home": home, "cg": cg, "v6": v6, "vpn": relay, "u": use_vpn})
        .select(
            pl.when(pl.col("u"))
            .then(pl.col("vpn"))
            .when(pl.col("net") == 0)
            .then(pl.col("home"))
            .when(pl.col("net") == 1)
            .then(pl.col("cg"))
            .otherwise(pl.col("v6"))
        )
        .to_series()
    )
