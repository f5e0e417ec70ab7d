"""segmentation_lib.score.scoring and `segment score`: a saved model scores a new transaction log or feature
table; nobody is dropped."""
from __future__ import annotations

import polars as pl
import pytest
from typer.testing import CliRunner

from segmentation_lib.cli import app
from segmentation_lib.segment.clustering import CustomerSegmenter
from segmentation_lib.features.customer import customer_features
from segmentation_lib.score.persistence import save_model
from segmentation_lib.score.scoring import score_file

AS_OF = "2025-01-01"


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_project):
    """A model fitted on the session's demo project (1,500 customers); outputs go to this module's own folder."""
    root = tmp_path_factory.mktemp("score")
    paths = demo_project.paths
    tx = pl.read_parquet(paths["transactions"]).filter(pl.col("customer_id").is_not_null())
    feats = customer_features(tx, as_of=AS_OF)
    model = CustomerSegmenter(n_segments=4, random_state=0).fit(feats)
    model_path = root / "model.joblib"
    save_model(model, model_path)
    return root, paths, feats, model, model_path


def test_scoring_a_transaction_log_reproduces_the_model_labels(trained):
    root, paths, feats, model, model_path = trained
    msg = score_file(model_path, paths["transactions"], root / "scores.parquet", as_of=AS_OF)
    scores = pl.read_parquet(root / "scores.parquet")
    assert "1,500 customers" in msg
    expected = pl.DataFrame({"customer_id": feats["customer_id"], "expected": model.predict(feats)})
    joined = scores.join(expected, on="customer_id", how="inner")
    assert joined.height == feats.height == scores.height
    assert (joined["segment"] == joined["expected"]).all()


def test_scoring_a_feature_table_keeps_customers_whose_features_are_missing(trained):
    root, _, feats, model, model_path = trained
    broken = feats.head(10).with_columns(
        pl.when(pl.int_range(pl.len()) < 2).then(None).otherwise(pl.col("n_orders")).alias("n_orders"))
    table = root / "features.parquet"
    broken.write_parquet(table)
    out = root / "scores.csv"
    score_file(model_path, table, out)
    scores = pl.read_csv(out)
    assert scores.height == 10
    not_scored = scores.filter(pl.col("segment").is_null())
    assert not_scored.height == 2
    assert all("n_orders" in s for s in not_scored["status"])


def test_cli_score_writes_the_output_and_reports_bad_paths(trained):
    root, paths, _, _, model_path = trained
    runner = CliRunner()
    ok = runner.invoke(app, ["score", "--model", str(model_path), "--data", str(paths["transactions"]),
                             "--out", str(root / "cli.parquet"), "--as-of", AS_OF])
    assert ok.exit_code == 0, ok.output
    assert (root / "cli.parquet").is_file()
    bad = runner.invoke(app, ["score", "--model", str(root / "missing.joblib"), "--data", str(paths["transactions"]),
                              "--out", str(root / "x.parquet")])
    assert bad.exit_code == 2
    assert "not found" in bad.output and "Traceback" not in bad.output
    wrong_ext = runner.invoke(app, ["score", "--model", str(model_path), "--data", str(paths["transactions"]),
                                    "--out", str(root / "x.xlsx")])
    assert wrong_ext.exit_code == 2 and ".parquet or .csv" in wrong_ext.output


def test_customers_with_no_usable_rows_are_listed_with_a_reason(trained, tmp_path):
    _, _, _, _, model_path = trained
    log = tmp_path / "log.csv"
    log.write_text("customer_id,timestamp,amount\nx,2024-01-02,10.0\nx,2024-02-02,25.0\nzero,2024-01-02,0\n")
    score_file(model_path, log, tmp_path / "s.csv")
    scores = pl.read_csv(tmp_path / "s.csv")
    assert sorted(scores["customer_id"].to_list()) == ["x", "zero"]
    zero = scores.filter(pl.col("customer_id") == "zero").row(0, named=True)
    assert zero["segment"] is None and zero["status"].startswith("not scored: no usable rows")


