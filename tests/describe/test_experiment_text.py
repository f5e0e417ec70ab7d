"""The experiment page's wording: a segment effect is claimed only when the tests support it."""
from __future__ import annotations

from segmentation_lib.describe import experiment_text as text

SETTINGS = {"control": "control", "variants": ["control", "<b>new</b>"], "methods": ["rfm_segment"],
            "pre_registered": ["rfm_segment"], "exploratory": [], "srm_warn": 0.01, "srm_fail": 0.001,
            "expected_split": "equal"}


def _lift(method: str, segment: str, lift: float, significant: bool, p_adj: float) -> dict:
    return {"method": method, "segment": segment, "metric": "conversion", "variant": "<b>new</b>",
            "mean_control": 0.10, "mean_variant": 0.10 + lift, "abs_lift": lift, "abs_low": lift - 0.01,
            "abs_high": lift + 0.01, "rel_lift": lift / 0.1, "rel_low": 0.0, "rel_high": 0.0, "p_value": p_adj / 2,
            "p_adjusted": p_adj, "significant": significant, "correction": "holm", "small": False,
            "n_control": 1000, "n_variant": 1000}


LIFTS = [_lift("overall", "All customers", 0.004, False, 0.30), _lift("rfm_segment", "Champions", 0.08, True, 0.001),
         _lift("rfm_segment", "Lost", 0.0, False, 0.9)]


def _het(differs: bool) -> list[dict]:
    return [{"method": "rfm_segment", "metric": "conversion", "variant": "<b>new</b>", "q": 9.0, "df": 1,
             "p_value": 0.003 if differs else 0.2, "differs": differs}]


def test_no_claim_without_heterogeneity() -> None:
    out = text.conclusion_markdown(LIFTS[0], LIFTS, _het(False), {"status": "ok"}, [], SETTINGS)
    assert "No segment effect is supported" in out and "Champions" not in out
    assert "made no clear difference to conversion" in out


def test_claim_with_heterogeneity_and_a_corrected_p() -> None:
    out = text.conclusion_markdown(LIFTS[0], LIFTS, _het(True), {"status": "ok"}, [], SETTINGS)
    assert "Champions (RFM segment, <b>new</b>: +8.0 points, 95% CI +7.0 to +9.0, adjusted p 0.001)" in out
    # the page displays every text through inert_markdown, which leaves no HTML element of a name
    from segmentation_lib.describe.format import inert_markdown

    assert "Lost" not in out and "<b>" not in inert_markdown(out)


def test_no_claim_while_the_sample_ratio_fails() -> None:
    out = text.conclusion_markdown(LIFTS[0], LIFTS, _het(True), {"status": "fail"}, [], SETTINGS)
    assert out.startswith("**Do not act on this readout yet:**") and "Champions" not in out


def test_srm_and_heterogeneity_sentences() -> None:
    rows = [{"method": "overall", "segment": "All customers", "p_value": 0.0004, "status": "fail"},
            {"method": "rfm_segment", "segment": "A", "p_value": 0.005, "status": "warn"}]
    out = text.srm_sentence(rows, SETTINGS)
    assert "chi-square p < 0.001 overall, status **fail**; among 1 segment(s) 0 fail and 1 warn" in out
    assert "Cochran's Q = 9.0 on 1 df, p = 0.003: the effect differs" in text.heterogeneity_sentence(_het(True)[0])
