"""segmentation_lib.features.common: customer ids sort as text (the order of every customer table)."""
from __future__ import annotations

import polars as pl


def test_customer_ids_sort_as_text_whatever_their_form():
    from segmentation_lib.features.common import sort_by_text

    ids = ["b", "ab", "a", "B", "a0", "Z9", "10", "9", "é", "x" * 20]
    for chosen in (ids[:8], ids):  # short ASCII ids use the integer key; the rest the text sort
        df = pl.DataFrame({"customer_id": chosen, "v": range(len(chosen))})
        assert sort_by_text(df, "customer_id").equals(df.sort("customer_id"))
