"""The CLI as a user meets it: one-line errors, exit codes, tiny and hostile inputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest


def graphfraud(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "graphfraud", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    message = " ".join(proc.stderr.split())  # rich may wrap a long line
    for needle in needles:
        assert needle in message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = graphfraud("run", "--users", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"))
    _assert_one_line_error(proc, "nope.csv", "cannot read")


def test_missing_required_column_names_file_and_column(tmp_path: Path) -> None:
    users = tmp_path / "u.csv"
    users.write_text("id,email\n1,a@b.com\n")
    proc = graphfraud("run", "--users", str(users), "--out", str(tmp_path / "o"), "-q")
    _assert_one_line_error(proc, "u.csv", "user_id")


def test_usage_error_exits_2_with_help_hint() -> None:
    proc = graphfraud("run")
    assert proc.returncode == 2
    assert "--users" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_every_verb_has_help() -> None:
    for verb in (
        "synth",
        "run",
        "ingest",
        "link",
        "rings",
        "score",
        "report",
        "evaluate",
        "publish",
        "serve",
        "graphdb",
        "models",
        "nightly",
        "status",
        "current",
    ):
        proc = graphfraud(verb, "--help")
        assert proc.returncode == 0, verb
        assert "Usage" in proc.stdout


def test_hostile_tiny_input_runs_clean_and_loses_nothing(tmp_path: Path) -> None:
    """Semicolons, a BOM, a duplicate id, a missing id, a bad date, emoji, a 10 kB email,
    NaN and a device of an unknown user: a clean run, every row accounted for."""
    long_email = "x" * 10_000 + "@gmail.com"
    users = tmp_path / "users.csv"
    users.write_text(
        "\ufeffuser_id;email;phone;name;created_at;label\n"
        "u1;john.doe1@gmail.com;+91 98765 43210;John 😀;2026-01-01T10:00:00Z;1\n"
        "u2;john.doe2@gmail.com;098765 43211;NaN;2026-01-01T11:00:00Z;\n"
        "u3;j.o.h.n.doe1+x@gmial.com;9876543212;;2026-01-01;0\n"
        "u3;other@gmail.com;;;;\n"
        ";noid@x.com;;;;\n"
        f"u4;{long_email};;;;\n"
        "u5;a@b.com;;;yesterday;\n",
        encoding="utf-8",
    )
    devices = tmp_path / "devices.csv"
    devices.write_text("user_id,device_id,ip,seen_at\nu1,DEV-A,1.2.3.4,\nu2,dev-a,,\nu9,dev-z,,\n")
    out = tmp_path / "run"
    proc = graphfraud(
        "run",
        "--users",
        str(users),
        "--devices",
        str(devices),
        "--out",
        str(out),
        "--registry",
        str(tmp_path / "models"),
        "-q",
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["users"] == {
        "input": 7,
        "accepted": 2,
        "quarantined": 5,
        "rejected_fields": {"email": 0, "phone": 0, "upi": 0},
    }
    assert manifest["counts"]["devices"] == {
        "input": 3,
        "accepted": 2,
        "quarantined": 1,
        "rejected_fields": {"ip": 0},
    }
    reasons = set(pl.read_parquet(out / "quarantine" / "users.parquet")["reason"])
    assert {"duplicate_user_id", "missing_user_id", "bad_created_at"} <= reasons
    assert any(r.startswith("absurd_field") for r in reasons)
    scores = pl.read_parquet(out / "scores.parquet")
    assert sorted(scores["user_id"]) == ["u1", "u2"]
    assert scores["ring_id"].n_unique() == 1  # same device, look-alike emails: one ring
    assert manifest["model"]["kind"] == "prior"  # too few labels to train


@pytest.mark.parametrize("content", [b"", b"\xff\xfe\x00garbage\x00"])
def test_empty_or_binary_file_is_one_line(tmp_path: Path, content: bytes) -> None:
    users = tmp_path / "users.csv"
    users.write_bytes(content)
    proc = graphfraud("run", "--users", str(users), "--out", str(tmp_path / "o"), "-q")
    _assert_one_line_error(proc, "users.csv")


def test_unknown_model_is_one_line_before_any_work(tmp_path: Path) -> None:
    proc = graphfraud(
        "run", "--users", str(tmp_path / "u.csv"), "--out", str(tmp_path / "o"), "--models", "xgb"
    )
    _assert_one_line_error(proc, "xgb", "gbm, gnn, gnn_stack")
    assert not (tmp_path / "o").exists()


def _no_user_inputs(tmp_path: Path, case: str) -> Path:
    header = "user_id,email,phone,name,created_at,label\n"
    if case == "header_only":
        path = tmp_path / "users.csv"
        path.write_text(header)
    elif case == "every_row_quarantined":
        path = tmp_path / "users.csv"
        path.write_text(header + "".join(f"u{i},,,,yesterday,\n" for i in range(4)) + ",,,,,\n")
    else:  # Parquet whose types all fail: epoch seconds are no ISO-8601 timestamp
        path = tmp_path / "users.parquet"
        pl.DataFrame(
            {"user_id": ["u1", "u2"], "created_at": [1_700_000_000, 1_700_000_001]}
        ).write_parquet(path)
    return path


@pytest.mark.parametrize("case", ["header_only", "every_row_quarantined", "parquet_types_fail"])
def test_no_accepted_user_stops_in_one_line_with_a_failed_manifest(
    tmp_path: Path, case: str
) -> None:
    """These ran on into linking and the model (an 81-line scikit-learn traceback, or a
    'complete' run of zero users that could then be served)."""
    users = _no_user_inputs(tmp_path, case)
    out = tmp_path / "run"
    proc = graphfraud(
        "run", "--users", str(users), "--out", str(out), "--registry", str(tmp_path / "m"), "-q"
    )
    _assert_one_line_error(proc, users.name)
    assert len(proc.stderr.strip().splitlines()) <= 2  # one line, which rich may wrap once
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["failed_stage"] == "ingest"
    assert users.name in manifest["error"]
    assert manifest["counts"]["users"]["accepted"] == 0
    if case == "header_only":
        assert "header only" in manifest["error"]
    else:
        reason = "missing_user_id: 1" if case == "every_row_quarantined" else "bad_created_at: 2"
        assert reason in manifest["error"]
        quarantined = pl.read_parquet(out / "quarantine" / "users.parquet")
        assert quarantined.height == manifest["counts"]["users"]["input"]


def test_an_unknown_retrain_policy_is_one_line_before_any_work(tmp_path: Path) -> None:
    proc = graphfraud(
        "run", "--users", "missing.csv", "--out", str(tmp_path / "run"), "--retrain", "sometimes"
    )
    _assert_one_line_error(proc, "--retrain 'sometimes' is not a policy", "auto, always or never")
    assert not (tmp_path / "run").exists()


def test_an_unknown_engine_is_one_line_before_any_work(tmp_path: Path) -> None:
    proc = graphfraud(
        "run", "--users", "missing.csv", "--out", str(tmp_path / "run"), "--engine", "spark"
    )
    _assert_one_line_error(proc, "--engine 'spark' is not an engine", "local or dask")
    assert not (tmp_path / "run").exists()


def test_run_help_teaches_the_report_flags() -> None:
    proc = graphfraud("run", "--help")
    text = " ".join(proc.stdout.split())
    for needle in ("--retrain", "--fail-on-drift", "report.html", "exits 3"):
        assert needle in text, needle
