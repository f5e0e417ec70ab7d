"""Seeded, stratified samples of customers: the one sampler of the kit.

Both samplers draw one random key per row and keep, in every stratum, the rows with the smallest
keys up to the stratum's quota (:func:`smallest_keys_per_group`, no loop over rows); they differ
only in how strata and quotas are set:

- :func:`stratified_sample` (fitting samples): strata are quantile bins of a value such as total
  spend, quotas proportional to the bin sizes (largest remainders), so big spenders are represented
  in proportion;
- :func:`stratified_sample_indices` (metric samples): strata are the segments, quotas proportional
  with a floor per segment, so a small segment still has enough rows for a silhouette.

>>> idx = stratified_sample(1000, 100, strata=None, random_state=0)
>>> len(idx), len(set(idx.tolist()))
(100, 100)
"""
from __future__ import annotations

import numpy as np

#: tag mixed into the fitting-sample seed: data drawn with ``np.random.default_rng(seed)`` for the
#: same seed must not line up with the sample keys
_SAMPLE_STREAM = 0x5E6A


def smallest_keys_per_group(groups: np.ndarray, quota: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Sorted indices of the ``quota[g]`` rows with the smallest ``keys`` in each group ``g``
    (``groups`` are codes ``0..len(quota)-1``).

    >>> smallest_keys_per_group(np.array([0, 0, 1, 1]), np.array([1, 2]), np.array([0.9, 0.1, 0.5, 0.2])).tolist()
    [1, 2, 3]
    """
    n = groups.shape[0]
    counts = np.bincount(groups, minlength=len(quota))
    order = np.lexsort((keys, groups))
    starts = np.r_[0, np.cumsum(counts)[:-1]]
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    return np.flatnonzero(rank < quota[groups])


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
    keys = np.random.default_rng([int(random_state), _SAMPLE_STREAM]).random(n)
    if strata is None:
        return smallest_keys_per_group(np.zeros(n, dtype=np.int64), np.array([size]), keys)
    ranks = np.argsort(np.argsort(strata, kind="stable"), kind="stable")
    bins = (ranks * n_bins) // n
    counts = np.bincount(bins, minlength=n_bins)
    quota = np.floor(counts * size / n).astype(np.int64)
    short = size - quota.sum()  # hand out the remainder to the largest fractional parts
    frac = counts * size / n - quota
    quota[np.argsort(-frac, kind="stable")[:short]] += 1
    return smallest_keys_per_group(bins, quota, keys)


def subsample(n: int, size: int, random_state: int) -> np.ndarray:
    """A plain seeded sample (no strata) of ``size`` out of ``n`` rows; all rows when ``n <= size``."""
    return stratified_sample(n, size, None, random_state=random_state)


def stratified_sample_indices(
    labels: np.ndarray, sample_size: int, random_state: int = 0, min_per_segment: int | None = None
) -> np.ndarray:
    """Row indices of a sample stratified by label: proportional allocation, but every segment gets
    at least ``min_per_segment`` rows (default ``sample_size // (4 * k)``) or all its rows if smaller.

    >>> idx = stratified_sample_indices(np.array([0] * 990 + [1] * 10), 100)
    >>> int((np.array([0] * 990 + [1] * 10)[idx] == 1).sum())
    10
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n <= sample_size:
        return np.arange(n)
    keys = np.random.default_rng(random_state).random(n)
    uniq, inv, counts = np.unique(labels, return_inverse=True, return_counts=True)
    k = len(uniq)
    floor = max(2, sample_size // (4 * k)) if min_per_segment is None else min_per_segment
    alloc = np.maximum(np.floor(counts / n * sample_size).astype(int), np.minimum(counts, floor))
    alloc = np.minimum(alloc, counts)
    return smallest_keys_per_group(inv.ravel(), alloc, keys)
