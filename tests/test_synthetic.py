"""The synthetic population: contract, determinism, planted rings, labels, realism, no leaks."""

from __future__ import annotations

from pathlib import Path

import phonenumbers
import polars as pl
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from graphfraud.errors import ConfigError
from graphfraud.schema import TRUTH_SCHEMA, USER_COLUMNS_OPTIONAL, USER_ID
from graphfraud.synthetic import (
    HARD_RECIPES,
    RING_KINDS,
    Population,
    generate_population,
    write_population,
)

N = 20_000


@pytest.fixture(scope="module")
def pop() -> Population:
    return generate_population(N, 3)


@pytest.fixture(scope="module")
def joined(pop: Population) -> pl.DataFrame:
    return pop.users.join(pop.truth, on="user_id", validate="1:1")


@pytest.fixture(scope="module")
def hard() -> Population:
    """The #14 recipes: sparse rings, camouflage drawn per ring."""
    return generate_population(N, 3, recipes=HARD_RECIPES)


def _gmail_mailbox(email: pl.Expr) -> pl.Expr:
    e = email.str.strip_chars().str.to_lowercase()
    local = e.str.extract(r"^([^@+]*)", 1).str.replace_all(".", "", literal=True)
    return pl.concat_str([local, pl.lit("@"), e.str.extract(r"@(.*)$", 1)])


# ---- contract -----------------------------------------------------------------------------


def test_users_follow_input_contract(pop: Population) -> None:
    u = pop.users
    assert u.columns == [USER_ID, *USER_COLUMNS_OPTIONAL]
    assert all(dt == pl.String for dt in u.dtypes)
    assert u.height == N
    assert u[USER_ID].n_unique() == N
    assert u[USER_ID].str.contains(r"^u\d{7}$").all()
    assert set(u["label"].drop_nulls().unique().to_list()) <= {"0", "1"}
    created = u["created_at"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", strict=True)
    span = created.max() - created.min()  # type: ignore[operator]
    assert 330 <= span.days <= 366
    # some users give no email or no phone, as in real sign-ups
    assert 0.01 < u["email"].null_count() / N < 0.08
    assert 0.02 < u["phone"].null_count() / N < 0.12


def test_devices_follow_input_contract(pop: Population) -> None:
    d = pop.devices
    assert d.columns == ["user_id", "device_id", "ip", "seen_at"]
    assert d["device_id"].null_count() == 0
    assert set(d["user_id"].unique().to_list()) <= set(pop.users["user_id"].to_list())
    assert 1.5 <= d.height / N <= 1.9
    d["seen_at"].str.to_datetime("%Y-%m-%dT%H:%M:%SZ", time_zone="UTC", strict=True)
    assert d["ip"].str.contains(":").any()  # some IPv6


def test_truth_schema_and_files_round_trip(pop: Population, tmp_path: Path) -> None:
    small = generate_population(500, 1)
    for fmt in ("csv", "parquet"):
        paths = write_population(small, tmp_path / fmt, fmt=fmt)
        assert {p.name for p in paths.values()} == {
            f"{n}.{fmt}" for n in ("users", "devices", "truth")
        }
    assert pq.read_schema(tmp_path / "parquet" / "truth.parquet").equals(
        TRUTH_SCHEMA, check_metadata=False
    )
    back = pl.read_csv(tmp_path / "csv" / "users.csv", infer_schema=False)
    assert back.equals(small.users)
    assert pl.read_parquet(tmp_path / "parquet" / "devices.parquet").equals(small.devices)
    assert pop.truth["user_id"].equals(pop.users["user_id"])
    with pytest.raises(ConfigError):
        write_population(small, tmp_path / "x", fmt="xml")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"n_users": 0}, "n_users"), ({"seed": -1}, "seed"), ({"fraud_share": 0.9}, "fraud_share")],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, float], match: str) -> None:
    args: dict[str, float] = {"n_users": 100, "seed": 1} | kwargs
    with pytest.raises(ConfigError, match=match):
        generate_population(
            int(args["n_users"]), int(args["seed"]), fraud_share=args.get("fraud_share", 0.04)
        )


