"""Spend per purchase: the Gamma-Gamma model (Fader, Hardie and Lee 2005; Hardie's note 025), fitted by maximum likelihood.

A customer's purchases have gamma(p, nu) values around a customer mean; nu is gamma(q, v) across
customers. It is fitted on repeat buyers only (``frequency > 0``; ``monetary_value`` is the mean
of the repeat purchases, as in lifetimes), and only on positive ``monetary_value``: with returns
netted, a customer can have zero or negative mean spend, which the model cannot describe; those
customers are excluded from the fit and counted in ``n_excluded_``. The model assumes spend per
purchase independent of frequency; the fit measures their correlation and warns above
``correlation_threshold``.

>>> import polars as pl
>>> s = pl.DataFrame({"frequency": [0.0, 1, 3, 6, 2, 4, 1, 2, 3, 1, 2, 5, 1],
...                   "monetary_value": [0.0, 20, 35, 30, 18, 50, 9, 27.5, 22, 41, 33, 16, -4]})
>>> g = GammaGammaModel().fit(s)
>>> g.n_fitted_, g.n_one_time_, g.n_excluded_
(11, 1, 1)
>>> bool(abs(g.predict(s)[0] - g.mean_spend_) < 1e-9)
True
"""
from __future__ import annotations

import warnings

import numpy as np
import polars as pl
from scipy.special import digamma, gammaln
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from segmentation_lib.errors import DataError, ModelError
from segmentation_lib.predict.common import BOUNDARY_LOG_PARAM, PredictWarning, boundary_note, fit_log_params, summary_columns

#: fewer repeat buyers with positive spend than this and the Gamma-Gamma fit is refused
MIN_GAMMA_GAMMA_CUSTOMERS = 10


#: what a failed Gamma-Gamma fit usually means, and what to do
GAMMA_GAMMA_FIT_HINT = (
    "Large q and v mean the customers' average spend per purchase varies no more than single purchases do, so the "
    "model has no between-customer spread to learn (common with few repeat buyers). Fix: use more customers or a "
    "longer history, or use the plain average spend per purchase instead of the Gamma-Gamma expectation."
)


