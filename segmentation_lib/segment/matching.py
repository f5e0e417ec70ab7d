"""Matching a refit's segments to the previous run's by shared customers (Hungarian assignment).

A refit numbers and names its segments afresh. :func:`match_segments` builds the overlap matrix
(customers in new segment i and old segment j), solves the assignment that maximises the shared
customers (``scipy.optimize.linear_sum_assignment``) and returns, per new segment, the id and
name it keeps:

- ``matched``: the new segment takes over the old segment's id and name;
- ``split``: not matched, and most of its customers came from an old segment that was matched to
  another new segment: a new id, named ``"<name> (split from <old name>)"``;
- ``new``: neither: a new id (after every old id), named ``"<name> (new)"``.

Old segments no new segment was matched to are listed in ``vanished``. A match needs at least
``min_overlap`` of the new segment's shared customers (default 0.3); below it the pair is not
kept.

>>> import polars as pl
>>> old = pl.DataFrame({"customer_id": list("abcdef"), "segment": [0, 0, 0, 1, 1, 1]})
>>> new = pl.DataFrame({"customer_id": list("abcdef"), "segment": [1, 1, 1, 0, 0, 0]})
>>> m = match_segments(old, new, {0: "Loyal", 1: "Lapsed"}, {0: "A", 1: "B"})
>>> m.mapping
{0: 1, 1: 0}
>>> m.names
{0: 'Loyal', 1: 'Lapsed'}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import DataError


@dataclass
class SegmentMatch:
    """``mapping`` new id -> id kept; ``names`` kept id -> name; ``table`` one row per new segment
    (``new_id, new_name, id, name, status, overlap, overlap_share``); ``vanished`` old ids without a
    successor; ``summary`` counts."""

    mapping: dict[int, int]
    names: dict[int, str]
    table: pl.DataFrame
    vanished: list[int]
    summary: dict[str, Any]


def overlap_matrix(old: pl.DataFrame, new: pl.DataFrame, id_col: str = "customer_id",
                   segment_col: str = "segment") -> tuple[np.ndarray, list[int], list[int]]:
    """Customers shared by every (new segment, old segment) pair: the matrix, the new ids, the old ids.

    Negative ids (noise, no purchase) are left out.

    >>> o = pl.DataFrame({"customer_id": ["a", "b"], "segment": [0, 1]})
    >>> overlap_matrix(o, o)[0].tolist()
    [[1, 0], [0, 1]]
    """
    for name, t in (("old", old), ("new", new)):
        if id_col not in t.columns or segment_col not in t.columns:
            raise DataError(f"match_segments: the {name} assignments need columns '{id_col}' and '{segment_col}' "
                            f"(found {t.columns}). Fix: pass one row per customer with its segment id.")
    o = old.select(id_col, pl.col(segment_col).cast(pl.Int64).alias("old")).filter(pl.col("old") >= 0)
    n = new.select(id_col, pl.col(segment_col).cast(pl.Int64).alias("new")).filter(pl.col("new") >= 0)
    new_ids = sorted(n["new"].unique().to_list())
    old_ids = sorted(o["old"].unique().to_list())
    counts = n.join(o, on=id_col, how="inner").group_by("new", "old").len()
    m = np.zeros((len(new_ids), len(old_ids)), dtype=np.int64)
    ri = {v: i for i, v in enumerate(new_ids)}
    ci = {v: i for i, v in enumerate(old_ids)}
    for a, b, c in counts.iter_rows():  # one row per pair of segments (at most k x k), not per customer
        m[ri[a], ci[b]] = c
    return m, new_ids, old_ids


def match_segments(old: pl.DataFrame, new: pl.DataFrame, old_names: Mapping[int, str], new_names: Mapping[int, str],
                   id_col: str = "customer_id", segment_col: str = "segment", min_overlap: float = 0.3) -> SegmentMatch:
    """Match the new segments to the old ones by shared customers; see the module docstring."""
    from scipy.optimize import linear_sum_assignment

    m, new_ids, old_ids = overlap_matrix(old, new, id_col, segment_col)
    new_ids = sorted(set(new_ids) | {int(k) for k in new_names if int(k) >= 0})
    if m.shape[0] != len(new_ids):  # segments without shared customers: empty rows
        full = np.zeros((len(new_ids), m.shape[1]), dtype=np.int64)
        seen = sorted(new.select(pl.col(segment_col).cast(pl.Int64)).filter(pl.col(segment_col) >= 0)
                      .unique()[segment_col].to_list())
        for i, v in enumerate(seen):
            full[new_ids.index(v)] = m[i]
        m = full
    pairs: dict[int, int] = {}
    if m.size:
        rows, cols = linear_sum_assignment(m, maximize=True)
        row_tot = m.sum(axis=1)
        for r, c in zip(rows, cols):
            if m[r, c] > 0 and m[r, c] >= min_overlap * max(row_tot[r], 1):
                pairs[r] = c
    next_id = max([*old_ids, *[int(k) for k in old_names if int(k) >= 0], -1]) + 1
    matched_old = {old_ids[c] for c in pairs.values()}
    mapping: dict[int, int] = {}
    names: dict[int, str] = {}
    rows_out = []
    for r, nid in enumerate(new_ids):
        shared = int(m[r].sum()) if m.size else 0
        base = str(new_names.get(nid, f"Segment {nid}"))
        if r in pairs:
            oid = old_ids[pairs[r]]
            kept, name, status, ov = oid, str(old_names.get(oid, base)), "matched", int(m[r, pairs[r]])
        else:
            top = int(np.argmax(m[r])) if m.size and shared else None
            ov = int(m[r, top]) if top is not None else 0
            kept, next_id = next_id, next_id + 1
            if top is not None and old_ids[top] in matched_old and ov >= min_overlap * shared:
                status, name = "split", f"{base} (split from {old_names.get(old_ids[top], old_ids[top])})"
            else:
                status, name = "new", f"{base} (new)"
        mapping[nid] = kept
        names[kept] = name
        rows_out.append({"new_id": nid, "new_name": base, "id": kept, "name": name, "status": status,
                         "overlap": ov, "overlap_share": ov / shared if shared else None})
    vanished = sorted(o for o in old_ids if o not in matched_old)
    table = pl.DataFrame(rows_out, schema={"new_id": pl.Int64, "new_name": pl.String, "id": pl.Int64, "name": pl.String,
                                           "status": pl.String, "overlap": pl.Int64, "overlap_share": pl.Float64})
    summary = {"matched": int((table["status"] == "matched").sum()), "split": int((table["status"] == "split").sum()),
               "new": int((table["status"] == "new").sum()), "vanished": len(vanished),
               "vanished_names": [str(old_names.get(o, o)) for o in vanished]}
    return SegmentMatch(mapping, dict(sorted(names.items())), table, vanished, summary)


def relabel_segmenter(segmenter: Any, match: SegmentMatch) -> Any:
    """Give a fitted CustomerSegmenter the matched ids and names (its predictions follow); returns it.

    ``label_order_`` (raw model label -> segment id) is mapped through ``match.mapping``, so the saved
    model scores new customers with the kept ids; ``labels_`` and ``segment_names_`` follow.
    """
    lut = match.mapping
    segmenter.label_order_ = remap_ids(np.asarray(segmenter.label_order_), lut)
    if hasattr(segmenter, "labels_"):
        segmenter.labels_ = remap_ids(np.asarray(segmenter.labels_), lut)
    segmenter.segment_names_ = {int(k): v for k, v in sorted(match.names.items())}
    if hasattr(segmenter, "segment_shares_"):
        segmenter.segment_shares_ = {lut.get(int(k), int(k)): v for k, v in segmenter.segment_shares_.items()}
    return segmenter


def remap_ids(ids: np.ndarray, mapping: Mapping[int, int]) -> np.ndarray:
    """``ids`` with every id found in ``mapping`` replaced (negative ids and others unchanged; vectorised).

    >>> remap_ids(np.array([0, 1, -1, 2]), {0: 5, 1: 0}).tolist()
    [5, 0, -1, 2]
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.size == 0:
        return ids
    top = int(max(ids.max(), max(mapping, default=0))) + 1
    lut = np.arange(top, dtype=np.int64)
    for k, v in mapping.items():  # one entry per segment
        lut[int(k)] = int(v)
    return np.where(ids >= 0, lut[np.clip(ids, 0, None)], ids)
