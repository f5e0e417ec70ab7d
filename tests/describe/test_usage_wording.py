"""describe.usage_wording: purchase words turned into usage words, with known answers."""
from __future__ import annotations

import pytest

from segmentation_lib.describe.glossary import GLOSSARY
from segmentation_lib.describe.usage_wording import USAGE_GLOSSARY, usage_wording


@pytest.mark.parametrize("text, expected", [
    ("2,000 customers placed 191,427 orders (191,427 transaction lines).",
     "2,000 customers had 191,427 sessions (191,427 session rows)."),
    ("Net revenue was 1,609.", "Event count was 1,609."),
    ("Half of the customers spent less than 384, while the top 10% spent more than 3,052.",
     "Half of the customers logged less than 384, while the top 10% logged more than 3,052."),
    ("0% of customers bought once.", "0% of customers had one session."),
    ("Each cell the share of them buying again; 40% of a cohort buys again.",
     "Each cell the share of them active again; 40% of a cohort is active again."),
    ("Customers whose first purchase fell in May; purchase rate 12%.",
     "Customers whose first activity fell in May; activity rate 12%."),
    ("Segment sizes and revenue", "Segment sizes and events"),
    ("Transactions and spend per segment", "Sessions and events per segment"),
    ("In order of size; the page order", "In order of size; the page order"),
    ("Big spenders hold 30%", "Big spenders hold 30%"),  # part of a name: not a word of its own
])
def test_known_sentences(text, expected):
    assert usage_wording(text) == expected


def test_glossary_sentences_have_usage_versions_of_the_same_terms():
    assert set(USAGE_GLOSSARY) <= set(GLOSSARY)
    text = " ".join(GLOSSARY[t] for t in ("recency", "frequency", "monetary", "cohort", "retention"))
    worded = usage_wording(text)
    assert "rfm.usage.frequency" in worded and "rfm.usage.monetary" in worded
    assert not any(w in worded for w in ("purchase", "spend", "orders", "buys"))


def test_wording_twice_is_wording_once():
    text = ("The top 20% of customers by spend bring in 76% of net revenue; sizes and 'total_spend' reported; "
            "the median customer placed 65 order(s) and spent 384 in total.")
    assert usage_wording(usage_wording(text)) == usage_wording(text)
