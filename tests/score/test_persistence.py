"""save_model / load_model / score_customers: round trip, versions, corrupt files, unseen customers."""
from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
import polars as pl
import pytest

from segmentation_lib.segment.clustering import CustomerSegmenter
from segmentation_lib.errors import DataError, ModelError
from segmentation_lib.score.persistence import (FORMAT_VERSION, ModelVersionWarning, data_fingerprint, load_model,
                                                 read_model_file, record_sha256, save_model, score_customers)

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


def rewrite(path, change):
    """Load the payload of a saved model file, apply ``change``, save it back and record its new hash."""
    import skops.io as sio

    payload = read_model_file(path)
    change(payload)
    sio.dump(payload, path)
    record_sha256(path)


def test_version_difference_warns_clearly(model, tmp_path):
    path = save_model(model, tmp_path / "model.joblib")
    rewrite(path, lambda p: p["metadata"]["versions"].__setitem__("scikit-learn", "0.1.0"))
    with pytest.warns(ModelVersionWarning, match=r"scikit-learn 0\.1\.0 \(now "):
        load_model(path)


def test_newer_format_missing_and_corrupt_files(model, tmp_path):
    path = save_model(model, tmp_path / "model.joblib")
    rewrite(path, lambda p: p.__setitem__("format_version", FORMAT_VERSION + 1))
    with pytest.raises(ModelError, match=f"format version {FORMAT_VERSION + 1}"):
        load_model(path)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nope.joblib")
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"\x80\x04 this is not a pickle")
    record_sha256(bad)
    with pytest.raises(ModelError, match="not in the kit's current model format"):
        load_model(bad)
    with pytest.raises(ModelError, match="corrupt"):
        load_model(bad, trust_model=True)
    other = tmp_path / "other.joblib"
    joblib.dump([1, 2, 3], other)
    with pytest.raises(ModelError, match="not a segmentation model"):
        load_model(other, trust_model=True)
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


# =========================================================================== model files that must not be opened


class Payload:
    """A type the kit never saves (skops refuses to build it unless trusted)."""

    def __init__(self, marker):
        self.marker = str(marker)


def hostile_pickle(path, marker):
    """Write a joblib/pickle file whose loading creates ``marker`` (and then returns a harmless dict)."""
    import pickle

    code = f"open({str(marker)!r}, 'w').write('pwned') and None or {{'format': 'segmentation_lib.model'}}"

    class Evil:
        def __reduce__(self):
            return (eval, (code,))

    path.write_bytes(pickle.dumps(Evil()))
    return path


def test_a_hostile_pickle_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "MARKER"
    evil = hostile_pickle(tmp_path / "model.joblib", marker)
    with pytest.raises(ModelError, match=r"not recorded in .*manifest\.json.*--trust-model"):
        load_model(evil)
    assert not marker.exists()
    record_sha256(evil)  # even with a (forged) matching record beside it, a pickle is not opened
    with pytest.raises(ModelError, match=r"older model file \(a joblib pickle, which can run code"):
        load_model(evil)
    with pytest.raises(ModelError):
        score_customers(str(evil), customers(n_per=2)[0])
    assert not marker.exists()


def test_a_skops_file_with_foreign_types_is_refused(tmp_path):
    import skops.io as sio
    from collections import Counter

    path = tmp_path / "model.joblib"
    sio.dump({"format": "segmentation_lib.model", "format_version": FORMAT_VERSION, "model": Payload("x")}, path)
    record_sha256(path)
    with pytest.raises(ModelError, match=r"holds types the kit never saves \(tests\.score\.test_persistence\.Payload\)"):
        load_model(path, trust_model=True)


def test_a_tampered_model_file_is_refused(model, tmp_path):
    path = save_model(model, tmp_path / "run" / "model.joblib")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"has changed since it was saved: its SHA-256 .* differs from the .* "
                                         r"recorded in .*manifest\.json"):
        load_model(path)


