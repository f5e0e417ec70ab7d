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
