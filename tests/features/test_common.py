"""segmentation_lib.features.common: customer ids sort as text (the order of every customer table)."""
from __future__ import annotations

import polars as pl


def test_customer_ids_sort_as_text_whatever_their_form():
    from segmentation_lib.features.common import sort_by_text

    ids = ["b", "ab", "a", "B", "a0", "Z9", "10", "9", "é", "x" * 20]
    for chosen in (ids[:8], ids):  # short ASCII ids use the integer key; the rest the text sort
        df = pl.DataFrame({"customer_id": chosen, "v": range(len(chosen))})
        assert sort_by_text(df, "customer_id").equals(df.sort("customer_id"))


def test_row_pieces_split_between_customers_and_cover_every_row(monkeypatch):
    import numpy as np

    import segmentation_lib.features.common as common

    monkeypatch.setattr(common, "THREADS", 3)
    monkeypatch.setattr(common, "MIN_ROWS_PER_THREAD", 2)
    keys = (np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3], dtype=np.uint64) << np.uint64(4)) + np.uint64(1)
    cuts = common.run_starts_near(keys, 4)  # rows 3 and 6 are inside customers 1 and 2: cut at 3 and 5
    assert cuts == [3, 5]
    assert common.row_pieces(keys.size, cuts) == [slice(0, 3), slice(3, 5), slice(5, 10)]
    assert common.row_pieces(7) == [slice(0, 2), slice(2, 4), slice(4, 7)]
    assert common.in_threads(lambda s: s.start, common.row_pieces(7)) == [0, 2, 4]
    out = common.take_in_threads(np.arange(10) * 10, np.array([9, 0, 3, 3, 1, 2, 8]))
    assert out.tolist() == [90, 0, 30, 30, 10, 20, 80]