class GammaGammaModel(BaseEstimator):
    """Gamma-Gamma spend model; ``fit`` on a BTYD summary (``frequency, monetary_value``).

    Parameters (keyword-only): ``tol``, ``max_iter`` of the optimiser; ``correlation_threshold``:
    warn (:class:`~segmentation_lib.predict.common.PredictWarning`) when the Pearson correlation of
    frequency and spend per purchase among the fitted customers exceeds it in absolute value.

    Fitted attributes: ``params_`` (``p, q, v``; ``v`` in money), ``mean_spend_`` (population mean
    spend per purchase ``p v / (q - 1)``), ``n_fitted_`` (customers in the fit), ``n_one_time_``
    (frequency 0, not in the fit), ``n_excluded_`` (repeat buyers with spend <= 0, not in the
    fit), ``correlation_`` (frequency vs spend per purchase), ``warnings_`` (plain-language).
    """

    def __init__(self, *, tol: float = 1e-8, max_iter: int = 2000, correlation_threshold: float = 0.3) -> None:
        self.tol = tol
        self.max_iter = max_iter
        self.correlation_threshold = correlation_threshold

    def fit(self, X: pl.DataFrame, y: None = None) -> "GammaGammaModel":
        """Fit on the repeat buyers with positive ``monetary_value``; raise a DataError when there are too few."""
        x, m = summary_columns(X, ("frequency", "monetary_value"), "Gamma-Gamma fit")
        repeat = x > 0
        keep = repeat & (m > 0) & np.isfinite(m)
        self.n_one_time_ = int((~repeat).sum())
        self.n_excluded_ = int((repeat & ~keep).sum())
        self.n_fitted_ = int(keep.sum())
        if self.n_fitted_ < MIN_GAMMA_GAMMA_CUSTOMERS:
            raise DataError(
                f"Gamma-Gamma fit: only {self.n_fitted_:,} repeat buyer(s) with a positive spend per purchase "
                f"({self.n_one_time_:,} one-time buyers and {self.n_excluded_:,} repeat buyers with zero or negative net "
                f"spend are excluded); at least {MIN_GAMMA_GAMMA_CUSTOMERS} are needed to estimate spend per purchase. "
                "Fix: use a longer history, or check that monetary_value holds order values (returns netted)."
            )
        xf, mf = x[keep], m[keep]
        self.correlation_ = float(np.corrcoef(xf, mf)[0, 1]) if np.ptp(xf) > 0 and np.ptp(mf) > 0 else 0.0
        self.warnings_ = []
        if self.n_excluded_:
            self.warnings_.append(
                f"{self.n_excluded_:,} repeat buyer(s) have zero or negative net spend per purchase (returns netted) and "
                "are left out of the spend model; their expected spend shrinks towards zero (their own spend counted as 0)."
            )
        if abs(self.correlation_) > self.correlation_threshold:
            self.warnings_.append(
                f"Frequency and spend per purchase correlate (r = {self.correlation_:.2f}, above the "
                f"{self.correlation_threshold:.2f} threshold); the Gamma-Gamma model assumes they are independent, so "
                "expected spend and CLV may be biased (frequent buyers' spend is pulled towards the average). Treat CLV "
                "as a ranking rather than an amount, or model spend per segment."
            )
            warnings.warn(self.warnings_[-1], PredictWarning, stacklevel=2)
        scale = 1.0 / float(np.median(mf))  # money scaled to a median of 1 for conditioning; v is unscaled after
        data = self.prepare(xf, mf * scale, np.ones_like(xf))
        z, _, n_iter = fit_log_params(lambda t: self.neg_log_likelihood(t, data), np.full(3, 0.1), jac=True,
                                      tol=self.tol, max_iter=self.max_iter, model="Gamma-Gamma fit", hint=GAMMA_GAMMA_FIT_HINT)
        p, q, v = np.exp(z)
        self.params_ = {"p": float(p), "q": float(q), "v": float(v / scale)}
        self.n_iter_ = n_iter
        note = boundary_note("Gamma-Gamma fit", ("p", "q", "v"), z)
        if note:
            meaning = []
            if z[0] > BOUNDARY_LOG_PARAM:
                meaning.append("a very large p means the average spend of a repeat buyer is taken as their true spend "
                               "per purchase (no shrinkage towards the population mean)")
            if z[1] > BOUNDARY_LOG_PARAM:
                meaning.append("a very large q means customers are taken to share one spend per purchase (full "
                               "shrinkage to the population mean)")
            self.warnings_.append(note + (" Here " + "; ".join(meaning) + "." if meaning else "")
                                  + " This often goes with a correlation between frequency and spend.")
            warnings.warn(self.warnings_[-1], PredictWarning, stacklevel=2)
        if q <= 1:
            raise ModelError(
                f"Gamma-Gamma fit: q = {q:.3f} <= 1, so the population mean spend per purchase is undefined (the spend "
                "distribution's tail is too heavy). Fix: look for extreme order values (cap or remove outliers, check the "
                "currency and unit columns) before fitting."
            )
        self.mean_spend_ = float(p * self.params_["v"] / (q - 1))
        return self

    @staticmethod
    def prepare(x: np.ndarray, m: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
        """The likelihood's data: the rows, the totals per distinct frequency and the parameter-free sums (computed once)."""
        ux, inv = np.unique(x, return_inverse=True)
        lm = np.log(m)
        return {"x": x, "m": m, "w": w, "W": float(w.sum()), "ux": ux, "uw": np.bincount(inv, weights=w),
                "xm": x * m, "sum_wxlm": float((w * x * lm).sum()), "sum_wlm": float((w * lm).sum())}

    @staticmethod
    def neg_log_likelihood(z: np.ndarray, data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood (note 025, eq. 1a) and its analytic gradient in log-parameters.

        Per row ``gammaln(px+q) - gammaln(px) - gammaln(q) + q log v + (px-1) log m + px log x -
        (px+q) log(xm+v)``: the gamma-function and ``log x`` terms are summed once per distinct
        frequency and the ``log m`` terms are fixed sums, so one ``log`` per row is left per evaluation.
        """
        p, q, v = np.exp(z)
        w, W, ux, uw, xm = data["w"], data["W"], data["ux"], data["uw"], data["xm"]
        x = data["x"]
        pu = p * ux
        lxm = np.log(xm + v)
        sum_wxlxm, sum_wlxm = float((w * x * lxm).sum()), float((w * lxm).sum())
        ll = ((uw * (gammaln(pu + q) - gammaln(pu) - gammaln(q) + pu * np.log(ux))).sum() + W * q * np.log(v)
              + p * data["sum_wxlm"] - data["sum_wlm"] - p * sum_wxlxm - q * sum_wlxm)
        g_p = (uw * ux * (digamma(pu + q) - digamma(pu) + np.log(ux))).sum() + data["sum_wxlm"] - sum_wxlxm
        g_q = (uw * (digamma(pu + q) - digamma(q))).sum() + W * np.log(v) - sum_wlxm
        g_v = W * q / v - (w * (p * x + q) / (xm + v)).sum()
        return -ll / W, -np.array([g_p * p, g_q * q, g_v * v]) / W

    def conditional_expected_spend(self, frequency: np.ndarray, monetary_value: np.ndarray) -> np.ndarray:
        """E[spend per purchase | x, m] = (1 - w) p v / (q - 1) + w m with w = p x / (p x + q - 1) (note 025, eq. 5).

        One-time buyers (x = 0) get the population mean; spend <= 0 is counted as 0.

        >>> g = GammaGammaModel(); g.params_ = {"p": 6.25, "q": 3.74, "v": 15.44}
        >>> g.conditional_expected_spend(np.array([0.0, 2.0]), np.array([0.0, 30.0])).round(2).tolist()
        [35.22, 30.94]
        """
        p, q, v = (self.params_[k] for k in ("p", "q", "v"))
        x = np.asarray(frequency, dtype=float)
        m = np.clip(np.asarray(monetary_value, dtype=float), 0.0, None)
        weight = p * x / (p * x + q - 1)
        return (1 - weight) * (p * v / (q - 1)) + weight * m

    def predict(self, X: pl.DataFrame) -> np.ndarray:
        """Expected spend per purchase for every row of a BTYD summary."""
        check_is_fitted(self, "params_")
        x, m = summary_columns(X, ("frequency", "monetary_value"), "Gamma-Gamma predict")
        return self.conditional_expected_spend(x, m)
