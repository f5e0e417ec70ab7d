"""Number formatting and Markdown tables for report text (the one formatter of the kit).

>>> fmt_value(0.256, "pct")
'25.6%'
"""
from __future__ import annotations

import math
from typing import Any, Mapping



# --------------------------------------------------------------------------- formatting helpers


def fmt_value(value: Any, kind: str = "auto") -> str:
    """Format a number for people: ``fmt_value(12345.6, "money") == '12,346'``, ``fmt_value(0.123, "pct") == '12.3%'``.

    >>> fmt_value(0.4567, "float"), fmt_value(1234567, "int"), fmt_value(None)
    ('0.457', '1,234,567', '-')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "ratio" and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]} / {value[1]}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "money":
        return f"{value:,.0f}"
    if kind == "int" or (kind == "auto" and float(value).is_integer()):
        return f"{int(round(value)):,}"
    if kind == "float" or kind == "auto":
        text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return text.rstrip("0").rstrip(".") if kind == "auto" else text
    return str(value)


# --------------------------------------------------------------------------- Markdown for notebooks


def md_table(df, formats: Mapping[str, str] | None = None, max_rows: int = 40, rename: Mapping[str, str] | None = None) -> str:
    """A polars frame as a Markdown table with human number formats (for ``IPython.display.Markdown``).

    ``formats`` maps a column to ``int`` / ``money`` / ``pct`` / ``float``; headers lose underscores.

    >>> import polars as pl
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
