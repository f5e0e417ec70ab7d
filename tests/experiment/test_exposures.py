"""Reading and checking the exposures table: every row left out is counted, bad input is one clear message."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.experiment.exposures import check_exposures, read_exposures

RAW = pl.DataFrame({
    "cid": ["1", "2", "2", "3", "3", "4", None, "5"],
    "arm": ["ctl", "B", "B", "ctl", "B", "ctl", "B", ""],
    "seen": ["2024-03-01 10:00", "2024-03-02", "2024-03-01", "2024-03-01", "2024-03-02", "not a date", "2024-03-01",
             "2024-03-01"],
})
MAP = {"customer_id": "cid", "variant": "arm", "exposure_time": "seen"}


def test_csv_with_a_column_mapping(tmp_path) -> None:
    path = tmp_path / "ex.csv"
    RAW.write_csv(path)
    clean, report = read_exposures(path, MAP, control="ctl")
    assert clean["customer_id"].to_list() == ["1", "2"]
    assert clean["variant"].cast(pl.String).to_list() == ["ctl", "B"]
    assert clean.filter(pl.col("customer_id") == "2")["exposure_time"].dt.day().item() == 1  # the first exposure
    assert report["rows_in"] == 8
    assert report["rows_without_id_variant_or_time"] == 3  # null id, empty variant, unreadable time
    assert (report["customers_in_several_variants"], report["customers_in_several_variants_examples"]) == (1, ["3"])
    assert report["repeat_exposures"] == 1 and list(report["variants"].items()) == [("ctl", 1), ("B", 1)]  # control first


def test_missing_column_names_the_file_and_the_setting(tmp_path) -> None:
    path = tmp_path / "ex.parquet"
    RAW.write_parquet(path)
    with pytest.raises(DataError, match=r"column 'arm2' \(experiment.columns.variant\) not found.*cid, arm, seen"):
        read_exposures(path, {**MAP, "variant": "arm2"}, control="ctl")


def test_unknown_control_and_single_variant() -> None:
    frame = RAW.rename({"cid": "customer_id", "arm": "variant", "seen": "exposure_time"})
    with pytest.raises(ConfigError, match="control variant 'control'.*experiment.control"):
        check_exposures(frame, control="control")
    only = frame.filter(pl.col("variant") == "ctl")
    with pytest.raises(DataError, match="only one variant"):
        check_exposures(only, control="ctl")


def test_missing_file_is_a_data_error(tmp_path) -> None:
    with pytest.raises(DataError, match="exposures file not found.*demo-experiment"):
        read_exposures(tmp_path / "nope.csv")


def test_given_outcome_without_a_value_names_the_column(tmp_path) -> None:
    frame = pl.DataFrame({"customer_id": ["a", "b"], "variant": ["control", "t"], "exposure_time": ["2024-01-01"] * 2,
                          "converted": ["1", "maybe"]})
    with pytest.raises(DataError, match="outcome column 'converted'"):
        check_exposures(frame, control="control")
