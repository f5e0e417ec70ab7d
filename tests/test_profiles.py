"""segment_profiles, relative_importance, crosstab, name_segments, SurrogateRules (+ SQL in DuckDB)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.surrogate import SurrogateRules
from segmentation_lib.segment.profiles import crosstab, name_segments, relative_importance, segment_profiles


@pytest.fixture
def small() -> pl.DataFrame:
    return pl.DataFrame({"customer_id": ["a", "b", "c", "d"], "total_spend": [10.0, 30.0, 100.0, 60.0],
                         "n_orders": [1, 3, 10, 6]})


def test_segment_profiles_hand_computed(small):
    p = segment_profiles(small, [1, 1, 0, 0], names={0: "Big", 1: "Small"})
    assert p.columns[:5] == ["segment", "name", "size", "share", "revenue_share"]
    r0, r1 = p.to_dicts()
    assert (r0["segment"], r0["name"], r0["size"], r0["share"]) == (0, "Big", 2, 0.5)
    assert r0["revenue_share"] == pytest.approx(0.8) and r1["revenue_share"] == pytest.approx(0.2)
    assert r0["mean_total_spend"] == 80.0 and r0["median_n_orders"] == 8.0
    # overall means: spend 50, orders 5
    assert r0["rel_total_spend"] == pytest.approx(0.6) and r1["rel_n_orders"] == pytest.approx(-0.6)


def test_labels_from_column_and_length_check(small):
    p = segment_profiles(small.with_columns(seg=pl.Series([1, 1, 0, 0])), "seg")
    assert p["size"].to_list() == [2, 2] and "mean_seg" not in p.columns
    with pytest.raises(DataError, match="3 labels were given for 4 customers"):
        segment_profiles(small, [0, 1, 0])


def test_relative_importance_long_and_wide(small):
    p = segment_profiles(small, [1, 1, 0, 0])
    long = relative_importance(p)
    assert long.columns == ["segment", "feature", "relative_importance"]
    assert long.height == 4
    assert long.filter((pl.col("segment") == 1) & (pl.col("feature") == "total_spend"))[
        "relative_importance"].item() == pytest.approx(-0.6)
    wide = relative_importance(p, form="wide")
    assert wide.columns == ["segment", "total_spend", "n_orders"]


def test_crosstab_counts_and_row_shares():
    ct = crosstab([0, 0, 1, 1, 1], ["Champions", "At risk", "At risk", "At risk", "Lost"], "cluster", "rfm")
    assert ct.columns == ["cluster", "At risk", "Champions", "Lost"]
    assert ct.rows() == [(0, 1, 1, 0), (1, 2, 0, 1)]
    shares = crosstab([0, 0, 1], ["x", "y", "y"], normalize="row")
    assert shares.rows() == [(0, 0.5, 0.5), (1, 0.0, 1.0)]


def _profile_rows(rows):
    return pl.DataFrame(rows)


def test_name_segments_plain_words_unique_and_overridable():
    p = _profile_rows([
        {"segment": 0, "rel_total_spend": 2.0, "rel_n_orders": 1.0, "mean_n_orders": 12.0,
         "rel_days_since_last": -0.8, "rel_tenure_days": 0.6, "rel_avg_order_value": 0.7},
        {"segment": 1, "rel_total_spend": -0.1, "rel_n_orders": 0.0, "mean_n_orders": 4.0,
         "rel_days_since_last": 1.0, "rel_tenure_days": 0.0, "rel_avg_order_value": 0.0},
        {"segment": 2, "rel_total_spend": -0.1, "rel_n_orders": 0.0, "mean_n_orders": 4.0,
         "rel_days_since_last": 1.0, "rel_tenure_days": -0.7, "rel_avg_order_value": 0.0},
        {"segment": 3, "rel_total_spend": -0.9, "rel_n_orders": -0.8, "mean_n_orders": 1.1,
         "rel_days_since_last": 0.1, "rel_tenure_days": 0.0, "rel_avg_order_value": 0.0},
    ])
    names = name_segments(p)
    assert names[0] == "High value, frequent, recent"
    # 1 and 2 collide on the first three words and are told apart by tenure
    assert names[1] == "Mid value, regular, lapsed, established"
    assert names[2] == "Mid value, regular, lapsed, new"
    assert names[3] == "Low value, one-time, cooling"
    assert name_segments(p, overrides={"0": "Whales"})[0] == "Whales"
    with pytest.raises(ConfigError, match="segment 9"):
        name_segments(p, overrides={9: "Ghost"})
    with pytest.raises(ConfigError, match="share a name"):
        name_segments(p, overrides={0: "Same", 1: "Same"})


def test_name_segments_identical_profiles_get_numbers():
    row = {"rel_total_spend": 0.0, "rel_n_orders": 0.0, "rel_days_since_last": 0.0}
    names = name_segments(_profile_rows([{"segment": 0, **row}, {"segment": 1, **row}]))
    assert names == {0: "Mid value, regular, cooling", 1: "Mid value, regular, cooling (2)"}


@pytest.fixture(scope="module")
def rule_data():
    rng = np.random.default_rng(0)
    n = 3_000
    df = pl.DataFrame({
        "customer_id": [f"C{i}" for i in range(n)],
        "days_since_last": rng.integers(0, 400, n).astype(float),
        "total_spend": np.round(rng.lognormal(6.5, 1.0, n), 2),
        "mean_days_between": np.where(rng.random(n) < 0.2, np.nan, rng.uniform(1, 300, n)),
        "tenure_days": rng.integers(1, 800, n).astype(float),
    }).with_columns(pl.col("mean_days_between").fill_nan(None))
    gap = df["mean_days_between"].fill_null(df["tenure_days"]).to_numpy()
    spend = df["total_spend"].to_numpy()
    days = df["days_since_last"].to_numpy()
    seg = np.where(spend > 1000, 0, np.where(days <= 30, 1, np.where(gap <= 90, 2, 3)))
    return df, seg


def test_surrogate_fidelity_rules_and_sql_in_duckdb(rule_data):
    duckdb = pytest.importorskip("duckdb")
    df, seg = rule_data
    names = {0: "Big spenders", 1: "Recent", 2: "Regular", 3: "Drifting 'away'"}
    sr = SurrogateRules(max_depth=3, features=["days_since_last", "total_spend", "mean_days_between"]).fit(
        df, seg, names=names)
    assert sr.fidelity_ == 1.0
    text = sr.rules_text()
    assert "If total spend > 1,000 then segment 'Big spenders'" in text  # threshold 1,000.x shown rounded
    assert "days since last purchase <= 30 then segment 'Recent'" in text  # integer feature: exact whole number
    # the tree's own float32 predictions agree with the float64 evaluation used for SQL
    X = df.with_columns(pl.col("mean_days_between").fill_null(pl.col("tenure_days"))).select(
        "days_since_last", "total_spend", "mean_days_between").to_numpy()
    assert np.array_equal(sr.tree_.predict(X), sr.predict(df))
    con = duckdb.connect()
    con.register("customer_features", df.to_arrow())
    cur = con.execute(sr.to_sql())
    cols = [d[0] for d in cur.description]
    out = pl.DataFrame(cur.fetchall(), schema=cols, orient="row")
    assert cols == ["customer_id", "segment", "segment_name"]
    assert np.array_equal(out["segment"].to_numpy(), sr.predict(df))
    assert out["segment_name"].to_list() == [names[s] for s in sr.predict(df)]
    assert 'COALESCE("mean_days_between", "tenure_days")' in sr.to_sql()


def test_surrogate_fidelity_below_one_when_too_shallow(rule_data):
    df, seg = rule_data
    sr = SurrogateRules(max_depth=1, extra_depth=0).fit(df.drop("customer_id"), seg)
    assert 0.3 < sr.fidelity_ < 1.0
    assert len(sr.rules_text().splitlines()) == 2
    with pytest.raises(ConfigError, match="surrogate_depth"):
        SurrogateRules(max_depth=0).fit(df, seg)


@pytest.fixture
def planted_vip() -> tuple[pl.DataFrame, np.ndarray]:
    """Recent (45%), lapsed (50%) and a small valuable segment (5%, recent, spend > 5,000)."""
    rng = np.random.default_rng(3)
    n_vip, n_recent, n_lapsed = 100, 900, 1000
    days = np.r_[rng.integers(0, 100, n_vip + n_recent), rng.integers(101, 700, n_lapsed)].astype(float)
    spend = np.r_[rng.uniform(6000, 9000, n_vip), rng.uniform(10, 4000, n_recent + n_lapsed)]
    seg = np.r_[np.zeros(n_vip, int), np.ones(n_recent, int), np.full(n_lapsed, 2)]
    return pl.DataFrame({"days_since_last": days, "total_spend": spend}), seg


def test_surrogate_gives_small_valuable_segment_its_own_rule(planted_vip):
    df, seg = planted_vip
    names = {0: "VIP", 1: "Recent", 2: "Lapsed"}
    # depth 1 has two leaves: the split on recency wins (weighted Gini 0.09 against 0.47 on spend),
    # so the 5% VIP segment is folded into "Recent" although 95% of customers agree
    shallow = SurrogateRules(max_depth=1, extra_depth=0).fit(df, seg, names=names)
    assert shallow.fidelity_ == pytest.approx(0.95) and shallow.unreached_ == [0]
    assert shallow.recall_[0] == 0.0 and shallow.recall_by_name()["Recent"] == 1.0
    assert "THEN 0" not in shallow.to_sql()
    # default: one level deeper, same leaf budget (max(2, 3 + 1) = 4): every segment has a rule
    sr = SurrogateRules(max_depth=1).fit(df, seg, names=names)
    assert (sr.depth_, sr.unreached_, sr.fidelity_) == (2, [], 1.0)
    assert sr.recall_by_name() == {"VIP": 1.0, "Recent": 1.0, "Lapsed": 1.0}
    assert "THEN 0" in sr.to_sql() and "then segment 'VIP' (5.0% of customers, 100% agree)" in sr.rules_text()
    # sibling leaves giving the same segment are one rule: 3 rules, not 4
    assert len(sr.rules_text().splitlines()) == 3
    assert np.array_equal(sr.predict(df), seg)


def test_surrogate_keeps_configured_depth_when_it_reaches_every_segment(rule_data):
    df, seg = rule_data
    sr = SurrogateRules(max_depth=3, features=["days_since_last", "total_spend", "mean_days_between"]).fit(df, seg)
    assert sr.depth_ == 3 and sr.unreached_ == [] and min(sr.recall_.values()) == 1.0
