"""Tests of the demo data generator (segmentation_lib.data.demo): schema, determinism, planted rates,
archetype proportions and that k-means recovers the planted archetypes."""
from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.data.demo import ARCHETYPES, DEFAULT_SHARES, TRANSACTION_SCHEMA, DemoData, make_transactions, write_demo_data
from segmentation_lib.errors import ConfigError, SegmentationError

AS_OF = datetime(2025, 1, 1, tzinfo=timezone.utc)  # default end 2024-12-31 + 1 day
START = datetime(2023, 1, 1, tzinfo=timezone.utc)

FEATURES = ["days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days"]


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return make_transactions(n_customers=10_000, seed=42)


def _features(tx: pl.DataFrame, as_of: datetime, single: str) -> pl.DataFrame:
    """The clustering features, computed here independently of features.py.

    Null ids and exact duplicates are dropped, returns are netted into total_spend; recency, tenure
    and orders come from purchase rows. mean_days_between = mean gap between consecutive distinct
    purchase days; for one-purchase-day customers it is ``tenure_days`` (single="tenure") or 0.
    """
    tx = tx.filter(pl.col("customer_id").is_not_null()).unique()
    day = pl.col("timestamp").dt.truncate("1d")
    buys = tx.filter(pl.col("amount") > 0).group_by("customer_id").agg(
        first=pl.col("timestamp").min(),
        last=pl.col("timestamp").max(),
        n_orders=pl.col("order_id").n_unique(),
        days=day.unique().sort(),
    )
    spend = tx.group_by("customer_id").agg(total_spend=pl.col("amount").sum())
    gap = pl.col("days").list.diff(null_behavior="drop").list.eval(pl.element().dt.total_days()).list.mean()
    f = buys.join(spend, on="customer_id").with_columns(
        days_since_last=(pl.lit(as_of) - pl.col("last")).dt.total_seconds() / 86_400,
        tenure_days=(pl.lit(as_of) - pl.col("first")).dt.total_seconds() / 86_400,
        avg_order_value=pl.col("total_spend") / pl.col("n_orders"),
        gap=gap,
    )
    fallback = pl.col("tenure_days") if single == "tenure" else pl.lit(0.0)
    return f.with_columns(mean_days_between=pl.col("gap").fill_null(fallback)).sort("customer_id")


# ----------------------------------------------------------------------------- schema
def test_columns_and_dtypes(demo: DemoData) -> None:
    assert demo.transactions.schema == pl.Schema(TRANSACTION_SCHEMA) == pl.Schema(
        {
            "customer_id": pl.String,
            "timestamp": pl.Datetime("us", "UTC"),
            "amount": pl.Float64,
            "order_id": pl.String,
            "product_id": pl.String,
            "quantity": pl.Float64,
            "unit_price": pl.Float64,
        }
    )
    assert demo.customers.schema == pl.Schema(
        {
            "customer_id": pl.String,
            "plan_tier": pl.String,
            "company_size": pl.Int64,
            "region": pl.String,
            "signup_date": pl.Date,
        }
    )
    assert demo.truth.schema == pl.Schema({"customer_id": pl.String, "archetype": pl.String})
    assert demo.truth["customer_id"][0] == "C0000001"
    assert demo.truth["customer_id"][-1] == "C0010000"
    assert demo.truth["customer_id"].is_unique().all()
    assert demo.customers["customer_id"].equals(demo.truth["customer_id"])


def test_amount_is_quantity_times_unit_price(demo: DemoData) -> None:
    tx = demo.transactions
    expected = (tx["quantity"] * tx["unit_price"]).round(2)
    assert (tx["amount"] - expected).abs().max() < 1e-9
    # two decimals exactly
    assert ((tx["amount"] * 100).round(0) - tx["amount"] * 100).abs().max() < 1e-6
    assert tx["unit_price"].min() > 0
    assert tx.filter(pl.col("amount") > 0)["quantity"].min() >= 1


def test_timestamps_within_period(demo: DemoData) -> None:
    ts = demo.transactions["timestamp"]
    assert ts.min() >= START
    assert ts.max() < AS_OF
    assert demo.transactions["timestamp"].is_sorted()


def test_every_customer_buys_and_ids_match(demo: DemoData) -> None:
    buyers = demo.transactions.filter(pl.col("amount") > 0)["customer_id"].drop_nulls().unique()
    assert set(buyers.to_list()) == set(demo.truth["customer_id"].to_list())


