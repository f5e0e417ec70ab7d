"""Seeded, stratified samples of customers (the one sampler of the kit).

>>> idx = stratified_sample(1000, 100, strata=None, random_state=0)
>>> len(idx), len(set(idx.tolist()))
(100, 100)
"""
from __future__ import annotations


import numpy as np


_SAMPLE_STREAM = 0x5E6A  # tag mixed into the sampling seed


# --------------------------------------------------------------------------------------------
# sampling
# --------------------------------------------------------------------------------------------
def stratified_sample(n: int, size: int, strata: np.ndarray | None = None, n_bins: int = 10,
                      random_state: int = 42) -> np.ndarray:
    """Sorted indices of a seeded sample of ``size`` rows out of ``n``, stratified by quantile bins.

    ``strata`` (e.g. total spend) is cut into ``n_bins`` quantile bins and each bin is sampled in
    proportion to its size. All rows are returned when ``n <= size``.

    >>> stratified_sample(10, 20).tolist() == list(range(10))
    True
    >>> len(stratified_sample(1000, 100, np.arange(1000.0)))
    100
    """
    if n <= size:
        return np.arange(n)
    # a stream of its own (seed mixed with a tag): data drawn with np.random.default_rng(seed) for the
    # same seed must not line up with the sample keys
    rng = np.random.default_rng([int(random_state), _SAMPLE_STREAM])
    keys = rng.random(n)
    if strata is None:
        return np.sort(np.argsort(keys, kind="stable")[:size])
    ranks = np.argsort(np.argsort(strata, kind="stable"), kind="stable")
    bins = (ranks * n_bins) // n
    counts = np.bincount(bins, minlength=n_bins)
    quota = np.floor(counts * size / n).astype(np.int64)
    short = size - quota.sum()  # hand out the remainder to the largest fractional parts
    frac = counts * size / n - quota
    quota[np.argsort(-frac, kind="stable")[:short]] += 1
    order = np.lexsort((keys, bins))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank_in_bin = np.arange(n) - start[bins[order]]
    chosen = order[rank_in_bin < quota[bins[order]]]
    return np.sort(chosen)


def subsample(n: int, size: int, random_state: int) -> np.ndarray:
    return stratified_sample(n, size, None, random_state=random_state)
