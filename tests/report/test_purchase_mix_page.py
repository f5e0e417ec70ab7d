"""The purchase-mix features through a run: `segment demo-data --categories --discounts`, the data stage
(features joined, report in data_quality.json), the exploration page's section (only when configured),
rules and clustering on the new columns; and the section's text on its own."""
from __future__ import annotations

import polars as pl
from typer.testing import CliRunner

from segmentation_lib.cli import app
from segmentation_lib.describe.purchase_mix_text import purchase_mix_markdown
from segmentation_lib.report import context, pages, stages
from segmentation_lib.segment.clustering import CustomerSegmenter
from segmentation_lib.segment.rules import assign_rule_segments

CONFIG = ("run: {name: mix, seed: 3}\n"
          "data:\n  path: data/transactions.parquet\n  customers: {path: null}\n  truth: null\n"
          "  columns: {customer_id: customer_id, timestamp: timestamp, amount: amount, order_id: order_id,\n"
          "            product_id: product_id, quantity: quantity, unit_price: unit_price%s}\n"
          "features: {categories: {top: 3}}\n")


def test_demo_mix_through_the_data_stage_and_the_exploration_page(tmp_path):
    res = CliRunner().invoke(app, ["demo-data", "--out", str(tmp_path / "data"), "--n-customers", "400", "--seed", "3",
                                   "--categories", "--discounts"])
    assert res.exit_code == 0, res.output
    (tmp_path / "mix.yaml").write_text(CONFIG % ", category: category, discount: discount", encoding="utf-8")
    (tmp_path / "plain.yaml").write_text(CONFIG % "", encoding="utf-8")

    ctx = context.open_run(tmp_path / "mix.yaml", tmp_path / "run-mix")
    data = stages.data_stage(ctx, recompute=True)
    f = data.features
    shares = [c for c in f.columns if c.startswith("spend_share_")]
    assert len(shares) == 5  # top 3, other, unknown
    assert f.select((pl.sum_horizontal(shares) - 1).abs().max()).item() < 1e-9
    assert f["dominant_category"].null_count() == 0 and data.quality["purchase_mix"]["customers"] == f.height
    # rules and clustering read the new columns like any other feature
    tiers = assign_rule_segments(f, {"rules": [{"name": "Bargain hunters", "when": "share_spend_on_discount > 0.4"}],
                                     "default": "Rest"})["segment"]
    assert set(tiers.unique().to_list()) == {"Bargain hunters", "Rest"}
    model = CustomerSegmenter(n_segments=3, random_state=0,
                              features=["total_spend", "n_orders", "share_spend_on_discount", shares[0]]).fit(f)
    assert len(set(model.predict(f).tolist())) == 3

    page = pages.ExplorationPage(ctx)
    text = str(page.purchase_mix())
    assert text.startswith("## Categories and discounts") and "spend\\_share\\_" in text and "on discount" in text

    # segment score computes the same columns from the log with the run's configuration
    from segmentation_lib.score.scoring import features_for_scoring

    scored, _ = features_for_scoring(tmp_path / "data" / "transactions.parquet", ["total_spend"], config=tmp_path / "mix.yaml")
    assert scored.select(shares, "share_spend_on_discount").equals(f.select(shares, "share_spend_on_discount"))

    plain = pages.ExplorationPage(context.open_run(tmp_path / "plain.yaml", tmp_path / "run-plain"))
    assert str(plain.purchase_mix()) == "" and "purchase_mix" not in plain.data.quality
    assert not any(c.startswith("spend_share_") for c in plain.data.features.columns)


def test_section_text_names_every_count():
    report = {"purchase_lines": 10,
              "categories": {"distinct": 3, "source": "data.products", "product_not_in_table": 2,
                             "top": [{"category": "*Toys*", "column": "spend_share_toys", "spend": 50.0, "share": 0.5}]},
              "discount": {"lines_on_discount": 4, "list_price_below_paid": 1}}
    features = pl.DataFrame({"customer_id": ["a", "b"], "dominant_category": ["*Toys*", None],
                             "share_spend_on_discount": [0.2, 0.6]})
    text = purchase_mix_markdown(report, features)
    assert "| \\*Toys\\* | spend\\_share\\_toys | 50 | 50.0% | 1 |" in text  # a user's name shows literally
    assert "4 of 10 purchase lines (40.0%)" in text and "median customer bought 40.0%" in text
    assert "- 2 whose product is missing from the product table" in text
    assert "- 1 with a list price below the paid unit price: counted as not on discount." in text
