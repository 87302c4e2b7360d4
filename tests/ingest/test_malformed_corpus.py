"""The malformed-input corpus: every file goes through `graphfraud ingest` (in process) and must
end in no traceback, `input = accepted + quarantined` per file, every planted good row accepted
(and no bad one), the expected quarantine reasons, and no planted PII on stdout/stderr.

Files whose whole shape is wrong (no header, repeated columns, a header delimited differently
from its rows, no user accepted, corrupt Parquet) must instead stop in one `error:` line naming
the file, with a manifest that says `failed` where one was started. The corpus is generated here,
not committed: `CORPUS` is its list of cases.
"""

from __future__ import annotations

import gzip
import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graphfraud.cli import main

HEADER = "user_id,email,phone,name,created_at,label"
DEVICE_HEADER = "user_id,device_id,ip,seen_at"
CANARY = "leak.canary"
"""Planted in every bad row's email and name; must never reach stdout or stderr."""
MB = 1 << 20
M = "malformed_csv_row:"


def good(i: int, sep: str = ",") -> str:
    """A valid user row: id u<i>, and an email, mobile, name, timestamp and label that parse."""
    return sep.join(
        [
            f"u{i}",
            f"user{i}@mail.com",
            f"+91 98765 {40000 + i:05d}",
            f"Name {i}",
            "2024-03-01T10:00:00Z",
            str(i % 2),
        ]
    )


def ids(n: int, start: int = 0) -> set[str]:
    return {f"u{i}" for i in range(start, start + n)}


def lines(*rows: str, end: str = "\n", header: str = HEADER) -> bytes:
    return (header + end + "".join(r + end for r in rows)).encode()


@dataclass(frozen=True)
class Case:
    name: str
    users: Callable[[Path], Path]
    accept: set[str] = field(default_factory=set)
    """Exactly the user ids that must be accepted."""
    reasons: dict[str, int] = field(default_factory=dict)
    """Expected quarantine reasons (counts) of the users file."""
    devices: Callable[[Path], Path] | None = None
    device_reasons: dict[str, int] = field(default_factory=dict)
    accept_devices: int = 0
    rejected: dict[str, int] | None = None
    """Expected counts.users.rejected_fields, when the case is about them."""
    refuse: str | None = None
    """A needle of the one-line error, when the whole file must be refused."""


def csv_file(data: bytes | str, name: str = "users.csv") -> Callable[[Path], Path]:
    raw = data.encode() if isinstance(data, str) else data

    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(raw)
        return path

    return write


def parquet_file(table: pa.Table | pl.DataFrame | bytes) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / "users.parquet"
        if isinstance(table, bytes):
            path.write_bytes(table)
        elif isinstance(table, pl.DataFrame):
            table.write_parquet(path)
        else:
            pq.write_table(table, path)
        return path

    return write


def bad(i: int, **parts: str) -> str:
    """A bad row: the good row of id b<i> with canary PII, fields overridden by `parts`."""
    fields = {
        "user_id": f"b{i}",
        "email": f"{CANARY}{i}@example.com",
        "phone": "+91 98765 43210",
        "name": f"Canary {CANARY} {i}",
        "created_at": "2024-03-01",
        "label": "0",
    }
    fields.update(parts)
    return ",".join(fields.values())


GOOD3 = [good(i) for i in range(3)]

GARBAGE: list[tuple[str, Callable[[int], str]]] = [
    (M + "too_many_fields", lambda i: bad(i) + ",EXTRA"),
    (M + "too_few_fields", lambda i: f"b{i},{CANARY}@example.com"),
    (M + "stray_quote", lambda i: bad(i, name=f'"Rajiv Anand {CANARY}"x')),
    (M + "unterminated_quote", lambda i: bad(i, name=f'"Rajiv Anand {CANARY}')),
    (M + "stray_quote", lambda i: bad(i, name=f'Raj"iv {CANARY}')),
    ("control_char_in_id", lambda i: bad(i, user_id=f"b\x00{i}")),
    ("bad_created_at", lambda i: bad(i, created_at="yesterday")),
    ("bad_label", lambda i: bad(i, label="maybe")),
    ("missing_user_id", lambda i: bad(i, user_id="")),
    (M + "too_few_fields", lambda _i: "   "),
]
"""Kinds of garbage row, with the reason each must be quarantined for."""


