"""Shared pieces of the prediction step: period units, summary input checks, weighted patterns, the optimiser.

Time units: a BTYD summary counts ``recency`` and ``T`` in periods of its ``freq`` (``"D"`` days,
``"W"`` weeks, ``"M"`` calendar months). Every model keeps that unit for its parameters and its
period-level methods; horizons given in days are converted with :func:`days_to_periods`, never
implied.

>>> days_to_periods(28, "W")
4.0
>>> round(days_to_periods(365.25, "M"), 6)
12.0
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import polars as pl
from scipy.optimize import minimize

from segmentation_lib.errors import ConfigError, DataError, ModelError

#: length of one summary period in days (a month is the mean Gregorian month, 365.25 / 12 days)
DAYS_PER_PERIOD: dict[str, float] = {"D": 1.0, "W": 7.0, "M": 365.25 / 12}

#: days in one month for monthly CLV steps and monthly discounting (lifetimes uses 30 for daily data)
DAYS_PER_MONTH = 365.25 / 12

#: the columns a count model reads from the BTYD summary
COUNT_COLUMNS = ("frequency", "recency", "T")


#: what a failed count-model fit usually means, and what to do
COUNT_FIT_HINT = (
    "This usually means too few repeat buyers or too short a history for the model to separate buying rates from "
    "drop-out. Fix: use a longer history (180+ days), check "
    "segmentation_lib.predict.sufficiency.check_data_sufficiency(summary), or try another count model "
    "(model='pareto' or 'mbgnbd')."
)


class PredictWarning(UserWarning):
    """A model assumption looks doubtful for this data (the fit still ran); the message says what to check."""


def days_to_periods(days: float | np.ndarray, freq: str) -> float | np.ndarray:
    """A duration in days expressed in periods of ``freq`` (``"D"``, ``"W"`` or ``"M"``).

    >>> days_to_periods(30, "D"), days_to_periods(14, "W")
    (30.0, 2.0)
    """
    d = period_days(freq)
    if np.isscalar(days):
        return float(days) / d
    return np.asarray(days, dtype=float) / d


def period_days(freq: str) -> float:
    """Days in one period of ``freq``; a clear error for an unknown unit.

    >>> period_days("W")
    7.0
    """
    if freq not in DAYS_PER_PERIOD:
        raise ConfigError(
            f"predict: freq={freq!r} is not a BTYD summary period. Fix: pass the freq the summary was "
            f"built with (btyd_summary(..., freq=...)), one of {list(DAYS_PER_PERIOD)}."
        )
    return DAYS_PER_PERIOD[freq]


def summary_columns(summary: pl.DataFrame, columns: Sequence[str], where: str) -> list[np.ndarray]:
    """The named columns of a summary table as float64 numpy arrays, with a clear error when one is missing or null.

    >>> summary_columns(pl.DataFrame({"frequency": [1, 0]}), ["frequency"], "demo")[0]
    array([1., 0.])
    """
    if not isinstance(summary, pl.DataFrame):
        raise DataError(
            f"{where}: expected a polars DataFrame (the btyd_summary table), got {type(summary).__name__}. "
            "Fix: build it with segmentation_lib.features.btyd.btyd_summary(transactions, as_of, freq)."
        )
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise DataError(
            f"{where}: column(s) {missing} not found in the summary (it has {summary.columns}). "
            "Fix: pass the table btyd_summary returns (customer_id, frequency, recency, T, monetary_value)."
        )
    out = []
    for c in columns:
        s = summary[c]
        if not s.dtype.is_numeric():
            raise DataError(f"{where}: column {c!r} is {s.dtype}, not numeric. Fix: cast it to a number.")
        if s.null_count():
            raise DataError(
                f"{where}: column {c!r} has {s.null_count():,} null value(s). Fix: drop or fill those customers first."
            )
        out.append(s.cast(pl.Float64).to_numpy())
    return out


def check_histories(frequency: np.ndarray, recency: np.ndarray, T: np.ndarray, where: str) -> None:
    """Raise a :class:`DataError` naming the first rule a (frequency, recency, T) history breaks.

    >>> check_histories(np.array([1.0]), np.array([2.0]), np.array([1.0]), "demo")
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.DataError: demo: 1 customer(s) have recency > T (last purchase after the observation end). Fix: rebuild the summary with btyd_summary, whose recency is last minus first purchase period and T observation end minus first purchase period.
    """
    fix = ("Fix: rebuild the summary with btyd_summary, whose recency is last minus first purchase period "
           "and T observation end minus first purchase period.")
    rules = [
        (~np.isfinite(frequency) | ~np.isfinite(recency) | ~np.isfinite(T), "non-finite frequency, recency or T"),
        ((frequency < 0) | (frequency != np.round(frequency)), "a frequency that is not a whole number >= 0"),
        (recency < 0, "a negative recency"),
        (recency > T, "recency > T (last purchase after the observation end)"),
        ((frequency == 0) & (recency != 0), "frequency 0 but recency != 0"),
    ]
    for bad, what in rules:
        n = int(bad.sum())
        if n:
            raise DataError(f"{where}: {n:,} customer(s) have {what}. {fix}")


@dataclass(frozen=True)
class Patterns:
    """Distinct rows of some summary columns with their counts, and the pattern of every input row.

    ``values`` holds one array per column (the distinct combinations), ``weights`` how many rows
    share each, ``index`` the pattern number of each input row (so ``values[0][index]`` is the
    input column again).
    """

    values: tuple[np.ndarray, ...]
    weights: np.ndarray
    index: np.ndarray


def group_patterns(columns: Sequence[np.ndarray], weights: np.ndarray | None = None) -> Patterns:
    """Group identical rows of ``columns`` into weighted patterns (lifetimes' cure for slow fits).

    >>> p = group_patterns([np.array([1.0, 1.0, 0.0]), np.array([3.0, 3.0, 0.0])])
    >>> p.weights.tolist(), p.values[0][p.index].tolist()
    ([1.0, 2.0], [1.0, 1.0, 0.0])
    """
    cols = [np.asarray(c, dtype=float) for c in columns]
    n = cols[0].size if cols else 0
    # one int64 key from the dense rank of each column (fast sorts of single columns)
    key = np.zeros(n, dtype=np.int64)
    span = 1
    whole = n > 0 and all(bool(np.all((c >= 0) & (c == np.floor(c)) & (c < 2**40))) for c in cols)
    for c in cols:
        if whole:  # whole periods (the usual case): the values are their own codes
            codes = c.astype(np.int64)
        else:
            codes = (pl.Series(c).rank("dense").cast(pl.Int64) - 1).to_numpy()
        card = int(codes.max()) + 1 if n else 1
        span *= card
        if span >= 2**62:  # cannot happen below ~2M distinct values per column; exact fallback
            frame = pl.DataFrame({f"c{i}": v for i, v in enumerate(cols)})
            key = (frame.select(pl.struct(frame.columns).rank("dense").cast(pl.Int64) - 1).to_series().to_numpy())
            break
        key = key * card + codes
    pid = (pl.Series(key).rank("dense").cast(pl.Int64) - 1).to_numpy() if n else key
    n_patterns = int(pid.max()) + 1 if n else 0
    w = np.bincount(pid, weights=None if weights is None else np.asarray(weights, dtype=float), minlength=n_patterns)
    w = w.astype(float)
    first = np.empty(n_patterns, dtype=np.int64)
    first[pid[::-1]] = np.arange(n - 1, -1, -1)  # the first row of each pattern
    values = tuple(c[first] for c in cols)
    return Patterns(values=values, weights=w, index=pid)


#: a fitted log-parameter beyond this (a parameter above e^12 or below e^-12, time scaled) is at a boundary
BOUNDARY_LOG_PARAM = 12.0


def boundary_note(model: str, names: Sequence[str], z: np.ndarray) -> str | None:
    """A plain-language note when a fit ran to the edge of the parameter space (a limiting case of the model), else None.

    >>> boundary_note("demo", ["p", "q"], np.array([14.0, 1.0]))
    'demo: the fit ran to a boundary of the model (p = 1.2e+06); the likelihood keeps improving as it grows, so the data sit at a limiting case of the model. The predictions are those of that limit.'
    >>> boundary_note("demo", ["p"], np.array([1.0])) is None
    True
    """
    at = [f"{n} = {np.exp(v):.2g}" for n, v in zip(names, z) if abs(v) > BOUNDARY_LOG_PARAM]
    if not at:
        return None
    return (f"{model}: the fit ran to a boundary of the model ({', '.join(at)}); the likelihood keeps improving as it "
            "grows, so the data sit at a limiting case of the model. The predictions are those of that limit.")


def fit_log_params(
    objective: Callable[[np.ndarray], tuple[float, np.ndarray] | float],
    x0: np.ndarray,
    *,
    jac: bool,
    tol: float,
    max_iter: int,
    model: str,
    gtol: float = 1e-4,
    hint: str | None = None,
) -> tuple[np.ndarray, float, int]:
    """Minimise ``objective`` over log-parameters; return (log-params, objective, iterations) or raise :class:`ModelError`.

    With ``jac=True`` the objective returns (value, gradient) and BFGS runs; a "precision loss"
    stop is accepted when the gradient norm is below ``gtol`` (the optimum is reached, the line
    search just cannot improve the last digits, or the likelihood is flat towards a boundary of
    the parameter space, which :func:`boundary_note` reports). Without a gradient, L-BFGS-B runs with
    finite-difference gradients (and, if it fails, Nelder-Mead then L-BFGS-B again).

    >>> x, f, n = fit_log_params(lambda z: (float((z ** 2).sum()), 2 * z), np.ones(2), jac=True, tol=1e-10, max_iter=100, model="demo")
    >>> np.allclose(x, 0)
    True
    """
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if jac:
            res = minimize(objective, x0, jac=True, method="BFGS", options={"gtol": tol, "maxiter": max_iter})
            grad = np.asarray(res.jac, dtype=float)
            n_iter = int(res.nit)
        else:
            res = minimize(objective, x0, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": tol, "maxiter": max_iter})
            if not (res.success and np.isfinite(res.fun)):
                nm = minimize(objective, x0, method="Nelder-Mead",
                              options={"xatol": 1e-7, "fatol": 1e-10, "maxiter": max_iter, "maxfev": 4 * max_iter})
                res = minimize(objective, nm.x, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": tol, "maxiter": max_iter})
                if not np.isfinite(res.fun) or res.fun > nm.fun:
                    res = nm
            eps = 1e-6
            grad = np.array([(objective(res.x + eps * e) - objective(res.x - eps * e)) / (2 * eps)
                             for e in np.eye(len(x0))])
            n_iter = int(res.nit)
    ok = bool(np.all(np.isfinite(res.x)) and np.isfinite(res.fun) and np.all(np.isfinite(grad)))
    if ok and not (res.success or np.linalg.norm(grad) < gtol):
        ok = False
    if ok and np.any(np.abs(res.x) > 30):
        ok = False
    if not ok:
        raise ModelError(
            f"{model}: the maximum-likelihood fit did not converge ({res.message}; log-parameters "
            f"{np.round(res.x, 3).tolist()}, gradient norm {np.linalg.norm(grad):.2g}). "
            + (hint or COUNT_FIT_HINT)
        )
    return np.asarray(res.x, dtype=float), float(res.fun), n_iter