@pytest.mark.parametrize(("n", "share"), [(1, 0.5), (2, 0.04), (7, 0.5), (60, 0.5), (300, 0.0)])
def test_tiny_populations_work(n: int, share: float) -> None:
    pop = generate_population(n, 1, fraud_share=share)
    assert pop.users.height == pop.truth.height == n
    fraud = int(pop.truth["is_fraud"].sum())
    assert fraud == (round(n * share) if round(n * share) >= 3 else 0)


# ---- determinism --------------------------------------------------------------------------


def test_same_seed_same_frames_other_seed_other_frames() -> None:
    a, b, c = (generate_population(3_000, s) for s in (11, 11, 12))
    for name in ("users", "devices", "truth"):
        assert getattr(a, name).equals(getattr(b, name)), name
    assert not a.users.equals(c.users)
    assert not a.devices.equals(c.devices)


# ---- rings --------------------------------------------------------------------------------


def test_fraud_share_ring_sizes_and_kinds(pop: Population) -> None:
    t = pop.truth
    assert t["is_fraud"].sum() == round(0.04 * N)
    assert (t.filter(pl.col("is_fraud") == 1)["ring_id"].null_count()) == 0
    assert t.filter(pl.col("is_fraud") == 0)["ring_id"].null_count() == N - round(0.04 * N)
    sizes = t.drop_nulls("ring_id").group_by("ring_id").len()["len"]
    assert sizes.min() >= 3
    assert sizes.max() <= 60
    assert (sizes <= 30).mean() >= 0.85  # type: ignore[operator]
    kinds = set(t["ring_kind"].drop_nulls().unique().to_list())
    assert kinds == set(RING_KINDS)
    assert (
        t.drop_nulls("ring_id")
        .group_by("ring_id")
        .agg(pl.col("ring_kind").n_unique())["ring_kind"]
        .max()
        == 1
    )


def test_fraud_share_is_a_parameter() -> None:
    t = generate_population(5_000, 2, fraud_share=0.1).truth
    assert t["is_fraud"].sum() == 500
    assert generate_population(500, 2, fraud_share=0.0).truth["is_fraud"].sum() == 0


def test_rings_carry_their_signals_but_not_as_cliques(
    joined: pl.DataFrame, pop: Population
) -> None:
    members = joined.drop_nulls("ring_id")
    # gmail-variant rings: several spellings, one mailbox, shared by most (not all) members
    gv = members.filter(pl.col("ring_kind") == "gmail_variant").with_columns(
        box=_gmail_mailbox(pl.col("email"))
    )
    share = gv.group_by("ring_id").agg(
        (pl.col("box").value_counts(sort=True).first().struct.field("count") / pl.len()).alias(
            "top"
        ),
        pl.col("email").n_unique().alias("spellings"),
    )
    assert (share["spellings"] >= 2).all()
    assert share["top"].median() >= 0.5  # type: ignore[operator]
    assert share["top"].min() < 1.0  # type: ignore[operator]  # some member lacks the signal
    # device farms: one device id used by several accounts of the ring
    farm_users = members.filter(pl.col("ring_kind") == "device_farm").select("user_id", "ring_id")
    per_dev = (
        pop.devices.join(farm_users, on="user_id")
        .group_by("ring_id", "device_id")
        .agg(pl.col("user_id").n_unique().alias("n"))
    )
    assert per_dev.group_by("ring_id").agg(pl.col("n").max())["n"].min() >= 2
    # sequential phones: numbers a few apart inside the ring
    seq = members.filter(pl.col("ring_kind") == "sequential_phone").with_columns(
        num=pl.col("phone").str.replace_all(r"\D", "").str.slice(-10).cast(pl.Int64)
    )
    gaps = (
        seq.drop_nulls("num")
        .sort("ring_id", "num")
        .with_columns(gap=pl.col("num").diff().over("ring_id"))
    )
    assert gaps.group_by("ring_id").agg((pl.col("gap") <= 10).sum())["gap"].min() >= 1
    # sequential emails: base + counter (digits at the end of the local part) for most members
    se = members.filter(pl.col("ring_kind") == "sequential_email").with_columns(
        stem=pl.col("email").str.to_lowercase().str.extract(r"^(.*?)[._]?\d+@", 1)
    )
    top_stem = se.group_by("ring_id").agg(
        pl.col("stem").drop_nulls().mode().first().alias("s"), pl.len()
    )
    assert top_stem["s"].null_count() == 0


