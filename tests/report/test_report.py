"""The run report end to end: built by every run, with and without a previous run, its
warnings, `--fail-on-drift`, the `report` verb, ring events, and no raw PII in the page."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from graphfraud.config import ReportSettings
from graphfraud.report.contents import build_report, read_artifacts
from graphfraud.report.html import render_html
from graphfraud.rundir import RunDir
from tests.drift_nights import DriftNights
from tests.online_run import OnlineRun

SECTIONS = (
    "Warnings",
    "Score distribution",
    "Feature drift",
    "Rings",
    "ring events",
    "Links per kind",
    "Top hub identifiers",
    "Inputs and quarantine",
    "Model",
    "Stages",
)


def _nights(drift_nights: object) -> DriftNights:
    assert isinstance(drift_nights, DriftNights)
    return drift_nights


def _pii(run: Path) -> set[str]:
    """Every raw and canonical email, phone and UPI id of the run's users, and its top hubs'
    whole device ids / IPs (longer than 5 characters, so a substring test means something)."""
    users = pl.read_parquet(run / "users.parquet")
    columns = [c for c in users.columns if c.split("_")[0] in ("email", "phone", "upi")]
    values = set(users.select(columns).unpivot()["value"].drop_nulls().to_list())
    hubs = pl.read_parquet(run / "identifiers.parquet").sort("support", descending=True).head(50)
    values |= set(hubs["value"].to_list())
    return {v for v in values if len(v) > 5}


def test_a_drifted_night_completes_warns_and_exits_3(drift_nights: object) -> None:
    nights = _nights(drift_nights)
    assert nights.run.returncode == 3, nights.run.stderr[-2000:]
    manifest = RunDir(nights.day2).manifest()
    assert manifest["status"] == "complete"  # a drift is not a failed run
    report = manifest["report"]
    assert report["previous_run_id"] == RunDir(nights.day1).manifest()["run_id"]
    codes = {w["code"] for w in report["warnings"]}
    assert "score_psi" in codes
    assert report["score_psi"] >= ReportSettings().psi_warn
    assert report["max_feature_psi"]["psi"] > 0
    out = " ".join(nights.run.stdout.split())
    assert "drift score PSI" in out
    assert "warning score_psi: score PSI" in out
    assert "retrain: yes" in out
    assert "report.html" in out


def test_the_report_page_has_every_section_and_is_self_contained(drift_nights: object) -> None:
    nights = _nights(drift_nights)
    page = (nights.day2 / "report.html").read_text()
    for section in SECTIONS:
        assert section in page, section
    assert RunDir(nights.day1).manifest()["run_id"] in page
    assert page.count("<svg") >= 4  # scores, feature PSI, ring sizes, stages
    lowered = page.lower()
    for remote in ("<script", "<link", "@import", " src=", "url("):
        assert remote not in lowered, remote
    manifest = RunDir(nights.day2).manifest()
    assert manifest["model"]["version"] in page
    for stage in ("ingest", "link", "rings", "model"):
        assert f"<td>{stage}</td>" in page


def test_the_report_shows_no_raw_pii(drift_nights: object) -> None:
    nights = _nights(drift_nights)
    page = (nights.day2 / "report.html").read_text()
    pii = _pii(nights.day2)
    assert len(pii) > 1000
    leaked = sorted(v for v in pii if v in page)
    assert not leaked, leaked[:5]
    hubs = read_artifacts(RunDir(nights.day2)).hubs
    assert hubs.height  # masked versions of them are there
    assert "…" in page


def test_a_first_night_has_no_drift_and_says_so(online_run: object) -> None:
    assert isinstance(online_run, OnlineRun)
    report = build_report(read_artifacts(RunDir(online_run.run_dir)), None, ReportSettings())
    assert report.previous_run_id is None
    assert report.score_psi is None
    assert report.feature_psi == ()
    assert report.warnings == ()
    assert sum(report.score_counts) == report.users.current
    assert report.rings.current == sum(c.current for c in report.ring_sizes)
    assert all(link.previous is None for link in report.links)
    page = render_html(report)
    assert "first night: no previous run" in page
    assert "No warnings (no previous run)" in page
    assert not [v for v in _pii(online_run.run_dir) if v in page]


def test_report_verb_rebuilds_it_and_a_night_against_itself_has_no_drift(
    drift_nights: object, tmp_path: Path
) -> None:
    nights = _nights(drift_nights)
    copy = tmp_path / "copy"
    shutil.copytree(nights.day2, copy)
    (copy / "report.html").unlink()
    from typer.testing import CliRunner

    from graphfraud.cli import app

    # In process (the night-2 fixture already runs the real `graphfraud` executable).
    result = CliRunner().invoke(
        app,
        [
            "report",
            "--run",
            str(copy),
            "--previous",
            str(nights.day2),
            "--registry",
            str(nights.registry),
            "--fail-on-drift",
        ],
    )
    assert result.exit_code == 0, result.output[-2000:]
    report = json.loads((copy / "manifest.json").read_text())["report"]
    assert report["score_psi"] == 0.0
    assert report["max_feature_psi"]["psi"] == 0.0
    assert report["warnings"] == []
    assert (copy / "report.html").is_file()
    assert "No drift warnings." in (copy / "report.html").read_text()


def test_ring_events_are_counted_per_kind_when_the_artifact_exists(
    drift_nights: object, tmp_path: Path
) -> None:
    nights = _nights(drift_nights)
    run = RunDir(tmp_path / "run")
    shutil.copytree(nights.day2, run.path)
    run.file("ring_events.parquet").unlink()  # the rings stage writes one; without it, none
    assert read_artifacts(run).ring_events is None
    events = ["born"] * 3 + ["grew"] * 2 + ["merged_into"] + ["dissolved"] * 4
    run.write(
        "ring_events.parquet",
        pl.DataFrame(
            {
                "event": events,
                "ring_id": [f"R{i}" for i in range(len(events))],
                "other_ring_id": [None] * len(events),
                "members_before": [0] * len(events),
                "members_after": [3] * len(events),
            }
        ),
    )
    report = build_report(read_artifacts(run), None, ReportSettings())
    assert report.ring_events is not None
    assert [(c.label, c.current) for c in report.ring_events] == [
        ("born", 3),
        ("grew", 2),
        ("merged_into", 1),
        ("dissolved", 4),
    ]
    page = render_html(report)
    assert "<td>merged_into</td><td class=n>1</td>" in page


@pytest.mark.parametrize("threshold", [0.01, 100.0])
def test_thresholds_decide_the_warnings(drift_nights: object, threshold: float) -> None:
    nights = _nights(drift_nights)
    settings = ReportSettings(
        psi_warn=threshold,
        feature_psi_warn=threshold,
        links_change_warn=threshold,
        quarantine_warn=min(threshold, 1.0),
    )
    current, previous = read_artifacts(RunDir(nights.day2)), read_artifacts(RunDir(nights.day1))
    codes = {w.code for w in build_report(current, previous, settings).warnings}
    if threshold > 1:
        assert codes == set()
    else:
        assert {"score_psi", "feature_psi", "links"} <= codes


def test_report_verb_fails_on_drift_against_the_runs_own_previous(
    drift_nights: object, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from graphfraud.cli import app

    nights = _nights(drift_nights)
    copy = tmp_path / "copy"
    shutil.copytree(nights.day2, copy)
    runner = CliRunner()
    args = ["report", "--run", str(copy), "--registry", str(nights.registry)]
    assert runner.invoke(app, args).exit_code == 0  # warnings alone do not fail it
    drifted = runner.invoke(app, [*args, "--fail-on-drift"])
    assert drifted.exit_code == 3, drifted.output[-2000:]
    assert "warning" in drifted.output
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["status"] == "complete"
    assert manifest["report"]["warnings"]
