"""RFM scores, segment maps, rule tiers, value/engagement cells and cluster scores on Spark.

Everything is learned as a handful of numbers on the engine and applied as column expressions,
so no step ranks customers through one partition (no unpartitioned window, no NTILE):

- **RFM edges** (:func:`fit_rfm`): per measure one aggregate (distinct count, maximum and the
  ``k / bins`` percentiles: exact ``percentile``, or ``percentile_approx`` with ``accuracy``: rank
  error at most ``n / accuracy``); the fitted scorer is the kit's :class:`RFMScorer`, fitted on
  the "skeleton" of those numbers, so the rules of ``segment/rfm.py`` (duplicates, spread levels,
  ``degenerate_``, warnings) are the same code. Frozen edges (``rfm.frozen_edges``) and value
  thresholds need no pass at all, and are the exact route when approximate percentiles are used.
- **Scores** (:func:`rfm_scores`): ``level = #(edges < v)`` and the score table of
  :meth:`RFMScorer.describe_edges`, as ``CASE`` expressions; the map is a broadcast join of
  :meth:`SegmentMap.table`.
- **Rules** (:func:`rule_segments`): the configured conditions, checked by the kit's parser
  (``segment/rules.py``), evaluated as Spark SQL expressions, first match wins.
- **Clusters** (:func:`cluster_scores`): a model fitted on the driver (on :func:`fit_sample`)
  scores every customer: k-means-family models as plain column expressions (fills, log1p,
  clipping, scaling, nearest centre, label order), any other model through Arrow batches
  (``mapInArrow``) running the model's own ``predict_with_noise``.

>>> scorer = fit_rfm(features, make_rfm_scorer(cfg))   # doctest: +SKIP
>>> scored = rfm_segments(rfm_scores(features, scorer), "default", bins=5)   # doctest: +SKIP
"""
from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.preprocessing import AUTO_FILLS
from segmentation_lib.segment.rfm import DIMS, SCORE_COLS, RFMScorer
from segmentation_lib.segment.rfm_maps import load_segment_map
from segmentation_lib.segment.rules import parse_rules, rule_expr
from segmentation_lib.segment.sampling import smallest_keys_per_group
from segmentation_lib.segment.value_engagement import VALUE_ENGAGEMENT_LABELS
from segmentation_lib.engine.spark_read import exact_quantiles, to_polars

#: ``percentile_approx`` accuracy used when approximate edges are asked for without one
DEFAULT_ACCURACY = 10_000


def _bins_per_dim(scorer: RFMScorer) -> dict[str, int]:
    bins = scorer.bins
    return {d: int(bins.get(d, 5)) if isinstance(bins, Mapping) else int(bins) for d in DIMS}


def _quantiles(sdf, columns: Mapping[str, str], qs: Mapping[str, list[float]], accuracy: int | None) -> dict[str, list]:
    """Quantiles per measure: exact (as polars, :func:`exact_quantiles`) or ``percentile_approx``."""
    from pyspark.sql import functions as F

    if accuracy is None:
        merged: dict[str, list[float]] = {}
        offsets = {}
        for k, col in columns.items():  # two measures may share a column
            offsets[k] = len(merged.setdefault(col, []))
            merged[col] += list(qs[k])
        got = exact_quantiles(sdf, merged)
        return {k: got[col][offsets[k]:offsets[k] + len(qs[k])] for k, col in columns.items()}
    aggs = []
    for i, (k, col) in enumerate(columns.items()):
        x = F.col(f"`{col}`").cast("double")
        aggs.append(F.percentile_approx(F.when(~F.isnan(x), x), qs[k], int(accuracy)).alias(f"a{i}"))
    row = sdf.agg(*aggs).first()
    return {k: [None if v is None else float(v) for v in (row[f"a{i}"] or [None] * len(qs[k]))]
            for i, k in enumerate(columns)}


