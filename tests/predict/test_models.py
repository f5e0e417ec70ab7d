"""The count and spend models: published CDNOW parameters, agreement with lifetimes, gradients, conventions, errors."""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest
from scipy.optimize import check_grad
from sklearn.base import clone

from segmentation_lib.errors import ConfigError, DataError, ModelError
from segmentation_lib.predict.common import group_patterns
from segmentation_lib.predict.counts import BetaGeoModel, ModifiedBetaGeoModel, ParetoNBDModel
from segmentation_lib.predict.spend import GammaGammaModel

#: Fader, Hardie and Lee (2005) / lifetimes' Quickstart and tests
BGNBD_CDNOW = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}
PARETO_CDNOW = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
MBGNBD_CDNOW = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}  # BTYDplus
GAMMA_GAMMA_CDNOW = {"p": 6.25, "q": 3.74, "v": 15.44}


def _import_lifetimes():
    try:
        import lifetimes  # noqa: F401  (needs autograd and pandas)
    except Exception as exc:  # ImportError, or autograd failing on this Python
        pytest.skip(f"lifetimes does not import here ({type(exc).__name__}: {exc}); the comparison needs it")
    return lifetimes


# ------------------------------------------------------------------ exactness against the references
def test_bgnbd_reproduces_the_published_cdnow_parameters(cdnow: pl.DataFrame) -> None:
    m = BetaGeoModel(freq="W").fit(cdnow)
    assert m.params_ == pytest.approx(BGNBD_CDNOW, rel=1e-3)
    assert m.n_customers_ == 2357 and m.n_patterns_ < 2357
    assert m.warnings_ == []


def test_bgnbd_cdnow_expectations(cdnow: pl.DataFrame) -> None:
    m = BetaGeoModel(freq="W").fit(cdnow)
    assert float(m.conditional_expected_purchases(39, 2, 30.43, 38.86)) == pytest.approx(1.226, abs=1e-3)
    t = np.array([0.1429, 1, 3, 31.8571, 32, 78])
    expected = np.array([0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576])
    np.testing.assert_allclose(m.expected_purchases(t), expected, atol=1e-3)  # lifetimes' test: decimal=3


def test_pareto_nbd_reproduces_the_published_cdnow_parameters(cdnow: pl.DataFrame) -> None:
    m = ParetoNBDModel(freq="W").fit(cdnow)
    assert m.params_ == pytest.approx(PARETO_CDNOW, rel=1e-3)


def test_mbgnbd_reproduces_btydplus_on_cdnow(cdnow: pl.DataFrame) -> None:
    m = ModifiedBetaGeoModel(freq="W").fit(cdnow)
    assert m.params_ == pytest.approx(MBGNBD_CDNOW, rel=2e-3)
    assert np.all(m.predict_p_alive(cdnow.filter(pl.col("frequency") == 0)) < 1)


def test_gamma_gamma_reproduces_the_published_cdnow_parameters(cdnow_monetary: pl.DataFrame) -> None:
    # as lifetimes' docs: fitted on the returning customers (frequency > 0)
    g = GammaGammaModel().fit(cdnow_monetary.filter(pl.col("frequency") > 0))
    # the references are quoted to two decimals (lifetimes' docs print p 6.25, q 3.74, v 15.45)
    assert g.params_ == pytest.approx(GAMMA_GAMMA_CDNOW, abs=1e-2)
    assert g.params_["p"] == pytest.approx(6.25, rel=1e-3) and g.params_["v"] == pytest.approx(15.44, rel=1e-3)
    assert g.n_fitted_ == 946 and g.n_excluded_ == 0 and g.warnings_ == []
    assert g.correlation_ == pytest.approx(0.1139, abs=1e-3)  # lifetimes' docs: 0.11
    # the full table gives the same fit: one-time buyers are left out and counted
    full = GammaGammaModel().fit(cdnow_monetary)
    assert full.params_ == pytest.approx(g.params_, rel=1e-9) and full.n_one_time_ == 1411


