"""The computation behind the four report notebooks, one stage per notebook, with file hand-off.

A notebook calls its stage (``data_stage``, ``rfm_stage``, ``clustering_stage``,
``validation_stage``); each stage reads the earlier stages' outputs from the run folder, or computes
them when they are absent (so any notebook also runs on its own in JupyterLab), and writes its own:

    work/transactions.parquet, work/features.parquet, data_quality.json,
    excluded_customers.parquet                                             (1 exploration)
    work/rfm.parquet, rfm_edges.json, segment_stats.parquet (RFM)          (2 RFM)
    model.joblib, assignments.parquet, segment_rules.sql, segments.json,
    work/clusters.json, segment_stats.parquet (RFM + behavioural)          (3 clustering)
    metrics.json                                                           (4 validation)
    assignments.parquet + predicted columns, segments.json + expected_clv,
    metrics.json + predicted_value, work/value.json, work/calibration_*.parquet  (5 value)

``work/`` is removed when the pipeline moves a successful run into place.

>>> ctx = open_run("configs/default.yaml")   # doctest: +SKIP
>>> data = data_stage(ctx, recompute=True)    # doctest: +SKIP
>>> data.features.height                      # doctest: +SKIP
20000
"""
from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError
from segmentation_lib.describe.run_summary import summary_text
from segmentation_lib.report.context import RunContext
from segmentation_lib.segment.sizes import segment_sizes
from segmentation_lib.segment.preprocessing import with_encoded
from segmentation_lib.report.files import read_json, write_json
from segmentation_lib.report.timings import stage_timer, timed, timed_stage, timing_dir
from segmentation_lib.validate.actionability import actionability_checks
from segmentation_lib.validate.headline import headline_metrics
from segmentation_lib.validate.movement import migration
from segmentation_lib.validate.predictive import predictive_validity
from segmentation_lib.validate.resampling import stability
from segmentation_lib.validate.separation import internal_quality
from segmentation_lib.validate.truth import ground_truth_agreement



# --------------------------------------------------------------------------- 1: data


class DataStage:
    """The clean transactions, the customer feature table, the data-quality summary and ``as_of``.

    Read back from the run folder, the transactions stay on disk until a stage uses them:
    ``transactions`` reads the whole frame once (then kept), ``scan(*columns)`` is a lazy scan of the
    file (only the named columns are read), so a page that needs a few columns, or none, does not
    hold the whole log in memory.
    """

    def __init__(self, transactions: pl.DataFrame | None, features: pl.DataFrame, quality: dict[str, Any],
                 as_of: dt.datetime, transactions_file: Path | None = None) -> None:
        self._transactions = transactions
        self.transactions_file = transactions_file
        self.features = features
        self.quality = quality
        self.as_of = as_of

    @property
    def transactions(self) -> pl.DataFrame:
        """The clean transactions (read from ``transactions_file`` on first use)."""
        if self._transactions is None:
            self._transactions = pl.read_parquet(self.transactions_file)
        return self._transactions

    def parts(self, *columns: str) -> list[pl.LazyFrame]:
        """The clean transactions as lazy frames, one per customer partition of a large run (one frame
        otherwise): a customer's rows are all in one part, so per-customer work can go part by part."""
        if self._transactions is not None or "*" not in str(self.transactions_file):
            return [self.scan(*columns)]
        files = sorted(Path(self.transactions_file).parent.glob(Path(self.transactions_file).name))
        return [pl.scan_parquet(f).select(*columns) if columns else pl.scan_parquet(f) for f in files]

    def scan(self, *columns: str) -> pl.LazyFrame:
        """A lazy frame of the clean transactions (``columns`` only, when given), in the log's row order."""
        lf = self._transactions.lazy() if self._transactions is not None else pl.scan_parquet(self.transactions_file)
        return lf.select(*columns) if columns else lf


@timed_stage("data")
def data_stage(ctx: RunContext, recompute: bool = False) -> DataStage:
    """Clean transactions, data-quality summary and the customer feature table."""
    tx_p, ft_p, dq_p = ctx.work / "transactions.parquet", ctx.work / "features.parquet", ctx.run_dir / "data_quality.json"
    parts_dir = ctx.work / TRANSACTION_PARTS  # a large log: the clean rows as one file per customer partition
    if not recompute and (tx_p.is_file() or parts_dir.is_dir()) and ft_p.is_file() and dq_p.is_file():
        dq = read_json(dq_p)
        return DataStage(None, pl.read_parquet(ft_p), dq, dt.datetime.fromisoformat(dq["as_of"]),
                         tx_p if tx_p.is_file() else parts_dir / "*.parquet")
    from segmentation_lib.config import usage_only

    for old in (*ctx.work.glob(f"{CUTOFF_FEATURES_PREFIX}*.parquet"), ctx.work / CUSTOMER_TOTALS_FILE) \
            if ctx.work.is_dir() else ():
        old.unlink(missing_ok=True)  # the tables derived from the clean log belong to the one written below
    if usage_only(ctx.cfg):  # data.path null: the event log alone (usage_data_stage)
        return usage_data_stage(ctx)
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.data.quality import load_transactions

    from segmentation_lib.engine.spark_session import is_spark

    if is_spark(ctx.cfg):  # engine.kind: spark: read, checked and summarised on Spark (segmentation_lib/engine)
        from segmentation_lib.engine.spark_stage import spark_data

        tx, report, features = spark_data(ctx.cfg, ctx.work)
    else:
        from segmentation_lib.data.quality import PARTITION_ROWS, read_configured, transaction_partitions

        windows = (ctx.cfg.get("features") or {}).get("windows") or (30, 90, 365)
        n_parts = transaction_partitions(read_configured(ctx.cfg), int(ctx.cfg["data"].get("partition_rows") or PARTITION_ROWS))
        for old in (tx_p, parts_dir):  # the hand-off of an earlier run, in either layout
            shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
        if n_parts > 1:  # out of core: the log is never held whole (see clean_transactions_to)
            return _partitioned_data_stage(ctx, parts_dir, n_parts, windows)
        tx, report = timed(timing_dir(ctx), "data: read and check", load_transactions, ctx.cfg)
        report.policy.check_excluded_share(report)  # e.g. a wrong date format dropping most rows stops the run
        features = timed(timing_dir(ctx), "data: customer features", customer_features, tx, report.as_of,
                         windows=windows)  # sorted by customer id
    return _finish_data_stage(ctx, tx, features, report)


def _finish_data_stage(ctx: RunContext, tx: pl.DataFrame | pl.LazyFrame, features: pl.DataFrame, report: Any,
                       tx_file: Path | None = None) -> DataStage:
    """The data stage after the log is clean and the features computed: outlier flags, customer
    attributes, usage and purchase-mix features, the hand-off files."""
    tx_p, ft_p, dq_p = ctx.work / "transactions.parquet", ctx.work / "features.parquet", ctx.run_dir / "data_quality.json"
    if report.policy.outliers == "flag":
        features = with_outlier_flag(features, report.outlier_customers["customer_id"])
    dq = report.to_dict()
    dq["as_of"] = report.as_of.isoformat()
    features, dq["customer_attributes"] = with_customer_attributes(features, ctx.cfg)
    from segmentation_lib.features.customer import with_usage_features

    features, usage_report = with_usage_features(features, ctx.cfg, report.as_of)
    if usage_report is not None:
        dq["events"] = usage_report
    from segmentation_lib.features.customer import with_purchase_mix  # category / discount features

    features, mix_report = with_purchase_mix(features, tx, ctx.cfg, report.as_of)
    if mix_report is not None:
        dq["purchase_mix"] = mix_report
    with stage_timer(timing_dir(ctx), "data: write work files"):  # hand-off files: fast lz4, not the default zstd
        if tx_file is None:
            tx.write_parquet(tx_p, compression="lz4")
        features.write_parquet(ft_p, compression="lz4")
    report.dropped_customers.write_parquet(ctx.run_dir / "excluded_customers.parquet")
    write_json(dq_p, dq)
    if tx_file is not None:
        return DataStage(None, features, dq, report.as_of, tx_file)
    return DataStage(tx, features, dq, report.as_of)