def fit_rfm(features, scorer: RFMScorer, accuracy: int | None = None) -> RFMScorer:
    """``scorer`` fitted on the Spark feature table (its edges learned on the engine).

    ``accuracy=None``: exact linear percentiles (as polars); an integer: ``percentile_approx`` with
    that accuracy (rank error <= n / accuracy, one pass with bounded memory), for very large tables;
    freeze the edges (``save_edges`` / ``rfm.frozen_edges``) to score later runs on exactly the same
    scale. Frozen edges and thresholds are used as they are. ``rfm.percentiles`` and
    ``rfm.filters`` are not available on the engine yet (ConfigError).
    """
    from pyspark.sql import functions as F

    if scorer.cuts is not None or scorer.filters is not None:
        raise ConfigError("rfm.percentiles / rfm.filters are not available with engine.kind: spark yet. Fix: use rfm.bins "
                          "or rfm.thresholds, or run with engine.kind: polars.")
    cols = {d: str(c) for d, c in zip(DIMS, (scorer.recency, scorer.frequency, scorer.monetary))}
    missing = [c for c in cols.values() if c not in features.columns]
    if missing:
        raise DataError(f"fit_rfm: column(s) {missing} not in the feature table (columns: {features.columns}). Fix: "
                        "compute it with engine.spark_features.customer_features or set rfm.recency/frequency/monetary.")
    if scorer.edges is not None:  # frozen edges: nothing to learn
        return scorer.fit(pl.DataFrame({c: [0.0] for c in cols.values()}))
    bins = _bins_per_dim(scorer)
    aggs, n = [], features.count()
    if n == 0:
        raise DataError("fit_rfm: the feature table is empty. Fix: fit on a table with customers.")
    for d, col in cols.items():
        x = F.col(f"`{col}`").cast("double")
        x = F.when(~F.isnan(x), x)
        aggs += [F.count_distinct(x).alias(f"{d}_n"), F.max(x).alias(f"{d}_max")]
    row = features.agg(*aggs).first().asDict()
    learn = {d: c for d, c in cols.items() if row[f"{d}_n"] > bins[d]}
    if learn:
        qs = _quantiles(features, learn, {d: [k / bins[d] for k in range(1, bins[d])] for d in learn}, accuracy)
        row.update({f"{d}_q": v for d, v in qs.items()})
    skeleton: dict[str, list[float | None]] = {}
    few = [d for d in DIMS if row[f"{d}_n"] <= bins[d]]
    distinct = {}
    if few:  # at most `bins` values each: every distinct value is its own level
        got = features.agg(*[F.array_sort(F.collect_set(F.when(~F.isnan(F.col(f"`{cols[d]}`").cast("double")),
                                                               F.col(f"`{cols[d]}`").cast("double")))).alias(d)
                             for d in few]).first().asDict()
        distinct = {d: [float(v) for v in got[d]] for d in few}
    for d in DIMS:
        if d in distinct:
            skeleton[d] = distinct[d]
        else:
            top = float(row[f"{d}_max"])
            skeleton[d] = sorted({float(q) for q in row[f"{d}_q"] if q < top}) + [top]
    # the kit's own rules, on the learned numbers: their distinct values are at most `bins`, so
    # each becomes a level and the edges are exactly the percentiles below the maximum
    width = max(len(v) for v in skeleton.values()) or 1
    frame = pl.DataFrame({cols[d]: (v + [v[-1]] * (width - len(v))) if v else [None] * width
                          for d, v in skeleton.items()}, schema={c: pl.Float64 for c in cols.values()})
    fitted = scorer.fit(frame)
    fitted.n_fit_ = int(n)
    return fitted


def rfm_scores(features, scorer: RFMScorer):
    """``features`` with ``r_score, f_score, m_score`` (tinyint) and ``rfm_code`` from a fitted scorer."""
    from pyspark.sql import functions as F

    table = scorer.describe_edges()
    per_dim = _bins_per_dim(scorer)
    dims = scorer.edges_dict()["dimensions"]
    bins = max(int(dims[d]["bins"]) if "bins" in dims[d] else per_dim[d] for d in DIMS)
    exprs = {}
    for dim in DIMS:
        rows = table.filter(pl.col("dimension") == dim).sort("level")
        col = rows["column"][0]
        x = F.col(f"`{col}`").cast("double")
        level = F.lit(0)
        for e in rows["upper"].drop_nulls().to_list():
            level = level + (x > F.lit(float(e))).cast("int")
        score = None
        for lv, s in zip(rows["level"].to_list(), rows["score"].to_list()):
            score = F.when(level == lv, F.lit(int(s))) if score is None else score.when(level == lv, F.lit(int(s)))
        exprs[SCORE_COLS[dim]] = F.when(x.isNull() | F.isnan(x), F.lit(1)).otherwise(score).cast("tinyint")
    out = features.select("*", *[e.alias(n) for n, e in exprs.items()])
    r, f, m = (F.col(c) for c in SCORE_COLS.values())
    if bins >= 10:
        code = F.concat_ws("-", r.cast("string"), f.cast("string"), m.cast("string"))
    else:
        code = (r.cast("int") * 100 + f.cast("int") * 10 + m.cast("int")).cast("string")
    return out.withColumn("rfm_code", code)