# ------------------------------------------------------------------ agreement with lifetimes itself
def test_per_customer_predictions_match_lifetimes(cdnow: pl.DataFrame) -> None:
    lifetimes = _import_lifetimes()
    np.random.seed(0)  # lifetimes' Pareto/NBD starts from a random point

    x, tx, T = (cdnow[c].to_pandas() for c in ("frequency", "recency", "T"))
    report = {}
    pairs = [(BetaGeoModel, lifetimes.BetaGeoFitter, {}), (ModifiedBetaGeoModel, lifetimes.ModifiedBetaGeoFitter, {}),
             (ParetoNBDModel, lifetimes.ParetoNBDFitter, {"iterative_fitting": 1})]
    for ours_cls, theirs_cls, kw in pairs:
        ours = ours_cls(freq="W").fit(cdnow)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = theirs_cls().fit(x, tx, T, **kw)
        name = ours_cls.label
        p_ours, p_theirs = ours.predict_p_alive(cdnow), np.asarray(theirs.conditional_probability_alive(x, tx, T))
        e_ours = ours.predict(cdnow, days=10 * 7)
        e_theirs = np.asarray(theirs.conditional_expected_number_of_purchases_up_to_time(10, x, tx, T))
        report[name] = (np.abs(p_ours - p_theirs).max(), np.abs(e_ours - e_theirs).max())
        # the formulas alone: lifetimes' fitted parameters plugged into ours
        same = ours_cls(freq="W")
        same.params_ = {k: float(v) for k, v in theirs.params_.items()}
        np.testing.assert_allclose(same.predict_p_alive(cdnow), p_theirs, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(same.predict(cdnow, days=70), e_theirs, rtol=1e-8, atol=1e-12)
    print("max abs difference vs lifetimes (P(alive), E[purchases in 10 weeks]):", report)
    assert max(report["BG/NBD"]) < 1e-5 and max(report["MBG/NBD"]) < 1e-5
    assert max(report["Pareto/NBD"]) < 1e-3  # a flat likelihood: lifetimes stops at a looser tolerance


def test_gamma_gamma_expected_spend_matches_lifetimes(cdnow_monetary: pl.DataFrame) -> None:
    lifetimes = _import_lifetimes()
    rep = cdnow_monetary.filter(pl.col("frequency") > 0)
    theirs = lifetimes.GammaGammaFitter().fit(rep["frequency"].to_pandas(), rep["monetary_value"].to_pandas())
    ours = GammaGammaModel().fit(rep)
    diff = np.abs(ours.predict(rep) - np.asarray(theirs.conditional_expected_average_profit(
        rep["frequency"].to_pandas(), rep["monetary_value"].to_pandas())))
    print(f"Gamma-Gamma expected spend, max abs difference vs lifetimes: {diff.max():.2e}")
    assert diff.max() < 1e-4


# ------------------------------------------------------------------ the likelihood machinery
@pytest.mark.parametrize("cls", [BetaGeoModel, ModifiedBetaGeoModel])
def test_count_model_gradient_is_the_derivative(cls, cdnow: pl.DataFrame) -> None:
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    pat = group_patterns([x, tx, T])
    m = cls()
    data = m.prepare(*pat.values, pat.weights)
    for z in (np.full(4, 0.1), np.log([0.3, 5.0, 0.7, 2.0]), np.array([-1.0, 2.0, 0.5, -0.3])):
        err = check_grad(lambda v: m.neg_log_likelihood(v, data)[0], lambda v: m.neg_log_likelihood(v, data)[1], z)
        assert err < 1e-5


def test_gamma_gamma_gradient_is_the_derivative(cdnow_monetary: pl.DataFrame) -> None:
    rep = cdnow_monetary.filter(pl.col("frequency") > 0)
    data = GammaGammaModel.prepare(rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy() / 25, np.ones(rep.height))
    for z in (np.full(3, 0.1), np.array([1.5, 1.0, -0.5])):
        f = GammaGammaModel.neg_log_likelihood
        assert check_grad(lambda v: f(v, data)[0], lambda v: f(v, data)[1], z) < 1e-5


def test_grouping_into_patterns_is_exact(cdnow: pl.DataFrame) -> None:
    """Fitting the distinct histories with their counts as weights is the same fit as all the rows."""
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    pat = group_patterns([x, tx, T])
    patterns = pl.DataFrame({"frequency": pat.values[0], "recency": pat.values[1], "T": pat.values[2]})
    a = BetaGeoModel(freq="W").fit(cdnow)
    b = BetaGeoModel(freq="W").fit(patterns, sample_weight=pat.weights)
    assert b.params_ == pytest.approx(a.params_, rel=1e-6)
    assert b.n_customers_ == cdnow.height


def test_large_frequencies_stay_finite() -> None:
    """Euler's form of the hypergeometric term: the same value as the direct form, and finite where that overflows."""
    from scipy.special import hyp2f1

    m = BetaGeoModel(freq="D")
    m.params_ = {"r": 0.8, "alpha": 20.0, "a": 0.5, "b": 3.0}
    r, alpha, a, b = m.params_.values()
    x, tx, T, t = np.array([0.0, 1, 5, 10, 30]), np.array([0.0, 100, 300, 500, 720]), np.full(5, 730.0), 365.0
    z = t / (alpha + T + t)
    direct = ((a + b + x - 1) / (a - 1) * (1 - hyp2f1(r + x, b + x, a + b + x - 1, z) * ((alpha + T) / (alpha + T + t)) ** (r + x))
              / (1 + (x > 0) * a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)))
    np.testing.assert_allclose(m.conditional_expected_purchases(t, x, tx, T), direct, rtol=1e-8)
    big = m.conditional_expected_purchases(t, np.array([2000.0]), np.array([729.0]), np.array([730.0]))[0]
    assert np.isfinite(big) and 0.7 * 2000 / 730 * t < big < 1.05 * 2000 / 730 * t
    assert np.isfinite(m.probability_alive(np.array([2000.0]), np.array([100.0]), np.array([730.0]))).all()


