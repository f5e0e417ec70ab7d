"""The wording of the "What customers say" section: feedback per segment, its intervals and the difference tests.

Every sentence is built from the plain tables and dicts of :mod:`segmentation_lib.validate.feedback`.

>>> interval_text(20.0, -34.03, 74.03, "nps")
'+20 (-34 to +74)'
>>> interval_text(4.2, 3.161, 5.239, "csat")
'4.20 (3.16 to 5.24)'
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import polars as pl

from segmentation_lib.describe.experiment_text import fmt_p
from segmentation_lib.describe.format import md_literal, md_table
from segmentation_lib.formatting import fmt_number
from segmentation_lib.validate.feedback import FeedbackSummary

#: how each signal is named in the text
SIGNAL_NAMES: dict[str, str] = {"nps": "NPS", "csat": "mean CSAT", "tickets": "tickets per customer",
                                "sentiment": "sentiment"}
_SHORT = {"nps": "NPS", "csat": "CSAT", "tickets": "ticket", "sentiment": "sentiment"}
#: what one response of each signal is called
_UNITS = {"nps": "NPS answers", "csat": "CSAT answers", "tickets": "known ticket counts", "sentiment": "sentiment labels"}
#: the verb after the signal's name ("tickets per customer differ")
_VERB = {"tickets": ("differ", "do")}
_TESTS = {"nps": "chi-square test on promoters, passives and detractors", "sentiment": "chi-square test on the labels",
          "csat": "Kruskal-Wallis test on the scores", "tickets": "Kruskal-Wallis test on the counts"}


def _ok(x: Any) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x))


def _num(x: float, kind: str) -> str:
    if kind == "nps":
        return f"{x:+.0f}"
    if kind == "share":
        return f"{100 * x:.0f}%"
    return fmt_number(x, 2, trim=False)


def interval_text(value: float | None, low: float | None, high: float | None, kind: str) -> str:
    """``value (low to high)`` in the signal's units (NPS in signed points, shares in %); ``-`` without a value.

    >>> interval_text(0.3, 0.108, 0.603, "share"), interval_text(None, None, None, "nps")
    ('30% (11% to 60%)', '-')
    """
    if not _ok(value):
        return "-"
    if not (_ok(low) and _ok(high)):
        return _num(value, kind)
    return f"{_num(value, kind)} ({_num(low, kind)} to {_num(high, kind)})"


def few_note(few: list[str] | None, min_responses: int) -> str:
    """The small-segment flag of one row (empty when every signal has enough answers).

    >>> few_note(["nps", "tickets"], 30)
    'fewer than 30 NPS answers and known ticket counts: read with care'
    """
    if not few:
        return ""
    units = [_UNITS[s] for s in few]
    listed = units[0] if len(units) == 1 else ", ".join(units[:-1]) + " and " + units[-1]
    return f"fewer than {min_responses} {listed}: read with care"


def feedback_table(fb: FeedbackSummary) -> tuple[pl.DataFrame, dict[str, str]]:
    """The NPS / CSAT / tickets table shown per method, with its ``md_table`` formats.

    >>> from segmentation_lib.validate.feedback import feedback_by_segment
    >>> f = pl.DataFrame({"customer_id": list("ab"), "nps": [10.0, None]})
    >>> t, _ = feedback_table(feedback_by_segment(f, pl.DataFrame({"customer_id": list("ab"), "s": ["A", "A"]}), "s"))
    >>> t.columns
    ['segment', 'customers', 'NPS answers', 'NPS answered', 'NPS (95% CI)', 'note']
    """
    t, c = fb.table, fb.summary["confidence"]
    level = f"{100 * c:g}%"
    cols: list[pl.Expr] = [pl.col(fb.segment_col).cast(pl.String).alias("segment"), pl.col("customers")]
    formats = {"customers": "int"}
    for s, label in (("nps", "NPS"), ("csat", "mean CSAT")):
        if f"{s}_responses" in t.columns:
            key = "nps" if s == "nps" else "csat"
            mean = "nps" if s == "nps" else "csat_mean"
            cols += [pl.col(f"{s}_responses").alias(f"{_SHORT[s]} answers"),
                     pl.col(f"{s}_coverage").alias(f"{_SHORT[s]} answered"),
                     _text(t, mean, f"{s}_low", f"{s}_high", key).alias(f"{label} ({level} CI)")]
            formats |= {f"{_SHORT[s]} answers": "int", f"{_SHORT[s]} answered": "pct"}
    if "tickets_responses" in t.columns:
        if float(t["tickets_coverage"].min() or 0) < 1:
            cols.append(pl.col("tickets_coverage").alias("tickets known"))
            formats["tickets known"] = "pct"
        cols.append(_text(t, "tickets_per_customer", "tickets_low", "tickets_high", "tickets")
                    .alias(f"tickets per customer ({level} CI)"))
    few = [[x for x in row if x != "sentiment"] for row in t["few_responses"].to_list()]
    cols.append(pl.Series("note", [few_note(f, fb.summary["min_responses"]) for f in few]).alias("note"))
    return t.select(cols), formats


def _text(t: pl.DataFrame, value: str, low: str, high: str, kind: str) -> pl.Expr:
    """The ``value (low to high)`` column of ``t`` as a literal text series."""
    texts = [interval_text(v, lo, hi, kind) for v, lo, hi in zip(t[value], t[low], t[high])]  # one per segment
    return pl.Series(texts, dtype=pl.String).alias(value)


def sentiment_table(fb: FeedbackSummary) -> tuple[pl.DataFrame, dict[str, str]] | None:
    """The sentiment shares (one column per label, with Wilson intervals) per segment; None without sentiment."""
    t = fb.table
    if "sentiment_responses" not in t.columns:
        return None
    level = f"{100 * fb.summary['confidence']:g}%"
    cols: list[Any] = [pl.col(fb.segment_col).cast(pl.String).alias("segment"),
                       pl.col("sentiment_responses").alias("answers"), pl.col("sentiment_coverage").alias("answered")]
    for lab in fb.labels:
        cols.append(_text(t, f"sentiment_{lab}_share", f"sentiment_{lab}_low", f"sentiment_{lab}_high", "share")
                    .alias(f"{lab} ({level} CI)"))
    notes = [few_note([x for x in row if x == "sentiment"], fb.summary["min_responses"]) for row in t["few_responses"]]
    cols.append(pl.Series("note", notes, dtype=pl.String))
    return t.select(cols), {"answers": "int", "answered": "pct"}


def difference_sentence(test: Mapping[str, Any], signal: str, method: str, confidence: float = 0.95,
                        table: pl.DataFrame | None = None, segment_col: str = "segment") -> str:
    """One plain sentence: does ``signal`` differ between the ``method`` segments (test, segments, p-value)?

    With ``table`` (the :class:`FeedbackSummary` table) a significant NPS / CSAT / tickets result names the
    highest and lowest segment among those tested.

    >>> difference_sentence({"test": "chi-square", "p_value": 0.0001, "segments": 4, "min_responses": 30}, "nps", "RFM segments")
    'NPS differs between the RFM segments beyond what chance would give (chi-square test on promoters, passives and detractors over the 4 segments with at least 30 NPS answers, p < 0.001).'
    >>> difference_sentence({"p_value": 0.41, "segments": 3, "min_responses": 30}, "tickets", "tiers")
    'The differences in tickets per customer between the tiers are within what chance would give (Kruskal-Wallis test on the counts over the 3 segments with at least 30 known ticket counts, p = 0.410), so tickets per customer do not tell these segments apart.'
    >>> difference_sentence({"p_value": None, "segments": 1, "min_responses": 30}, "csat", "RFM segments")
    'Too few answers to test whether mean CSAT differs between the RFM segments (fewer than two segments have at least 30 CSAT answers).'
    """
    name, n, m = SIGNAL_NAMES[signal], test.get("segments"), test.get("min_responses")
    differs, does = _VERB.get(signal, ("differs", "does"))
    p = test.get("p_value")
    if p is None:
        why = (f"fewer than two segments have at least {m} {_UNITS[signal]}" if (n or 0) < 2
               else "every answer is the same")
        return f"Too few answers to test whether {name} {differs} between the {method} ({why})."
    how = f"{_TESTS[signal]} over the {n} segments with at least {m} {_UNITS[signal]}, p {fmt_p(p) if p < 0.001 else '= ' + fmt_p(p)}"
    if p >= 1 - confidence:
        return (f"The differences in {name} between the {method} are within what chance would give ({how}), so "
                f"{name} {does} not tell these segments apart.")
    extremes = _extremes(table, signal, segment_col, m) if table is not None else ""
    return f"{name[0].upper() + name[1:]} {differs} between the {method} beyond what chance would give ({how}){extremes}."


def coverage_sentence(table: pl.DataFrame, signal: str, segment_col: str) -> str:
    """A caution when the share of customers who answered differs widely between segments (the highest at least
    twice the lowest): the answers of a segment that rarely answers may not speak for it. Empty otherwise.

    >>> t = pl.DataFrame({"s": ["A", "B"], "nps_coverage": [0.6, 0.2]})
    >>> coverage_sentence(t, "nps", "s")
    "NPS answer rates range from 20% ('B') to 60% ('A'): where few answered, the answers may not speak for the whole segment."
    """
    col = f"{signal}_coverage"
    t = table.drop_nulls(col).filter(pl.col(col) > 0).sort(col)
    if t.height < 2 or t[col][-1] < 2 * t[col][0]:
        return ""
    lo, hi = t.row(0, named=True), t.row(t.height - 1, named=True)
    return (f"{_SHORT[signal]} answer rates range from {_num(lo[col], 'share')} ('{md_literal(str(lo[segment_col]))}') "
            f"to {_num(hi[col], 'share')} ('{md_literal(str(hi[segment_col]))}'): where few answered, the answers may "
            "not speak for the whole segment.")


def _extremes(table: pl.DataFrame, signal: str, segment_col: str, min_responses: int) -> str:
    col = {"nps": "nps", "csat": "csat_mean", "tickets": "tickets_per_customer"}.get(signal)
    if col is None or col not in table.columns:
        return ""
    t = table.filter(pl.col(f"{signal}_responses") >= min_responses).drop_nulls(col).sort(col, descending=True)
    if t.height < 2:
        return ""
    kind = "nps" if signal == "nps" else "num"
    hi, lo = t.row(0, named=True), t.row(t.height - 1, named=True)
    return (f": highest in '{md_literal(str(hi[segment_col]))}' ({_num(hi[col], kind)}), lowest in "
            f"'{md_literal(str(lo[segment_col]))}' ({_num(lo[col], kind)})")


def sources_sentence(sources: Mapping[str, tuple[str, str]]) -> str:
    """Where each signal comes from.

    >>> sources_sentence({"nps": ("column", "nps_score"), "tickets": ("event", "support_ticket")})
    'Sources: NPS from the column `nps_score` of the customer table; tickets per customer from the `support_ticket` events (counted per customer).'
    """
    parts = []
    for s, (kind, name) in sources.items():
        code = "`" + name.replace("`", "") + "`"
        where = (f"the column {code} of the customer table" if kind == "column" else
                 f"the {code} events " + ("(counted per customer)" if s == "tickets" else "(each customer's latest answer)"))
        parts.append(f"{SIGNAL_NAMES[s]} from {where}")
    return "Sources: " + "; ".join(parts) + "."


def feedback_intro(sources: Mapping[str, tuple[str, str]], confidence: float, min_responses: int) -> str:
    """What the section shows and how to read it."""
    level = f"{100 * confidence:g}%"
    defs = []
    if "nps" in sources:
        defs.append("NPS (net promoter score) is the share of promoters (answers 9-10) minus the share of detractors "
                    "(0-6), in points from -100 to +100")
    if "csat" in sources:
        defs.append("CSAT is the mean satisfaction score")
    if "tickets" in sources:
        defs.append("tickets are support tickets per customer")
    if "sentiment" in sources:
        defs.append("sentiment shares are the share of each label among the customers with one")
    head = (f"Segments checked against what customers say, not only what they buy. {'; '.join(defs)}. Every figure "
            f"has its {level} interval; \"answered\" is the share of the segment's customers with an answer, and "
            f"segments with fewer than {min_responses} answers are flagged: read them with care.")
    return head[0].upper() + head[1:] + " " + sources_sentence(sources)


def method_markdown(title: str, fb: FeedbackSummary) -> str:
    """One method's subsection: the table(s), then one sentence per signal on whether the segments differ."""
    table, formats = feedback_table(fb)
    parts = [f"### {title[0].upper() + title[1:]}"]
    if table.width > 3:  # more than segment, customers and note
        parts.append(md_table(table, formats))
    sent = sentiment_table(fb)
    if sent is not None:
        parts.append(md_table(*sent))
    c = fb.summary["confidence"]
    first = next((s for s in ("nps", "csat", "sentiment") if s in fb.tests), None)
    if first is not None:
        parts.append(coverage_sentence(fb.table, first, fb.segment_col))
    parts.append(" ".join(difference_sentence(fb.tests[s], s, title, c, fb.table, fb.segment_col) for s in fb.tests))
    if fb.summary.get("without_segment"):
        parts.append(f"{fb.summary['without_segment']:,} customers without a segment in this method are left out.")
    return "\n\n".join(p for p in parts if p)


def feedback_markdown(sections: list[tuple[str, FeedbackSummary]], sources: Mapping[str, tuple[str, str]]) -> str:
    """The whole "What customers say" section (empty when no feedback is configured or no method has segments)."""
    if not sources or not sections:
        return ""
    first = sections[0][1].summary
    return "\n\n".join(["## What customers say", feedback_intro(sources, first["confidence"], first["min_responses"]),
                        *(method_markdown(title, fb) for title, fb in sections)])