#: work/ folder of the clean log of a large run, one Parquet file per customer partition
TRANSACTION_PARTS = "transactions"


def per_customer_part(parts: list[pl.LazyFrame], fn) -> pl.DataFrame:
    """``fn(part)`` (a table with one row per customer) for each customer partition of the clean log,
    stacked and sorted by customer id: the table of the whole log, one partition in memory at a time.

    >>> per_customer_part([pl.LazyFrame({"customer_id": ["b"]}), pl.LazyFrame({"customer_id": ["a"]})],
    ...                   lambda p: p.collect())["customer_id"].to_list()
    ['a', 'b']
    """
    from segmentation_lib.features.common import sort_by_text

    frames = [fn(p) for p in parts]
    return frames[0] if len(frames) == 1 else sort_by_text(pl.concat(frames, how="diagonal_relaxed"), "customer_id")


def _partitioned_data_stage(ctx: RunContext, parts_dir: Path, n_parts: int, windows) -> DataStage:
    """The data stage of a log too large to hold: cleaned and summarised one customer partition at a
    time (``clean_transactions_to``); the feature table equals the in-memory path's (tested)."""
    from segmentation_lib.data.quality import QualityPolicy, clean_transactions_to, read_configured
    from segmentation_lib.features.customer import customer_features

    cfg = ctx.cfg
    report = timed(timing_dir(ctx), "data: read and check", clean_transactions_to, read_configured(cfg), parts_dir,
                   as_of=(cfg.get("run") or {}).get("as_of"), policy=QualityPolicy.from_config(cfg.get("quality")),
                   source=str(cfg["data"]["path"]), partitions=n_parts)
    report.policy.check_excluded_share(report)
    tx_file = parts_dir / "*.parquet"
    with stage_timer(timing_dir(ctx), "data: customer features"):  # customers never span two parts
        features = per_customer_part(DataStage(None, None, {}, report.as_of, tx_file).parts(),
                                     lambda p: customer_features(p, report.as_of, windows=windows, partitions=1))
    return _finish_data_stage(ctx, pl.scan_parquet(tx_file), features, report, tx_file)


def usage_data_stage(ctx: RunContext) -> DataStage:
    """The data stage of a usage-only run (``data.path`` null, ``data.events`` set): the session log stands
    for the transactions (one row per session, amount = its events: ``features.usage.session_log``); the
    feature table is its customer features (sessions for orders, events for spend) with the usage features
    and the customer attributes joined; the same files as ``data_stage``."""
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.features.usage import join_usage, usage_only_inputs

    tx, report, usage, events_report = usage_only_inputs(ctx.cfg)
    report.policy.check_excluded_share(report)
    # the session log's "purchase" columns count sessions (n_orders) and events (total_spend); docs/features.md
    windows = (ctx.cfg.get("features") or {}).get("windows") or (30, 90, 365)
    features = join_usage(customer_features(tx, report.as_of, windows=windows), usage)
    if report.policy.outliers == "flag":
        features = with_outlier_flag(features, report.outlier_customers["customer_id"])
    dq = report.to_dict()
    dq["as_of"] = report.as_of.isoformat()
    dq["usage_only"] = True
    features, dq["customer_attributes"] = with_customer_attributes(features, ctx.cfg)
    dq["events"] = events_report
    tx.write_parquet(ctx.work / "transactions.parquet")
    features.write_parquet(ctx.work / "features.parquet")
    report.dropped_customers.write_parquet(ctx.run_dir / "excluded_customers.parquet")
    write_json(ctx.run_dir / "data_quality.json", dq)
    return DataStage(tx, features, dq, report.as_of)


def with_outlier_flag(features: pl.DataFrame, outlier_ids: pl.Series) -> pl.DataFrame:
    """Add the per-customer ``is_outlier`` flag (``quality.outliers: flag``) to the feature table.

    The clustering leaves flagged customers out of fitting (``clustering.fit_exclude``) and
    still assigns them; the assignments carry the flag.

    >>> f = pl.DataFrame({"customer_id": ["a", "b"], "total_spend": [1.0, 900.0]})
    >>> with_outlier_flag(f, pl.Series(["b"]))["is_outlier"].to_list()
    [False, True]
    """
    return features.with_columns(pl.col("customer_id").is_in(outlier_ids.implode()).alias("is_outlier"))


def with_customer_attributes(features: pl.DataFrame, cfg: Mapping[str, Any]) -> tuple[pl.DataFrame, dict[str, Any] | None]:
    """Join the optional customer attributes table (``data.customers``) onto the feature table.

    Every customer of the feature table is kept (left join); customers found in only one of the two
    tables are counted in the returned report (None when no attributes table is configured).
    """
    from segmentation_lib.data.read import attach_customers, load_customers

    customers = load_customers(cfg)
    if customers is None:
        return features, None
    joined, report = attach_customers(features, customers)
    return joined, report


# --------------------------------------------------------------------------- 2: RFM


@dataclass
class RFMStage:
    table: pl.DataFrame          # customer_id, scores, rfm_code, rfm_segment, value_engagement, rule tier
    edges: pl.DataFrame
    actions: dict[str, str]
    scorer: Any = None
    rule_col: str = "tier"


RFM_COLS = ("customer_id", "r_score", "f_score", "m_score", "rfm_code", "rfm_segment", "value_engagement")


def make_rfm_scorer(cfg: Mapping[str, Any]):
    """An unfitted RFMScorer from the ``rfm`` section (frozen edges when ``rfm.frozen_edges`` is set)."""
    from segmentation_lib.segment.rfm import scorer_from_config

    return scorer_from_config(cfg["rfm"])


def rfm_assign(features: pl.DataFrame, cfg: Mapping[str, Any], scorer=None) -> pl.DataFrame:
    """Scores, named RFM segment, value/engagement quadrant and rule tier for every customer
    (:func:`segmentation_lib.segment.assign.rule_based_segments`)."""
    from segmentation_lib.segment.assign import rule_based_segments

    return rule_based_segments(features, cfg, scorer)


