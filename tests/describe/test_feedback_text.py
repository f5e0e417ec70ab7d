"""The "What customers say" wording (describe/feedback_text.py): exact tables and sentences from tiny tables."""
from __future__ import annotations

import polars as pl

from segmentation_lib.describe import feedback_text as ft
from segmentation_lib.validate.feedback import feedback_by_segment


def _summary(min_responses: int = 3):
    fb = pl.DataFrame({"customer_id": [f"c{i}" for i in range(14)],
                       "nps": [10, 9, 8, 7, 6, 0, 10, 10, 5, 9, 10, 10, None, None],
                       "tickets": [1, 0, 0, 2, 0, 0, 1, 0, 0, 1, 3, 0, 0, 1],
                       "sentiment": ["positive"] * 6 + ["negative"] * 4 + ["positive", None, None, None]}, strict=False)
    fb = fb.with_columns(pl.col("nps", "tickets").cast(pl.Float64))
    seg = pl.DataFrame({"customer_id": [f"c{i}" for i in range(14)], "segment": ["Loyal"] * 10 + ["Lost"] * 4})
    return feedback_by_segment(fb, seg, "segment", min_responses=min_responses)


def test_feedback_table_rows_hand_computed() -> None:
    table, formats = ft.feedback_table(_summary())
    assert table.columns == ["segment", "customers", "NPS answers", "NPS answered", "NPS (95% CI)",
                             "tickets per customer (95% CI)", "note"]
    assert formats == {"customers": "int", "NPS answers": "int", "NPS answered": "pct"}
    rows = table.rows()
    # Loyal: NPS 20 (-34 to +74) as in the validate test; 5 tickets over 10 customers: Garwood 1.6235-11.6683 / 10
    assert rows[0] == ("Loyal", 10, 10, 1.0, "+20 (-34 to +74)", "0.50 (0.16 to 1.17)", "")
    # Lost: 2 answers, both 10: NPS +100; 4 tickets over 4 customers; too few NPS answers -> the flag
    assert rows[1] == ("Lost", 4, 2, 0.5, "+100 (+100 to +100)", "1.00 (0.27 to 2.56)",
                       "fewer than 3 NPS answers: read with care")


def test_sentiment_table_and_labels() -> None:
    table, formats = ft.sentiment_table(_summary())
    assert table.columns == ["segment", "answers", "answered", "positive (95% CI)", "negative (95% CI)", "note"]
    assert table.row(0) == ("Loyal", 10, 1.0, "60% (31% to 83%)", "40% (17% to 69%)", "")
    assert table.row(1)[3] == "100% (21% to 100%)" and table.row(1)[-1] == "fewer than 3 sentiment labels: read with care"
    assert ft.sentiment_table(feedback_by_segment(pl.DataFrame({"customer_id": ["a"], "nps": [1.0]}),
                                                  pl.DataFrame({"customer_id": ["a"], "s": ["A"]}), "s")) is None


def test_difference_sentences() -> None:
    t = pl.DataFrame({"s": ["A", "B", "C"], "nps": [40.0, -10.0, 5.0], "nps_responses": [50, 40, 10]})
    yes = {"test": "chi-square", "p_value": 0.0002, "segments": 2, "min_responses": 30}
    assert ft.difference_sentence(yes, "nps", "RFM segments", 0.95, t, "s") == (
        "NPS differs between the RFM segments beyond what chance would give (chi-square test on promoters, passives "
        "and detractors over the 2 segments with at least 30 NPS answers, p < 0.001): highest in 'A' (+40), lowest in "
        "'B' (-10).")  # C has too few answers to be named
    no = {"test": "Kruskal-Wallis", "p_value": 0.2, "segments": 3, "min_responses": 30}
    assert ft.difference_sentence(no, "csat", "tiers") == (
        "The differences in mean CSAT between the tiers are within what chance would give (Kruskal-Wallis test on the "
        "scores over the 3 segments with at least 30 CSAT answers, p = 0.200), so mean CSAT does not tell these "
        "segments apart.")
    # p just under 1 - confidence at 90%: a difference
    assert ft.difference_sentence({**no, "p_value": 0.08}, "csat", "tiers", 0.90).startswith("Mean CSAT differs")
    same = {"p_value": None, "segments": 3, "min_responses": 30}
    assert ft.difference_sentence(same, "sentiment", "tiers").endswith("(every answer is the same).")


def test_whole_section_and_its_absence() -> None:
    sources = {"nps": ("column", "nps_score"), "tickets": ("event", "support_ticket"), "sentiment": ("column", "mood")}
    text = ft.feedback_markdown([("RFM segments", _summary())], sources)
    assert text.startswith("## What customers say\n\nSegments checked against what customers say")
    assert "### RFM segments\n\n| segment | customers | NPS answers |" in text
    assert "Sources: NPS from the column `nps_score` of the customer table; tickets per customer from the " \
           "`support_ticket` events (counted per customer); sentiment from the column `mood` of the customer table." in text
    assert "NPS answer rates range from 50% ('Lost') to 100% ('Loyal')" in text
    # Lost has 2 NPS answers and 1 label (< 3): no NPS or sentiment test; every ticket count is known, so tickets are tested
    assert text.count("Too few answers to test whether") == 2
    assert "between the RFM segments are within what chance would give (Kruskal-Wallis test on the counts over the 2 " \
           "segments with at least 3 known ticket counts, p = " in text
    assert ft.feedback_markdown([], sources) == "" and ft.feedback_markdown([("x", _summary())], {}) == ""
