"""segmentation_lib.features.btyd: btyd_summary hand-computed (daily, weekly, monthly periods), against
lifetimes on a random log, and the sorted path against the grouped one."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError
from segmentation_lib.features.btyd import btyd_summary
from tests.conftest import random_log as _random_log
from tests.conftest import tx_frame as _tx

D = dt.datetime


BT = _tx([
    ("a", D(2020, 1, 1, 10), 1.0, "1", "p"),
    ("a", D(2020, 1, 1, 12), 2.0, "2", "p"),    # same day: merged with the one above
    ("a", D(2020, 1, 5), 5.0, "3", "p"),
    ("a", D(2020, 1, 10, 20), 7.0, "4", "p"),   # later on the observation end day: kept (lifetimes)
    ("a", D(2020, 1, 11), 100.0, "5", "p"),     # after the end: dropped
    ("b", D(2020, 1, 3), 3.0, "6", "p"),
])


def test_btyd_summary_daily_hand_computed():
    s = btyd_summary(BT, "2020-01-10")
    assert s.columns == ["customer_id", "frequency", "recency", "T", "monetary_value"]
    assert s.row(0) == ("a", 2.0, 9.0, 9.0, 6.0)  # periods Jan 1 (3.0), Jan 5 (5), Jan 10 (7)
    assert s.row(1) == ("b", 0.0, 0.0, 7.0, 0.0)


def test_btyd_summary_weekly_and_monthly_hand_computed():
    w = btyd_summary(BT, "2020-01-31", freq="W")
    # weeks start on Monday: Dec 30 - Jan 5 holds Jan 1 and Jan 5; Jan 6 - 12 holds Jan 10, 11
    assert w.row(0) == ("a", 1.0, 1.0, 4.0, 107.0)
    assert w.row(1) == ("b", 0.0, 0.0, 4.0, 0.0)
    m = btyd_summary(BT.vstack(_tx([("b", D(2020, 3, 3), 4.0, "7", "p")])), "2020-04-15", freq="M")
    assert m.row(1) == ("b", 1.0, 2.0, 3.0, 4.0)


def _lifetimes_reference(pdf, end, freq):
    """A tiny reference of lifetimes' algorithm in pandas (used when lifetimes cannot run)."""
    import pandas as pd

    p = pdf.copy()
    p["per"] = p["timestamp"].dt.to_period(freq)
    endp = pd.Timestamp(end).to_period(freq)
    p = p[p["per"] <= endp]
    g = p.groupby(["customer_id", "per"], as_index=False)["amount"].sum().sort_values(["customer_id", "per"])
    rows = []
    for cid, grp in g.groupby("customer_id"):
        ords = [x.ordinal for x in grp["per"]]
        mv = grp["amount"].iloc[1:].mean() if len(grp) > 1 else 0.0
        rows.append((cid, len(grp) - 1.0, float(ords[-1] - ords[0]), float(endp.ordinal - ords[0]), mv))
    return rows


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_btyd_summary_matches_lifetimes_on_random_log(freq):
    rng = np.random.default_rng(3)
    n = 3000
    start = np.datetime64("2022-01-01T00:00:00", "us")
    ts = start + rng.integers(0, 700 * 86_400_000_000, n).astype("timedelta64[us]")
    amount = np.round(rng.lognormal(3, 1, n), 2) * np.where(rng.random(n) < 0.05, -1, 1)
    log = pl.DataFrame({"customer_id": [f"c{i:03d}" for i in rng.integers(0, 300, n)], "timestamp": ts,
                        "amount": amount}).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    end = "2023-09-30"
    ours = btyd_summary(log, end, freq=freq)
    pdf = log.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas()
    if freq == "M":  # lifetimes 0.11 cannot divide by a month under pandas >= 2: use the reference
        ref_rows = sorted(_lifetimes_reference(pdf, end, freq))
    else:
        lifetimes_utils = pytest.importorskip("lifetimes.utils")
        ref = lifetimes_utils.summary_data_from_transaction_data(
            pdf, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=end, freq=freq
        ).reset_index()
        ref_rows = sorted(ref[["customer_id", "frequency", "recency", "T", "monetary_value"]].itertuples(index=False, name=None))
    assert ours["customer_id"].to_list() == [r[0] for r in ref_rows]
    for got, exp in zip(ours.rows(), ref_rows):
        assert got[:4] == tuple(exp[:4])
        assert math.isclose(got[4], exp[4], rel_tol=1e-9, abs_tol=1e-9)
    # the small pandas reference (used for "M") agrees with lifetimes where both run
    if freq != "M":  # for "M" ref_rows is that reference itself: comparing it with itself proves nothing
        mine = sorted(_lifetimes_reference(pdf, end, freq))
        assert [r[:4] for r in mine] == [tuple(r[:4]) for r in ref_rows]


