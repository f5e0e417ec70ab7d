"""Shared fixtures and helpers of the test suite.

The test folders mirror the package: tests/data/ tests segmentation_lib/data/, tests/report/test_pipeline.py
tests segmentation_lib/report/pipeline.py, and so on. Every test folder is a package (it has an __init__.py),
so test modules of the same name in two folders do not clash (also under pytest-xdist), and the plain
helpers below are imported by the test modules as ``from tests.conftest import ...``.

Fixtures:

- ``demo_data``: a session-scoped factory ``demo_data(n_customers, seed)`` writing the demo data
  (``segmentation_lib.data.demo.write_demo_data``) once per session and parameter set;
- ``demo_project``: the demo project: 1,500 demo customers (seed 7) and a configuration file pointing at them;
- ``demo_run``: one full pipeline run (all four notebooks) on 2,000 demo customers (seed 7);
- ``review_project``: 1,500 demo customers (seed 3) plus one customer with a return only, and a
  configuration with an attribute rule, customers and truth tables;
- ``online_retail_csv``: the demo project's log written as a UCI Online Retail II CSV;
- ``blobs``, ``uniform``, ``planted_log``: constructed data for the validation measures.

Tests must not write into the folders of the session fixtures (except where a test owns a file name
there): they are shared by every test of a worker process.
"""
from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[1]

#: the demo project's data: the parameters the scoring and end-to-end tests were written against
DEMO_CUSTOMERS, DEMO_SEED = 1500, 7


# =========================================================================== plain helpers


def kernel_pids(run_id: str) -> set[int]:
    """Processes whose environment names this run (the notebook kernel inherits SEGMENTATION_RUN_ID), via /proc."""
    pids = set()
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"SEGMENTATION_RUN_ID={run_id}".encode() in env.read_bytes():
                pids.add(int(env.parent.name))
        except OSError:
            continue
    return pids


def check_message(err: pytest.ExceptionInfo, *needles: str) -> str:
    """The error is user-facing: a SegmentationError, one paragraph, says Fix:, no chained traceback."""
    from segmentation_lib.errors import SegmentationError

    assert isinstance(err.value, SegmentationError)
    msg = str(err.value)
    assert "\n" not in msg and "Fix:" in msg, msg
    e = err.value
    assert e.__cause__ is None and (e.__context__ is None or e.__suppress_context__), "no chained traceback"
    for needle in needles:
        assert needle in msg, (needle, msg)
    return msg


def to_online_retail_ii(tx: pl.DataFrame, timezone: str = "Europe/London") -> pl.DataFrame:
    """A demo log in the UCI Online Retail II layout.

    Invoice: 6-digit number, "C" + number for a cancellation (negative quantity); InvoiceDate: local
    "2010-12-01 08:26:00" text; "Customer ID": float-looking (12870.0) or empty; Price per unit.
    """
    neg = pl.col("quantity") < 0
    number = (pl.col("order_id").str.slice(1).cast(pl.Int64) + 489_434).cast(pl.String)
    return tx.select(
        pl.when(neg).then(pl.lit("C") + number).otherwise(number).alias("Invoice"),
        pl.col("product_id").str.slice(1).alias("StockCode"),
        pl.concat_str(pl.lit("ITEM "), pl.col("product_id")).alias("Description"),
        pl.col("quantity").cast(pl.Int64).alias("Quantity"),
        pl.col("timestamp").dt.convert_time_zone(timezone).dt.strftime("%Y-%m-%d %H:%M:%S").alias("InvoiceDate"),
        pl.col("unit_price").alias("Price"),
        (pl.col("customer_id").str.slice(1).cast(pl.Int64) + 12_000).cast(pl.Float64).alias("Customer ID"),
        pl.lit("United Kingdom").alias("Country"),
    )


def tx_frame(rows, with_order=True, with_product=True):
    """A transaction log from (customer_id, timestamp, amount, order_id, product_id) rows, UTC timestamps."""
    cols = ["customer_id", "timestamp", "amount", "order_id", "product_id"]
    df = pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.col("timestamp").cast(pl.Datetime("us")).dt.replace_time_zone("UTC"), pl.col("amount").cast(pl.Float64)
    )
    if not with_order:
        df = df.drop("order_id")
    if not with_product:
        df = df.drop("product_id")
    return df


