"""Preprocessing of the customer feature table for clustering (a scikit-learn Pipeline).

Steps, in order (each learns in ``fit`` only, and passes feature names through
``get_feature_names_out``):

1. ``ColumnSelector``: pick ``features`` from a polars / pandas frame (or a numpy array already in
   that order; ``features=None`` takes every column, named ``x0, x1, ...`` for an array), fill structural nulls (``AUTO_FILLS``: ``mean_days_between`` of one-time buyers =
   their tenure; ``avg_order_value`` with no order = 0) and convert to a float64 numpy array at the
   boundary. Missing columns, non-numeric columns and other null / NaN / infinite values raise
   :class:`DataError` naming the column.
   Text columns (plan, region, ...) are allowed only with a declared encoding (``encodings``, the
   configuration's ``clustering.encodings``): :class:`~segmentation_lib.features.encoding.AttributeEncoder`
   turns each into one-hot indicators (``region_<level>``, ``region_other``) or ordinal codes, so
   the selected matrix has the columns of ``get_feature_names_out``; a text column without one
   raises ConfigError naming the two encodings. Encoded columns are never logged or clipped.
2. ``Log1pTransformer``: ``log1p`` of skewed non-negative features. ``"auto"`` picks columns whose
   training 1st percentile is >= 0 (a few net-negative spends are allowed) and whose skewness is
   > ``skew_threshold`` (1.0); a list names them. Values below 0 are floored at 0 before log1p.
3. ``QuantileClipper``: clip every column to its ``[1 - q, q]`` training quantiles (``q=None``: off).
4. Scaling: ``"standard"`` (StandardScaler) or ``"robust"`` (RobustScaler, median / IQR).

A feature that is constant in the training data raises :class:`DataError` (it cannot separate
customers and breaks scaling). Every step is a scikit-learn transformer (keyword-only parameters,
validation in ``fit``, ``n_features_in_`` checked in ``transform`` with scikit-learn's message).

>>> import polars as pl
>>> df = pl.DataFrame({"customer_id": ["a", "b", "c"], "n_orders": [1, 2, 30], "tenure_days": [5.0, 50.0, 20.0]})
>>> pre = make_preprocessor(["n_orders", "tenure_days"]).fit(df)
>>> list(pre.get_feature_names_out())
['n_orders', 'tenure_days']
>>> pre.transform(df).shape
(3, 2)
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler
from sklearn.utils.validation import check_array, check_is_fitted

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.encoding import AttributeEncoder, check_encodings, text_features


#: skewness above which ``log_features="auto"`` applies log1p to a non-negative feature
SKEW_THRESHOLD = 1.0

SCALERS = ("standard", "robust")

#: structural nulls filled by ``fill_null="auto"`` (documented rules, not guesses): a customer with
#: one purchase day has no gap between purchases, so ``mean_days_between`` is taken as their
#: tenure (no repeat purchase in that many days); a customer with no purchase order (returns only)
#: has an average order value of 0. Any other null / NaN stays and is reported.
AUTO_FILLS = {"mean_days_between": "tenure_days", "avg_order_value": 0.0}


def fill_exprs(features: Sequence[str], columns: Sequence[str], fallback: dict[str, float] | None = None) -> list[pl.Expr]:
    """Polars expressions applying ``AUTO_FILLS`` to ``features`` (casting them to Float64).

    ``fallback`` gives the value used when the source column of a fill is absent.

    >>> df = pl.DataFrame({"mean_days_between": [None, 4.0], "tenure_days": [30, 50]})
    >>> df.with_columns(fill_exprs(["mean_days_between"], df.columns))["mean_days_between"].to_list()
    [30.0, 4.0]
    """
    out = []
    for f in features:
        col = pl.col(f).cast(pl.Float64)
        rule = AUTO_FILLS.get(f)
        if rule is None:
            continue
        if isinstance(rule, str):
            if rule in columns:
                value = pl.col(rule).cast(pl.Float64)
            elif fallback and f in fallback:
                value = pl.lit(fallback[f])
            else:
                continue
        else:
            value = pl.lit(float(rule))
        out.append(pl.when(col.is_null() | col.is_nan()).then(value).otherwise(col).alias(f))
    return out


def to_numpy(X: Any, features: Sequence[str] | None = None) -> np.ndarray:
    """Float64 matrix of ``features`` from a polars/pandas frame, or ``X`` itself for an array.

    >>> to_numpy(pl.DataFrame({"a": [1, 2], "b": [3.0, 4.0]}), ["b"]).tolist()
    [[3.0], [4.0]]
    """
    if isinstance(X, pl.LazyFrame):
        X = X.collect()
    if isinstance(X, pl.DataFrame):
        names = list(features) if features is not None else X.columns
        missing = [c for c in names if c not in X.columns]
        if missing:
            raise DataError(
                f"Feature table: column(s) {missing} not found (columns present: {X.columns}). "
                "Fix: compute these features first (features.customer_features) or remove them from "
                "clustering.features in the configuration."
            )
        bad = [c for c in names if not (X.schema[c].is_numeric() or X.schema[c] == pl.Null)]
        if bad:
            raise DataError(
                f"Feature table: column(s) {bad} are not numeric ({[str(X.schema[c]) for c in bad]}). "
                "Fix: cast them to numbers or remove them from clustering.features."
            )
        if not names:
            return np.empty((X.height, 0))
        return X.select(pl.col(names).cast(pl.Float64)).to_numpy().astype(np.float64, copy=False)
    if hasattr(X, "columns") and hasattr(X, "to_numpy"):  # pandas at a dependency boundary
        return to_numpy(pl.from_pandas(X), features)
    return _as_matrix(X, allow_nan=True)


def _as_matrix(X: Any, allow_nan: bool) -> np.ndarray:
    """``check_array`` (2-d, dense, real, at least one row and column) with its ValueErrors as DataError.

    TypeErrors (e.g. a dict inside an object array) pass unchanged, as scikit-learn raises them.
    """
    try:
        return check_array(X, dtype=np.float64, ensure_all_finite=False if allow_nan else True)
    except ValueError as exc:
        raise DataError(f"Feature matrix: {exc} Fix: pass a 2-d table of numbers (one row per customer).") from None


def check_matrix(X: Any, estimator: BaseEstimator, reset: bool, allow_nan: bool = False) -> np.ndarray:
    """Float64 matrix for a numpy-level step: set (``reset``) or check ``estimator.n_features_in_``.

    Like scikit-learn's ``validate_data`` (same messages) but leaves ``feature_names_in_`` alone.

    >>> step = QuantileClipper().fit(np.ones((3, 2)))
    >>> step.transform(np.ones((1, 3)))
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.DataError: X has 3 features, but QuantileClipper is expecting 2 features as input. \
Fix: pass the columns the step was fitted on, in the same order.
    """
    arr = _as_matrix(X, allow_nan)
    if reset:
        estimator.n_features_in_ = arr.shape[1]
    elif arr.shape[1] != estimator.n_features_in_:
        raise DataError(f"X has {arr.shape[1]} features, but {type(estimator).__name__} is expecting "
                        f"{estimator.n_features_in_} features as input. Fix: pass the columns the step was fitted "
                        "on, in the same order.")
    return arr


def column_names(X: Any, exclude: Sequence[str] = ()) -> list[str]:
    """Every column of a frame (minus ``exclude``), or ``x0, x1, ...`` for an array.

    >>> column_names(pl.DataFrame({"a": [1], "flag": [True]}), exclude=["flag"]), column_names(np.ones((2, 3)))
    (['a'], ['x0', 'x1', 'x2'])
    """
    if isinstance(X, pl.LazyFrame):
        return [c for c in X.collect_schema().names() if c not in exclude]
    if isinstance(X, pl.DataFrame) or (hasattr(X, "columns") and hasattr(X, "to_numpy")):
        return [str(c) for c in X.columns if str(c) not in exclude]
    return [f"x{j}" for j in range(to_numpy(X).shape[1])]


def check_finite(arr: np.ndarray, names: Sequence[str], where: str = "Feature table") -> None:
    """Raise :class:`DataError` naming the columns holding null / NaN / infinite values."""
    ok = np.isfinite(arr)
    if ok.all():
        return
    bad_cols = np.flatnonzero(~ok.all(axis=0))
    parts = [f"'{names[j]}' ({int((~ok[:, j]).sum()):,} rows, first at row {int(np.flatnonzero(~ok[:, j])[0])})"
             for j in bad_cols]
    raise DataError(
        f"{where}: null, NaN or infinite values in {', '.join(parts)}. "
        "Fix: fill or drop these customers before clustering (score_customers reports them instead)."
    )


class ColumnSelector(TransformerMixin, BaseEstimator):
    """Select ``features`` (after ``fill_null`` rules) and return a float64 numpy array.

    ``features=None`` selects every column (``x0, x1, ...`` for an array). ``fill_null="auto"``
    applies ``AUTO_FILLS`` (``mean_days_between`` of one-time buyers = their ``tenure_days``; when
    that column is absent, the training maximum); ``None`` fills nothing. Remaining null / NaN /
    infinite values raise :class:`DataError`. A numpy array must hold the features in order.
    Fitted: ``feature_names_in_`` (the selected names), ``n_features_in_``, ``fill_values_``;
    with ``encodings`` for text features also ``encoder_`` (an AttributeEncoder) and
    ``names_out_`` (the output columns: each encoded feature replaced by its encoded columns).

    >>> ColumnSelector(features=("b",)).fit_transform(pl.DataFrame({"a": [1, 2], "b": [3, 4]})).tolist()
    [[3.0], [4.0]]
    >>> sel = ColumnSelector(features=("b", "r"), encodings={"r": {"ordinal": ["lo", "hi"]}})
    >>> sel.fit_transform(pl.DataFrame({"b": [3, 4], "r": ["hi", "lo"]})).tolist()
    [[3.0, 1.0], [4.0, 0.0]]
    """

    #: models saved before encodings existed unpickle without it; ``get_params`` then reads this
    encodings: Mapping[str, Any] | None = None

    def __init__(self, *, features: Sequence[str] | None = None, fill_null: str | None = "auto",
                 encodings: Mapping[str, Any] | None = None):
        self.features = features
        self.fill_null = fill_null
        self.encodings = encodings

    def _encoded(self, names: Sequence[str]) -> list[str]:
        """The ``names`` that have a declared encoding."""
        enc = dict(self.encodings or {})
        return [c for c in names if c in enc]

    def _names(self, X: Any) -> list[str]:
        if self.features is None:
            return column_names(X)
        return [self.features] if isinstance(self.features, str) else list(self.features)

    def _frame(self, X: Any, names: list[str]) -> pl.DataFrame:
        if isinstance(X, pl.LazyFrame):
            X = X.collect()
        if not isinstance(X, pl.DataFrame):
            if hasattr(X, "columns") and hasattr(X, "to_numpy"):
                X = pl.from_pandas(X)
            else:
                arr = to_numpy(X)
                if arr.shape[1] != len(names):
                    raise DataError(f"Feature matrix: X has {arr.shape[1]} features, but {type(self).__name__} is "
                                    f"expecting {len(names)} features as input (named {names}). Fix: pass a table "
                                    "with these columns.")
                X = pl.DataFrame(arr, schema=names, orient="row")
        encoded = set(self._encoded(names))
        present = [c for c in names if c in X.columns]
        text = [c for c in text_features(X.schema, present) if c not in encoded]
        if text:  # a text feature without an encoding: the message naming the two encodings
            check_encodings(X.schema, names, self.encodings,
                            levels={c: X[c].n_unique() for c in text})
        to_numpy(X.head(0), [c for c in names if c not in encoded])  # clear errors for missing / non-numeric columns
        return X

    def fill(self, X: Any) -> pl.DataFrame:
        """The selected features as a Float64 polars frame with the ``fill_null`` rules applied."""
        names = list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else self._names(X)
        return self._fill(self._frame(X, names), names)

    def _fill(self, df: pl.DataFrame, names: list[str]) -> pl.DataFrame:
        if self.fill_null == "auto":
            df = df.with_columns(fill_exprs(names, df.columns, getattr(self, "fill_values_", None)))
        elif self.fill_null is not None:
            raise ConfigError(f"fill_null '{self.fill_null}' is unknown. Fix: use 'auto' or null.")
        encoder = getattr(self, "encoder_", None)
        if encoder is None:
            return df.select(pl.col(names).cast(pl.Float64))
        encoded = set(encoder.feature_names_in_)
        parts = {c: df[c].cast(pl.Float64) for c in names if c not in encoded}
        enc = encoder.transform(df)
        out = [s for c in names for s in ([parts[c]] if c in parts else [enc[n] for n in encoder.feature_names_out_[c]])]
        return pl.DataFrame(out) if out else pl.DataFrame()

    def fit(self, X: Any, y: Any = None) -> "ColumnSelector":
        """Check the features and learn the fill fallbacks; raises DataError for non-finite values."""
        self._fit(X)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:
        """``fit`` and the selected matrix of ``X`` in one pass (the same as ``fit(X).transform(X)``)."""
        return self._fit(X).astype(np.float64, copy=False)

    def _fit(self, X: Any) -> np.ndarray:
        names = self._names(X)
        if not names:
            raise ConfigError(
                "clustering.features is empty: there is nothing to cluster on. "
                "Fix: list at least one numeric column, e.g. [days_since_last, n_orders, total_spend]."
            )
        if len(set(names)) != len(names):
            raise ConfigError(f"clustering.features {names} lists a column twice. Fix: list each column once.")
        raw = self._frame(X, names)
        encoded = self._encoded(names)
        if encoded or self.encodings:
            check_encodings(raw.schema, names, self.encodings)
        self.encoder_ = (AttributeEncoder(encodings={c: dict(self.encodings)[c] for c in encoded}).fit(raw)
                         if encoded else None)
        # fallback for fills whose source column is absent: the largest observed value
        self.fill_values_ = {f: float(np.nan_to_num(raw[f].cast(pl.Float64).fill_nan(None).max() or 0.0))
                             for f in names if isinstance(AUTO_FILLS.get(f), str)}
        filled = self._fill(raw, names)
        arr = filled.to_numpy()
        check_finite(arr, filled.columns)
        self.feature_names_in_ = np.array(names, dtype=object)
        self.names_out_ = np.array(filled.columns, dtype=object)
        self.n_features_in_ = len(names)
        return arr

    def transform(self, X: Any) -> np.ndarray:
        """The selected, filled features as a float64 matrix (DataError for non-finite values)."""
        check_is_fitted(self, "feature_names_in_")
        filled = self.fill(X)
        arr = filled.to_numpy().astype(np.float64, copy=False)
        check_finite(arr, filled.columns)
        return arr

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The output columns: the features, each encoded text feature replaced by its encoded columns."""
        check_is_fitted(self, "feature_names_in_")
        return getattr(self, "names_out_", self.feature_names_in_).copy()

    def encoded_names(self) -> list[str]:
        """The output columns that come from encoded text features (never logged or clipped)."""
        check_is_fitted(self, "feature_names_in_")
        encoder = getattr(self, "encoder_", None)
        return [] if encoder is None else [str(n) for n in encoder.get_feature_names_out()]


