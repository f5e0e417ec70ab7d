"""The per-customer predicted value table: columns, units, CLV against lifetimes, the planted demo archetypes."""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError
from segmentation_lib.features.btyd import btyd_summary
from segmentation_lib.predict.common import PredictWarning
from segmentation_lib.predict.counts import BetaGeoModel, ParetoNBDModel
from segmentation_lib.predict.spend import GammaGammaModel
from segmentation_lib.predict.value import customer_lifetime_value, predicted_value_table


def _quiet_table(summary: pl.DataFrame, **kw) -> pl.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PredictWarning)  # the demo's planted spend/frequency link
        return predicted_value_table(summary, **kw)


def test_table_has_one_row_per_customer_and_the_documented_columns(cdnow_monetary: pl.DataFrame) -> None:
    t = predicted_value_table(cdnow_monetary, horizons=(30, 90, 365), clv_months=12, freq="W")
    assert t.columns == ["customer_id", "p_alive", "expected_purchases_30d", "expected_purchases_90d",
                         "expected_purchases_365d", "expected_spend", "clv_12m", "churn_risk"]
    assert t.height == cdnow_monetary.height and t["customer_id"].to_list() == cdnow_monetary["customer_id"].to_list()
    assert t["churn_risk"].dtype == pl.Enum(["low", "medium", "high"])
    assert t.select(pl.all().exclude("customer_id", "churn_risk").is_finite().all()).row(0) == (True,) * 6
    assert (t["expected_purchases_30d"] <= t["expected_purchases_90d"]).all()
    assert (t["expected_purchases_90d"] <= t["expected_purchases_365d"]).all()
    # the same numbers as the models used directly
    m = BetaGeoModel(freq="W").fit(cdnow_monetary)
    np.testing.assert_allclose(t["p_alive"].to_numpy(), m.predict_p_alive(cdnow_monetary), rtol=1e-12)
    np.testing.assert_allclose(t["expected_purchases_90d"].to_numpy(), m.predict(cdnow_monetary, days=90), rtol=1e-12)
    tiers = t.select(pl.col("churn_risk").cast(pl.String), "p_alive")
    assert tiers.filter(pl.col("churn_risk") == "high")["p_alive"].max() < 0.3
    assert tiers.filter(pl.col("churn_risk") == "low")["p_alive"].min() >= 0.7


def test_clv_matches_lifetimes(cdnow_monetary: pl.DataFrame) -> None:
    try:
        import lifetimes
    except Exception as exc:
        pytest.skip(f"lifetimes does not import here ({type(exc).__name__}: {exc}); the comparison needs it")
    s = cdnow_monetary
    x, tx, T, mv = (s[c].to_pandas() for c in ("frequency", "recency", "T", "monetary_value"))
    bg = lifetimes.BetaGeoFitter().fit(x, tx, T)
    rep = s.filter(pl.col("frequency") > 0)
    gg = lifetimes.GammaGammaFitter().fit(rep["frequency"].to_pandas(), rep["monetary_value"].to_pandas())
    theirs = gg.customer_lifetime_value(bg, x, tx, T, mv, time=12, discount_rate=0.01, freq="W").to_numpy()
    # lifetimes' month is 4.345 weeks: pass that month length to compare like with like
    t = predicted_value_table(s, horizons=(30,), clv_months=12, monthly_discount=0.01, freq="W", days_per_month=4.345 * 7)
    diff = np.abs(t["clv_12m"].to_numpy() - theirs)
    print(f"CLV (12 months, 1%/month) max abs difference vs lifetimes: {diff.max():.2e} (max CLV {theirs.max():.0f})")
    np.testing.assert_allclose(t["clv_12m"].to_numpy(), theirs, rtol=1e-4, atol=1e-6)


def test_clv_formula() -> None:
    m = BetaGeoModel(freq="D")
    m.params_ = {"r": 0.5, "alpha": 30.0, "a": 0.8, "b": 2.5}
    x, tx, T, spend = [3.0, 0.0], [200.0, 0.0], [220.0, 220.0], [40.0, 25.0]
    flat = customer_lifetime_value(m, x, tx, T, spend, months=6, monthly_discount=0.0, days_per_month=30)
    np.testing.assert_allclose(flat, np.array(spend) * m.conditional_expected_purchases(180.0, x, tx, T), rtol=1e-12)
    discounted = customer_lifetime_value(m, x, tx, T, spend, months=6, monthly_discount=0.02, days_per_month=30)
    assert np.all(discounted < flat) and np.all(discounted > flat / 1.02 ** 6)
    with pytest.raises(ConfigError, match="whole number"):
        customer_lifetime_value(m, x, tx, T, spend, months=0)


