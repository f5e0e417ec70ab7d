"""One-sentence chart captions written from the numbers the chart shows: what to look at first.

>>> import polars as pl
>>> t = pl.DataFrame({"segment": ["Loyal", "New"], "customers": [31, 69], "share": [0.31, 0.69],
...                   "revenue_share": [0.44, 0.56]})
>>> largest_segment_caption(t, "segment")
'The largest segment, New, holds 69% of customers and 56% of revenue.'
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.formatting import fmt_number, fmt_value


def _pct(x: float | None) -> str:
    """A share as a percentage: whole from 10% on, one decimal below (``-`` when missing)."""
    if x is None:
        return "-"
    return f"{fmt_number(100 * float(x), 1, large=9.95)}%"


def largest_segment_caption(sizes: pl.DataFrame, segment_col: str, share_col: str = "share",
                            revenue_col: str = "revenue_share") -> str:
    """The largest segment by customers with its customer and revenue shares (and the top revenue segment when another).

    >>> t = pl.DataFrame({"s": ["A", "B"], "share": [0.6, 0.4], "revenue_share": [0.2, 0.8]})
    >>> largest_segment_caption(t, "s")
    'The largest segment, A, holds 60% of customers and 20% of revenue; B brings the most revenue (80%).'
    """
    t = sizes.drop_nulls(segment_col)
    if t.is_empty():
        return ""
    big = t.sort([share_col, segment_col], descending=[True, False]).row(0, named=True)
    text = (f"The largest segment, {big[segment_col]}, holds {_pct(big[share_col])} of customers and "
            f"{_pct(big.get(revenue_col))} of revenue")
    if revenue_col in t.columns and t[revenue_col].drop_nulls().len():
        rich = t.sort([revenue_col, segment_col], descending=[True, False], nulls_last=True).row(0, named=True)
        if rich[segment_col] != big[segment_col]:
            text += f"; {rich[segment_col]} brings the most revenue ({_pct(rich[revenue_col])})"
    return text + "."


def activity_caption(monthly: pl.DataFrame, month_col: str = "month") -> str:
    """The revenue peak month and the customers of the last month shown.

    >>> import datetime as dt
    >>> m = pl.DataFrame({"month": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)], "customers": [10, 12],
    ...                   "revenue": [500.0, 300.0]})
    >>> activity_caption(m)
    'Revenue peaked in January 2024 (500); the last month shown, February 2024, had 12 active customers.'
    >>> activity_caption(m.head(1))
    'Revenue peaked in the last month shown, January 2024 (500 from 10 active customers).'
    """
    if monthly.is_empty():
        return ""
    peak = monthly.sort(["revenue", month_col], descending=[True, False]).row(0, named=True)
    last = monthly.sort(month_col).row(-1, named=True)
    if peak[month_col] == last[month_col]:
        return (f"Revenue peaked in the last month shown, {last[month_col]:%B %Y} ({fmt_number(last['revenue'], 0)} from "
                f"{fmt_value(last['customers'], 'int')} active customers).")
    return (f"Revenue peaked in {peak[month_col]:%B %Y} ({fmt_number(peak['revenue'], 0)}); the last month shown, "
            f"{last[month_col]:%B %Y}, had {fmt_value(last['customers'], 'int')} active customers.")


def distribution_caption(features: pl.DataFrame) -> str:
    """One-time buyers and the top decile of spend, from the exploration page's quantiles.

    >>> f = pl.DataFrame({"total_spend": [10.0, 20.0, 30.0, 40.0, 1000.0], "n_orders": [1, 1, 2, 5, 9]})
    >>> distribution_caption(f)
    'Look at the left of the orders panel: 40% of customers bought once; the top 10% spent more than 1,000, the long right tail of the spend panel.'
    """
    from segmentation_lib.describe.exploration_text import spend_frequency_quantiles

    if features.is_empty():
        return ""
    q = spend_frequency_quantiles(features)
    return (f"Look at the left of the orders panel: {_pct(q['one_time'])} of customers bought once; the top 10% spent "
            f"more than {fmt_number(q['p90'], 0)}, the long right tail of the spend panel.")


def retention_caption(curve: pl.DataFrame) -> str:
    """Pooled retention one month after the first purchase, as a guide to reading the rows.

    >>> c = pl.DataFrame({"period_number": [0, 1], "retention": [1.0, 0.2]})
    >>> retention_caption(c)
    'On average 20% of a cohort buys again one month after its first purchase; read each row left to right to see how fast a cohort fades.'
    """
    one = curve.filter(pl.col("period_number") == 1)
    if one.is_empty():
        return "Each row is one cohort; the data does not yet reach one month after any first purchase."
    return (f"On average {_pct(one['retention'][0])} of a cohort buys again one month after its first purchase; read "
            "each row left to right to see how fast a cohort fades.")


def busiest_cell_caption(scores: pl.DataFrame, r_col: str = "r_score", f_col: str = "f_score") -> str:
    """The recency x frequency cell with the most customers.

    >>> s = pl.DataFrame({"r_score": [5, 5, 1], "f_score": [1, 1, 1]})
    >>> busiest_cell_caption(s)
    'The most crowded cell is recency 5 x frequency 1 with 2 customers (67%); the top-right corner holds the best customers.'
    """
    t = scores.drop_nulls([r_col, f_col])
    if t.is_empty():
        return ""
    cells = t.group_by(r_col, f_col).len().sort(["len", r_col, f_col], descending=[True, True, True])
    c = cells.row(0, named=True)
    return (f"The most crowded cell is recency {c[r_col]} x frequency {c[f_col]} with {fmt_value(c['len'], 'int')} "
            f"customers ({_pct(c['len'] / t.height)}); the top-right corner holds the best customers.")


def segment_map_caption(cells: pl.DataFrame, segment_col: str, r_col: str = "r_score", f_col: str = "f_score") -> str:
    """Which segment dominates the most recency x frequency cells.

    >>> s = pl.DataFrame({"r_score": [5, 4, 1], "f_score": [5, 5, 1], "seg": ["Champions", "Champions", "Lost"]})
    >>> segment_map_caption(s, "seg")
    'Champions is the most common segment in 2 of the 3 occupied recency x frequency cells; the colours show where each segment sits.'
    """
    t = cells.drop_nulls([r_col, f_col, segment_col])
    if t.is_empty():
        return ""
    dom = (t.group_by(r_col, f_col, segment_col).len().sort(["len", segment_col], descending=[True, False])
           .group_by(r_col, f_col, maintain_order=True).first())
    top = dom.group_by(segment_col).len().sort(["len", segment_col], descending=[True, False]).row(0, named=True)
    return (f"{top[segment_col]} is the most common segment in {top['len']} of the {dom.height} occupied recency x "
            "frequency cells; the colours show where each segment sits.")


def quadrant_caption(matrix: pl.DataFrame, segment_col: str, amount_share_col: str, amount_word: str) -> str:
    """The 2 x 2 cell with the largest share of ``amount_word`` and its share of customers.

    >>> m = pl.DataFrame({"cell": ["High value", "Low value"], "share": [0.2, 0.8], "revenue_share": [0.7, 0.3]})
    >>> quadrant_caption(m, "cell", "revenue_share", "revenue")
    'The High value cell brings 70% of revenue from 20% of customers.'
    """
    t = matrix.drop_nulls(amount_share_col)
    if t.is_empty():
        return ""
    c = t.sort([amount_share_col, segment_col], descending=[True, False]).row(0, named=True)
    return f"The {c[segment_col]} cell brings {_pct(c[amount_share_col])} of {amount_word} from {_pct(c['share'])} of customers."


def k_sweep_caption(k: int, algorithm: str) -> str:
    """Where the chosen k is marked.

    >>> k_sweep_caption(4, "kmeans")
    'The marked k = 4 is the number of segments chosen (kmeans); look for where the curves level off or peak there.'
    """
    return f"The marked k = {k} is the number of segments chosen ({algorithm}); look for where the curves level off or peak there."


def strongest_cell_caption(wide: pl.DataFrame, what: str, unit: str = "pct") -> str:
    """The largest absolute value of a wide table (first column = row labels), e.g. a segment's feature against the average.

    ``what`` reads ``"{row} ... {column} ... {value}"`` with those placeholders.

    >>> w = pl.DataFrame({"segment": ["A", "B"], "spend": [0.5, -2.0], "orders": [0.1, 0.3]})
    >>> strongest_cell_caption(w, "The strongest contrast: segment '{row}' is at {value} of the average customer on {column}.", "signed_pct")
    "The strongest contrast: segment 'B' is at -200% of the average customer on spend."
    """
    label = wide.columns[0]
    long = (wide.unpivot(index=label, variable_name="column", value_name="value").drop_nulls("value")
            .with_columns(pl.col("value").cast(pl.Float64)))
    long = long.filter(pl.col("value").is_finite())
    if long.is_empty():
        return ""
    c = long.sort([pl.col("value").abs(), label, "column"], descending=[True, False, False]).row(0, named=True)
    if unit == "signed_pct":
        value = f"{100 * c['value']:+.0f}%"
    elif unit == "sd":
        value = f"{c['value']:+.1f} standard deviations"
    else:
        value = _pct(c["value"])
    return what.format(row=c[label], column=str(c["column"]).replace("_", " "), value=value)


def projection_caption(n: int, explained: list[float]) -> str:
    """How much the 2-D picture keeps.

    >>> projection_caption(800, [0.4, 0.25])
    'The two axes keep 65% of the variation among 800 sampled customers: well separated colours are segments that differ clearly.'
    """
    return (f"The two axes keep {_pct(sum(explained[:2]))} of the variation among {fmt_value(n, 'int')} sampled "
            "customers: well separated colours are segments that differ clearly.")


def stability_caption(segments: pl.DataFrame, stable: float, segment_col: str = "segment",
                      value_col: str = "jaccard_mean") -> str:
    """Segments above the stable threshold and the least stable one.

    >>> s = pl.DataFrame({"segment": ["A", "B"], "jaccard_mean": [0.9, 0.6]})
    >>> stability_caption(s, 0.75)
    '1 of 2 segments reach the stable threshold of 0.75; the least stable is B (0.6).'
    """
    t = segments.drop_nulls(value_col)
    if t.is_empty():
        return ""
    low = t.sort([value_col, segment_col]).row(0, named=True)
    n_ok = int((t[value_col] >= stable).sum())
    return (f"{n_ok} of {t.height} segments reach the stable threshold of {fmt_number(stable, 2)}; the least stable is "
            f"{low[segment_col]} ({fmt_number(low[value_col], 2)}).")


def holdout_spend_caption(segments: pl.DataFrame, labels: Mapping[str, str], method_col: str = "method",
                          segment_col: str = "segment", value_col: str = "mean_holdout_spend") -> str:
    """The spread of mean holdout spend across the segments of each method: a wider spread predicts better.

    >>> s = pl.DataFrame({"method": ["rfm", "rfm"], "segment": ["A", "B"], "mean_holdout_spend": [10.0, 90.0]})
    >>> holdout_spend_caption(s, {"rfm": "RFM segments"})
    'In the holdout period mean spend ranged from 10 (A) to 90 (B) across RFM segments; the wider the spread, the better the segments predict.'
    """
    parts = []
    for method, label in labels.items():
        t = segments.filter(pl.col(method_col) == method).drop_nulls(value_col)
        if t.is_empty():
            continue
        t = t.sort([value_col, segment_col])
        lo, hi = t.row(0, named=True), t.row(-1, named=True)
        parts.append(f"from {fmt_number(lo[value_col], 0)} ({lo[segment_col]}) to {fmt_number(hi[value_col], 0)} "
                     f"({hi[segment_col]}) across {label}")
    if not parts:
        return ""
    return "In the holdout period mean spend ranged " + "; ".join(parts) + "; the wider the spread, the better the segments predict."


def migration_caption(shares_wide: pl.DataFrame) -> str:
    """The largest move between two different segments (rows: before, columns: after).

    >>> w = pl.DataFrame({"from_segment": ["A", "B"], "A": [0.7, 0.4], "B": [0.3, 0.6]})
    >>> migration_caption(w)
    'The diagonal is customers who kept their segment; the largest move is 40% of B going to A.'
    """
    label = shares_wide.columns[0]
    long = (shares_wide.unpivot(index=label, variable_name="to", value_name="share").drop_nulls("share")
            .filter(pl.col(label).cast(pl.String) != pl.col("to")))
    if long.is_empty() or not long["share"].max():
        return "The diagonal is customers who kept their segment; nobody moved."
    c = long.sort(["share", label, "to"], descending=[True, False, False]).row(0, named=True)
    return f"The diagonal is customers who kept their segment; the largest move is {_pct(c['share'])} of {c[label]} going to {c['to']}."


def calibration_caption(summary: Mapping[str, Any] | None, holdout_days: int) -> str:
    """Predicted against actual purchases in the holdout, from the calibration summary.

    >>> calibration_caption({"predicted_purchases": 90.0, "actual_purchases": 100.0}, 90)
    'Over the 90-day holdout the model predicted 90 purchases against 100 actual: points on the diagonal are exact predictions.'
    """
    s = summary or {}
    pred, act = s.get("predicted_purchases"), s.get("actual_purchases")
    if pred is None or act is None:
        return f"Points on the diagonal are exact predictions for the {holdout_days}-day holdout."
    return (f"Over the {holdout_days}-day holdout the model predicted {fmt_number(pred, 0)} purchases against "
            f"{fmt_number(act, 0)} actual: points on the diagonal are exact predictions.")


def row_shares(wide: pl.DataFrame) -> pl.DataFrame:
    """A wide count table (first column = row labels) as shares of each row (a row of zeros stays zeros).

    >>> row_shares(pl.DataFrame({"s": ["A"], "x": [1], "y": [3]})).row(0)
    ('A', 0.25, 0.75)
    """
    label, cols = wide.columns[0], wide.columns[1:]
    total = pl.sum_horizontal(pl.col(c).cast(pl.Float64).fill_null(0) for c in cols)
    return wide.select(label, *[pl.when(total > 0).then(pl.col(c).cast(pl.Float64).fill_null(0) / total).otherwise(0.0)
                                .alias(c) for c in cols])


def transition_caption(summary: Mapping[str, Any], flows: pl.DataFrame) -> str:
    """What the transition heatmaps show first: the share that stayed and the largest move.

    >>> f = pl.DataFrame({"from_segment": ["Loyal"], "to_segment": ["At Risk"], "count": [412]})
    >>> transition_caption({"changed": 500, "customers_in_both": 2000}, f)
    '75% of the customers in both runs stayed in their segment (the diagonal); the largest move is 412 from Loyal to At Risk.'
    """
    both, changed = int(summary.get("customers_in_both") or 0), int(summary.get("changed") or 0)
    if not both:
        return ""
    text = f"{_pct((both - changed) / both)} of the customers in both runs stayed in their segment (the diagonal)"
    if flows.height:
        top = flows.row(0, named=True)
        text += f"; the largest move is {fmt_value(top['count'], 'int')} from {top['from_segment']} to {top['to_segment']}"
    return text + "."


def segment_retention_caption(retention: pl.DataFrame, segment_col: str = "segment") -> str:
    """The segments that kept the most and the fewest buyers in the first month after the last run.

    >>> r = pl.DataFrame({"segment": ["A", "B", "A"], "month": [1, 1, 2], "share": [0.6, 0.1, 0.5]})
    >>> segment_retention_caption(r)
    'In the first month after the last run, 60% of A bought again against 10% of B.'
    """
    first = retention.filter(pl.col("month") == retention["month"].min()).drop_nulls("share")
    if first.height < 2:
        return ""
    ranked = first.sort(["share", segment_col], descending=[True, False])
    hi, lo = ranked.row(0, named=True), ranked.row(-1, named=True)
    return (f"In the first month after the last run, {_pct(hi['share'])} of {hi[segment_col]} bought again "
            f"against {_pct(lo['share'])} of {lo[segment_col]}.")


def trend_caption(trend: pl.DataFrame, segment_col: str = "segment") -> str:
    """The segment whose share changed most between the first and the last run shown.

    >>> t = pl.DataFrame({"run": ["r1", "r1", "r2", "r2"], "segment": ["A", "B", "A", "B"],
    ...                   "share": [0.6, 0.4, 0.5, 0.5]})
    >>> trend_caption(t)
    'Between the first and the last run shown, A changed most, from 60% to 50% of customers.'
    """
    runs = sorted(set(trend["run"].to_list()))
    if len(runs) < 2:
        return ""
    first = trend.filter(pl.col("run") == runs[0]).select(segment_col, pl.col("share").alias("a"))
    last = trend.filter(pl.col("run") == runs[-1]).select(segment_col, pl.col("share").alias("b"))
    both = (first.join(last, on=segment_col, how="full", coalesce=True).fill_null(0.0)
            .with_columns((pl.col("b") - pl.col("a")).abs().alias("d"))
            .sort(["d", segment_col], descending=[True, False]))
    top = both.row(0, named=True)
    return (f"Between the first and the last run shown, {top[segment_col]} changed most, from {_pct(top['a'])} "
            f"to {_pct(top['b'])} of customers.")
