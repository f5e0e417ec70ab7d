"""The wording of the experiment page: every sentence with a number, written from the readout's tables.

The conclusion never claims a segment effect that the tests do not support: a segment is named as
different only when Cochran's Q says the effect differs across the method's segments *and* the
segment's p-value, adjusted for the number of segments and variants, is below alpha. User-supplied
names (variants, segments) are Markdown-escaped; the page makes any HTML in them inert.

>>> lift = {"metric": "conversion", "variant": "B", "mean_control": 0.10, "mean_variant": 0.12, "abs_lift": 0.02,
...         "abs_low": 0.01, "abs_high": 0.03, "rel_lift": 0.2, "rel_low": 0.1, "rel_high": 0.3, "p_value": 0.001,
...         "p_adjusted": 0.001, "significant": True, "n_control": 5000, "n_variant": 5000}
>>> lift_sentence(lift, "control")
'B: 12.0% against 10.0% in control, +2.0 points (95% CI +1.0 to +3.0), relative +20% (+10% to +30%); p = 0.001, significant.'
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from segmentation_lib.describe.format import md_literal
from segmentation_lib.formatting import fmt_number

#: how the page names the metrics
METRIC_WORDS = {"conversion": "conversion", "revenue": "revenue per exposed customer",
                "revenue_per_order": "revenue per order"}
#: how the page names the segmentation methods (assignment columns)
METHOD_WORDS = {"overall": "all customers", "rfm_segment": "RFM segment", "value_engagement": "value/engagement cell",
                "tier": "rule tier", "segment_name": "behavioural segment", "value_churn": "predicted value x churn risk",
                "archetype": "planted archetype (demo truth)", "stratum": "stratum"}


def esc(text: Any) -> str:
    """A user-supplied name for a sentence: Markdown punctuation escaped so it shows as typed (the page makes
    any HTML in it inert when it displays the text, ``describe.format.inert_markdown``).

    >>> esc("*VIP*|x")
    '\\\\*VIP\\\\*\\\\|x'
    """
    return md_literal(text)


def method_word(method: str) -> str:
    return METHOD_WORDS.get(method, esc(method))


def _finite(x: Any) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def fmt_level(x: float | None, metric: str) -> str:
    """A metric value: conversion as a percentage, money as whole units with 2 decimals below 100."""
    if not _finite(x):
        return "-"
    return f"{100 * x:.1f}%" if metric == "conversion" else fmt_number(float(x), 2)


def fmt_diff(x: float | None, metric: str) -> str:
    """A signed difference: percentage points for conversion, money otherwise."""
    if not _finite(x):
        return "-"
    return f"{100 * x:+.1f} points" if metric == "conversion" else ("+" if x >= 0 else "-") + fmt_number(abs(float(x)), 2)


def _signed(x: float | None, metric: str) -> str:
    return fmt_diff(x, metric).replace(" points", "")


def _rel(x: float | None) -> str:
    return f"{100 * x:+.0f}%" if _finite(x) else "-"


def fmt_p(p: float | None) -> str:
    """p-values as people read them: 3 decimals, "< 0.001" below."""
    if not _finite(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _p_text(p: float | None) -> str:
    text = fmt_p(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def lift_sentence(row: Mapping[str, Any], control: str) -> str:
    """One comparison in words: both means, the absolute and relative lift with intervals, the (adjusted) p."""
    m = row["metric"]
    adjusted = row.get("correction") not in (None, "none")
    p = row.get("p_adjusted") if adjusted else row.get("p_value")
    verdict = "significant" if row.get("significant") else "not significant"
    return (f"{esc(row['variant'])}: {fmt_level(row['mean_variant'], m)} against {fmt_level(row['mean_control'], m)} in "
            f"{esc(control)}, {fmt_diff(row['abs_lift'], m)} (95% CI {_signed(row['abs_low'], m)} to "
            f"{_signed(row['abs_high'], m)}), relative {_rel(row['rel_lift'])} ({_rel(row['rel_low'])} to "
            f"{_rel(row['rel_high'])}); {'adjusted ' if adjusted else ''}{_p_text(p)}, {verdict}.")


def exposure_sentence(report: Mapping[str, Any]) -> str:
    """Who was exposed, and every row or customer left out."""
    counts = ", ".join(f"{esc(v)} {n:,}" for v, n in report["variants"].items())
    parts = [f"{report['customers']:,} customers were exposed ({counts}) between {report['start'][:10]} and "
             f"{report['end'][:10]}."]
    left = []
    if report.get("rows_without_id_variant_or_time"):
        left.append(f"{report['rows_without_id_variant_or_time']:,} row(s) without a customer id, variant or readable time")
    if report.get("customers_in_several_variants"):
        left.append(f"{report['customers_in_several_variants']:,} customer(s) exposed to more than one variant")
    if left:
        parts.append("Left out: " + "; ".join(left) + ".")
    if report.get("repeat_exposures"):
        parts.append(f"{report['repeat_exposures']:,} repeat exposure(s) of a customer to the same variant were folded "
                     "into the first one.")
    return " ".join(parts)


def srm_sentence(rows: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> str:
    """The sample-ratio-mismatch check overall and how many segments warn or fail."""
    over = next((r for r in rows if r["method"] == "overall"), None)
    if over is None:
        return ""
    split = settings.get("expected_split")
    planned = "equal shares" if split in (None, "equal") else ", ".join(f"{esc(k)} {100 * v:.0f}%" for k, v in split.items())
    head = (f"Sample ratio (planned: {planned}): chi-square p {fmt_p(over['p_value'])} overall, "
            f"status **{over['status']}**")
    seg = [r for r in rows if r["method"] != "overall"]
    fails = [r for r in seg if r["status"] == "fail"]
    warns = [r for r in seg if r["status"] == "warn"]
    tail = f"; among {len(seg)} segment(s) {len(fails)} fail and {len(warns)} warn" if seg else ""
    out = head + tail + f" (warn below p = {settings['srm_warn']}, fail below p = {settings['srm_fail']})."
    if over["status"] == "fail":
        out += (" The variants did not receive the planned shares of customers: assignment or logging is broken "
                "somewhere, and the lifts below should not be trusted until the cause is found.")
    return out


def heterogeneity_sentence(row: Mapping[str, Any]) -> str:
    """Cochran's Q for one method, metric and variant in words."""
    if not _finite(row.get("p_value")):
        return (f"By {method_word(row['method'])}: too few segments large enough to test whether the effect of "
                f"{esc(row['variant'])} differs.")
    verdict = ("the effect differs across segments" if row["differs"]
               else "no evidence that the effect differs across segments")
    return (f"By {method_word(row['method'])}: Cochran's Q = {row['q']:.1f} on {row['df']} df, {_p_text(row['p_value'])}: "
            f"{verdict} ({esc(row['variant'])}, {METRIC_WORDS.get(row['metric'], row['metric'])}).")


