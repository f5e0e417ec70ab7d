"""Segments from predicted scores: the predicted value x churn-risk matrix and expected value per segment.

The matrix crosses predicted CLV (``clv_<m>m`` of :func:`~segmentation_lib.predict.value.predicted_value_table`)
with the probability that the customer is still active (``p_alive``), so its names mean what they say:
Champions = high predicted value, likely active; At Risk = high predicted value, low P(alive) (valuable
customers slipping away); Promising = lower value, likely active; Dormant = lower value, low P(alive).
Customers without a prediction (no purchase in the window) get a null cell and are counted apart.

>>> import polars as pl
>>> t = pl.DataFrame({"clv_12m": [900.0, 800.0, 10.0, 20.0], "p_alive": [0.9, 0.1, 0.8, 0.2]})
>>> predicted_value_matrix(t)["value_churn"].to_list()
['Champions', 'At Risk', 'Promising', 'Dormant']
"""
from __future__ import annotations

from typing import Any, Mapping

import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.sizes import segment_sizes, with_shares
from segmentation_lib.segment.value_engagement import quadrant_label

#: quadrant names: (high predicted value?, likely active?) -> label
PREDICTED_LABELS: dict[tuple[bool, bool], str] = {
    (True, True): "Champions",
    (True, False): "At Risk",
    (False, True): "Promising",
    (False, False): "Dormant",
}


