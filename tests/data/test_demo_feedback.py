"""The demo generator's optional feedback columns: off by default (outputs unchanged), planted NPS by archetype."""
from __future__ import annotations

import hashlib

import polars as pl

from segmentation_lib.data import demo
from segmentation_lib.validate.feedback import customer_feedback, feedback_by_segment


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_feedback_is_off_by_default_and_changes_nothing_else(tmp_path) -> None:
    plain = demo.write_demo_data(tmp_path / "a", n_customers=400, seed=5)
    off = demo.write_demo_data(tmp_path / "b", n_customers=400, seed=5, feedback=False)
    assert all(_digest(plain[k]) == _digest(off[k]) for k in ("transactions", "customers", "truth", "manifest"))
    assert pl.read_parquet(plain["customers"]).columns == ["customer_id", "plan_tier", "company_size", "region", "signup_date"]
    on = demo.make_transactions(n_customers=400, seed=5, feedback=True)
    base = demo.make_transactions(n_customers=400, seed=5)
    assert on.transactions.equals(base.transactions) and on.truth.equals(base.truth)  # its own random stream
    assert on.customers.drop("nps_score", "ticket_count", "sentiment").equals(base.customers)
    assert on.params["feedback"] is True and "feedback" not in base.params


def test_planted_nps_by_archetype_is_recovered() -> None:
    d = demo.make_transactions(n_customers=6000, seed=3, feedback=True)
    c = d.customers
    assert c.schema["nps_score"] == pl.Int64 and c["nps_score"].drop_nulls().is_between(0, 10).all()
    assert 0.2 < c["nps_score"].null_count() / c.height < 0.8  # missing answers
    assert (c["nps_score"].is_null() == c["sentiment"].is_null()).all()
    fb = customer_feedback(c, {"feedback": {"nps": "nps_score", "tickets": "ticket_count", "sentiment": "sentiment"}})
    out = feedback_by_segment(fb, d.truth, "archetype", confidence=0.999)
    t = {r["archetype"]: r for r in out.table.iter_rows(named=True)}
    for a, planted in demo.PLANTED_NPS.items():
        assert t[a]["nps_low"] <= planted <= t[a]["nps_high"], (a, planted, t[a]["nps"])
    assert demo.PLANTED_NPS["power"] == 70.0 and demo.PLANTED_NPS["churned"] == -45.0
    assert t["power"]["nps_coverage"] > 0.5 > t["churned"]["nps_coverage"]
    assert all(out.tests[s]["p_value"] < 1e-6 for s in ("nps", "tickets", "sentiment"))


def test_cli_demo_data_feedback_flag(tmp_path) -> None:
    from typer.testing import CliRunner

    from segmentation_lib.cli import app

    result = CliRunner().invoke(app, ["demo-data", "--out", str(tmp_path / "d"), "--n-customers", "50", "--feedback"])
    assert result.exit_code == 0, result.output
    cols = pl.read_parquet(tmp_path / "d" / "customers.parquet").columns
    assert cols[-3:] == ["nps_score", "ticket_count", "sentiment"]