def test_about_ten_rows_per_customer(demo: DemoData) -> None:
    assert 9.0 <= demo.transactions.height / demo.truth.height <= 12.0


# ----------------------------------------------------------------------------- determinism
def test_same_seed_same_frames_different_seed_differs() -> None:
    a = make_transactions(n_customers=2_000, seed=5)
    b = make_transactions(n_customers=2_000, seed=5)
    c = make_transactions(n_customers=2_000, seed=6)
    for name in ("transactions", "customers", "truth"):
        assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.transactions.equals(c.transactions)
    assert not a.truth.equals(c.truth)


def test_chunks_do_not_change_the_first_customers(monkeypatch: pytest.MonkeyPatch) -> None:
    """More customers than one chunk: still deterministic, ids and orders stay unique."""
    import segmentation_lib.data.demo as demo_mod

    monkeypatch.setattr(demo_mod, "CHUNK_CUSTOMERS", 700)
    a = make_transactions(n_customers=2_000, seed=9, duplicate_rate=0.0)
    b = make_transactions(n_customers=2_000, seed=9, duplicate_rate=0.0)
    assert_frame_equal(a.transactions, b.transactions)
    per_order = a.transactions.filter(pl.col("customer_id").is_not_null()).group_by("order_id").agg(
        pl.col("customer_id").n_unique()
    )
    assert per_order["customer_id"].max() == 1  # no order id shared between chunks' customers
    assert a.transactions["customer_id"].drop_nulls().n_unique() == 2_000


# ----------------------------------------------------------------------------- planted rates
def test_archetype_proportions_default(demo: DemoData) -> None:
    counts = dict(demo.truth.group_by("archetype").len().iter_rows())
    assert set(counts) == set(ARCHETYPES)
    # exact allocation: 10,000 x shares
    assert counts == {"power": 800, "steady": 2500, "explorer": 1700, "dormant": 2000, "new": 1500, "churned": 1500}
    assert abs(sum(DEFAULT_SHARES.values()) - 1.0) < 1e-12


def test_archetype_proportions_custom() -> None:
    d = make_transactions(n_customers=1_001, seed=1, archetype_shares={"power": 1, "steady": 1, "churned": 2})
    counts = dict(d.truth.group_by("archetype").len().iter_rows())
    # 1001 / 4 = 250.25 -> largest remainder gives the extra customer to the largest remainder (churned, 500.5)
    assert counts == {"power": 250, "steady": 250, "churned": 501}


def test_noise_rates(demo: DemoData) -> None:
    tx = demo.transactions
    known = tx.filter(pl.col("customer_id").is_not_null())
    purchases = known.filter(pl.col("amount") > 0)
    n_dup_rows = known.height - known.unique().height
    n_purchase_lines = purchases.unique().height
    # null ids: exactly round(rate * purchase lines), guest orders with their own ids
    nulls = tx.filter(pl.col("customer_id").is_null())
    assert nulls.height == round(0.001 * n_purchase_lines)
    assert nulls["order_id"].str.starts_with("G").all()
    assert (nulls["amount"] > 0).all()
    # duplicates: exactly round(rate * purchase lines) extra copies of purchase rows
    assert n_dup_rows == round(0.002 * n_purchase_lines)
    # returns: binomial around 3% of purchase lines
    n_returns = known.filter(pl.col("amount") < 0).height
    assert 0.025 <= n_returns / n_purchase_lines <= 0.035


def test_returns_reference_an_earlier_order_of_the_same_customer(demo: DemoData) -> None:
    tx = demo.transactions.filter(pl.col("customer_id").is_not_null()).unique()
    returns = tx.filter(pl.col("amount") < 0)
    buys = tx.filter(pl.col("amount") > 0)
    matched = returns.join(
        buys, on=["customer_id", "order_id", "product_id", "unit_price"], how="inner", suffix="_buy"
    ).filter((pl.col("timestamp_buy") < pl.col("timestamp")) & (-pl.col("quantity") <= pl.col("quantity_buy")))
    assert matched.select("customer_id", "order_id", "product_id", "timestamp").unique().height == returns.unique().height
    assert (returns["quantity"] < 0).all()