def supported_segments(lifts: Sequence[Mapping[str, Any]], heterogeneity: Sequence[Mapping[str, Any]], method: str,
                       metric: str) -> list[Mapping[str, Any]]:
    """The segment rows of ``method`` whose effect the tests support: Q says they differ and adjusted p < alpha."""
    differs = {(h["variant"]) for h in heterogeneity if h["method"] == method and h["metric"] == metric and h["differs"]}
    return [r for r in lifts if r["method"] == method and r["metric"] == metric and r["variant"] in differs
            and r["significant"] and not r.get("small")]


def cuped_sentence(row: Mapping[str, Any]) -> str:
    """Raw and CUPED interval widths of one comparison (CUPED with pre-period spend)."""
    if not _finite(row.get("cuped_lift")) or not _finite(row.get("abs_high")):
        return ""
    m = row["metric"]
    raw_w, cu_w = row["abs_high"] - row["abs_low"], row["cuped_high"] - row["cuped_low"]
    change = (1 - cu_w / raw_w) if raw_w > 0 else 0.0
    effect = "narrows" if change > 0.005 else "does not narrow"
    return (f"With CUPED (pre-period spend as covariate) the {METRIC_WORDS.get(m, m)} lift of {esc(row['variant'])} is "
            f"{fmt_diff(row['cuped_lift'], m)} (95% CI {_signed(row['cuped_low'], m)} to {_signed(row['cuped_high'], m)}); "
            f"the adjustment {effect} the interval ({abs(100 * change):.0f}% {'narrower' if change > 0 else 'wider'} "
            "than the raw one).")


