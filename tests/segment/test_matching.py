"""segmentation_lib.segment.matching: Hungarian matching of a refit's segments to the previous run's."""
from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from segmentation_lib.errors import DataError
from segmentation_lib.segment.matching import match_segments, overlap_matrix, relabel_segmenter, remap_ids


def _t(ids, segs):
    return pl.DataFrame({"customer_id": list(ids), "segment": list(segs)})


def test_overlap_matrix_hand_counted():
    old = _t("abcdef", [0, 0, 1, 1, 2, -1])
    new = _t("abcdeg", [5, 5, 5, 7, 7, 7])
    m, new_ids, old_ids = overlap_matrix(old, new)
    assert new_ids == [5, 7] and old_ids == [0, 1, 2]
    assert m.tolist() == [[2, 1, 0], [0, 1, 1]]  # f is noise (-1) and g is new: neither counted


def test_permuted_segments_get_their_old_ids_and_names():
    old = _t("abcdefghi", [0, 0, 0, 1, 1, 1, 2, 2, 2])
    new = _t("abcdefghi", [2, 2, 2, 0, 0, 1, 1, 1, 1])  # one customer (f) moved from old 1 to old 2's successor
    m = match_segments(old, new, {0: "Loyal", 1: "Lapsed", 2: "New"}, {0: "X", 1: "Y", 2: "Z"})
    assert m.mapping == {0: 1, 1: 2, 2: 0}
    assert m.names == {0: "Loyal", 1: "Lapsed", 2: "New"}
    assert m.table["status"].to_list() == ["matched"] * 3
    assert m.table.filter(pl.col("new_id") == 1)["overlap"].item() == 3  # g, h, i of the 4 shared
    assert m.vanished == [] and m.summary["matched"] == 3


def test_split_new_and_vanished_are_named():
    old = _t("abcdefgh", [0, 0, 0, 0, 1, 1, 2, 2])
    # new 0 and new 1 both come from old 0 (a split); old 1's customers e, f are gone (it vanished);
    # new 2 holds only customers the old run did not have; new 3 is old 2
    new = _t("abcdghxyz", [0, 0, 0, 1, 3, 3, 2, 2, 2])
    m = match_segments(old, new, {0: "Loyal", 1: "Lapsed", 2: "Steady"}, {0: "A", 1: "B", 2: "C", 3: "D"})
    status = dict(zip(m.table["new_id"].to_list(), m.table["status"].to_list()))
    assert status == {0: "matched", 1: "split", 2: "new", 3: "matched"}
    names = dict(zip(m.table["new_id"].to_list(), m.table["name"].to_list()))
    assert names == {0: "Loyal", 1: "B (split from Loyal)", 2: "C (new)", 3: "Steady"}
    assert m.mapping == {0: 0, 1: 3, 2: 4, 3: 2}  # new ids after every old id
    assert m.vanished == [1] and m.summary["vanished_names"] == ["Lapsed"]


def test_min_overlap_refuses_a_weak_match():
    old = _t("abcd", [0, 1, 2, 3])
    new = _t("abcd", [0, 0, 0, 0])
    assert match_segments(old, new, {i: str(i) for i in range(4)}, {0: "A"}).table["status"].item() == "new"
    assert match_segments(old, new, {i: str(i) for i in range(4)}, {0: "A"}, min_overlap=0.25).table["status"].item() == "matched"


def test_bad_input_and_remap():
    with pytest.raises(DataError, match="segment"):
        match_segments(pl.DataFrame({"customer_id": ["a"]}), _t("a", [0]), {}, {})
    assert remap_ids(np.array([3, -1, 0]), {3: 0, 0: 3}).tolist() == [0, -1, 3]


def test_refit_on_snapshot_2_matches_back_to_the_old_ids():
    """A refit on the second snapshot (another seed, so its raw labels differ) takes over the first fit's ids:
    every planted archetype's segment keeps the id and name it had at the first snapshot."""
    from segmentation_lib.data.demo import make_snapshots
    from segmentation_lib.features.customer import customer_features
    from segmentation_lib.segment.clustering import CustomerSegmenter

    s = make_snapshots(n_customers=1200, seed=5)

    def feats(tx, as_of):
        tx = tx.filter(pl.col("customer_id").is_not_null()).unique(maintain_order=True)
        return customer_features(tx, dt.datetime.fromisoformat(as_of).replace(tzinfo=dt.timezone.utc))

    f1, f2 = feats(s.first.transactions, s.first.params["as_of"]), feats(s.second.transactions, s.second.params["as_of"])
    m1 = CustomerSegmenter(n_segments=7, random_state=1).fit(f1)
    m2 = CustomerSegmenter(n_segments=7, random_state=99, names={0: "Top", 1: "Second"}).fit(f2)
    # number the refit's segments the other way round (a refit owes the old numbering nothing)
    m2.label_order_, m2.labels_ = 6 - m2.label_order_, np.where(m2.labels_ >= 0, 6 - m2.labels_, m2.labels_)
    m2.segment_names_ = {6 - k: v for k, v in m2.segment_names_.items()}
    old = pl.DataFrame({"customer_id": f1["customer_id"], "segment": m1.labels_})
    new = pl.DataFrame({"customer_id": f2["customer_id"], "segment": m2.labels_})
    match = match_segments(old, new, m1.segment_names_, m2.segment_names_)
    relabel_segmenter(m2, match)
    truth = s.movements.select("customer_id", "archetype_before")

    def majority(labels, f):
        t = pl.DataFrame({"customer_id": f["customer_id"], "seg": labels}).join(truth, on="customer_id")
        return dict(t.group_by("archetype_before", "seg").len().sort("len", descending=True)
                    .group_by("archetype_before", maintain_order=True).first().select("archetype_before", "seg").iter_rows())

    before, after = majority(m1.labels_, f1), majority(m2.predict(f2), f2)
    for arch in ("power", "steady", "explorer", "dormant", "churned"):
        assert after[arch] == before[arch], (arch, before, after)
        assert m2.segment_names_[after[arch]] == m1.segment_names_[before[arch]]
    assert match.summary["matched"] >= 5