def garbage_file(n: int, every: int) -> tuple[bytes, set[str], dict[str, int]]:
    """n rows, every `every`-th one garbage (kinds in turn): data, good ids, expected reasons."""
    rows, accept, reasons = [], set(), Counter[str]()
    for i in range(n):
        if i % every == every - 1:
            reason, make = GARBAGE[(i // every) % len(GARBAGE)]
            rows.append(make(i))
            reasons[reason] += 1
        else:
            rows.append(good(i))
            accept.add(f"u{i}")
    return lines(*rows), accept, dict(reasons)


def _typed_users() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [1, 2, 3],
            "email": ["a@x.com", "b@x.com", "c@x.com"],
            "created_at": pl.Series(["2024-01-05 10:00:00", None, "2024-01-06 00:00:00"])
            .str.to_datetime()
            .dt.replace_time_zone("UTC"),
            "label": [1.0, None, 0.0],
        }
    )


def _duplicate_parquet() -> pa.Table:
    return pa.table([pa.array(["u1"]), pa.array(["a@x.com"])], names=["user_id", "user_id"])


def _binary_ids() -> pa.Table:
    return pa.table({"user_id": pa.array([b"u1", b"u\xff2", b"u3"], type=pa.binary())})


FIFTY_K, FIFTY_K_GOOD, FIFTY_K_REASONS = garbage_file(50_000, every=10)

