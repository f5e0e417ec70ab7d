"""Purchase-count models of the BTYD family: BG/NBD, MBG/NBD and Pareto/NBD, fitted by maximum likelihood.

Each model reads ``frequency, recency, T`` of the BTYD summary (lifetimes' convention: repeat
purchase periods, last minus first purchase period, observation end minus first purchase period),
groups identical histories into weighted patterns, scales time so the largest ``T`` is 1 (as
lifetimes does, for conditioning) and minimises the negative log-likelihood over log-parameters
with scipy (BFGS with the analytic gradient for BG/NBD and MBG/NBD; L-BFGS-B with
finite-difference gradients for Pareto/NBD). ``params_`` are in the summary's own period (``freq``); the period-level
methods take ``t`` in periods, the table-level ones (``predict``, ``predict_p_alive``) days.

References: Fader, Hardie and Lee (2005), "Counting your customers the easy way" (BG/NBD);
Batislam, Denizel and Filiztekin (2007) (MBG/NBD); Schmittlein, Morrison and Colombo (1987) and
Fader and Hardie's note 009 (Pareto/NBD). The formulas follow lifetimes 0.11.

>>> import polars as pl
>>> s = pl.DataFrame({"frequency": [0.0, 1, 3, 6, 2, 0, 4, 1], "recency": [0.0, 20, 30, 38, 10, 0, 35, 5],
...                   "T": [40.0, 40, 40, 40, 40, 30, 39, 38]})
>>> m = BetaGeoModel(freq="W").fit(s)
>>> sorted(m.params_)
['a', 'alpha', 'b', 'r']
>>> bool(m.predict_p_alive(s)[3] > m.predict_p_alive(s)[4])
True
"""
from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np
import polars as pl
from scipy.special import digamma, expit, gammaln, hyp2f1, logsumexp
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from segmentation_lib.errors import DataError
from segmentation_lib.predict.common import (
    COUNT_COLUMNS,
    PredictWarning,
    boundary_note,
    check_histories,
    days_to_periods,
    fit_log_params,
    group_patterns,
    period_days,
    summary_columns,
)