def test_sparse_rings_hang_on_single_ties_no_identifier_spans(hard: Population) -> None:
    """A sparse ring's members are tied pairwise (a handset, a home IP or a handle of permuted
    name parts); no value of theirs is held by more than two members, except a carrier's NAT
    exit or a café, which honest people share as well."""
    pop = hard
    joined = pop.users.join(pop.truth, on="user_id")
    assert set(pop.truth["ring_kind"].drop_nulls()) == set(HARD_RECIPES.kinds)
    members = joined.filter(pl.col("ring_kind") == "sparse").select("user_id", "ring_id", "email")
    assert members["ring_id"].n_unique() >= 1
    sightings = pop.devices.join(members, on="user_id")
    for column in ("device_id", "ip"):
        per = sightings.group_by("ring_id", column).agg(pl.col("user_id").n_unique().alias("n"))
        crowded = per.filter(pl.col("n") > 2)
        honest = pop.devices.join(pop.truth.filter(pl.col("is_fraud") == 0), on="user_id")
        assert crowded.join(honest.select(column).unique(), on=column, how="anti").is_empty()
    # every member shares a device or an IP with another member, or carries a handle
    paired = (
        sightings.group_by("ring_id", "ip")
        .agg(pl.col("user_id").unique())
        .filter(pl.col("user_id").list.len() == 2)
        .explode("user_id")
    )
    handsets = (
        sightings.group_by("ring_id", "device_id")
        .agg(pl.col("user_id").unique())
        .filter(pl.col("user_id").list.len() == 2)
        .explode("user_id")
    )
    tied = set(paired["user_id"]) | set(handsets["user_id"])
    untied = members.filter(~pl.col("user_id").is_in(list(tied)))
    # the rest carry a handle of name parts (letters before any digits: two parts reordered)
    assert untied["email"].str.contains(r"^[a-z]+[._]?[a-z]+\d*@").all()


@pytest.mark.parametrize("drawn", [False, True])
def test_camouflage_never_erases_a_members_only_ring_trace(drawn: bool) -> None:
    """A camouflaged ring on one SIM batch reaching every member borrows no honest number: it
    would overwrite that member's only trace of the ring."""
    from datetime import UTC, datetime

    import numpy as np

    from graphfraud.synthetic.honest import Venues
    from graphfraud.synthetic.rings import BASE_RECIPES, FraudBlock, RingPlan, build_rings

    for seed in range(20):
        size = 6
        block = FraudBlock(
            first=["a"] * size, last=["b"] * size, email=[None] * size, phone=[0] * size,
            phone_fmt=[0] * size, name=[None] * size, created=[0] * size,
        )  # fmt: skip
        plan = RingPlan("R1", "camouflaged", 0, size, ("sequential_phone", "camouflage"), "burst")
        honest = np.arange(9_100_000_000, 9_100_000_000 + 50, dtype=np.int64)
        venues = Venues(cafe_ips=["1.2.3.4"], cafe_devices=[["pc1"]], cgnat_pool=["5.6.7.8"])
        build_rings(
            np.random.default_rng(seed), [plan], block, honest, venues,
            datetime(2026, 1, 1, tzinfo=UTC), 30, ["d"] * len(honest),
            HARD_RECIPES if drawn else BASE_RECIPES,
        )  # fmt: skip
        assert not set(block.phone) & set(honest.tolist())
        assert len(set(block.phone)) == size


