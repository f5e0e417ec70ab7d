"""The exposures table of an experiment: who saw which variant when, read and checked.

Columns are mapped in the configuration like the transaction log (``experiment.columns``: canonical
name -> column in the file). Canonical columns: ``customer_id``, ``variant``, ``exposure_time``
(required), ``stratum`` (optional: a day or traffic-split period), and optional outcome columns
``converted`` / ``revenue`` / ``orders`` when outcomes are given rather than computed from the log.

Every row that cannot be used is counted, never silently dropped: rows without an id, variant or
parseable time; customers exposed to more than one variant (excluded: their outcome belongs to
neither); repeat exposures of a customer to the same variant (the first one counts).

>>> ex = pl.DataFrame({"customer_id": ["a", "b", "b"], "variant": ["control", "treatment", "treatment"],
...                    "exposure_time": ["2024-01-01", "2024-01-02", "2024-01-03"]})
>>> clean, report = check_exposures(ex, control="control")
>>> clean.height, report["repeat_exposures"]
(2, 1)
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import polars as pl

from segmentation_lib.data.read import normalize_id, parse_number, polars_error_message, timestamp_exprs
from segmentation_lib.errors import ConfigError, DataError

#: canonical exposure columns; the first three are required
CANONICAL = ("customer_id", "variant", "exposure_time", "stratum", "converted", "revenue", "orders")
REQUIRED = ("customer_id", "variant", "exposure_time")
TS_DTYPE = pl.Datetime("us", "UTC")


def _read_file(path: Path) -> pl.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: exposures file not found. Fix: pass an existing CSV or Parquet file with "
                        "--exposures (or set experiment.path; relative paths start at the configuration's folder), "
                        "or run `segment demo-experiment` to create the demo experiment.")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pl.read_parquet(path)
        return pl.read_csv(path, infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as err:
        raise DataError(polars_error_message(err, str(path))) from None


def map_columns(frame: pl.DataFrame, columns: Mapping[str, str | None] | None, label: str = "exposures") -> pl.DataFrame:
    """Rename the mapped source columns to the canonical names; a missing required column raises DataError.

    >>> map_columns(pl.DataFrame({"cid": ["a"], "arm": ["B"], "t": ["2024-01-01"]}),
    ...             {"customer_id": "cid", "variant": "arm", "exposure_time": "t"}).columns
    ['customer_id', 'variant', 'exposure_time']
    """
    columns = dict(columns or {})
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise ConfigError(f"experiment.columns: unknown key(s) {', '.join(unknown)}. Fix: use only "
                          f"{', '.join(CANONICAL)} (canonical name -> column in the exposures file).")
    renames: dict[str, str] = {}
    for canonical in CANONICAL:
        name = columns.get(canonical, canonical)
        if name is None:
            continue
        if name in frame.columns:
            renames[name] = canonical
        elif canonical in REQUIRED or name != canonical:  # an optional column left at its own name may be absent
            raise DataError(f"{label}: column '{name}' (experiment.columns.{canonical}) not found; the file's columns "
                            f"are: {', '.join(frame.columns)}. Fix: map experiment.columns.{canonical} to the column "
                            "that holds it" + ("." if canonical in REQUIRED else ", or set it to null."))
    return frame.select([pl.col(src).alias(dst) for src, dst in renames.items()])


def _time_expr(frame: pl.DataFrame, timezone: str, date_format: str | None) -> pl.Expr:
    dtype = frame.schema["exposure_time"]
    col = pl.col("exposure_time")
    if isinstance(dtype, pl.Datetime):
        ts = col.cast(pl.Datetime("us", dtype.time_zone))
        return ts.dt.convert_time_zone("UTC") if dtype.time_zone else ts.dt.replace_time_zone(timezone).dt.convert_time_zone("UTC")
    if dtype == pl.Date:
        return col.cast(pl.Datetime("us")).dt.replace_time_zone(timezone).dt.convert_time_zone("UTC")
    return timestamp_exprs(col.cast(pl.String), date_format, timezone)[0]


def check_exposures(frame: pl.DataFrame, control: str, label: str = "exposures", timezone: str = "UTC",
                    date_format: str | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """One row per exposed customer (first exposure) and the report of every row left out.

    ``frame`` has canonical column names. Raises DataError when fewer than two variants remain or
    the control variant is absent.
    """
    n_in = frame.height
    exprs = [normalize_id(pl.col("customer_id").cast(pl.String)).alias("customer_id"),
             pl.col("variant").cast(pl.String).str.strip_chars().alias("variant"),
             _time_expr(frame, timezone, date_format).alias("exposure_time")]
    if "stratum" in frame.columns:
        exprs.append(pl.col("stratum").cast(pl.String).str.strip_chars().alias("stratum"))
    for name in ("converted", "revenue", "orders"):
        if name in frame.columns:
            col = pl.col(name)
            if frame.schema[name] == pl.Boolean:
                exprs.append(col.cast(pl.Float64).alias(name))
            elif frame.schema[name] == pl.String:
                low = col.str.strip_chars().str.to_lowercase()
                exprs.append(pl.when(low.is_in(["true", "yes"])).then(1.0).when(low.is_in(["false", "no"])).then(0.0)
                             .otherwise(parse_number(col)).alias(name))
            else:
                exprs.append(col.cast(pl.Float64, strict=False).alias(name))
    df = frame.select(exprs)
    bad = df.filter(pl.any_horizontal(pl.col(c).is_null() | (pl.col(c).cast(pl.String) == "")
                                      for c in ("customer_id", "variant", "exposure_time")))
    df = df.filter(pl.col("customer_id").is_not_null() & (pl.col("customer_id") != "")
                   & pl.col("variant").is_not_null() & (pl.col("variant") != "") & pl.col("exposure_time").is_not_null())
    for name in ("converted", "revenue", "orders"):
        if name in df.columns and df[name].null_count():
            n_null = df[name].null_count()
            row = int(df.with_row_index("row").filter(pl.col(name).is_null())["row"][0])
            raise DataError(f"{label}: {n_null} row(s) have no usable value in the outcome column '{name}' (first: "
                            f"customer {df['customer_id'][row]!r}). "
                            f"Fix: give every exposure a number (0 when nothing happened) or set "
                            f"experiment.columns.{name} to null to compute it from the transaction log.")
    per_customer = df.group_by("customer_id").agg(pl.col("variant").n_unique().alias("n_variants"), pl.len().alias("n_rows"))
    mixed = per_customer.filter(pl.col("n_variants") > 1)
    df = df.join(mixed.select("customer_id"), on="customer_id", how="anti")
    first = df.sort(["customer_id", "exposure_time"]).unique("customer_id", keep="first", maintain_order=True)
    variants = first.group_by("variant").len().sort("variant")
    names = variants["variant"].to_list()
    if control not in names:
        raise ConfigError(f"{label}: the control variant '{control}' (experiment.control) is not among the variants "
                          f"{names}. Fix: set experiment.control to the name of the control group.")
    if len(names) < 2:
        raise DataError(f"{label}: only one variant ({', '.join(names) or 'none'}) remains after the checks. Fix: "
                        "give the exposures of the control and at least one treatment variant.")
    report = {
        "rows_in": n_in,
        "rows_without_id_variant_or_time": bad.height,
        "customers_in_several_variants": mixed.height,
        "customers_in_several_variants_examples": mixed["customer_id"].sort().head(5).to_list(),
        "repeat_exposures": int(df.height - first.height),
        "customers": first.height,
        "variants": {v: n for v, n in sorted(zip(names, variants["len"].to_list()), key=lambda vn: vn[0] != control)},
        "control": control,
        "start": first["exposure_time"].min().isoformat(),
        "end": first["exposure_time"].max().isoformat(),
    }
    order = [control] + [n for n in names if n != control]
    first = first.with_columns(pl.col("variant").cast(pl.Enum(order)))
    return first.sort(["customer_id"]), report


def read_exposures(source: str | Path, columns: Mapping[str, str | None] | None = None, control: str = "control",
                   timezone: str = "UTC", date_format: str | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Read an exposures CSV / Parquet file, map its columns and check it (see ``check_exposures``).

    >>> clean, report = read_exposures("data/demo/exposures.parquet")  # doctest: +SKIP
    """
    path = Path(source)
    mapped = map_columns(_read_file(path), columns, label=str(path))
    if mapped.height == 0:
        raise DataError(f"{path}: the exposures file has no rows. Fix: export the exposures again.")
    return check_exposures(mapped, control, label=str(path), timezone=timezone, date_format=date_format)


def load_exposures(config: Mapping[str, Any], source: str | Path | None = None) -> tuple[pl.DataFrame, dict[str, Any]]:
    """The exposures named by ``experiment.path`` (or ``source``) of a run configuration, read and checked."""
    ex = config.get("experiment") or {}
    source = source if source is not None else ex.get("path")
    if not source:
        raise ConfigError("No exposures file: experiment.path is null and none was given. Fix: pass --exposures FILE "
                          "or set experiment.path in the configuration.")
    data = config.get("data") or {}
    return read_exposures(source, ex.get("columns"), control=str(ex.get("control", "control")),
                          timezone=data.get("timezone") or "UTC", date_format=ex.get("date_format"))
