"""One real Spark session (local[2]) for every engine test, and the demo project's tables on both engines.

All tests under tests/engine/ are put in one xdist group (``make test`` runs ``--dist loadgroup``),
so a test run starts one JVM. They are skipped, with the reason, only when no Java runtime is found.
"""
from __future__ import annotations

import pytest

from tests.conftest import DEMO_CUSTOMERS, DEMO_SEED


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/engine/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group("spark"))


@pytest.fixture(scope="session")
def spark():
    from segmentation_lib.engine.spark_session import java_available, spark_session

    if not java_available():
        pytest.skip("no Java runtime (java not on PATH, JAVA_HOME unset): Spark needs Java 17+")
    pytest.importorskip("pyspark", reason="pyspark is not installed (pip install -e '.[test]' installs it)")
    session = spark_session({"engine": {"kind": "spark", "master": "local[2]", "partitions": 4,
                                        "conf": {"spark.default.parallelism": "4"}}})
    session.sparkContext.setLogLevel("ERROR")
    yield session


@pytest.fixture(scope="session")
def demo_cfg(demo_data):
    """The default configuration pointed at the 1,500-customer demo log (no attribute table)."""
    from segmentation_lib.config import load_config
    from tests.conftest import REPO

    paths = demo_data(DEMO_CUSTOMERS, DEMO_SEED)
    return load_config(REPO / "configs" / "default.yaml",
                       {"data": {"path": str(paths["transactions"]), "customers": None, "truth": None}})


@pytest.fixture(scope="session")
def polars_side(demo_cfg):
    """Clean log, quality report and feature table of the single-machine path."""
    from segmentation_lib.data.quality import load_transactions
    from segmentation_lib.features.customer import customer_features

    tx, report = load_transactions(demo_cfg)
    return tx, report, customer_features(tx, report.as_of)


@pytest.fixture(scope="session")
def spark_side(spark, demo_cfg):
    """Clean log (persisted Spark frame), quality report and feature table (cached) of the Spark path."""
    from segmentation_lib.engine.spark_features import customer_features
    from segmentation_lib.engine.spark_read import spark_transactions

    clean, report = spark_transactions(spark, demo_cfg)
    feats = customer_features(clean, report.as_of).cache()
    return clean, report, feats