def rfm_segments(scored, segment_map: Any = "default", bins: int = 5, segment_col: str = "rfm_segment"):
    """``scored`` with the named segment of the map (a broadcast join of the map's code table)."""
    from pyspark.sql import functions as F

    table = load_segment_map(segment_map, bins=bins).table().rename({"rfm_segment": segment_col})
    keys = [c for c in table.columns if c != segment_col]
    codes = F.broadcast(scored.sparkSession.createDataFrame(table.to_arrow()))
    return scored.join(codes, on=keys, how="left")


def value_engagement(features, value: str = "total_spend", engagement: str = "n_orders", value_cut: float = 0.5,
                     engagement_cut: float = 0.5, absolute: bool = False, col: str = "value_engagement",
                     accuracy: int | None = None):
    """``features`` with the value/engagement cell (``segment/value_engagement.py``); the cuts are
    exact (or approximate, ``accuracy``) percentiles of the table, or values with ``absolute``."""
    from pyspark.sql import functions as F

    for name in (value, engagement):
        if name not in features.columns:
            raise DataError(f"value_engagement: column '{name}' not in the table (columns: {features.columns}). Fix: "
                            "set rfm.value_engagement.value/engagement to feature columns.")
    v, e = F.col(f"`{value}`").cast("double"), F.col(f"`{engagement}`").cast("double")
    if absolute:
        v_cut, e_cut = float(value_cut), float(engagement_cut)
    else:
        got = _quantiles(features, {"v": value, "e": engagement}, {"v": [float(value_cut)], "e": [float(engagement_cut)]},
                         accuracy)
        v_cut, e_cut = got["v"][0], got["e"][0]
    hv = F.coalesce(v > F.lit(v_cut), F.lit(False)) if v_cut is not None else F.lit(False)
    he = F.coalesce(e > F.lit(e_cut), F.lit(False)) if e_cut is not None else F.lit(False)
    names = VALUE_ENGAGEMENT_LABELS
    cell = (F.when(hv & he, F.lit(names[True, True])).when(hv, F.lit(names[True, False]))
            .when(he, F.lit(names[False, True])).otherwise(F.lit(names[False, False])))
    return features.withColumn(col, cell)


def rule_segments(features, rules_config: Mapping[str, Any], validate: bool = True):
    """``features`` with the rule segment column (first matching rule wins, else the default).

    Conditions are checked by the kit's parser (unknown columns: ConfigError) and evaluated as Spark
    SQL; with ``validate`` the rules that match no customer, or never win, are warned about as on
    one machine (one aggregate).
    """
    from pyspark.sql import functions as F

    rules = parse_rules(rules_config.get("rules"))
    default = rules_config.get("default")
    if default is None or str(default).strip() == "":
        raise ConfigError("rules: no 'default' segment. Fix: set rules.default to the name for customers no rule "
                          "matches (for example 'default: Bronze').")
    segment_col = str(rules_config.get("segment_col") or "segment")
    columns = list(features.columns)
    conds = []
    for r in rules:
        rule_expr(r, columns)  # parse and column check (ConfigError naming the rule)
        try:
            conds.append(F.coalesce(F.expr(r.when), F.lit(False)))
        except Exception as exc:
            raise ConfigError(f"rule '{r.name}': condition {r.when!r} is not valid Spark SQL ({str(exc).splitlines()[0]}). "
                              "Fix: write a comparison such as \"total_spend >= 1000\".") from None
    if validate:
        taken, aggs = F.lit(False), []
        for i, cnd in enumerate(conds):
            aggs += [F.sum(cnd.cast("long")).alias(f"m{i}"), F.sum((cnd & ~taken).cast("long")).alias(f"a{i}")]
            taken = taken | cnd
        row = features.agg(*aggs).first().asDict()
        for i, r in enumerate(rules):
            if not row[f"m{i}"]:
                warnings.warn(f"rule '{r.name}' matches no customer in this table.", UserWarning, stacklevel=2)
            elif not row[f"a{i}"]:
                warnings.warn(f"rule '{r.name}' never wins: every customer it matches is taken by an earlier rule "
                              "(first match wins). Fix: move it before the broader rule or narrow the earlier one.",
                              UserWarning, stacklevel=2)
    chain = None
    for r, cnd in zip(rules, conds):
        chain = F.when(cnd, F.lit(r.name)) if chain is None else chain.when(cnd, F.lit(r.name))
    return features.withColumn(segment_col, chain.otherwise(F.lit(str(default))))


