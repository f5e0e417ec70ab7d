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
from typing import Any

import polars as pl

from .errors import DataError


def _is_feature_table(path: Path, feature_names: list[str]) -> bool:
    if path.suffix.lower() not in {".parquet", ".pq"}:
        return False
    try:
        cols = pl.read_parquet_schema(path).keys()
    except Exception:  # unreadable files are reported by the transaction reader
        return False
    return "customer_id" in cols and all(f in cols for f in feature_names)


def features_for_scoring(data: str | Path, feature_names: list[str], config: str | Path | None = None,
                         as_of: str | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Feature table for ``data`` (a feature table as is, or computed from a transaction log)."""
    from .config import load_config, resolve_config
    from .features import customer_features
    from .quality import load_transactions

    path = Path(data)
    if _is_feature_table(path, feature_names):
        return pl.read_parquet(path), {"input": "feature table", "rows": None}
    cfg = load_config(config) if config else resolve_config({})
    cfg["data"]["path"] = str(path.resolve())
    if as_of:
        cfg["run"]["as_of"] = as_of
    tx, report = load_transactions(cfg)
    feats = customer_features(tx, as_of=report.as_of)
    return feats, {"input": "transaction log", "quality": report, "as_of": report.as_of.isoformat()}


def score_file(model: str | Path, data: str | Path, out: str | Path, config: str | Path | None = None,
               as_of: str | None = None) -> str:
    """Score every customer of ``data`` with the saved ``model`` and write ``out`` (.parquet or .csv)."""
    from .persistence import load_model, score_customers

    out = Path(out)
    if out.suffix.lower() not in {".parquet", ".csv"}:
        raise DataError(f"Output file '{out}' must end in .parquet or .csv. Fix: choose e.g. --out scores.parquet.")
    segmenter = load_model(model)
    names = list(getattr(segmenter, "feature_names_in_", getattr(segmenter, "features", [])))
    feats, info = features_for_scoring(data, names, config=config, as_of=as_of)
    scored = score_customers(segmenter, feats)
    report = info.get("quality")
    if report is not None and report.dropped_customers.height:
        # customers whose every row was excluded by the data-quality rules: listed, never silently dropped
        dropped = report.dropped_customers.select(
            "customer_id", pl.concat_str(pl.lit("not scored: no usable rows ("), pl.col("reason"), pl.lit(")")).alias("status"))
        scored = pl.concat([scored, dropped], how="diagonal_relaxed")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    if out.suffix.lower() == ".csv":
        scored.write_csv(tmp)
    else:
        scored.write_parquet(tmp)
    tmp.replace(out)
    n = scored.height
    assigned = scored.filter(pl.col("segment").is_not_null()).height if "segment" in scored.columns else n
    return f"Scored {n:,} customers from a {info['input']} ({assigned:,} assigned, {n - assigned:,} not scorable) -> {out}"
