"""Read the transaction log with Spark and apply the kit's data-quality rules on the engine.

The rules, their order, their policies and the report are those of ``data/quality.py``
(:data:`RULES`, :class:`QualityPolicy`, :class:`DataQualityReport`); only the counting runs on
Spark: one pass of flags, one aggregate of the counts, one aggregate per customer. What reaches
the driver is small: the counts, a few example rows per rule, the customers dropped entirely and
the outlier customers (both lists the single-machine report holds too).

Sources: ``data.table`` (a table or view name in the session's catalog, e.g. ``db.transactions``)
or ``data.path`` (a Parquet file, a folder of Parquet files or a glob), with the column mapping
of ``data.columns``. CSV and presets are read by the single-machine reader only: convert such a
log to Parquet (``segment check-data`` reads it) before a Spark run.

>>> clean, report = spark_transactions(spark, load_config("configs/default.yaml"))  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Mapping

import polars as pl

from segmentation_lib.data.quality import (DESCRIPTIONS, OUTLIER_REASON, RULES, DataQualityReport, QualityPolicy,
                                           RuleResult, outlier_note, parse_as_of)
from segmentation_lib.config import PLAUSIBLE_YEARS
from segmentation_lib.data.read import CANONICAL, NULL_TOKENS, resolve_mapping
from segmentation_lib.errors import ConfigError, DataError

#: exact sums of money on the engine: amounts as decimals (18 decimal places, magnitudes below 1e20),
#: so totals do not depend on how the cluster partitions or orders the rows
MONEY_TYPE = "decimal(38,18)"


def to_polars(sdf) -> pl.DataFrame:
    """A (small) Spark DataFrame on the driver as a polars frame, through Arrow.

    >>> to_polars(spark.range(3)).height  # doctest: +SKIP
    3
    """
    return pl.from_arrow(sdf.toArrow())


def _number_sql(column: str) -> str:
    x = f"CAST(`{column}` AS DOUBLE)"
    return f"CASE WHEN isnan({x}) THEN NULL ELSE {x} END"


def exact_quantiles(sdf, quantiles: Mapping[str, list[float]]) -> dict[str, list[float | None]]:
    """Linear-interpolated quantiles of columns of a Spark frame, bit for bit those of polars'
    ``quantile(q, interpolation="linear")`` (nulls and NaN left out).

    Two aggregates: the count of values per column, then the two order statistics around each
    position ``(n - 1) * q`` (``percentile_disc``, exact), interpolated on the driver with the
    polars formula ``lower + (upper - lower) * frac``. (Spark's own ``percentile`` interpolates
    with another formula, so its values can differ in the last bit.)

    >>> exact_quantiles(spark.range(5), {"id": [0.5, 0.9]})  # doctest: +SKIP
    {'id': [2.0, 3.6]}
    """
    from pyspark.sql import functions as F

    names = list(quantiles)
    counts = sdf.agg(*[F.count(F.expr(_number_sql(c))).alias(f"n{i}") for i, c in enumerate(names)]).first()
    plan, aggs = {}, []
    for i, c in enumerate(names):
        n = int(counts[f"n{i}"])
        plan[c] = []
        for q in quantiles[c]:
            if n == 0:
                plan[c].append(None)
                continue
            pos = (n - 1) * float(q)
            lo, hi = int(pos // 1), int(-(-pos // 1))
            keys = []
            for idx in (lo, hi):
                key = f"q{len(aggs)}"
                aggs.append(F.expr(f"percentile_disc({(idx + 0.5) / n!r}) WITHIN GROUP (ORDER BY {_number_sql(c)})").alias(key))
                keys.append(key)
            plan[c].append((keys, pos - lo))
    row = sdf.agg(*aggs).first() if aggs else {}
    out: dict[str, list[float | None]] = {}
    for c in names:
        out[c] = []
        for item in plan[c]:
            if item is None:
                out[c].append(None)
                continue
            (k_lo, k_hi), frac = item
            lower, upper = float(row[k_lo]), float(row[k_hi])
            out[c].append(lower + (upper - lower) * frac)
    return out


def read_source(spark, data: Mapping[str, Any]):
    """The raw Spark DataFrame named by ``data.table`` or ``data.path``, and a label for messages."""
    table = data.get("table")
    if table:
        try:
            return spark.table(str(table)), f"table {table}"
        except Exception as err:  # AnalysisException: no such table
            raise DataError(f"data.table: Spark cannot read the table '{table}' ({str(err).splitlines()[0]}). Fix: "
                            "name a table or view of the session's catalog (e.g. db.transactions), or set "
                            "data.path to Parquet files.") from None
    path = data.get("path")
    if not path:
        raise ConfigError("data.path and data.table are both unset. Fix: set data.path to Parquet files (a file, "
                          "a folder or a glob) or data.table to a table name.")
    path = str(path)
    if path.lower().endswith((".csv", ".tsv", ".txt", ".gz")):
        raise ConfigError(f"data.path '{path}' is a text file; the Spark engine reads Parquet files or tables. Fix: "
                          "convert the log to Parquet (e.g. polars: pl.scan_csv(path).sink_parquet(out)) or use "
                          "engine.kind: polars.")
    if data.get("preset"):
        raise ConfigError(f"data.preset '{data.get('preset')}' is applied by the single-machine reader only. Fix: "
                          "map the columns with data.columns for a Spark run, or use engine.kind: polars.")
    try:
        return spark.read.parquet(path), path
    except Exception as err:
        raise DataError(f"{path}: Spark cannot read these Parquet files ({str(err).splitlines()[0]}). Fix: point "
                        "data.path at a Parquet file, a folder of Parquet files or a glob such as "
                        "'lake/tx/*.parquet'.") from None


def canonical_frame(raw, columns: Mapping[str, str | None] | None, label: str, timezone: str = "UTC"):
    """The canonical columns (``customer_id`` text, ``timestamp`` UTC, ``amount`` double, ...) of ``raw``.

    The mapping is checked by the single-machine :func:`resolve_mapping` (same messages). Extra
    source columns are kept. Unparseable values become null, so the quality rules count them.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    mapping = resolve_mapping(list(raw.columns), columns, label)
    fields = {f.name: f.dataType for f in raw.schema.fields}
    out = []
    for canonical in CANONICAL:
        name = mapping[canonical]
        if name is None:
            continue
        col, kind = F.col(f"`{name}`"), fields[name]
        if canonical in ("customer_id", "order_id", "product_id"):
            if isinstance(kind, (T.FloatType, T.DoubleType)):
                e = F.when(F.isnan(col), None).when(col == F.round(col), col.cast("long").cast("string")).otherwise(col.cast("string"))
            elif isinstance(kind, T.StringType):
                e = F.trim(col)
                if canonical == "customer_id":
                    e = F.regexp_replace(e, r"^(-?\d+)\.0*$", "$1")
            else:
                e = col.cast("string")
        elif canonical == "timestamp":
            if isinstance(kind, T.TimestampType):
                e = col
            elif isinstance(kind, (T.TimestampNTZType, T.DateType)):
                e = F.to_utc_timestamp(col.cast("timestamp_ntz"), timezone)
            elif isinstance(kind, T.StringType):
                e = F.try_to_timestamp(F.trim(col))
            else:
                raise DataError(f"{label}: column '{name}' (timestamp) has type {kind.simpleString()}, not a date or time. "
                                "Fix: map data.columns.timestamp to the time column.")
        else:
            if not isinstance(kind, T.NumericType):
                e = F.expr(f"try_cast(`{name}` as double)")
            else:
                e = col.cast("double")
            e = F.when(F.isnan(e) | (F.abs(e) == float("inf")), None).otherwise(e)
        out.append(e.alias(canonical))
    if mapping["amount"] is None:
        q = F.col(f"`{mapping['quantity']}`").cast("double")
        p = F.col(f"`{mapping['unit_price']}`").cast("double")
        out.append((q * p).alias("amount"))
    used = {v for v in mapping.values() if v}
    extra = [F.col(f"`{c}`") for c in raw.columns if c not in used and c not in CANONICAL]
    return raw.select(*out, *extra)


