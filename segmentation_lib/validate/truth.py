"""Agreement with a known truth (the demo's planted archetypes): ARI, NMI and the confusion table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from segmentation_lib.errors import DataError
from segmentation_lib.validate.common import check_columns



# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------
@dataclass
class TruthResult:
    """ARI / NMI against known archetypes and a long confusion table (segment, truth, count,
    share_of_segment, share_of_truth)."""

    ari: float
    nmi: float
    confusion: pl.DataFrame
    summary: dict[str, Any]


def ground_truth_agreement(
    assign: pl.DataFrame | pl.LazyFrame,
    truth: pl.DataFrame | pl.LazyFrame,
    id_col: str = "customer_id",
    segment_col: str = "segment",
    truth_col: str = "archetype",
) -> TruthResult:
    """Agreement of a segmentation with planted archetypes (demo data), on the customers in both.

    >>> a = pl.DataFrame({"customer_id": ["1", "2", "3", "4"], "segment": [0, 0, 1, 1]})
    >>> t = pl.DataFrame({"customer_id": ["1", "2", "3", "4"], "archetype": ["x", "x", "y", "y"]})
    >>> ground_truth_agreement(a, t).ari
    1.0
    """
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    a = assign.lazy()
    t = truth.lazy()
    check_columns(a.collect_schema(), [id_col, segment_col], "ground_truth_agreement (assignments)")
    check_columns(t.collect_schema(), [id_col, truth_col], "ground_truth_agreement (truth)")
    a = a.select(pl.col(id_col).cast(pl.String), pl.col(segment_col).cast(pl.String).alias("segment")).collect()
    t = t.select(pl.col(id_col).cast(pl.String), pl.col(truth_col).cast(pl.String).alias("truth")).collect()
    j = a.join(t, on=id_col, how="inner")
    if j.height == 0:
        raise DataError(
            f"No customer id of the segment assignments is in the truth table (column '{id_col}', "
            f"{t.height:,} rows; ground-truth agreement needs both). The usual cause is a copied demo config whose "
            "data.truth still points to the demo truth file while data.path points to other data. "
            "Fix: set data.truth: null (it is only for the demo data) or point it at a truth table for this data."
        )
    seg_codes = j["segment"].fill_null("(null)").cast(pl.Categorical).to_physical().to_numpy()
    truth_codes = j["truth"].fill_null("(null)").cast(pl.Categorical).to_physical().to_numpy()
    ari = float(adjusted_rand_score(truth_codes, seg_codes))
    nmi = float(normalized_mutual_info_score(truth_codes, seg_codes))
    confusion = (
        j.group_by("segment", "truth").agg(pl.len().cast(pl.Int64).alias("count"))
        .with_columns(
            (pl.col("count") / pl.col("count").sum().over("segment")).alias("share_of_segment"),
            (pl.col("count") / pl.col("count").sum().over("truth")).alias("share_of_truth"),
        )
        .sort("segment", "truth")
    )
    summary = {
        "ari": ari,
        "nmi": nmi,
        "matched": j.height,
        "unmatched_assignments": a.height - j.height,
        "unmatched_truth": t.height - j.height,
        "purity": float(confusion.group_by("segment").agg(pl.col("count").max())["count"].sum() / j.height),
    }
    return TruthResult(ari, nmi, confusion, summary)
