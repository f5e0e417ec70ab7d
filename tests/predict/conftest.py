"""Fixtures of the prediction tests: the CDNOW summaries shipped in the lifetimes wheel, the planted demo summary.

The CDNOW files are read from the installed ``lifetimes`` distribution (a test dependency in
pyproject.toml) without importing it; the tests that need them skip with the reason when it is
not installed.
"""
from __future__ import annotations

import importlib.metadata
from pathlib import Path

import polars as pl
import pytest


def lifetimes_dataset(name: str) -> Path:
    """Path of a CSV in ``lifetimes/datasets`` of the installed wheel, or a skip saying why."""
    try:
        path = Path(importlib.metadata.distribution("lifetimes").locate_file(f"lifetimes/datasets/{name}"))
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("lifetimes is not installed (pip install -e '.[test]'); its wheel ships the CDNOW reference data")
    if not path.is_file():
        pytest.skip(f"the installed lifetimes has no datasets/{name}")
    return path


@pytest.fixture(scope="session")
def cdnow() -> pl.DataFrame:
    """CDNOW summary (2,357 customers, weeks): customer_id, frequency, recency, T."""
    s = pl.read_csv(lifetimes_dataset("cdnow_customers_summary.csv"))
    return s.rename({"ID": "customer_id"}).with_columns(pl.col("frequency", "recency", "T").cast(pl.Float64))


@pytest.fixture(scope="session")
def cdnow_monetary() -> pl.DataFrame:
    """CDNOW summary with mean spend per repeat purchase (lifetimes' load_cdnow_summary_data_with_monetary_value)."""
    s = pl.read_csv(lifetimes_dataset("cdnow_customers_summary_with_transactions.csv"))
    return s.rename({"ID": "customer_id", "x": "frequency", "t_x": "recency", "zbar": "monetary_value"}).with_columns(
        pl.col("frequency", "recency", "T", "monetary_value").cast(pl.Float64))


@pytest.fixture(scope="session")
def planted() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Demo log (4,000 customers, seed 7; 2023-01-01 .. 2024-12-31), its daily BTYD summary at 2025-01-01 and the truth."""
    from segmentation_lib.data.demo import make_transactions
    from segmentation_lib.features.btyd import btyd_summary

    demo = make_transactions(n_customers=4000, seed=7)
    tx = demo.transactions.drop_nulls("customer_id")
    return tx, btyd_summary(tx, "2025-01-01", freq="D"), demo.truth