def flag_columns(columns: list[str], as_of: dt.datetime | None) -> dict[str, Any]:
    """One boolean Spark column per rule of :data:`RULES` (the polars ``flag_exprs`` on the engine)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    amount, ts, cid = F.col("amount"), F.col("timestamp"), F.col("customer_id")
    returns = amount < 0
    if "is_cancellation" in columns:
        returns = returns | F.col("is_cancellation")
    future = (ts >= F.lit(as_of)) if as_of else F.lit(False)
    # exact duplicates: every copy after the first of a group of identical rows (a window
    # partitioned by the row's own values: rows spread over the cluster, never one partition)
    same = Window.partitionBy(*[F.col(f"`{c}`") for c in columns]).orderBy(F.lit(1))
    first, last = (dt.datetime(PLAUSIBLE_YEARS[0], 1, 1, tzinfo=dt.timezone.utc),
                   dt.datetime(PLAUSIBLE_YEARS[1] + 1, 1, 1, tzinfo=dt.timezone.utc))
    return {
        "null_customer": cid.isNull() | cid.isin(list(NULL_TOKENS)),
        "bad_timestamp": ts.isNull(),
        "implausible_timestamp": F.coalesce((ts < F.lit(first)) | (ts >= F.lit(last)), F.lit(False)),
        "non_numeric_amount": amount.isNull(),
        "future": F.coalesce(future, F.lit(False)),
        "duplicates": F.row_number().over(same) > 1,
        "zero_amount": F.coalesce(amount == 0, F.lit(False)),
        "returns": F.coalesce(returns, F.lit(False)),
    }


def example_rows(flagged, rule: str, columns: list[str], n: int = 5) -> pl.DataFrame:
    """Up to ``n`` rows failing ``rule`` (canonical columns), on the driver."""
    from pyspark.sql import functions as F

    return to_polars(flagged.filter(F.col(f"_f_{rule}")).select(*columns).limit(n))


def clean_spark(sdf, as_of: str | dt.date | dt.datetime | None = None, policy: QualityPolicy | Mapping | None = None,
                source: str | None = None):
    """The quality rules on a canonical Spark frame: ``(clean Spark frame, DataQualityReport)``.

    Same rules, order of attribution, counts and invariants as :func:`clean_transactions`
    (``rows_in - sum(excluded) == rows_out``); the clean frame is persisted (it feeds the
    feature passes). Money per customer is summed as decimals.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if policy is None:
        policy = QualityPolicy()
    elif not isinstance(policy, QualityPolicy):
        policy = QualityPolicy.from_config(policy)
    as_of_dt = parse_as_of(as_of)
    where = source or "transactions"
    columns = list(sdf.columns)
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in columns]
    if missing:
        raise DataError(f"{where}: the frame lacks the canonical column(s) {', '.join(missing)} (it has "
                        f"{', '.join(columns)}). Fix: map them with data.columns.")
    flags = flag_columns(columns, as_of_dt)
    reason = F.lit(None).cast("string")
    for rule in reversed(RULES):
        if policy.excludes(rule):
            reason = F.when(F.col(f"_f_{rule}"), F.lit(rule)).otherwise(reason)
    flagged = (sdf.select("*", *[v.alias(f"_f_{k}") for k, v in flags.items()])
               .withColumn("_reason", reason).persist(StorageLevel.MEMORY_AND_DISK))
    keep = F.col("_reason").isNull()
    valid = ~F.col("_f_null_customer")
    stats = flagged.agg(
        F.count(F.lit(1)).alias("rows_in"),
        *[F.sum(F.col(f"_f_{r}").cast("long")).alias(f"n_{r}") for r in RULES],
        *[F.sum((F.col("_reason") == r).cast("long")).alias(f"x_{r}") for r in RULES],
        F.max(F.when(keep, F.col("timestamp"))).alias("max_ts"),
    ).first().asDict()
    stats = {k: (0 if v is None and k != "max_ts" else v) for k, v in stats.items()}
    rows_in = int(stats["rows_in"])
    base_cols = [c for c in CANONICAL if c in columns]
    for rule in ("null_customer", "bad_timestamp", "implausible_timestamp"):
        if getattr(policy, rule) == "error" and stats[f"n_{rule}"]:
            ex = example_rows(flagged, rule, base_cols, 3).to_dicts()
            raise DataError(f"{where}: {stats[f'n_{rule}']:,} row(s) have a {DESCRIPTIONS[rule]} and quality.{rule} is "
                            f"'error' (e.g. {ex}). Fix: correct these rows, or set quality.{rule}: drop to exclude "
                            "and count them.")
    if rows_in and stats["n_non_numeric_amount"] == rows_in:
        raise DataError(f"{where}: none of the {rows_in:,} amounts is a number. Fix: map data.columns.amount (or "
                        "quantity and unit_price) to numeric columns.")
    if rows_in and stats["n_bad_timestamp"] == rows_in:
        raise DataError(f"{where}: none of the {rows_in:,} timestamps could be read. Fix: map data.columns.timestamp "
                        "to the time column (a Parquet timestamp, date or ISO-8601 text).")

    money = F.col("amount").cast(MONEY_TYPE)
    cust = (flagged.filter(valid).groupBy("customer_id").agg(
        F.count(F.lit(1)).alias("n_rows"),
        F.sum(keep.cast("long")).alias("kept_rows"),
        F.sum(F.when(keep, money).otherwise(F.lit(0).cast(MONEY_TYPE))).alias("net"),
        F.array_join(F.array_sort(F.collect_set("_reason")), ", ").alias("reason"),
        # customers affected per rule: one flag per customer here instead of a distinct count per rule
        *[F.max(F.col(f"_f_{r}").cast("int")).alias(f"_c_{r}") for r in RULES],
    )).persist(StorageLevel.MEMORY_AND_DISK)
    counts = cust.agg(F.count(F.lit(1)).alias("all"), F.sum((F.col("kept_rows") > 0).cast("long")).alias("kept"),
                      F.sum(((F.col("kept_rows") > 0) & (F.col("net") <= 0)).cast("long")).alias("nonpos"),
                      *[F.sum(F.col(f"_c_{r}")).alias(f"c_{r}") for r in RULES]).first()
    stats.update({f"c_{r}": int(counts[f"c_{r}"] or 0) for r in RULES})
    dropped = to_polars(cust.filter(F.col("kept_rows") == 0).select("customer_id", "n_rows", "reason")).sort("customer_id")
    if dropped.height == 0:
        dropped = pl.DataFrame(schema={"customer_id": pl.String, "n_rows": pl.Int64, "reason": pl.String})
    dropped = dropped.with_columns(pl.col("n_rows").cast(pl.UInt32))

    results: list[RuleResult] = []
    for rule in RULES:
        n = int(stats[f"n_{rule}"])
        ex_cols = base_cols + (["is_cancellation"] if rule == "returns" and "is_cancellation" in columns else [])
        ex = example_rows(flagged, rule, ex_cols) if n else pl.DataFrame()
        details = ""
        if rule == "future":
            details = f"as_of {as_of_dt.date().isoformat()}" if as_of_dt else "no as_of given: nothing is in the future"
        if rule == "returns":
            details = f"{int(counts['nonpos'] or 0):,} customer(s) end with net spend <= 0"
        results.append(RuleResult(rule, n, int(stats[f"x_{rule}"]), None if rule == "null_customer" else int(stats[f"c_{rule}"]),
                                  policy.action(rule), ex, details))
    results.append(RuleResult("mixed_time_zones", 0, 0, 0, "converted to UTC (kept)", pl.DataFrame(),
                              "no UTC offsets in the data"))

    kept_cust = cust.filter(F.col("kept_rows") > 0)
    out_rule, outliers = spark_outliers(kept_cust, policy)
    results.append(out_rule)
    out = flagged.filter(keep)
    notes: list[str] = []
    ids = F.broadcast(kept_cust.sparkSession.createDataFrame(outliers.select("customer_id").to_arrow())) \
        if outliers.height else None
    if policy.outliers == "exclude" and outliers.height:
        out = out.join(ids, on="customer_id", how="left_anti")
        extra = to_polars(cust.join(ids, on="customer_id", how="left_semi").select("customer_id", "n_rows"))
        extra = extra.with_columns(pl.col("n_rows").cast(pl.UInt32), pl.lit(OUTLIER_REASON).alias("reason"))
        dropped = pl.concat([dropped, extra.select(dropped.columns)]).sort("customer_id")
    if outliers.height and policy.outliers in ("exclude", "flag"):
        notes.append(outlier_note(policy.outliers, outliers.height, out_rule))
    is_return = F.col("amount") < 0
    if "is_cancellation" in columns:
        is_return = is_return | F.col("is_cancellation")
    out = out.select(*[F.col(f"`{c}`") for c in columns], is_return.alias("is_return"))
    if policy.outliers == "flag":
        if outliers.height:
            out = (out.join(ids.withColumn("is_outlier", F.lit(True)), on="customer_id", how="left")
                   .withColumn("is_outlier", F.coalesce(F.col("is_outlier"), F.lit(False))))
        else:
            out = out.withColumn("is_outlier", F.lit(False))
    out = out.persist(StorageLevel.MEMORY_AND_DISK)
    rows_out = out.count()
    flagged.unpersist()
    cust.unpersist()

    inferred = as_of_dt is None
    if inferred and stats["max_ts"] is not None:
        last = stats["max_ts"].astimezone(dt.timezone.utc) if stats["max_ts"].tzinfo else stats["max_ts"]
        as_of_dt = dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    report = DataQualityReport(
        source=source, as_of=as_of_dt, as_of_inferred=inferred, policy=policy,
        rows_in=rows_in, rows_out=rows_out, customers_in=int(counts["all"] or 0),
        customers_out=int(counts["kept"] or 0) - (outliers.height if policy.outliers == "exclude" else 0),
        rules=results, dropped_customers=dropped, notes=notes, outlier_customers=outliers,
    )
    if rows_out == 0:
        top = ", ".join(f"{r.rule}: {r.excluded:,}" for r in results if r.excluded)
        raise DataError(f"{where}: no rows are left after the quality checks ({rows_in:,} rows in; excluded by "
                        f"{top or 'nothing'}). Fix: check run.as_of (rows at or after it are dropped), the column "
                        "mapping, or relax the quality: policies.")
    return out, report


