"""Marketing RFM: edge-based scores, named segment maps (as data) and a value-engagement matrix.

Scoring (:class:`RFMScorer`) follows scikit-learn: ``fit`` learns quantile bin edges per dimension
from a reference table, ``transform`` scores any table with those edges, so identical values
always get identical scores (edges, never ranks) and frozen edges keep scheduled reports
comparable. Scores run 1..``bins``; recency (``days_since_last``) is reversed so ``bins`` = most
recent.

How edges are learned (per dimension, on the non-null values of the reference table):

1. if the column has at most ``bins`` distinct values, every distinct value is its own level
   (edges = the distinct values except the largest);
2. otherwise the inner edges are the linear-interpolated quantiles ``k / bins`` (k = 1..bins-1),
   with duplicates removed and edges >= the maximum dropped (they would only create empty top bins);
3. a value ``v`` falls in level ``#(edges < v)`` (bins are closed on the right: ``(e_k-1, e_k]``);
4. with ``L`` levels, level ``i`` gets score ``1 + round(i * (bins - 1) / (L - 1))``: when ``L ==
   bins`` this is ``i + 1``; when ``L < bins`` (ties or few distinct values) the levels are
   *spread* over 1..bins so the bottom level is 1 and the top level is ``bins`` and some scores
   are not used. This is never silent: ``degenerate_`` lists each such dimension with its levels
   and used scores, and a ``UserWarning`` is emitted. A constant column (``L == 1``) scores the
   middle score ``(bins + 1) // 2`` on every measure, recency included (the reversal does not apply
   to it). Null values score 1 (the worst), recency included.

Cut options (all keyword-only; the defaults keep the rules above):

* ``bins`` may be one count for all measures or a mapping per measure
  (``{"recency": 5, "frequency": 3, "monetary": 5}``; a measure left out keeps 5);
* ``cuts``: explicit percentile cut points in (0, 1), strictly increasing, for all measures
  (``[0.2, 0.5, 0.8]``) or per measure (``{"monetary": [0.5, 0.9]}``): the inner edges are the
  linear-interpolated quantiles at those points (duplicates and edges >= the maximum removed,
  then rule 4), and the measure gets ``len(cuts) + 1`` scores;
* ``thresholds``: fixed value edges in the column's units, strictly increasing, for all measures
  or per measure (``{"recency": [30, 90, 180]}``): ``v <= 30`` is level 0, ``30 < v <= 90``
  level 1, ... (closed on the right, as above), nothing is learned, and the measure gets
  ``len(thresholds) + 1`` scores (recency reversed: ``<= 30`` days scores 4);
* ``filters``: min/max bounds (inclusive) on any column (or measure name) applied before scoring,
  ``{"total_spend": {"min": 0}, "n_orders": {"max": 500}}``: excluded rows are left out of the
  reference in ``fit`` (counted in ``excluded_``, by reason in ``excluded_reasons_``) and get null
  scores, a null ``rfm_code`` and their reason in ``rfm_excluded`` in ``transform``, never dropped.
  A null value passes a filter.

Frozen edges are data: ``RFMScorer(edges=read_edges(path))`` or ``RFMScorer.from_edges(path)``
(``fit`` never reads a file, so the scorer clones and pickles like any scikit-learn transformer).

>>> import polars as pl
>>> t = pl.DataFrame({"days_since_last": [1, 5, 9, 30, 200], "n_orders": [9, 5, 3, 2, 1],
...                   "total_spend": [900.0, 300.0, 120.0, 50.0, 10.0]})
>>> RFMScorer().fit_transform(t)["rfm_code"].to_list()
['555', '444', '333', '222', '111']
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array

from segmentation_lib.errors import ConfigError, DataError, ModelError


DIMS = ("recency", "frequency", "monetary")
SCORE_COLS = {"recency": "r_score", "frequency": "f_score", "monetary": "m_score"}
ALLOWED_BINS = (3, 4, 5, 10)


# --------------------------------------------------------------------------------------------
# scorer
# --------------------------------------------------------------------------------------------
def _learn_edges(values: pl.Series, bins: int) -> list[float]:
    """Inner bin edges for one column (see the module docstring for the rules)."""
    v = _sorted_values(values)
    if v.len() == 0:
        return []
    if v.n_unique() <= bins:  # (sorted values: counted and listed in one pass, quantiles read off)
        return v.unique(maintain_order=True).to_list()[:-1]
    top = v[-1]
    qs = [v.quantile(k / bins, interpolation="linear") for k in range(1, bins)]
    return sorted({float(q) for q in qs if q < top})


def _sorted_values(values: pl.Series) -> pl.Series:
    """The non-null, non-NaN values as Float64, sorted (quantiles of a sorted Series are read off it).

    >>> _sorted_values(pl.Series([3.0, None, float("nan"), 1.0])).to_list()
    [1.0, 3.0]
    """
    v = values.drop_nulls().cast(pl.Float64)
    return v.filter(v.is_not_nan()).sort()


def _level_scores(n_levels: int, bins: int) -> list[int]:
    """Score of each level: ``1 + round(i * (bins - 1) / (L - 1))`` (spread), middle for L == 1."""
    if n_levels <= 1:
        return [(bins + 1) // 2]
    return [1 + int(round(i * (bins - 1) / (n_levels - 1))) for i in range(n_levels)]


def _final_scores(scores: list[int], reverse: bool, bins: int) -> list[int]:
    """The score of each level as shown: reversed for recency, except the middle score of a constant column."""
    if reverse and len(scores) > 1:
        return [bins + 1 - s for s in scores]
    return list(scores)


def _cut_edges(values: pl.Series, cuts: list[float]) -> list[float]:
    """Inner edges at explicit percentile cut points (duplicates and edges >= the maximum removed)."""
    v = _sorted_values(values)
    if v.len() == 0:
        return []
    top = v[-1]
    qs = [v.quantile(float(q), interpolation="linear") for q in cuts]
    return sorted({float(q) for q in qs if q < top})


def _score_expr(column: str, edges: list[float], scores: list[int], reverse: bool, bins: int) -> pl.Expr:
    """Polars expression: level = #(edges < value), then the level's score (reversed if asked)."""
    x = pl.col(column).cast(pl.Float64)
    level = pl.lit(0, dtype=pl.Int32)
    for e in edges:
        level = level + (x > e).cast(pl.Int32)
    table = _final_scores(scores, reverse, bins)
    score = pl.lit(table[0], dtype=pl.Int8)
    for i in range(1, len(table)):  # a handful of levels, not rows
        score = pl.when(level == i).then(pl.lit(table[i], dtype=pl.Int8)).otherwise(score)
    return pl.when(x.is_null() | x.is_nan()).then(pl.lit(1, dtype=pl.Int8)).otherwise(score)