def test_cli_score_bad_output_folder_model_file_and_columns_are_clear(trained, tmp_path):
    root, paths, _, _, model_path = trained
    runner = CliRunner()
    blocker = tmp_path / "tiny.csv"
    blocker.write_text("cust,timestamp,amount\nx,2024-01-02,10\n")
    under_file = runner.invoke(app, ["score", "-m", str(model_path), "-d", str(paths["transactions"]),
                                     "-o", str(blocker / "o.csv")])
    assert under_file.exit_code == 2 and "Traceback" not in under_file.output
    assert f"'{blocker}': a file is in the way where a folder is expected" in under_file.output
    csv_model = runner.invoke(app, ["score", "-m", str(blocker), "-d", str(blocker), "-o", str(tmp_path / "o.csv")])
    assert csv_model.exit_code == 2
    assert "not a model saved by `segment run` (model.joblib)" in csv_model.output
    assert "ModuleNotFoundError" not in csv_model.output
    no_config = runner.invoke(app, ["score", "-m", str(model_path), "-d", str(blocker), "-o", str(tmp_path / "o.csv")])
    assert no_config.exit_code == 2
    assert "column 'customer_id'" in no_config.output
    assert "Fix: pass --config with the configuration of the run that saved the model" in no_config.output


def test_scoring_a_short_extract_warns_that_features_need_the_history(trained, tmp_path):
    root, paths, feats, model, model_path = trained
    full = score_file(model_path, paths["transactions"], tmp_path / "full.parquet", as_of=AS_OF)
    assert "Warning" not in full  # the training log itself: the same segment sizes
    tx = pl.read_parquet(paths["transactions"])
    tx.filter(pl.col("timestamp") >= pl.datetime(2024, 12, 1, time_zone="UTC")).write_parquet(tmp_path / "dec.parquet")
    short = score_file(model_path, tmp_path / "dec.parquet", tmp_path / "dec_scores.parquet", as_of=AS_OF)
    assert "Warning: the segment sizes differ strongly from the training run" in short
    assert "whole history" in short


def test_scoring_a_log_adds_the_runs_predicted_value_columns(trained):
    # the same predict.* defaults as a run: P(alive), expected purchases, spend, CLV, churn risk, value cell
    from segmentation_lib.config import resolve_config
    from segmentation_lib.data.quality import load_transactions
    from segmentation_lib.features.btyd import btyd_summary
    from segmentation_lib.segment.predicted import predicted_segments

    root, paths, feats, model, model_path = trained
    score_file(model_path, paths["transactions"], root / "scores_pv.parquet", as_of=AS_OF)
    scores = pl.read_parquet(root / "scores_pv.parquet")
    for col in ("p_alive", "expected_purchases_30d", "expected_spend", "clv_12m", "churn_risk", "value_churn"):
        assert col in scores.columns, col
    buyers = feats.filter(pl.col("first_purchase").is_not_null())["customer_id"]
    predicted = scores.filter(pl.col("customer_id").is_in(buyers.implode()))
    assert predicted.height == buyers.len() and predicted["p_alive"].null_count() == 0
    assert predicted["p_alive"].is_between(0, 1).all()
    # the very numbers the run's value stage computes from the same log and settings
    cfg = resolve_config({"data": {"path": str(paths["transactions"])}, "run": {"as_of": AS_OF}})
    tx, _ = load_transactions(cfg)  # the cleaned log, as scoring reads it
    buying = tx.filter(pl.col("amount") > 0).select("customer_id").unique()
    expected, _, _ = predicted_segments(btyd_summary(tx.join(buying, on="customer_id", how="semi"), AS_OF),
                                        cfg["predict"])
    got = predicted.select("customer_id", "clv_12m").join(expected.select("customer_id", pl.col("clv_12m").alias("x")),
                                                          on="customer_id")
    assert got.height == buyers.len() and (got["clv_12m"] - got["x"]).abs().max() < 1e-9


def test_a_log_too_small_for_the_models_is_still_scored(trained, tmp_path):
    root, paths, feats, model, model_path = trained
    tx = pl.read_parquet(paths["transactions"]).filter(pl.col("customer_id").is_in(feats["customer_id"].head(3).implode()))
    tx.write_parquet(tmp_path / "tiny.parquet")
    msg = score_file(model_path, tmp_path / "tiny.parquet", tmp_path / "tiny_scores.parquet", as_of=AS_OF)
    assert "Predicted value:" in msg and "not computed for this log" in msg
    assert pl.read_parquet(tmp_path / "tiny_scores.parquet").height == 3


