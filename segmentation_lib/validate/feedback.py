"""Feedback and support signals per segment: NPS, CSAT, support tickets and sentiment, with intervals.

Segments are validated against what customers say, not only against what they buy. The signals come
from the customer table (``feedback.nps`` / ``csat`` / ``tickets`` / ``sentiment`` name its columns)
or from the event log (``feedback.events``: the latest ``nps`` / ``csat`` answer per customer, the
number of ``tickets`` events per customer). :func:`customer_feedback` builds one row per customer;
:func:`feedback_by_segment` summarises it per segment of any method (RFM, rule tiers, clusters, value
cells) with the intervals below and one test of whether the signal differs between segments.

- NPS = % promoters (9-10) - % detractors (0-6), in points; the interval is the normal one on the
  standard multinomial variance of the difference, Var = (p_P + p_D - (p_P - p_D)^2) / n.
- Mean CSAT with Student's t interval (``scipy.stats.t``).
- Tickets per customer with the exact Poisson (Garwood) interval (``statsmodels.stats.rates.confint_poisson``,
  ``exact-c``); it assumes Poisson counts, so with a few very heavy users it is too narrow.
- Sentiment label shares with Wilson intervals (``statsmodels.stats.proportion.proportion_confint``).
- Differences between segments: chi-square test of independence (``scipy.stats.chi2_contingency``) for
  NPS categories and sentiment labels, Kruskal-Wallis (``scipy.stats.kruskal``) for CSAT and tickets,
  on the segments with at least ``min_responses`` answers.

>>> fb = pl.DataFrame({"customer_id": list("abcd"), "nps": [10.0, 9.0, 3.0, None]})
>>> seg = pl.DataFrame({"customer_id": list("abcd"), "segment": ["A"] * 4})
>>> row = feedback_by_segment(fb, seg, "segment").table.row(0, named=True)
>>> round(row["nps"], 1), row["nps_responses"], row["nps_coverage"]
(33.3, 3, 0.75)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError, DataError

#: the signals, in the order the report shows them
SIGNALS: tuple[str, ...] = ("nps", "csat", "tickets", "sentiment")
#: signals an event log can give (sentiment is a label, events carry numbers)
EVENT_SIGNALS: tuple[str, ...] = ("nps", "csat", "tickets")
#: NPS categories: detractors answer 0-6, passives 7-8, promoters 9-10
PROMOTER_MIN, DETRACTOR_MAX = 9, 6
#: most distinct sentiment labels (a label is one of a few values; free text is refused, not cut)
MAX_LABELS = 12


@dataclass
class FeedbackSummary:
    """Per-segment feedback: ``table`` (one row per segment), ``labels`` (sentiment labels shown), ``tests``
    (signal -> chi-square / Kruskal-Wallis result) and a ``summary`` dict."""

    table: pl.DataFrame
    segment_col: str
    labels: list[str] = field(default_factory=list)
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def feedback_sources(cfg: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The configured signals: signal -> (``"column"`` | ``"event"``, column or event name); empty = off.

    >>> feedback_sources({"feedback": {"nps": "nps_score", "events": {"tickets": "support_ticket"}}})
    {'nps': ('column', 'nps_score'), 'tickets': ('event', 'support_ticket')}
    """
    fb = dict(cfg.get("feedback") or {})
    events = dict(fb.get("events") or {})
    out: dict[str, tuple[str, str]] = {}
    for s in SIGNALS:
        if fb.get(s):
            out[s] = ("column", str(fb[s]))
        elif s in EVENT_SIGNALS and events.get(s):
            out[s] = ("event", str(events[s]))
    return out