class CountModel(BaseEstimator):
    """Base of the purchase-count models: fitting on weighted patterns, the table-level predictions.

    Parameters (keyword-only): ``freq`` the period unit of the summary it is fitted on (``"D"``,
    ``"W"``, ``"M"``); ``tol`` the optimiser's gradient tolerance; ``max_iter`` its iteration cap.

    Fitted attributes: ``params_`` (dict, period units), ``log_likelihood_`` (mean per customer,
    period units), ``n_customers_``, ``n_patterns_``, ``n_iter_``, ``time_scale_`` (the factor the
    fit multiplied time by), ``period_days_``, ``warnings_`` (plain-language notes, e.g. a fit at a
    boundary of the parameter space).
    """

    #: parameter names, in the order of the optimiser's vector
    param_names: ClassVar[tuple[str, ...]] = ()
    #: parameters with a unit of time (divided by the time scale after the fit)
    time_params: ClassVar[tuple[str, ...]] = ()
    #: the model's name in messages
    label: ClassVar[str] = "count model"
    #: whether ``neg_log_likelihood`` returns an analytic gradient
    has_gradient: ClassVar[bool] = True

    def __init__(self, *, freq: str = "D", tol: float = 1e-8, max_iter: int = 2000) -> None:
        self.freq = freq
        self.tol = tol
        self.max_iter = max_iter

    # ---------------------------------------------------------------- fitting
    def fit(self, X: pl.DataFrame, y: None = None, sample_weight: np.ndarray | None = None) -> "CountModel":
        """Fit on a BTYD summary (``frequency, recency, T``); ``sample_weight`` counts customers per row.

        Raises :class:`~segmentation_lib.errors.DataError` when the table cannot identify the model
        (no repeat buyer, no history) and :class:`~segmentation_lib.errors.ModelError` when the fit
        does not converge.
        """
        self.period_days_ = period_days(self.freq)
        x, tx, T = summary_columns(X, COUNT_COLUMNS, f"{self.label} fit")
        check_histories(x, tx, T, f"{self.label} fit")
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=float)
            if sample_weight.shape != x.shape or np.any(sample_weight < 0):
                raise DataError(f"{self.label} fit: sample_weight must be one non-negative number per summary row.")
        if x.size == 0 or not np.any(x > 0) or not np.any(T > 0):
            raise DataError(
                f"{self.label} fit: the summary has {x.size:,} customer(s) and {int((x > 0).sum()):,} repeat buyer(s) "
                f"(frequency > 0); at least one repeat buyer and a history longer than one period are needed to fit "
                "purchase rates and drop-out. Fix: use a longer transaction history or a finer period (freq='D')."
            )
        pat = group_patterns([x, tx, T], sample_weight)
        px, ptx, pT = pat.values
        scale = 1.0 / pT.max()
        data = self.prepare(px, ptx * scale, pT * scale, pat.weights)
        fun = (lambda z: self.neg_log_likelihood(z, data)) if self.has_gradient else (
            lambda z: self.neg_log_likelihood(z, data)[0])
        z, _, n_iter = fit_log_params(fun, self.initial_log_params(data), jac=self.has_gradient, tol=self.tol,
                                      max_iter=self.max_iter, model=f"{self.label} fit")
        self.warnings_ = [note] if (note := boundary_note(f"{self.label} fit", self.param_names, z)) else []
        for message in self.warnings_:
            warnings.warn(message, PredictWarning, stacklevel=2)
        params = dict(zip(self.param_names, np.exp(z)))
        for name in self.time_params:
            params[name] /= scale
        self.params_ = {k: float(v) for k, v in params.items()}
        self.time_scale_ = float(scale)
        self.n_customers_ = float(pat.weights.sum())
        self.n_patterns_ = int(pat.weights.size)
        self.n_iter_ = n_iter
        unscaled = self.prepare(px, ptx, pT, pat.weights)
        self.log_likelihood_ = -float(self.neg_log_likelihood(np.log([self.params_[k] for k in self.param_names]),
                                                              unscaled)[0])
        return self

    def prepare(self, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
        """The arrays the likelihood needs: the patterns and the per-frequency totals of their weights."""
        ux, inv = np.unique(x, return_inverse=True)
        return {"x": x, "tx": tx, "T": T, "w": w, "ux": ux, "uw": np.bincount(inv, weights=w), "W": np.array(w.sum())}

    def initial_log_params(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """Starting point of the optimiser (log-parameters, time scaled to max T = 1)."""
        return np.full(len(self.param_names), 0.1)

    def neg_log_likelihood(self, z: np.ndarray, data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood per customer at log-parameters ``z`` and its gradient in ``z``."""
        raise NotImplementedError

    # ---------------------------------------------------------------- period-level predictions
    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive at the observation end | history), arrays in periods."""
        raise NotImplementedError

    def conditional_expected_purchases(self, t: float | np.ndarray, frequency: np.ndarray, recency: np.ndarray,
                                       T: np.ndarray) -> np.ndarray:
        """Expected repeat purchases in the next ``t`` periods given the history."""
        raise NotImplementedError

    def expected_purchases(self, t: float | np.ndarray) -> np.ndarray:
        """Expected repeat purchases in ``t`` periods after the first purchase of a new customer (the population curve)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- table-level predictions
    def predict_p_alive(self, X: pl.DataFrame) -> np.ndarray:
        """P(alive) for every row of a BTYD summary in this model's ``freq``."""
        check_is_fitted(self, "params_")
        x, tx, T = summary_columns(X, COUNT_COLUMNS, f"{self.label} predict")
        return self.probability_alive(x, tx, T)

    def predict(self, X: pl.DataFrame, days: float = 30.0) -> np.ndarray:
        """Expected purchases in the next ``days`` days for every row of a BTYD summary (days converted to periods)."""
        check_is_fitted(self, "params_")
        x, tx, T = summary_columns(X, COUNT_COLUMNS, f"{self.label} predict")
        return self.conditional_expected_purchases(days_to_periods(days, self.freq), x, tx, T)


def _log_ratio_pow(num: np.ndarray, den: np.ndarray, power: np.ndarray) -> np.ndarray:
    return power * (np.log(num) - np.log(den))


class BetaGeoModel(CountModel):
    """BG/NBD (Fader, Hardie and Lee 2005): Poisson purchases at gamma(r, alpha) rates, drop-out after each purchase with beta(a, b) probability.

    A customer can only drop out right after a purchase, so one-time buyers (frequency 0) have
    P(alive) = 1 under this model; use :class:`ModifiedBetaGeoModel` or :class:`ParetoNBDModel`
    when one-time buyers dominate and their churn risk matters.

    >>> m = BetaGeoModel(freq="W")
    >>> m.params_ = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}
    >>> round(float(m.conditional_expected_purchases(39, 2, 30.43, 38.86)), 3)
    1.226
    """

    param_names = ("r", "alpha", "a", "b")
    time_params = ("alpha",)
    label = "BG/NBD"

    def neg_log_likelihood(self, z: np.ndarray, data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood (Fader-Hardie-Lee eq. 6) and its analytic gradient in log-parameters."""
        r, alpha, a, b = np.exp(z)
        x, tx, T, w, ux, uw, W = (data[k] for k in ("x", "tx", "T", "w", "ux", "uw", "W"))
        # terms that depend on the frequency only: summed once per distinct frequency
        s1 = (uw * (gammaln(r + ux) - gammaln(r) + gammaln(a + b) + gammaln(b + ux) - gammaln(b)
                    - gammaln(a + b + ux))).sum() + W * r * np.log(alpha)
        pos = x > 0
        la_T, la_tx = np.log(alpha + T), np.log(alpha + tx)
        A3 = -(r + x) * la_T
        A4 = np.where(pos, np.log(a) - np.log(b + np.maximum(x, 1) - 1) - (r + x) * la_tx, -np.inf)
        L = np.logaddexp(A3, A4)
        p3, p4 = np.exp(A3 - L), np.exp(A4 - L)
        ll = s1 + (w * L).sum()
        g_r = (uw * (digamma(r + ux) - digamma(r))).sum() + W * np.log(alpha) - (w * (p3 * la_T + p4 * la_tx)).sum()
        g_alpha = W * r / alpha - (w * (r + x) * (p3 / (alpha + T) + p4 / (alpha + tx))).sum()
        g_a = (uw * (digamma(a + b) - digamma(a + b + ux))).sum() + (w * p4).sum() / a
        g_b = ((uw * (digamma(a + b) + digamma(b + ux) - digamma(b) - digamma(a + b + ux))).sum()
               - (w * p4 / (b + np.maximum(x, 1) - 1)).sum())
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / W, -grad / W

    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + [x > 0] a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)).

        >>> m = BetaGeoModel(); m.params_ = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
        >>> m.probability_alive(np.array([0.0, 2.0]), np.array([0.0, 30.43]), np.array([38.86, 38.86])).round(3).tolist()
        [1.0, 0.726]
        """
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_odds = np.log(a) - np.log(b + np.maximum(x, 1) - 1) + _log_ratio_pow(alpha + T, alpha + tx, r + x)
        return np.where(x > 0, expit(-log_odds), 1.0)

    def conditional_expected_purchases(self, t: float | np.ndarray, frequency: np.ndarray, recency: np.ndarray,
                                       T: np.ndarray) -> np.ndarray:
        """E[X(T, T + t) | x, t_x, T] (Fader-Hardie-Lee eq. 10), the hypergeometric term in Euler's form.

        2F1(r+x, b+x; a+b+x-1; z) ((alpha+T)/(alpha+T+t))^(r+x) equals (1-z)^(a-1)
        2F1(a+b-1-r, a-1; a+b+x-1; z) with z = t / (alpha+T+t): no overflow for large x.
        """
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        x, tx, T, t = (np.asarray(v, dtype=float) for v in (frequency, recency, T, t))
        z = t / (alpha + T + t)
        c = a + b + x - 1
        hyp = hyp2f1(a + b - 1 - r, a - 1, c, z) * np.exp((a - 1) * np.log1p(-z))
        numerator = c / (a - 1) * (1 - hyp)
        with np.errstate(divide="ignore", invalid="ignore"):
            odds = np.where(x > 0, a / (b + np.maximum(x, 1) - 1) * np.exp(_log_ratio_pow(alpha + T, alpha + tx, r + x)), 0.0)
        return numerator / (1 + odds)

    def expected_purchases(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] = (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))] (eq. 9).

        >>> m = BetaGeoModel(); m.params_ = {"r": 0.242593, "alpha": 4.413532, "a": 0.792886, "b": 2.425752}
        >>> m.expected_purchases(np.array([1.0, 78.0])).round(4).tolist()
        [0.0532, 1.858]
        """
        t = np.asarray(t, dtype=float)
        return self.conditional_expected_purchases(t, np.zeros_like(t), np.zeros_like(t), np.zeros_like(t))


class ModifiedBetaGeoModel(CountModel):
    """MBG/NBD (Batislam et al. 2007): BG/NBD where a customer may also drop out right after the first purchase.

    One-time buyers then get P(alive) < 1, falling with the time since their purchase.

    >>> m = ModifiedBetaGeoModel(); m.params_ = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}
    >>> bool(m.probability_alive(np.array([0.0]), np.array([0.0]), np.array([38.0]))[0] < 1)
    True
    """

    param_names = ("r", "alpha", "a", "b")
    time_params = ("alpha",)
    label = "MBG/NBD"

    def neg_log_likelihood(self, z: np.ndarray, data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood and its analytic gradient in log-parameters."""
        r, alpha, a, b = np.exp(z)
        x, tx, T, w, ux, uw, W = (data[k] for k in ("x", "tx", "T", "w", "ux", "uw", "W"))
        s1 = (uw * (gammaln(r + ux) - gammaln(r) + gammaln(a + b) + gammaln(b + ux + 1) - gammaln(b)
                    - gammaln(a + b + ux + 1))).sum() + W * r * np.log(alpha)
        la_T, la_tx = np.log(alpha + T), np.log(alpha + tx)
        A4 = np.log(a) - np.log(b + x) + (r + x) * (la_T - la_tx)
        s = expit(A4)
        ll = s1 + (w * (-(r + x) * la_T + np.logaddexp(A4, 0.0))).sum()
        g_r = (uw * (digamma(r + ux) - digamma(r))).sum() + W * np.log(alpha) + (w * (-la_T + s * (la_T - la_tx))).sum()
        g_alpha = W * r / alpha + (w * (r + x) * (-1 / (alpha + T) + s * (1 / (alpha + T) - 1 / (alpha + tx)))).sum()
        g_a = (uw * (digamma(a + b) - digamma(a + b + ux + 1))).sum() + (w * s).sum() / a
        g_b = ((uw * (digamma(a + b) + digamma(b + ux + 1) - digamma(b) - digamma(a + b + ux + 1))).sum()
               - (w * s / (b + x)).sum())
        grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
        return -ll / W, -grad / W

    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T) = 1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r + x))."""
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        return expit(-(np.log(a) - np.log(b + x) + _log_ratio_pow(alpha + T, alpha + tx, r + x)))

    def conditional_expected_purchases(self, t: float | np.ndarray, frequency: np.ndarray, recency: np.ndarray,
                                       T: np.ndarray) -> np.ndarray:
        """E[X(T, T + t) | x, t_x, T] (Wagner and Hoppe 2008), the hypergeometric term in Euler's form."""
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        x, tx, T, t = (np.asarray(v, dtype=float) for v in (frequency, recency, T, t))
        z = t / (alpha + T + t)
        c = a + b + x
        hyp = hyp2f1(a + b - r, a - 1, c, z) * np.exp((a - 1) * np.log1p(-z))
        numerator = c / (a - 1) * (1 - hyp)
        return numerator / (1 + a / (b + x) * np.exp(_log_ratio_pow(alpha + T, alpha + tx, r + x)))

    def expected_purchases(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] = b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]."""
        r, alpha, a, b = (self.params_[k] for k in self.param_names)
        t = np.asarray(t, dtype=float)
        hyp = hyp2f1(r, b + 1, a + b, t / (alpha + t))
        return b / (a - 1) * (1 - hyp * (alpha / (alpha + t)) ** r)


class ParetoNBDModel(CountModel):
    """Pareto/NBD (Schmittlein, Morrison and Colombo 1987): gamma(r, alpha) purchase rates, exponential lifetimes with gamma(s, beta) drop-out rates.

    No analytic gradient here: L-BFGS-B with finite differences on the weighted patterns.

    >>> m = ParetoNBDModel(freq="W"); m.params_ = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
    >>> m.probability_alive(np.array([0.0, 5.0]), np.array([0.0, 38.0]), np.array([38.0, 38.0])).round(2).tolist()
    [0.3, 1.0]
    """

    param_names = ("r", "alpha", "s", "beta")
    time_params = ("alpha", "beta")
    label = "Pareto/NBD"
    has_gradient = False

    def initial_log_params(self, data: dict[str, np.ndarray]) -> np.ndarray:
        """Start at all parameters 1 (time scaled), as lifetimes does (without its random jitter)."""
        return np.zeros(4)

    @staticmethod
    def log_A0(r: float, alpha: float, s: float, beta: float, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
        """log A_0 of Fader and Hardie's note 009 (eqs. 19-20), for arrays of histories."""
        if alpha < beta:
            lo, hi, t = alpha, beta, r + x
        else:
            lo, hi, t = beta, alpha, s + 1
        d = hi - lo
        rsf = r + s + x
        p1 = hyp2f1(rsf, t, rsf + 1.0, d / (hi + tx))
        p2 = hyp2f1(rsf, t, rsf + 1.0, d / (hi + T))
        q1, q2 = hi + tx, hi + T
        terms = np.stack([np.log(p1) + rsf * np.log(q2), np.log(p2) + rsf * np.log(q1)])
        signs = np.stack([np.ones_like(x), -np.ones_like(x)])
        return logsumexp(terms, axis=0, b=signs) - rsf * np.log(q1 * q2)

    def conditional_log_likelihood(self, params: tuple[float, float, float, float], x: np.ndarray, tx: np.ndarray,
                                   T: np.ndarray) -> np.ndarray:
        """Per-history log-likelihood (note 009, eq. 18)."""
        r, alpha, s, beta = params
        A1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta)
        A2 = np.logaddexp(-(r + x) * np.log(alpha + T) - s * np.log(beta + T),
                          np.log(s) + self.log_A0(r, alpha, s, beta, x, tx, T) - np.log(r + s + x))
        return A1 + A2

    def neg_log_likelihood(self, z: np.ndarray, data: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Mean negative log-likelihood at log-parameters ``z`` (no gradient: an empty array)."""
        params = tuple(np.exp(z))
        with np.errstate(all="ignore"):
            ll = (data["w"] * self.conditional_log_likelihood(params, data["x"], data["tx"], data["T"])).sum()
        value = -ll / data["W"]
        return (float(value) if np.isfinite(value) else np.inf), np.empty(0)

    def probability_alive(self, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray) -> np.ndarray:
        """P(alive | x, t_x, T) (note 009, eq. 37)."""
        r, alpha, s, beta = (self.params_[k] for k in self.param_names)
        x, tx, T = (np.asarray(v, dtype=float) for v in (frequency, recency, T))
        A0 = self.log_A0(r, alpha, s, beta, x, tx, T)
        return expit(-(np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + A0))

    def conditional_expected_purchases(self, t: float | np.ndarray, frequency: np.ndarray, recency: np.ndarray,
                                       T: np.ndarray) -> np.ndarray:
        """E[X(T, T + t) | x, t_x, T] (note 009, eq. 41)."""
        params = tuple(self.params_[k] for k in self.param_names)
        r, alpha, s, beta = params
        x, tx, T, t = (np.asarray(v, dtype=float) for v in (frequency, recency, T, t))
        ll = self.conditional_log_likelihood(params, x, tx, T)
        first = (gammaln(r + x) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) - (r + x) * np.log(alpha + T)
                 - s * np.log(beta + T))
        second = np.log(r + x) + np.log(beta + T) - np.log(alpha + T)
        third = np.log(-np.expm1((s - 1) * (np.log(beta + T) - np.log(beta + T + t))) / (s - 1))
        return np.exp(first + second + third - ll)

    def expected_purchases(self, t: float | np.ndarray) -> np.ndarray:
        """E[X(t)] = r beta / (alpha (s - 1)) [1 - (beta / (beta + t))^(s - 1)] (note 009, eq. 27)."""
        r, alpha, s, beta = (self.params_[k] for k in self.param_names)
        t = np.asarray(t, dtype=float)
        return r * beta / alpha / (s - 1) * (1 - (beta / (beta + t)) ** (s - 1))


#: the count models by the short name ``predicted_value_table(model=...)`` takes
COUNT_MODELS: dict[str, type[CountModel]] = {
    "bgnbd": BetaGeoModel,
    "mbgnbd": ModifiedBetaGeoModel,
    "pareto": ParetoNBDModel,
}
