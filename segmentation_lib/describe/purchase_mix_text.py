"""The exploration page's "Categories and discounts" section, from the purchase-mix report
(``data_quality.json`` under ``purchase_mix``) and the feature table; empty when there is none.

>>> purchase_mix_markdown(None)
''
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.describe.format import fmt_value, md_literal, md_table
from segmentation_lib.features.purchase_mix import PROBLEM_COUNTS, problem_counts


def purchase_mix_markdown(report: Mapping[str, Any] | None, features: pl.DataFrame | None = None) -> str:
    """Top categories (spend, share of purchase spend, customers for whom each is the dominant one),
    the discount shares and every count of lines read as uncategorised / not on discount.

    >>> r = {"purchase_lines": 4, "categories": {"distinct": 2, "source": "data.columns.category",
    ...      "top": [{"category": "Books", "column": "spend_share_books", "spend": 30.0, "share": 0.75}]},
    ...      "discount": {"lines_on_discount": 1}}
    >>> print(purchase_mix_markdown(r).splitlines()[2])
    2 product categories (from data.columns.category); the 1 with the most purchase spend have a column of their own in the feature table:
    """
    if not report:
        return ""
    lines = ["## Categories and discounts", ""]
    n_lines = int(report.get("purchase_lines") or 0)
    cats = report.get("categories")
    if cats:
        top = pl.DataFrame(cats.get("top") or [], schema={"category": pl.String, "column": pl.String,
                                                          "spend": pl.Float64, "share": pl.Float64})
        if features is not None and "dominant_category" in features.columns:
            dom = features.group_by("dominant_category").len().rename({"dominant_category": "category", "len": "dominant_for"})
            top = top.join(dom, on="category", how="left").with_columns(pl.col("dominant_for").fill_null(0))
        lines.append(f"{fmt_value(cats.get('distinct'), 'int')} product categories (from {cats.get('source')}); the "
                     f"{top.height} with the most purchase spend have a column of their own in the feature table:")
        lines += ["", md_table(top,
                               {"spend": "money", "share": "pct", "dominant_for": "int"},
                               rename={"share": "share of purchase spend", "dominant_for": "customers for whom it is the dominant category"})]
        rest = 1.0 - float(top["share"].sum()) if top.height else 1.0
        lines.append(f"\nThe other categories and the uncategorised lines hold {fmt_value(rest, 'pct')} of the purchase "
                     "spend (`spend_share_other`, `spend_share_unknown`).")
    disc = report.get("discount")
    if disc:
        on = int(disc.get("lines_on_discount") or 0)
        text = (f"\n{fmt_value(on, 'int')} of {fmt_value(n_lines, 'int')} purchase lines "
                f"({fmt_value(on / n_lines if n_lines else 0.0, 'pct')}) were bought on discount")
        if features is not None and "share_spend_on_discount" in features.columns:
            med = features["share_spend_on_discount"].median()
            text += f"; the median customer bought {fmt_value(med, 'pct')} of their spend on discount"
        lines.append(text + ".")
    found = problem_counts(report)
    if found:
        lines.append("\nLines that could not be read as given (kept, not dropped):\n")
        lines += [f"- {fmt_value(n, 'int')} {md_literal(PROBLEM_COUNTS[k][0])}: counted as {PROBLEM_COUNTS[k][1]}."
                  for k, n in found.items()]
    return "\n".join(lines)