def check_feedback_columns(cfg: Mapping[str, Any], columns: list[str], where: str) -> None:
    """Raise a one-paragraph DataError when a declared feedback column is not in ``columns`` (the customer
    table's columns after ``data.customers.columns``); ``where`` names the file.

    >>> check_feedback_columns({"feedback": {"nps": "nps_score"}}, ["customer_id", "nps_score"], "c.csv")
    """
    for signal, (kind, name) in feedback_sources(cfg).items():
        if kind == "column" and name not in columns:
            import difflib

            close = difflib.get_close_matches(name, columns, n=1) or [
                c for c in columns if name.lower() in c.lower() or c.lower() in name.lower()][:1]
            hint = f" The closest is '{close[0]}'." if close else ""
            shown = ", ".join(columns[:20]) + (", ..." if len(columns) > 20 else "")
            raise DataError(f"{where}: column '{name}' (feedback.{signal}) is not in the customer table, whose columns "
                            f"are: {shown}.{hint} Fix: set feedback.{signal} to one of these columns (or to null if the "
                            "table has no such signal), or add the column to the customer table.")


# --------------------------------------------------------------------------------------------
# one row per customer
# --------------------------------------------------------------------------------------------
def _numeric(table: pl.DataFrame, name: str, signal: str, where: str) -> pl.Series:
    s = table[name]
    if not (s.dtype.is_numeric() or s.dtype == pl.Null):
        as_num = s.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        bad = s.is_not_null() & (s.cast(pl.String).str.strip_chars() != "") & as_num.is_null()
        if bad.any():
            ex = ", ".join(repr(v) for v in s.filter(bad).unique(maintain_order=True).head(3).to_list())
            raise DataError(f"{where}: column '{name}' (feedback.{signal}) holds {int(bad.sum()):,} value(s) that are "
                            f"not numbers (e.g. {ex}). Fix: write the answers as numbers (an empty cell for no "
                            f"answer), or set feedback.{signal} to the right column.")
        s = as_num
    return s.cast(pl.Float64).alias(signal)


def _check_range(s: pl.Series, signal: str, name: str, where: str) -> None:
    if signal == "nps":
        bad = s.is_not_null() & ((s < 0) | (s > 10) | (s != s.round(0)))
        allowed = "whole numbers from 0 to 10 (the 'how likely are you to recommend us' scale)"
    elif signal == "tickets":
        bad = s.is_not_null() & (s < 0)
        allowed = "counts of 0 or more"
    else:
        bad = s.is_nan()
        allowed = "numbers"
    if bad.any():
        ex = ", ".join(str(v) for v in s.filter(bad).unique(maintain_order=True).head(3).to_list())
        raise DataError(f"{where}: {int(bad.sum()):,} value(s) of '{name}' (feedback.{signal}) are outside the allowed "
                        f"{allowed} (e.g. {ex}). Fix: correct or blank those values, or set feedback.{signal} to the "
                        "right column.")


