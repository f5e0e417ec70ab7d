"""segmentation_lib.describe.format: numbers and Markdown tables for the reports."""
from __future__ import annotations

import polars as pl

from segmentation_lib.describe import format as report


def test_formatting_helpers() -> None:
    assert report.fmt_value(1234567.8, "money") == "1,234,568"
    assert report.fmt_value(0.1234, "pct") == "12.3%"
    assert report.fmt_value([3, 5], "ratio") == "3 / 5"
    assert report.fmt_value(float("nan")) == "-"
    md = report.md_table(pl.DataFrame({"segment": ["A|B"], "n": [1200]}))
    assert md.splitlines() == ["| segment | n |", "|---|---:|", "| A\\|B | 1,200 |"]