def random_log(seed: int, n_customers: int = 300, with_order: bool = True, with_product: bool = True):
    """Orders of 1-3 lines on one timestamp, same-day orders, returns on later days, zero amounts,
    null products and return-only customers."""
    rng = np.random.default_rng(seed)
    n_orders = n_customers * 4
    cust = rng.integers(0, n_customers, n_orders)
    start = np.datetime64("2023-01-01T00:00:00", "us")
    ts = start + rng.integers(0, 700 * 86_400, n_orders).astype("timedelta64[s]").astype("timedelta64[us]")
    lines = rng.integers(1, 4, n_orders)
    idx = np.repeat(np.arange(n_orders), lines)
    amount = np.round(rng.lognormal(3, 1, idx.size), 2)
    amount[rng.random(idx.size) < 0.02] = 0.0
    df = pl.DataFrame({
        "customer_id": [f"C{c:05d}" for c in cust[idx]],
        "timestamp": ts[idx],
        "amount": amount,
        "order_id": [f"O{o}" for o in idx],
        "product_id": [None if r < 0.05 else f"P{p}" for r, p in zip(rng.random(idx.size), rng.integers(0, 40, idx.size))],
    }).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    returns = df.sample(fraction=0.05, seed=seed).with_columns(
        -pl.col("amount"), pl.col("timestamp") + pl.duration(days=3, hours=5)
    )
    only_returns = pl.DataFrame({"customer_id": ["R1", "R1"], "timestamp": np.array([start, start + 10**9]),
                                 "amount": [-5.0, -7.5], "order_id": ["X1", "X2"], "product_id": ["P1", None]})
    only_returns = only_returns.with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    out = pl.concat([df, returns, only_returns]).sample(fraction=1.0, shuffle=True, seed=seed)
    if not with_order:
        out = out.drop("order_id")
    if not with_product:
        out = out.drop("product_id")
    return out


def noon_utc(y: int, m: int, d: int) -> dt.datetime:
    return dt.datetime(y, m, d, 12, tzinfo=dt.timezone.utc)


def segments_table(sizes=(100, 100, 100), gap=5.0, seed=0) -> pl.DataFrame:
    """Segments S0, S1, ... of the given sizes: mean total_spend 100 + 10 * gap * i (sd 10), n_orders alike in all."""
    rng = np.random.default_rng(seed)
    seg, spend, freq = [], [], []
    for i, n in enumerate(sizes):
        seg += [f"S{i}"] * n
        spend.append(rng.normal(100 + gap * 10 * i, 10, n))
        freq.append(rng.normal(5, 1, n))
    n = sum(sizes)
    return pl.DataFrame({"customer_id": [str(i) for i in range(n)], "segment": seg,
                         "total_spend": np.concatenate(spend), "n_orders": np.concatenate(freq)})


# =========================================================================== demo projects


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory):
    """``demo_data(n_customers=1500, seed=7)`` -> the paths of ``write_demo_data``, written once per session.

    The data lands in ``<tmp>/demo-<n>-<seed>/data/``; treat it as read-only.
    """
    from segmentation_lib.data.demo import write_demo_data

    made: dict[tuple[int, int], dict[str, Path]] = {}

    def make(n_customers: int = DEMO_CUSTOMERS, seed: int = DEMO_SEED) -> dict[str, Path]:
        if (n_customers, seed) not in made:
            root = tmp_path_factory.mktemp(f"demo-{n_customers}-{seed}", numbered=True)
            made[n_customers, seed] = write_demo_data(root / "data", n_customers=n_customers, seed=seed)
        return made[n_customers, seed]

    return make


DEMO_PROJECT_CONFIG = (
    "run: {name: demo-project, seed: 7}\n"
    "data: {path: data/transactions.parquet, customers: {path: data/customers.parquet}, truth: data/truth.parquet}\n"
)


@pytest.fixture(scope="session")
def demo_project(demo_data) -> SimpleNamespace:
    """The demo project: 1,500 demo customers (seed 7) and ``cfg.yaml`` next to their ``data/`` folder.

    ``root``, ``paths`` (transactions, customers, truth, manifest), ``cfg``. Read-only.
    """
    paths = demo_data(DEMO_CUSTOMERS, DEMO_SEED)
    root = paths["transactions"].parent.parent
    cfg = root / "cfg.yaml"
    cfg.write_text(DEMO_PROJECT_CONFIG, encoding="utf-8")
    return SimpleNamespace(root=root, paths=paths, cfg=cfg)


