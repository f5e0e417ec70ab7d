"""Plain-language descriptions of RFM scores, cut points, maps and value/engagement cells.

The report text follows the configuration (measures, bins, maps); nothing here is hard-coded to
the defaults.

>>> describe_measure("days_since_last", reverse=True)[0]
'days since the last purchase'
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from segmentation_lib.errors import ModelError
from segmentation_lib.formatting import fmt_number
from segmentation_lib.segment.rfm import DIMS, RFMScorer
from segmentation_lib.segment.rfm_maps import SegmentMap, load_segment_map
from segmentation_lib.segment.value_engagement import VALUE_ENGAGEMENT_LABELS, value_engagement_cuts



# --------------------------------------------------------------------------------------------
# plain-language descriptions (report text follows the configuration, never hard-coded)
# --------------------------------------------------------------------------------------------
#: feature column -> (what it measures, what the best score means)
MEASURES: dict[str, tuple[str, str]] = {
    "days_since_last": ("days since the last purchase", "bought most recently"),
    "n_orders": ("number of orders", "most orders"),
    "n_purchase_days": ("number of days with a purchase", "bought on the most days"),
    "total_spend": ("total net spend", "highest net spend"),
    "avg_order_value": ("average order value", "highest average order value"),
    # usage measures (rfm.usage of a usage-only run; docs/features.md)
    "days_since_last_activity": ("days since the last activity", "active most recently"),
    "active_days": ("number of active days", "active on the most days"),
    "sessions": ("number of sessions", "most sessions"),
    "n_events": ("number of events", "most events"),
    "events_per_session": ("events per session", "most events per session"),
    "distinct_events": ("number of distinct events used", "broadest use"),
}


def describe_measure(column: str, reverse: bool = False) -> tuple[str, str]:
    """``(what the column measures, what the best score means)``; other columns read as their name.

    >>> describe_measure("n_purchase_days")
    ('number of days with a purchase', 'bought on the most days')
    >>> describe_measure("visits_90d")
    ('visits 90d', 'highest visits 90d')
    """
    if column in MEASURES:
        return MEASURES[column]
    words = column.replace("_", " ")
    return words, f"{'lowest' if reverse else 'highest'} {words}"


def _as_scorer(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> "RFMScorer":
    if isinstance(scorer_or_config, RFMScorer):
        return scorer_or_config
    rc = scorer_or_config
    bins = rc.get("bins", 5)
    return RFMScorer(bins=dict(bins) if isinstance(bins, Mapping) else int(bins), recency=rc.get("recency", "days_since_last"),
                     frequency=rc.get("frequency", "n_orders"), monetary=rc.get("monetary", "total_spend"))




def _a(noun: str) -> str:
    """``noun`` with its indefinite article: 'a number of orders', 'an average order value'."""
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def describe_scores(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> str:
    """One Markdown paragraph: the score range and what each dimension measures (from the scorer or ``rfm:`` config).

    >>> describe_scores({"bins": 3, "frequency": "n_purchase_days"})  # doctest: +NORMALIZE_WHITESPACE
    'Every customer is scored 1-3 on **Recency** (3 = bought most recently; days since the last purchase),
    **Frequency** (3 = bought on the most days; number of days with a purchase) and **Monetary** value
    (3 = highest net spend; total net spend), and the score combination is mapped to a named segment.'
    """
    s = _as_scorer(scorer_or_config)
    per = s.measure_bins()
    parts = {}
    for dim, col in s._columns().items():
        what, best = describe_measure(col, reverse=dim == "recency")
        b = per[dim]
        parts[dim] = f"({b} = {best}; {what})" if len(set(per.values())) == 1 else f"1-{b} ({b} = {best}; {what})"
    if len(set(per.values())) == 1:
        return (f"Every customer is scored 1-{per['recency']} on **Recency** {parts['recency']}, **Frequency** "
                f"{parts['frequency']} and **Monetary** value {parts['monetary']}, and the score combination is "
                "mapped to a named segment.")
    top = max(per.values())
    return (f"Every customer is scored on **Recency** {parts['recency']}, **Frequency** {parts['frequency']} and "
            f"**Monetary** value {parts['monetary']}, and the score combination is mapped to a named segment; the "
            f"segment map is written for 1-{top} scores, so a score with fewer levels is read at the centre of its "
            f"range on that scale (e.g. 1-3 reads as {', '.join(str((2 * v - 1) * top // 6 + 1) for v in (1, 2, 3))}).")


def score_ranges(scorer: "RFMScorer") -> pl.DataFrame:
    """Wide table for the report: ``score`` (best first) and, per dimension, the value range of that score.

    Columns are named ``recency: <measure>`` etc.; a range reads ``up to a``, ``over a, up to b``
    or ``over b`` (a value on an edge belongs to the lower range); null = the score is not used.

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [1, 5, 9], "n_orders": [1, 2, 3], "total_spend": [5.0, 8.0, 9.5]})
    >>> score_ranges(RFMScorer(bins=3).fit(t)).row(0)
    (3, 'up to 1', 'over 2', 'over 8')
    """
    d = scorer.describe_edges()
    lo = pl.col("lower").map_elements(lambda v: fmt_number(v, 1), return_dtype=pl.String)
    hi = pl.col("upper").map_elements(lambda v: fmt_number(v, 1), return_dtype=pl.String)
    d = d.with_columns(
        pl.when(pl.col("lower").is_null() & pl.col("upper").is_null()).then(pl.lit("all values"))
        .when(pl.col("lower").is_null()).then(pl.format("up to {}", hi))
        .when(pl.col("upper").is_null()).then(pl.format("over {}", lo))
        .otherwise(pl.format("over {}, up to {}", lo, hi)).alias("range"))
    names = {dim: f"{dim}: {describe_measure(c, reverse=dim == 'recency')[0]}" for dim, c in scorer._columns().items()}
    wide = d.pivot(on="dimension", index="score", values="range")
    base = pl.DataFrame({"score": list(range(max(scorer.measure_bins().values()), 0, -1))}, schema={"score": pl.Int8})
    out = base.join(wide, on="score", how="left", maintain_order="left")
    return out.select("score", *[pl.col(dim).alias(names[dim]) if dim in out.columns else pl.lit(None, pl.String).alias(names[dim])
                                 for dim in DIMS])


def describe_cut_points(scorer: "RFMScorer") -> str:
    """One sentence on what the best score of each dimension takes, from the fitted edges.

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [1, 5, 9], "n_orders": [1, 2, 3], "total_spend": [5.0, 8.0, 9.5]})
    >>> describe_cut_points(RFMScorer(bins=3).fit(t))
    'A recency score of 3 means the last purchase was at most 1 day before the analysis date; a frequency score of 3 means a number of orders over 2; a monetary score of 3 means a total net spend over 8.'
    """
    if not hasattr(scorer, "edges_"):
        raise ModelError("describe_cut_points: the scorer is not fitted. Fix: call fit() first.")
    per = scorer.measure_bins()
    parts = []
    for dim, d in scorer.edges_.items():
        b = per[dim]
        what = describe_measure(d["column"], reverse=d["reverse"])[0]
        e = d["edges"]
        if not e:
            parts.append(f"everyone has the same {what}, so every {dim} score is {d['scores'][0]}")
        elif d["column"] == "days_since_last":
            days = e[0]
            parts.append(f"a {dim} score of {b} means the last purchase was at most {fmt_number(days, 1)} day{'' if days == 1 else 's'} "
                         "before the analysis date")
        elif d["reverse"]:
            parts.append(f"a {dim} score of {b} means {_a(what)} of at most {fmt_number(e[0], 1)}")
        else:
            parts.append(f"a {dim} score of {b} means {_a(what)} over {fmt_number(e[-1], 1)}")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _quantile_words(q: float) -> str:
    """``0.5`` -> 'the median', ``0.75`` -> 'the upper quartile', ``0.9`` -> 'the 90th percentile'."""
    named = {0.5: "the median", 0.25: "the lower quartile", 0.75: "the upper quartile"}
    if float(q) in named:
        return named[float(q)]
    p = round(100 * float(q), 1)
    p_text = f"{p:g}"
    suffix = "th" if p_text.endswith(("11", "12", "13")) or "." in p_text else {"1": "st", "2": "nd", "3": "rd"}.get(p_text[-1], "th")
    return f"the {p_text}{suffix} percentile"


def describe_value_engagement(
    features: pl.DataFrame | pl.LazyFrame | None = None,
    summary: pl.DataFrame | None = None,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
    col: str = "value_engagement",
) -> str:
    """Markdown on what "high value" / "high engagement" mean (measure, cut and, with ``features``, its value).

    With ``summary`` (from :func:`value_engagement_summary`) a sentence on the high-value, low-engagement cell follows.
    Keyword arguments are those of :func:`value_engagement_matrix` (pass ``**cfg["rfm"]["value_engagement"]``).

    >>> import polars as pl
    >>> t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0], "n_orders": [9, 8, 1]})
    >>> describe_value_engagement(t, engagement_cut=0.75)
    '**High value** means a total net spend above the median (20); **high engagement** means a number of orders above the upper quartile (8.5). A customer exactly on a cut counts as low.'
    """
    cuts = value_engagement_cuts(features, value, engagement, value_cut, engagement_cut, absolute) if features is not None \
        else ({"value": float(value_cut), "engagement": float(engagement_cut)} if absolute else None)
    sides = []
    for key, column, q in (("value", value, value_cut), ("engagement", engagement, engagement_cut)):
        what = describe_measure(column)[0]
        where = fmt_number(float(q), 1) if absolute else _quantile_words(q)
        at = f" ({fmt_number(cuts[key], 1)})" if cuts is not None and not absolute and cuts[key] is not None else ""
        sides.append(f"{_a(what)} above {where}{at}")
    text = (f"**High value** means {sides[0]}; **high engagement** means {sides[1]}. "
            "A customer exactly on a cut counts as low.")
    if summary is not None and summary.height:
        risk = summary.filter(pl.col(col) == VALUE_ENGAGEMENT_LABELS[(True, False)])
        if risk.height and risk["customers"][0]:
            r = risk.row(0, named=True)
            share = "" if r["revenue_share"] is None else f" and hold {r['revenue_share']:.0%} of revenue"
            who = "customer has" if r["customers"] == 1 else "customers have"
            text += (f"\n\n**{r['customers']:,} high-value {who} low engagement** ("
                     f"{describe_measure(engagement)[0]} at or below the cut){share}. These cells do not look at how "
                     "recently a customer bought, so this one mixes recent and lapsed buyers; for a win-back campaign use "
                     "the At Risk group of the predicted value page (high predicted value, low probability of being active).")
    return text


def describe_segment_map(segment_map: "SegmentMap | str | Path | Mapping[str, Any]" = "default", bins: int | None = None) -> str:
    """One Markdown sentence on the segment map in use: its name, segments, codes and whether monetary counts.

    >>> describe_segment_map("default", bins=3)
    'Segments come from the map **rfm3**: 6 named segments over the 27 R-F-M codes of 3-bin scores; the chart shows the segment most customers in each recency x frequency cell belong to (the monetary score decides between neighbouring segments).'
    """
    m = load_segment_map(segment_map, bins=bins)
    n_codes = m.bins ** len(m.dims)
    if m.dims == "rfm":
        kind, tail = "R-F-M codes", " (the monetary score decides between neighbouring segments)"
    else:
        kind, tail = "R-F cells", " (this map uses recency and frequency only, so each cell is one segment)"
    return (f"Segments come from the map **{m.name}**: {len(m.segments)} named segments over the {n_codes:,} {kind} of "
            f"{m.bins}-bin scores; the chart shows the segment most customers in each recency x frequency cell belong to{tail}.")


def score_axis_labels(scorer_or_config: "RFMScorer | Mapping[str, Any]") -> dict[str, str]:
    """Axis labels for score charts, e.g. ``{"recency": "Recency score (5 = bought most recently)", ...}``.

    >>> score_axis_labels({"bins": 3, "frequency": "n_purchase_days"})["frequency"]
    'Frequency score (3 = bought on the most days)'
    """
    s = _as_scorer(scorer_or_config)
    per = s.measure_bins()
    return {dim: f"{dim.capitalize()} score ({per[dim]} = {describe_measure(col, reverse=dim == 'recency')[1]})"
            for dim, col in s._columns().items()}
