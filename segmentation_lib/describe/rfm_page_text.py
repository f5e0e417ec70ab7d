"""Notes of the RFM page (02) that the other RFM text functions do not cover.

>>> score_notes_markdown({"monetary": "only 2 distinct values: scores 1 and 5 are used."})
'**Note on monetary:** only 2 distinct values: scores 1 and 5 are used.'
"""
from __future__ import annotations

from typing import Any, Mapping


def score_notes_markdown(degenerate: Mapping[str, str] | None) -> str:
    """One note per column with fewer distinct values than score levels (``RFMScorer.degenerate_``); "" when none."""
    return "\n\n".join(f"**Note on {column}:** {message}" for column, message in (degenerate or {}).items())


def _per_measure(value: Any) -> dict[str, Any]:
    """A cut option of the ``rfm`` section per measure (one list for all three, or a mapping)."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if v is not None}
    return {dim: value for dim in MEASURES}


MEASURES = ("recency", "frequency", "monetary")


def boundaries_markdown(rfm: Mapping[str, Any]) -> str:
    """How this run's score boundaries were set, from the ``rfm`` configuration section (frozen edges,
    value thresholds, configured percentiles or equal-count quantiles), then how a boundary reads.

    >>> boundaries_markdown({"frozen_edges": "runs/jan/rfm_edges.json"})[:90]
    'The score boundaries are **not learned from this data**: they are the frozen edges in `rfm'
    >>> boundaries_markdown({"thresholds": {"recency": [30, 90]}, "percentiles": None})[:120]
    'Recency scores use **fixed thresholds** from the configuration (30, 90); frequency and monetary scores use boundaries **'
    """
    tail = ("Customers with identical values always get the same score. A value exactly on a boundary belongs to the "
            "lower range; '-' marks a score no customer can get.")
    frozen = rfm.get("frozen_edges")
    if frozen:
        name = str(frozen).replace("\\", "/").rsplit("/", 1)[-1]
        return (f"The score boundaries are **not learned from this data**: they are the frozen edges in `{name}` "
                "(rfm.frozen_edges), learned on an earlier run, so scores compare across runs. " + tail)
    thresholds, cuts = _per_measure(rfm.get("thresholds")), _per_measure(rfm.get("percentiles"))

    def method(dim: str) -> str:
        if dim in thresholds:
            return f"**fixed thresholds** from the configuration ({', '.join(f'{float(x):g}' for x in thresholds[dim])})"
        if dim in cuts:
            return ("boundaries **learned from this data** at the configured percentiles ("
                    + ", ".join(f"{100 * float(x):g}%" for x in cuts[dim]) + ")")
        return "boundaries **learned from this data** (equal-count quantiles)"

    groups: dict[str, list[str]] = {}
    for dim in MEASURES:
        groups.setdefault(method(dim), []).append(dim)
    if len(groups) == 1:
        text = f"All three scores use {next(iter(groups))}."
    else:
        parts = [f"{' and '.join(dims)} scores use {how}" for how, dims in groups.items()]
        text = "; ".join(parts) + "."
        text = text[0].upper() + text[1:]
    return text + " " + tail
