"""Chunked assignment (clustering.ASSIGN_CHUNK) labels every customer as the all-at-once path does."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from segmentation_lib.score.persistence import score_customers
from segmentation_lib.segment import clustering
from segmentation_lib.segment.clustering import CustomerSegmenter
from tests.segment.test_clustering import planted


def _fit(algorithm: str, chunk: int, monkeypatch: pytest.MonkeyPatch, data: pl.DataFrame) -> CustomerSegmenter:
    monkeypatch.setattr(clustering, "ASSIGN_CHUNK", chunk)
    return CustomerSegmenter(algorithm=algorithm, n_segments=4, sample_size=600, random_state=3).fit(data)


@pytest.mark.parametrize("algorithm", ["kmeans", "gmm", "agglomerative"])
def test_chunked_fit_labels_equal_all_at_once(algorithm: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data, truth = planted(seed=4)  # 1,500 customers, fitted on a 600-row sample, assigned in chunks of 7
    whole = _fit(algorithm, 10**9, monkeypatch, data)
    chunked = _fit(algorithm, 7, monkeypatch, data)
    assert np.array_equal(whole.labels_, chunked.labels_)
    assert whole.segment_names_ == chunked.segment_names_
    assert whole.segment_shares_ == chunked.segment_shares_
    # the planted segments are recovered (so the equality is not between two degenerate answers)
    agree = pl.DataFrame({"t": truth, "l": chunked.labels_}).group_by("t").agg(pl.col("l").mode().first(),
                                                                              pl.col("l").n_unique().alias("u"))
    assert agree["l"].n_unique() == 4


def test_chunked_scoring_equals_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    data, _ = planted(seed=5)
    seg = _fit("kmeans", 10**9, monkeypatch, data)
    whole = score_customers(seg, data)
    monkeypatch.setattr(clustering, "ASSIGN_CHUNK", 11)
    chunked = score_customers(seg, data)
    assert whole.equals(chunked)
    assert np.array_equal(chunked["segment"].to_numpy(), seg.labels_)  # scoring the training rows = fit labels


def test_chunked_surrogate_equals_all_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from segmentation_lib.segment import surrogate
    from segmentation_lib.segment.surrogate import SurrogateRules

    data, truth = planted(seed=6)
    whole = SurrogateRules(max_depth=3, features=list(data.columns[1:]), random_state=1).fit(data, truth)
    monkeypatch.setattr(surrogate, "PREDICT_CHUNK", 13)
    chunked = SurrogateRules(max_depth=3, features=list(data.columns[1:]), random_state=1).fit(data, truth)
    assert np.array_equal(whole.predict(data), chunked.predict(data))
    assert whole.fidelity_ == chunked.fidelity_ > 0.9 and whole.recall_ == chunked.recall_
    assert whole.rules_text() == chunked.rules_text()
