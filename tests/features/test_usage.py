"""segmentation_lib.features.usage (and data.read.read_events / data.events.clean_events): usage features
of a hand-counted event log, checked against a plain group-by; the join onto the purchase features."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from segmentation_lib.data.events import clean_events
from segmentation_lib.data.read import read_events
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.usage import join_usage, usage_features
from tests.conftest import check_message

UTC = dt.timezone.utc
AS_OF = dt.datetime(2024, 4, 1, tzinfo=UTC)


def at(month: int, day: int, hour: int = 10) -> dt.datetime:
    return dt.datetime(2024, month, day, hour, tzinfo=UTC)


# a: 3 sessions on 2 days in March (one with 3 events), used export once, 1 event in January
# b: one session in December 2023 (no activity since), c: events without session ids
EVENTS = pl.DataFrame({
    "customer_id": ["a", "a", "a", "a", "a", "a", "b", "b", "c", "c", "c"],
    "timestamp": [at(3, 30), at(3, 30, 11), at(3, 30, 12), at(3, 30, 15), at(3, 20), at(1, 15),
                  dt.datetime(2023, 12, 1, tzinfo=UTC), dt.datetime(2023, 12, 1, 1, tzinfo=UTC),
                  at(3, 31), at(3, 31, 12), at(3, 1)],
    "event": ["login", "search", "export", "login", "login", "login", "login", "search", "login", "export", "login"],
    "session_id": ["s1", "s1", "s1", "s2", "s3", "s4", "s5", "s5", None, None, None],
})


def test_hand_counted_usage_features():
    f = usage_features(EVENTS, AS_OF, windows=(7, 30), key_features=("export",))
    got = f.select("customer_id", "n_events", "active_days", "sessions", "active_days_7d", "sessions_7d",
                   "active_days_30d", "sessions_30d", "distinct_events", "adopted_export", "first_use_export",
                   "days_since_last_activity").rows()
    assert got == [
        ("a", 6, 3, 4, 1, 2, 2, 3, 3, 1, dt.date(2024, 3, 30), 2),
        ("b", 2, 1, 1, 0, 0, 0, 0, 2, 0, None, 122),
        ("c", 3, 2, 2, 1, 1, 1, 1, 2, 1, dt.date(2024, 3, 31), 1),  # no session id: one session per active day; 1 March is before 2 March
    ]
    a = f.row(0, named=True)
    assert a["events_per_session"] == 6 / 4
    assert a["sessions_per_active_week"] == 4 / 3  # weeks of 15 Jan, 18 Mar, 25 Mar
    # trend: a has 5 events in the last 30 days (rate 5/30) and 1 in the 90 before (rate 1/90)
    assert a["usage_trend"] == pytest.approx((5 / 30 - 1 / 90) / (5 / 30 + 1 / 90))
    assert f.row(1, named=True)["usage_trend"] == 0.0  # b: nothing in either period


def test_usage_features_match_a_plain_group_by():
    import numpy as np

    rng = np.random.default_rng(5)
    n = 3000
    ev = pl.DataFrame({
        "customer_id": rng.integers(0, 50, n).astype(str),
        "timestamp": pl.from_epoch(pl.Series(int(AS_OF.timestamp()) - rng.integers(0, 400 * 86400, n)), time_unit="s")
        .cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "event": rng.choice(["a", "b", "c", "d"], n),
        "session_id": rng.integers(0, 600, n).astype(str),
    })
    f = usage_features(ev, AS_OF, windows=(30, 90), key_features=("d",))
    recent = pl.col("timestamp") >= AS_OF - dt.timedelta(days=90)
    plain = ev.with_columns(day=pl.col("timestamp").dt.date()).group_by("customer_id").agg(
        pl.len().alias("n_events"), pl.col("session_id").n_unique().alias("sessions"),
        pl.col("day").filter(recent).n_unique().alias("active_days_90d"),
        pl.col("event").n_unique().alias("distinct_events"),
        pl.col("day").filter(pl.col("event") == "d").min().alias("first_use_d"),
    ).sort("customer_id")
    assert f.select(plain.columns).with_columns(pl.col(pl.Int64).cast(pl.UInt32)).equals(
        plain.with_columns(pl.col(pl.Int64, pl.UInt32).cast(pl.UInt32)))


def test_join_keeps_every_customer_with_zero_counts():
    u = usage_features(EVENTS, AS_OF, windows=(30,))
    purchases = pl.DataFrame({"customer_id": ["a", "z"], "n_orders": [2, 1], "tenure_days": [100, 45]})
    j = join_usage(purchases, u)
    assert j["customer_id"].to_list() == ["a", "b", "c", "z"]
    z = j.row(3, named=True)
    assert (z["n_orders"], z["n_events"], z["sessions_30d"], z["events_per_session"], z["usage_trend"],
            z["days_since_last_activity"]) == (1, 0, 0, 0.0, 0.0, 45)
    assert j.row(1, named=True)["n_orders"] is None and j.row(0, named=True)["days_since_last_activity"] == 2


def test_read_and_clean_an_event_csv_counts_each_rule(tmp_path):
    f = tmp_path / "events.csv"
    f.write_text("account,when,name,sid\n"
                 "a,2024-03-30 10:00:00,login,s1\n"
                 "a,2024-03-30 10:00:00,login,s1\n"   # exact duplicate
                 ",2024-03-30 11:00:00,login,s2\n"    # no id
                 "b,not a date,login,s3\n"            # bad timestamp
                 "b,2024-05-01 00:00:00,login,s4\n"   # after as_of
                 "b,2024-03-01 09:00:00,export,s5\n")
    lf = read_events(f, {"customer_id": "account", "timestamp": "when", "event": "name", "session_id": "sid"})
    df, report = clean_events(lf, AS_OF)
    assert report["dropped"] == {"null_customer": 1, "bad_timestamp": 1, "future": 1, "duplicates": 1}
    assert report["bad_timestamp_examples"] == ["not a date"]
    assert (report["rows_in"], report["rows_out"]) == (6, 2)
    assert df.select("customer_id", "event", "session_id").rows() == [("a", "login", "s1"), ("b", "export", "s5")]
    with pytest.raises(DataError) as err:
        clean_events(read_events(f, {"customer_id": "account", "timestamp": "when", "event": "name"}), AS_OF,
                     {"bad_timestamp": "error"})
    check_message(err, "1 event row", "quality.bad_timestamp")
    with pytest.raises(DataError) as err:
        read_events(f, {"customer_id": "account", "timestamp": "when", "event": "event_name"})
    check_message(err, "events.csv", "'event_name'", "data.events.columns.event", "name")


def test_bad_windows_and_repeated_key_features():
    with pytest.raises(ConfigError, match="windows"):
        usage_features(EVENTS, AS_OF, windows=(0,))
    with pytest.raises(ConfigError, match="key_features"):
        usage_features(EVENTS, AS_OF, key_features=("Export", "export"))
