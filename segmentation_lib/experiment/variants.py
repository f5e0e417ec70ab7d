"""More than two variants: the best variant per segment and a recommendation table a campaign tool can use.

A variant is recommended for a segment only when its lift over the control on the primary metric
is positive and significant after the correction for all variants x segments of the method (the
readout's ``p_adjusted``: Holm for pre-registered methods, Benjamini-Hochberg for exploratory
ones). Per-segment recommendations are made only where Cochran's Q says the effect differs
across the method's segments; otherwise every segment gets the overall recommendation, because
a segment-specific choice would rest on noise.

>>> lifts = pl.DataFrame({"method": ["overall", "m", "m"], "segment": ["All customers", "a", "b"],
...     "metric": ["conversion"] * 3, "variant": ["B"] * 3, "abs_lift": [0.01, 0.05, 0.0],
...     "abs_low": [0.0, 0.02, -0.02], "abs_high": [0.02, 0.08, 0.02], "p_adjusted": [0.04, 0.001, 0.9],
...     "significant": [True, True, False], "n_control": [200, 100, 100], "n_variant": [200, 100, 100]})
>>> het = pl.DataFrame({"method": ["m"], "metric": ["conversion"], "variant": ["B"], "differs": [True]})
>>> recommendations(lifts, het, "conversion", "A")["recommended"].to_list()
['B', 'B', 'A']
"""
from __future__ import annotations

import polars as pl

from segmentation_lib.experiment.readout import OVERALL

COLUMNS = ("method", "segment", "recommended", "abs_lift", "abs_low", "abs_high", "p_adjusted", "n", "basis")


def best_variants(lifts: pl.DataFrame, metric: str) -> pl.DataFrame:
    """Per (method, segment): the variant with the largest significant positive lift, or none (null)."""
    rows = lifts.filter(pl.col("metric") == metric)
    winners = (rows.filter(pl.col("significant") & (pl.col("abs_lift") > 0))
               .sort(["method", "segment", "abs_lift", "variant"], descending=[False, False, True, False])
               .unique(["method", "segment"], keep="first", maintain_order=True))
    keys = rows.group_by(["method", "segment"], maintain_order=True).agg(
        (pl.col("n_control").first() + pl.col("n_variant").sum()).alias("n"))
    return keys.join(winners.select("method", "segment", pl.col("variant").alias("best"), "abs_lift", "abs_low",
                                    "abs_high", "p_adjusted"), on=["method", "segment"], how="left")


def recommendations(lifts: pl.DataFrame, heterogeneity: pl.DataFrame, metric: str, control: str) -> pl.DataFrame:
    """The recommendation table: one row per method and segment (and the overall row first).

    ``basis`` says why: ``segment`` (a significant lift in this segment, and the effect differs across
    the segments), ``overall`` (the effect is not shown to differ, so the overall result applies), or
    ``no winner`` (the control stays: no variant beats it significantly).
    """
    best = best_variants(lifts, metric)
    overall = best.filter(pl.col("method") == OVERALL).row(0, named=True) if best.height else {}
    over_pick = overall.get("best") or control
    differs = {r["method"] for r in heterogeneity.filter((pl.col("metric") == metric) & pl.col("differs")).to_dicts()}
    out = []
    for r in best.to_dicts():
        if r["method"] == OVERALL:
            pick, basis = over_pick, "overall" if r["best"] else "no winner"
        elif r["method"] in differs:
            pick, basis = (r["best"], "segment") if r["best"] else (control, "no winner")
        else:
            pick, basis = over_pick, "overall"
        keep = basis == "segment" or r["method"] == OVERALL
        out.append({"method": r["method"], "segment": r["segment"], "recommended": pick,
                    "abs_lift": r["abs_lift"] if keep else None, "abs_low": r["abs_low"] if keep else None,
                    "abs_high": r["abs_high"] if keep else None, "p_adjusted": r["p_adjusted"] if keep else None,
                    "n": r["n"], "basis": basis})
    schema = {"method": pl.String, "segment": pl.String, "recommended": pl.String, "abs_lift": pl.Float64,
              "abs_low": pl.Float64, "abs_high": pl.Float64, "p_adjusted": pl.Float64, "n": pl.Int64, "basis": pl.String}
    table = pl.DataFrame(out, schema=schema)
    return table.sort(pl.col("method") != OVERALL, "method", "segment", maintain_order=True)