def test_rings_only_meet_through_honest_places(pop: Population) -> None:
    """A device seen in two rings is a café computer or a hub honest people use too, never an
    accidental reuse of one ring's own device by another."""
    d = pop.devices.join(pop.truth, on="user_id")
    per = d.group_by("device_id").agg(
        pl.col("ring_id").drop_nulls().n_unique().alias("rings"),
        (pl.col("is_fraud") == 0).any().alias("honest"),
    )
    assert per.filter((pl.col("rings") > 1) & ~pl.col("honest")).height == 0


def test_bursty_and_slow_rings(joined: pl.DataFrame) -> None:
    spans = (
        joined.drop_nulls("ring_id")
        .with_columns(t=pl.col("created_at").str.to_datetime(time_zone="UTC"))
        .group_by("ring_id", "ring_kind")
        .agg(((pl.col("t").max() - pl.col("t").min()).dt.total_hours()).alias("h"))
    )
    slow = spans.filter(pl.col("ring_kind") == "slow")["h"]
    assert slow.min() >= 24 * 14  # type: ignore[operator]
    others = spans.filter(pl.col("ring_kind") != "slow")["h"]
    assert (others <= 48).mean() > 0.6  # type: ignore[operator]
    assert (others > 48).any()  # not every ring is a burst


# ---- labels -------------------------------------------------------------------------------


def test_label_policy(joined: pl.DataFrame) -> None:
    rings = (
        joined.drop_nulls("ring_id")
        .group_by("ring_id")
        .agg((pl.col("label") == "1").sum().alias("pos"), pl.len().alias("n"))
    )
    unlabelled = (rings["pos"] == 0).mean()  # whole rings nobody ever confirmed
    assert 0.15 < unlabelled < 0.5  # type: ignore[operator]
    labelled = rings.filter(pl.col("pos") > 0)
    assert (labelled["pos"] / labelled["n"]).mean() < 0.6
    honest = joined.filter(pl.col("is_fraud") == 0)
    assert 0.03 < honest["label"].eq_missing("0").mean() < 0.07  # type: ignore[operator]
    assert 0 < honest["label"].eq_missing("1").sum() < 0.005 * honest.height
    fraud = joined.filter(pl.col("is_fraud") == 1)
    assert 0.1 < fraud["label"].eq_missing("1").mean() < 0.4  # type: ignore[operator]


# ---- no leaks -----------------------------------------------------------------------------


def test_user_id_order_reveals_nothing(joined: pl.DataFrame) -> None:
    num = joined["user_id"].str.slice(1).cast(pl.Int64).to_numpy()
    assert abs(roc_auc_score(joined["is_fraud"].to_numpy(), num) - 0.5) < 0.05
    spread = (
        joined.drop_nulls("ring_id")
        .with_columns(num=pl.col("user_id").str.slice(1).cast(pl.Int64))
        .group_by("ring_id")
        .agg(((pl.col("num").max() - pl.col("num").min()) / pl.len()).alias("gap"))
    )
    assert spread["gap"].median() > N / 20  # type: ignore[operator]
    ring_ids = joined["ring_id"].drop_nulls().unique()
    assert ring_ids.str.contains(r"^R\d+$").all()


# ---- realism ------------------------------------------------------------------------------


def test_phones_in_many_formats_all_normalise(pop: Population) -> None:
    phones = pop.users["phone"].drop_nulls()
    shapes = phones.str.replace_all(r"\d", "9").value_counts()
    assert shapes.height >= 6
    for raw in phones.sample(1_500, seed=1).to_list():
        num = phonenumbers.parse(raw, "IN")
        assert phonenumbers.is_valid_number(num), raw
        assert phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)[3] in "6789"