# ------------------------------------------------------------------ scikit-learn conventions and errors
def test_scikit_learn_conventions(cdnow: pl.DataFrame) -> None:
    m = BetaGeoModel(freq="W", tol=1e-9)
    assert m.get_params() == {"freq": "W", "max_iter": 2000, "tol": 1e-9}
    assert not hasattr(m, "params_")
    with pytest.raises(TypeError):
        BetaGeoModel("W")  # keyword-only parameters
    c = clone(m)
    assert c.get_params() == m.get_params() and not hasattr(c, "params_")
    assert m.fit(cdnow) is m
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GammaGammaModel().predict(cdnow)


def test_fit_errors_say_what_to_fix(cdnow: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="repeat buyer"):
        BetaGeoModel().fit(cdnow.with_columns(pl.lit(0.0).alias("frequency"), pl.lit(0.0).alias("recency")))
    with pytest.raises(DataError, match="recency > T"):
        BetaGeoModel().fit(cdnow.with_columns((pl.col("T") + 1).alias("recency")))
    with pytest.raises(DataError, match="not found"):
        BetaGeoModel().fit(cdnow.drop("T"))
    with pytest.raises(DataError, match="null"):
        BetaGeoModel().fit(cdnow.with_columns(pl.when(pl.col("customer_id") == 1).then(None).otherwise(pl.col("T")).alias("T")))
    with pytest.raises(ConfigError, match="freq"):
        BetaGeoModel(freq="Q").fit(cdnow)
    with pytest.raises(ModelError, match="did not converge.*Fix"):
        BetaGeoModel(max_iter=2).fit(cdnow)


def test_gamma_gamma_excludes_non_positive_spend_and_warns_on_correlation() -> None:
    rng = np.random.default_rng(3)
    n = 400
    x = rng.integers(1, 20, n).astype(float)
    m = rng.gamma(6.0, 5.0, n) * (1 + x / 5)  # spend rises with frequency: r well above 0.3
    m[:7] = [0.0, -3.0, -10.0, 0.0, -1.0, 0.0, -2.5]  # netted returns
    s = pl.DataFrame({"frequency": np.r_[x, [0.0] * 5], "monetary_value": np.r_[m, [0.0] * 5]})
    with pytest.warns(UserWarning, match=r"correlate \(r = 0\.\d\d, above the 0\.30 threshold\)"):
        g = GammaGammaModel().fit(s)
    assert (g.n_fitted_, g.n_excluded_, g.n_one_time_) == (n - 7, 7, 5)
    assert any("zero or negative net spend" in w for w in g.warnings_)
    spend = g.predict(s)
    assert np.all(spend[:7] < g.mean_spend_) and np.all(spend >= 0)  # spend <= 0 counted as 0, shrunk
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GammaGammaModel(correlation_threshold=0.99).fit(s)  # a threshold above |r|: no warning


def test_gamma_gamma_needs_enough_repeat_buyers() -> None:
    s = pl.DataFrame({"frequency": [0.0, 1.0, 2.0], "monetary_value": [0.0, 10.0, -5.0]})
    with pytest.raises(DataError, match=r"only 1 repeat buyer.*1 repeat buyers with zero or negative"):
        GammaGammaModel().fit(s)
