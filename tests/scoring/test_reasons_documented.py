"""`graphfraud reasons` prints every reason code in the words the API and the page use (the docs'
table, docs/reasons.md, is held to the code by tests/scoring/test_reasons_doc.py)."""

from __future__ import annotations

from typer.testing import CliRunner

from graphfraud.cli import app
from graphfraud.scoring.reasons import reason_table


def test_the_cli_prints_the_same_wording() -> None:
    result = CliRunner().invoke(app, ["reasons"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for reason in reason_table().values():
        assert reason.code in result.output
        assert reason.text in result.output