def _schema(table: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return table.collect_schema() if isinstance(table, pl.LazyFrame) else table.schema


def predicted_value_cut(table: pl.DataFrame | pl.LazyFrame, value: str = "clv_12m", value_cut: float = 0.5) -> float | None:
    """The predicted-value cut in money: the ``value_cut`` quantile of ``value`` over customers with a prediction.

    >>> predicted_value_cut(pl.DataFrame({"clv_12m": [1.0, 2.0, 9.0, None]}))
    2.0
    """
    return table.lazy().select(pl.col(value).cast(pl.Float64).quantile(float(value_cut), interpolation="linear")).collect().item()


def predicted_value_matrix(
    table: pl.DataFrame | pl.LazyFrame,
    value: str = "clv_12m",
    alive: str = "p_alive",
    value_cut: float = 0.5,
    alive_cut: float = 0.5,
    col: str = "value_churn",
) -> pl.DataFrame | pl.LazyFrame:
    """Add ``col`` in {Champions, At Risk, Promising, Dormant}: predicted value (quantile cut) x P(alive) (probability cut).

    "High value" = ``value`` strictly above its ``value_cut`` quantile among customers with a prediction;
    "likely active" = ``alive`` strictly above ``alive_cut``. Rows with a null ``value`` or ``alive`` get a null cell.

    >>> t = pl.DataFrame({"clv_12m": [5.0, None], "p_alive": [0.9, None]})
    >>> predicted_value_matrix(t)["value_churn"].to_list()
    ['Promising', None]
    """
    schema = _schema(table)
    for c in (value, alive):
        if c not in schema:
            raise DataError(f"predicted_value_matrix: column '{c}' not in the table (columns: {list(schema)}). "
                            "Fix: join the predicted value table (predicted_value_table) onto it first.")
    for name, q in (("value_cut", value_cut), ("alive_cut", alive_cut)):
        if not 0.0 < float(q) < 1.0:
            raise ConfigError(f"predicted_value_matrix: {name}={q} is not in (0, 1). Fix: use e.g. 0.5 "
                              "(predict.value_cut / predict.alive_cut).")
    v = pl.col(value).cast(pl.Float64)
    a = pl.col(alive).cast(pl.Float64)
    hv = v > v.quantile(float(value_cut), interpolation="linear")
    ha = a > float(alive_cut)
    label = pl.when(v.is_null() | a.is_null()).then(pl.lit(None, pl.String)).otherwise(
        quadrant_label(hv, ha, PREDICTED_LABELS))
    return table.with_columns(label.alias(col))


def predicted_value_summary(
    table: pl.DataFrame | pl.LazyFrame, col: str = "value_churn", value: str = "clv_12m", alive: str = "p_alive"
) -> pl.DataFrame:
    """All four cells (empty ones with 0), in the order Champions, At Risk, Promising, Dormant:
    ``col, high_value, likely_active, customers, share, expected_clv, expected_clv_share, mean_p_alive``.

    Built on :func:`~segmentation_lib.segment.sizes.segment_sizes` with the predicted CLV as the revenue
    column; shares are over the customers with a cell (nulls, customers without a prediction, are left out).

    >>> t = pl.DataFrame({"value_churn": ["Champions", "At Risk", None], "clv_12m": [30.0, 10.0, None],
    ...                   "p_alive": [0.9, 0.2, None]})
    >>> predicted_value_summary(t).select("value_churn", "customers", "expected_clv_share").rows()
    [('Champions', 1, 0.75), ('At Risk', 1, 0.25), ('Promising', 0, 0.0), ('Dormant', 0, 0.0)]
    """
    schema = _schema(table)
    missing = [c for c in (col, value, alive) if c not in schema]
    if missing:
        raise DataError(f"predicted_value_summary: column(s) {missing} not in the table (columns: {list(schema)}). "
                        "Fix: run predicted_value_matrix first.")
    cells = pl.DataFrame({col: list(PREDICTED_LABELS.values()),
                          "high_value": [k[0] for k in PREDICTED_LABELS],
                          "likely_active": [k[1] for k in PREDICTED_LABELS]})
    sizes = segment_sizes(table.lazy().filter(pl.col(col).is_not_null()), col, value,
                          aggs=[pl.col(alive).mean().alias("mean_p_alive")]).select(col, "customers", "revenue", "mean_p_alive")
    out = cells.join(sizes, on=col, how="left", maintain_order="left").with_columns(
        pl.col("customers").fill_null(0), pl.col("revenue").fill_null(0.0))
    out = with_shares(out).rename({"revenue": "expected_clv", "revenue_share": "expected_clv_share"})
    return out.select(col, "high_value", "likely_active", "customers", "share", "expected_clv", "expected_clv_share",
                      "mean_p_alive")


def expected_value_by_segment(
    table: pl.DataFrame | pl.LazyFrame, segment_col: str, value: str = "clv_12m", alive: str = "p_alive"
) -> pl.DataFrame:
    """Per segment: ``segment_col, customers, share, expected_clv, expected_clv_share, mean_p_alive, no_prediction``.

    ``expected_clv`` sums the predicted CLV of the segment's customers (customers without a prediction add 0
    and are counted in ``no_prediction``), so the segments' values add up to the total predicted CLV.

    >>> t = pl.DataFrame({"s": ["a", "a", "b"], "clv_12m": [1.0, None, 3.0], "p_alive": [0.5, None, 0.9]})
    >>> expected_value_by_segment(t, "s").select("s", "expected_clv", "expected_clv_share", "no_prediction").rows()
    [('a', 1.0, 0.25, 1), ('b', 3.0, 0.75, 0)]
    """
    sizes = segment_sizes(table, segment_col, value, aggs=[pl.col(alive).mean().alias("mean_p_alive"),
                                                           pl.col(value).null_count().cast(pl.Int64).alias("no_prediction")])
    return (sizes.rename({"revenue": "expected_clv", "revenue_share": "expected_clv_share"})
            .select(segment_col, "customers", "share", "expected_clv", "expected_clv_share", "mean_p_alive", "no_prediction"))


def predicted_segments(summary: pl.DataFrame, settings: Mapping[str, Any]) -> tuple[pl.DataFrame, Any, Any]:
    """Fit the configured count model and Gamma-Gamma on a BTYD ``summary`` and return the per-customer
    predicted columns with their value x churn-risk cell, plus the two fitted models.

    ``settings`` is the ``predict`` section of a run configuration (model, freq, horizons,
    clv_months, monthly_discount, risk_cuts, value_cut, alive_cut). The run's value stage and
    ``segment score`` both call this, so a scored log gets exactly the run's columns.
    """
    from segmentation_lib.predict.counts import COUNT_MODELS
    from segmentation_lib.predict.spend import GammaGammaModel
    from segmentation_lib.predict.value import predicted_value_table

    freq = str(settings["freq"])
    counts = COUNT_MODELS[str(settings["model"])](freq=freq).fit(summary)
    spend = GammaGammaModel().fit(summary)
    pv = predicted_value_table(summary, horizons=tuple(settings["horizons"]), clv_months=int(settings["clv_months"]),
                               monthly_discount=float(settings["monthly_discount"]), freq=freq, count_model=counts,
                               spend_model=spend, risk_cuts=tuple(settings["risk_cuts"]))
    pv = predicted_value_matrix(pv, value=f"clv_{int(settings['clv_months'])}m",
                                value_cut=float(settings["value_cut"]), alive_cut=float(settings["alive_cut"]))
    return pv, counts, spend