@pytest.mark.parametrize("freq", ["D", "W", "M"])
def test_btyd_sorted_path_gives_the_grouped_table(freq):
    log = _random_log(5, n_customers=400)
    for end in ("2024-12-01", "2024-03-15"):
        fast = btyd_summary(log, end, freq=freq, method="sorted")
        slow = btyd_summary(log, end, freq=freq, method="grouped")
        assert fast.equals(slow)  # same rounded per-period sums, same order: bit-identical
        assert fast.height > 300 and fast["frequency"].max() > 3
    no_money = btyd_summary(log, "2024-12-01", monetary_value_col=None)
    assert no_money.columns == ["customer_id", "frequency", "recency", "T"]
    with pytest.raises(ConfigError, match="method"):
        btyd_summary(log, "2024-12-01", method="quick")


# --------------------------------------------------------------------------------------------
# issue 13: exact money, the peers' options (lifetimes' answers on the same data)
# --------------------------------------------------------------------------------------------
from segmentation_lib.features.btyd import (  # noqa: E402
    DefaultObservationEndWarning, calibration_and_holdout_summary, first_transactions,
)

SUMMARY_COLS = ["frequency", "recency", "T", "monetary_value"]


def _unrounded_log(seed=11, n=4000, n_customers=300, days=700):
    rng = np.random.default_rng(seed)
    start = np.datetime64("2022-01-01T00:00:00", "us")
    ts = start + rng.integers(0, days * 86_400_000_000, n).astype("timedelta64[us]")
    amount = rng.lognormal(3, 1, n) * np.where(rng.random(n) < 0.05, -1, 1)  # not whole cents
    return pl.DataFrame({"customer_id": [f"c{i:03d}" for i in rng.integers(0, n_customers, n)], "timestamp": ts,
                         "amount": amount}).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))


def _pdf(log):
    return log.with_columns(pl.col("timestamp").dt.replace_time_zone(None)).to_pandas()


def _lt_summary(log, **kw):
    lu = pytest.importorskip("lifetimes.utils")
    ref = lu.summary_data_from_transaction_data(_pdf(log), "customer_id", "timestamp", monetary_value_col="amount", **kw)
    return ref.sort_index()


def _assert_close(ours, ref, cols, rel=1e-12):
    assert ours["customer_id"].to_list() == list(ref.index)
    worst = 0.0
    for col in cols:
        for got, exp in zip(ours[col].to_list(), ref[col].to_list()):
            assert math.isclose(got, exp, rel_tol=rel, abs_tol=1e-300), (col, got, exp)
            if exp:
                worst = max(worst, abs(got - exp) / abs(exp))
    return worst


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("freq", ["D", "W"])
def test_btyd_summary_exact_on_unrounded_amounts(freq):
    """Failed before issue 13: money was rounded to 6 decimals (differences up to 5e-7)."""
    log = _unrounded_log()
    ours = btyd_summary(log, "2023-09-30", freq=freq)
    ref = _lt_summary(log, observation_period_end="2023-09-30", freq=freq)
    assert _assert_close(ours, ref, SUMMARY_COLS) < 1e-12
    # deterministic: the same bytes whatever the row order, and on both paths
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=5)
    assert btyd_summary(shuffled, "2023-09-30", freq=freq).equals(ours)
    assert btyd_summary(shuffled, "2023-09-30", freq=freq, method="grouped").equals(ours)
    chunks = pl.concat([shuffled[i::3] for i in range(3)])
    assert btyd_summary(chunks.lazy(), "2023-09-30", freq=freq).equals(ours)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("freq,mult", [("h", 1), ("h", 24), ("D", 7)])
def test_btyd_summary_hourly_and_multiplier_match_lifetimes(freq, mult):
    log = _unrounded_log(seed=4, days=60)
    ours = btyd_summary(log, dt.datetime(2022, 2, 20, 13, 30), freq=freq, freq_multiplier=mult)
    ref = _lt_summary(log, observation_period_end="2022-02-20 13:30", freq=freq, freq_multiplier=mult)
    _assert_close(ours, ref, SUMMARY_COLS)
    if mult == 24:  # lifetimes' documented example: hours / 24 give fractional days
        assert any(r % 1 for r in ours["recency"].to_list())


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_btyd_summary_include_first_transaction_matches_lifetimes():
    log = _unrounded_log(seed=8)
    ours = btyd_summary(log, "2023-06-30", include_first_transaction=True)
    ref = _lt_summary(log, observation_period_end="2023-06-30", include_first_transaction=True)
    _assert_close(ours, ref, SUMMARY_COLS)
    base = btyd_summary(log, "2023-06-30")
    assert (ours["frequency"] - base["frequency"]).to_list() == [1.0] * base.height
    # hand-computed: periods Jan 1 (3.0), Jan 5 (5), Jan 10 (7) -> 3 periods, mean 5
    assert btyd_summary(BT, "2020-01-10", include_first_transaction=True).row(0) == ("a", 3.0, 9.0, 9.0, 5.0)


