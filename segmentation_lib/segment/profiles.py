"""Segment profiles and names: size, share, revenue share and feature averages per segment.

- ``segment_profiles``: mean / median of every feature and relative importance (segment mean /
  overall mean - 1) per segment; ``relative_importance`` gives the same numbers long or wide.
- ``name_segments``: plain-language names ("High value, frequent, recent"), unique, overridable.
- ``crosstab``: counts of one labelling against another (e.g. clusters x RFM segments).

>>> import polars as pl
>>> df = pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "total_spend": [10.0, 30.0, 100.0, 60.0]})
>>> segment_profiles(df, [1, 1, 0, 0]).select("segment", "size", "revenue_share").rows()
[(0, 2, 0.8), (1, 2, 0.2)]
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from segmentation_lib.segment.sizes import segment_sizes
from segmentation_lib.errors import ConfigError, DataError


#: plain-language labels of the canonical features (used in rules and names)
FEATURE_LABELS: dict[str, str] = {
    "days_since_last": "days since last purchase",
    "n_orders": "orders",
    "n_purchase_days": "purchase days",
    "total_spend": "total spend",
    "avg_order_value": "average order value",
    "mean_days_between": "mean days between orders",
    "tenure_days": "tenure in days",
}

ID_COLUMNS = ("customer_id",)


def labels_series(features: pl.DataFrame, labels: Any) -> pl.Series:
    if isinstance(labels, str):
        if labels not in features.columns:
            raise DataError(f"Feature table: label column '{labels}' not found. Fix: pass the labels or a column name.")
        s = features[labels]
    else:
        s = pl.Series("segment", np.asarray(labels) if not isinstance(labels, pl.Series) else labels)
    if s.len() != features.height:
        raise DataError(f"{s.len():,} labels were given for {features.height:,} customers. "
                        "Fix: pass one label per row of the feature table, in the same order.")
    return s.alias("segment")


def numeric_features(features: pl.DataFrame, exclude: Sequence[str] = ()) -> list[str]:
    """Numeric columns of ``features`` except ids and ``exclude``."""
    return [c for c, t in features.schema.items()
            if t.is_numeric() and c not in ID_COLUMNS and c not in exclude and c != "segment"]


def segment_profiles(features: pl.DataFrame, labels: Any, names: Mapping[int, str] | None = None,
                     revenue_col: str = "total_spend", columns: Sequence[str] | None = None) -> pl.DataFrame:
    """One row per segment: ``segment, [name], size, share, [revenue_share], mean_*, median_*, rel_*``.

    ``labels`` is one label per row (array / Series) or the name of a column of ``features``.
    ``rel_<f>`` = segment mean / overall mean - 1 (null when the overall mean is 0).
    ``size``, ``share`` and ``revenue_share`` (when ``revenue_col`` is one of the columns) follow
    :func:`segmentation_lib.segment.sizes.segment_sizes` (revenue share null when total revenue <= 0).
    """
    if isinstance(features, pl.LazyFrame):
        features = features.collect()
    seg = labels_series(features, labels)
    cols = list(columns) if columns is not None else numeric_features(features, exclude=[seg.name] if isinstance(labels, str) else [])
    if isinstance(labels, str):
        cols = [c for c in cols if c != labels]
    df = features.select(cols).with_columns(seg)
    overall = df.select(pl.col(cols).cast(pl.Float64).mean()).row(0, named=True) if cols else {}
    aggs = [pl.col(c).cast(pl.Float64).mean().alias(f"mean_{c}") for c in cols]
    aggs += [pl.col(c).cast(pl.Float64).median().alias(f"median_{c}") for c in cols]
    has_rev = revenue_col in cols
    out = segment_sizes(df, "segment", revenue_col if has_rev else None, aggs=aggs).rename({"customers": "size"})
    extra = [(pl.col(f"mean_{c}") / overall[c] - 1 if overall[c] else pl.lit(None, pl.Float64)).alias(f"rel_{c}")
             for c in cols]
    out = out.with_columns(extra).drop("revenue", strict=False)
    lead = ["segment", "size", "share"] + (["revenue_share"] if has_rev else [])
    out = out.select(lead + [c for c in out.columns if c not in lead])
    if names is not None:
        out = out.with_columns(pl.col("segment").replace_strict({int(k): v for k, v in names.items()},
                                                                default=None, return_dtype=pl.String).alias("name"))
        out = out.select(["segment", "name"] + [c for c in out.columns if c not in ("segment", "name")])
    return out


def relative_importance(profiles: pl.DataFrame, form: str = "long") -> pl.DataFrame:
    """Relative importance (segment mean / overall mean - 1) from ``segment_profiles``, for a heatmap.

    ``form="long"``: ``segment, [name], feature, relative_importance``; ``form="wide"``: one
    column per feature.
    """
    rel = [c for c in profiles.columns if c.startswith("rel_")]
    keys = [c for c in ("segment", "name") if c in profiles.columns]
    wide = profiles.select(keys + rel).rename({c: c[4:] for c in rel})
    if form == "wide":
        return wide
    if form != "long":
        raise ConfigError(f"relative_importance form '{form}' is unknown. Fix: use 'long' or 'wide'.")
    return wide.unpivot(index=keys, variable_name="feature", value_name="relative_importance")


def crosstab(a: Any, b: Any, a_name: str = "a", b_name: str = "b", normalize: str | None = None) -> pl.DataFrame:
    """Counts of ``a`` (rows) by ``b`` (columns); ``normalize="row"`` gives row shares.

    >>> crosstab([0, 0, 1], ["x", "y", "y"], "cluster", "rfm").rows()
    [(0, 1, 1), (1, 0, 1)]
    """
    sa = a.alias(a_name) if isinstance(a, pl.Series) else pl.Series(a_name, np.asarray(a))
    sb = b.alias(b_name) if isinstance(b, pl.Series) else pl.Series(b_name, np.asarray(b))
    if sa.len() != sb.len():
        raise DataError(f"crosstab: {sa.len():,} values against {sb.len():,}. Fix: pass two labellings of the same customers.")
    df = pl.DataFrame([sa, sb.cast(pl.String)])
    counts = df.group_by(a_name, b_name).len()
    wide = counts.pivot(on=b_name, index=a_name, values="len", sort_columns=True).fill_null(0).sort(a_name)
    value_cols = [c for c in wide.columns if c != a_name]
    if normalize == "row":
        wide = wide.with_columns(pl.col(value_cols) / pl.sum_horizontal(value_cols))
    elif normalize is not None:
        raise ConfigError(f"crosstab normalize '{normalize}' is unknown. Fix: use None or 'row'.")
    return wide


# --------------------------------------------------------------------------------------------
# names
# --------------------------------------------------------------------------------------------
def _level(ratio: float | None, low: str, mid: str, high: str, inverse: bool = False) -> str | None:
    """Word for a segment mean / overall mean ratio: >= 1.5 high, < 0.67 low (reversed if inverse)."""
    if ratio is None or not np.isfinite(ratio):
        return None
    if inverse:
        ratio = 1.0 / ratio if ratio > 0 else np.inf
    if ratio >= 1.5:
        return high
    if ratio < 1 / 1.5:
        return low
    return mid


def name_segments(profiles: pl.DataFrame, overrides: Mapping[Any, str] | None = None) -> dict[int, str]:
    """Plain-language, unique name per segment from ``segment_profiles`` output.

    Words come from the segment mean relative to the overall mean (ratio >= 1.5 is "high", below
    1/1.5 is "low"): value from ``total_spend`` (High / Mid / Low value), frequency from
    ``n_orders`` (frequent / regular / infrequent; "one-time" when the mean is below 1.5 orders),
    recency from ``days_since_last`` (recent / cooling / lapsed). Names that collide get the tenure
    (new / established / long-standing), then basket size, then a number. ``overrides`` maps
    segment id (int or digit string) -> name and wins.

    >>> p = pl.DataFrame({"segment": [0, 1], "rel_total_spend": [1.0, -0.8], "rel_n_orders": [1.0, -0.8],
    ...                   "mean_n_orders": [9.0, 1.0], "rel_days_since_last": [-0.7, 1.2]})
    >>> name_segments(p)
    {0: 'High value, frequent, recent', 1: 'Low value, one-time, lapsed'}
    """
    rows = profiles.sort("segment").to_dicts()

    def ratio(row: dict, f: str) -> float | None:
        v = row.get(f"rel_{f}")
        return None if v is None else float(v) + 1.0

    names: dict[int, list[str]] = {}
    for row in rows:  # one iteration per segment (a handful)
        words = []
        value = _level(ratio(row, "total_spend"), "Low value", "Mid value", "High value")
        freq = _level(ratio(row, "n_orders"), "infrequent", "regular", "frequent")
        if row.get("mean_n_orders") is not None and float(row["mean_n_orders"]) < 1.5:
            freq = "one-time"
        rec = _level(ratio(row, "days_since_last"), "lapsed", "cooling", "recent", inverse=True)
        words = [w for w in (value, freq, rec) if w]
        names[int(row["segment"])] = words or [f"Segment {int(row['segment'])}"]
    extra = {int(r["segment"]): [w for w in (
        _level(ratio(r, "tenure_days"), "new", "established", "long-standing"),
        _level(ratio(r, "avg_order_value"), "small baskets", "mid baskets", "big baskets")) if w]
        for r in rows}
    final = {s: ", ".join(w) for s, w in names.items()}
    for step in range(2):
        dup = _duplicates(final)
        for s in dup:
            if len(extra[s]) > step:
                names[s] = names[s] + [extra[s][step]]
        final = {s: ", ".join(w) for s, w in names.items()}
    for s in sorted(_duplicates(final)):
        same = sorted(t for t in final if final[t] == final[s])
        if s != same[0]:
            final[s] = f"{final[s]} ({same.index(s) + 1})"
    if overrides:
        for key, value in overrides.items():
            try:
                seg = int(key)
            except (TypeError, ValueError):
                raise ConfigError(f"clustering.names key {key!r} is not a segment number. "
                                  "Fix: use e.g. {0: 'Whales'}.") from None
            if seg not in final:
                raise ConfigError(f"clustering.names sets segment {seg}, but the segments are {sorted(final)}. "
                                  "Fix: name only existing segments.")
            final[seg] = str(value)
        if len(set(final.values())) != len(final):
            raise ConfigError(f"clustering.names makes two segments share a name: {final}. Fix: use unique names.")
    return final


def _duplicates(names: Mapping[int, str]) -> list[int]:
    seen: dict[str, list[int]] = {}
    for s, n in names.items():
        seen.setdefault(n, []).append(s)
    return [s for group in seen.values() if len(group) > 1 for s in group]
