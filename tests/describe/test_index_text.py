"""The run index's text: the run title, the sufficiency banner (one item per caution) and the export links."""
from __future__ import annotations

from segmentation_lib.describe.index_text import CAUTION_FIGURES, export_links, run_title, sufficiency_banner


def test_run_title() -> None:
    assert run_title({"run": {"name": "weekly crm"}, "data": {"path": "/x/orders.csv"}}) == "weekly crm"
    assert run_title({"run": {"name": "demo"}, "data": {"path": "/x/orders.csv"}}) == "orders"
    assert run_title({"run": {"name": ""}, "data": {"path": "/lake/eu/part-*.parquet"}}) == "eu"
    assert run_title({"run": {"name": "demo"}, "data": {"path": "/repo/data/demo/transactions.parquet"}}) == "demo"
    assert run_title({"run": {}, "data": {}}) == "run"


def test_banner_names_the_figures_of_every_check() -> None:
    from segmentation_lib.predict.sufficiency import check_data_sufficiency
    import polars as pl

    # one customer, one purchase long ago: every check of predict/sufficiency.py fires
    cautions = check_data_sufficiency(pl.DataFrame({"frequency": [0.0], "recency": [0.0], "T": [60.0]}), freq="D")
    banner = sufficiency_banner(cautions)
    assert [b["headline"] for b in banner] == ["Few purchasers", "Short history", "No recent orders",
                                               "Few customers with 3+ orders", "Few repeat buyers"]
    assert all(b["figures"] == CAUTION_FIGURES[b["headline"]] for b in banner)
    assert all("Fix:" not in b["finding"] and b["finding"] for b in banner)
    assert sufficiency_banner(["Something new"])[0]["figures"] == "the figures that depend on it"


def test_export_links() -> None:
    files = ["exports/behavioural/high_value_frequent.csv", "exports/behavioural/at_risk.csv", "exports/rfm/at_risk.csv",
             "exports/notes.txt"]
    assert export_links(["High value, frequent", "At Risk", "Lost"], files) == {
        "High value, frequent": "exports/behavioural/high_value_frequent.csv", "At Risk": "exports/behavioural/at_risk.csv"}
    assert export_links(["X"], []) == {}