def _step_names(feature_names: Sequence[str], n_features: int) -> list[str]:
    """``feature_names`` of a numpy-level step (``x0, x1, ...`` when empty), checked against the width."""
    names = list(feature_names) or [f"x{j}" for j in range(n_features)]
    if len(names) != n_features:
        raise DataError(f"X has {n_features} features, but {len(names)} feature names were given ({names}). "
                        "Fix: pass one name per column.")
    return names


def _skewness(arr: np.ndarray) -> np.ndarray:
    mu = arr.mean(axis=0)
    sd = arr.std(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, ((arr - mu) ** 3).mean(axis=0) / sd**3, 0.0)


class Log1pTransformer(TransformerMixin, BaseEstimator):
    """``log1p`` of chosen columns: ``"auto"`` (non-negative and skewness > threshold), a list, or None."""

    #: columns ``"auto"`` never logs (encoded text attributes); models saved before it read this default
    keep: Sequence[str] = ()

    def __init__(self, *, log_features: str | Sequence[str] | None = "auto", feature_names: Sequence[str] = (),
                 skew_threshold: float = SKEW_THRESHOLD, keep: Sequence[str] = ()):
        self.log_features = log_features
        self.feature_names = feature_names
        self.skew_threshold = skew_threshold
        self.keep = keep

    def fit(self, X: np.ndarray, y: Any = None) -> "Log1pTransformer":
        """Choose the columns to log (``log_mask_``, ``log_features_``)."""
        X = check_matrix(X, self, reset=True)
        names = _step_names(self.feature_names, X.shape[1])
        if self.log_features is None or self.log_features == "none":
            mask = np.zeros(X.shape[1], dtype=bool)
        elif isinstance(self.log_features, str):
            if self.log_features != "auto":
                raise ConfigError(
                    f"clustering.log_features '{self.log_features}' is not understood. "
                    "Fix: use 'auto', null, or a list of feature names."
                )
            p01 = np.quantile(X, 0.01, axis=0) if X.shape[0] else np.zeros(X.shape[1])
            mask = (p01 >= 0) & (_skewness(X) > self.skew_threshold) & ~np.isin(np.array(names, dtype=object),
                                                                                 list(self.keep or ()))
        else:
            wanted = list(self.log_features)
            unknown = [c for c in wanted if c not in names]
            if unknown:
                raise ConfigError(
                    f"clustering.log_features names {unknown}, which are not clustering features {names}. "
                    "Fix: list only clustering features."
                )
            mask = np.array([c in wanted for c in names])
        self.log_mask_ = mask
        self.log_features_ = [names[j] for j in np.flatnonzero(mask)]
        self.feature_names_in_ = np.array(names, dtype=object)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``log1p`` of the chosen columns (a copy)."""
        check_is_fitted(self, "log_mask_")
        X = np.array(check_matrix(X, self, reset=False), dtype=np.float64, copy=True)
        if self.log_mask_.any():
            # values below 0 (unseen in training) are floored at 0 so log1p stays finite
            X[:, self.log_mask_] = np.log1p(np.maximum(X[:, self.log_mask_], 0.0))
        return X

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "log_mask_")
        return self.feature_names_in_.copy()


class QuantileClipper(TransformerMixin, BaseEstimator):
    """Clip each column to its training ``[1 - q, q]`` quantiles (``q=None`` turns clipping off)."""

    #: columns never clipped (encoded text attributes); models saved before it read this default
    keep: Sequence[str] = ()

    def __init__(self, *, q: float | None = 0.999, feature_names: Sequence[str] = (), keep: Sequence[str] = ()):
        self.q = q
        self.feature_names = feature_names
        self.keep = keep

    def fit(self, X: np.ndarray, y: Any = None) -> "QuantileClipper":
        """Learn the clipping bounds ``lower_`` / ``upper_``."""
        X = check_matrix(X, self, reset=True)
        names = _step_names(self.feature_names, X.shape[1])
        if self.q is not None and not 0.5 < float(self.q) <= 1.0:
            raise ConfigError(
                f"clustering.clip_quantile must be in (0.5, 1] or null, got {self.q}. Fix: use e.g. 0.999."
            )
        if self.q is None or float(self.q) >= 1.0:
            self.lower_ = np.full(X.shape[1], -np.inf)
            self.upper_ = np.full(X.shape[1], np.inf)
        else:
            self.lower_, self.upper_ = np.quantile(X, [1.0 - float(self.q), float(self.q)], axis=0)
            exempt = np.isin(np.array(names, dtype=object), list(self.keep or ()))
            self.lower_[exempt], self.upper_[exempt] = -np.inf, np.inf
        self.feature_names_in_ = np.array(names, dtype=object)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Every column clipped to its training bounds."""
        check_is_fitted(self, "lower_")
        return np.clip(check_matrix(X, self, reset=False), self.lower_, self.upper_)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "lower_")
        return self.feature_names_in_.copy()


