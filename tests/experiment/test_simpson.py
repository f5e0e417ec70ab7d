"""Simpson's paradox: the issue's two-day ramp-up is flagged; an even split is not."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.describe.experiment_text import simpson_sentence
from segmentation_lib.experiment.simpson import ramp_up_example, simpson_check


@pytest.fixture(scope="module")
def ramp() -> dict:
    return simpson_check(ramp_up_example(), "stratum", control="control", treatment="treatment")


def test_the_ramp_up_numbers_are_the_issue_s(ramp) -> None:
    day = {s["stratum"]: s for s in ramp["strata"]}
    assert day["day 1"]["mean_control"] == pytest.approx(2000 / 99000) and round(100 * day["day 1"]["mean_control"], 2) == 2.02
    assert day["day 1"]["mean_variant"] == pytest.approx(0.023)
    assert day["day 2"]["mean_control"] == pytest.approx(0.010) and day["day 2"]["mean_variant"] == pytest.approx(0.012)
    assert day["day 1"]["variant_share"] == pytest.approx(0.01) and day["day 2"]["variant_share"] == pytest.approx(0.5)
    assert round(100 * ramp["pooled"]["mean_control"], 2) == 1.68 and round(100 * ramp["pooled"]["mean_variant"], 2) == 1.22


def test_the_ramp_up_is_flagged_with_a_sign_flip(ramp) -> None:
    assert ramp["pooled"]["abs_lift"] == pytest.approx(617 / 50500 - 2495 / 148500)  # about -0.46 points
    # size-weighted mean of the day lifts: (100000 * 0.28 + 99000 * 0.20) / 199000 points
    assert ramp["stratified"]["abs_lift"] == pytest.approx((100_000 * (0.023 - 2000 / 99000) + 99_000 * 0.002) / 199_000)
    assert ramp["sign_flip"] and ramp["pooled_outside"] and ramp["flagged"]
    assert ramp["mantel_haenszel"]["odds_ratio"] > 1  # treatment wins within days
    text = simpson_sentence(ramp)
    assert text.startswith("**Simpson's paradox flagged** (the signs differ)")
    assert "-0.5 points" in text and "+0.2 points" in text  # pooled and stratified in points
    mix = ramp["mix_shift"]
    assert {mix["stratum"], } <= {"day 1", "day 2"}
    assert "2.0%" in text and "1.0%" in text  # the two baselines named as the cause


def test_an_even_split_is_not_flagged() -> None:
    rng = np.random.default_rng(3)
    n = 20_000
    day = np.repeat(["day 1", "day 2"], n // 2)
    variant = np.tile(["control", "treatment"], n // 2)
    p = np.where(day == "day 1", 0.02, 0.01) + np.where(variant == "treatment", 0.002, 0.0)
    frame = pl.DataFrame({"stratum": day, "variant": variant, "converted": (rng.random(n) < p).astype(float)})
    res = simpson_check(frame, "stratum", "control", "treatment")
    assert not res["flagged"] and "no sign of Simpson's paradox" in simpson_sentence(res)
