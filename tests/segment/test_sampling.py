"""segmentation_lib.segment.sampling: stratified samples (proportional per spend decile, small segments kept,
a sample stream independent of data drawn with the same seed)."""
from __future__ import annotations

import numpy as np

from segmentation_lib.segment.sampling import stratified_sample, stratified_sample_indices


def test_stratified_sample_is_proportional_per_decile():
    strata = np.arange(1000.0)[::-1]
    idx = stratified_sample(1000, 100, strata, random_state=1)
    assert idx.size == 100 and np.unique(idx).size == 100
    # each spend decile (100 rows) gives exactly 10 rows
    assert np.bincount((strata[idx] // 100).astype(int), minlength=10).tolist() == [10] * 10
    assert np.array_equal(idx, stratified_sample(1000, 100, strata, random_state=1))


def test_sample_stream_independent_of_data_drawn_with_same_seed():
    # data drawn with default_rng(42) must not line up with the sample keys for random_state=42
    code = np.random.default_rng(42).choice(2, size=20_000, p=[0.5, 0.5])
    for strata in (None, np.arange(20_000.0)):
        idx = stratified_sample(20_000, 2_000, strata, random_state=42)
        assert abs(code[idx].mean() - code.mean()) < 0.04


def test_stratified_sample_keeps_small_segments():
    labels = np.r_[np.zeros(49_980, dtype=int), np.ones(20, dtype=int)]
    idx = stratified_sample_indices(labels, 2000, random_state=3)
    assert (labels[idx] == 1).sum() == 20  # all of the small segment (floor 2000 // 8 = 250 > 20)
    assert abs(idx.size - 2000) <= 25
    assert np.unique(idx).size == idx.size
    np.testing.assert_array_equal(idx, stratified_sample_indices(labels, 2000, random_state=3))