class _NamedScaler(TransformerMixin, BaseEstimator):
    """Standard or robust scaling that refuses constant features and keeps feature names."""

    def __init__(self, *, scaler: str = "standard", feature_names: Sequence[str] = ()):
        self.scaler = scaler
        self.feature_names = feature_names

    def fit(self, X: np.ndarray, y: Any = None) -> "_NamedScaler":
        if self.scaler not in SCALERS:
            raise ConfigError(f"clustering.scaler '{self.scaler}' is unknown. Fix: use one of {list(SCALERS)}.")
        X = check_matrix(X, self, reset=True)
        names = _step_names(self.feature_names, X.shape[1])
        if X.shape[0] < 2:
            raise DataError(f"Feature table has {X.shape[0]} row (n_samples={X.shape[0]}), so every feature is "
                            "constant and cannot be scaled. Fix: fit on at least 2 customers.")
        spread = X.max(axis=0) - X.min(axis=0)
        constant = [names[j] for j in np.flatnonzero(spread <= 0)]
        if constant:
            raise DataError(
                f"Feature table: feature(s) {constant} are constant in the training data, so they cannot "
                "separate customers. Fix: remove them from clustering.features."
            )
        inner = StandardScaler() if self.scaler == "standard" else RobustScaler()
        self.scaler_ = inner.fit(X)
        if self.scaler == "robust":  # IQR 0 (mostly-constant column): fall back to the std
            scale = self.scaler_.scale_
            zero = scale <= 0
            if zero.any():
                scale[zero] = X[:, zero].std(axis=0)
        self.feature_names_in_ = np.array(names, dtype=object)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """The scaled matrix."""
        check_is_fitted(self, "scaler_")
        return self.scaler_.transform(check_matrix(X, self, reset=False))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "scaler_")
        return self.feature_names_in_.copy()