def customer_feedback(features: pl.DataFrame, cfg: Mapping[str, Any], events: pl.DataFrame | None = None,
                      where: str = "data.customers") -> pl.DataFrame | None:
    """One row per customer of ``features`` with the configured signals (``nps``, ``csat``, ``tickets`` as
    Float64, ``sentiment`` as text; null = no answer), or None when no feedback is configured.

    Columns come from ``features`` (the customer table is joined onto it); event signals from ``events``
    (the clean event log: ``customer_id``, ``timestamp``, ``event``, ``value``): the latest ``nps`` / ``csat``
    value per customer, and the count of ``tickets`` events (0 for a customer without one).

    >>> f = pl.DataFrame({"customer_id": ["a", "b"], "score": [9, None]})
    >>> customer_feedback(f, {"feedback": {"nps": "score"}}).to_dicts()
    [{'customer_id': 'a', 'nps': 9.0}, {'customer_id': 'b', 'nps': None}]
    """
    sources = feedback_sources(cfg)
    if not sources:
        return None
    check_feedback_columns(cfg, list(features.columns), where)
    out = features.select("customer_id")
    for signal, (kind, name) in sources.items():
        if kind == "column":
            if signal == "sentiment":
                col = features[name].cast(pl.String).str.strip_chars()
                col = pl.when(col == "").then(None).otherwise(col)
                labels = features.select(col.alias(signal)).to_series()
                if labels.n_unique() - int(labels.null_count() > 0) > MAX_LABELS:
                    ex = ", ".join(repr(v) for v in labels.drop_nulls().unique(maintain_order=True).head(3).to_list())
                    raise DataError(f"{where}: column '{name}' (feedback.sentiment) holds {labels.drop_nulls().n_unique():,} "
                                    f"distinct labels (e.g. {ex}); a sentiment label is one of at most {MAX_LABELS} "
                                    "values such as positive / neutral / negative. Fix: map the column to a few labels "
                                    "(or set feedback.sentiment to the column that holds them).")
                out = out.with_columns(labels)
            else:
                s = _numeric(features, name, signal, where)
                _check_range(s, signal, name, where)
                out = out.with_columns(s)
            continue
        if events is None:
            raise ConfigError(f"feedback.events.{signal} names the event '{name}' but no event log was read. Fix: set "
                              "data.events.path to the event log, or name a customer-table column in feedback.")
        mine = events.filter(pl.col("event") == name)
        if signal == "tickets":
            per = mine.group_by("customer_id").agg(pl.len().cast(pl.Float64).alias(signal))
            out = out.join(per, on="customer_id", how="left", maintain_order="left").with_columns(pl.col(signal).fill_null(0.0))
        else:
            if "value" not in mine.columns:
                raise DataError(f"data.events: the '{name}' events (feedback.events.{signal}) carry no value column. "
                                "Fix: map data.events.columns.value to the column holding the answer.")
            per = (mine.drop_nulls("value").sort("timestamp").group_by("customer_id")
                   .agg(pl.col("value").last().cast(pl.Float64).alias(signal)))
            _check_range(per[signal], signal, f"value of the {name} events", "data.events")
            out = out.join(per, on="customer_id", how="left", maintain_order="left")
    return out


# --------------------------------------------------------------------------------------------
# statistics per segment (each a polars group-by, then vectorised interval formulas)
# --------------------------------------------------------------------------------------------
def _z(confidence: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + confidence / 2))


def nps_by_segment(df: pl.DataFrame, segment_col: str, col: str = "nps", confidence: float = 0.95) -> pl.DataFrame:
    """Per segment: answers, promoter / passive / detractor counts, NPS in points and its interval.

    NPS = 100 (p_P - p_D); interval NPS +- z 100 sqrt((p_P + p_D - (p_P - p_D)^2) / n), the normal interval on
    the multinomial variance of the difference of two shares (clipped to [-100, 100]).

    >>> d = pl.DataFrame({"s": ["A"] * 10, "nps": [10, 9, 8, 7, 6, 0, 10, 10, 5, 9]})
    >>> r = nps_by_segment(d, "s").row(0, named=True)
    >>> r["nps"], round(r["nps_low"], 2), round(r["nps_high"], 2)
    (20.0, -34.03, 74.03)
    """
    v = pl.col(col).drop_nulls()
    t = df.group_by(segment_col).agg(
        nps_responses=v.len().cast(pl.Int64),
        promoters=(v >= PROMOTER_MIN).sum().cast(pl.Int64),
        detractors=(v <= DETRACTOR_MAX).sum().cast(pl.Int64),
    ).with_columns(passives=pl.col("nps_responses") - pl.col("promoters") - pl.col("detractors"))
    n = pl.col("nps_responses")
    pp, pd_ = pl.col("promoters") / n, pl.col("detractors") / n
    half = _z(confidence) * 100 * ((pp + pd_ - (pp - pd_) ** 2).clip(lower_bound=0) / n).sqrt()
    nps = 100 * (pp - pd_)
    ok = n > 0
    return t.with_columns(
        nps=pl.when(ok).then(nps),
        nps_low=pl.when(ok).then((nps - half).clip(-100, 100)),
        nps_high=pl.when(ok).then((nps + half).clip(-100, 100)),
        promoter_share=pl.when(ok).then(pp), detractor_share=pl.when(ok).then(pd_),
    )