DEMO_RUN_CONFIG = (
    "run: {name: test-demo, seed: 7}\n"
    "data: {path: data/transactions.parquet, customers: {path: data/customers.parquet}, truth: data/truth.parquet}\n"
    "clustering: {k_range: [2, 8], metric_sample_size: 2000}\n"
    "validation: {n_resamples: 3, sample_size: 2000}\n"
)


@pytest.fixture(scope="session")
def demo_run(demo_data) -> dict:
    """One full pipeline run (the four notebooks) on 2,000 demo customers (seed 7).

    ``root`` (holds ``data/`` and ``cfg.yaml``), ``cfg``, ``index`` (the run's index.html) and ``out``
    (the reports folder). Tests may add runs to ``out`` only if no other test lists its runs.
    """
    from segmentation_lib.report import pipeline

    paths = demo_data(2000, 7)
    root = paths["transactions"].parent.parent
    cfg = root / "cfg.yaml"
    cfg.write_text(DEMO_RUN_CONFIG, encoding="utf-8")
    index = pipeline.run_pipeline(cfg, out_dir=root / "reports", progress=False)
    return {"root": root, "cfg": cfg, "index": index, "out": root / "reports"}


REVIEW_CONFIG = ("run: {seed: 7}\n"
                 "data: {path: data/transactions.parquet, customers: {path: data/customers.parquet}, truth: data/truth.parquet}\n"
                 "clustering: {k_range: [2, 8], metric_sample_size: 1500}\n"
                 "validation: {n_resamples: 3, sample_size: 1500}\n"
                 "rules:\n  rules:\n    - {name: Premium, when: \"plan_tier == 'premium' and total_spend >= 1000\"}\n")


@pytest.fixture(scope="session")
def review_project(demo_data, tmp_path_factory) -> Path:
    """1,500 demo customers (seed 3) plus RET1, a customer with one return only; ``cfg.yaml`` with an attribute rule.

    Returns the project folder; each test writes its runs into a sub-folder of its own name.
    """
    root = tmp_path_factory.mktemp("review")
    paths = demo_data(1500, 3)
    shutil.copytree(paths["transactions"].parent, root / "data")
    tx = pl.read_parquet(paths["transactions"])
    ret = tx.head(1).with_columns(
        pl.lit("RET1").alias("customer_id"), pl.lit(-20.0).alias("amount"), pl.lit(-1.0).alias("quantity"),
        pl.lit(dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)).dt.cast_time_unit("us").alias("timestamp"))
    pl.concat([tx, ret.select(tx.columns).cast(tx.schema)]).write_parquet(root / "data" / "transactions.parquet")
    (root / "cfg.yaml").write_text(REVIEW_CONFIG)
    return root


@pytest.fixture(scope="session")
def online_retail_csv(demo_project, tmp_path_factory) -> Path:
    """The demo project's transaction log in the UCI Online Retail II layout (configs/online_retail.yaml)."""
    csv = tmp_path_factory.mktemp("retail") / "online_retail_ii.csv"
    to_online_retail_ii(pl.read_parquet(demo_project.paths["transactions"])).write_csv(csv)
    return csv


# =========================================================================== constructed data for validation


@pytest.fixture(scope="session")
def blobs():
    from sklearn.datasets import make_blobs

    X, y = make_blobs(3000, centers=5, n_features=4, cluster_std=0.5, center_box=(-20, 20), random_state=0)
    return X, y


@pytest.fixture(scope="session")
def uniform():
    return np.random.default_rng(1).uniform(size=(2000, 5))


@pytest.fixture()
def planted_log() -> pl.DataFrame:
    _ts = noon_utc
    rows = []
    for c in ["L1", "L2", "L3", "L4"]:  # loyal: buy before and in the holdout
        rows += [(c, _ts(2024, 6, 15), 10.0), (c, _ts(2024, 7, 15), 20.0)]
    for c in ["D1", "D2", "D3", "D4"]:  # lapsed: buy before only
        rows += [(c, _ts(2024, 6, 10), 10.0)]
    rows += [("D4", _ts(2024, 11, 1), 100.0)]  # after the 90-day holdout: ignored
    rows += [("N1", _ts(2024, 7, 20), 50.0), ("N2", _ts(2024, 8, 1), 5.0)]  # first seen in the holdout
    return pl.DataFrame(rows, schema={"customer_id": pl.String, "timestamp": pl.Datetime("us", "UTC"),
                                      "amount": pl.Float64}, orient="row")