def make_preprocessor(features: Sequence[str], log_features: str | Sequence[str] | None = "auto",
                      clip_quantile: float | None = 0.999, scaler: str = "standard",
                      fill_null: str | None = "auto", encodings: Mapping[str, Any] | None = None) -> Pipeline:
    """Unfitted Pipeline ``select -> log1p -> clip -> scale`` for ``features``.

    With ``encodings`` of text features the later steps learn the encoded column names in
    :func:`fit_selection` (fit the pipeline with it, or with its ``fit``, which calls it).

    >>> make_preprocessor(["n_orders"], scaler="robust").named_steps["scale"].scaler
    'robust'
    """
    if isinstance(features, str):
        features = [features]
    names = list(features)
    if scaler not in SCALERS:
        raise ConfigError(f"clustering.scaler '{scaler}' is unknown. Fix: use one of {list(SCALERS)}.")
    if any(c in (encodings or {}) for c in names):
        return EncodedPipeline([
            ("select", ColumnSelector(features=tuple(names), fill_null=fill_null, encodings=dict(encodings or {}))),
            ("log1p", Log1pTransformer(log_features=log_features if isinstance(log_features, (str, type(None)))
                                       else tuple(log_features))),
            ("clip", QuantileClipper(q=clip_quantile)),
            ("scale", _NamedScaler(scaler=scaler)),
        ])
    return Pipeline([
        ("select", ColumnSelector(features=tuple(names), fill_null=fill_null,
                                  encodings=dict(encodings) if encodings else None)),  # a stray encoding is refused
        ("log1p", Log1pTransformer(log_features=log_features if isinstance(log_features, (str, type(None)))
                                   else tuple(log_features), feature_names=tuple(names))),
        ("clip", QuantileClipper(q=clip_quantile, feature_names=tuple(names))),
        ("scale", _NamedScaler(scaler=scaler, feature_names=tuple(names))),
    ])