def mean_by_segment(df: pl.DataFrame, segment_col: str, col: str = "csat", confidence: float = 0.95) -> pl.DataFrame:
    """Per segment: answers, mean and Student's t interval, mean +- t_{n-1} s / sqrt(n) (null below 2 answers).

    >>> d = pl.DataFrame({"s": ["A"] * 5, "csat": [4.0, 5.0, 3.0, 4.0, 5.0]})
    >>> r = mean_by_segment(d, "s").row(0, named=True)
    >>> r["csat_mean"], round(r["csat_low"], 4), round(r["csat_high"], 4)
    (4.2, 3.1611, 5.2389)
    """
    from scipy.stats import t as student_t

    v = pl.col(col).drop_nulls()
    t = df.group_by(segment_col).agg(**{f"{col}_responses": v.len().cast(pl.Int64), f"{col}_mean": v.mean(),
                                        "_sd": v.std(ddof=1)})
    n = t[f"{col}_responses"].to_numpy().astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        tq = np.where(n >= 2, student_t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)), np.nan)
        half = pl.Series(tq * t["_sd"].fill_null(np.nan).to_numpy() / np.sqrt(n)).fill_nan(None)
    return t.with_columns((pl.col(f"{col}_mean") - half).alias(f"{col}_low"),
                          (pl.col(f"{col}_mean") + half).alias(f"{col}_high")).drop("_sd")


def rate_by_segment(df: pl.DataFrame, segment_col: str, col: str = "tickets", confidence: float = 0.95) -> pl.DataFrame:
    """Per segment: customers with a known count, total, mean per customer and the exact Poisson interval
    (Garwood: chi2 quantiles, ``statsmodels.stats.rates.confint_poisson(method="exact-c")``) of the mean.

    >>> d = pl.DataFrame({"s": ["A"] * 5, "tickets": [0.0, 4.0, 2.0, 1.0, 3.0]})
    >>> r = rate_by_segment(d, "s").row(0, named=True)
    >>> r["tickets_per_customer"], round(r["tickets_low"], 4), round(r["tickets_high"], 4)
    (2.0, 0.9591, 3.6781)
    """
    from statsmodels.stats.rates import confint_poisson

    v = pl.col(col).drop_nulls()
    t = df.group_by(segment_col).agg(**{f"{col}_responses": v.len().cast(pl.Int64), f"{col}_total": v.sum()})
    n = t[f"{col}_responses"].to_numpy().astype(float)
    k = np.rint(t[f"{col}_total"].to_numpy().astype(float))
    safe = np.maximum(n, 1)
    low, high = confint_poisson(k, safe, method="exact-c", alpha=1 - confidence)
    known = n > 0
    return t.with_columns(
        pl.Series(f"{col}_per_customer", np.where(known, k / safe, np.nan)).fill_nan(None),
        pl.Series(f"{col}_low", np.where(known, low, np.nan)).fill_nan(None),
        pl.Series(f"{col}_high", np.where(known, high, np.nan)).fill_nan(None),
    )


