"""The reconciliation report's cells: what a spreadsheet would run as a formula is text."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from api.routers.reconciliation import report_cell


@pytest.mark.parametrize(
    "text",
    [
        '=HYPERLINK("https://evil.example","click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(A1:A2)",
        "\t=1",
        "\r=1",
    ],
)
def test_text_a_spreadsheet_would_run_is_neutralised(text: str) -> None:
    assert report_cell(text) == "'" + text


def test_other_cells_are_as_they_were() -> None:
    assert report_cell("inv-0042") == "inv-0042"
    assert report_cell(None) == ""
    assert report_cell(-250) == "-250"
    assert report_cell(datetime(2026, 12, 7, tzinfo=UTC)) == "2026-12-07T00:00:00+00:00"
