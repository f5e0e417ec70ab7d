"""The value vs engagement matrix: four cells from one value and one engagement measure.

The cells are named by what they measure ("High value, low engagement", ...): with the default
measures (lifetime net spend and lifetime number of orders) recency plays no part, so a name such as
"At Risk" would promise what the cell does not measure. The action names (Champions, At Risk, Promising,
Dormant) belong to the predicted value x churn-risk matrix (``segment/predicted.py``), where they hold.

>>> import polars as pl
>>> f = pl.DataFrame({"total_spend": [10.0, 500.0, 20.0, 900.0], "n_orders": [1, 1, 8, 9]})
>>> value_engagement_matrix(f)["value_engagement"].to_list()[:2]
['Low value, low engagement', 'High value, low engagement']
"""
from __future__ import annotations

from typing import Mapping

import polars as pl

from segmentation_lib.segment.sizes import segment_sizes, with_shares
from segmentation_lib.errors import ConfigError, DataError



# --------------------------------------------------------------------------------------------
# value vs engagement
# --------------------------------------------------------------------------------------------
#: quadrant names: (high value?, high engagement?) -> label
VALUE_ENGAGEMENT_LABELS = {
    (True, True): "High value, high engagement",
    (True, False): "High value, low engagement",
    (False, True): "Low value, high engagement",
    (False, False): "Low value, low engagement",
}


def quadrant_label(high_value: pl.Expr, high_other: pl.Expr, names: Mapping[tuple[bool, bool], str]) -> pl.Expr:
    """The name of a 2 x 2 cell from two boolean expressions; ``names`` is keyed by
    ``(high_value, high_other)`` (the one cell rule of the value/engagement and predicted matrices).

    >>> pl.select(quadrant_label(pl.lit(True), pl.lit(False), VALUE_ENGAGEMENT_LABELS)).item()
    'High value, low engagement'
    """
    return (pl.when(high_value & high_other).then(pl.lit(names[True, True]))
            .when(high_value).then(pl.lit(names[True, False]))
            .when(high_other).then(pl.lit(names[False, True]))
            .otherwise(pl.lit(names[False, False])))


def _cut_exprs(value: str, engagement: str, value_cut: float, engagement_cut: float,
               absolute: bool) -> tuple[pl.Expr, pl.Expr]:
    """The value and engagement cut points as expressions: literals, or quantiles of the columns."""
    if absolute:
        return pl.lit(float(value_cut)), pl.lit(float(engagement_cut))
    return (pl.col(value).cast(pl.Float64).quantile(float(value_cut), interpolation="linear"),
            pl.col(engagement).cast(pl.Float64).quantile(float(engagement_cut), interpolation="linear"))


def value_engagement_matrix(
    features: pl.DataFrame | pl.LazyFrame,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
    col: str = "value_engagement",
) -> pl.DataFrame | pl.LazyFrame:
    """Add ``col`` (one of ``VALUE_ENGAGEMENT_LABELS``) from a value and an engagement measure.

    "High" means strictly above the cut. By default the cuts are quantiles of the table
    (``value_cut=0.5`` = the median); with ``absolute=True`` they are values in the columns' units.
    The cell says which side of each cut the customer is on and nothing more (with lifetime measures it
    does not tell recent from lapsed buyers). Nulls count as low.

    >>> import polars as pl
    >>> t = pl.DataFrame({"total_spend": [10.0, 900.0, 20.0, 800.0], "n_orders": [9, 8, 1, 1]})
    >>> value_engagement_matrix(t)["value_engagement"].to_list()[:2]
    ['Low value, high engagement', 'High value, high engagement']
    """
    schema = features.collect_schema() if isinstance(features, pl.LazyFrame) else features.schema
    for c in (value, engagement):
        if c not in schema:
            raise DataError(f"value_engagement_matrix: column '{c}' not in the table (columns: {list(schema)}). "
                            "Fix: set rfm.value_engagement.value/engagement to feature columns.")
    for name, q in (("value_cut", value_cut), ("engagement_cut", engagement_cut)):
        if not absolute and not 0.0 <= float(q) <= 1.0:
            raise ConfigError(f"value_engagement_matrix: {name}={q} is not a quantile in [0, 1]. Fix: use e.g. 0.5, or absolute=True.")
    v_cut, e_cut = _cut_exprs(value, engagement, value_cut, engagement_cut, absolute)
    hv = (pl.col(value).cast(pl.Float64) > v_cut).fill_null(False)
    he = (pl.col(engagement).cast(pl.Float64) > e_cut).fill_null(False)
    names = VALUE_ENGAGEMENT_LABELS
    return features.with_columns(quadrant_label(hv, he, names).alias(col))


def value_engagement_cuts(
    features: pl.DataFrame | pl.LazyFrame,
    value: str = "total_spend",
    engagement: str = "n_orders",
    value_cut: float = 0.5,
    engagement_cut: float = 0.5,
    absolute: bool = False,
) -> dict[str, float | None]:
    """The cut points :func:`value_engagement_matrix` uses, in the columns' units: ``{"value", "engagement"}``.

    >>> import polars as pl
    >>> value_engagement_cuts(pl.DataFrame({"total_spend": [1.0, 2.0, 9.0], "n_orders": [1, 1, 4]}))
    {'value': 2.0, 'engagement': 1.0}
    """
    if absolute:
        return {"value": float(value_cut), "engagement": float(engagement_cut)}
    v_cut, e_cut = _cut_exprs(value, engagement, value_cut, engagement_cut, absolute)
    row = features.lazy().select(v_cut.alias("value"), e_cut.alias("engagement")).collect().row(0, named=True)
    return {k: (None if v is None else float(v)) for k, v in row.items()}


def value_engagement_summary(
    table: pl.DataFrame | pl.LazyFrame, col: str = "value_engagement", revenue_col: str = "total_spend"
) -> pl.DataFrame:
    """All four quadrants (empty ones with 0): ``col, high_value, high_engagement, customers, share, revenue, revenue_share``.

    ``revenue_share`` is null when the total revenue is <= 0. Rows in the order of ``VALUE_ENGAGEMENT_LABELS``
    (high/high, high/low, low/high, low/low).

    >>> import polars as pl
    >>> hh, ll = VALUE_ENGAGEMENT_LABELS[True, True], VALUE_ENGAGEMENT_LABELS[False, False]
    >>> t = pl.DataFrame({"value_engagement": [hh, hh, ll], "total_spend": [8.0, 1.0, 1.0]})
    >>> value_engagement_summary(t)["revenue_share"].to_list()
    [0.9, 0.0, 0.0, 0.1]
    """
    schema = table.collect_schema() if isinstance(table, pl.LazyFrame) else table.schema
    missing = [c for c in (col, revenue_col) if c not in schema]
    if missing:
        raise DataError(f"value_engagement_summary: column(s) {missing} not in the table (columns: {list(schema)}). "
                        "Fix: run value_engagement_matrix first and pass a revenue column.")
    quads = pl.DataFrame({
        col: list(VALUE_ENGAGEMENT_LABELS.values()),
        "high_value": [k[0] for k in VALUE_ENGAGEMENT_LABELS],
        "high_engagement": [k[1] for k in VALUE_ENGAGEMENT_LABELS],
    })
    counts = segment_sizes(table, col, revenue_col).select(col, "customers", "revenue")
    out = quads.join(counts, on=col, how="left", maintain_order="left").with_columns(
        pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0))
    # shares over the four cells (customers outside every cell, a null cell, are not counted)
    return with_shares(out).select(col, "high_value", "high_engagement", "customers", "share", "revenue", "revenue_share")
