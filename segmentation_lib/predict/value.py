"""Per-customer predicted value: probability alive, expected purchases, expected spend, CLV and a churn-risk tier.

CLV over ``M`` months with a monthly discount rate ``d`` is lifetimes' discrete approximation
(``GammaGammaFitter.customer_lifetime_value``)::

    CLV = E[spend per purchase] * sum_{k=1..M} (E[X(k m)] - E[X((k-1) m)]) / (1 + d)^k

where ``E[X(t)]`` is the count model's conditional expected purchases in the next ``t`` periods
and ``m`` one month in the summary's periods (``days_per_month`` / days per period; lifetimes
takes 30 days, this kit the mean Gregorian month, 30.4375 days, by default). Purchases in month
``k`` are discounted by ``(1 + d)^k`` (end-of-month cash flows).

All count quantities depend on the history ``(frequency, recency, T)`` only, so they are computed
once per distinct history (pattern) and gathered back to the customers.

>>> import polars as pl
>>> from segmentation_lib.predict.counts import BetaGeoModel
>>> m = BetaGeoModel(freq="W"); m.params_ = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
>>> clv = customer_lifetime_value(m, [2.0], [30.43], [38.86], [30.0], months=12, monthly_discount=0.0)
>>> bool(abs(clv[0] - 30.0 * m.conditional_expected_purchases(12 * 365.25 / 12 / 7, 2.0, 30.43, 38.86)) < 1e-9)
True
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError
from segmentation_lib.predict.common import (
    COUNT_COLUMNS,
    DAYS_PER_MONTH,
    check_histories,
    days_to_periods,
    group_patterns,
    period_days,
    summary_columns,
)
from segmentation_lib.predict.counts import COUNT_MODELS, CountModel
from segmentation_lib.predict.spend import GammaGammaModel

#: churn-risk tiers, lowest risk first
CHURN_RISK_TIERS: tuple[str, ...] = ("low", "medium", "high")


def discounted_purchases(
    count_model: CountModel,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    *,
    months: int = 12,
    monthly_discount: float = 0.01,
    days_per_month: float = DAYS_PER_MONTH,
) -> np.ndarray:
    """sum_{k=1..months} (E[X(k m)] - E[X((k-1) m)]) / (1 + d)^k: expected purchases, discounted by month.

    >>> from segmentation_lib.predict.counts import BetaGeoModel
    >>> m = BetaGeoModel(freq="D"); m.params_ = {"r": 0.5, "alpha": 30.0, "a": 0.8, "b": 2.5}
    >>> bool(discounted_purchases(m, [3.0], [200.0], [220.0], monthly_discount=0.05)[0] < m.predict(
    ...     pl.DataFrame({"frequency": [3.0], "recency": [200.0], "T": [220.0]}), days=12 * 365.25 / 12)[0])
    True
    """
    if int(months) != months or months < 1:
        raise ConfigError(f"CLV: months={months!r} must be a whole number of months >= 1.")
    if not monthly_discount > -1:
        raise ConfigError(f"CLV: monthly_discount={monthly_discount!r} must be > -1 (0.01 means 1% a month).")
    x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
    step = days_to_periods(days_per_month, count_model.freq)
    total = np.zeros_like(x)
    previous = np.zeros_like(x)
    for k in range(1, int(months) + 1):  # a loop over months (12 by default), vectorised over customers
        current = count_model.conditional_expected_purchases(k * step, x, tx, T)
        total += (current - previous) / (1 + monthly_discount) ** k
        previous = current
    return total


def customer_lifetime_value(
    count_model: CountModel,
    frequency: Sequence[float] | np.ndarray,
    recency: Sequence[float] | np.ndarray,
    T: Sequence[float] | np.ndarray,
    expected_spend: Sequence[float] | np.ndarray,
    *,
    months: int = 12,
    monthly_discount: float = 0.01,
    days_per_month: float = DAYS_PER_MONTH,
) -> np.ndarray:
    """CLV over ``months`` months: expected spend per purchase times the discounted expected purchases (module docstring).

    >>> from segmentation_lib.predict.counts import BetaGeoModel
    >>> m = BetaGeoModel(freq="D"); m.params_ = {"r": 0.5, "alpha": 30.0, "a": 0.8, "b": 2.5}
    >>> customer_lifetime_value(m, [0.0], [0.0], [100.0], [0.0]).tolist()
    [0.0]
    """
    d = discounted_purchases(count_model, frequency, recency, T, months=months, monthly_discount=monthly_discount,
                             days_per_month=days_per_month)
    return np.asarray(expected_spend, dtype=float) * d


def horizon_label(days: float) -> str:
    """Column-name form of a horizon in days: ``30`` -> ``"30d"``, ``7.5`` -> ``"7.5d"``.

    >>> horizon_label(90), horizon_label(7.5)
    ('90d', '7.5d')
    """
    return f"{float(days):g}d"


def churn_risk_expr(p_alive: str = "p_alive", cuts: tuple[float, float] = (0.3, 0.7)) -> pl.Expr:
    """The churn-risk tier from P(alive): ``high`` below ``cuts[0]``, ``medium`` below ``cuts[1]``, else ``low``.

    >>> pl.DataFrame({"p_alive": [0.1, 0.5, 0.9]}).select(churn_risk_expr())["churn_risk"].to_list()
    ['high', 'medium', 'low']
    """
    lo, hi = cuts
    if not 0 <= lo <= hi <= 1:
        raise ConfigError(f"churn risk: risk_cuts={cuts!r} must be two P(alive) cut points 0 <= low <= high <= 1.")
    c = pl.col(p_alive)
    tier = pl.when(c < lo).then(pl.lit("high")).when(c < hi).then(pl.lit("medium")).otherwise(pl.lit("low"))
    return tier.cast(pl.Enum(CHURN_RISK_TIERS)).alias("churn_risk")


def predicted_value_table(
    summary: pl.DataFrame,
    horizons: Sequence[float] = (30, 90, 365),
    clv_months: int = 12,
    monthly_discount: float = 0.01,
    freq: str = "D",
    *,
    model: str = "bgnbd",
    count_model: CountModel | None = None,
    spend_model: GammaGammaModel | None = None,
    risk_cuts: tuple[float, float] = (0.3, 0.7),
    days_per_month: float = DAYS_PER_MONTH,
    customer_id_col: str = "customer_id",
) -> pl.DataFrame:
    """One row per customer: ``customer_id, p_alive, expected_purchases_<h>d..., expected_spend, clv_<m>m, churn_risk``.

    ``summary`` is a :func:`~segmentation_lib.features.btyd.btyd_summary` table built with period
    ``freq``; ``horizons`` are in days (converted to periods explicitly). Without ``count_model``
    the count model named by ``model`` (``"bgnbd"``, ``"mbgnbd"``, ``"pareto"``) is fitted on the
    summary; without ``spend_model`` a Gamma-Gamma model (repeat buyers with positive spend). A
    passed model must have been fitted on the same period unit (checked). ``expected_spend`` is
    the Gamma-Gamma conditional expectation of spend per purchase; ``clv_<m>m`` the discounted CLV
    of the module docstring; ``churn_risk`` the tier of P(alive) (``risk_cuts``). Note: under
    BG/NBD a one-time buyer can only drop out after a purchase, so frequency-0 customers have
    P(alive) = 1 and a ``low`` churn risk whatever their recency; choose ``model="mbgnbd"`` or
    ``"pareto"`` when one-time buyers' churn risk matters.

    >>> import polars as pl
    >>> s = pl.DataFrame({"customer_id": list("abcdefghijklm"),
    ...     "frequency": [0.0, 1, 3, 6, 2, 4, 1, 2, 3, 1, 2, 5, 1],
    ...     "recency": [0.0, 20, 30, 38, 10, 35, 5, 36, 12, 25, 30, 39, 2],
    ...     "T": [40.0, 40, 40, 40, 40, 39, 38, 40, 40, 35, 33, 40, 30],
    ...     "monetary_value": [0.0, 20, 35, 30, 18, 50, 9, 27.5, 22, 41, 33, 16, -4]})
    >>> t = predicted_value_table(s, horizons=(28,), clv_months=6, freq="W")
    >>> t.columns
    ['customer_id', 'p_alive', 'expected_purchases_28d', 'expected_spend', 'clv_6m', 'churn_risk']
    """
    pdays = period_days(freq)
    if not horizons or any(not (float(h) > 0) for h in horizons):
        raise ConfigError(f"predicted_value_table: horizons={tuple(horizons)!r} must be positive numbers of days.")
    if count_model is None:
        if model not in COUNT_MODELS:
            raise ConfigError(f"predicted_value_table: model={model!r} is not one of {sorted(COUNT_MODELS)}.")
        count_model = COUNT_MODELS[model](freq=freq).fit(summary)
    elif period_days(count_model.freq) != pdays:
        raise ConfigError(
            f"predicted_value_table: the count model was fitted on freq={count_model.freq!r} periods but the summary "
            f"is in freq={freq!r}. Fix: pass the freq the summary was built with, or refit the model on this summary."
        )
    if spend_model is None:
        spend_model = GammaGammaModel().fit(summary)
    x, tx, T = summary_columns(summary, COUNT_COLUMNS, "predicted_value_table")
    check_histories(x, tx, T, "predicted_value_table")
    (m,) = summary_columns(summary, ("monetary_value",), "predicted_value_table")
    if customer_id_col not in summary.columns:
        raise ConfigError(f"predicted_value_table: no {customer_id_col!r} column in the summary (it has {summary.columns}).")

    pat = group_patterns([x, tx, T])
    px, ptx, pT = pat.values
    columns: dict[str, np.ndarray] = {"p_alive": count_model.probability_alive(px, ptx, pT)[pat.index]}
    for h in horizons:
        e = count_model.conditional_expected_purchases(days_to_periods(float(h), freq), px, ptx, pT)
        columns[f"expected_purchases_{horizon_label(h)}"] = e[pat.index]
    spend = spend_model.conditional_expected_spend(x, m)
    columns["expected_spend"] = spend
    disc = discounted_purchases(count_model, px, ptx, pT, months=clv_months, monthly_discount=monthly_discount,
                                days_per_month=days_per_month)
    columns[f"clv_{int(clv_months)}m"] = spend * disc[pat.index]
    out = pl.DataFrame({customer_id_col: summary[customer_id_col], **{k: pl.Series(k, v) for k, v in columns.items()}})
    return out.with_columns(churn_risk_expr("p_alive", risk_cuts))
