from __future__ import annotations

from pathlib import Path

import pytest

from segmentation_lib.config import load_config, resolve_config
from segmentation_lib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_config_loads_and_resolves_paths_against_its_folder():
    cfg = load_config(ROOT / "configs" / "default.yaml")
    assert cfg["data"]["path"] == str(ROOT / "data" / "demo" / "transactions.parquet")
    assert cfg["report"]["out_dir"] == str(ROOT / "reports")
    assert cfg["run"]["seed"] == 42


def test_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    cfg_file = tmp_path / "conf" / "run.yaml"
    cfg_file.parent.mkdir()
    cfg_file.write_text("data:\n  path: ../logs/tx.csv\n")
    monkeypatch.chdir(ROOT)
    a = load_config(cfg_file)
    monkeypatch.chdir(tmp_path)
    b = load_config(cfg_file)
    assert a["data"]["path"] == b["data"]["path"] == str(tmp_path / "logs" / "tx.csv")


def test_column_mapping_replaces_the_default_mapping_wholesale(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("data:\n  path: x.csv\n  columns: {customer_id: CustomerID, timestamp: InvoiceDate, amount: null}\n")
    cols = load_config(f)["data"]["columns"]
    assert cols == {"customer_id": "CustomerID", "timestamp": "InvoiceDate", "amount": None}


def test_unknown_key_is_rejected_with_a_suggestion(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("rfm:\n  binz: 4\n")
    with pytest.raises(ConfigError, match=r"unknown setting 'rfm.binz'.*Did you mean 'bins'"):
        load_config(f)


def test_bad_as_of_and_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        resolve_config({"run": {"as_of": "last tuesday"}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rfm: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_as_of_is_normalised_to_iso_date():
    assert resolve_config({"run": {"as_of": "2024-03-01"}})["run"]["as_of"] == "2024-03-01"


BAD_VALUES = """\
clustering:
  algorithm: kmean
  k: five
validation:
  holdout_days: 0
rfm:
  bins: 6
"""


def test_every_bad_value_is_reported_in_one_error_naming_file_key_value_and_allowed(tmp_path):
    f = tmp_path / "bad.yaml"
    f.write_text(BAD_VALUES)
    with pytest.raises(ConfigError) as info:
        load_config(f)
    msg = str(info.value)
    assert msg.startswith(f"{f}: 4 settings have invalid values: ")
    assert ("clustering.algorithm is 'kmean' (allowed: kmeans, minibatch_kmeans, gmm, agglomerative, hdbscan; "
            "did you mean 'kmeans'?)") in msg
    assert "clustering.k is 'five' (allowed: a whole number >= 2, or null)" in msg
    assert "validation.holdout_days is 0 (allowed: a whole number >= 1)" in msg
    assert "rfm.bins is 6 (allowed: 3, 4, 5, 10)" in msg
    assert "\n" not in msg  # one paragraph


@pytest.mark.parametrize("raw, bad_key", [
    ({"rfm": {"bins": 10}}, None),
    ({"rfm": {"bins": "5"}}, "rfm.bins"),
    ({"clustering": {"k": 4, "clip_quantile": None, "algorithm": "hdbscan"}}, None),
    ({"clustering": {"k": True}}, "clustering.k"),
    ({"clustering": {"k": 1}}, "clustering.k"),
    ({"clustering": {"k_range": [5, 2]}}, "clustering.k_range"),
    ({"clustering": {"min_k": 6, "max_k": 4}}, "clustering.min_k"),
    ({"clustering": {"sample_size": 500.5}}, "clustering.sample_size"),
    ({"features": {"windows": [30, "x"]}}, "features.windows"),
    ({"validation": {"holdout_days": -5}}, "validation.holdout_days"),
    ({"validation": {"method": "jackknife"}}, "validation.method"),
    ({"validation": {"min_fidelity": 1.5}}, "validation.min_fidelity"),
    ({"run": {"seed": "abc"}}, "run.seed"),
])
def test_single_values_are_checked_with_known_answers(raw, bad_key):
    if bad_key is None:
        resolve_config(raw)
    else:
        with pytest.raises(ConfigError, match=r"1 setting has an invalid value: " + bad_key.replace(".", r"\.")):
            resolve_config(raw)


def test_allowed_values_match_the_modules_that_use_them():
    from segmentation_lib.segment import clustering
    from segmentation_lib.segment import preprocessing
    from segmentation_lib.segment import rfm
    from segmentation_lib.config import CHOICES

    assert CHOICES["clustering.algorithm"] == tuple(clustering.ALGORITHMS)
    assert CHOICES["clustering.scaler"] == tuple(preprocessing.SCALERS)
    assert CHOICES["rfm.bins"] == tuple(rfm.ALLOWED_BINS)


def test_check_data_stops_on_bad_values_before_reading_data(tmp_path):
    from typer.testing import CliRunner

    from segmentation_lib.cli import app

    f = tmp_path / "bad.yaml"
    f.write_text(BAD_VALUES + "data:\n  path: does_not_matter.csv\n")
    result = CliRunner().invoke(app, ["check-data", "--config", str(f)])
    assert result.exit_code == 2
    assert "clustering.algorithm is 'kmean'" in result.output and "Traceback" not in result.output


def test_shipped_online_retail_config_loads() -> None:
    cfg = load_config(ROOT / "configs" / "online_retail.yaml")
    assert cfg["data"]["preset"] == "online_retail"
    assert cfg["data"]["path"] == str((ROOT / "data" / "online_retail_ii.csv").resolve())
    assert cfg["report"]["out_dir"] == str((ROOT / "reports").resolve())
    assert cfg["data"]["customers"]["path"] is None and cfg["data"]["truth"] is None


def test_predict_section_is_checked():
    from segmentation_lib.config import CHOICES
    from segmentation_lib.features.common import FREQS
    from segmentation_lib.predict.counts import COUNT_MODELS

    assert set(CHOICES["predict.model"]) == set(COUNT_MODELS) and CHOICES["predict.freq"] == tuple(FREQS)
    assert resolve_config({})["predict"]["model"] == "mbgnbd"
    for bad, key in (({"model": "bgnb"}, "predict.model"), ({"horizons": [0]}, "predict.horizons"),
                     ({"risk_cuts": [0.8, 0.2]}, "predict.risk_cuts"), ({"clv_months": 0}, "predict.clv_months")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            resolve_config({"predict": bad})


def test_rfm_cut_options_checked_at_load():
    from segmentation_lib.config import resolve_config
    ok = resolve_config({"rfm": {"bins": 4, "thresholds": {"recency": [30, 90, 180]},
                                 "filters": {"total_spend": {"min": 0}}}})
    assert ok["rfm"]["thresholds"] == {"recency": [30, 90, 180]}
    # a count per measure is a run setting too (the map of the largest count reads the others)
    per = resolve_config({"rfm": {"bins": {"recency": 5, "frequency": 3}, "percentiles": {"frequency": [0.3, 0.7]}}})
    assert per["rfm"]["bins"] == {"recency": 5, "frequency": 3, "monetary": 5}
    for bad_bins in ({"recency": 6}, {"spend": 5}, {"frequency": True}):
        with pytest.raises(ConfigError, match="rfm.bins is"):
            resolve_config({"rfm": {"bins": bad_bins}})
    with pytest.raises(ConfigError, match="makes 3 scores but rfm.bins gives frequency 5"):
        resolve_config({"rfm": {"bins": {"recency": 3}, "percentiles": {"frequency": [0.3, 0.7]}}})
    assert resolve_config({"rfm": {"bins": 4, "percentiles": [0.2, 0.5, 0.8]}})["rfm"]["percentiles"] == [0.2, 0.5, 0.8]
    for bad, text in [({"bins": {"spend": 5}}, "rfm.bins is"), ({"percentiles": [0.2, 0.5, 0.8]}, "makes 4 scores"),
                      ({"percentiles": [0.5, 1.2], "bins": 3}, "rfm.percentiles for recency"),
                      ({"filters": {"total_spend": {"min": 3, "max": 1}}}, "rfm.filters is")]:
        with pytest.raises(ConfigError, match=text):
            resolve_config({"rfm": bad})