def fit_selection(pre: Pipeline, X: Any) -> np.ndarray:
    """Fit the ``select`` step of ``pre`` on ``X`` and hand its output names to the later steps.

    Returns the selected matrix (the encoded text features included), whose columns are
    ``pre[0].get_feature_names_out()``; the later steps are left to fit (``pre[1:].fit``).

    >>> pre = make_preprocessor(["n", "r"], encodings={"r": {"one_hot": {"max_levels": 1}}})
    >>> fit_selection(pre, pl.DataFrame({"n": [1, 2, 3], "r": ["a", "a", "b"]})).shape, pre[-1].feature_names
    ((3, 3), ('n', 'r_a', 'r_other'))
    """
    raw = pre[0].fit_transform(X)
    names = tuple(str(n) for n in pre[0].get_feature_names_out())
    keep = tuple(pre[0].encoded_names())
    for _, step in pre.steps[1:]:
        params = step.get_params(deep=False)
        if "feature_names" in params:
            step.set_params(feature_names=names)
        if "keep" in params:
            step.set_params(keep=keep)
    return raw


class EncodedPipeline(Pipeline):
    """The preprocessing Pipeline when text features are encoded: ``fit`` passes the encoded names on.

    Slicing, ``transform`` and ``get_feature_names_out`` are scikit-learn's.
    """

    def fit(self, X: Any, y: Any = None, **params: Any) -> "EncodedPipeline":
        """Fit ``select`` (learning the encodings), then the later steps on its output."""
        if not isinstance(self.steps[0][1], ColumnSelector):  # a slice such as pre[1:]
            return super().fit(X, y, **params)
        raw = fit_selection(self, X)
        Pipeline(self.steps[1:]).fit(raw)
        return self

    def fit_transform(self, X: Any, y: Any = None, **params: Any) -> np.ndarray:
        """``fit`` then ``transform``."""
        return self.fit(X).transform(X)


