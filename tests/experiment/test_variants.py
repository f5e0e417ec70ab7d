"""Three variants: the best variant per segment, corrected for variants x segments."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from segmentation_lib.experiment.readout import read_experiment
from segmentation_lib.experiment.variants import recommendations

EFFECTS = {"B": {"a": 0.10}, "C": {"b": 0.10}}  # B helps segment a, C helps segment b, nothing helps c


@pytest.fixture(scope="module")
def three():
    rng = np.random.default_rng(4)
    n = 27_000
    seg = np.repeat(["a", "b", "c"], n // 3)
    variant = np.tile(["A", "B", "C"], n // 3)
    p = 0.15 + np.array([EFFECTS.get(v, {}).get(s, 0.0) for v, s in zip(variant, seg)])
    frame = pl.DataFrame({"variant": variant, "seg": seg, "converted": (rng.random(n) < p).astype(float)})
    return read_experiment(frame, ["seg"], ["conversion"], control="A", pre_registered=["seg"], covariate=None)


def test_family_is_variants_times_segments(three) -> None:
    seg = three.lifts.filter(pl.col("method") == "seg")
    assert seg.height == 6
    assert seg["p_adjusted"].to_numpy() == pytest.approx(multipletests(seg["p_value"].to_numpy(), method="holm")[1])
    over = three.lifts.filter(pl.col("method") == "overall")  # overall: Holm over the two variants
    assert over["correction"].to_list() == ["holm", "holm"]
    assert over["p_adjusted"].to_numpy() == pytest.approx(multipletests(over["p_value"].to_numpy(), method="holm")[1])


def test_best_variant_per_segment(three) -> None:
    recs = recommendations(three.lifts, three.heterogeneity, "conversion", "A")
    by = {r["segment"]: r for r in recs.filter(pl.col("method") == "seg").to_dicts()}
    assert (by["a"]["recommended"], by["a"]["basis"]) == ("B", "segment")
    assert (by["b"]["recommended"], by["b"]["basis"]) == ("C", "segment")
    assert (by["c"]["recommended"], by["c"]["basis"]) == ("A", "no winner")
    assert by["a"]["abs_low"] <= 0.10 <= by["a"]["abs_high"]
    assert recs.row(0, named=True)["method"] == "overall"


def test_without_heterogeneity_every_segment_follows_the_overall_result(three) -> None:
    het = three.heterogeneity.with_columns(pl.lit(False).alias("differs"))
    recs = recommendations(three.lifts, het, "conversion", "A").filter(pl.col("method") == "seg")
    overall = recommendations(three.lifts, het, "conversion", "A").row(0, named=True)["recommended"]
    assert set(recs["basis"]) == {"overall"} and set(recs["recommended"]) == {overall}
    assert recs["abs_lift"].is_null().all()  # no segment-level number is offered as if it were supported