def test_no_noise_when_rates_are_zero() -> None:
    d = make_transactions(n_customers=500, seed=3, return_rate=0.0, duplicate_rate=0.0, null_id_rate=0.0)
    tx = d.transactions
    assert tx["customer_id"].null_count() == 0
    assert (tx["amount"] > 0).all()
    assert tx.unique().height == tx.height


# ----------------------------------------------------------------------------- realism
def test_archetype_behaviour(demo: DemoData) -> None:
    f = _features(demo.transactions, AS_OF, "tenure").join(demo.truth, on="customer_id")
    med = {
        r["archetype"]: r
        for r in f.group_by("archetype").agg(pl.col(FEATURES).median()).iter_rows(named=True)
    }
    assert med["power"]["total_spend"] > 5 * med["steady"]["total_spend"]
    assert med["explorer"]["avg_order_value"] < 0.3 * med["steady"]["avg_order_value"]
    assert med["explorer"]["n_orders"] > med["steady"]["n_orders"]
    assert med["dormant"]["days_since_last"] > 120
    new = f.filter(pl.col("archetype") == "new")
    assert new["tenure_days"].max() <= 61 and new["n_orders"].max() <= 3
    churned = f.filter(pl.col("archetype") == "churned")
    assert churned["days_since_last"].min() > 365 and churned["n_orders"].max() <= 3


def test_heavy_tailed_orders(demo: DemoData) -> None:
    n = demo.transactions.filter(pl.col("amount") > 0).group_by("customer_id").agg(pl.col("order_id").n_unique())
    q = n["order_id"].quantile(0.99) / n["order_id"].median()
    assert q >= 4
    assert n["order_id"].max() >= 50


def test_weekly_and_yearly_seasonality(demo: DemoData) -> None:
    ts = demo.transactions.filter(pl.col("amount") > 0)["timestamp"]
    wd = ts.dt.weekday()  # 1 = Monday
    per_weekday = wd.filter(wd <= 5).len() / 5
    per_weekend_day = wd.filter(wd > 5).len() / 2
    assert per_weekday > 1.4 * per_weekend_day
    month = ts.dt.month()
    assert month.filter(month == 11).len() > 1.2 * month.filter(month == 6).len()


def test_attributes_correlate_with_archetype(demo: DemoData) -> None:
    c = demo.customers.join(demo.truth, on="customer_id")
    paid = c.group_by("archetype").agg(
        top=pl.col("plan_tier").is_in(["premium", "enterprise"]).mean(), size=pl.col("company_size").median()
    )
    share = dict(paid.select("archetype", "top").iter_rows())
    size = dict(paid.select("archetype", "size").iter_rows())
    assert share["power"] > 0.6 > 0.2 > share["new"]
    assert size["power"] > 5 * size["explorer"]
    assert set(c["plan_tier"].unique()) <= {"free", "standard", "premium", "enterprise"}
    assert c["region"].null_count() == 0
    first = demo.transactions.group_by("customer_id").agg(pl.col("timestamp").min().dt.date().alias("first"))
    joined = c.join(first, on="customer_id")
    assert (joined["signup_date"] <= joined["first"]).all()


# ----------------------------------------------------------------------------- recoverability
@pytest.mark.parametrize("single", ["tenure", "zero"])
def test_kmeans_recovers_archetypes(demo: DemoData, single: str) -> None:
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    f = _features(demo.transactions, AS_OF, single).join(demo.truth, on="customer_id")
    assert f.height == 10_000
    x = f.select(pl.col(FEATURES).clip(lower_bound=0)).to_numpy()
    x = StandardScaler().fit_transform(np.log1p(x))
    labels = KMeans(n_clusters=6, n_init=10, random_state=0).fit_predict(x)
    assert adjusted_rand_score(f["archetype"].to_numpy(), labels) >= 0.85


# ----------------------------------------------------------------------------- files
def test_write_demo_data_parquet(tmp_path) -> None:
    paths = write_demo_data(tmp_path / "demo", n_customers=300, seed=4)
    assert sorted(paths) == ["customers", "manifest", "transactions", "truth"]
    expected = make_transactions(n_customers=300, seed=4)
    for name in ("transactions", "customers", "truth"):
        assert paths[name].name == f"{name}.parquet"
        assert_frame_equal(pl.read_parquet(paths[name]), getattr(expected, name))
    manifest = json.loads(paths["manifest"].read_text())
    assert manifest["n_customers"] == 300 and manifest["seed"] == 4
    assert manifest["as_of"] == "2025-01-01"
    assert manifest["rows"]["transactions"] == expected.transactions.height
    assert not list((tmp_path / "demo").glob(".*tmp"))


