"""One Spark session builder from the ``engine:`` section of the configuration.

``pyspark`` is optional (the ``spark`` extra); importing this module does not import it, so the
kit works without Spark until ``engine.kind: spark`` is asked for.

>>> engine_settings({"engine": {"kind": "spark", "master": "local[2]"}})["partitions"]
8
"""
from __future__ import annotations

import shutil
from typing import Any, Mapping

from segmentation_lib.errors import ConfigError

#: engine kinds of ``engine.kind``
ENGINES = ("polars", "spark")

#: environment variable that overrides ``engine.kind`` (``segment run --engine spark`` sets it, so the
#: report notebooks' kernels, which inherit the environment, use the same engine)
ENGINE_ENV = "SEGMENTATION_ENGINE"

#: defaults of the ``engine:`` section (configs/default.yaml holds the documented copy)
DEFAULT_ENGINE = {"kind": "polars", "master": "local[2]", "app_name": "segmentation-kit", "partitions": 8, "conf": {}}

#: settings every session gets unless ``engine.conf`` says otherwise: UTC session time (the kit's
#: days are UTC days), no UI, Arrow transfers to and from pandas/polars
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.ui.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    # Parquet timestamps as UTC microseconds (not INT96): polars and pyarrow read them as Datetime("us", "UTC")
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


def engine_settings(cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``engine`` section merged over :data:`DEFAULT_ENGINE` and checked.

    >>> engine_settings({})["kind"]
    'polars'
    """
    import os

    section = dict((cfg or {}).get("engine") or {})
    out = {**DEFAULT_ENGINE, **{k: v for k, v in section.items() if v is not None}}
    if os.environ.get(ENGINE_ENV):
        out["kind"] = os.environ[ENGINE_ENV].strip()
    if out["kind"] not in ENGINES:
        raise ConfigError(f"engine.kind: '{out['kind']}' is not an engine (engine.kind or ${ENGINE_ENV}). Fix: use one "
                          f"of {', '.join(ENGINES)}.")
    p = out["partitions"]
    if isinstance(p, bool) or not isinstance(p, int) or p < 1:
        raise ConfigError(f"engine.partitions: {p!r} must be a whole number >= 1 (shuffle partitions). Fix: use e.g. 8 "
                          "locally, or about 2-3 per executor core on a cluster.")
    if not isinstance(out["conf"], Mapping):
        raise ConfigError(f"engine.conf must map Spark settings to values, got {out['conf']!r}. Fix: write e.g. "
                          "{spark.executor.memory: 8g}.")
    return out


def is_spark(cfg: Mapping[str, Any] | None) -> bool:
    """True when the configuration asks for the Spark engine (``engine.kind: spark``)."""
    return engine_settings(cfg)["kind"] == "spark"


def java_available() -> bool:
    """True when a ``java`` executable is on the PATH (or JAVA_HOME is set): Spark needs a JVM."""
    import os

    return bool(os.environ.get("JAVA_HOME")) or shutil.which("java") is not None


def spark_session(cfg: Mapping[str, Any] | None = None, **overrides: Any):
    """The active Spark session, or a new one built from the ``engine`` section.

    ``master`` (``local[2]`` by default; ``yarn``, ``spark://host:7077``, ... on a cluster, or leave
    it to ``spark-submit``), ``app_name``, ``partitions`` (``spark.sql.shuffle.partitions``) and
    ``conf`` (any Spark setting) come from the configuration; ``overrides`` replace them. Under
    spark-submit or on Databricks the session already exists and is returned as it is (only
    ``partitions`` and ``conf`` are applied, as runtime settings).

    >>> spark = spark_session({"engine": {"kind": "spark", "master": "local[2]"}})  # doctest: +SKIP
    """
    settings = {**engine_settings(cfg), **overrides}
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise ConfigError("engine.kind is 'spark' but pyspark is not installed. Fix: pip install "
                          "'segmentation-kit[spark]' (or pip install pyspark), with Java 17 or newer.") from None
    active = SparkSession.getActiveSession()
    conf = {**BASE_CONF, **{str(k): str(v) for k, v in settings["conf"].items()}}
    conf["spark.sql.shuffle.partitions"] = str(settings["partitions"])
    if active is not None:
        for key, value in conf.items():
            try:
                active.conf.set(key, value)
            except Exception:  # static settings (e.g. spark.ui.enabled) cannot change on a running session
                pass
        return active
    if not java_available():
        raise ConfigError("engine.kind is 'spark' but no Java runtime was found (java is not on the PATH and "
                          "JAVA_HOME is not set). Fix: install Java 17 or newer (e.g. apt-get install openjdk-17-jre-headless).")
    builder = SparkSession.builder.appName(str(settings["app_name"]))
    if settings.get("master"):
        builder = builder.master(str(settings["master"]))
        if str(settings["master"]).startswith("local"):
            import os
            import sys  # local mode: the Python workers (Arrow batches) run this interpreter and its packages

            os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in conf.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()