def surrogate_segments(features, surrogate, id_col: str = "customer_id"):
    """The surrogate rules' SQL (``SurrogateRules.to_sql``, the file ``segment_rules.sql``) run by Spark
    on ``features``: ``id_col, segment, segment_name`` per customer."""
    spark = features.sparkSession
    view = "segmentation_kit_features"
    features.createOrReplaceTempView(view)
    key = "spark.sql.ansi.doubleQuotedIdentifiers"
    before = spark.conf.get(key, "false")
    spark.conf.set(key, "true")  # the SQL quotes column names the standard way ("col")
    try:
        return spark.sql(surrogate.to_sql(table=view, id_col=id_col)).localCheckpoint()
    finally:
        spark.conf.set(key, before)


# --------------------------------------------------------------------------- clustering


def fit_sample(features, size: int, seed: int, strata: str = "total_spend", n_bins: int = 10) -> pl.DataFrame:
    """A seeded sample of at most ``size`` customers on the driver (sorted by customer id), stratified by
    ``strata`` in ``n_bins`` quantile bins with quotas in proportion (``segment/sampling.py``).

    Every customer when there are at most ``size`` (then a model fitted on it is the model of the
    single-machine path). Otherwise each customer gets a key from a seeded hash of its id; each bin
    keeps the customers with the smallest keys up to its quota (largest remainders), computed from
    approximate quantile bins and a filter that oversamples, so only about ``1.3 * size`` rows move.
    """
    from pyspark.sql import functions as F

    from segmentation_lib.features.common import sort_by_text

    n = features.count()
    if n <= size:
        return sort_by_text(to_polars(features), "customer_id")
    x = F.coalesce(F.col(f"`{strata}`").cast("double"), F.lit(float("-inf")))
    edges = features.agg(F.percentile_approx(x, [k / n_bins for k in range(1, n_bins)], DEFAULT_ACCURACY).alias("e")).first()["e"]
    level = F.lit(0)
    for e in edges:
        level = level + (x > F.lit(float(e))).cast("int")
    key = F.shiftrightunsigned(F.xxhash64(F.col("customer_id"), F.lit(int(seed))), 11).cast("double") / float(1 << 53)
    keyed = features.select("*", level.alias("_bin"), key.alias("_key"))
    counts = {int(r["_bin"]): int(r["n"]) for r in keyed.groupBy("_bin").agg(F.count(F.lit(1)).alias("n")).collect()}
    c = np.array([counts.get(b, 0) for b in range(n_bins)], dtype=np.int64)
    quota = np.floor(c * size / n).astype(np.int64)
    frac = c * size / n - quota
    quota[np.argsort(-frac, kind="stable")[: size - quota.sum()]] += 1
    factor = 1.3
    while True:
        limits = {b: min(1.0, factor * quota[b] / c[b] + 1e-9) if c[b] else 0.0 for b in range(n_bins)}
        cond = None
        for b, lim in limits.items():
            term = (F.col("_bin") == b) & (F.col("_key") <= F.lit(lim))
            cond = term if cond is None else cond | term
        got = to_polars(keyed.filter(cond))
        have = got.group_by("_bin").len()
        have = dict(zip(have["_bin"].to_list(), have["len"].to_list()))
        if all(have.get(b, 0) >= quota[b] for b in range(n_bins)) or factor > 64:
            break
        factor *= 2
    idx = smallest_keys_per_group(got["_bin"].to_numpy().astype(np.int64), quota, got["_key"].to_numpy())
    return sort_by_text(got[idx].drop("_bin", "_key"), "customer_id")


def _kmeans_centres(seg) -> np.ndarray | None:
    model = getattr(seg, "model_", None)
    for attr in ("cluster_centers_", "centers_"):
        if hasattr(model, attr) and seg.algorithm in ("kmeans", "minibatch_kmeans", "agglomerative"):
            return np.asarray(getattr(model, attr), dtype=np.float64)
    return None