def spark_outliers(kept_cust, policy: QualityPolicy) -> tuple[RuleResult, pl.DataFrame]:
    """The outlier rule on the engine: customers whose kept net spend is above the exact linear
    ``outlier_quantile`` of all kept customers (:func:`exact_quantiles`, as polars)."""
    from pyspark.sql import functions as F

    action = policy.action("outliers")
    empty = pl.DataFrame(schema={"customer_id": pl.String, "rows": pl.Int64, "net_spend": pl.Float64})
    net = F.col("net").cast("double")
    threshold = exact_quantiles(kept_cust.select(net.alias("net")), {"net": [float(policy.outlier_quantile)]})["net"][0]
    if threshold is None:
        return RuleResult("outliers", 0, 0, 0, action), empty
    top = to_polars(kept_cust.filter(net > threshold).select(
        "customer_id", F.col("kept_rows").cast("long").alias("rows"), net.alias("net_spend")))
    if top.height == 0:
        top = empty
    top = top.sort(["net_spend", "customer_id"], descending=[True, False])
    rows = int(top["rows"].sum())
    return (RuleResult("outliers", rows, rows if policy.outliers == "exclude" else 0, top.height, action, top.head(5),
                       f"net spend > {threshold:,.2f} (quantile {policy.outlier_quantile})"),
            top)


def spark_transactions(spark, config: Mapping[str, Any]):
    """Read and clean the log named by a run configuration on Spark: ``(clean frame, report)``."""
    data = dict(config.get("data") or {})
    raw, label = read_source(spark, data)
    columns = data.get("columns")
    sdf = canonical_frame(raw, columns, label, data.get("timezone") or "UTC")
    policy = QualityPolicy.from_config(config.get("quality"))
    as_of = (config.get("run") or {}).get("as_of")
    return clean_spark(sdf, as_of=as_of, policy=policy, source=label)
