"""The report's words for a usage-only run (``data.path`` null: no purchases, only a product-usage event log).

A usage-only run reads the event log's sessions where a run reads orders (one row per session, its number
of events where an order's amount would be: ``features.usage.session_log``). Every text function of
``describe/`` then says the right numbers with purchase words; :func:`usage_wording` turns those words
into usage ones (an order is a session, spend and revenue are events, buying is being active, a
purchase is activity), and the glossary's purchase sentences into their usage versions
(:data:`USAGE_GLOSSARY`). The pages apply it to every text, table, caption and chart label of a
usage-only run (``report.pages``), the run index to its own texts.

>>> usage_wording("Champions brings the most revenue: 79% of the total.")
'Champions brings the most events: 79% of the total.'
>>> usage_wording("The median customer placed 65 order(s) and spent 384 in total.")
'The median customer had 65 session(s) and logged 384 events in total.'
"""
from __future__ import annotations

import re

from segmentation_lib.describe.glossary import GLOSSARY

#: the glossary sentences that speak of purchases, in their usage version (the same terms)
USAGE_GLOSSARY: dict[str, str] = {
    "recency": "How many days have passed between a customer's last activity (any event) and the analysis date; "
               "fewer is better.",
    "frequency": "How often a customer used the product: the measure of rfm.usage.frequency (active days, the "
                 "days with at least one event, by default).",
    "monetary": "How much a customer used the product: the measure of rfm.usage.monetary (the number of events "
                "by default).",
    "cohort": "The customers whose first activity fell in the same month.",
    "retention": "The share of a cohort that is active again a given number of months after its first activity.",
    "value / engagement": "Four groups made from one value measure (events) and one engagement measure (active days), "
                          "each cut into high and low.",
    "behavioural segment": "A group of customers found by clustering on how they use the product, rather than by "
                           "fixed score boundaries.",
    "variance explained": "How much of the differences in later use (events in the holdout) between customers the "
                          "segments account for (0% none, 100% all).",
}

#: (pattern, replacement) in the order applied; whole words, any case (a capital first letter is kept)
USAGE_PHRASES: tuple[tuple[str, str], ...] = (
    (r"transaction log", "event log"),
    (r"transaction (?:lines|rows)", "session rows"),
    (r"transaction (?:line|row)", "session row"),
    (r"transactions", "sessions"),
    (r"transaction", "session"),
    (r"placed", "had"),
    (r"ordered", "were active"),
    (r"(?<!\()'total_spend'", "events ('total_spend')"),
    (r"net revenue", "event count"),
    (r"total revenue", "event count"),
    (r"gross sales", "all events"),
    (r"revenue share", "event share"),
    (r"revenue", "events"),
    (r"net spend", "events"),
    (r"spent (less|more) than", r"logged \1 than"),
    (r"spent (\d[\d,.]*)", r"logged \1 events"),
    (r"spent", "logged"),
    (r"spending", "usage"),
    (r"spend", "events"),
    (r"average order value", "average events per session"),
    (r"order value", "events per session"),
    (r"order\(s\)", "session(s)"),
    (r"orders", "sessions"),
    (r"an order", "a session"),
    (r"per order", "per session"),
    (r"between orders", "between sessions"),
    (r"first[- ]purchase", "first activity"),
    (r"last purchase", "last activity"),
    (r"second purchase", "second session"),
    (r"past purchases", "past use"),
    (r"repeat purchases", "repeat sessions"),
    (r"purchase rate", "activity rate"),
    (r"no purchases", "no activity"),
    (r"with purchases", "with activity"),
    (r"a purchase", "activity"),
    (r"purchasers", "active customers"),
    (r"purchases", "sessions"),
    (r"purchase", "activity"),
    (r"purchasing", "using the product"),
    (r"bought only once", "had only one session"),
    (r"bought once", "had one session"),
    (r"a customer bought", "a customer was active"),
    (r"bought", "were active"),
    (r"buys again", "is active again"),
    (r"buy again", "are active again"),
    (r"buying again", "active again"),
    (r"one-time buyers", "single-session users"),
    (r"repeat buyers", "returning users"),
    (r"buyers", "users"),
    (r"buys", "uses the product"),
    (r"buying", "using the product"),
    (r"buy", "use the product"),
    (r"money", "activity"),
    (r"sales", "activity"),
)

_COMPILED = tuple((re.compile(rf"(?<!\w){p}(?!\w)", re.IGNORECASE), r) for p, r in USAGE_PHRASES)


def _keep_case(pattern: re.Pattern[str], repl: str, text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        out = m.expand(repl)
        return out[:1].upper() + out[1:] if m.group(0)[:1].isupper() else out

    return pattern.sub(sub, text)


def usage_wording(text: str) -> str:
    """``text`` in the words of a usage-only run: the glossary's purchase sentences replaced by
    :data:`USAGE_GLOSSARY`, then every phrase of :data:`USAGE_PHRASES` (first letter's case kept).

    >>> usage_wording("Segments discovered from how customers buy. Frequency: " + GLOSSARY["frequency"])[:54]
    'Segments discovered from how customers use the product'
    >>> usage_wording("In order of size")  # 'order' alone is not an order
    'In order of size'
    """
    if not text:
        return text
    for term, sentence in USAGE_GLOSSARY.items():
        text = text.replace(GLOSSARY[term], sentence)
    for pattern, repl in _COMPILED:
        text = _keep_case(pattern, repl, text)
    return text