@timed_stage("rfm")
def rfm_stage(ctx: RunContext, data: DataStage, recompute: bool = False) -> RFMStage:
    """RFM scores with learned (or frozen) edges, the named segment map, value/engagement and rule tiers."""
    from segmentation_lib.segment.rfm import RFMScorer
    from segmentation_lib.segment.rfm_maps import load_segment_map, map_bins

    apply_reference(ctx)  # a reference run: its edges, map, value/engagement cuts and rules
    cfg = ctx.cfg
    rule_col = (cfg.get("rules") or {}).get("segment_col") or "tier"
    path, edges_p = ctx.work / "rfm.parquet", ctx.run_dir / "rfm_edges.json"
    actions = dict(load_segment_map(cfg["rfm"]["segment_map"], bins=map_bins(cfg["rfm"]["bins"])).actions)
    if not recompute and path.is_file() and edges_p.is_file():
        scorer = RFMScorer.from_edges(edges_p)
        return RFMStage(pl.read_parquet(path), scorer.describe_edges(), actions, scorer, rule_col)
    scorer = make_rfm_scorer(cfg).fit(data.features)
    full = timed(timing_dir(ctx), "rfm: scores and segments", rfm_assign, data.features, cfg, scorer)
    table = full.select(*RFM_COLS, rule_col)
    table.write_parquet(path)
    scorer.save_edges(edges_p)
    from segmentation_lib.segment.value_engagement import value_engagement_cuts

    write_json(ctx.run_dir / "rfm_cuts.json", value_engagement_cuts(data.features, **dict(cfg["rfm"].get("value_engagement") or {})))
    write_segment_stats(ctx, data, table, {"rfm": "rfm_segment"})
    return RFMStage(table, scorer.describe_edges(), actions, scorer, rule_col)


# --------------------------------------------------------------------------- 3: clustering


def make_segmenter(cfg: Mapping[str, Any], seed: int, **params: Any):
    """An unfitted CustomerSegmenter from the ``clustering`` section (``params`` override)."""
    from segmentation_lib.segment.clustering import segmenter_from_config

    seg = segmenter_from_config(cfg["clustering"], random_state=seed)
    if seg.names:
        seg.set_params(names={int(k): v for k, v in seg.names.items()})
    return seg.set_params(**params) if params else seg


@dataclass
class ClusterStage:
    model: Any
    assignments: pl.DataFrame     # every customer: rfm columns + cluster, cluster_name, is_noise
    info: dict[str, Any]          # k, reasons, names, surrogate fidelity / rules / sql
    surrogate: Any = None
    extras: dict[str, Any] = field(default_factory=dict)


@timed_stage("clustering")
def clustering_stage(ctx: RunContext, data: DataStage, rfm: RFMStage, recompute: bool = False) -> ClusterStage:
    """Fit the segmenter (k from the sweep unless configured), surrogate rules, save model and assignments."""
    from segmentation_lib.score.persistence import load_model, save_model
    from segmentation_lib.segment.surrogate import SurrogateRules

    model_p, assign_p, info_p = ctx.run_dir / "model.joblib", ctx.run_dir / "assignments.parquet", ctx.work / "clusters.json"
    if not recompute and model_p.is_file() and assign_p.is_file() and info_p.is_file():
        return ClusterStage(load_model(model_p), pl.read_parquet(assign_p), read_json(info_p))
    ref = apply_reference(ctx)
    cc = ctx.cfg["clustering"]
    feats = purchasing(data.features)
    matching = None
    if ref:  # scheduled run: the reference's frozen model, its ids and names
        from segmentation_lib.report.history import check_reference_model, load_reference_model

        seg = load_reference_model(Path(ref))
        check_reference_model(seg, list(cc["features"]), Path(ref))
        labels, is_noise = seg.predict_with_noise(feats)
    else:
        seg = timed(timing_dir(ctx), "clustering: fit and assign", make_segmenter(ctx.cfg, ctx.seed).fit, feats)
        matching = match_previous_segments(ctx, seg, feats)  # a refit keeps the previous run's ids and names
        labels, is_noise = np.asarray(seg.labels_), np.asarray(seg.is_noise_, dtype=bool)
    names = {int(k): str(v) for k, v in seg.segment_names_.items()}
    labels = np.asarray(labels)
    flagged = "is_outlier" in feats.columns
    clusters = pl.DataFrame({
        "customer_id": feats["customer_id"],
        "cluster": pl.Series(labels, dtype=pl.Int32),
        "is_noise": pl.Series(np.asarray(is_noise, dtype=bool)),
    }).with_columns(pl.col("cluster").replace_strict(names, default="Noise", return_dtype=pl.String).alias("cluster_name"))
    # customers with returns but no purchase in the window cannot be clustered: kept, named and counted
    assignments = (rfm.table.join(clusters, on="customer_id", how="full", coalesce=True)
                   .with_columns(pl.col("cluster").fill_null(NO_PURCHASE_LABEL),
                                 pl.col("is_noise").fill_null(False),
                                 pl.col("cluster_name").fill_null(NO_PURCHASE_NAME))
                   .sort("customer_id"))
    if flagged:  # quality.outliers: flag -> one flag per customer in the assignments
        assignments = (assignments.join(data.features.select("customer_id", "is_outlier"), on="customer_id", how="left")
                       .with_columns(pl.col("is_outlier").fill_null(False)).sort("customer_id"))
    enc_feats, enc_cols = with_encoded(seg, feats)  # text features (clustering.encodings) as the model's numbers
    surrogate = SurrogateRules(max_depth=int(cc.get("surrogate_depth", 3)), features=enc_cols,
                               random_state=ctx.seed)
    timed(timing_dir(ctx), "clustering: surrogate rules", surrogate.fit, filled_features(enc_feats, enc_cols), labels,
          names=names)
    info = {
        "algorithm": cc["algorithm"],
        "k": int(seg.n_segments_),
        "recommendation": seg.recommendation_,
        "names": {str(k): v for k, v in names.items()},
        "noise_share": float(getattr(seg, "noise_share_", 0.0) or 0.0),
        "not_clustered_no_purchase": data.features.height - feats.height,
        "outliers_flagged": int(assignments["is_outlier"].sum()) if flagged else 0,
        "excluded_from_fit": int(getattr(seg, "n_excluded_from_fit_", 0)),
        "surrogate_fidelity": float(surrogate.fidelity_),
        "surrogate_recall": surrogate.recall_by_name(),
        "surrogate_depth_used": int(surrogate.depth_),
        "surrogate_rules": surrogate.rules_text(),
        "surrogate_sql": surrogate.to_sql(),
        "reference": ref,
        "matching": matching,
    }
    import hashlib

    fp = hashlib.sha256(feats.hash_rows(seed=0).to_numpy().tobytes()).hexdigest()
    if ref:  # the frozen model keeps the fingerprint and date of the data it was fitted on
        meta = getattr(seg, "metadata_", {}) or {}
        fp = meta.get("training_fingerprint") or fp
        info["recommendation"] = {**(seg.recommendation_ or {}),
                                  "reasons": f"Frozen: the {seg.n_segments_} segments of the reference run {Path(ref).name} "
                                             "(its model, ids and names), not refitted."}
    save_model(seg, model_p, training_fingerprint=fp,
               extra={"as_of": data.as_of.isoformat(), "config": ctx.cfg.get("_source"), "seed": ctx.seed,
                      "reference": ref})
    from segmentation_lib.validate.drift import feature_bins

    write_json(ctx.run_dir / "feature_bins.json", feature_bins(filled_features(enc_feats, enc_cols), enc_cols))
    assignments.write_parquet(assign_p)
    (ctx.run_dir / "segment_rules.sql").write_text(info["surrogate_sql"] + "\n", encoding="utf-8")  # for a warehouse / CRM
    if seg.sweep_ is not None:
        seg.sweep_.write_parquet(ctx.work / "k_sweep.parquet")
    write_json(info_p, info)
    write_json(ctx.run_dir / "segments.json", segment_rows(assignments, data.features, names, rfm.actions))
    write_segment_stats(ctx, data, assignments, {"behavioural": "cluster_name"})
    return ClusterStage(seg, assignments, info, surrogate)


