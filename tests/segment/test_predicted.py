"""segmentation_lib.segment.predicted: the predicted value x churn-risk matrix and expected value per segment."""
from __future__ import annotations

import polars as pl
import pytest

from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.segment.predicted import (
    expected_value_by_segment, predicted_value_cut, predicted_value_matrix, predicted_value_summary)

T = pl.DataFrame({"customer_id": list("abcdef"), "clv_12m": [900.0, 800.0, 10.0, 20.0, 500.0, None],
                  "p_alive": [0.9, 0.1, 0.8, 0.2, 0.5, None], "s": ["x", "x", "y", "y", "y", "y"]})


def test_cells_mean_what_they_say() -> None:
    # median CLV of the five predicted customers = 500; "high" strictly above; likely active = P(alive) > 0.5
    assert predicted_value_cut(T) == 500.0
    cells = predicted_value_matrix(T)["value_churn"].to_list()
    assert cells == ["Champions", "At Risk", "Promising", "Dormant", "Dormant", None]
    with pytest.raises(ConfigError):
        predicted_value_matrix(T, alive_cut=1.0)
    with pytest.raises(DataError):
        predicted_value_matrix(T.drop("p_alive"))


def test_summary_and_value_per_segment_add_up() -> None:
    m = predicted_value_summary(predicted_value_matrix(T))
    assert m.select("value_churn", "customers", "expected_clv").rows() == [
        ("Champions", 1, 900.0), ("At Risk", 1, 800.0), ("Promising", 1, 10.0), ("Dormant", 2, 520.0)]
    assert m["share"].sum() == pytest.approx(1.0) and m["expected_clv_share"].sum() == pytest.approx(1.0)
    by = expected_value_by_segment(T, "s")
    assert by.select("s", "customers", "expected_clv", "no_prediction").rows() == [("x", 2, 1700.0, 0), ("y", 4, 530.0, 1)]
    assert by["expected_clv"].sum() == pytest.approx(T["clv_12m"].sum())
