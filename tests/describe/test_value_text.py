"""segmentation_lib.describe.value_text: the sentences of the predicted value page, exactly."""
from __future__ import annotations

import polars as pl

from segmentation_lib.describe import value_text


def test_model_sentence_names_the_model_and_the_customers_without_prediction() -> None:
    s = value_text.model_sentence({"model": "bgnbd", "freq": "W", "clv_months": 6, "monthly_discount": 0.02,
                                   "customers_predicted": 1200, "customers_without_prediction": 3})
    assert s == ("Predictions come from the **BG/NBD** model of how often customers buy and when they stop (set by "
                 "`predict.model`) and the Gamma-Gamma model of spend per purchase, fitted on the weekly purchase "
                 "histories of 1,200 customers. **Predicted value** (CLV) is the expected net spend over the next 6 "
                 "months, discounted at 2% a month; **P(alive)** is the probability that a customer still buys at all. "
                 "3 customer(s) without a purchase in the log get no prediction (counted, not dropped).")


def test_buy_again_and_slipping_away() -> None:
    a = pl.DataFrame({"churn_risk": ["low", "low", "medium", "high"], "p_alive": [0.9, 0.8, 0.5, 0.1],
                      "expected_purchases_90d": [3.0, 1.0, 0.5, 0.5], "clv_12m": [100.0, 50.0, 20.0, 5.0]})
    risk = value_text.churn_risk_table(a)
    assert risk["churn_risk"].to_list() == ["low", "medium", "high"]
    assert value_text.buy_again_sentence(risk, (0.3, 0.7)) == (
        "**2 customers (50%) are likely to buy again** (P(alive) of 70% or more); 1 (25%) have a P(alive) below 30% "
        "(high churn risk). All customers together are expected to make 5 purchases in the next 90 days, 80% of them "
        "from the likely buyers.")
    m = pl.DataFrame({"value_churn": ["At Risk"], "customers": [1234], "expected_clv": [56789.4], "expected_clv_share": [0.123]})
    assert value_text.slipping_away_sentence(m, 250.0, 0.5) == (
        "**1,234 valuable customers are slipping away** (At Risk: predicted 12-month value above 250 but a P(alive) of "
        "50% or less). If they stayed as they are they would still bring 56,789 (12% of all predicted value); they are "
        "the first group for a win-back campaign.")
    assert value_text.slipping_away_sentence(m.with_columns(customers=pl.lit(0)), 1.0, 0.5).startswith("No valuable")


def test_calibration_sentence_warns_on_a_large_gap_and_cautions_list() -> None:
    s = value_text.calibration_sentence({"cutoff": "2024-10-03T00:00:00+00:00", "holdout_days": 90, "customers": 17000,
                                         "predicted_purchases": 20532.0, "actual_purchases": 37393.0,
                                         "calibration_error": 0.788, "total_purchases_relative_error": -0.451})
    assert s == ("Fitted on the history before 2024-10-03 only and asked for the next 90 days, the model expected 20,532 "
                 "purchases from the 17,000 customers seen before then; they made 37,393 (-45%). The calibration error, "
                 "the mean gap between predicted and actual purchases per customer over the frequency groups of the "
                 "plot, is 0.79 purchases. **The totals differ by more than 20%**: read predicted purchases and CLV as a "
                 "ranking of customers rather than as amounts. Seasonality (a holdout period with a sales peak), a change "
                 "in the business, or customer behaviour the model does not describe can cause it.")
    assert value_text.calibration_sentence(None, "Could not check.") == "Could not check."
    assert value_text.cautions_markdown(["A.", "B."]) == (
        "**Cautions: the data is thin for predictions.** Read the numbers on this page with these in mind:\n\n- A.\n- B.")
    assert value_text.sufficiency_ok_sentence(2) == ""
    t = pl.DataFrame({"s": ["a", "b"], "share": [0.25, 0.75], "expected_clv_share": [0.6, 0.4]})
    assert value_text.value_by_segment_sentence(t, "s", "behavioural") == (
        "Among the behavioural segments, **a** holds the most predicted value: 60% of the total from 25% of the customers.")
