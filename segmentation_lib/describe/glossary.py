"""The one glossary of the report: each term a stakeholder meets, in one sentence; every page picks its terms.

>>> glossary_markdown(["recency", "ARI"]).splitlines()[0]
'**Terms on this page.**'
>>> glossary_markdown(["recency"]).splitlines()[1][:38]
'- **Recency**: How many days have pass'
"""
from __future__ import annotations

from typing import Iterable

from segmentation_lib.errors import ConfigError

#: term -> one sentence for a stakeholder (terms shown in this spelling)
GLOSSARY: dict[str, str] = {
    "analysis date": "The day the report looks back from (as_of); recency and every window are counted up to it.",
    "recency": "How many days have passed between a customer's last purchase and the analysis date; fewer is better.",
    "frequency": "How many separate orders a customer placed.",
    "monetary": "How much a customer spent in total, net of returns.",
    "RFM score": "A grade from 1 up to the number of score levels (rfm.bins) on each of recency, frequency and monetary value, the highest being the best.",
    "RFM code": "The three scores written together (for example 545: recency 5, frequency 4, monetary 5).",
    "RFM segment": "A named group of RFM codes (such as Champions or At risk) with a suggested action.",
    "cohort": "The customers whose first purchase fell in the same month.",
    "retention": "The share of a cohort that buys again a given number of months after its first purchase.",
    "value / engagement": "Four groups made from one value measure (spend) and one engagement measure (orders), each cut into high and low.",
    "rule-based tier": "A group from the business rules in the configuration; the first rule a customer matches wins.",
    "behavioural segment": "A group of customers found by clustering on how they buy, rather than by fixed score boundaries.",
    "cluster": "The statistical name for a behavioural segment: customers who are closer to each other than to the rest.",
    "surrogate rules": "Simple if-then rules that reproduce the behavioural segments, so a CRM or warehouse can assign them.",
    "silhouette": "How clearly customers sit in their own segment rather than the next one, from -1 (wrong) to 1 (clear-cut); above 0.25 is usable.",
    "ARI": "Adjusted Rand index: how much two segmentations of the same customers agree, 0 for chance and 1 for identical.",
    "Jaccard stability": "The share of a segment's customers that end up together again when the segmentation is refitted on other samples.",
    "holdout": "The most recent period, hidden from the segmentation, used to check what customers really did next.",
    "cutoff": "The date that splits the history used to build segments from the holdout period used to check them.",
    "variance explained": "How much of the differences in later spending between customers the segments account for (0% none, 100% all).",
    "migration": "Customers moving from one segment to another between the cutoff and the analysis date.",
    "P(alive)": "The model's probability that a customer still buys from you rather than having quietly left.",
    "CLV": "Customer lifetime value: the spend a customer is expected to bring over the coming months, discounted.",
    "churn risk": "How likely a customer is to have stopped buying, from the probability that they are still active.",
    "calibration": "How close the model's predictions for the holdout period came to what customers actually did.",
    "reference run": "The earlier report this run is compared with, so segment sizes and moves are measured against it.",
    "drift": "A change in how customers' features are spread compared with the reference run, which can make old segments outdated.",
}

#: the terms each report page uses (page name as in ``report.pages.PAGES``)
PAGE_TERMS: dict[str, tuple[str, ...]] = {
    "exploration": ("analysis date", "recency", "frequency", "monetary", "cohort", "retention"),
    "rfm": ("recency", "frequency", "monetary", "RFM score", "RFM code", "RFM segment", "value / engagement",
            "rule-based tier"),
    "clustering": ("behavioural segment", "cluster", "RFM segment", "surrogate rules", "silhouette"),
    "validation": ("silhouette", "ARI", "Jaccard stability", "holdout", "cutoff", "variance explained", "migration"),
    "value": ("P(alive)", "CLV", "churn risk", "holdout", "calibration", "RFM segment", "behavioural segment"),
    "since_last_run": ("reference run", "drift", "migration", "retention", "RFM segment", "behavioural segment"),
}


def glossary_markdown(terms: Iterable[str]) -> str:
    """"Terms on this page": one bullet per term with its sentence from :data:`GLOSSARY` (ConfigError for an unknown term)."""
    terms = list(dict.fromkeys(terms))
    unknown = [t for t in terms if t not in GLOSSARY]
    if unknown:
        raise ConfigError(f"glossary: no entry for {unknown}. Fix: use one of {sorted(GLOSSARY)} or add the term to "
                          "describe/glossary.py GLOSSARY.")
    if not terms:
        return ""
    return "\n".join(["**Terms on this page.**", *(f"- **{t[0].upper() + t[1:]}**: {GLOSSARY[t]}" for t in terms)])