def test_honest_users_look_alike_and_share_identifiers(
    joined: pl.DataFrame, pop: Population
) -> None:
    honest = joined.filter(pl.col("is_fraud") == 0)
    emails = honest["email"].drop_nulls().str.strip_chars().str.to_lowercase()
    assert emails.n_unique() == emails.len()  # one mailbox per honest account
    stems = emails.str.extract(r"^([^@]*)@", 1).str.replace_all(r"[\d._+]", "")
    assert stems.value_counts(sort=True)["count"][0] >= 20  # many rahulsharma-like people
    domains = emails.str.extract(r"@(.*)$", 1).value_counts(sort=True)
    assert domains["email"][0] == "gmail.com"
    assert domains.height >= 20
    hd = pop.devices.join(honest.select("user_id"), on="user_id")
    per_ip = hd.group_by("ip").agg(pl.col("user_id").n_unique().alias("n"))
    per_dev = hd.group_by("device_id").agg(pl.col("user_id").n_unique().alias("n"))
    assert per_ip["n"].max() >= 100  # carrier NAT / café hubs  # type: ignore[operator]
    assert (per_dev["n"] >= 2).sum() >= 100  # families, cafés, second accounts
    assert per_dev["n"].max() >= 20  # placeholder ids / café computers  # type: ignore[operator]


def test_honest_look_alikes_of_every_ring_signal(joined: pl.DataFrame, pop: Population) -> None:
    """Innocent versions of the ring signals exist, so no single signal is proof."""
    honest = joined.filter(pl.col("is_fraud") == 0)
    # second accounts on the same Gmail mailbox, spelled differently
    boxes = honest.drop_nulls("email").with_columns(box=_gmail_mailbox(pl.col("email")))
    gmail = boxes.filter(pl.col("box").str.ends_with("@gmail.com"))
    assert gmail.group_by("box").len().filter(pl.col("len") > 1).height >= 5
    # numbers a few apart: family SIMs bought together, company SIMs
    nums = honest.select(
        pl.col("phone").str.replace_all(r"\D", "").str.slice(-10).cast(pl.Int64)
    ).drop_nulls()
    gaps = nums.sort("phone")["phone"].diff()
    assert ((gaps > 0) & (gaps <= 5)).sum() >= 50
    # typo'd provider domains typed by mistake
    assert honest["email"].str.contains(r"@(gmial|gmai|gamil|gmail\.co$|yaho)").sum() >= 5
    # one person's name parts in both orders (priya.verma, verma.priya): namesakes, not rings
    parts = honest.select(
        pl.col("email").str.to_lowercase().str.extract_groups(r"^([a-z]+)\.([a-z]+)\d*@")
    ).unnest("email")
    pairs = parts.drop_nulls().rename({"1": "x", "2": "y"}).unique()
    swapped = pairs.join(pairs.rename({"x": "y", "y": "x"}), on=["x", "y"]).filter(
        pl.col("x") != pl.col("y")
    )
    assert swapped.height >= 5
    # cloud / VPN exits seen by honest users (the same ranges device farms use)
    hd = pop.devices.join(honest.select("user_id"), on="user_id")
    assert hd["ip"].str.contains(r"^(13\.23[2-5]|139\.59|104\.28|185\.220|165\.22)\.").sum() >= 50


# ---- CLI ----------------------------------------------------------------------------------


def test_cli_synth_writes_files_and_summary(tmp_path: Path) -> None:
    from graphfraud.cli import app

    result = CliRunner().invoke(
        app,
        [
            "synth",
            "--users",
            "800",
            "--seed",
            "4",
            "--out",
            str(tmp_path),
            "--format",
            "parquet",
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "800 users" in result.output
    assert "rings" in result.output
    assert {p.name for p in tmp_path.iterdir()} == {
        "users.parquet",
        "devices.parquet",
        "truth.parquet",
    }
    assert pl.read_parquet(tmp_path / "users.parquet").equals(generate_population(800, 4).users)


def test_cli_synth_recipes(tmp_path: Path) -> None:
    from graphfraud.cli import app

    args = ["synth", "--users", "3000", "--out", str(tmp_path), "-q"]
    hard = CliRunner().invoke(app, [*args, "--recipes", "hard"])
    assert hard.exit_code == 0, hard.output
    assert "sparse" in hard.output
    bad = CliRunner().invoke(app, [*args, "--recipes", "harder"])
    assert isinstance(bad.exception, ConfigError)  # the entry point prints it as one red line
    assert "unknown ring recipes 'harder'" in str(bad.exception)