# pymc-marketing tests/clv/test_utils.py TestRFM.transaction_data (adapted from lifetimes' tests)
PYMC_LOG = pl.DataFrame(
    [(1, "2015-01-01", 1), (1, "2015-02-06", 2), (2, "2015-01-01", 2), (3, "2015-01-01", 3), (3, "2015-01-02", 1),
     (3, "2015-01-05", 5), (4, "2015-01-16", 6), (4, "2015-02-02", 3), (4, "2015-02-05", 3), (4, "2015-02-05", 6),
     (5, "2015-01-16", 3), (5, "2015-01-17", 1), (5, "2015-01-18", 8), (6, "2015-02-02", 5)],
    schema=["identifier", "date", "monetary_value"], orient="row",
).with_columns(pl.col("date").str.to_datetime("%Y-%m-%d"), pl.col("monetary_value").cast(pl.Float64))


def test_btyd_summary_include_first_transaction_pymc_marketing_view():
    """pymc-marketing's documented example: rfm_summary(..., observation_period_end="20150207")
    without and with include_first_transaction=True (recency = T - recency, no T column)."""
    kw = dict(observation_end="2015-02-07", id_col="identifier", datetime_col="date", monetary_value_col="monetary_value")
    model = btyd_summary(PYMC_LOG, **kw)
    assert model.rows() == [(1, 1.0, 36.0, 37.0, 2.0), (2, 0.0, 0.0, 37.0, 0.0), (3, 2.0, 4.0, 37.0, 3.0),
                            (4, 2.0, 20.0, 22.0, 6.0), (5, 2.0, 2.0, 22.0, 4.5), (6, 0.0, 0.0, 5.0, 0.0)]
    seg = btyd_summary(PYMC_LOG, include_first_transaction="pymc-marketing", **kw)
    assert seg.columns == ["identifier", "frequency", "recency", "monetary_value"]
    assert seg.rows() == [(1, 2.0, 1.0, 1.5), (2, 1.0, 37.0, 2.0), (3, 3.0, 33.0, 3.0),
                          (4, 3.0, 2.0, 6.0), (5, 3.0, 20.0, 4.0), (6, 1.0, 5.0, 5.0)]
    # the lifetimes meaning stays: same frequency and money, recency and T of the model view
    lt = btyd_summary(PYMC_LOG, include_first_transaction="lifetimes", **kw)
    assert lt.equals(btyd_summary(PYMC_LOG, include_first_transaction=True, **kw))
    assert lt["recency"].equals(model["recency"]) and lt["T"].equals(model["T"])
    assert lt.select("frequency", "monetary_value").equals(seg.select("frequency", "monetary_value"))
    with pytest.raises(ConfigError, match="pymc-marketing"):
        btyd_summary(PYMC_LOG, include_first_transaction="yes", **kw)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_btyd_summary_default_observation_end_and_end_forms():
    log = _unrounded_log(seed=2)
    with pytest.warns(DefaultObservationEndWarning, match="last transaction"):
        ours = btyd_summary(log)
    last = log["timestamp"].max()
    assert ours.observation_end == last
    ref = _lt_summary(log)  # lifetimes' default: the max datetime
    _assert_close(ours, ref, SUMMARY_COLS)
    d = last.date()
    same = [btyd_summary(log, e) for e in (d, dt.datetime(d.year, d.month, d.day, 23), d.isoformat())]
    assert all(s.equals(ours) for s in same)
    pd = pytest.importorskip("pandas")
    by_period = btyd_summary(log, pd.Period(d.isoformat(), freq="D"))
    assert by_period.equals(ours)
    monthly = btyd_summary(log, "2023-06", freq="M")
    assert monthly.equals(btyd_summary(log, "2023-06-01", freq="M"))


