"""cohort_table (one group-by over (customer, period) cells) gives the same table as the previous
implementation (distinct purchase months, first month per customer, then a join), kept here as the
reference, on a demo log with returns, duplicate rows and rows without a customer id."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.data.demo import make_transactions
from segmentation_lib.features.cohorts import _empty, _not_after, _period_index, _period_label, _period_start, cohort_table


def reference_cohort_table(transactions, period: str = "month", end=None) -> pl.DataFrame:
    """The implementation before the single group-by (segmentation_lib 1b802ad), verbatim."""
    lf = transactions.lazy()
    schema = lf.collect_schema()
    ts = pl.col("timestamp")
    if end is not None:
        lf = lf.filter(_not_after(ts, end, schema["timestamp"]))
    end_idx = lf.select(_period_index(ts.max(), period)).collect().item() if end is None else \
        pl.select(_period_index(pl.lit(end), period)).item()
    active = (lf.filter((pl.col("amount") > 0) & pl.col("customer_id").is_not_null())
              .select("customer_id", _period_index(ts, period).alias("p"))
              .unique())
    first = active.group_by("customer_id").agg(pl.col("p").min().alias("c"))
    sizes = first.group_by("c").agg(pl.len().cast(pl.Int64).alias("customers"))
    counts = (active.join(first, on="customer_id")
              .group_by("c", (pl.col("p") - pl.col("c")).alias("period_number"))
              .agg(pl.len().cast(pl.Int64).alias("active")))
    if end_idx is None:
        return _empty()
    grid = (sizes.with_columns(pl.int_ranges(0, pl.lit(int(end_idx), pl.Int64) - pl.col("c") + 1).alias("period_number"))
            .explode("period_number")
            .drop_nulls("period_number")
            .with_columns(pl.col("period_number").cast(pl.Int64)))
    out = (grid.join(counts, on=["c", "period_number"], how="left")
           .with_columns(pl.col("active").fill_null(0))
           .with_columns((pl.col("active") / pl.col("customers")).alias("retention"),
                         _period_start(pl.col("c"), period).alias("cohort_start"))
           .with_columns(_period_label(pl.col("cohort_start"), period).alias("cohort"))
           .sort("c", "period_number")
           .select("cohort", "cohort_start", "period_number", "customers", "active", "retention"))
    return out.collect()


@pytest.fixture(scope="module")
def tx() -> pl.DataFrame:
    d = make_transactions(n_customers=600, seed=11, return_rate=0.2, duplicate_rate=0.05, null_id_rate=0.02)
    t = d.transactions
    assert t.filter(pl.col("amount") < 0).height > 100 and t.is_duplicated().sum() > 10
    assert t["customer_id"].null_count() > 10
    # a customer with returns only (in no cohort) whose return is the last row: it still sets the data end
    last = t["timestamp"].max() + dt.timedelta(days=40)
    return pl.concat([t, pl.DataFrame({"customer_id": ["only-returns"], "timestamp": [last], "amount": [-5.0]},
                                      schema_overrides={"timestamp": t.schema["timestamp"]})], how="diagonal")


@pytest.mark.parametrize("period", ["month", "quarter", "week"])
def test_same_table_as_before(tx, period) -> None:
    new = cohort_table(tx, period=period)
    assert_frame_equal(new, reference_cohort_table(tx, period=period), check_exact=True)
    assert new.height > 20 and (new["active"] == 0).any()  # zero cells are kept


@pytest.mark.parametrize("end", [dt.date(2024, 6, 30), dt.datetime(2024, 3, 15, 12), dt.date(2030, 1, 1)])
def test_same_table_with_an_end_and_lazy_input(tx, end) -> None:
    assert_frame_equal(cohort_table(tx.lazy(), end=end), reference_cohort_table(tx, end=end), check_exact=True)


def test_same_on_empty_and_returns_only_logs(tx) -> None:
    assert_frame_equal(cohort_table(tx.head(0)), reference_cohort_table(tx.head(0)))
    returns = tx.filter(pl.col("amount") < 0)
    assert_frame_equal(cohort_table(returns), reference_cohort_table(returns))
