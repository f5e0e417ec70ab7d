"""segmentation_lib.validate.predictive: calibration / holdout split and how well segments predict
holdout purchases, on a planted log."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.validate.predictive import predictive_validity, split_calibration_holdout
from tests.conftest import noon_utc as _ts


def test_split_excludes_and_counts_new_customers(planted_log):
    s = split_calibration_holdout(planted_log, "2024-07-01", holdout_days=90)
    assert s.n_new_in_holdout == 2
    assert s.n_calibration_customers == 8
    assert s.calibration.height == 8
    assert sorted(s.holdout["customer_id"].to_list()) == ["L1", "L2", "L3", "L4"]
    with pytest.raises(DataError, match="no transactions before"):
        split_calibration_holdout(planted_log, "2020-01-01")
    with pytest.raises(DataError, match="amount_x"):
        split_calibration_holdout(planted_log.rename({"timestamp": "amount_x"}), "2024-07-01")


def test_predictive_planted_separation_and_ordering(planted_log):
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    planted = pl.DataFrame({"customer_id": ids, "segment": ["loyal"] * 4 + ["lapsed"] * 4})
    mixed = pl.DataFrame({"customer_id": ids, "segment": ["A", "A", "B", "B", "A", "A", "B", "B"]})
    calls = []

    def feature_fn(tx: pl.DataFrame, as_of):
        calls.append((tx["timestamp"].max(), as_of))
        return tx.group_by("customer_id").agg(pl.col("timestamp").max().alias("last"))

    def by_recency(features: pl.DataFrame) -> pl.DataFrame:  # last purchase after 2024-06-12 -> "recent"
        return features.select("customer_id", pl.when(pl.col("last") > _ts(2024, 6, 12)).then(pl.lit("recent"))
                               .otherwise(pl.lit("older")).alias("segment"))

    r = predictive_validity(planted_log, "2024-07-01", {"clusters": mixed, "rfm": planted, "fn": by_recency},
                            holdout_days=90, feature_fn=feature_fn)
    assert len(calls) == 1 and calls[0][0] < _ts(2024, 7, 1)  # features from calibration only
    assert r.summary["new_in_holdout_excluded"] == 2
    sep = {row["method"]: row for row in r.separation.iter_rows(named=True)}
    assert sep["rfm"]["eta_squared_spend"] == pytest.approx(1.0)
    assert sep["rfm"]["purchase_rate_spread"] == pytest.approx(1.0)
    assert (sep["rfm"]["best_segment"], sep["rfm"]["worst_segment"]) == ("loyal", "lapsed")
    assert sep["clusters"]["eta_squared_spend"] == pytest.approx(0.0)
    assert sep["clusters"]["purchase_rate_spread"] == pytest.approx(0.0)
    assert sep["fn"]["eta_squared_spend"] == pytest.approx(1.0)
    seg = {(row["method"], row["segment"]): row for row in r.segments.iter_rows(named=True)}
    loyal, lapsed = seg[("rfm", "loyal")], seg[("rfm", "lapsed")]
    assert (loyal["customers"], loyal["purchase_rate"], loyal["mean_holdout_spend"], loyal["retention"]) == (4, 1.0, 20.0, 1.0)
    assert (lapsed["customers"], lapsed["purchase_rate"], lapsed["mean_holdout_spend"], lapsed["retention"]) == (4, 0.0, 0.0, 0.0)
    assert loyal["rank_by_spend"] == 1
    assert seg[("clusters", "A")]["mean_holdout_spend"] == 10.0


def test_predictive_unassigned_counted_and_errors(planted_log):
    part = pl.DataFrame({"customer_id": ["L1", "D1"], "segment": ["x", "y"]})
    r = predictive_validity(planted_log, "2024-07-01", {"m": part}, holdout_days=90)
    assert r.summary["unassigned_calibration_customers"] == {"m": 6}
    with pytest.raises(DataError, match="none of the calibration customers"):
        predictive_validity(planted_log, "2024-07-01", {"m": pl.DataFrame({"customer_id": ["zz"], "segment": ["x"]})})
    with pytest.raises(ConfigError):
        predictive_validity(planted_log, "2024-07-01", {})
    with pytest.raises(ConfigError, match="holdout_days"):
        predictive_validity(planted_log, "2024-07-01", {"m": part}, holdout_days=0)


def test_predictive_return_only_holdout_is_not_a_purchase():
    tx = pl.DataFrame(
        [("R1", _ts(2024, 6, 1), 30.0), ("R1", _ts(2024, 7, 5), -30.0), ("B1", _ts(2024, 6, 1), 10.0),
         ("B1", _ts(2024, 7, 6), 15.0), ("Z1", _ts(2023, 1, 1), 10.0)],
        schema={"customer_id": pl.String, "timestamp": pl.Datetime("us", "UTC"), "amount": pl.Float64}, orient="row")
    assign = pl.DataFrame({"customer_id": ["R1", "B1", "Z1"], "segment": ["r", "b", "b"]})
    r = predictive_validity(tx, "2024-07-01", {"m": assign}, holdout_days=30)
    seg = {row["segment"]: row for row in r.segments.iter_rows(named=True)}
    assert (seg["r"]["purchase_rate"], seg["r"]["mean_holdout_spend"], seg["r"]["retention"]) == (0.0, -30.0, 0.0)
    # Z1 bought long before the 30-day pre-cutoff window: not in the retention denominator
    assert (seg["b"]["purchase_rate"], seg["b"]["active_before"], seg["b"]["retention"]) == (0.5, 1, 1.0)


def test_predictive_spread_ignores_tiny_segments(planted_log):
    ids = ["L1", "L2", "L3", "L4", "D1", "D2", "D3", "D4"]
    a = pl.DataFrame({"customer_id": ids, "segment": ["solo"] + ["mix"] * 3 + ["mix"] * 2 + ["lapsed"] * 2})
    r = predictive_validity(planted_log, "2024-07-01", {"m": a}, holdout_days=90, min_segment_size=2)
    row = r.separation.row(0, named=True)
    # eligible: mix (3 of 5 buy: 0.6) and lapsed (0.0); "solo" (1 customer, 1.0) is left out
    assert row["purchase_rate_spread"] == pytest.approx(0.6)
    assert (row["best_segment"], row["worst_segment"]) == ("mix", "lapsed")


def test_empty_holdout_is_a_clear_data_error():
    import datetime as _dt

    from segmentation_lib.errors import DataError as _DataError
    from segmentation_lib.validate.predictive import predictive_validity as _pv

    tx = pl.DataFrame({"customer_id": ["a", "b"], "amount": [10.0, 20.0],
                       "timestamp": [_dt.datetime(2024, 1, 5, tzinfo=_dt.timezone.utc),
                                     _dt.datetime(2024, 1, 9, tzinfo=_dt.timezone.utc)]})
    seg = pl.DataFrame({"customer_id": ["a", "b"], "segment": ["x", "y"]})
    with pytest.raises(_DataError, match="holdout period has no transactions"):
        _pv(tx, "2024-03-01", {"m": seg}, holdout_days=30)


def test_predictive_best_segment_by_mean_holdout_spend():
    import datetime as _dt

    def ts(d: str) -> _dt.datetime:
        return _dt.datetime.fromisoformat(d).replace(tzinfo=_dt.timezone.utc)

    # calibration: everyone buys once; holdout: "often" 2 of 2 buy 10 each, "big" 1 of 2 buys 500
    tx = pl.DataFrame({
        "customer_id": ["o1", "o2", "b1", "b2", "o1", "o2", "b1"],
        "timestamp": [ts("2024-03-01")] * 4 + [ts("2024-08-01")] * 3,
        "amount": [5.0, 5.0, 5.0, 5.0, 10.0, 10.0, 500.0],
    })
    seg = pl.DataFrame({"customer_id": ["o1", "o2", "b1", "b2"], "segment": ["often", "often", "big", "big"]})
    r = predictive_validity(tx, "2024-07-01", {"m": seg}, holdout_days=90, min_segment_size=1)
    row = r.separation.row(0, named=True)
    # mean holdout spend: big 250, often 10 -> best "big" (rank 1 by spend); purchase rates 0.5 / 1.0
    assert (row["best_segment"], row["worst_segment"]) == ("big", "often")
    assert row["purchase_rate_spread"] == pytest.approx(0.5)
    ranks = dict(r.segments.select("segment", "rank_by_spend").iter_rows())
    assert ranks == {"big": 1, "often": 2}
