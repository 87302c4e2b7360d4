"""docs/reasons.md is checked against the code: the table between its markers is exactly what
`scoring/reasons.py` (codes, wording, order) and `scoring/scores.py` (batch conditions) say."""

from __future__ import annotations

from pathlib import Path

from graphfraud.scoring.reasons import reason_table
from graphfraud.scoring.scores import Condition, reason_conditions

DOC = Path(__file__).resolve().parents[2] / "docs" / "reasons.md"
START, END = "<!-- reason-table:start -->", "<!-- reason-table:end -->"


def _when(condition: Condition | None) -> str:
    if condition is None:
        return "online scorer only (new or unknown accounts)"
    bars: dict[str, float] = {}
    for column, bar in condition:
        bars[column] = max(bar, bars.get(column, 0.0))
    return " and ".join(
        f"`{column} > 0`" if bar == 0 else f"`{column} ≥ {bar:g}`" for column, bar in bars.items()
    )


def render_table() -> str:
    conditions = dict(reason_conditions())
    rows = [
        "| code | in words | priority | given when (features of the user) |",
        "|---|---|---|---|",
        *(
            f"| `{r.code}` | {r.text} | {r.priority} | {_when(conditions.get(r.code))} |"
            for r in reason_table().values()
        ),
    ]
    return "\n".join(rows)


def test_the_reason_table_in_the_docs_is_the_code() -> None:
    text = DOC.read_text()
    table = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert table == render_table(), (
        "docs/reasons.md is stale: paste the output of "
        "`python -c 'from tests.scoring.test_reasons_doc import render_table; "
        "print(render_table())'` between the markers"
    )