def shares_by_segment(df: pl.DataFrame, segment_col: str, col: str = "sentiment", confidence: float = 0.95,
                      labels: list[str] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Per segment: answers and, per label, its share with the Wilson interval
    (``statsmodels.stats.proportion.proportion_confint(method="wilson")``). Labels: the given ones, else
    every label by overall frequency. Columns ``<col>_<label>_share`` / ``_low`` / ``_high``.

    >>> d = pl.DataFrame({"s": ["A"] * 10, "sentiment": ["pos"] * 3 + ["neg"] * 7})
    >>> t, labels = shares_by_segment(d, "s")
    >>> labels, [round(t[c][0], 4) for c in ("sentiment_pos_share", "sentiment_pos_low", "sentiment_pos_high")]
    (['neg', 'pos'], [0.3, 0.1078, 0.6032])
    """
    from statsmodels.stats.proportion import proportion_confint

    if labels is None:
        counts = df[col].drop_nulls().value_counts(sort=True)
        labels = counts.sort(["count", col], descending=[True, False])[col].to_list()
    v = pl.col(col).drop_nulls()
    t = df.group_by(segment_col).agg(**{f"{col}_responses": v.len().cast(pl.Int64)},
                                     **{f"_n_{i}": (v == lab).sum() for i, lab in enumerate(labels)})
    n = t[f"{col}_responses"].to_numpy().astype(float)
    safe = np.maximum(n, 1)
    cols = []
    for i, lab in enumerate(labels):  # one column set per label (a handful), not per customer
        k = t[f"_n_{i}"].to_numpy().astype(float)
        low, high = proportion_confint(k, safe, alpha=1 - confidence, method="wilson")
        for suffix, arr in (("share", k / safe), ("low", low), ("high", high)):
            cols.append(pl.Series(f"{col}_{lab}_{suffix}", np.where(n > 0, arr, np.nan)).fill_nan(None))
    return t.drop([f"_n_{i}" for i in range(len(labels))]).with_columns(cols), labels


# --------------------------------------------------------------------------------------------
# do the segments differ?
# --------------------------------------------------------------------------------------------
def difference_test(df: pl.DataFrame, segment_col: str, signal: str, min_responses: int = 30) -> dict[str, Any]:
    """Whether ``signal`` differs between the segments with at least ``min_responses`` answers: chi-square test
    of independence on the segment x category table (NPS: detractor / passive / promoter; sentiment: labels),
    Kruskal-Wallis on the values (CSAT, tickets). Returns ``test``, ``statistic``, ``p_value``, ``segments``
    (tested) and ``left_out`` (segments with too few answers); ``p_value`` is None when fewer than two
    segments qualify (or every answer is the same).

    >>> d = pl.DataFrame({"s": ["A"] * 40 + ["B"] * 40, "nps": [10.0] * 40 + [0.0] * 40})
    >>> r = difference_test(d, "s", "nps"); r["test"], r["p_value"] < 1e-6
    ('chi-square', True)
    """
    from scipy.stats import chi2_contingency, kruskal

    x = df.select(segment_col, signal).drop_nulls()
    sizes = x.group_by(segment_col).len()
    keep = sizes.filter(pl.col("len") >= min_responses)[segment_col]
    out: dict[str, Any] = {"test": "chi-square" if signal in ("nps", "sentiment") else "Kruskal-Wallis",
                           "statistic": None, "p_value": None, "segments": keep.len(),
                           "left_out": sizes.height - keep.len(), "min_responses": min_responses}
    x = x.filter(pl.col(segment_col).is_in(keep.implode()))
    if keep.len() < 2:
        return out
    if signal in ("nps", "sentiment"):
        cat = (pl.when(pl.col(signal) >= PROMOTER_MIN).then(pl.lit("promoter"))
               .when(pl.col(signal) <= DETRACTOR_MAX).then(pl.lit("detractor")).otherwise(pl.lit("passive"))
               if signal == "nps" else pl.col(signal))
        table = (x.with_columns(cat.alias("_cat")).group_by(segment_col, "_cat").len()
                 .pivot(on="_cat", index=segment_col, values="len").fill_null(0).drop(segment_col).to_numpy())
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] < 2:
            return out
        res = chi2_contingency(table)
        out.update(statistic=float(res.statistic), p_value=float(res.pvalue), dof=int(res.dof))
        return out
    groups = [g[signal].to_numpy() for _, g in x.group_by(segment_col, maintain_order=True)]  # one per segment
    if np.unique(np.concatenate(groups)).size < 2:
        return out
    res = kruskal(*groups)
    out.update(statistic=float(res.statistic), p_value=float(res.pvalue), dof=len(groups) - 1)
    return out


def feedback_by_segment(feedback: pl.DataFrame, segments: pl.DataFrame, segment_col: str, confidence: float = 0.95,
                        min_responses: int = 30) -> FeedbackSummary:
    """Every configured signal of ``feedback`` (from :func:`customer_feedback`) per segment of ``segments``
    (``customer_id`` and ``segment_col``; customers without a segment are left out and counted in
    ``summary["without_segment"]``), with coverage (answers / customers), a ``few_responses`` list of the
    signals with fewer than ``min_responses`` answers, and the difference tests.
    """
    seg = segments.select("customer_id", segment_col)
    df = seg.join(feedback, on="customer_id", how="left")
    without = df.filter(pl.col(segment_col).is_null()).height
    df = df.filter(pl.col(segment_col).is_not_null())
    signals = [s for s in SIGNALS if s in feedback.columns]
    table = df.group_by(segment_col).agg(customers=pl.len().cast(pl.Int64))
    labels: list[str] = []
    for s in signals:
        if s == "nps":
            part = nps_by_segment(df, segment_col, s, confidence)
        elif s == "csat":
            part = mean_by_segment(df, segment_col, s, confidence)
        elif s == "tickets":
            part = rate_by_segment(df, segment_col, s, confidence)
        else:
            part, labels = shares_by_segment(df, segment_col, s, confidence)
        table = table.join(part, on=segment_col, how="left")
    few = [pl.when(pl.col(f"{s}_responses") < min_responses).then(pl.lit(s)) for s in signals]
    table = table.with_columns(
        [(pl.col(f"{s}_responses") / pl.col("customers")).alias(f"{s}_coverage") for s in signals]
        + [pl.concat_list(few).list.drop_nulls().alias("few_responses") if few else pl.lit([], pl.List(pl.String)).alias("few_responses")]
    ).sort("customers", segment_col, descending=[True, False])
    tests = {s: difference_test(df, segment_col, s, min_responses) for s in signals}
    summary = {"segments": table.height, "customers": df.height, "without_segment": without,
               "confidence": confidence, "min_responses": min_responses,
               "responses": {s: int(table[f"{s}_responses"].sum()) for s in signals}}
    return FeedbackSummary(table, segment_col, labels, tests, summary)


def check_feedback_sources(cfg: Mapping[str, Any]) -> None:
    """Preflight: every declared feedback column is in the customer table's header (after
    ``data.customers.columns``) and every declared event name occurs in ``data.events``; raises a one-paragraph
    DataError naming the file, the column or event and the fix. Reads a header and one column, not the tables.

    >>> check_feedback_sources({"feedback": {}})  # nothing declared: nothing to check
    """
    sources = feedback_sources(cfg)
    data = dict(cfg.get("data") or {})
    if any(kind == "column" for kind, _ in sources.values()):
        from segmentation_lib.data.read import read_header

        section = dict(data.get("customers") or {})
        header = read_header(section["path"], data.get("encoding") or "utf8")
        renames = {v: k for k, v in dict(section.get("columns") or {}).items() if v}
        check_feedback_columns(cfg, [renames.get(c, c) for c in header], str(section["path"]))
    wanted = {name: signal for signal, (kind, name) in sources.items() if kind == "event"}
    if wanted:
        from segmentation_lib.data.events import load_events

        lf = load_events(cfg)
        if lf is None:
            return  # config.check_values already named the missing data.events.path
        names = lf.select(pl.col("event").unique().sort()).collect().to_series().drop_nulls().to_list()
        for name, signal in wanted.items():
            if name not in names:
                shown = ", ".join(map(str, names[:20])) + (", ..." if len(names) > 20 else "")
                raise DataError(f"{data['events']['path']}: no event is named '{name}' (feedback.events.{signal}); the "
                                f"log's events are: {shown}. Fix: set feedback.events.{signal} to one of these names "
                                "(or to null if the log has no such signal).")