def test_write_demo_data_csv(tmp_path) -> None:
    paths = write_demo_data(tmp_path, n_customers=100, seed=4, fmt="csv", return_rate=0.0)
    back = pl.read_csv(paths["transactions"], try_parse_dates=True)
    assert back.height == make_transactions(n_customers=100, seed=4, return_rate=0.0).transactions.height
    assert paths["truth"].suffix == ".csv"


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"n_customers": 0}, "n_customers"),
        ({"seed": -1}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"return_rate": 1.5}, "return_rate"),
        ({"null_id_rate": -0.1}, "null_id_rate"),
        ({"start": "2024-13-01"}, "start"),
        ({"start": "2024-06-01", "end": "2024-07-01"}, "120 days"),
        ({"archetype_shares": {"whale": 1.0}}, "whale"),
        ({"archetype_shares": {"power": 0.0}}, "archetype_shares"),
    ],
)
def test_bad_parameters_raise_config_error(kwargs: dict, word: str) -> None:
    with pytest.raises(ConfigError, match=word) as info:
        make_transactions(**kwargs)
    assert isinstance(info.value, SegmentationError)
    assert "Fix:" in str(info.value)


def test_bad_format_raises(tmp_path) -> None:
    with pytest.raises(ConfigError, match="fmt"):
        write_demo_data(tmp_path, n_customers=10, fmt="xlsx")


def test_data_readme_documents_every_file_and_column(demo: DemoData) -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "data" / "README.md").read_text(encoding="utf-8")
    for name in ("transactions", "customers", "truth"):
        assert f"`{name}.parquet`" in text
        for column in getattr(demo, name).columns:
            assert f"| `{column}` |" in text, f"{column} of {name} is not documented in data/README.md"
    assert "`manifest.json`" in text and "segment demo-data --out data/demo" in text and "make data" in text
    for archetype in ARCHETYPES:
        assert f"| {archetype} |" in text


def test_many_customers_about_ten_rows_each_over_several_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """The large-log path on a smaller size: the customers span several generation chunks.

    The generation time of a million customers is measured by benchmarks/bench_features.py (it prints
    "generated ... transactions in ... s" when it makes its log), not asserted here.
    """
    import segmentation_lib.data.demo as demo_mod

    monkeypatch.setattr(demo_mod, "CHUNK_CUSTOMERS", 20_000)
    d = make_transactions(n_customers=100_000, seed=11)
    assert 950_000 <= d.transactions.height <= 1_150_000
    assert d.truth.height == 100_000
    assert d.transactions["order_id"].str.starts_with("O").sum() > 0


def test_snapshots_plant_a_known_migration():
    """Snapshot 1 is the plain demo log; snapshot 2 adds only later purchases (none by the planted movers)
    and the customers who joined; the planted movers are exactly 10% of the steady customers."""
    from segmentation_lib.data.demo import make_snapshots

    s = make_snapshots(n_customers=600, seed=4, gap_days=200)
    assert_frame_equal(s.first.transactions, make_transactions(n_customers=600, seed=4).transactions)
    planted = s.movements.filter("planted")
    n_steady = int((s.first.truth["archetype"] == "steady").sum())
    assert planted.height == round(0.1 * n_steady) == s.params["planted_movers"]
    assert set(planted.select("archetype_before", "archetype_after").unique().iter_rows()) == {("steady", "dormant")}
    cut = datetime(2025, 1, 1, tzinfo=timezone.utc)
    later = s.second.transactions.filter(pl.col("timestamp") >= cut)
    assert later.join(planted, on="customer_id", how="semi").height == 0  # planted movers stop buying
    assert_frame_equal(s.second.transactions.filter(pl.col("timestamp") < cut).sort("timestamp", "order_id", "amount"),
                       s.first.transactions.sort("timestamp", "order_id", "amount"))
    joined = s.movements.filter(pl.col("archetype_before").is_null())
    assert joined.height == 30 and joined["customer_id"].min() == "C0000601"
    assert later["timestamp"].max() < datetime(2025, 7, 20, tzinfo=timezone.utc)  # end + 200 days
    assert make_snapshots(n_customers=600, seed=4, gap_days=200).second.transactions.equals(s.second.transactions)
