"""Markdown tables for report text, with numbers by :func:`segmentation_lib.formatting.fmt_value`.

>>> import polars as pl
>>> print(md_table(pl.DataFrame({"segment": ["A"], "share": [0.256]}), {"share": "pct"}))
| segment | share |
|---|---:|
| A | 25.6% |
"""
from __future__ import annotations

import re
import string
from typing import Mapping

from segmentation_lib.formatting import fmt_value

__all__ = ["fmt_value", "md_table", "md_literal", "inert_markdown"]

_BACKTICKS = re.compile(r"`+")
#: characters that make Markdown out of a plain string (emphasis, links, code, table cells, escapes)
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def inert_markdown(text: str) -> str:
    """``text`` with ``&`` and ``<`` escaped outside code spans, so no user-supplied string in it can become
    HTML (a ``<script>`` or ``<img onerror>`` element) when the Markdown is rendered; it shows literally.
    ``[`` is escaped too, so no name makes a link (``[x](javascript:...)``) or an image.

    Every Markdown text of a report page passes through here when it is displayed (the kit's own
    Markdown has no HTML in it).

    >>> inert_markdown("**<script>alert(1)</script>** & `<b>` [x](y)")
    '**&lt;script>alert(1)&lt;/script>** &amp; `<b>` \\\\[x](y)'
    """
    out, i, n = [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in string.punctuation:
            out.append(text[i:i + 2])  # a Markdown backslash escape: the character shows literally (never a tag)
            i += 2
        elif ch == "`":
            run = len(text[i:]) - len(text[i:].lstrip("`"))
            close = _closing_run(text, i + run, run)
            if close < 0:  # no closing run: the backticks are literal
                out.append(text[i:i + run])
                i += run
            else:  # a code span: Markdown shows its content literally already
                out.append(text[i:close + run])
                i = close + run
        else:
            out.append(_escape_html(ch))
            i += 1
    return "".join(out)


def _closing_run(text: str, start: int, run: int) -> int:
    """Index of the next backtick run of exactly ``run`` backticks at or after ``start``, or -1."""
    for m in _BACKTICKS.finditer(text, start):
        if len(m.group(0)) == run:
            return m.start()
    return -1


def _escape_html(text: str) -> str:
    """``&`` and ``<`` as entities, ``[`` backslash-escaped (no link or image from a name; the kit's own
    Markdown has none)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("[", "\\[")


def md_literal(text: object) -> str:
    """A plain string for a Markdown table cell or sentence: Markdown punctuation backslash-escaped, so
    a name such as ``*VIP*_[x](y)`` shows as typed (HTML is made inert by :func:`inert_markdown`).

    >>> md_literal("*VIP* [x](y) | a_b")
    '\\\\*VIP\\\\* \\\\[x\\\\](y) \\\\| a\\\\_b'
    """
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


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
    head = "| " + " | ".join(md_literal(rename.get(c, c.replace("_", " "))) for c in cols) + " |"
    sep = "|" + "|".join("---:" if c in num else "---" for c in cols) + "|"
    rows = []
    for r in df.head(max_rows).iter_rows(named=True):
        cells = []
        for c in cols:
            v = r[c]
            text = fmt_value(v, formats.get(c, "auto")) if c in num or v is None else md_literal(v)
            cells.append(text.replace("\n", " "))
        rows.append("| " + " | ".join(cells) + " |")
    more = [f"\n*{df.height - max_rows:,} more rows not shown.*"] if df.height > max_rows else []
    return "\n".join([head, sep, *rows, *more])
