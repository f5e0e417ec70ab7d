"""Score new customers with a saved segmentation: `segment score --model M --data D --out O`.

The input is either a customer feature table (it has ``customer_id`` and every feature the model
was trained on) or a transaction log, from which the feature table is computed with the same
definitions as in training. Every input customer appears in the output: customers whose features
cannot be computed get ``status`` explaining why and a null segment, they are never dropped.

>>> score_file("reports/run/model.joblib", "new_log.parquet", "scores.parquet")  # doctest: +SKIP
'Scored 1,000 customers (998 assigned, 2 not scorable) -> scores.parquet'
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from segmentation_lib.errors import DataError, ModelError, SegmentationError


#: file starts that mark data rather than a model (Parquet); Office files and text files are detected separately
_DATA_MAGIC = (b"PAR1",)


def check_model_file(path: str | Path) -> None:
    """Raise ModelError when ``path`` is plainly not a saved model (a CSV, text, Parquet or Excel file).

    >>> check_model_file("transactions.csv")  # doctest: +SKIP
    ModelError: '--model transactions.csv' is not a model saved by `segment run` (model.joblib) ...
    """
    p = Path(path)
    if not p.is_file():
        return  # the model loader reports missing files
    with p.open("rb") as fh:
        head = fh.read(2048)
    kind = None
    if head.startswith(b"PK\x03\x04"):
        if not _zip_holds(p, "[Content_Types].xml"):
            return  # a model file (format 2, a zip archive) or a damaged one: the model loader reports it
        kind = "an Excel (or other Office) file"
    elif head.startswith(_DATA_MAGIC):
        kind = "a Parquet data file"
    elif head and b"\x00" not in head:
        try:
            head.decode("utf-8")
            kind = "a text file (CSV, YAML, ...)"
        except UnicodeDecodeError:
            kind = None
    if kind:
        raise ModelError(f"--model '{p}' is {kind}, not a model saved by `segment run` (model.joblib). "
                         "Fix: pass the model.joblib of a run folder, e.g. --model reports/<run>/model.joblib; "
                         "the customers to score go in --data.")


def _zip_holds(path: Path, member: str) -> bool:
    """True for a readable zip archive with ``member`` in it (``[Content_Types].xml``: an Office file)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return member in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _is_feature_table(path: Path, feature_names: list[str]) -> bool:
    if path.suffix.lower() not in {".parquet", ".pq"} or not path.is_file():  # (a FIFO would block the reader)
        return False
    try:
        cols = pl.read_parquet_schema(path).keys()
    except Exception:  # unreadable files are reported by the transaction reader
        return False
    return "customer_id" in cols and all(f in cols for f in feature_names)


def _check_partial_feature_table(path: Path, feature_names: list[str]) -> None:
    """DataError for a Parquet feature table (customer_id and features, no timestamp) that lacks some
    of the model's features: without this it is read as a transaction log ("column 'timestamp' ...")."""
    if path.suffix.lower() not in {".parquet", ".pq"} or not path.is_file():
        return
    try:
        cols = set(pl.read_parquet_schema(path))
    except Exception:  # unreadable files are reported by the transaction reader
        return
    present = [f for f in feature_names if f in cols]
    missing = [f for f in feature_names if f not in cols]
    if "customer_id" in cols and "timestamp" not in cols and present and missing:
        raise DataError(
            f"{path}: this looks like a customer feature table (customer_id and {len(present)} of the model's "
            f"{len(feature_names)} features, no timestamp), but it lacks the feature(s) {', '.join(missing)} the model "
            "was trained on. Fix: compute the table with customer_features (the run's features.windows) so it holds "
            "every feature, or pass the transaction log with --data to compute them from it."
        )


