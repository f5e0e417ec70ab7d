"""Tables and sentences of the predicted value page (05), from plain tables and dicts.

>>> cautions_markdown([])
''
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import polars as pl

from segmentation_lib.formatting import fmt_number

#: how the page names the count models (``predict.model``)
MODEL_NAMES = {"mbgnbd": "MBG/NBD", "bgnbd": "BG/NBD", "pareto": "Pareto/NBD"}
#: the summary's period unit in words (``predict.freq``)
PERIOD_WORDS = {"D": "daily", "W": "weekly", "M": "monthly"}


def _money(x: float) -> str:
    return fmt_number(float(x), 0, large_decimals=0)


def _pct(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{100 * x:.1f}%" if 0 < abs(x) < 0.01 else f"{100 * x:.0f}%"


def model_sentence(info: Mapping[str, Any]) -> str:
    """What the predictions are and which model made them (``info`` = the value stage's block).

    >>> model_sentence({"model": "mbgnbd", "freq": "D", "clv_months": 12, "monthly_discount": 0.01,
    ...                 "customers_predicted": 90, "customers_without_prediction": 0})
    'Predictions come from the **MBG/NBD** model of how often customers buy and when they stop (set by `predict.model`) and the Gamma-Gamma model of spend per purchase, fitted on the daily purchase histories of 90 customers. **Predicted value** (CLV) is the expected net spend over the next 12 months, discounted at 1% a month; **P(alive)** is the probability that a customer still buys at all.'
    """
    n0 = int(info.get("customers_without_prediction") or 0)
    tail = (f" {n0:,} customer(s) without a purchase in the log get no prediction (counted, not dropped)." if n0 else "")
    return (f"Predictions come from the **{MODEL_NAMES.get(info['model'], info['model'])}** model of how often customers "
            f"buy and when they stop (set by `predict.model`) and the Gamma-Gamma model of spend per purchase, fitted on "
            f"the {PERIOD_WORDS.get(info['freq'], info['freq'])} purchase histories of {int(info['customers_predicted']):,} "
            f"customers. **Predicted value** (CLV) is the expected net spend over the next {int(info['clv_months'])} months, "
            f"discounted at {100 * float(info['monthly_discount']):g}% a month; **P(alive)** is the probability that a "
            f"customer still buys at all.{tail}")


def churn_risk_table(assignments: pl.DataFrame, clv_col: str = "clv_12m", horizon_col: str = "expected_purchases_90d") -> pl.DataFrame:
    """Per churn-risk tier (low, medium, high): customers, share, mean P(alive), expected purchases and value.

    >>> a = pl.DataFrame({"churn_risk": ["low", "high", None], "p_alive": [0.9, 0.1, None],
    ...                   "expected_purchases_90d": [2.0, 0.1, None], "clv_12m": [100.0, 5.0, None]})
    >>> churn_risk_table(a).rows()
    [('low', 1, 0.5, 0.9, 2.0, 100.0), ('high', 1, 0.5, 0.1, 0.1, 5.0)]
    """
    have = assignments.filter(pl.col("churn_risk").is_not_null())
    order = {"low": 0, "medium": 1, "high": 2}
    return (have.group_by(pl.col("churn_risk").cast(pl.String))
            .agg(pl.len().cast(pl.Int64).alias("customers"), pl.col("p_alive").mean().alias("mean_p_alive"),
                 pl.col(horizon_col).sum().alias(horizon_col), pl.col(clv_col).sum().alias(clv_col))
            .with_columns((pl.col("customers") / max(have.height, 1)).alias("share"))
            .sort(pl.col("churn_risk").replace_strict(order, default=3))
            .select("churn_risk", "customers", "share", "mean_p_alive", horizon_col, clv_col))


def buy_again_sentence(risk: pl.DataFrame, risk_cuts: Sequence[float], horizon_col: str = "expected_purchases_90d") -> str:
    """Who is likely to buy again: the low-risk tier and the purchases expected from everyone.

    >>> t = pl.DataFrame({"churn_risk": ["low", "high"], "customers": [60, 40], "share": [0.6, 0.4],
    ...                   "expected_purchases_90d": [150.0, 4.0]})
    >>> buy_again_sentence(t, (0.3, 0.7))
    '**60 customers (60%) are likely to buy again** (P(alive) of 70% or more); 40 (40%) have a P(alive) below 30% (high churn risk). All customers together are expected to make 154 purchases in the next 90 days, 97% of them from the likely buyers.'
    """
    rows = {r["churn_risk"]: r for r in risk.iter_rows(named=True)}
    low, high = rows.get("low"), rows.get("high")
    n_low, s_low = (low["customers"], low["share"]) if low else (0, 0.0)
    n_high, s_high = (high["customers"], high["share"]) if high else (0, 0.0)
    total = float(risk[horizon_col].sum())
    days = horizon_col.rsplit("_", 1)[-1].rstrip("d")
    from_low = float(low[horizon_col]) / total if low and total > 0 else 0.0
    return (f"**{n_low:,} customers ({_pct(s_low)}) are likely to buy again** (P(alive) of {_pct(risk_cuts[1])} or more); "
            f"{n_high:,} ({_pct(s_high)}) have a P(alive) below {_pct(risk_cuts[0])} (high churn risk). All customers "
            f"together are expected to make {fmt_number(total, 0)} purchases in the next {days} days, {_pct(from_low)} of "
            "them from the likely buyers.")


def slipping_away_sentence(matrix: pl.DataFrame, value_cut_money: float | None, alive_cut: float, clv_months: int = 12) -> str:
    """The At Risk cell of the predicted value x churn-risk matrix: valuable customers with a low P(alive).

    >>> m = pl.DataFrame({"value_churn": ["Champions", "At Risk"], "customers": [10, 4], "expected_clv": [900.0, 120.0],
    ...                   "expected_clv_share": [0.8, 0.1]})
    >>> slipping_away_sentence(m, 50.0, 0.5)
    '**4 valuable customers are slipping away** (At Risk: predicted 12-month value above 50 but a P(alive) of 50% or less). If they stayed as they are they would still bring 120 (10% of all predicted value); they are the first group for a win-back campaign.'
    """
    r = matrix.filter(pl.col("value_churn") == "At Risk")
    if r.is_empty() or not r["customers"][0]:
        return "No valuable customer is slipping away: every customer with a high predicted value is likely still active."
    row = r.row(0, named=True)
    cut = f" above {_money(value_cut_money)}" if value_cut_money is not None else " above the cut"
    return (f"**{row['customers']:,} valuable customers are slipping away** (At Risk: predicted {clv_months}-month value"
            f"{cut} but a P(alive) of {_pct(alive_cut)} or less). If they stayed as they are they would still bring "
            f"{_money(row['expected_clv'])} ({_pct(row['expected_clv_share'])} of all predicted value); they are the first "
            "group for a win-back campaign.")


def matrix_note(value_cut: float, alive_cut: float) -> str:
    """How the value x churn-risk cells are cut.

    >>> matrix_note(0.5, 0.5)
    'High value = predicted CLV above the median of the customers with a prediction; likely active = P(alive) above 50%. Champions: high value, likely active. At Risk: high value, low P(alive). Promising: lower value, likely active. Dormant: lower value, low P(alive).'
    """
    q = "the median" if value_cut == 0.5 else f"the {100 * value_cut:g}th percentile"
    return (f"High value = predicted CLV above {q} of the customers with a prediction; likely active = P(alive) above "
            f"{_pct(alive_cut)}. Champions: high value, likely active. At Risk: high value, low P(alive). Promising: "
            "lower value, likely active. Dormant: lower value, low P(alive).")


def value_by_segment_sentence(table: pl.DataFrame, segment_col: str, kind: str) -> str:
    """The segment with the most predicted value.

    >>> t = pl.DataFrame({"s": ["a", "b"], "share": [0.2, 0.8], "expected_clv_share": [0.7, 0.3]})
    >>> value_by_segment_sentence(t, "s", "RFM")
    'Among the RFM segments, **a** holds the most predicted value: 70% of the total from 20% of the customers.'
    """
    t = table.filter(pl.col("expected_clv_share").is_not_null())
    if t.is_empty():
        return ""
    top = t.sort("expected_clv_share", descending=True).row(0, named=True)
    return (f"Among the {kind} segments, **{top[segment_col]}** holds the most predicted value: "
            f"{_pct(top['expected_clv_share'])} of the total from {_pct(top['share'])} of the customers.")


def calibration_sentence(summary: Mapping[str, Any] | None, note: str | None = None) -> str:
    """How the model did on the holdout period: predicted vs actual purchases and the calibration error.

    >>> calibration_sentence({"cutoff": "2024-10-03T00:00:00+00:00", "holdout_days": 90, "customers": 1000,
    ...     "predicted_purchases": 900.0, "actual_purchases": 1000.0, "calibration_error": 0.12,
    ...     "total_purchases_relative_error": -0.1})
    'Fitted on the history before 2024-10-03 only and asked for the next 90 days, the model expected 900 purchases from the 1,000 customers seen before then; they made 1,000 (-10%). The calibration error, the mean gap between predicted and actual purchases per customer over the frequency groups of the plot, is 0.12 purchases.'
    """
    if not summary:
        return note or ""
    rel = summary.get("total_purchases_relative_error")
    text = (f"Fitted on the history before {str(summary['cutoff'])[:10]} only and asked for the next "
            f"{int(summary['holdout_days'])} days, the model expected {fmt_number(summary['predicted_purchases'], 0)} "
            f"purchases from the {int(summary['customers']):,} customers seen before then; they made "
            f"{fmt_number(summary['actual_purchases'], 0)} ({'-' if rel is None else f'{100 * rel:+.0f}%'}). The calibration "
            f"error, the mean gap between predicted and actual purchases per customer over the frequency groups of the "
            f"plot, is {fmt_number(summary['calibration_error'], 2)} purchases.")
    if rel is not None and abs(rel) > 0.2:
        text += (" **The totals differ by more than 20%**: read predicted purchases and CLV as a ranking of customers "
                 "rather than as amounts. Seasonality (a holdout period with a sales peak), a change in the business, or "
                 "customer behaviour the model does not describe can cause it.")
    return text


def cautions_markdown(cautions: Sequence[str]) -> str:
    """The data-sufficiency cautions as a plain-language list (empty when the data is sufficient).

    >>> cautions_markdown(["Short history: only 90 days."])
    '**Cautions: the data is thin for predictions.** Read the numbers on this page with these in mind:\\n\\n- Short history: only 90 days.'
    """
    if not cautions:
        return ""
    return ("**Cautions: the data is thin for predictions.** Read the numbers on this page with these in mind:\n\n"
            + "\n".join(f"- {c}" for c in cautions))


def sufficiency_ok_sentence(n_cautions: int) -> str:
    """The line shown when the data-sufficiency check found nothing.

    >>> sufficiency_ok_sentence(0)
    'The data passes the data-sufficiency check (enough purchasers, history, recent orders and repeat buyers).'
    """
    return "" if n_cautions else ("The data passes the data-sufficiency check (enough purchasers, history, recent "
                                  "orders and repeat buyers).")


def no_purchases_value_note(has_events: bool = True) -> str:
    """Why the predicted-value page (BTYD / Gamma-Gamma) is not made for a run without a transaction log.

    >>> no_purchases_value_note().startswith("Predicted value (BTYD and Gamma-Gamma models) does not apply")
    True
    """
    what = "only a product-usage event log" if has_events else "no purchases"
    return ("Predicted value (BTYD and Gamma-Gamma models) does not apply to this run: those models learn how often "
            "each customer buys and how much they spend, and this run has no transaction log (data.path is null), "
            f"{what}. Usage events carry no money, so there is no spend to model and no customer value to "
            "predict; the other pages describe activity instead (RFM-style scores on usage, behavioural clusters, "
            "and validation on a usage holdout). Fix, if you want it: set data.path to the invoices or orders "
            "beside data.events.")