def kmeans_columns(seg, columns: list[str]) -> tuple[Any, Any] | None:
    """The fitted k-means-family segmenter as two Spark columns ``(cluster, is_noise)``: fills, log1p,
    clipping, scaling and the nearest centre (first on ties, as numpy's argmin), then the label
    order; ``columns`` are the feature table's (fill sources). ``None`` for other models (use :func:`cluster_scores`, which runs them on Arrow batches)."""
    from pyspark.sql import functions as F

    centres = _kmeans_centres(seg)
    if centres is None:
        return None
    select, log1p, clip, scale = (seg.preprocessor_.named_steps[s] for s in ("select", "log1p", "clip", "scale"))
    if getattr(select, "encoder_", None) is not None:  # encoded text features (clustering.encodings): the Arrow path
        return None
    names = [str(f) for f in select.feature_names_in_]
    fills = getattr(select, "fill_values_", {}) if select.fill_null == "auto" else {}
    inner = scale.scaler_
    if scale.scaler == "standard":
        centre = inner.mean_ if inner.with_mean else np.zeros(len(names))
        spread = inner.scale_ if inner.with_std else np.ones(len(names))
    else:
        centre = inner.center_ if inner.with_centering else np.zeros(len(names))
        spread = inner.scale_ if inner.with_scaling else np.ones(len(names))
    zs = []
    for j, name in enumerate(names):
        x = F.col(f"`{name}`").cast("double")
        rule = AUTO_FILLS.get(name) if select.fill_null == "auto" else None
        value = None  # the fill of ``fill_exprs``: the source column, else the training fallback
        if isinstance(rule, str):
            value = F.col(f"`{rule}`").cast("double") if rule in columns else (
                F.lit(float(fills[name])) if name in fills else None)
        elif rule is not None:
            value = F.lit(float(rule))
        if value is not None:
            x = F.when(x.isNull() | F.isnan(x), value).otherwise(x)
        if log1p.log_mask_[j]:
            x = F.log1p(F.greatest(x, F.lit(0.0)))
        if np.isfinite(clip.lower_[j]):
            x = F.greatest(x, F.lit(float(clip.lower_[j])))
        if np.isfinite(clip.upper_[j]):
            x = F.least(x, F.lit(float(clip.upper_[j])))
        zs.append((x - F.lit(float(centre[j]))) / F.lit(float(spread[j])))
    dists = []
    for c in centres:
        d = None
        for z, cj in zip(zs, c):
            term = (z - F.lit(float(cj))) * (z - F.lit(float(cj)))
            d = term if d is None else d + term
        dists.append(d)
    nearest = F.least(*dists) if len(dists) > 1 else dists[0]
    raw = None
    for i, d in enumerate(dists):
        raw = F.when(d == nearest, F.lit(i)) if raw is None else raw.when(d == nearest, F.lit(i))
    order = np.asarray(seg.label_order_)
    label = None
    for i, lab in enumerate(order):
        label = F.when(raw == i, F.lit(int(lab))) if label is None else label.when(raw == i, F.lit(int(lab)))
    return label.cast("int"), F.lit(False)


def cluster_scores(features, seg, method: str = "auto"):
    """``customer_id, cluster, is_noise, cluster_name`` for every row of ``features`` from a fitted
    :class:`CustomerSegmenter`. ``method``: ``"expressions"`` (k-means family only), ``"arrow"``
    (any model: ``mapInArrow`` batches through the model's ``predict_with_noise``), ``"auto"``
    (expressions when possible)."""
    from pyspark.sql import functions as F

    if method not in ("auto", "expressions", "arrow"):
        raise ConfigError(f"cluster_scores: method={method!r} is not one of 'auto', 'expressions', 'arrow'.")
    names = {int(k): str(v) for k, v in seg.segment_names_.items()}
    columns = ["customer_id"] + [str(f) for f in seg.feature_names_in_]
    extra = [c for c in AUTO_FILLS.values() if isinstance(c, str) and c in features.columns and c not in columns]
    cols = kmeans_columns(seg, list(features.columns)) if method != "arrow" else None
    if cols is None and method == "expressions":
        raise ConfigError(f"cluster_scores: the {seg.algorithm} model has no centres to write as expressions. Fix: use "
                          "method='arrow' (or 'auto').")
    if cols is not None:
        out = features.select("customer_id", cols[0].alias("cluster"), cols[1].alias("is_noise"))
    else:
        out = features.select(*columns, *extra).mapInArrow(_arrow_scorer(seg), "customer_id string, cluster int, is_noise boolean")
    name = None
    for k, v in names.items():
        name = F.when(F.col("cluster") == k, F.lit(v)) if name is None else name.when(F.col("cluster") == k, F.lit(v))
    return out.withColumn("cluster_name", name.otherwise(F.lit("Noise")) if name is not None else F.lit("Noise"))


def _arrow_scorer(seg):
    def score(batches):
        import pyarrow as pa

        for batch in batches:
            frame = pl.from_arrow(batch)
            if frame.height == 0:
                continue
            labels, noise = seg.predict_with_noise(frame)
            yield pa.RecordBatch.from_arrays(
                [batch.column(0), pa.array(np.asarray(labels, dtype=np.int32)), pa.array(np.asarray(noise, dtype=bool))],
                names=["customer_id", "cluster", "is_noise"])
    return score