def features_for_scoring(data: str | Path, feature_names: list[str], config: str | Path | None = None,
                         as_of: str | None = None, overrides: Mapping[str, Any] | None = None
                         ) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Feature table for ``data`` (a feature table as is, or computed from a transaction log);
    ``overrides`` (e.g. ``{"data": {"preset": "online_retail"}}``) apply on top of ``config``."""
    from segmentation_lib.config import load_config, resolve_config
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.data.quality import load_transactions

    path = Path(data)
    if _is_feature_table(path, feature_names):
        return pl.read_parquet(path), {"input": "feature table", "rows": None}
    _check_partial_feature_table(path, feature_names)
    cfg = load_config(config, overrides=overrides) if config else resolve_config(dict(overrides or {}))
    cfg["data"]["path"] = str(path.resolve())
    if as_of:
        cfg["run"]["as_of"] = as_of
    try:
        tx, report = load_transactions(cfg)
    except DataError as exc:
        if config or "data.columns" not in str(exc):
            raise
        raise DataError(_without_config_hint(str(exc))) from None
    feats = customer_features(tx, as_of=report.as_of)
    from segmentation_lib.features.customer import with_purchase_mix  # category / discount features, when configured

    feats = with_purchase_mix(feats, tx, cfg, report.as_of)[0]
    feats = with_model_attributes(feats, feature_names, cfg)
    return feats, {"input": "transaction log", "quality": report, "as_of": report.as_of.isoformat(),
                   "transactions": tx, "as_of_dt": report.as_of, "predict": cfg.get("predict")}


def with_model_attributes(feats: pl.DataFrame, feature_names: list[str], cfg: Mapping[str, Any]) -> pl.DataFrame:
    """``feats`` with the customer table (``data.customers``) joined when the model needs columns the log
    cannot give (text attributes such as ``plan_tier`` under ``clustering.encodings``), as a run joins it."""
    from segmentation_lib.data.read import attach_customers, load_customers

    if all(f in feats.columns for f in feature_names):
        return feats
    customers = load_customers(cfg)
    if customers is None:
        return feats  # score_customers names the missing columns
    return attach_customers(feats, customers)[0]


def with_predictions(scored: pl.DataFrame, transactions: pl.DataFrame, as_of: Any,
                     settings: Mapping[str, Any]) -> tuple[pl.DataFrame, list[str]]:
    """``scored`` with the run's predicted columns (P(alive), expected purchases, spend, CLV, churn risk,
    value x churn-risk cell) for every customer with a purchase (null for the others), and the
    data-sufficiency cautions. The models are fitted on the log given, as a run fits them.
    """
    from segmentation_lib.features.btyd import btyd_summary
    from segmentation_lib.predict.sufficiency import check_data_sufficiency
    from segmentation_lib.segment.predicted import predicted_segments

    buyers = transactions.filter(pl.col("amount") > 0).select("customer_id").unique()
    summary = btyd_summary(transactions.join(buyers, on="customer_id", how="semi"), as_of, freq=str(settings["freq"]))
    cautions = check_data_sufficiency(summary, freq=str(settings["freq"]))
    try:
        predicted, _, _ = predicted_segments(summary, settings)
    except SegmentationError as exc:  # too little data for the models: the segments are still scored
        return scored, [*cautions, f"not computed for this log: {exc}"]
    return scored.join(predicted, on="customer_id", how="left", maintain_order="left"), cautions


def _without_config_hint(message: str) -> str:
    """Rewrite a column-mapping error for a score run without --config (the mapping is the run's).

    >>> _without_config_hint("log.csv: column 'customer_id' does not exist. Fix: set data.columns.customer_id.")
    "log.csv: column 'customer_id' does not exist. Without --config the default column names are expected (customer_id, timestamp, amount, ...). Fix: pass --config with the configuration of the run that saved the model (its data.columns maps these columns), or a configuration of your own that maps them (set data.columns.customer_id)."
    """
    head, _, fix = message.partition(" Fix: ")
    own = f" ({fix.rstrip('.')})" if fix else ""
    return (f"{head} Without --config the default column names are expected (customer_id, timestamp, amount, ...). "
            "Fix: pass --config with the configuration of the run that saved the model (its data.columns maps "
            f"these columns), or a configuration of your own that maps them{own}.")


def score_file(model: str | Path, data: str | Path, out: str | Path, config: str | Path | None = None,
               as_of: str | None = None, trust_model: bool = False,
               overrides: Mapping[str, Any] | None = None) -> str:
    """Score every customer of ``data`` with the saved ``model`` and write ``out`` (.parquet or .csv).

    The model file must be recorded (SHA-256) in the ``manifest.json`` beside it; ``trust_model``
    opens it without that check (only for files you made yourself, see ``load_model``).
    """
    from segmentation_lib.score.persistence import load_model, score_customers

    out = Path(out)
    if out.suffix.lower() not in {".parquet", ".csv"}:
        raise DataError(f"Output file '{out}' must end in .parquet or .csv. Fix: choose e.g. --out scores.parquet.")
    out.parent.mkdir(parents=True, exist_ok=True)  # fails early (OSError) on an unusable output folder
    check_model_file(model)
    segmenter = load_model(model, trust_model=trust_model)
    names = list(getattr(segmenter, "feature_names_in_", getattr(segmenter, "features", [])))
    feats, info = features_for_scoring(data, names, config=config, as_of=as_of, overrides=overrides)
    scored = score_customers(segmenter, feats)
    cautions: list[str] = []
    if info.get("transactions") is not None and info.get("predict"):
        scored, cautions = with_predictions(scored, info["transactions"], info["as_of_dt"], info["predict"])
    report = info.get("quality")
    if report is not None and report.dropped_customers.height:
        # customers whose every row was excluded by the data-quality rules: listed, never silently dropped
        dropped = report.dropped_customers.select(
            "customer_id", pl.concat_str(pl.lit("not scored: no usable rows ("), pl.col("reason"), pl.lit(")")).alias("status"))
        scored = pl.concat([scored, dropped], how="diagonal_relaxed")
    tmp = out.with_name(out.name + ".partial")
    try:
        if out.suffix.lower() == ".csv":
            scored.write_csv(tmp)
        else:
            scored.write_parquet(tmp)
        tmp.replace(out)
    finally:  # a full disk or an interrupt leaves no half-written file
        tmp.unlink(missing_ok=True)
    n = scored.height
    assigned = scored.filter(pl.col("segment").is_not_null()).height if "segment" in scored.columns else n
    text = f"Scored {n:,} customers from a {info['input']} ({assigned:,} assigned, {n - assigned:,} not scorable) -> {out}"
    if cautions:
        text += "\nPredicted value: " + " ".join(cautions)
    shift = segment_shift(getattr(segmenter, "segment_shares_", None), scored)
    if shift is not None and shift > SHIFT_WARNING:
        text += (f"\nWarning: the segment sizes differ strongly from the training run (total variation "
                 f"{shift:.0%}). If this log holds only recent transactions, score the customers' whole history: "
                 "features such as n_orders and total_spend are computed from the log given.")
    return text


#: total variation distance between scored and training segment shares above which `score` warns
SHIFT_WARNING = 0.3


def segment_shift(training_shares: dict[int, float] | None, scored: pl.DataFrame) -> float | None:
    """Total variation distance (0..1) between the training segment shares and the scored ones.

    >>> segment_shift({0: 0.5, 1: 0.5}, pl.DataFrame({"segment": [0, 0, 0, 1]}))
    0.25
    """
    if not training_shares or "segment" not in scored.columns:
        return None
    got = scored.filter(pl.col("segment").is_not_null() & (pl.col("segment") >= 0))["segment"]
    if got.len() == 0:
        return None
    counts = dict(got.value_counts().iter_rows())
    ids = set(training_shares) | set(counts)
    return 0.5 * sum(abs(training_shares.get(i, 0.0) - counts.get(i, 0) / got.len()) for i in ids)