@pytest.mark.parametrize("damage", ["random", "truncated", "bitflip", "empty"])
def test_damaged_model_files_give_one_paragraph(model, tmp_path, damage):
    path = save_model(model, tmp_path / "model.joblib")
    data = path.read_bytes()
    rng = np.random.default_rng(0)
    damaged = {"random": rng.bytes(len(data)), "truncated": data[: len(data) // 2], "empty": b"",
               "bitflip": bytes(b ^ 0xFF if i % 997 == 500 else b for i, b in enumerate(data))}[damage]
    path.write_bytes(damaged)
    for trust in (False, True):  # refused by the hash check, and with trust_model by the reader: never a traceback
        with pytest.raises(ModelError) as err:
            load_model(path, trust_model=trust)
        text = str(err.value)
        assert "\n" not in text and str(path) in text and "Fix:" in text


def test_trusted_unrecorded_file_loads_and_scores_identically(model, tmp_path):
    import shutil

    saved = save_model(model, tmp_path / "a" / "model.joblib")
    loose = tmp_path / "b" / "copy.joblib"
    loose.parent.mkdir()
    shutil.copy(saved, loose)  # no manifest.json beside it
    with pytest.raises(ModelError, match="not recorded"):
        load_model(loose)
    new = customers(seed=3, prefix="T")[0]
    assert score_customers(load_model(loose, trust_model=True), new).equals(score_customers(model, new))
    assert score_customers(str(saved), new).equals(score_customers(model, new))


def test_saved_file_is_a_skops_archive_recorded_in_the_manifest(model, tmp_path):
    import json
    import zipfile

    from segmentation_lib.score.persistence import sha256_file

    path = save_model(model, tmp_path / "model.joblib")
    assert zipfile.is_zipfile(path) and "schema.json" in zipfile.ZipFile(path).namelist()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["sha256"] == {"model.joblib": sha256_file(path)}


def test_old_pickle_model_loads_only_when_trusted_and_converts(model, tmp_path):
    old = tmp_path / "old.joblib"
    joblib.dump({"format": "segmentation_lib.model", "format_version": 1, "metadata": {}, "model": model}, old)
    with pytest.raises(ModelError, match="not recorded"):
        load_model(old)
    loaded = load_model(old, trust_model=True)
    new = customers(seed=4, prefix="O")[0]
    assert np.array_equal(loaded.predict(new), model.predict(new))
    converted = save_model(loaded, tmp_path / "new.joblib")
    assert np.array_equal(load_model(converted).predict(new), model.predict(new))


@pytest.mark.parametrize("params", [
    {"algorithm": "kmeans", "k_range": (2, 4)},  # k from the sweep: the sweep table travels too
    {"algorithm": "gmm", "n_segments": 3},
    {"algorithm": "agglomerative", "n_segments": 3},
    {"algorithm": "hdbscan", "hdbscan_min_cluster_size": 40, "clip_quantile": None, "hdbscan_assign": "approximate_predict"},
], ids=lambda p: p["algorithm"])
def test_every_algorithm_round_trips_through_the_safe_format(params, tmp_path):
    train = customers(n_per=100)[0]
    seg = CustomerSegmenter(random_state=0, **params).fit(train)
    loaded = load_model(save_model(seg, tmp_path / "model.joblib"))
    new = customers(seed=11, prefix="R")[0]
    assert score_customers(loaded, new).equals(score_customers(seg, new))
    if seg.sweep_ is not None:
        assert loaded.sweep_.equals(seg.sweep_)


def test_a_run_folder_model_loads_without_arguments(model, tmp_path, monkeypatch):
    """The run's manifest.json (written last, over save_model's record) records the model's SHA-256."""
    import json

    import nbformat

    from segmentation_lib.report import pipeline
    from segmentation_lib.score.persistence import sha256_file

    def fake_notebook(src, dst, parameters, kernel_name, cwd, timeout=None):  # noqa: ARG001 - no kernel needed
        save_model(model, Path(parameters["run_dir"]) / "model.joblib")
        nbformat.write(nbformat.v4.new_notebook(), dst)

    monkeypatch.setattr(pipeline, "execute_notebook", fake_notebook)
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "a.ipynb")
    (tmp_path / "cfg.yaml").write_text("run: {name: model}\n", encoding="utf-8")
    run = pipeline.run_pipeline(tmp_path / "cfg.yaml", out_dir=tmp_path / "reports", progress=False,
                                notebooks=["a"], notebooks_dir=tmp_path, kernel_name="none").parent
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["sha256"]["model.joblib"] == sha256_file(run / "model.joblib")
    assert "manifest.json" not in manifest["sha256"] and manifest["files"].count("manifest.json") == 1
    new = customers(seed=6, prefix="M")[0]
    assert np.array_equal(load_model(run / "model.joblib").predict(new), model.predict(new))
