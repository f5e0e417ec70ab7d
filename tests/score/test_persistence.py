"""save_model / load_model / score_customers: round trip, versions, corrupt files, unseen customers."""
from __future__ import annotations

import joblib
import numpy as np
import polars as pl
import pytest

from segmentation_lib.segment.clustering import CustomerSegmenter
from segmentation_lib.errors import DataError, ModelError
from segmentation_lib.score.persistence import FORMAT_VERSION, ModelVersionWarning, data_fingerprint, load_model, read_model_file, save_model, score_customers

FEATURES = ["days_since_last", "n_orders", "total_spend", "avg_order_value", "mean_days_between", "tenure_days"]
CENTERS = np.array([[10, 30, 5000, 160, 12, 700], [40, 8, 600, 75, 45, 400], [300, 3, 150, 50, 120, 600]])


def customers(n_per=200, seed=0, prefix="C") -> tuple[pl.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(3), n_per)
    vals = CENTERS[truth] * rng.lognormal(0.0, 0.1, (truth.size, 6))
    df = pl.DataFrame({"customer_id": [f"{prefix}{i:04d}" for i in range(truth.size)]}).with_columns(
        [pl.Series(f, vals[:, j]) for j, f in enumerate(FEATURES)])
    return df, truth


@pytest.fixture(scope="module")
def model():
    return CustomerSegmenter(n_segments=3, names={2: "Sleepers"}).fit(customers()[0])


def test_round_trip_same_predictions_and_metadata(model, tmp_path):
    train = customers()[0]
    path = save_model(model, tmp_path / "m" / "model.joblib", training_fingerprint=data_fingerprint(train),
                      extra={"run": "demo"})
    assert path.is_file() and not (tmp_path / "m" / "model.joblib.partial").exists()
    loaded, meta = load_model(path, return_metadata=True)
    new = customers(seed=5, prefix="N")[0]
    assert np.array_equal(loaded.predict(new), model.predict(new))
    assert meta["feature_names"] == FEATURES
    assert meta["segment_names"][2] == "Sleepers" and loaded.segment_names_[2] == "Sleepers"
    assert meta["training_fingerprint"] == data_fingerprint(train)
    assert meta["extra"] == {"run": "demo"} and meta["n_segments"] == 3
    assert {"scikit-learn", "numpy", "polars", "segmentation-kit"} <= set(meta["versions"])
    assert read_model_file(path)["format_version"] == FORMAT_VERSION
    assert loaded.metadata_["created"].endswith("+00:00")
    assert not hasattr(loaded, "labels_") and hasattr(model, "labels_")  # training rows not saved


def test_version_difference_warns_clearly(model, tmp_path):
    path = save_model(model, tmp_path / "model.joblib")
    payload = joblib.load(path)
    payload["metadata"]["versions"]["scikit-learn"] = "0.1.0"
    joblib.dump(payload, path)
    with pytest.warns(ModelVersionWarning, match=r"scikit-learn 0\.1\.0 \(now "):
        load_model(path)


def test_newer_format_missing_and_corrupt_files(model, tmp_path):
    path = save_model(model, tmp_path / "model.joblib")
    payload = joblib.load(path)
    payload["format_version"] = FORMAT_VERSION + 1
    joblib.dump(payload, path)
    with pytest.raises(ModelError, match="format version 2"):
        load_model(path)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.joblib")
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"\x80\x04 this is not a pickle")
    with pytest.raises(ModelError, match="corrupt"):
        load_model(bad)
    other = tmp_path / "other.joblib"
    joblib.dump([1, 2, 3], other)
    with pytest.raises(ModelError, match="not a segmentation model"):
        load_model(other)
    with pytest.raises(ModelError, match="not fitted"):
        save_model(CustomerSegmenter(), tmp_path / "x.joblib")


def test_score_unseen_customers_and_report_unscorable(model, tmp_path):
    path = save_model(model, tmp_path / "model.joblib")
    new, truth = customers(n_per=50, seed=9, prefix="N")
    new = new.with_columns(
        pl.when(pl.col("customer_id") == "N0001").then(None).otherwise(pl.col("n_orders")).alias("n_orders"),
        pl.when(pl.col("customer_id") == "N0002").then(float("inf")).otherwise(pl.col("total_spend"))
        .alias("total_spend"),
        # one-time buyer: no gap, filled with tenure -> still scored
        pl.when(pl.col("customer_id") == "N0003").then(None).otherwise(pl.col("mean_days_between"))
        .alias("mean_days_between"),
    )
    out = score_customers(str(path), new)
    assert out.columns == ["customer_id", "segment", "segment_name", "is_noise", "status"]
    assert out.height == new.height and out["customer_id"].to_list() == new["customer_id"].to_list()
    bad = out.filter(pl.col("status") != "ok")
    assert bad["customer_id"].to_list() == ["N0001", "N0002"]
    assert bad["status"].to_list() == ["not scored: missing or invalid n_orders",
                                       "not scored: missing or invalid total_spend"]
    assert bad["segment"].null_count() == 2
    good = out.filter(pl.col("status") == "ok")
    keep = new["customer_id"].is_in(good["customer_id"].implode()).to_numpy()
    # model segments: 0 = highest spend = planted row 0 of CENTERS
    assert good["segment"].to_list() == truth[keep].tolist()
    assert good.filter(pl.col("segment") == 2)["segment_name"].unique().to_list() == ["Sleepers"]
    assert not good["is_noise"].any()


def test_score_missing_column_is_a_clear_error(model):
    with pytest.raises(DataError, match=r"\['tenure_days'\] not found"):
        score_customers(model, customers()[0].drop("tenure_days"))
    with pytest.raises(DataError, match="customer_id"):
        score_customers(model, customers()[0].drop("customer_id"))


def test_hdbscan_model_round_trip_flags_noise(tmp_path):
    train = customers(n_per=150)[0]
    seg = CustomerSegmenter(algorithm="hdbscan", hdbscan_min_cluster_size=40, clip_quantile=None).fit(train)
    loaded = load_model(save_model(seg, tmp_path / "h.joblib"))
    far = train.head(1).with_columns(pl.lit("FAR").alias("customer_id"), pl.lit(1e7).alias("total_spend"),
                                     pl.lit(1.0).alias("n_orders"))
    out = score_customers(loaded, pl.concat([train.head(3), far]))
    assert out["is_noise"].to_list() == [False, False, False, True]
    assert out["segment"].null_count() == 0  # noise="assign": nearest segment, flagged


def test_fingerprint_changes_with_data():
    a = customers(n_per=5)[0]
    assert data_fingerprint(a) == data_fingerprint(a.clone())
    assert data_fingerprint(a) != data_fingerprint(a.with_columns(pl.col("n_orders") + 1))
