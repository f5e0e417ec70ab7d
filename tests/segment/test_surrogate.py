"""segmentation_lib.segment.surrogate: SurrogateRules (fidelity, readable rules, SQL run in DuckDB, a rule
for every segment)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError
from segmentation_lib.segment.surrogate import SurrogateRules


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