def apply_reference(ctx: RunContext) -> str | None:
    """The run's reference folder (``run.reference`` / ``--reference``), with ``ctx.cfg`` switched once to the
    reference's RFM measures, edges, map, value/engagement cuts and rules; None without a reference."""
    from segmentation_lib.report.history import frozen_config, read_links

    if ctx.cfg.get("_reference"):
        return ctx.cfg["_reference"]
    ref = read_links(ctx.run_dir, ctx.cfg).get("reference")
    if ref:
        ctx.cfg = frozen_config(ctx.cfg, Path(ref))
    return ref


def match_previous_segments(ctx: RunContext, seg: Any, feats: pl.DataFrame) -> list[dict[str, Any]] | None:
    """Give a refit the previous run's segment ids and names by shared customers (``history.match_refit``);
    returns the matching table as rows (None without a previous run)."""
    from segmentation_lib.report.history import read_links
    from segmentation_lib.segment.matching import match_segments, relabel_segmenter

    hc = ctx.cfg.get("history") or {}
    prev = read_links(ctx.run_dir, ctx.cfg).get("previous")
    if not hc.get("match_refit", True) or not prev or not (Path(prev) / "assignments.parquet").is_file():
        return None
    old = pl.read_parquet(Path(prev) / "assignments.parquet").select("customer_id", "cluster", "cluster_name")
    old_names = {int(c): str(n) for c, n in old.filter(pl.col("cluster") >= 0).select("cluster", "cluster_name").unique("cluster").iter_rows()}
    new = pl.DataFrame({"customer_id": feats["customer_id"], "segment": np.asarray(seg.labels_, dtype=np.int64)})
    match = match_segments(old.rename({"cluster": "segment"}), new, old_names, seg.segment_names_,
                           min_overlap=float(hc.get("min_overlap", 0.3)))
    relabel_segmenter(seg, match)
    return [{**r, "vanished": False} for r in match.table.iter_rows(named=True)] + [
        {"new_id": None, "new_name": None, "id": o, "name": old_names.get(o, str(o)), "status": "vanished",
         "overlap": 0, "overlap_share": None, "vanished": True} for o in match.vanished]


SEGMENT_STATS_FILE = "segment_stats.parquet"


def unknown_customer_rows(quality: Mapping[str, Any]) -> int:
    """Rows without a customer id, from the data-quality report (the clean log no longer has them)."""
    return int(next((r.get("rows") or 0 for r in quality.get("rules") or [] if r.get("rule") == "null_customer"), 0))


@timed_stage("segment statistics")
def write_segment_stats(ctx: RunContext, data: DataStage, assignments: pl.DataFrame,
                        segmentations: Mapping[str, str]) -> pl.DataFrame:
    """Write ``segment_stats.parquet``: :func:`segment_stats` per segmentation, stacked; the rows of
    ``segmentations`` are (re)computed, rows of other segmentations already in the file are kept.

    Columns ``segmentation`` (e.g. ``rfm``, ``behavioural``), ``segment`` (text, ``Total`` last),
    the statistics, and ``unknown_customer_rows`` (the data-quality ``null_customer`` row count:
    the clean transactions hold no row without a customer id, so it cannot be counted from them).
    """
    from segmentation_lib.describe.segment_stats import segment_stats

    path = ctx.run_dir / SEGMENT_STATS_FILE
    # the RFM stage writes its rows and the clustering stage adds its own: rows of the other
    # segmentations already in the file are kept, not computed again over the whole log
    kept = pl.read_parquet(path).filter(~pl.col("segmentation").is_in(list(segmentations))) if path.is_file() else None
    unknown = unknown_customer_rows(data.quality)
    parts = [] if kept is None else [kept.drop("unknown_customer_rows")]
    totals = customer_totals_of(ctx, data)  # shared by the segmentations and by the pages
    parts += [segment_stats(data.scan(), assignments.select("customer_id", col), col, totals=totals).table
              .select(pl.lit(name).alias("segmentation"), pl.col(col).cast(pl.String).alias("segment"), pl.all().exclude(col))
              for name, col in segmentations.items()]
    out = pl.concat(parts, how="vertical_relaxed").with_columns(pl.lit(unknown, pl.Int64).alias("unknown_customer_rows"))
    out.write_parquet(path)
    return out


CUSTOMER_TOTALS_FILE = "customer_totals.parquet"


def customer_totals_of(ctx: RunContext, data: DataStage) -> pl.DataFrame:
    """:func:`~segmentation_lib.describe.segment_stats.customer_totals` of the clean log, one pass (a
    partition at a time) per run: the RFM and the clustering pages share it through
    ``work/customer_totals.parquet`` (removed when the data stage is recomputed)."""
    from segmentation_lib.describe.segment_stats import customer_totals

    path = ctx.work / CUSTOMER_TOTALS_FILE
    if path.is_file():
        return pl.read_parquet(path)
    totals = pl.concat([customer_totals(p) for p in data.parts()])
    ctx.work.mkdir(parents=True, exist_ok=True)
    totals.write_parquet(path)
    return totals


NO_PURCHASE_LABEL = -2
#: cluster id of HDBSCAN noise when ``clustering.noise: label`` (no segment)
NOISE_LABEL = -1
NO_PURCHASE_NAME = "No purchases (returns only)"


def purchasing(features: pl.DataFrame) -> pl.DataFrame:
    """Customers with at least one purchase in the window (the ones behavioural clustering can describe).

    Customers whose only rows are returns have no recency or tenure; they keep their RFM segment and
    are named ``NO_PURCHASE_NAME`` in the assignments instead of a cluster.
    """
    return features.filter(pl.col("first_purchase").is_not_null()) if "first_purchase" in features.columns else features


def filled_features(features: pl.DataFrame, columns) -> pl.DataFrame:
    """The feature table with the documented structural nulls filled (as the clustering model does)."""
    from segmentation_lib.segment.preprocessing import fill_exprs

    return features.with_columns(fill_exprs(list(columns), features.columns))


def dominant_rfm_segment(assignments: pl.DataFrame, by: str = "cluster") -> pl.DataFrame:
    """Per behavioural segment (``by``): its most common RFM segment (``rfm``; ties by name) and that segment's share
    of its customers (``rfm_share``); the one rule behind a behavioural segment's suggested action.

    >>> a = pl.DataFrame({"cluster": [0, 0, 0, 1], "rfm_segment": ["Lost", "Lost", "New", "Champions"]})
    >>> dominant_rfm_segment(a).rows()
    [(0, 'Lost', 0.6666666666666666), (1, 'Champions', 1.0)]
    """
    return (assignments.group_by(by, "rfm_segment").agg(pl.len().alias("n"))
            .sort([by, "n", "rfm_segment"], descending=[False, True, False])
            .group_by(by, maintain_order=True).agg(pl.col("rfm_segment").first().alias("rfm"),
                                                   (pl.col("n").first() / pl.col("n").sum()).alias("rfm_share")))


