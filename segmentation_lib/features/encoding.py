"""Text attributes (plan, region, industry) as clustering inputs, through a DECLARED encoding.

A text column of the feature table (e.g. ``plan_tier`` from the customer table) can be a
clustering feature only when ``clustering.encodings`` says how to turn it into numbers:

- ``{ordinal: [free, standard, premium, enterprise]}``: the listed order becomes 0 .. n-1
  (scikit-learn's ``OrdinalEncoder`` with these categories). A level that is not listed stops
  with an error naming the column, the level(s), how many customers hold them and the fix (add
  the level to the order, or map it in the customer table). This holds when fitting and when
  scoring new customers.
- ``{one_hot: {max_levels: 8}}``: one 0/1 indicator per level (scikit-learn's ``OneHotEncoder``
  with ``max_categories=max_levels + 1`` and ``handle_unknown="infrequent_if_exist"``). The
  ``max_levels`` most frequent levels of the training customers are kept (ties: the level first
  in alphabetical order is kept); the rest share one ``<column>_other`` indicator. Output columns
  are ``<column>_<level>`` in decreasing frequency (ties by name), then ``<column>_other``. A level never seen in
  training goes to ``<column>_other`` when scoring; when training had no more levels than
  ``max_levels`` there is no ``_other`` column and an unseen level is all zeros (no kept level).
  A single level left over still goes to ``_other`` (at most ``max_levels`` named levels).

Nulls (documented rule): a null text value is the level ``missing``. For one-hot it is a level
like any other (kept or folded into ``other`` by frequency); for ordinal it must be placed in
the order (e.g. ``[missing, free, standard]``) or the unlisted-level error names it.

A text column listed in ``clustering.features`` without an encoding stops with
:func:`undeclared_text_error` (the run's preflight checks it before the first notebook).

>>> import polars as pl
>>> df = pl.DataFrame({"plan": ["free", "premium", "free"], "region": ["EU", "US", "EU"]})
>>> enc = AttributeEncoder(encodings={"plan": {"ordinal": ["free", "premium"]},
...                                   "region": {"one_hot": {"max_levels": 1}}}).fit(df)
>>> enc.transform(df).rows()
[(0.0, 1.0, 0.0), (1.0, 0.0, 1.0), (0.0, 1.0, 0.0)]
>>> list(enc.get_feature_names_out())
['plan', 'region_EU', 'region_other']
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.utils.validation import check_is_fitted

from segmentation_lib.config import encoding_problems
from segmentation_lib.errors import ConfigError, DataError

#: the level a null text value becomes (see the module docstring)
MISSING_LEVEL = "missing"

#: the suffix of the one-hot indicator of the levels beyond ``max_levels`` (and unseen levels)
OTHER_LEVEL = "other"

ENCODINGS = ("one_hot", "ordinal")


def is_text(dtype: pl.DataType) -> bool:
    """True for the column types that need a declared encoding (String, Categorical, Enum).

    >>> is_text(pl.String), is_text(pl.Int64)
    (True, False)
    """
    return dtype == pl.String or isinstance(dtype, (pl.Categorical, pl.Enum))


def text_features(schema: Mapping[str, pl.DataType], features: Sequence[str]) -> list[str]:
    """The ``features`` whose column in ``schema`` is text.

    >>> text_features({"a": pl.String, "b": pl.Float64}, ["a", "b", "c"])
    ['a']
    """
    return [f for f in features if f in schema and is_text(schema[f])]


def level_expr(column: str) -> pl.Expr:
    """The levels of ``column`` as text, nulls as ``missing`` (the documented null rule).

    >>> pl.DataFrame({"r": ["EU", None]}).select(level_expr("r"))["r"].to_list()
    ['EU', 'missing']
    """
    return pl.col(column).cast(pl.String).fill_null(MISSING_LEVEL).alias(column)


def undeclared_text_error(column: str, n_levels: int, where: str = "Feature table") -> DataError:
    """The one-paragraph error for a text clustering feature without an encoding.

    >>> print(undeclared_text_error("region", 5))  # doctest: +ELLIPSIS
    Feature table: clustering feature 'region' is text (not numeric; 5 levels) and has no encoding...
    """
    return DataError(
        f"{where}: clustering feature '{column}' is text (not numeric; {n_levels:,} levels) and has no encoding, so it cannot be "
        "clustered on. Fix: declare one of the two encodings under clustering.encodings in the configuration, "
        f"one-hot (one 0/1 column per level, the most frequent up to max_levels, the rest as '{OTHER_LEVEL}') or "
        f"ordinal (the levels in a given order become 0, 1, 2, ...), e.g. "
        f"`encodings: {{{column}: {{one_hot: {{max_levels: 8}}}}}}` or "
        f"`encodings: {{{column}: {{ordinal: [level_a, level_b, level_c]}}}}`; or remove '{column}' from "
        "clustering.features."
    )


def unlisted_levels_error(frame: pl.DataFrame, column: str, order: Sequence[str], where: str = "Feature table") -> DataError | None:
    """The error for levels of ``column`` missing from its ordinal ``order`` (None when every level is listed).

    >>> err = unlisted_levels_error(pl.DataFrame({"p": ["a", "z", "z", None]}), "p", ["a"])
    >>> "'z' (2 customers)" in str(err) and "'missing' (1 customer)" in str(err)
    True
    """
    counts = (frame.select(level_expr(column)).filter(~pl.col(column).is_in(list(order)))
              .group_by(column).len().sort(["len", column], descending=[True, False]))
    if counts.height == 0:
        return None
    parts = [f"'{lvl}' ({n:,} customer{'s' if n != 1 else ''})" for lvl, n in counts.head(10).iter_rows()]
    more = f" and {counts.height - 10:,} more" if counts.height > 10 else ""
    total = int(counts["len"].sum())
    return DataError(
        f"{where}: column '{column}' has level(s) {', '.join(parts)}{more} that are not in its ordinal order "
        f"{list(order)} ({total:,} customers in all; nulls are the level '{MISSING_LEVEL}'). Fix: add the level(s) "
        f"to clustering.encodings.{column}.ordinal in their place in the order, or map them to listed levels in "
        "the customer table."
    )


def check_encodings(schema: Mapping[str, pl.DataType], features: Sequence[str], encodings: Mapping[str, Any] | None,
                    levels: Mapping[str, int] | None = None, where: str = "Feature table") -> None:
    """Raise ConfigError for a bad ``encodings`` spec or an encoding of a non-feature, DataError for a text feature without one.

    ``levels`` gives the number of levels of each text column for the message (unknown: 0).

    >>> check_encodings({"region": pl.String}, ["region"], {})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.DataError: Feature table: clustering feature 'region' is text (not numeric; 0 levels)...
    """
    encodings = dict(encodings or {})
    problems = encoding_problems(encodings)
    if problems:
        raise ConfigError(f"clustering.encodings: {'; '.join(problems)}. Fix: write each encoding as "
                          "{column: {one_hot: {max_levels: 8}}} or {column: {ordinal: [level, ...]}}.")
    stray = [c for c in encodings if c not in features]
    if stray:
        raise ConfigError(f"clustering.encodings names {stray}, which are not in clustering.features {list(features)}. "
                          "Fix: add them to clustering.features or remove their encodings.")
    numeric = [c for c in encodings if c in schema and not is_text(schema[c])]
    if numeric:
        raise ConfigError(f"{where}: clustering.encodings names {numeric}, which are numeric ({[str(schema[c]) for c in numeric]}), "
                          "not text; numeric attributes are clustered as they are. Fix: remove their encodings.")
    for col in text_features(schema, features):
        if col not in encodings:
            raise undeclared_text_error(col, int((levels or {}).get(col, 0)), where)


def _kind(spec: Mapping[str, Any]) -> tuple[str, Any]:
    (kind, value), = dict(spec).items()
    return kind, value


class AttributeEncoder(TransformerMixin, BaseEstimator):
    """Encode declared text columns of a polars frame to Float64 columns (see the module docstring).

    ``encodings``: ``{column: {"one_hot": {"max_levels": n}} | {"ordinal": [level, ...]}}``.
    Fitted: ``encoders_`` (column -> fitted scikit-learn encoder), ``feature_names_in_`` (the
    encoded columns), ``feature_names_out_`` ({column: its output column names}).

    >>> df = pl.DataFrame({"r": ["a", "b", "b", "c", "c", None]})
    >>> enc = AttributeEncoder(encodings={"r": {"one_hot": {"max_levels": 2}}}).fit(df)
    >>> enc.feature_names_out_["r"], enc.transform(pl.DataFrame({"r": ["a", "zz"]})).rows()
    (['r_b', 'r_c', 'r_other'], [(0.0, 0.0, 1.0), (0.0, 0.0, 1.0)])
    """

    def __init__(self, *, encodings: Mapping[str, Any] | None = None):
        self.encodings = encodings

    def fit(self, X: pl.DataFrame, y: Any = None) -> "AttributeEncoder":
        """Learn the kept one-hot levels (by frequency) and check every ordinal level is listed."""
        encodings = dict(self.encodings or {})
        check_encodings(X.schema, list(encodings), encodings)
        self.encoders_: dict[str, Any] = {}
        self.feature_names_out_: dict[str, list[str]] = {}
        for col, spec in encodings.items():
            if col not in X.columns:
                raise DataError(f"Feature table: column '{col}' (clustering.encodings) not found (columns present: "
                                f"{X.columns}). Fix: attach the customer table (data.customers) or remove it from "
                                "clustering.features and clustering.encodings.")
            kind, value = _kind(spec)
            if kind == "ordinal":
                order = [str(v) for v in value]
                if not X.select(level_expr(col))[col].unique().is_in(order).all():  # counted only on the error path
                    raise unlisted_levels_error(X, col, order)
                enc = OrdinalEncoder(categories=[np.array(order, dtype=object)], handle_unknown="error")
                enc.fit(np.array(order, dtype=object)[:, None])
                self.feature_names_out_[col] = [col]
            else:
                cap = int(value["max_levels"])
                # the levels ranked by the documented rule (count descending, ties by name), counted by polars;
                # scikit-learn then sees each level once and the `cap` first twice: its infrequent rule
                # (`max_categories`) depends only on the order of the counts, so it keeps exactly those, and
                # fitting on the distinct levels stays instant on millions of customers
                ranked = (X.select(level_expr(col)).group_by(col).len()
                          .sort(["len", col], descending=[True, False])[col].to_list())
                enc = OneHotEncoder(categories=[np.array(ranked, dtype=object)], max_categories=cap + 1,
                                    handle_unknown="infrequent_if_exist", sparse_output=False, dtype=np.float64)
                enc.fit(np.array(ranked + ranked[:cap], dtype=object)[:, None])
                infrequent = enc.infrequent_categories_[0]
                kept = [c for c in enc.categories_[0] if infrequent is None or c not in set(infrequent)]
                other = f"{col}_{OTHER_LEVEL}" if OTHER_LEVEL not in kept else f"{col}_{OTHER_LEVEL}_levels"
                self.feature_names_out_[col] = [f"{col}_{c}" for c in kept] + ([other] if infrequent is not None else [])
            self.encoders_[col] = enc
        self.feature_names_in_ = np.array(list(encodings), dtype=object)
        self.n_features_in_ = len(encodings)
        return self

    def transform(self, X: pl.DataFrame) -> pl.DataFrame:
        """The encoded Float64 columns, in ``get_feature_names_out`` order (ordinal: unlisted level -> DataError)."""
        check_is_fitted(self, "encoders_")
        if isinstance(X, pl.LazyFrame):
            X = X.collect()
        parts = []
        for col, enc in self.encoders_.items():
            if col not in X.columns:
                raise DataError(f"Feature table: column '{col}' not found (columns present: {X.columns}); the model "
                                "encodes it. Fix: include the customer attribute columns the model was fitted on.")
            if not X.height:  # scikit-learn refuses zero rows
                parts.append(pl.DataFrame(schema={n: pl.Float64 for n in self.feature_names_out_[col]}))
                continue
            levels = X.select(level_expr(col))[col]
            uniq = levels.unique().sort()
            if isinstance(enc, OrdinalEncoder) and not uniq.is_in(list(enc.categories_[0])).all():
                raise unlisted_levels_error(X, col, list(enc.categories_[0]))
            # scikit-learn encodes the distinct levels; every customer gets its level's row (codes of an Enum)
            table = np.asarray(enc.transform(uniq.to_numpy().astype(object)[:, None]), dtype=np.float64)
            codes = levels.cast(pl.Enum(uniq.to_list())).to_physical()
            parts.append(pl.DataFrame([pl.Series(name, np.ascontiguousarray(table[:, j])).gather(codes)
                                       for j, name in enumerate(self.feature_names_out_[col])]))
        return pl.concat(parts, how="horizontal") if parts else pl.DataFrame()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "encoders_")
        return np.array([n for names in self.feature_names_out_.values() for n in names], dtype=object)

    def readable_profiles(self, profiles: pl.DataFrame) -> pl.DataFrame:
        """``segment_profiles`` of encoded columns made readable: ordinal medians as level names.

        One-hot ``mean_<column>_<level>`` already is the share of the segment at that level; the
        ordinal ``median_<column>`` (lower median of the codes) becomes the level name.
        """
        check_is_fitted(self, "encoders_")
        out = profiles
        for col, enc in self.encoders_.items():
            name = f"median_{col}"
            if isinstance(enc, OrdinalEncoder) and name in out.columns:
                order = [str(c) for c in enc.categories_[0]]
                out = out.with_columns(pl.col(name).floor().cast(pl.Int64)
                                       .replace_strict(dict(enumerate(order)), default=None, return_dtype=pl.String))
        return out

    def share_columns(self, profiles: pl.DataFrame) -> pl.DataFrame:
        """The one-hot shares of ``segment_profiles`` for a table: ``"<column> = <level> (share)"`` per level.

        >>> enc = AttributeEncoder(encodings={"r": {"one_hot": {"max_levels": 1}}}).fit(pl.DataFrame({"r": ["a", "a", "b"]}))
        >>> enc.share_columns(pl.DataFrame({"mean_r_a": [0.5], "mean_r_other": [0.5]})).columns
        ['r = a (share)', 'r = other (share)']
        """
        check_is_fitted(self, "encoders_")
        exprs = [pl.col(f"mean_{n}").alias(f"{col} = {n[len(col) + 1:]} (share)")
                 for col, enc in self.encoders_.items() if isinstance(enc, OneHotEncoder)
                 for n in self.feature_names_out_[col] if f"mean_{n}" in profiles.columns]
        return profiles.select(exprs)
