"""Simpson's paradox check: the pooled effect against the effect stratified by segment or by stratum.

The pooled lift compares everyone in the treatment with everyone in the control. When the share of
each arm differs between strata (a traffic split changed mid-test, a segment exposed more often in
one arm) and the strata differ in their baseline, the pooled lift mixes the strata in different
proportions in the two arms and can even change sign. The stratified lift is the size-weighted mean
of the per-stratum lifts (weights = the stratum's share of all exposed customers, variance
sum of w^2 se^2); for conversion the Mantel-Haenszel pooled odds ratio and the Breslow-Day test
(statsmodels ``StratifiedTable``) are given beside it.

The check flags when the pooled and stratified lifts have opposite signs, or the pooled lift lies
outside the stratified interval, and names the stratum whose share differs most between the arms.

>>> ramp = ramp_up_example()
>>> result = simpson_check(ramp, "stratum", control="control", treatment="treatment")
>>> result["flagged"], result["pooled"]["abs_lift"] < 0 < result["stratified"]["abs_lift"]
(True, True)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.contingency_tables import StratifiedTable

from segmentation_lib.experiment.readout import METRICS, arm_statistics, compare_arms


def ramp_up_example() -> pl.DataFrame:
    """The two-day ramp-up of the issue as one row per exposed customer.

    Day 1: 99,000 control (2,000 conversions, 2.02%) and 1,000 treatment (23, 2.30%); day 2: 49,500
    each (495, 1.00% and 594, 1.20%). Pooled: control 1.68%, treatment 1.22%.
    """
    cells = [("day 1", "control", 99_000, 2_000), ("day 1", "treatment", 1_000, 23),
             ("day 2", "control", 49_500, 495), ("day 2", "treatment", 49_500, 594)]
    strata, variants, conv = [], [], []
    for day, variant, n, c in cells:
        strata += [day] * n
        variants += [variant] * n
        conv.append(np.r_[np.ones(c), np.zeros(n - c)])
    return pl.DataFrame({"stratum": strata, "variant": variants, "converted": np.concatenate(conv)})


def simpson_check(frame: pl.DataFrame | pl.LazyFrame, by: str, control: str, treatment: str, metric: str = "conversion",
                  alpha: float = 0.05, sums: pl.DataFrame | None = None) -> dict[str, Any]:
    """Pooled vs ``by``-stratified lift of ``treatment`` over ``control`` on ``metric``; flagged when they disagree.

    Returns ``by, metric, variant, pooled {abs_lift, abs_low, abs_high, mean_control, mean_variant},
    stratified {abs_lift, abs_low, abs_high}, strata`` (per stratum: n per arm, each arm's share of
    its arm, means and lift), ``sign_flip``, ``pooled_outside``, ``flagged``, ``mix_shift`` (the
    stratum whose share differs most between the arms, its control mean and the others'), and
    ``mantel_haenszel`` (conversion only). ``sums`` may pass ``arm_statistics(frame, [by])``.
    """
    sums = arm_statistics(frame, [by], covariate=None) if sums is None else sums
    over = {r["variant"]: r for r in sums.filter(pl.col("method") == "overall").to_dicts()}
    pooled = compare_arms(over[treatment], over[control], metric, alpha)
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    total = float(over[treatment]["n"] + over[control]["n"])
    for (segment,), grp in sums.filter(pl.col("method") == by).group_by(["segment"], maintain_order=True):
        arms = {r["variant"]: r for r in grp.to_dicts()}
        if treatment not in arms or control not in arms:
            continue
        t, c = arms[treatment], arms[control]
        cmp = compare_arms(t, c, metric, alpha)
        se = (cmp["abs_high"] - cmp["abs_low"]) / (2 * z)
        rows.append({"stratum": segment, "n_control": int(c["n"]), "n_variant": int(t["n"]),
                     "share_of_control": c["n"] / over[control]["n"], "share_of_variant": t["n"] / over[treatment]["n"],
                     "variant_share": t["n"] / (t["n"] + c["n"]), "weight": (t["n"] + c["n"]) / total,
                     "mean_control": cmp["mean_control"], "mean_variant": cmp["mean_variant"],
                     "abs_lift": cmp["abs_lift"], "se": se,
                     "_c": (t.get(f"s_{METRICS[metric][0]}"), c.get(f"s_{METRICS[metric][0]}"))})
    w = np.array([r["weight"] for r in rows])
    w = w / w.sum() if len(rows) else w
    lift = np.array([r["abs_lift"] for r in rows])
    se = np.array([r["se"] for r in rows])
    est = float(np.sum(w * lift))
    se_s = float(math.sqrt(np.nansum(w ** 2 * se ** 2)))
    strat = {"abs_lift": est, "abs_low": est - z * se_s, "abs_high": est + z * se_s}
    sign_flip = bool(pooled["abs_lift"] * est < 0)
    outside = bool(not (strat["abs_low"] <= pooled["abs_lift"] <= strat["abs_high"]))
    mh = None
    if METRICS[metric][2] == "proportion" and len(rows) >= 2:
        tables = np.array([[[r["_c"][0], r["n_variant"] - r["_c"][0]], [r["_c"][1], r["n_control"] - r["_c"][1]]]
                           for r in rows], dtype=float).transpose(1, 2, 0)
        if (tables.sum(axis=(0, 1)) > 0).all() and (tables[:, 0, :].sum(axis=0) > 0).all():
            st = StratifiedTable(tables + 0.0)
            mh = {"odds_ratio": float(st.oddsratio_pooled), "p_value": float(st.test_null_odds().pvalue),
                  "breslow_day_p": float(st.test_equal_odds().pvalue)}
    mix = None
    if rows:
        gap = [abs(r["share_of_control"] - r["share_of_variant"]) for r in rows]
        k = int(np.argmax(gap))
        r = rows[k]
        others = [x for i, x in enumerate(rows) if i != k]
        n_o = sum(x["n_control"] for x in others)
        rest = sum(x["mean_control"] * x["n_control"] for x in others) / n_o if n_o else float("nan")
        mix = {"stratum": r["stratum"], "share_of_control": r["share_of_control"], "share_of_variant": r["share_of_variant"],
               "variant_share_there": r["variant_share"], "mean_control_there": r["mean_control"],
               "mean_control_elsewhere": rest,
               "variant_share_elsewhere": (sum(x["n_variant"] for x in others) / sum(x["n_variant"] + x["n_control"] for x in others))
               if others else float("nan")}
    for r in rows:
        r.pop("_c")
    return {"by": by, "metric": metric, "variant": treatment, "control": control,
            "pooled": {k: pooled[k] for k in ("abs_lift", "abs_low", "abs_high", "mean_control", "mean_variant")},
            "stratified": strat, "strata": rows, "sign_flip": sign_flip, "pooled_outside": outside,
            "flagged": sign_flip or outside, "mix_shift": mix, "mantel_haenszel": mh}