def test_cli_score_refuses_unrecorded_or_tampered_models_unless_trusted(trained, tmp_path):
    import shutil

    root, paths, feats, model, model_path = trained
    runner = CliRunner()
    loose = tmp_path / "model.joblib"  # a copy without the manifest.json that records its hash
    shutil.copy(model_path, loose)
    args = ["score", "-m", str(loose), "-d", str(paths["transactions"]), "--as-of", AS_OF]
    refused = runner.invoke(app, [*args, "-o", str(tmp_path / "refused.parquet")])
    assert refused.exit_code == 2 and "Traceback" not in refused.output
    assert "is not recorded in" in refused.output and "--trust-model" in refused.output
    assert not (tmp_path / "refused.parquet").exists()
    trusted = runner.invoke(app, [*args, "--trust-model", "-o", str(tmp_path / "trusted.parquet")])
    assert trusted.exit_code == 0, trusted.output
    ok = runner.invoke(app, ["score", "-m", str(model_path), "-d", str(paths["transactions"]), "--as-of", AS_OF,
                             "-o", str(tmp_path / "ok.parquet")])
    assert ok.exit_code == 0, ok.output
    assert pl.read_parquet(tmp_path / "trusted.parquet").equals(pl.read_parquet(tmp_path / "ok.parquet"))
    data = bytearray(loose.read_bytes())
    data[-100] ^= 0x10
    shutil.copy(model_path.parent / "manifest.json", tmp_path / "manifest.json")  # the record of the intact file
    loose.write_bytes(bytes(data))
    tampered = runner.invoke(app, [*args, "-o", str(tmp_path / "tampered.parquet")])
    assert tampered.exit_code == 2 and "has changed since it was saved" in tampered.output
    assert "--trust-model" in runner.invoke(app, ["score", "--help"]).output


def test_data_files_passed_as_the_model_are_named(tmp_path):
    import zipfile

    from segmentation_lib.errors import ModelError
    from segmentation_lib.score.scoring import check_model_file

    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "x.parquet")
    with zipfile.ZipFile(tmp_path / "x.xlsx", "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
    with pytest.raises(ModelError, match="is a Parquet data file"):
        check_model_file(tmp_path / "x.parquet")
    with pytest.raises(ModelError, match="is an Excel"):
        check_model_file(tmp_path / "x.xlsx")
    (tmp_path / "half.joblib").write_bytes(b"PK\x03\x04" + b"\x00" * 50)  # a truncated model archive
    assert check_model_file(tmp_path / "half.joblib") is None  # left to the model loader (damaged file)


def test_scoring_a_log_with_integer_ids_keeps_them_integers(trained, tmp_path):
    """Issue 15: a warehouse export's integer customer and order ids stay integers through the quality
    step, the features, scoring and the file written; the segments are those of the same log as text."""
    root, paths, _, _, model_path = trained
    tx = pl.read_parquet(paths["transactions"]).filter(pl.col("customer_id").is_not_null())
    ints = tx.with_columns(pl.col("customer_id").str.strip_prefix("C").cast(pl.Int64) + 10**10,
                           pl.col("order_id").str.strip_prefix("O").cast(pl.Int64)).sort("timestamp")
    ints.write_parquet(tmp_path / "ints.parquet")
    score_file(model_path, tmp_path / "ints.parquet", tmp_path / "ints_scores.parquet", as_of=AS_OF)
    scores = pl.read_parquet(tmp_path / "ints_scores.parquet")
    assert scores.schema["customer_id"] == pl.Int64
    score_file(model_path, paths["transactions"], tmp_path / "text.parquet", as_of=AS_OF)
    text = pl.read_parquet(tmp_path / "text.parquet")
    assert text.schema["customer_id"] == pl.String  # strings stay strings
    text = text.with_columns(pl.col("customer_id").str.strip_prefix("C").cast(pl.Int64) + 10**10)
    joined = scores.join(text, on="customer_id", suffix="_text")
    assert joined.height == scores.height == text.height
    assert (joined["segment"] == joined["segment_text"]).all()