def test_btyd_summary_keeps_the_callers_id_column():
    log = BT.rename({"customer_id": "member"})
    s = btyd_summary(log, "2020-01-10", id_col="member")
    assert s.columns[0] == "member"
    assert s.drop("member").equals(btyd_summary(BT, "2020-01-10").drop("customer_id"))
    with pytest.raises(ConfigError, match="freq"):
        btyd_summary(BT, "2020-01-10", freq="Q")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_first_transactions_matches_lifetimes():
    lu = pytest.importorskip("lifetimes.utils")
    log = _unrounded_log(seed=6)
    ours = first_transactions(log, "2023-09-30", freq="W")
    ref = lu._find_first_transactions(_pdf(log), "customer_id", "timestamp", "amount",
                                      observation_period_end="2023-09-30", freq="W")
    ref = ref.assign(start=ref["timestamp"].dt.start_time).sort_values(["customer_id", "start"])
    assert ours["customer_id"].to_list() == ref["customer_id"].to_list()
    assert ours["timestamp"].dt.replace_time_zone(None).to_list() == list(ref["start"].dt.to_pydatetime())
    assert ours["first"].to_list() == ref["first"].to_list()
    for got, exp in zip(ours["amount"].to_list(), ref["amount"].to_list()):
        assert math.isclose(got, exp, rel_tol=1e-12)
    assert ours.columns == ["customer_id", "timestamp", "amount", "first"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
@pytest.mark.parametrize("freq,mult,first", [("D", 1, False), ("W", 1, False), ("h", 24, True)])
def test_calibration_and_holdout_summary_matches_lifetimes(freq, mult, first):
    lu = pytest.importorskip("lifetimes.utils")
    log = _unrounded_log(seed=9, n_customers=500)
    cal_end, end = "2023-03-31", "2023-09-30 12:00"
    ours = calibration_and_holdout_summary(log, cal_end, end, freq=freq, freq_multiplier=mult,
                                           include_first_transaction=first)
    ref = lu.calibration_and_holdout_data(_pdf(log), "customer_id", "timestamp", cal_end, end, freq=freq,
                                          freq_multiplier=mult, monetary_value_col="amount",
                                          include_first_transaction=first).sort_index()
    cols = ["frequency_cal", "recency_cal", "T_cal", "monetary_value_cal", "frequency_holdout",
            "monetary_value_holdout", "duration_holdout"]
    assert ours.columns == ["customer_id"] + cols
    _assert_close(ours, ref, cols)
    pdf = _pdf(log)
    seen_cal = set(pdf.loc[pdf["timestamp"] <= cal_end, "customer_id"])
    hold = pdf[(pdf["timestamp"] > cal_end) & (pdf["timestamp"] <= end)]
    assert ours.holdout_only_customers == len(set(hold["customer_id"]) - seen_cal) > 0


# --------------------------------------------------------------------------------------------
# issue 15: the warehouse layout (integer ids, rows in time order, several orders per second)
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("freq", ["D", "W"])
def test_btyd_warehouse_layout_keeps_integer_ids_and_paths_agree(freq):
    from tests.features import as_text_ids, warehouse_log

    log = warehouse_log(4, n_customers=400)
    fast = btyd_summary(log, "2024-12-01", freq=freq, method="sorted")
    slow = btyd_summary(log, "2024-12-01", freq=freq, method="grouped")
    assert fast.equals(slow)
    assert fast.schema["customer_id"] == pl.Int64 and fast["customer_id"].is_sorted()  # numeric order
    assert fast.height == log["customer_id"].n_unique() and fast["frequency"].max() > 3
    text = btyd_summary(as_text_ids(log), "2024-12-01", freq=freq)
    assert text.schema["customer_id"] == pl.String  # strings stay strings
    assert fast.equals(text.with_columns(pl.col("customer_id").cast(pl.Int64)).sort("customer_id"))


# --------------------------------------------------------------------------------------------
# issue 15: the sorted path's keys (packed integer ids, hashed text ids with clashing top bits,
# same-day rows that sum to zero)
# --------------------------------------------------------------------------------------------
def test_btyd_sorted_text_ids_with_clashing_hash_bits_give_the_grouped_table(monkeypatch):
    import segmentation_lib.features.btyd as btyd

    log = _random_log(8, n_customers=2000)
    ref = btyd_summary(log, "2024-12-01", method="grouped")
    # leave 16 bits for the hash: with 2,000 customers, dozens of pairs share them (65,536 values)
    real = btyd._bits
    monkeypatch.setattr(btyd, "_bits", lambda df: (lambda p_lo, bp, br: (p_lo, bp, 48 - bp))(*real(df)))
    calls = []
    apart = btyd._grouped_per_customer  # the clashing runs' customers are summarised apart
    monkeypatch.setattr(btyd, "_grouped_per_customer", lambda rows: calls.append(1) or apart(rows))
    fast = btyd_summary(log, "2024-12-01", method="sorted")
    assert calls and fast.equals(ref) and fast.height == log["customer_id"].drop_nulls().n_unique()


@pytest.mark.parametrize("text", [False, True])
def test_btyd_sorted_same_day_rows_summing_to_zero_match_the_grouped_table(text):
    t = lambda d, h: dt.datetime(2024, 1, d, h, tzinfo=dt.timezone.utc)  # noqa: E731
    rows = [  # customer 7: a first day of +0.3, -0.1, -0.2 (net zero), then a day of 5 and -5 (net zero), then 2
        (7, t(1, 9), 0.3), (7, t(1, 10), -0.1), (7, t(1, 11), -0.2), (7, t(3, 9), 5.0), (7, t(3, 10), -5.0),
        (7, t(4, 9), 2.0), (3, t(2, 9), 1.0), (3, t(2, 10), 2.5), (3, t(5, 9), 4.0), (9, t(6, 9), 8.0),
    ]
    log = pl.DataFrame(rows, schema={"customer_id": pl.Int64, "timestamp": pl.Datetime("us", "UTC"), "amount": pl.Float64},
                       orient="row")
    if text:
        log = log.with_columns(pl.col("customer_id").cast(pl.String))
    fast = btyd_summary(log, "2024-01-10", method="sorted")
    assert fast.equals(btyd_summary(log, "2024-01-10", method="grouped"))
    # customer 3: days 2 (3.5) and 5 (4.0); customer 7: days 1 (0), 3 (0), 4 (2): mean of 0 and 2
    assert fast.select("frequency", "recency", "T", "monetary_value").rows() == [
        (1.0, 3.0, 8.0, 4.0), (2.0, 3.0, 9.0, 1.0), (0.0, 0.0, 4.0, 0.0)]


@pytest.mark.parametrize("cents", [True, False])
def test_btyd_int_runs_path_is_taken_and_gives_the_grouped_table(monkeypatch, cents):
    """The numpy-runs path (int64 limbs; amounts in whole cents packed in the key, or fetched by row
    number) on the warehouse layout equals the grouped table for any row order."""
    import segmentation_lib.features.btyd as btyd
    from tests.features import warehouse_log

    log = warehouse_log(6, n_customers=500)
    if not cents:
        log = log.with_columns(pl.col("amount") * 1.0001)
    log = pl.concat([log, log.head(300).with_columns(-pl.col("amount"))])  # same-day rows netting to zero
    calls = []
    real = btyd._int_runs
    monkeypatch.setattr(btyd, "_int_runs", lambda *a: (lambda r: calls.append(r is not None) or r)(real(*a)))
    ref = btyd_summary(log, "2024-12-01", method="grouped")
    fast = btyd_summary(log, "2024-12-01", method="sorted")
    assert calls == [True] and fast.equals(ref)
    assert (btyd._whole_cents(log["amount"].to_numpy()) is not None) == cents
    shuffled = btyd_summary(log.sample(fraction=1.0, shuffle=True, seed=3), "2024-12-01", method="sorted")
    assert shuffled.equals(ref) and (ref["monetary_value"] == 0.0).any()


@pytest.mark.parametrize("layout", ["int_cents", "int_rows", "text", "text_clash"])
def test_btyd_sorted_passes_in_threads_give_the_one_piece_table(monkeypatch, layout):
    """With the rows split into pieces between customers (threads forced on a small log), the sorted
    path gives the same bytes as in one piece and as the grouped path; every piece is used."""
    import segmentation_lib.features.btyd as btyd
    from tests.features import as_text_ids, force_pieces, warehouse_log

    log = warehouse_log(6, n_customers=500)
    if layout == "int_rows":
        log = log.with_columns(pl.col("amount") * 1.0001)
    log = pl.concat([log, log.head(300).with_columns(-pl.col("amount"))])  # same-day rows netting to zero
    if layout.startswith("text"):
        log = as_text_ids(log)
    if layout == "text_clash":  # 16 hash bits: clashing customers inside the pieces
        real = btyd._bits
        monkeypatch.setattr(btyd, "_bits", lambda df: (lambda p_lo, bp, br: (p_lo, bp, 48 - bp))(*real(df)))
    ref = btyd_summary(log, "2024-12-01", method="grouped")
    one = btyd_summary(log, "2024-12-01", method="sorted")
    sizes = force_pieces(monkeypatch, btyd, "_runs_piece")
    threaded = btyd_summary(log, "2024-12-01", method="sorted")
    assert len(sizes) == 3 and sum(sizes) == log.height and min(sizes) > 0
    assert threaded.equals(one) and threaded.equals(ref)
