"""Markdown tables for report text, with numbers by :func:`segmentation_lib.formatting.fmt_value`.

>>> import polars as pl
>>> print(md_table(pl.DataFrame({"segment": ["A"], "share": [0.256]}), {"share": "pct"}))
| segment | share |
|---|---:|
| A | 25.6% |
"""
from __future__ import annotations

from typing import Mapping

from segmentation_lib.formatting import fmt_value

__all__ = ["fmt_value", "md_table"]


def md_table(df, formats: Mapping[str, str] | None = None, max_rows: int = 40, rename: Mapping[str, str] | None = None) -> str:
    """A polars frame as a Markdown table with human number formats (for ``IPython.display.Markdown``).

    ``formats`` maps a column to ``int`` / ``money`` / ``pct`` / ``float``; headers lose underscores.

    >>> import polars as pl

from segmentation_lib.formatting import fmt_value
    >>> print(md_table(pl.DataFrame({"segment": ["A"], "share": [0.25]}), {"share": "pct"}))
    | segment | share |
    |---|---:|
    | A | 25.0% |
    """
    formats = dict(formats or {})
    rename = dict(rename or {})
    cols = list(df.columns)
    num = {c for c in cols if df.schema[c].is_numeric()}
    head = "| " + " | ".join(rename.get(c, c.replace("_", " ")) for c in cols) + " |"
    sep = "|" + "|".join("---:" if c in num else "---" for c in cols) + "|"
    rows = []
    for r in df.head(max_rows).iter_rows(named=True):
        cells = []
        for c in cols:
            v = r[c]
            text = fmt_value(v, formats.get(c, "auto")) if c in num or v is None else str(v)
            cells.append(text.replace("|", "\\|").replace("\n", " "))
        rows.append("| " + " | ".join(cells) + " |")
    more = [f"\n*{df.height - max_rows:,} more rows not shown.*"] if df.height > max_rows else []
    return "\n".join([head, sep, *rows, *more])
