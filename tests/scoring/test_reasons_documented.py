"""Every reason code a built-in run can give is documented, in the same words the API, the page
and `graphfraud reasons` use (docs/service.md, "Reason codes")."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from graphfraud.cli import app
from graphfraud.scoring.reasons import reason_table

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def test_every_reason_code_is_documented_with_its_wording() -> None:
    text = DOCS.read_text()
    for reason in reason_table().values():
        assert f"| `{reason.code}` | {reason.text} |" in text, reason.code


def test_the_cli_prints_the_same_wording() -> None:
    result = CliRunner().invoke(app, ["reasons"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for reason in reason_table().values():
        assert reason.code in result.output
        assert reason.text in result.output