def with_encoded(model: Any, features: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """``features`` with the encoded text columns of a fitted segmenter added, and the columns it clusters on.

    Without encodings the frame is returned unchanged with ``feature_names_in_``; with them, e.g.
    ``region_EU``, ``region_other`` and the ordinal ``plan_tier`` codes (replacing the text) are
    added, so surrogate rules, drift bins and checks read numbers (``model`` may also be the
    fitted ``select`` step).

    >>> df = pl.DataFrame({"n": [1.0, 2.0, 3.0], "r": ["a", "a", "b"]})
    >>> pre = make_preprocessor(["n", "r"], encodings={"r": {"one_hot": {"max_levels": 1}}}).fit(df)
    >>> out, cols = with_encoded(pre[0], df)
    >>> cols, out["r_other"].to_list()
    (['n', 'r_a', 'r_other'], [0.0, 0.0, 1.0])
    """
    selector = model.preprocessor_[0] if hasattr(model, "preprocessor_") else model
    names = [str(c) for c in selector.get_feature_names_out()]
    encoder = getattr(selector, "encoder_", None)
    if encoder is None:
        return features, names
    return features.with_columns(encoder.transform(features)), names


def readable_profiles(model: Any, profiles: pl.DataFrame) -> pl.DataFrame:
    """``segment_profiles`` of :func:`with_encoded` columns with each ordinal median as its level name.

    One-hot ``mean_<column>_<level>`` is already the share of the segment at that level (see
    ``AttributeEncoder.share_columns`` for a table); unchanged without encodings.
    """
    selector = model.preprocessor_[0] if hasattr(model, "preprocessor_") else model
    encoder = getattr(selector, "encoder_", None)
    return profiles if encoder is None else encoder.readable_profiles(profiles)


def one_hot_shares(model: Any, profiles: pl.DataFrame) -> pl.DataFrame:
    """The one-hot share columns of ``profiles`` for display (an empty frame without one-hot encodings)."""
    selector = model.preprocessor_[0] if hasattr(model, "preprocessor_") else model
    encoder = getattr(selector, "encoder_", None)
    return pl.DataFrame() if encoder is None else encoder.share_columns(profiles)