def test_days_and_weeks_give_the_same_expected_purchases(planted) -> None:
    """Horizons are days whatever the period: the same purchases summarised in days and in weeks agree over 28 days.

    One purchase per customer and week is kept, so the weekly summary loses no purchase (only
    timing precision); a horizon silently read as 28 periods would be off by 7x in weeks.
    """
    tx, _, _ = planted
    weekly_once = (tx.filter(pl.col("amount") > 0).sort("timestamp")
                   .unique(["customer_id", pl.col("timestamp").dt.truncate("1w")], keep="first", maintain_order=True))
    days = btyd_summary(weekly_once, "2025-01-01", freq="D")
    weeks = btyd_summary(weekly_once, "2025-01-01", freq="W")
    assert (days["frequency"] == weeks["frequency"]).all()
    d = _quiet_table(days, horizons=(28,), freq="D").join(_quiet_table(weeks, horizons=(28,), freq="W"),
                                                          on="customer_id", suffix="_w")
    e_d, e_w = d["expected_purchases_28d"].to_numpy(), d["expected_purchases_28d_w"].to_numpy()
    print(f"expected purchases in 28 days, sum over customers: days {e_d.sum():.1f}, weeks {e_w.sum():.1f}; "
          f"median abs difference per customer {np.median(np.abs(e_w - e_d)):.4f}")
    assert e_w.sum() == pytest.approx(e_d.sum(), rel=0.05)
    assert np.corrcoef(e_d, e_w)[0, 1] > 0.98
    assert np.median(np.abs(e_w - e_d)) < 0.02
    wrong = BetaGeoModel(freq="W").fit(weeks).conditional_expected_purchases(
        28.0, *(weeks[c].to_numpy() for c in ("frequency", "recency", "T")))
    assert wrong.sum() > 3 * e_d.sum()  # what a unit mix-up would look like
    with pytest.raises(ConfigError, match="fitted on freq='D'"):
        predicted_value_table(weeks, freq="W", count_model=BetaGeoModel(freq="D").fit(days))


def test_planted_archetypes_line_up_with_the_predictions(planted) -> None:
    _, summary, truth = planted
    t = _quiet_table(summary, horizons=(30, 90), freq="D").join(truth, on="customer_id", how="inner")
    assert t.height == summary.height == truth.height
    by = t.group_by("archetype").agg(pl.col("p_alive", "expected_purchases_90d", "clv_12m").mean()).sort("p_alive")
    lowest = by["archetype"][0]
    assert lowest in ("dormant", "churned")
    # both lapsed archetypes below every active one
    lapsed = by.filter(pl.col("archetype").is_in(["dormant", "churned"]))["p_alive"].max()
    assert lapsed < by.filter(~pl.col("archetype").is_in(["dormant", "churned"]))["p_alive"].min()
    assert by.sort("expected_purchases_90d", descending=True)["archetype"][0] == "power"
    assert by.sort("clv_12m", descending=True)["archetype"][0] == "power"
    dormant = t.filter(pl.col("archetype") == "dormant")
    assert (dormant["churn_risk"].cast(pl.String) != "low").mean() > 0.9


def test_other_count_models_and_passed_models(cdnow_monetary: pl.DataFrame) -> None:
    pareto = predicted_value_table(cdnow_monetary, horizons=(30,), freq="W", model="pareto")
    one_time = cdnow_monetary["frequency"].to_numpy() == 0
    assert pareto["p_alive"].to_numpy()[one_time].max() < 1  # one-time buyers can be gone under Pareto/NBD
    mbg = predicted_value_table(cdnow_monetary, horizons=(30,), freq="W", model="mbgnbd")
    assert mbg.filter(pl.col("customer_id") == 3)["p_alive"].item() < 1
    gg = GammaGammaModel().fit(cdnow_monetary)
    pm = ParetoNBDModel(freq="W").fit(cdnow_monetary)
    passed = predicted_value_table(cdnow_monetary, horizons=(30,), freq="W", count_model=pm, spend_model=gg)
    assert passed.equals(pareto)
    with pytest.raises(ConfigError, match="model="):
        predicted_value_table(cdnow_monetary, freq="W", model="bg")
    with pytest.raises(ConfigError, match="horizons"):
        predicted_value_table(cdnow_monetary, freq="W", horizons=(0,))