def segment_rows(assignments: pl.DataFrame, features: pl.DataFrame, names: Mapping[int, str],
                 actions: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Per cluster (in id order): name, customers, share, revenue share, the suggested ``action`` (that of its
    dominant RFM segment in the segment map's ``actions``) and the composition (``rfm_composition``,
    ``dominant_rfm_segment``, ``dominant_rfm_share``)."""
    j = assignments.join(features.select("customer_id", "total_spend"), on="customer_id", how="left")
    dom = dominant_rfm_segment(j, "cluster")
    g = segment_sizes(j, "cluster", "total_spend").join(dom, on="cluster", how="left").sort("cluster")
    return [{"id": r["cluster"], "name": names.get(int(r["cluster"]), "Noise") if r["cluster"] is not None else "Noise",
             "customers": r["customers"], "share": r["share"], "revenue_share": r["revenue_share"],
             "action": (actions or {}).get(r["rfm"], "") if r["rfm"] else "",
             "rfm_composition": f"mostly RFM '{r['rfm']}' ({100 * r['rfm_share']:.0f}%)" if r["rfm"] else "",
             "dominant_rfm_segment": r["rfm"], "dominant_rfm_share": r["rfm_share"]}
            for r in g.iter_rows(named=True)]


# --------------------------------------------------------------------------- 4: validation


@dataclass
class ValidationStage:
    quality: Any
    stability: Any
    predictive: Any
    migration: Any
    checks: pl.DataFrame
    truth: Any
    metrics: dict[str, Any]


@timed_stage("validation")
def validation_stage(ctx: RunContext, data: DataStage, rfm: RFMStage, clusters: ClusterStage) -> ValidationStage:
    """Quality, stability, predictive validity (clusters vs RFM), RFM migration, actionability, truth -> metrics.json."""

    cfg, seed = ctx.cfg, ctx.seed
    vc, cc = cfg["validation"], cfg["clustering"]
    model = clusters.model
    k = int(clusters.info["k"])
    feats = purchasing(data.features)
    aligned = clusters.assignments.join(feats.select("customer_id"), on="customer_id", how="right")
    # HDBSCAN noise (assigned to its nearest cluster when clustering.noise = assign) is scored as noise (-1):
    # the noise share is reported and the silhouette describes the clustered customers only
    noise = aligned["is_noise"].fill_null(False).to_numpy() if "is_noise" in aligned.columns else False
    labels = np.where(noise, -1, aligned["cluster"].to_numpy())
    Z = model.preprocessor_.transform(feats)
    quality = timed(timing_dir(ctx), "validation: separation", internal_quality, Z, labels,
                    sample_size=int(vc["metric_sample_size"]), random_state=seed)
    fixed = make_segmenter(cfg, seed, n_segments=k)
    stab = timed(timing_dir(ctx), "validation: stability", stability, fixed, feats, n_resamples=int(vc["n_resamples"]),
                 sample_size=int(vc["sample_size"]), random_state=seed, stable_threshold=float(vc["stable_threshold"]),
                 doubtful_threshold=float(vc["doubtful_threshold"]), method=str(vc["method"]),
                 n_seeds=int(vc["n_seeds"]))
    holdout = int(vc["holdout_days"])
    cutoff = data.as_of - dt.timedelta(days=holdout)

    flags = feats.select("customer_id", "is_outlier") if "is_outlier" in feats.columns else None
    refit: dict[str, int] = {}  # segments found by the calibration refit (HDBSCAN chooses its own number)

    def clusters_on(f: pl.DataFrame) -> pl.DataFrame:
        f = purchasing(f)  # customers without purchases get no cluster and are counted as unassigned
        f, _ = with_customer_attributes(f, cfg)  # attribute features (e.g. encoded plan or region), as in the run
        if flags is not None:  # the customers flagged by the quality step stay out of the refit too
            f = f.join(flags, on="customer_id", how="left").with_columns(pl.col("is_outlier").fill_null(False))
        m = make_segmenter(cfg, seed, n_segments=k).fit(f)
        refit["k"] = int(m.n_segments_)
        # the refit's own segments: named as such, they are not the main run's segments
        names = {int(i): f"{n} (refit at the cutoff)" for i, n in m.segment_names_.items()}
        return pl.DataFrame({"customer_id": f["customer_id"], "label": np.asarray(m.labels_, dtype=np.int64)}).select(
            "customer_id", pl.col("label").replace_strict(names, default="Noise", return_dtype=pl.String).alias("segment"))

    def rfm_on(f: pl.DataFrame) -> pl.DataFrame:
        f, _ = with_customer_attributes(f, cfg)  # rules may use attribute columns
        return rfm_assign(f, cfg).select("customer_id", pl.col("rfm_segment").alias("segment"))

    # the feature table at the cutoff is computed once (cached in work/: the value page uses it too); the
    # holdout split reads only the columns its outcomes use
    at_cutoff = cutoff_features(ctx, data, cutoff)
    predictive = timed(timing_dir(ctx), "validation: predictive validity", predictive_validity,
                       data.parts("customer_id", "timestamp", "amount"), cutoff,
                       {"clusters": clusters_on, "rfm": rfm_on},
                       holdout_days=holdout, min_segment_size=int(vc["min_segment_size"]),
                       feature_fn=lambda tx, at: at_cutoff)
    before_f, _ = with_customer_attributes(at_cutoff, cfg)
    before = rfm_assign(before_f, cfg, rfm.scorer).select("customer_id", pl.col("rfm_segment").alias("segment"))
    after = rfm.table.select("customer_id", pl.col("rfm_segment").alias("segment"))
    from segmentation_lib.segment.rfm_maps import load_segment_map, map_bins

    order = list(load_segment_map(cfg["rfm"]["segment_map"], bins=map_bins(cfg["rfm"]["bins"])).segments) or None
    mig = timed(timing_dir(ctx), "validation: migration", migration, before, after, order=order)
    # HDBSCAN noise labelled -1 (clustering.noise = label) is no segment: reported apart by the checks
    seg_table = (clusters.assignments.select("customer_id", pl.col("cluster_name").alias("segment"),
                                             (pl.col("cluster") == NOISE_LABEL).alias("_noise"))
                 .join(filled_features(*with_encoded(model, feats)).drop("_noise", strict=False), on="customer_id", how="inner"))
    checks = timed(timing_dir(ctx), "validation: actionability", actionability_checks, seg_table,
                   min_k=int(cc["min_k"]), max_k=int(cc["max_k"]),
                                    min_share=float(cc["min_segment_share"]),
                                    fidelity=clusters.info.get("surrogate_fidelity"), feature_cols=with_encoded(model, feats.head(0))[1],
                                    min_fidelity=float(vc["min_fidelity"]), min_effect_size=float(vc["min_effect_size"]),
                                    noise_col="_noise", segment_recall=clusters.info.get("surrogate_recall"))
    truth = None
    truth_path = (cfg.get("data") or {}).get("truth")
    if truth_path and not Path(truth_path).is_file():
        raise ConfigError(f"data.truth is set to '{truth_path}', but that file does not exist. Fix: correct the path "
                          f"(the demo writes truth.parquet beside transactions.parquet) or set data.truth: null.")
    if truth_path:
        truth = ground_truth_agreement(clusters.assignments.select("customer_id", pl.col("cluster_name").alias("segment")),
                                         pl.read_parquet(truth_path) if str(truth_path).endswith(".parquet") else pl.read_csv(truth_path))
    head = headline_metrics(quality, stab, predictive, mig, checks, truth)
    head["predictive_clusters_refit_k"] = refit.get("k")
    metrics = run_metrics(data, rfm, clusters, head)
    old_p = ctx.run_dir / "metrics.json"
    if old_p.is_file() and "predicted_value" in (old := read_json(old_p)):  # the value stage's block survives a rerun
        metrics["predicted_value"] = old["predicted_value"]
        if "data_sufficiency" in old:
            metrics["data_sufficiency"] = old["data_sufficiency"]
    write_json(ctx.run_dir / "metrics.json", metrics)
    return ValidationStage(quality, stab, predictive, mig, checks, truth, metrics)


def run_metrics(data: DataStage, rfm: RFMStage, clusters: ClusterStage, head: Mapping[str, Any]) -> dict[str, Any]:
    """The flat metrics.json of a run (headline numbers first, the validation details under ``validation``)."""
    sep = head.get("separation") or {}
    n_rfm = rfm.table["rfm_segment"].drop_nulls().n_unique()
    dq = data.quality or {}
    policy = dq.get("outlier_policy") or ((dq.get("policy") or {}).get("outliers")) or "keep"
    from segmentation_lib.data.quality import exact_sum  # the same figure for any row order or partitioning

    n_tx, revenue = data.scan("amount").select(pl.len(), exact_sum(pl.col("amount"))).collect(engine="streaming").row(0)
    metrics = {
        "as_of": data.as_of.date().isoformat(),
        "customers": data.features.height,
        "transactions": n_tx,
        "revenue": float(revenue),
        "algorithm": clusters.info["algorithm"],
        "n_clusters": int(clusters.info["k"]),
        "n_rfm_segments": int(n_rfm),
        "noise_share": float(clusters.info.get("noise_share") or 0.0),
        "outlier_policy": policy,
        "outlier_customers": int(dq.get("customers_outliers") or 0),
        "outliers_flagged": int(clusters.info.get("outliers_flagged") or 0),
        "outliers_excluded": int((dq.get("customers_dropped_by_reason") or {}).get("outliers", 0)),
        "excluded_from_fit": int(clusters.info.get("excluded_from_fit") or 0),
        "silhouette": head.get("silhouette"),
        "stability_ari_median": head.get("stability_ari_median"),
        "predictive_clusters": (sep.get("clusters") or {}).get("eta_squared_spend"),
        "predictive_rfm": (sep.get("rfm") or {}).get("eta_squared_spend"),
        "predictive_clusters_refit_k": head.get("predictive_clusters_refit_k"),
        "ground_truth_ari": head.get("truth_ari"),
        "actionability_pass": [head.get("checks_passed"), head.get("checks_total")]
        if head.get("checks_total") else None,
        "surrogate_fidelity": clusters.info.get("surrogate_fidelity"),
        "migration_changed_share": head.get("migration_changed_share"),
        "validation": dict(head),
    }
    metrics["summary_text"] = summary_text(metrics)
    if dq.get("usage_only"):  # no purchases: the summary in usage words
        from segmentation_lib.describe.usage_wording import usage_wording

        metrics["summary_text"] = usage_wording(metrics["summary_text"])
    return metrics


# --------------------------------------------------------------------------- 5: predicted value


#: columns the value stage adds to assignments.parquet (besides expected_purchases_<h>d and clv_<m>m)
VALUE_COLS = ("p_alive", "expected_spend", "churn_risk", "value_churn")


@dataclass
class ValueStage:
    assignments: pl.DataFrame          # every customer: the assignments plus the predicted columns (null: no purchase)
    info: dict[str, Any]               # the predicted_value block of metrics.json (+ cautions)
    matrix: pl.DataFrame               # predicted value x churn-risk cells (predicted_value_summary)
    by_rfm: pl.DataFrame               # expected value per RFM segment
    by_cluster: pl.DataFrame           # expected value per behavioural segment
    by_rule: pl.DataFrame | None       # expected value per rule tier (None when the assignments carry no tier)
    buckets: pl.DataFrame | None       # calibration plot table (None when the calibration could not be fitted)
    calibration_segments: pl.DataFrame | None
    clv_col: str = "clv_12m"


def predicted_columns(columns: list[str]) -> list[str]:
    """The value stage's columns among ``columns`` (so a rerun replaces them).

    >>> predicted_columns(["customer_id", "p_alive", "clv_12m", "expected_purchases_30d", "cluster"])
    ['p_alive', 'clv_12m', 'expected_purchases_30d']
    """
    return [c for c in columns if c in VALUE_COLS or c.startswith(("expected_purchases_", "clv_"))]


@timed_stage("value")
def value_stage(ctx: RunContext, data: DataStage, clusters: ClusterStage, recompute: bool = False) -> ValueStage:
    """BTYD summary at as_of, sufficiency cautions, predicted value per customer, value x churn-risk cells,
    expected CLV per segment, the holdout calibration; adds to assignments.parquet, segments.json, metrics.json."""
    import warnings

    from segmentation_lib.errors import SegmentationError
    from segmentation_lib.features.btyd import btyd_summary
    from segmentation_lib.predict.sufficiency import check_data_sufficiency
    from segmentation_lib.segment.predicted import expected_value_by_segment, predicted_segments
    from segmentation_lib.validate.calibration import holdout_calibration

    pc = ctx.cfg["predict"]
    clv_col = f"clv_{int(pc['clv_months'])}m"
    assign_p, info_p = ctx.run_dir / "assignments.parquet", ctx.work / "value.json"
    buckets_p, calseg_p = ctx.work / "calibration_buckets.parquet", ctx.work / "calibration_segments.parquet"
    if not recompute and info_p.is_file() and assign_p.is_file():
        a = pl.read_parquet(assign_p)
        if clv_col in a.columns:
            return _value_result(a, read_json(info_p), clv_col, buckets_p, calseg_p, _rule_col(ctx.cfg))
    model, freq = str(pc["model"]), str(pc["freq"])
    buyers = purchasing(data.features).select("customer_id")
    # the summary and the holdout calibration read the customer, time and amount columns only
    tx_parts = [p.join(buyers.lazy(), on="customer_id", how="semi", maintain_order="left")
                for p in data.parts("customer_id", "timestamp", "amount")]
    tx = tx_parts[0].collect() if len(tx_parts) == 1 else tx_parts  # a large log stays on disk
    summary = timed(timing_dir(ctx), "value: BTYD summary", per_customer_part, tx_parts if len(tx_parts) > 1 else [tx],
                    lambda p: btyd_summary(p, data.as_of, freq=freq))
    cautions = check_data_sufficiency(summary, freq=freq)
    for c in cautions:  # shown in the page's "Notes on this run" and as plain-language cautions
        warnings.warn(c, UserWarning, stacklevel=2)
    pv, counts, spend = timed(timing_dir(ctx), "value: models and predictions", predicted_segments, summary, pc)
    base = clusters.assignments.drop(predicted_columns(clusters.assignments.columns))
    a = base.join(pv, on="customer_id", how="left").sort("customer_id")
    params, spend_params = counts.params_, spend.params_
    holdout = int(ctx.cfg["validation"]["holdout_days"])
    cutoff = data.as_of - dt.timedelta(days=holdout)
    calibration, cal_note = None, None
    try:
        seg_at_cut = _rfm_at_cutoff(ctx, data, cutoff)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the calibration fit repeats the run's model warnings
            calibration = timed(timing_dir(ctx), "value: holdout calibration", holdout_calibration, tx, cutoff, holdout,
                                model=model, freq=freq, segments=seg_at_cut)
    except SegmentationError as exc:  # too little history before the cutoff: say so, keep the run
        cal_note = f"The model could not be checked on a holdout period: {exc}"
        warnings.warn(cal_note, UserWarning, stacklevel=2)
    n_pred = int(a[clv_col].is_not_null().sum())
    total = float(a[clv_col].sum())
    info = {
        "model": model,
        "freq": freq,
        "horizons_days": [float(h) for h in pc["horizons"]],
        "clv_months": int(pc["clv_months"]),
        "monthly_discount": float(pc["monthly_discount"]),
        "risk_cuts": [float(c) for c in pc["risk_cuts"]],
        "params": params,
        "spend_params": spend_params,
        "customers_predicted": n_pred,
        "customers_without_prediction": a.height - n_pred,
        "expected_clv_total": total,
        "mean_p_alive": float(a["p_alive"].mean()) if n_pred else None,
        "churn_risk_counts": {str(k): int(v) for k, v in a.group_by("churn_risk").len().drop_nulls("churn_risk").iter_rows()},
        "sufficiency_warnings": len(cautions),
        "cautions": cautions,
        "calibration_error": calibration.summary["calibration_error"] if calibration else None,
        "total_purchases_relative_error": calibration.summary["total_purchases_relative_error"] if calibration else None,
        "calibration": calibration.summary if calibration else None,
        "calibration_note": cal_note,
        "value_cut": float(pc["value_cut"]),
        "alive_cut": float(pc["alive_cut"]),
    }
    a.write_parquet(assign_p)
    if calibration:
        calibration.buckets.write_parquet(buckets_p)
        calibration.segments.write_parquet(calseg_p)
    write_json(info_p, info)
    by_cluster = expected_value_by_segment(a, "cluster", clv_col)
    seg_p = ctx.run_dir / "segments.json"
    rows = read_json(seg_p) if seg_p.is_file() else []
    write_json(seg_p, with_expected_clv(rows, by_cluster))
    met_p = ctx.run_dir / "metrics.json"
    metrics = read_json(met_p) if met_p.is_file() else {}
    metrics["predicted_value"] = {k: v for k, v in info.items() if k not in ("cautions", "calibration_note")}
    metrics["data_sufficiency"] = list(cautions)  # the run index's banner
    write_json(met_p, metrics)
    return _value_result(a, info, clv_col, buckets_p, calseg_p, _rule_col(ctx.cfg))


def _value_result(a: pl.DataFrame, info: dict[str, Any], clv_col: str, buckets_p: Path, calseg_p: Path,
                  rule_col: str = "tier") -> ValueStage:
    from segmentation_lib.segment.predicted import expected_value_by_segment, predicted_value_summary

    return ValueStage(a, info, predicted_value_summary(a, "value_churn", clv_col),
                      expected_value_by_segment(a, "rfm_segment", clv_col),
                      expected_value_by_segment(a, "cluster_name", clv_col),
                      expected_value_by_segment(a, rule_col, clv_col) if rule_col in a.columns else None,
                      pl.read_parquet(buckets_p) if buckets_p.is_file() else None,
                      pl.read_parquet(calseg_p) if calseg_p.is_file() else None, clv_col)


def _rule_col(cfg: Mapping[str, Any]) -> str:
    """The assignments column of the rule-based tiers (``rules.segment_col``, default ``tier``)."""
    return (cfg.get("rules") or {}).get("segment_col") or "tier"


def features_at_cutoff(cfg: Mapping[str, Any], transactions: pl.DataFrame | pl.LazyFrame | list[pl.LazyFrame],
                       cutoff: Any) -> pl.DataFrame:
    """The feature table as it was at ``cutoff``: purchase features of ``transactions`` (a frame, or the
    customer partitions of a large log, ``DataStage.parts``) and, with ``data.events``, the usage
    features of the events up to the cutoff."""
    from segmentation_lib.data.quality import parse_as_of
    from segmentation_lib.features.customer import customer_features, with_usage_features
    from segmentation_lib.features.customer import with_purchase_mix  # category / discount features

    parts = transactions if isinstance(transactions, list) else [transactions]
    windows = (cfg.get("features") or {}).get("windows") or (30, 90, 365)
    f = per_customer_part(parts, lambda p: customer_features(p, cutoff, windows=windows, partitions=1 if len(parts) > 1 else None))
    f = with_usage_features(f, dict(cfg), parse_as_of(cutoff))[0]
    return with_purchase_mix(f, pl.concat([p.lazy() for p in parts]), dict(cfg), parse_as_of(cutoff))[0]


def _rfm_at_cutoff(ctx: RunContext, data: DataStage, cutoff: dt.datetime) -> pl.DataFrame:
    """RFM segments of the customers as they were at the cutoff (the run's own score edges; no holdout data)."""
    cfg = ctx.cfg
    f, _ = with_customer_attributes(cutoff_features(ctx, data, cutoff), cfg)
    edges_p = ctx.run_dir / "rfm_edges.json"
    scorer = None
    if edges_p.is_file():
        from segmentation_lib.segment.rfm import RFMScorer

        scorer = RFMScorer.from_edges(edges_p)
    return rfm_assign(f, cfg, scorer).select("customer_id", pl.col("rfm_segment").alias("segment"))


def with_expected_clv(rows: list[dict[str, Any]], by_cluster: pl.DataFrame) -> list[dict[str, Any]]:
    """segments.json rows with ``expected_clv`` and ``expected_clv_share`` added (every other key unchanged).

    >>> t = pl.DataFrame({"cluster": [0, 1], "expected_clv": [30.0, 10.0], "expected_clv_share": [0.75, 0.25]})
    >>> with_expected_clv([{"id": 1, "name": "B"}], t)
    [{'id': 1, 'name': 'B', 'expected_clv': 10.0, 'expected_clv_share': 0.25}]
    """
    values = {int(r["cluster"]): r for r in by_cluster.iter_rows(named=True) if r["cluster"] is not None}
    out = []
    for row in rows:
        v = values.get(int(row["id"])) if row.get("id") is not None else None
        out.append({**row, "expected_clv": v["expected_clv"] if v else 0.0,
                    "expected_clv_share": v["expected_clv_share"] if v else None})
    return out


# --------------------------------------------------------------------------- 6: since last run


@dataclass
class HistoryStage:
    links: dict[str, Any]                  # reference and previous run folders (or None)
    comparison: Any                        # report.history.RunComparison (None on a first run)
    summary: dict[str, Any]                # the history block of metrics.json
    drift: Any = None                      # validate.drift.DriftReport (None without an earlier run)
    exports: dict[str, int] = field(default_factory=dict)
    retention: pl.DataFrame | None = None  # retention by the previous run's behavioural segment
    sizes: pl.DataFrame | None = None


@timed_stage("history")
def history_stage(ctx: RunContext, data: DataStage, rfm: RFMStage, clusters: ClusterStage) -> HistoryStage:
    """Compare with the previous run (transitions per method, size and revenue change, movers), drift against
    the reference (or the previous run), exports/, movers.csv, segment_history.parquet, segment_sizes.parquet;
    adds ``history`` and ``drift`` to metrics.json."""
    from segmentation_lib.report import history as hist
    from segmentation_lib.segment.rfm_maps import load_segment_map
    from segmentation_lib.validate.drift import drift_report
    from segmentation_lib.validate.movement import retention_by_segment

    cfg, hc = ctx.cfg, ctx.cfg.get("history") or {}
    links = hist.read_links(ctx.run_dir, cfg)
    cols = hist.methods(cfg)
    a = clusters.assignments
    sizes = hist.sizes_table(a, data.features, cols)
    sizes.write_parquet(ctx.run_dir / hist.SIZES_FILE)
    seg_map = load_segment_map(cfg["rfm"]["segment_map"], bins=int(cfg["rfm"]["bins"]))
    orders = {"rfm": list(seg_map.segments),
              "behavioural": [v for _, v in sorted((int(k), v) for k, v in clusters.info["names"].items())]}
    as_of = data.as_of.date().isoformat()
    prev_dir = Path(links["previous"]) if links.get("previous") else None
    comparison, drift, retention, prev = None, None, None, None
    summary: dict[str, Any] = {"reference": links.get("reference"), "previous": links.get("previous"),
                               "frozen": bool(links.get("reference"))}
    if prev_dir is not None:
        prev, prev_sizes, prev_metrics = hist.load_run(prev_dir)
        comparison = hist.compare_runs(prev, a, prev_sizes, sizes, cols, int(hc.get("top_flows", 5)), orders)
        summary.update(comparison.summary, previous_folder=prev_dir.name, previous_as_of=prev_metrics.get("as_of"),
                       as_of=as_of, movers=comparison.movers.height)
        comparison.movers.write_csv(ctx.run_dir / hist.MOVERS_FILE)
        retention = retention_by_segment(data.scan("customer_id", "timestamp", "amount"), prev.select("customer_id", pl.col("cluster_name").alias("segment")),
                                         dt.datetime.fromisoformat(prev_metrics["as_of"]).replace(tzinfo=dt.timezone.utc)
                                         if prev_metrics.get("as_of") else data.as_of, data.as_of)
    else:
        pl.DataFrame(schema={"customer_id": pl.String, "method": pl.String, "from_segment": pl.String,
                             "to_segment": pl.String, "reason": pl.String}).write_csv(ctx.run_dir / hist.MOVERS_FILE)
    # drift against the reference (frozen runs) or the previous run
    base = Path(links["reference"]) if links.get("reference") else prev_dir
    if base is not None and (base / "feature_bins.json").is_file() and (base / "assignments.parquet").is_file():
        feats = filled_features(*with_encoded(clusters.model, purchasing(data.features)))
        frozen = fresh = None
        if links.get("reference"):  # agreement of the frozen assignment with a fresh fit on this data
            frozen = cluster_labels_of(a, feats)
            fresh = make_segmenter(cfg, ctx.seed, n_segments=int(clusters.info["k"])).fit(purchasing(data.features)).labels_
        ref_a = pl.read_parquet(base / "assignments.parquet")
        drift = drift_report(read_json(base / "feature_bins.json"), feats,
                             ref_a.filter(pl.col("cluster") >= 0).select(pl.col("cluster_name").alias("segment")),
                             a.filter(pl.col("cluster") >= 0).select(pl.col("cluster_name").alias("segment")),
                             frozen, fresh, hc.get("drift"))
    # exports, history
    rc = cfg["rfm"]
    exports = hist.write_exports(
        ctx.run_dir, a, data.features,
        {"rfm": ["r_score", "f_score", "m_score", "rfm_code", rc["recency"], rc["frequency"], rc["monetary"]],
         "behavioural": list(cfg["clustering"]["features"])},
        {"rfm": dict(seg_map.actions), "behavioural": behavioural_actions(a, dict(seg_map.actions))},
        list(hc.get("export_columns") or []))
    prev_hist = None
    if prev_dir is not None and (prev_dir / hist.HISTORY_FILE).is_file():
        prev_hist = pl.read_parquet(prev_dir / hist.HISTORY_FILE)
    history = hist.history_rows(a, cols, as_of, links.get("run") or ctx.run_dir.name, prev, prev_hist)
    history.write_parquet(ctx.run_dir / hist.HISTORY_FILE)
    summary["exports"] = len(exports)
    summary["matching"] = clusters.info.get("matching")
    met_p = ctx.run_dir / "metrics.json"
    metrics = read_json(met_p) if met_p.is_file() else {}
    metrics["history"] = {k: v for k, v in summary.items() if k != "matching"}
    metrics["drift"] = drift.summary if drift else None
    metrics["drift_recommendation"] = drift.recommendation if drift else None
    write_json(met_p, metrics)
    return HistoryStage(links, comparison, summary, drift, exports, retention, sizes)


def cluster_labels_of(assignments: pl.DataFrame, features: pl.DataFrame) -> np.ndarray:
    """The cluster id of every row of ``features`` from the assignments (aligned on ``customer_id``)."""
    return assignments.join(features.select("customer_id"), on="customer_id", how="right")["cluster"].to_numpy()


def behavioural_actions(assignments: pl.DataFrame, rfm_actions: dict[str, str]) -> dict[str, str]:
    """Suggested action of each behavioural segment: the action of its most common RFM segment.

    >>> a = pl.DataFrame({"cluster_name": ["A", "A", "B"], "rfm_segment": ["Lost", "Lost", "Champions"]})
    >>> behavioural_actions(a, {"Lost": "win back", "Champions": "reward"})
    {'A': 'win back (as its most common RFM segment, Lost)', 'B': 'reward (as its most common RFM segment, Champions)'}
    """
    dom = dominant_rfm_segment(assignments, "cluster_name")
    return {c: f"{rfm_actions[r]} (as its most common RFM segment, {r})" for c, r, _ in dom.iter_rows()
            if c is not None and r in rfm_actions}


# --------------------------------------------------------------------------- feedback (profile pages)

FEEDBACK_FILE = "feedback.parquet"


def feedback_stage(ctx: RunContext, data: DataStage, recompute: bool = False) -> pl.DataFrame | None:
    """One row per customer with the configured survey and support signals (``feedback`` section), or None
    when none is configured; kept in ``work/feedback.parquet`` for the other profile pages."""
    from segmentation_lib.validate.feedback import customer_feedback, feedback_sources

    sources = feedback_sources(ctx.cfg)
    if not sources:
        return None
    path = ctx.work / FEEDBACK_FILE
    if not recompute and path.is_file():
        return pl.read_parquet(path)
    events = None
    if any(kind == "event" for kind, _ in sources.values()):
        from segmentation_lib.data.events import clean_events, load_events

        lf = load_events(ctx.cfg)
        events = clean_events(lf, data.as_of, ctx.cfg.get("quality"))[0] if lf is not None else None
    where = str(((ctx.cfg.get("data") or {}).get("customers") or {}).get("path") or "data.customers")
    fb = customer_feedback(data.features, ctx.cfg, events, where=where)
    fb.write_parquet(path)
    return fb
# --------------------------------------------------------------------------- shared by the validation and value stages


#: work/ file name prefix of the feature table at the holdout cutoff (then the cutoff, ``%Y%m%dT%H%M%S``)
CUTOFF_FEATURES_PREFIX = "features_cutoff_"


def cutoff_features(ctx: RunContext, data: DataStage, cutoff: dt.datetime) -> pl.DataFrame:
    """:func:`features_at_cutoff` of the clean transactions before ``cutoff``, computed once per run: the
    validation page (predictive validity, RFM migration) and the value page (segments at the cutoff) share
    it through ``work/features_cutoff_<cutoff>.parquet`` (removed when the data stage is recomputed)."""
    path = ctx.work / f"{CUTOFF_FEATURES_PREFIX}{cutoff:%Y%m%dT%H%M%S}.parquet"
    if path.is_file():
        return pl.read_parquet(path)
    with stage_timer(timing_dir(ctx), "features at the cutoff"):
        f = features_at_cutoff(ctx.cfg, [p.filter(pl.col("timestamp") < cutoff) for p in data.parts()], cutoff)
    ctx.work.mkdir(parents=True, exist_ok=True)
    f.write_parquet(path)
    return f