def simpson_sentence(result: Mapping[str, Any]) -> str:
    """The Simpson's paradox check in words, naming the mix shift that causes a flag."""
    m = result["metric"]
    by = method_word(result["by"])
    pooled, strat = result["pooled"], result["stratified"]
    head = (f"Pooled, {esc(result['variant'])} vs {esc(result['control'])} is {fmt_diff(pooled['abs_lift'], m)}; "
            f"stratified by {by} (size-weighted) it is {fmt_diff(strat['abs_lift'], m)} "
            f"(95% CI {_signed(strat['abs_low'], m)} to {_signed(strat['abs_high'], m)}).")
    if not result["flagged"]:
        return head + " The two agree: no sign of Simpson's paradox."
    why = "the signs differ" if result["sign_flip"] else "the pooled estimate lies outside the stratified interval"
    mix = result.get("mix_shift") or {}
    words = ""
    if mix:
        words = (f" Cause: the mix differs between the arms. {esc(mix['stratum'])} holds "
                 f"{100 * mix['share_of_control']:.0f}% of {esc(result['control'])} but {100 * mix['share_of_variant']:.0f}% "
                 f"of {esc(result['variant'])} ({esc(result['variant'])} got {100 * mix['variant_share_there']:.0f}% of the "
                 f"customers there against {100 * mix['variant_share_elsewhere']:.0f}% elsewhere), and its baseline "
                 f"({esc(result['control'])}) is {fmt_level(mix['mean_control_there'], m)} against "
                 f"{fmt_level(mix['mean_control_elsewhere'], m)} elsewhere. The pooled comparison therefore sets customers "
                 "of different baselines against each other; read the stratified estimate.")
    return f"**Simpson's paradox flagged** ({why}). " + head + words


def conclusion_markdown(overall: Mapping[str, Any], lifts: Sequence[Mapping[str, Any]],
                        heterogeneity: Sequence[Mapping[str, Any]], srm_overall: Mapping[str, Any] | None,
                        simpson: Sequence[Mapping[str, Any]], settings: Mapping[str, Any]) -> str:
    """The plain-language conclusion: overall result, supported segment effects only, then the cautions.

    ``overall`` is the overall lift row of the primary metric and (first) treatment variant.
    """
    metric, control = overall["metric"], settings["control"]
    words = METRIC_WORDS.get(metric, metric)
    treatments = [v for v in settings["variants"] if v != control]
    parts = []
    if srm_overall and srm_overall.get("status") == "fail":
        parts.append("**Do not act on this readout yet:** the sample ratio check failed, so the groups are not "
                     "comparable as planned.")
    over_rows = [r for r in lifts if r["method"] == "overall" and r["metric"] == metric]
    for r in over_rows:
        if r["significant"]:
            direction = "raised" if r["abs_lift"] > 0 else "lowered"
            parts.append(f"Overall, {esc(r['variant'])} {direction} {words} by {fmt_diff(abs(r['abs_lift']), metric).lstrip('+')} "
                         f"({fmt_level(r['mean_control'], metric)} to {fmt_level(r['mean_variant'], metric)}; "
                         f"95% CI {_signed(r['abs_low'], metric)} to {_signed(r['abs_high'], metric)}).")
        else:
            parts.append(f"Overall, {esc(r['variant'])} made no clear difference to {words} against {esc(control)} "
                         f"({fmt_diff(r['abs_lift'], metric)}, 95% CI {_signed(r['abs_low'], metric)} to "
                         f"{_signed(r['abs_high'], metric)}).")
    claims = []
    srm_failed = bool(srm_overall and srm_overall.get("status") == "fail")
    for method in ([] if srm_failed else settings["methods"]):
        for r in supported_segments(lifts, heterogeneity, method, metric):
            claims.append(f"{esc(r['segment'])} ({method_word(method)}, {esc(r['variant'])}: "
                          f"{fmt_diff(r['abs_lift'], metric)}, 95% CI {_signed(r['abs_low'], metric)} to "
                          f"{_signed(r['abs_high'], metric)}, adjusted p {fmt_p(r['p_adjusted'])})")
    if srm_failed:
        parts.append("No segment effect is claimed while the sample ratio check fails: the groups of each segment "
                     "are not comparable as planned.")
    elif claims:
        parts.append("The effect differs by segment (Cochran's Q) and, after correcting for the number of segments "
                     "and variants read, these segments respond differently: " + "; ".join(claims) + ".")
    else:
        parts.append("No segment effect is supported: either the effect is not shown to differ across segments "
                     "(Cochran's Q) or no segment's lift stays significant after the correction for the number of "
                     "segments read. Treat any segment that looks different in the chart as noise until a new test "
                     "confirms it.")
    flagged = [s for s in simpson if s["flagged"]]
    if flagged:
        s = flagged[0]
        parts.append(f"Caution: the pooled result is misleading here (Simpson's paradox by {method_word(s['by'])}); "
                     f"the stratified estimate is {fmt_diff(s['stratified']['abs_lift'], s['metric'])}.")
    parts.append(f"Segments were taken from data before the experiment started; {len(settings['pre_registered'])} "
                 f"pre-registered method(s) corrected with Holm, {len(settings['exploratory'])} exploratory one(s) with "
                 "Benjamini-Hochberg." + (f" Variants compared with {esc(control)}: "
                                           f"{', '.join(esc(t) for t in treatments)}." if len(treatments) > 1 else ""))
    return "\n\n".join(parts)
