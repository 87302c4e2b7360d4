"""What a newcomer sees on stdout: stage verbs print their counts; piped to a file (not a
terminal), a run prints a line as each stage starts and ends and one per model fold; nothing is
written outside the paths given."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import polars as pl

SAMPLE = Path(__file__).resolve().parents[2] / "data" / "synthetic"


def graphfraud(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # stdout is a pipe: the non-terminal path, as under cron, Airflow or `| tee run.log`.
    return subprocess.run(
        [sys.executable, "-m", "graphfraud", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin:/bin"},
    )


def test_stage_verbs_print_their_counts(tmp_path: Path) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    out = tmp_path / "run"
    ingest = graphfraud("ingest", "--users", str(SAMPLE / "users.csv"), "--out", str(out), cwd=cwd)
    assert ingest.returncode == 0, ingest.stderr
    assert "✓ ingest: users 2,000 in, 2,000 accepted, 0 quarantined" in ingest.stdout
    assert f"next: graphfraud link --run {out}" in ingest.stdout
    link = graphfraud("link", "--run", str(out), cwd=cwd)
    assert link.returncode == 0, link.stderr
    assert "✓ link: 1,022 links (email_similar 511, email 275" in link.stdout
    assert "✓ comparing look-alike emails" in link.stdout
    rings = graphfraud("rings", "--run", str(out), cwd=cwd)
    assert rings.returncode == 0, rings.stderr
    found = pl.read_parquet(out / "rings.parquet")
    said = (
        f"✓ rings: {found.height:,} rings holding {int(found['size'].sum()):,} users, "
        f"largest {int(found['size'].max())}"  # type: ignore[arg-type]
    )
    assert found.height > 100
    assert said in rings.stdout
    assert list(cwd.iterdir()) == []


def test_an_all_quarantined_ingest_exits_1_in_one_line(tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("user_id,email,phone,name,created_at,label\nu1,,,,yesterday,\n,,,,,\n")
    proc = graphfraud("ingest", "--users", str(users), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "none of its 2 user rows was accepted" in proc.stderr
    assert "✓ ingest" not in proc.stdout


def test_a_piped_run_reports_every_stage_and_fold_and_writes_only_where_told(
    tmp_path: Path,
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = graphfraud(
        "run",
        "--users", str(SAMPLE / "users.csv"),
        "--devices", str(SAMPLE / "devices.csv"),
        "--out", str(tmp_path / "run"),
        "--registry", str(tmp_path / "models"),
        "--models", "gbm",
        cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    for stage in ("ingest", "link", "rings", "features", "model", "scores"):
        started = lines.index(f"  … {stage}")
        ended = next(i for i, line in enumerate(lines) if line.startswith(f"  ✓ {stage}"))
        assert started < ended, stage
    folds = [line.strip() for line in lines if "model gbm: fold" in line]
    assert [f.split(" (")[0] for f in folds] == [f"model gbm: fold {i}/3" for i in (1, 2, 3)]
    model, scores = lines.index("  … model"), lines.index("  … scores")
    assert all(model < lines.index(f"    {fold}") < scores for fold in folds)
    assert any(line.startswith("  ✓ model: gbm gbm-") and "AUPRC" in line for line in lines)
    assert any(line.startswith("  ✓ scores: 2,000 users scored") for line in lines)
    summary = " ".join(proc.stdout.split())  # the summary wraps at the console width
    assert f"models saved in {tmp_path / 'models'}/ (--registry)" in summary
    assert list(cwd.iterdir()) == []  # no ./models, no ./audit.log
