"""Feedback per segment (validate/feedback.py): hand-computed NPS, published interval values, planted differences
recovered, the per-customer signals from a customer table or an event log, and the one-paragraph errors."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.validate import feedback as fbm

UTC = dt.timezone.utc


# --------------------------------------------------------------------------- known answers


def test_nps_hand_computed_on_a_tiny_table() -> None:
    # A: 10 answers, 5 promoters (9, 9, 10, 10, 10), 2 passives (7, 8), 3 detractors (0, 5, 6): NPS = 50 - 30 = 20
    # Var = (0.5 + 0.3 - 0.2^2) / 10 = 0.076, half-width = 1.959964 * 100 * sqrt(0.076) = 54.033
    # B: 4 answers, all 10: NPS 100 with a zero-width interval; C: no answer -> null
    d = pl.DataFrame({"s": ["A"] * 10 + ["B"] * 4 + ["C"] * 2,
                      "nps": [10, 9, 8, 7, 6, 0, 10, 10, 5, 9, 10, 10, 10, 10, None, None]}, strict=False)
    t = {r["s"]: r for r in fbm.nps_by_segment(d, "s").iter_rows(named=True)}
    a = t["A"]
    assert (a["nps_responses"], a["promoters"], a["passives"], a["detractors"]) == (10, 5, 2, 3)
    assert a["nps"] == pytest.approx(20.0)
    half = 1.959963985 * 100 * math.sqrt(0.076)
    assert a["nps_low"] == pytest.approx(20 - half, abs=1e-6) and a["nps_high"] == pytest.approx(20 + half, abs=1e-6)
    assert round(a["nps_low"], 2) == -34.03 and round(a["nps_high"], 2) == 74.03
    assert (t["B"]["nps"], t["B"]["nps_low"], t["B"]["nps_high"]) == (100.0, 100.0, 100.0)
    assert t["C"]["nps_responses"] == 0 and t["C"]["nps"] is None and t["C"]["nps_low"] is None
    # a 90% interval is narrower by z(0.95) / z(0.975)
    a90 = fbm.nps_by_segment(d, "s", confidence=0.90).filter(pl.col("s") == "A").row(0, named=True)
    assert a90["nps_high"] - 20 == pytest.approx(half * 1.644853627 / 1.959963985, rel=1e-6)


def test_nps_interval_matches_a_seeded_multinomial_simulation() -> None:
    # the variance formula against the spread of simulated NPS values (p_P 0.5, p_D 0.2, n 400)
    rng = np.random.default_rng(0)
    draws = rng.multinomial(400, [0.2, 0.3, 0.5], size=20000)
    sim = 100 * (draws[:, 2] - draws[:, 0]) / 400
    d = pl.DataFrame({"s": ["A"] * 400, "nps": [0.0] * 80 + [7.0] * 120 + [10.0] * 200})
    r = fbm.nps_by_segment(d, "s").row(0, named=True)
    assert r["nps"] == pytest.approx(30.0)
    assert (r["nps_high"] - r["nps_low"]) / 2 / 1.959964 == pytest.approx(sim.std(), rel=0.02)


def test_csat_t_interval_known_answer() -> None:
    # mean 4.2, s = sqrt(0.7), t(0.975, 4) = 2.776445 (tables): 4.2 -+ 2.776445 * sqrt(0.7 / 5)
    d = pl.DataFrame({"s": ["A"] * 5 + ["B"], "csat": [4.0, 5.0, 3.0, 4.0, 5.0, 2.0]})
    t = {r["s"]: r for r in fbm.mean_by_segment(d, "s").iter_rows(named=True)}
    half = 2.776445 * math.sqrt(0.7 / 5)
    assert t["A"]["csat_mean"] == pytest.approx(4.2)
    assert t["A"]["csat_low"] == pytest.approx(4.2 - half, abs=1e-5) and t["A"]["csat_high"] == pytest.approx(4.2 + half, abs=1e-5)
    assert t["B"]["csat_responses"] == 1 and t["B"]["csat_mean"] == 2.0 and t["B"]["csat_low"] is None  # no interval from 1


def test_tickets_exact_poisson_interval_matches_garwood_table() -> None:
    # Garwood (1936) exact 95% limits for a Poisson count: 10 -> 4.7954, 18.3904; 0 -> 0, 3.6889
    d = pl.DataFrame({"s": ["A"] * 5 + ["B"] * 2 + ["C"], "tickets": [0.0, 4.0, 2.0, 1.0, 3.0, 0.0, 0.0, None]})
    t = {r["s"]: r for r in fbm.rate_by_segment(d, "s").iter_rows(named=True)}
    assert (t["A"]["tickets_total"], t["A"]["tickets_per_customer"]) == (10.0, 2.0)
    assert t["A"]["tickets_low"] * 5 == pytest.approx(4.7954, abs=1e-4) and t["A"]["tickets_high"] * 5 == pytest.approx(18.3904, abs=1e-4)
    assert t["B"]["tickets_low"] == 0 and t["B"]["tickets_high"] * 2 == pytest.approx(3.6889, abs=1e-4)
    assert t["C"]["tickets_responses"] == 0 and t["C"]["tickets_per_customer"] is None


def test_sentiment_wilson_intervals_match_newcombe_1998() -> None:
    # Newcombe (1998), Table I, method 3 (Wilson score): 81/263 -> 0.2553-0.3662, 15/148 -> 0.0624-0.1605
    d = pl.DataFrame({"s": ["A"] * 263 + ["B"] * 148,
                      "sentiment": ["positive"] * 81 + ["negative"] * 182 + ["positive"] * 15 + ["neutral"] * 133})
    t, labels = fbm.shares_by_segment(d, "s")
    assert labels == ["negative", "neutral", "positive"]  # by overall count: 182, 133, 96
    row = {r["s"]: r for r in t.iter_rows(named=True)}
    assert round(row["A"]["sentiment_positive_low"], 4) == 0.2553 and round(row["A"]["sentiment_positive_high"], 4) == 0.3662
    assert round(row["B"]["sentiment_positive_low"], 4) == 0.0624 and round(row["B"]["sentiment_positive_high"], 4) == 0.1605
    assert row["B"]["sentiment_negative_share"] == 0 and row["B"]["sentiment_negative_low"] == 0


# --------------------------------------------------------------------------- planted differences and none


def _planted(nps_by_segment: dict[str, float], n: int, seed: int) -> pl.DataFrame:
    """n answers per segment drawn from promoter/detractor shares giving the planted NPS (passives 30%)."""
    rng = np.random.default_rng(seed)
    frames = []
    for s, nps in nps_by_segment.items():
        p_p = (0.7 + nps / 100) / 2
        cat = rng.choice(3, size=n, p=[0.7 - p_p, 0.3, p_p])
        score = np.array([3, 8, 10])[cat]
        frames.append(pl.DataFrame({"customer_id": [f"{s}{i}" for i in range(n)], "s": s, "nps": score.astype(float),
                                    "csat": rng.normal(3 + nps / 50, 1.0, n), "tickets": rng.poisson(1 + nps / 100, n) * 1.0}))
    return pl.concat(frames)


def test_planted_differences_are_recovered_and_absent_ones_are_not_claimed() -> None:
    d = _planted({"A": 50.0, "B": 0.0, "C": -40.0}, 400, 1)
    fb = fbm.feedback_by_segment(d.drop("s"), d.select("customer_id", "s"), "s")
    t = {r["s"]: r for r in fb.table.iter_rows(named=True)}
    for s, planted in (("A", 50.0), ("B", 0.0), ("C", -40.0)):
        assert t[s]["nps_low"] <= planted <= t[s]["nps_high"], (s, t[s]["nps"])
    assert all(fb.tests[s]["p_value"] < 1e-6 for s in ("nps", "csat", "tickets"))
    assert (fb.tests["nps"]["test"], fb.tests["csat"]["test"]) == ("chi-square", "Kruskal-Wallis")
    same = _planted({"A": 20.0, "B": 20.0, "C": 20.0}, 400, 2)
    fb0 = fbm.feedback_by_segment(same.drop("s"), same.select("customer_id", "s"), "s")
    assert all(fb0.tests[s]["p_value"] > 0.05 for s in ("nps", "csat", "tickets")), fb0.tests


def test_coverage_small_segments_and_customers_without_a_segment() -> None:
    fb = pl.DataFrame({"customer_id": [f"c{i}" for i in range(50)],
                       "nps": [10.0] * 20 + [None] * 20 + [0.0] * 5 + [None] * 5})
    seg = pl.DataFrame({"customer_id": [f"c{i}" for i in range(50)], "s": ["big"] * 40 + ["small"] * 5 + [None] * 5})
    out = fbm.feedback_by_segment(fb, seg, "s", min_responses=10)
    t = {r["s"]: r for r in out.table.iter_rows(named=True)}
    assert (t["big"]["customers"], t["big"]["nps_responses"], t["big"]["nps_coverage"]) == (40, 20, 0.5)
    assert t["small"]["few_responses"] == ["nps"] and t["big"]["few_responses"] == []
    assert out.summary["without_segment"] == 5 and out.summary["responses"] == {"nps": 25}
    # one segment with enough answers: no test
    assert out.tests["nps"]["p_value"] is None and out.tests["nps"]["left_out"] == 1


# --------------------------------------------------------------------------- per customer: table or events


def test_customer_feedback_from_the_customer_table() -> None:
    f = pl.DataFrame({"customer_id": ["a", "b", "c"], "score": ["9", " ", None], "t": [0, 2, None],
                      "mood": ["positive", "", None], "total_spend": [1.0, 2.0, 3.0]})
    cfg = {"feedback": {"nps": "score", "tickets": "t", "sentiment": "mood"}}
    out = fbm.customer_feedback(f, cfg)
    assert out.to_dict(as_series=False) == {"customer_id": ["a", "b", "c"], "nps": [9.0, None, None],
                                            "tickets": [0.0, 2.0, None], "sentiment": ["positive", None, None]}
    assert fbm.customer_feedback(f, {"feedback": {}}) is None and fbm.feedback_sources({}) == {}


def test_customer_feedback_from_events_latest_answer_and_ticket_counts() -> None:
    ts = [dt.datetime(2024, 1, d, tzinfo=UTC) for d in (1, 5, 2, 3, 4, 6)]
    ev = pl.DataFrame({"customer_id": ["a", "a", "b", "a", "a", "b"], "timestamp": ts,
                       "event": ["nps_response", "nps_response", "nps_response", "support_ticket", "support_ticket", "login"],
                       "value": [3.0, 10.0, 7.0, None, None, None]})
    f = pl.DataFrame({"customer_id": ["a", "b", "c"]})
    cfg = {"feedback": {"events": {"nps": "nps_response", "tickets": "support_ticket"}}}
    out = fbm.customer_feedback(f, cfg, ev)
    assert out.to_dict(as_series=False) == {"customer_id": ["a", "b", "c"], "nps": [10.0, 7.0, None],
                                            "tickets": [2.0, 0.0, 0.0]}
    with pytest.raises(ConfigError, match="no event log was read"):
        fbm.customer_feedback(f, cfg, None)


def test_a_declared_column_missing_names_file_column_and_fix() -> None:
    f = pl.DataFrame({"customer_id": ["a"], "nps_scor": [9]})
    with pytest.raises(DataError) as err:
        fbm.customer_feedback(f, {"feedback": {"nps": "nps_score"}}, where="data/customers.csv")
    msg = str(err.value)
    assert msg.startswith("data/customers.csv: column 'nps_score' (feedback.nps) is not in the customer table")
    assert "The closest is 'nps_scor'." in msg and "Fix: set feedback.nps to one of these columns" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("values, signal, needle", [
    ([9, 11], "nps", "outside the allowed whole numbers from 0 to 10"),
    ([9.5, 3], "nps", "outside the allowed whole numbers from 0 to 10"),
    ([-1, 2], "tickets", "outside the allowed counts of 0 or more"),
    (["good", "4"], "csat", "not numbers (e.g. 'good')"),
])
def test_bad_feedback_values_stop_with_the_column_named(values, signal, needle) -> None:
    f = pl.DataFrame({"customer_id": ["a", "b"], "col": values}, strict=False)
    with pytest.raises(DataError, match="feedback." + signal) as err:
        fbm.customer_feedback(f, {"feedback": {signal: "col"}}, where="c.csv")
    assert needle in str(err.value) and str(err.value).startswith("c.csv: ")


def test_preflight_check_reads_the_header_and_the_event_names(tmp_path) -> None:
    cust = tmp_path / "customers.csv"
    cust.write_text("CustomerID,NPS,tickets\n1,9,0\n", encoding="utf-8")
    ev = tmp_path / "events.csv"
    ev.write_text("customer_id,timestamp,event,value\n1,2024-01-01,nps_response,9\n1,2024-01-02,login,\n", encoding="utf-8")
    base = {"data": {"customers": {"path": str(cust), "columns": {"customer_id": "CustomerID", "nps_score": "NPS"}},
                     "events": {"path": str(ev), "columns": {"customer_id": "customer_id", "timestamp": "timestamp",
                                                             "event": "event", "value": "value", "session_id": None}}}}
    fbm.check_feedback_sources({**base, "feedback": {"nps": "nps_score", "tickets": "tickets"}})  # renamed column found
    with pytest.raises(DataError, match=r"customers.csv: column 'csat' \(feedback.csat\) is not in the customer table"):
        fbm.check_feedback_sources({**base, "feedback": {"csat": "csat"}})
    fbm.check_feedback_sources({**base, "feedback": {"events": {"nps": "nps_response"}}})
    with pytest.raises(DataError, match=r"no event is named 'support_ticket' \(feedback.events.tickets\); the log's "
                                        r"events are: login, nps_response"):
        fbm.check_feedback_sources({**base, "feedback": {"events": {"tickets": "support_ticket"}}})


def test_config_checks_the_feedback_section() -> None:
    from segmentation_lib.config import resolve_config

    assert resolve_config({})["feedback"]["nps"] is None
    with pytest.raises(ConfigError) as err:
        resolve_config({"feedback": {"nps": 5, "confidence": 1.5, "min_responses": 0}})
    msg = str(err.value)
    assert "feedback.nps is 5" in msg and "feedback.confidence is 1.5" in msg and "feedback.min_responses is 0" in msg
    with pytest.raises(ConfigError, match="feedback.events names events but data.events.path is null"):
        resolve_config({"feedback": {"events": {"tickets": "support_ticket"}}})
    with pytest.raises(ConfigError, match="feedback.tickets and feedback.events.tickets both give the tickets signal"):
        resolve_config({"data": {"customers": {"path": "c.csv"}, "events": {"path": "e.csv"}},
                        "feedback": {"tickets": "n", "events": {"tickets": "support_ticket"}}})


def test_free_text_is_refused_as_sentiment() -> None:
    f = pl.DataFrame({"customer_id": [str(i) for i in range(20)], "mood": [f"comment {i}" for i in range(20)]})
    with pytest.raises(DataError, match=r"c.csv: column 'mood' \(feedback.sentiment\) holds 20 distinct labels"):
        fbm.customer_feedback(f, {"feedback": {"sentiment": "mood"}}, where="c.csv")
    ok = f.with_columns(pl.Series("mood", ["positive", "negative"] * 10))
    assert fbm.customer_feedback(ok, {"feedback": {"sentiment": "mood"}})["sentiment"].n_unique() == 2