class RFMScorer(TransformerMixin, BaseEstimator):
    """Learn quantile edges on a reference table, then score any table with them.

    A scikit-learn transformer: keyword-only parameters stored unchanged, every check in ``fit``
    (ConfigError / DataError, both ValueErrors); ``clone``, ``get_params`` and ``set_params`` work.

    Parameters: ``bins`` (3, 4, 5 or 10); ``recency``, ``frequency``, ``monetary``: the three
    measure columns, as names for a polars (or pandas) table, or as column positions (ints) for a
    numpy array; ``edges``: frozen edges as data (the dict written by :meth:`save_edges`, see
    :func:`read_edges`), which ``fit`` then keeps unchanged. ``fit`` never reads a file: load saved
    edges with ``RFMScorer.from_edges(path)`` or ``RFMScorer(edges=read_edges(path))``.

    ``transform`` of a table adds ``r_score, f_score, m_score`` and ``rfm_code``; of a numpy array it
    returns the ``(n, 3)`` Int8 score matrix (recency, frequency, monetary).

    Fitted attributes: ``edges_`` ({dimension: {"column", "edges", "scores", "reverse"}}),
    ``degenerate_`` ({dimension: message} for dimensions with fewer than ``bins`` levels),
    ``n_fit_`` (rows of the reference table; None for frozen edges), ``n_features_in_`` (3 for a
    table, the array width for an array) and ``feature_names_in_`` (the measure columns of a table).

    >>> import polars as pl
    >>> t = pl.DataFrame({"days_since_last": [3, 3, 40], "n_orders": [1, 1, 1],
    ...                   "total_spend": [5.0, 5.0, 80.0]})
    >>> s = RFMScorer(bins=5).fit(t)
    >>> s.transform(t)["rfm_code"].to_list()   # ties share scores; n_orders is constant -> 3
    ['531', '531', '135']
    >>> sorted(s.degenerate_)
    ['frequency', 'monetary', 'recency']
    >>> import numpy as np
    >>> RFMScorer(recency=0, frequency=1, monetary=2).fit_transform(np.array([[3, 1, 5.0], [40, 9, 80]])).tolist()
    [[5, 1, 1], [1, 5, 5]]
    """

    def __init__(
        self,
        *,
        bins: int = 5,
        recency: str | int = "days_since_last",
        frequency: str | int = "n_orders",
        monetary: str | int = "total_spend",
        edges: Mapping[str, Any] | None = None,
        cuts: Any = None,
        thresholds: Any = None,
        filters: Mapping[str, Mapping[str, float]] | None = None,
    ) -> None:
        self.bins = bins
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary
        self.edges = edges
        self.cuts = cuts
        self.thresholds = thresholds
        self.filters = filters

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True  # null / NaN measures score 1 (the worst), by design
        tags.transformer_tags.preserves_dtype = []  # scores are small integers whatever the input dtype
        return tags

    def measure_bins(self) -> dict[str, int]:
        """The number of scores of each measure, e.g. ``{"recency": 5, "frequency": 3, "monetary": 5}``.

        >>> RFMScorer(bins={"frequency": 3}).measure_bins()
        {'recency': 5, 'frequency': 3, 'monetary': 5}
        """
        return self._dim_bins()

    # -- helpers ---------------------------------------------------------------------------
    def _check_bins(self) -> int:
        """The common bin count (the largest per-measure count when they differ); checks every option."""
        return max(self._dim_bins().values())

    def _per_measure(self, value: Any, name: str, config_key: str) -> dict[str, Any]:
        """``value`` (one setting for all measures or a mapping per measure) as {dimension: value}."""
        if value is None:
            return {}
        if isinstance(value, Mapping):
            unknown = sorted(str(k) for k in value if k not in DIMS)
            if unknown:
                raise ConfigError(f"RFMScorer: {name} names unknown measure(s) {unknown}. Fix: key {config_key} by "
                                  f"{', '.join(DIMS)}, or give one value for all three.")
            return {k: v for k, v in value.items() if v is not None}
        return {dim: value for dim in DIMS}

    def _cut_lists(self) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
        """Checked percentile cuts and value thresholds per dimension."""
        out = []
        for name, key, unit in (("cuts", "rfm.percentiles", "percentile"), ("thresholds", "rfm.thresholds", "value")):
            per = {}
            for dim, lst in self._per_measure(getattr(self, name), name, key).items():
                ok = (isinstance(lst, (list, tuple, np.ndarray)) and 1 <= len(lst) <= 9
                      and all(isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)
                              and np.isfinite(x) for x in lst)
                      and all(a < b for a, b in zip(lst, lst[1:])))
                if ok and name == "cuts":
                    ok = all(0 < x < 1 for x in lst)
                if not ok:
                    rng = " in (0, 1)" if name == "cuts" else ""
                    raise ConfigError(f"RFMScorer: {name} for {dim} is {lst!r}, which is not a list of 1 to 9 strictly "
                                      f"increasing finite {unit} cut points{rng}. Fix: set {key} like "
                                      f"{'[0.2, 0.5, 0.8]' if name == 'cuts' else '[30, 90, 180]'}.")
                per[dim] = [float(x) for x in lst]
            out.append(per)
        cuts, thresholds = out
        both = sorted(set(cuts) & set(thresholds))
        if both:
            raise ConfigError(f"RFMScorer: {both} have both percentile cuts and value thresholds. Fix: give each "
                              "measure only one of rfm.percentiles / rfm.thresholds.")
        return cuts, thresholds

    def _dim_bins(self) -> dict[str, int]:
        """The number of scores of each dimension (from ``bins``, or ``len(cuts) + 1``)."""
        explicit = isinstance(self.bins, Mapping)
        given = self._per_measure(self.bins, "bins", "rfm.bins")
        out = {}
        for dim in DIMS:
            b = given.get(dim, 5)
            if isinstance(b, bool) or b not in ALLOWED_BINS:
                raise ConfigError(
                    f"RFMScorer: bins={self.bins!r} is not supported. Fix: set rfm.bins to one of "
                    f"{list(ALLOWED_BINS)}, or a mapping of recency/frequency/monetary to those counts."
                )
            out[dim] = int(b)
        cuts, thresholds = self._cut_lists()
        for dim, lst in (cuts | thresholds).items():
            n = len(lst) + 1
            if explicit and dim in self.bins and out[dim] != n:
                raise ConfigError(f"RFMScorer: bins for {dim} is {out[dim]} but its {len(lst)} cut point(s) make "
                                  f"{n} scores. Fix: set bins for {dim} to {n} or leave it out.")
            out[dim] = n
        return out

    def _filter_specs(self) -> list[tuple[str, str, float]]:
        """Checked filters as (column, "min"|"max", bound)."""
        if self.filters is None:
            return []
        if not isinstance(self.filters, Mapping):
            raise ConfigError(f"RFMScorer: filters must map a column to {{min: ..., max: ...}}, got "
                              f"{self.filters!r}. Fix: set rfm.filters like {{total_spend: {{min: 0}}}}.")
        out = []
        for key, spec in self.filters.items():
            col = str(self._columns()[key]) if key in DIMS else str(key)
            if not isinstance(spec, Mapping) or not spec or any(k not in ("min", "max") for k in spec) or not all(
                    isinstance(v, (int, float)) and not isinstance(v, bool) and v == v for v in spec.values()):
                raise ConfigError(f"RFMScorer: filter for {key!r} is {spec!r}, not a mapping of min and/or max to "
                                  "numbers. Fix: write e.g. {min: 0, max: 10000}.")
            if "min" in spec and "max" in spec and spec["min"] > spec["max"]:
                raise ConfigError(f"RFMScorer: filter for {key!r} has min {spec['min']} > max {spec['max']}. "
                                  "Fix: swap them.")
            out += [(col, k, float(spec[k])) for k in ("min", "max") if k in spec]
        return out

    def _reason_expr(self, specs: list[tuple[str, str, float]]) -> pl.Expr:
        """The first filter a row fails, as text (null when it passes every filter)."""
        reason = pl.lit(None, dtype=pl.String)
        for col, kind, bound in reversed(specs):
            x = pl.col(col).cast(pl.Float64)
            bad = (x < bound) if kind == "min" else (x > bound)
            text = f"{col} {'<' if kind == 'min' else '>'} {bound:g} ({kind} filter)"
            reason = pl.when(bad.fill_null(False)).then(pl.lit(text)).otherwise(reason)
        return reason

    def _columns(self) -> dict[str, Any]:
        return {"recency": self.recency, "frequency": self.frequency, "monetary": self.monetary}

    def _positional(self) -> bool:
        """True when the measures are column positions (ints), False for names; ConfigError for a mix."""
        cols = list(self._columns().values())
        if all(isinstance(c, str) for c in cols):
            return False
        if all(isinstance(c, (int, np.integer)) and not isinstance(c, bool) and c >= 0 for c in cols):
            return True
        raise ConfigError(f"RFMScorer: recency/frequency/monetary must be three column names or three column "
                          f"positions (ints >= 0), got {cols}. Fix: set rfm.recency/frequency/monetary to names.")

    def _table(self, X: Any, where: str, reset: bool) -> pl.DataFrame | pl.LazyFrame:
        """The input as a polars table holding the measure columns (an array's columns named by position)."""
        cols = self._columns()
        positional = self._positional()
        if isinstance(X, (pl.DataFrame, pl.LazyFrame)) or (hasattr(X, "columns") and hasattr(X, "to_numpy")):
            if positional:
                raise ConfigError(f"{where}: recency/frequency/monetary are column positions {list(cols.values())}, "
                                  "which apply to numpy arrays. Fix: give the column names for a table.")
            if not isinstance(X, (pl.DataFrame, pl.LazyFrame)):
                X = pl.from_pandas(X)  # pandas at a dependency boundary
            if reset:
                self.feature_names_in_ = np.array(list(cols.values()), dtype=object)
                self.n_features_in_ = len(cols)
            return X
        if not positional:
            raise DataError(f"{where}: a numpy array has no column names, so the measures {list(cols.values())} "
                            "cannot be found. Fix: pass a polars table, or give recency/frequency/monetary as "
                            "column positions (e.g. recency=0, frequency=1, monetary=2).")
        try:
            arr = check_array(X, dtype=np.float64, ensure_all_finite="allow-nan")
        except ValueError as exc:
            raise DataError(f"{where}: {exc} Fix: pass a 2-d array of numbers.") from None
        if reset:
            self.n_features_in_ = arr.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
        elif hasattr(self, "n_features_in_") and arr.shape[1] != self.n_features_in_:
            raise DataError(f"X has {arr.shape[1]} features, but {type(self).__name__} is expecting "
                            f"{self.n_features_in_} features as input. Fix: pass the columns used in fit.")
        if max(cols.values()) >= arr.shape[1]:
            raise DataError(f"{where}: X has {arr.shape[1]} feature(s) (columns), but the measures are read from "
                            f"positions {list(cols.values())}. Fix: pass an array holding those columns.")
        return pl.DataFrame({str(c): arr[:, c] for c in cols.values()})

    def _set_frozen(self, payload: Mapping[str, Any]) -> None:
        """Fitted attributes from frozen edges (the dict of :meth:`edges_dict`)."""
        if not isinstance(payload, Mapping):
            if isinstance(payload, (str, Path)):
                raise ConfigError(
                    f"RFMScorer: edges={str(payload)!r} is a path, but fit does not read files. Fix: load the edges "
                    "with RFMScorer.from_edges(path) or pass the data, RFMScorer(edges=read_edges(path))."
                )
            raise ConfigError(f"RFMScorer: edges must be the dict written by save_edges() or None, got "
                              f"{type(payload).__name__}. Fix: use read_edges(path) or RFMScorer.from_edges(path).")
        bins = payload.get("bins", self.bins)
        dims = payload.get("dimensions", payload)
        mine = self._dim_bins()
        saved = {dim: int((dims.get(dim) or {}).get("bins", bins[dim] if isinstance(bins, Mapping) and dim in bins
                                                     else (5 if isinstance(bins, Mapping) else bins)))
                 for dim in DIMS}
        if saved != mine:
            shown = (lambda b: b[DIMS[0]] if len(set(b.values())) == 1 else b)
            raise ConfigError(
                f"RFMScorer: frozen edges were learned with bins={shown(saved)} but the scorer has bins="
                f"{shown(mine)}. Fix: set rfm.bins to the value of the saved edges, or fit new edges "
                "(rfm.frozen_edges: null)."
            )
        edges: dict[str, dict] = {}
        for dim in DIMS:
            if dim not in dims:
                raise ModelError(f"frozen RFM edges: dimension '{dim}' missing. Fix: save the edges again with save_edges().")
            d = dims[dim]
            edges[dim] = {
                "column": self._columns()[dim],
                "edges": [float(e) for e in d["edges"]],
                "scores": [int(s) for s in d["scores"]],
                "reverse": dim == "recency",
            }
            if isinstance(self.bins, Mapping) or "bins" in d:
                edges[dim]["bins"] = saved[dim]
            if d.get("column") not in (None, edges[dim]["column"]):
                warnings.warn(
                    f"frozen RFM edges for {dim} were learned on column '{d['column']}' and are applied to "
                    f"'{edges[dim]['column']}'.",
                    UserWarning,
                    stacklevel=3,
                )
        self.edges_ = edges
        self.degenerate_ = _degenerate(edges, self.bins)
        self.n_fit_ = None

    # -- sklearn API -----------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> "RFMScorer":
        """Learn the edges from the reference table ``X`` (or keep the frozen ``edges``)."""
        dim_bins = self._dim_bins()
        cuts, thresholds = self._cut_lists()
        specs = self._filter_specs()
        table = self._table(X, "RFMScorer.fit", reset=True)
        if self.edges is not None:
            if cuts or thresholds:
                raise ConfigError("RFMScorer: frozen edges and percentile cuts / value thresholds were both given. "
                                  "Fix: use one of them (rfm.frozen_edges: null to cut anew).")
            self._set_frozen(self.edges)
            self.excluded_, self.excluded_reasons_ = 0, {}
            return self
        cols = {dim: str(c) for dim, c in self._columns().items()}
        df = _frame(table, list(dict.fromkeys(list(cols.values()) + [c for c, _, _ in specs])), "RFMScorer.fit")
        if df.height == 0:
            raise DataError("RFMScorer.fit: the reference table is empty. Fix: fit on a table with customers.")
        self.excluded_, self.excluded_reasons_ = 0, {}
        if specs:
            reason = df.select(self._reason_expr(specs).alias("r"))["r"]
            self.excluded_ = int(reason.is_not_null().sum())
            self.excluded_reasons_ = {str(k): int(v) for k, v in reason.drop_nulls().value_counts(sort=True).iter_rows()}
            df = df.filter(reason.is_null())
            if df.height == 0:
                raise DataError(f"RFMScorer.fit: the filters {dict(self.filters)} exclude every customer. "
                                "Fix: widen rfm.filters.")
        edges: dict[str, dict] = {}
        for dim, col in cols.items():
            b = dim_bins[dim]
            if dim in thresholds:
                e = list(thresholds[dim])
            elif dim in cuts:
                e = _cut_edges(df[col], cuts[dim])
            else:
                e = _learn_edges(df[col], b)
            edges[dim] = {"column": self._columns()[dim], "edges": e, "scores": _level_scores(len(e) + 1, b),
                          "reverse": dim == "recency"}
            if isinstance(self.bins, Mapping) or cuts or thresholds:
                edges[dim]["bins"] = b
        self.edges_ = edges
        self.degenerate_ = _degenerate(edges, self.bins)
        self.n_fit_ = df.height
        for dim, msg in self.degenerate_.items():
            warnings.warn(f"RFMScorer: {msg}", UserWarning, stacklevel=2)
        return self

    def transform(self, X: Any) -> Any:
        """Add ``r_score, f_score, m_score`` (Int8, 1..bins) and ``rfm_code`` to the table ``X``.

        ``rfm_code`` concatenates the three scores ("545"); with ``bins=10`` the scores are
        joined by ``-`` ("10-9-7") so codes stay unambiguous. For a numpy array, the ``(n, 3)``
        Int8 matrix of the three scores.
        """
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer.transform: the scorer is not fitted. Fix: call fit() first or use RFMScorer.from_edges(path).")
        array_input = not (isinstance(X, (pl.DataFrame, pl.LazyFrame))
                           or (hasattr(X, "columns") and hasattr(X, "to_numpy")))
        X = self._table(X, "RFMScorer.transform", reset=False)
        lazy = isinstance(X, pl.LazyFrame)
        names = [str(d["column"]) for d in self.edges_.values()]
        schema = X.collect_schema() if lazy else X.schema
        missing = [c for c in names if c not in schema]
        if missing:
            raise DataError(
                f"RFMScorer.transform: column(s) {missing} not in the table (columns: {list(schema)}). "
                "Fix: compute the customer feature table first or set rfm.recency/frequency/monetary."
            )
        specs = self._filter_specs()
        missing = [c for c, _, _ in specs if c not in schema]
        if missing:
            raise DataError(f"RFMScorer.transform: filter column(s) {missing} not in the table (columns: "
                            f"{list(schema)}). Fix: compute them first or change rfm.filters.")
        exprs = [
            _score_expr(str(d["column"]), d["edges"], d["scores"], d["reverse"], self._bins_of(d)).alias(SCORE_COLS[dim])
            for dim, d in self.edges_.items()
        ]
        if specs:  # excluded rows: null scores (and their reason), never dropped
            reason = self._reason_expr(specs)
            exprs = [pl.when(reason.is_null()).then(e).otherwise(pl.lit(None, dtype=pl.Int8)).alias(SCORE_COLS[dim])
                     for dim, e in zip(self.edges_, exprs)]
        if array_input:
            return X.select(exprs).to_numpy()
        r, f, m = (pl.col(c) for c in SCORE_COLS.values())
        if max(self._bins_of(d) for d in self.edges_.values()) >= 10:
            code = pl.concat_str([r.cast(pl.String), f.cast(pl.String), m.cast(pl.String)], separator="-")
        else:  # one digit per score: "545" as the number 545 written out (one cast instead of a concat)
            code = (r.cast(pl.Int32) * 100 + f.cast(pl.Int32) * 10 + m.cast(pl.Int32)).cast(pl.String)
        out = X.with_columns(exprs).with_columns(code.alias("rfm_code"))
        return out.with_columns(reason.alias("rfm_excluded")) if specs else out

    def _bins_of(self, d: Mapping[str, Any]) -> int:
        """The number of scores of one fitted dimension."""
        if "bins" in d:
            return int(d["bins"])
        return int(self.bins)  # fit / frozen edges store "bins" per dimension whenever they can differ

    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        """``fit(X).transform(X)``."""
        return self.fit(X, y).transform(X)

    # -- edges as data ---------------------------------------------------------------------
    def describe_edges(self) -> pl.DataFrame:
        """One row per (dimension, score level): ``dimension, column, level, lower, upper, score``.

        A value ``v`` gets the row's score when ``lower < v <= upper`` (null bound = unbounded).
        """
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer.describe_edges: not fitted. Fix: call fit() first.")
        rows = []
        for dim, d in self.edges_.items():
            e = d["edges"]
            for i, s in enumerate(d["scores"]):
                rows.append({
                    "dimension": dim,
                    "column": str(d["column"]),
                    "level": i,
                    "lower": e[i - 1] if i > 0 else None,
                    "upper": e[i] if i < len(e) else None,
                    "score": _final_scores(d["scores"], d["reverse"], self._bins_of(d))[i],
                })
        return pl.DataFrame(rows, schema={"dimension": pl.String, "column": pl.String, "level": pl.Int32,
                                          "lower": pl.Float64, "upper": pl.Float64, "score": pl.Int8})

    def edges_dict(self) -> dict[str, Any]:
        """The fitted edges as a JSON-ready dict (what :meth:`save_edges` writes)."""
        if not hasattr(self, "edges_"):
            raise ModelError("RFMScorer: not fitted. Fix: call fit() first.")
        return {
            "kind": "segmentation_lib.RFMScorer.edges",
            "version": 1,
            "bins": self.bins if not isinstance(self.bins, Mapping) else dict(self.bins),
            "dimensions": {
                dim: {"column": d["column"], "edges": d["edges"], "scores": d["scores"]}
                | ({"bins": d["bins"]} if "bins" in d else {})
                for dim, d in self.edges_.items()
            },
        }

    def save_edges(self, path: str | Path) -> Path:
        """Write the fitted edges as JSON (reuse them with ``RFMScorer.from_edges(path)``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.edges_dict(), indent=2) + "\n", encoding="utf-8")
        return path

    @classmethod
    def from_edges(cls, path: str | Path | Mapping[str, Any], **columns: str) -> "RFMScorer":
        """A fitted scorer with frozen edges from :meth:`save_edges` (a path, read here, or the dict).

        Column names default to the ones saved with the edges; override them by keyword. The
        scorer's ``edges`` parameter holds the edges as data, so ``clone`` gives the same scorer.
        """
        payload = read_edges(path) if isinstance(path, (str, Path)) else dict(path)
        dims = payload.get("dimensions", {})
        kw = {dim: dims.get(dim, {}).get("column") for dim in DIMS}
        kw = {k: v for k, v in kw.items() if v is not None and v != ""}
        kw.update(columns)
        bins = payload.get("bins", 5)
        if any("bins" in (dims.get(dim) or {}) for dim in DIMS):  # per-measure counts (bins mapping, cuts, thresholds)
            bins = {dim: int(dims[dim].get("bins", bins)) for dim in DIMS if dim in dims}
        scorer = cls(bins=dict(bins) if isinstance(bins, Mapping) else int(bins), edges=payload, **kw)
        scorer._check_bins()
        scorer._positional()
        scorer._set_frozen(payload)
        return scorer

    def __repr__(self) -> str:
        return (f"RFMScorer(bins={self.bins}, recency={self.recency!r}, frequency={self.frequency!r}, "
                f"monetary={self.monetary!r}, edges={'frozen' if self.edges is not None else None}"
                + "".join(f", {k}={getattr(self, k)!r}" for k in ("cuts", "thresholds", "filters")
                          if getattr(self, k) is not None) + ")")


def scorer_from_config(section: Mapping[str, Any]) -> RFMScorer:
    """An unfitted RFMScorer from the ``rfm`` section of a run configuration (frozen edges read when
    ``frozen_edges`` is set).

    >>> scorer_from_config({"bins": 4, "recency": "days_since_last", "frequency": "n_orders",
    ...                     "monetary": "total_spend"}).bins
    4
    """
    bins = dict(section["bins"]) if isinstance(section["bins"], Mapping) else int(section["bins"])
    return RFMScorer(bins=bins, recency=section["recency"], frequency=section["frequency"], monetary=section["monetary"],
                     edges=read_edges(section["frozen_edges"]) if section.get("frozen_edges") else None,
                     cuts=section.get("percentiles"), thresholds=section.get("thresholds"), filters=section.get("filters"))


def _degenerate(edges: Mapping[str, dict], bins: int) -> dict[str, str]:
    out = {}
    for dim, d in edges.items():
        levels = len(d["edges"]) + 1
        b = int(d.get("bins", bins))
        if levels < b:
            used = _final_scores(d["scores"], d["reverse"], b)
            out[dim] = (
                f"{dim} ('{d['column']}') has only {levels} distinct level(s) for {b} bins (ties or few "
                f"distinct values); levels are spread over the scores {sorted(set(used))} so the lowest and "
                f"highest levels keep the extreme scores."
            )
    return out


def read_edges(path: str | Path) -> dict[str, Any]:
    """The frozen-edges dict of an edges JSON written by :meth:`RFMScorer.save_edges`.

    Pass it as ``RFMScorer(edges=read_edges(path))`` (or use ``RFMScorer.from_edges(path)``).
    Missing file: ConfigError; not an edges file: ModelError.

    >>> read_edges("no-such-edges.json")
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.ConfigError: no-such-edges.json: frozen RFM edges file not found. \
Fix: point rfm.frozen_edges at an edges JSON written by an earlier run, or set it to null to learn new edges.
    """
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: frozen RFM edges file not found. Fix: point rfm.frozen_edges at an edges JSON "
                          "written by an earlier run, or set it to null to learn new edges.") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not a valid edges JSON ({exc}). Fix: write it with RFMScorer.save_edges().") from None
    if not isinstance(payload, dict) or "dimensions" not in payload:
        raise ModelError(f"{path}: not an RFM edges file (no 'dimensions'). Fix: write it with RFMScorer.save_edges().")
    return payload


def _frame(X: pl.DataFrame | pl.LazyFrame, columns: list[str], where: str) -> pl.DataFrame:
    schema = X.collect_schema() if isinstance(X, pl.LazyFrame) else X.schema
    missing = [c for c in columns if c not in schema]
    if missing:
        raise DataError(
            f"{where}: column(s) {missing} not in the table (columns: {list(schema)}). Fix: compute the "
            "customer feature table with customer_features() or set rfm.recency/frequency/monetary."
        )
    if isinstance(X, pl.LazyFrame):
        return X.select(columns).collect()
    return X.select(columns)