CORPUS: list[Case] = [
    Case("clean", csv_file(lines(*GOOD3)), ids(3)),
    Case("more_fields", csv_file(lines(*GOOD3, bad(1) + ",x")), ids(3), {M + "too_many_fields": 1}),
    Case("fewer_fields", csv_file(lines(*GOOD3, "b1,x")), ids(3), {M + "too_few_fields": 1}),
    Case(
        "stray_quote_after_field",
        csv_file(lines(GOOD3[0], bad(1, name='"Rajiv Anand"x'), *GOOD3[1:])),
        ids(3),
        {M + "stray_quote": 1},
    ),
    Case(
        "stray_quote_inside_field",
        csv_file(lines(bad(1, name='Raj"iv'), *GOOD3)),
        ids(3),
        {M + "stray_quote": 1},
    ),
    Case(
        "space_before_quote",
        csv_file(lines(bad(1, name=' "Doe, Ann"'), *GOOD3)),
        ids(3),
        {M + "stray_quote": 1},
    ),
    Case(
        "unterminated_quote_mid_file",
        csv_file(lines(GOOD3[0], bad(1, name='"Rajiv Anand'), *GOOD3[1:], good(3))),
        ids(4),
        {M + "unterminated_quote": 1},
    ),
    Case(
        "unterminated_quote_last_line",
        csv_file(lines(*GOOD3) + bad(1, name='"Rajiv, no end').encode()),
        ids(3),
        {M + "unterminated_quote": 1},
    ),
    Case(
        "quoted_newlines",
        csv_file(
            lines(
                good(0).replace("Name 0", '"Name\n0"'),
                good(1).replace("Name 1", '"Name 1, jr.\n\nline 3"'),
                good(2),
            )
        ),
        ids(3),
    ),
    Case(
        "quoted_delimiters_and_escaped_quotes",
        csv_file(lines(good(0).replace("Name 0", '"Doe, ""Ann"" 0"'), *GOOD3[1:])),
        ids(3),
    ),
    Case(
        "crlf",
        csv_file(lines(*GOOD3, bad(1) + ",x", end="\r\n")),
        ids(3),
        {M + "too_many_fields": 1},
    ),
    Case(
        "crlf_with_quoted_crlf",
        csv_file(lines(good(0).replace("Name 0", '"Na\r\nme"'), *GOOD3[1:], end="\r\n")),
        ids(3),
    ),
    Case("cr_only", csv_file(lines(*GOOD3, end="\r")), ids(3)),
    Case("bom", csv_file(b"\xef\xbb\xbf" + lines(*GOOD3)), ids(3)),
    Case(
        "bom_semicolons_crlf",
        csv_file(
            b"\xef\xbb\xbf"
            + lines(*(good(i, ";") for i in range(3)), header=HEADER.replace(",", ";"), end="\r\n")
        ),
        ids(3),
    ),
    Case(
        "pipes_with_quoted_pipes",
        csv_file(
            lines(
                good(0, "|").replace("Name 0", '"Name | 0"'),
                *(good(i, "|") for i in (1, 2)),
                header=HEADER.replace(",", "|"),
            )
        ),
        ids(3),
    ),
    Case(
        "blank_and_whitespace_lines",
        csv_file(lines(GOOD3[0], "", GOOD3[1], "   ", "", GOOD3[2], "")),
        ids(3),
        {M + "too_few_fields": 1},
    ),
    Case("no_final_newline", csv_file(lines(*GOOD3).rstrip(b"\n")), ids(3)),
    Case(
        "duplicate_column",
        csv_file(lines(*GOOD3, header=HEADER + ",email")),
        refuse="column 'email': column appears more than once",
    ),
    Case(
        "duplicate_column_case_variant",
        csv_file(lines(*GOOD3, header=HEADER + ",Email")),
        refuse="column 'email': column appears more than once",
    ),
    Case(
        "megabyte_name",
        csv_file(lines(GOOD3[0], bad(1, name="x" * MB), *GOOD3[1:])),
        ids(3),
        {"absurd_field:name": 1},
    ),
    Case(
        "megabyte_extra_column",
        csv_file(
            lines(
                *(r + ",notes" for r in GOOD3[:2]),
                GOOD3[2] + "," + "n" * MB,
                header=HEADER + ",notes",
            )
        ),
        ids(3),
    ),
    Case(
        "megabyte_unterminated_quote",
        csv_file(lines(GOOD3[0], bad(1, name='"' + "x" * MB), *GOOD3[1:])),
        ids(3),
        {M + "unterminated_quote": 1},
    ),
    Case(
        "bad_timestamps",
        csv_file(
            lines(
                *GOOD3,
                *(
                    bad(i, created_at=t)
                    for i, t in enumerate(
                        ["yesterday", "2024-02-30", "1850-01-01", "05/01/2024", "2024-01-01T25:00"]
                    )
                ),
            )
        ),
        ids(3),
        {"bad_created_at": 5},
    ),
    Case(
        "bad_labels",
        csv_file(
            lines(*GOOD3, *(bad(i, label=v) for i, v in enumerate(["2", "yes", "-1", "1.5"])))
        ),
        ids(3),
        {"bad_label": 4},
    ),
    Case(
        "control_characters_in_ids",
        csv_file(
            lines(
                *GOOD3, *(bad(i, user_id=f"b{c}{i}") for i, c in enumerate("\x00\x01\x1b\x7f\x9f"))
            )
        ),
        ids(3),
        {"control_char_in_id": 5},
    ),
    Case(
        "invalid_utf8",
        csv_file(
            lines(*GOOD3).replace(b"Name 1", b"Jos\xe9") + b"u\xff9," + CANARY.encode() + b",,,,\n"
        ),
        ids(3),
        {"invalid_utf8": 1},
    ),
    Case(
        "phones_with_letters",
        csv_file(lines(*GOOD3, good(3).replace("+91 98765 40003", "+91 98AB CD1234"))),
        ids(4),
        rejected={"email": 0, "phone": 1, "upi": 0},
    ),
    Case(
        "unparseable_emails",
        csv_file(
            lines(
                *GOOD3,
                good(3).replace("user3@mail.com", "用户@例子.公司"),
                good(4).replace("user4@mail.com", "a@b@c"),
            )
        ),
        ids(5),
        rejected={"email": 2, "phone": 0, "upi": 0},
    ),
    Case(
        "tab_header_comma_rows",
        csv_file(lines(*GOOD3, header=HEADER.replace(",", "\t"))),
        refuse="the header is delimited by TAB but the rows by ','",
    ),
    Case("header_only", csv_file(lines()), refuse="no user rows (the file holds a header only)"),
    Case(
        "every_row_quarantined",
        csv_file(lines(bad(1, created_at="soon"), bad(2) + ",x")),
        refuse="none of its 2 user rows was accepted",
    ),
    Case("empty_file", csv_file(b""), refuse="empty file"),
    Case(
        "binary_garbage", csv_file(b"\xff\xfe\x00garbage\x00\x01"), refuse="required users column"
    ),
    Case(
        "headerless",
        csv_file(bad(1) + "\n" + good(0) + "\n"),
        refuse="column 'user_id': required users column missing",
    ),
    Case(
        "gzip_with_malformed_rows",
        csv_file(gzip.compress(lines(*GOOD3, bad(1, name='"x"y'))), "users.csv.gz"),
        ids(3),
        {M + "stray_quote": 1},
    ),
    Case(
        "devices_with_malformed_rows",
        csv_file(lines(*GOOD3)),
        ids(3),
        devices=csv_file(
            lines(
                "u0,dev-a,10.0.0.1,2024-03-01",
                "u1,dev-b,,",
                "u2,dev\x00c,,",
                f'u2,"dev-d,{CANARY},',
                "u9,dev-e,,",
                "u1,dev-f,,,extra",
                "u2,dev-g,999.1.1.1,",
                header=DEVICE_HEADER,
            ),
            "devices.csv",
        ),
        device_reasons={
            "control_char_in_id": 1,
            M + "unterminated_quote": 1,
            "unknown_user": 1,
            M + "too_many_fields": 1,
        },
        accept_devices=3,
    ),
    Case("fifty_k_rows_ten_percent_garbage", csv_file(FIFTY_K), FIFTY_K_GOOD, FIFTY_K_REASONS),
    # ---- Parquet ----
    Case("parquet_typed_columns", parquet_file(_typed_users()), {"1", "2", "3"}),
    Case(
        "parquet_case_variant_columns",
        parquet_file(pl.DataFrame({"User_ID": ["u1", "u2"], "EMAIL": ["a@x.com", None]})),
        {"u1", "u2"},
    ),
    Case(
        "parquet_some_types_fail",
        parquet_file(
            pl.DataFrame(
                {
                    "user_id": ["u1", "u2", "u3", "u4"],
                    "created_at": ["2024-01-01", "20240101", None, "2024-01-01"],
                    "label": ["1", "0", "maybe", None],
                }
            )
        ),
        {"u1", "u4"},
        {"bad_created_at": 1, "bad_label": 1},
    ),
    Case(
        "parquet_control_chars_in_ids",
        parquet_file(pl.DataFrame({"user_id": ["u1", "u\x002", "u\x1b3", "u4"]})),
        {"u1", "u4"},
        {"control_char_in_id": 2},
    ),
    Case(
        "parquet_nested_extra_column",
        parquet_file(pl.DataFrame({"user_id": ["u1", "u2"], "tags": [["a"], ["b", "c"]]})),
        {"u1", "u2"},
    ),
    Case("parquet_binary_ids", parquet_file(_binary_ids()), {"u1", "u3"}, {"invalid_utf8": 1}),
    Case(
        "parquet_types_all_fail",
        parquet_file(pl.DataFrame({"user_id": ["u1", "u2"], "created_at": [1_700_000_000, 2]})),
        refuse="none of its 2 user rows was accepted (bad_created_at: 2)",
    ),
    Case(
        "parquet_zero_rows",
        parquet_file(pl.DataFrame(schema={"user_id": pl.String})),
        refuse="no user rows",
    ),
    Case("parquet_duplicate_columns", parquet_file(_duplicate_parquet()), refuse="Parquet"),
    Case("parquet_corrupt", parquet_file(b"PAR1 not really parquet"), refuse="Parquet"),
]


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`graphfraud <argv>` in this process, as the console script runs it."""
    old = sys.argv
    sys.argv = ["graphfraud", *argv]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("case", CORPUS, ids=[c.name for c in CORPUS])
def test_corpus_file(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    users = case.users(tmp_path)
    argv = ["ingest", "--users", str(users), "--out", str(tmp_path / "run")]
    if case.devices is not None:
        argv += ["--devices", str(case.devices(tmp_path))]
    code, out, err = _run_cli(argv, capsys)
    assert "Traceback" not in out + err
    assert CANARY not in out + err  # no row content on the console, ever
    manifest_file = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None

    if case.refuse is not None:
        assert code == 1, err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith("error: ")
        assert users.name in err
        assert case.refuse in err
        if manifest is not None:
            assert (manifest["status"], manifest["failed_stage"]) == ("failed", "ingest")
            assert manifest["error"] in err
        return

    assert code == 0, err
    assert manifest is not None
    for role, counts in manifest["counts"].items():
        assert counts["input"] == counts["accepted"] + counts["quarantined"], role
    accepted = pl.read_parquet(tmp_path / "run" / "users.parquet").get_column("user_id")
    assert set(accepted) == case.accept  # every good row, and no bad one
    assert accepted.len() == len(case.accept)
    _check_quarantine(tmp_path / "run" / "quarantine" / "users.parquet", case.reasons, users)
    if case.rejected is not None:
        assert manifest["counts"]["users"]["rejected_fields"] == case.rejected
    if case.devices is not None:
        assert manifest["counts"]["devices"]["accepted"] == case.accept_devices
        _check_quarantine(
            tmp_path / "run" / "quarantine" / "devices.parquet", case.device_reasons, users
        )


def _check_quarantine(path: Path, reasons: dict[str, int], source: Path) -> None:
    quarantine = pl.read_parquet(path)
    assert dict(Counter(quarantine.get_column("reason").to_list())) == reasons
    rows = quarantine.get_column("input_row")
    assert rows.is_unique().all()
    assert rows.is_sorted()
    malformed = quarantine.filter(pl.col("reason").str.starts_with(M))
    assert malformed.get_column("input_text").null_count() == 0  # raw line kept for repair
    if source.suffix == ".csv":
        assert quarantine.get_column("input_line").null_count() == 0


def test_corpus_size_and_totals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The numbers the closing note of issue 15 quotes (printed with `-s`)."""
    assert len(CORPUS) >= 40
    n_input = n_accepted = n_quarantined = n_planted = 0
    for case in CORPUS:
        if case.refuse is not None:
            continue
        work = tmp_path / case.name
        work.mkdir()
        argv = ["ingest", "--users", str(case.users(work)), "--out", str(work / "run")]
        assert _run_cli(argv, capsys)[0] == 0
        counts = json.loads((work / "run" / "manifest.json").read_text())["counts"]["users"]
        n_input += counts["input"]
        n_accepted += counts["accepted"]
        n_quarantined += counts["quarantined"]
        n_planted += len(case.accept)
    assert n_input == n_accepted + n_quarantined
    assert n_accepted == n_planted  # zero good rows lost
    refused = sum(c.refuse is not None for c in CORPUS)
    with capsys.disabled():
        print(
            f"\ncorpus: {len(CORPUS)} files ({refused} refused as a whole); users rows in "
            f"{n_input:,} = accepted {n_accepted:,} + quarantined {n_quarantined:,}; "
            f"good rows planted {n_planted:,}, lost {n_planted - n_accepted}"
        )
