"""The readout: planted effects recovered, a planted null not significant after correction, SRM,
CUPED, Holm/BH by hand and against statsmodels, the comparisons against scipy."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from segmentation_lib.errors import ConfigError
from segmentation_lib.experiment.readout import adjust, arm_statistics, compare_arms, read_experiment, srm_check

#: planted absolute conversion effects per segment (a: +8 points, d: -3 points, six null segments)
PLANTED = {"a": 0.08, "b": 0.0, "c": 0.0, "d": -0.03, "e": 0.0, "f": 0.0, "g": 0.0, "h": 0.0}
BASE = {"a": 0.20, "b": 0.10, "c": 0.15, "d": 0.12, "e": 0.05, "f": 0.08, "g": 0.10, "h": 0.30}
NULLS = [s for s, e in PLANTED.items() if e == 0.0]


def planted(n_per_segment: int = 4_000, seed: int = 11) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    seg = np.repeat(list(PLANTED), n_per_segment)
    variant = np.tile(["control", "treatment"], seg.size // 2)
    pre = rng.gamma(2.0, 50.0, seg.size)
    p = np.array([BASE[s] for s in seg]) + np.where(variant == "treatment", [PLANTED[s] for s in seg], 0.0)
    converted = (rng.random(seg.size) < p).astype(float)
    revenue = 0.8 * pre + rng.normal(0, 10, seg.size) + 5.0 * (variant == "treatment")
    return pl.DataFrame({"variant": variant, "seg": seg, "other": np.where(rng.random(seg.size) < 0.5, "x", "y"),
                         "converted": converted, "revenue": revenue, "orders": converted + 1.0, "pre_spend": pre})


@pytest.fixture(scope="module")
def readout():
    return read_experiment(planted(), ["seg", "other"], ["conversion", "revenue", "revenue_per_order"],
                           pre_registered=["seg"])


def _row(r, method, segment, metric="conversion") -> dict:
    return r.lifts.filter((pl.col("method") == method) & (pl.col("segment") == segment)
                          & (pl.col("metric") == metric)).row(0, named=True)


def test_planted_effect_recovered_within_its_interval(readout) -> None:
    a, d = _row(readout, "seg", "a"), _row(readout, "seg", "d")
    assert a["abs_low"] <= 0.08 <= a["abs_high"] and a["significant"]
    assert d["abs_low"] <= -0.03 <= d["abs_high"]
    assert a["correction"] == "holm" and _row(readout, "other", "x")["correction"] == "fdr_bh"


def test_planted_null_segment_not_significant_after_correction(readout) -> None:
    rows = [_row(readout, "seg", s) for s in NULLS]
    assert all(r["p_adjusted"] >= r["p_value"] and not r["significant"] for r in rows), rows
    # with this seed segment c is a raw false positive (p = 0.023): the Holm correction keeps it out
    assert _row(readout, "seg", "c")["p_value"] < 0.05


def test_heterogeneity_is_detected_only_where_planted(readout) -> None:
    het = {(h["method"], h["metric"]): h for h in readout.heterogeneity.to_dicts()}
    assert het["seg", "conversion"]["differs"] and het["seg", "conversion"]["df"] == 7
    assert not het["other", "conversion"]["differs"]  # a random split of customers: no real difference
    assert not het["seg", "revenue"]["differs"]  # revenue effect planted equal (+5) in every segment


def test_srm_detects_five_percent_of_one_variant_dropped() -> None:
    frame = planted()
    assert readout_srm(frame) == "ok"
    treat = frame.with_row_index("i").filter(pl.col("variant") == "treatment")
    drop = treat.sample(fraction=0.05, seed=1)["i"]
    dropped = frame.with_row_index("i").filter(~pl.col("i").is_in(drop.implode())).drop("i")
    assert readout_srm(dropped) == "fail"
    # the hand value: 12,000 vs 11,400 against 11,700 each
    assert srm_check({"control": 12_000, "treatment": 11_400})["chi2"] == pytest.approx(2 * 300 ** 2 / 11_700)
    assert srm_check({"control": 10, "treatment": 2}, warn=0.01)["status"] == "ok"
    assert srm_check({"control": 3, "treatment": 2})["status"] == "too small"


def readout_srm(frame: pl.DataFrame) -> str:
    r = read_experiment(frame, ["seg"], ["conversion"])
    return r.srm.filter(pl.col("method") == "overall")["status"].item()


def test_cuped_narrows_the_interval_where_pre_period_spend_predicts(readout) -> None:
    row = _row(readout, "overall", "All customers", "revenue")
    raw, cuped = row["abs_high"] - row["abs_low"], row["cuped_high"] - row["cuped_low"]
    assert cuped < 0.3 * raw  # revenue = 0.8 x pre-period spend + noise: most of the variance goes
    assert row["cuped_low"] <= 5.0 <= row["cuped_high"] and row["cuped_theta"] == pytest.approx(0.8, abs=0.02)


def test_holm_and_bh_by_hand_and_as_statsmodels() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # Holm: sorted 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 -> running max 0.06
    assert adjust(p, "holm") == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # BH: 0.005 x 4/1 = 0.02, 0.01 x 4/2 = 0.02, 0.03 x 4/3 = 0.04, 0.04 x 4/4 = 0.04 (running min from the top)
    assert adjust(p, "fdr_bh") == pytest.approx([0.02, 0.04, 0.04, 0.02])
    for how in ("holm", "fdr_bh"):
        assert adjust(p, how) == pytest.approx(multipletests(p, method=how)[1])
    with_nan = adjust([0.01, float("nan"), 0.04], "holm")
    assert np.isnan(with_nan[1]) and with_nan[[0, 2]] == pytest.approx([0.02, 0.04])


def test_readout_adjusts_each_method_as_one_family(readout) -> None:
    seg = readout.lifts.filter((pl.col("method") == "seg") & (pl.col("metric") == "conversion")).sort("segment")
    assert seg["p_adjusted"].to_numpy() == pytest.approx(multipletests(seg["p_value"].to_numpy(), method="holm")[1])


def test_proportion_comparison_is_the_wald_interval() -> None:
    c = {"n": 1000, "s_converted": 100, "ss_converted": 100}
    t = {"n": 1000, "s_converted": 130, "ss_converted": 130}
    out = compare_arms(t, c, "conversion")
    se = np.sqrt(0.13 * 0.87 / 1000 + 0.1 * 0.9 / 1000)
    assert out["abs_low"] == pytest.approx(0.03 - 1.959964 * se, abs=1e-6)
    assert out["p_value"] == pytest.approx(2 * stats.norm.sf(0.03 / se), rel=1e-6)
    assert out["rel_lift"] == pytest.approx(0.3)


def test_welch_matches_scipy_on_the_raw_data() -> None:
    rng = np.random.default_rng(5)
    y1, y0 = rng.normal(11, 4, 300), rng.normal(10, 2, 500)
    frame = pl.DataFrame({"variant": ["t"] * 300 + ["c"] * 500, "revenue": np.r_[y1, y0]})
    arms = {r["variant"]: r for r in arm_statistics(frame, [], None).to_dicts()}
    out = compare_arms(arms["t"], arms["c"], "revenue")
    ref = stats.ttest_ind(y1, y0, equal_var=False)
    ci = ref.confidence_interval()
    assert out["p_value"] == pytest.approx(ref.pvalue) and (out["abs_low"], out["abs_high"]) == pytest.approx((ci.low, ci.high))


def test_ratio_metric_with_one_order_each_is_the_mean() -> None:
    rng = np.random.default_rng(2)
    rev = rng.gamma(2, 20, 4000)
    frame = pl.DataFrame({"variant": np.tile(["c", "t"], 2000), "revenue": rev, "orders": np.ones(4000)})
    arms = {r["variant"]: r for r in arm_statistics(frame, [], None).to_dicts()}
    ratio = compare_arms(arms["t"], arms["c"], "revenue_per_order")
    mean = compare_arms(arms["t"], arms["c"], "revenue")
    assert ratio["abs_lift"] == pytest.approx(mean["abs_lift"])
    # delta-method variance of a ratio with a constant denominator is var(y) / n: the normal interval of the mean
    assert ratio["abs_high"] - ratio["abs_low"] == pytest.approx(mean["abs_high"] - mean["abs_low"], rel=1e-3)


def test_unknown_metric_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="experiment.metrics: unknown metric"):
        read_experiment(planted(100), ["seg"], ["clicks"])


def test_identical_inputs_give_identical_json(tmp_path) -> None:
    from segmentation_lib.report.experiment import finite
    from segmentation_lib.report.files import write_json

    frame = planted(2_000)
    docs = [write_json(tmp_path / f"{i}.json", finite(read_experiment(frame, ["seg"], ["conversion", "revenue"]).to_dict()))
            for i in range(3)]
    assert docs[0].read_bytes() == docs[1].read_bytes() == docs[2].read_bytes()
    # shuffled rows sum in another order: equal to float rounding (the 12th digit), not necessarily bytewise
    shuffled = read_experiment(frame.sample(fraction=1.0, shuffle=True, seed=3), ["seg"], ["conversion", "revenue"])
    first = read_experiment(frame, ["seg"], ["conversion", "revenue"])
    assert shuffled.lifts["abs_low"].to_numpy() == pytest.approx(first.lifts["abs_low"].to_numpy(), rel=1e-9)
