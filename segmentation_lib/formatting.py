"""Numbers for people: the one number formatter of the kit (report text, tables, rules, messages).

It sits below every step, so the data-quality messages, the surrogate rules, the RFM wording and
the report tables all write numbers by the same rules.

>>> fmt_number(1234.5), fmt_number(83.42, 1), fmt_number(0.5, 2)
('1,234', '83.4', '0.5')
>>> fmt_value(0.123, "pct"), fmt_value(12345.6, "money"), fmt_value(None)
('12.3%', '12,346', '-')
"""
from __future__ import annotations

import math
from typing import Any


def fmt_number(x: float, decimals: int = 2, *, large: float | None = 100, large_decimals: int = 0,
               trim: bool = True) -> str:
    """``x`` with thousands separators: ``decimals`` decimals below ``large`` (in absolute value),
    ``large_decimals`` from ``large`` on (``large=None``: always ``decimals``); trailing zeros of the
    decimals dropped when ``trim``.

    >>> fmt_number(2.50), fmt_number(2.50, trim=False), fmt_number(1234.5, 3, large_decimals=1)
    ('2.5', '2.50', '1,234.5')
    """
    d = large_decimals if large is not None and abs(x) >= large else decimals
    text = f"{x:,.{d}f}"
    return text.rstrip("0").rstrip(".") if trim and d > 0 else text


def fmt_value(value: Any, kind: str = "auto") -> str:
    """Format a value for a report table by ``kind``: ``pct``, ``money`` (whole units), ``int``,
    ``float`` (3 decimals, 1 from 100 on), ``ratio`` (a pair ``[a, b]`` as ``a / b``) or ``auto``
    (integers as integers, other numbers as ``float`` with trailing zeros dropped); ``-`` for a
    missing value, text as it is.

    >>> fmt_value(0.4567, "float"), fmt_value(1234567, "int"), fmt_value([3, 5], "ratio")
    ('0.457', '1,234,567', '3 / 5')
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
        return fmt_number(value, 0)
    if kind == "int" or (kind == "auto" and float(value).is_integer()):
        return f"{int(round(value)):,}"
    if kind in ("float", "auto"):
        return fmt_number(value, 3, large_decimals=1, trim=kind == "auto")
    return str(value)
