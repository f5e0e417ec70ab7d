"""Stage timings (report/timings.py), the lazily read transactions and the shared feature table at the cutoff."""
from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from segmentation_lib.config import load_config
from segmentation_lib.paths import REPO_DIR
from segmentation_lib.report import stages
from segmentation_lib.report.context import RunContext
from segmentation_lib.report.timings import stage_timer, take_stage_times, timed, timed_stage, timing_dir

UTC = dt.timezone.utc


def _tx() -> pl.DataFrame:
    ts = [dt.datetime(2024, 1, 5, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC), dt.datetime(2024, 6, 1, tzinfo=UTC),
          dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 5, 20, tzinfo=UTC)]
    return pl.DataFrame({"customer_id": ["a", "a", "a", "b", "b"], "timestamp": ts,
                         "amount": [10.0, 20.0, 5.0, 7.0, 3.0], "order_id": ["1", "2", "3", "4", "5"]})


def test_stage_rows_are_taken_once_in_order(tmp_path) -> None:
    with stage_timer(tmp_path, "data"):
        pass
    assert timed(tmp_path, "sum", sum, [1, 2, 3]) == 6
    with pytest.raises(ZeroDivisionError), stage_timer(tmp_path, "fails"):
        1 / 0  # noqa: B018 - a failing stage is recorded too
    rows = take_stage_times(tmp_path)
    assert [r["stage"] for r in rows] == ["data", "sum", "fails"]
    assert all(set(r) >= {"stage", "seconds", "peak_mb"} and r["peak_mb"] > 0 for r in rows)
    assert take_stage_times(tmp_path) == []  # taken: the next notebook starts empty


def test_interactive_sessions_record_nothing(tmp_path) -> None:
    lab = RunContext(cfg={}, run_dir=tmp_path, seed=1, interactive=True)
    run = RunContext(cfg={}, run_dir=tmp_path, seed=1, interactive=False)
    assert timing_dir(lab) is None and timing_dir(run) == tmp_path / "work"

    @timed_stage("twice")
    def stage(ctx, x):
        return 2 * x

    assert stage(lab, 2) == 4 and take_stage_times(tmp_path / "work") == []
    assert stage(run, 3) == 6 and [r["stage"] for r in take_stage_times(tmp_path / "work")] == ["twice"]


def test_data_stage_reads_the_transactions_only_when_used(tmp_path) -> None:
    path = tmp_path / "tx.parquet"
    _tx().write_parquet(path)
    data = stages.DataStage(None, pl.DataFrame({"customer_id": ["a", "b"]}), {}, dt.datetime(2024, 7, 1, tzinfo=UTC), path)
    assert data._transactions is None  # noqa: SLF001 - nothing read yet
    assert data.scan("customer_id", "amount").collect_schema().names() == ["customer_id", "amount"]
    assert data.scan().select(pl.col("amount").sum()).collect().item() == 45.0
    assert_frame_equal(data.transactions, _tx())
    assert data.transactions is data.transactions  # read once, then kept


def test_feature_table_at_the_cutoff_is_computed_once_and_shared(tmp_path, monkeypatch) -> None:
    cfg = load_config(REPO_DIR / "configs" / "default.yaml",
                      overrides={"data": {"customers": {"path": None}, "truth": None}})
    ctx = RunContext(cfg=cfg, run_dir=tmp_path, seed=1, interactive=False)
    data = stages.DataStage(_tx(), pl.DataFrame({"customer_id": ["a", "b"]}), {}, dt.datetime(2024, 7, 1, tzinfo=UTC))
    cutoff = dt.datetime(2024, 4, 2, tzinfo=UTC)
    first = stages.cutoff_features(ctx, data, cutoff)
    expected = stages.features_at_cutoff(cfg, _tx().filter(pl.col("timestamp") < cutoff), cutoff)
    assert_frame_equal(first, expected)
    assert first.filter(pl.col("customer_id") == "a")["total_spend"].item() == 30.0  # the June purchase is after it
    assert first.filter(pl.col("customer_id") == "b")["n_orders"].item() == 1
    assert [p.name for p in ctx.work.glob("features_cutoff_*")] == ["features_cutoff_20240402T000000.parquet"]

    def no_recompute(*args, **kwargs):
        raise AssertionError("the cached table should have been read")

    monkeypatch.setattr(stages, "features_at_cutoff", no_recompute)
    assert_frame_equal(stages.cutoff_features(ctx, data, cutoff), first)  # the value page reads it back


def test_customer_totals_are_computed_once_per_run_and_shared(tmp_path, monkeypatch) -> None:
    """The RFM and the clustering pages sum the same per-customer totals: the second reads them back."""
    import segmentation_lib.describe.segment_stats as segment_stats_module

    cfg = load_config(REPO_DIR / "configs" / "default.yaml",
                      overrides={"data": {"customers": {"path": None}, "truth": None}})
    ctx = RunContext(cfg=cfg, run_dir=tmp_path, seed=1, interactive=False)
    data = stages.DataStage(_tx(), pl.DataFrame({"customer_id": ["a", "b"]}), {"rules": []},
                            dt.datetime(2024, 7, 1, tzinfo=UTC))
    assignments = pl.DataFrame({"customer_id": ["a", "b"], "rfm_segment": ["Champions", "At risk"],
                                "cluster_name": ["Big", "Small"]})
    rfm = stages.write_segment_stats(ctx, data, assignments, {"rfm": "rfm_segment"})
    totals = pl.read_parquet(ctx.work / stages.CUSTOMER_TOTALS_FILE).sort("customer_id")
    assert totals.rows() == [("a", 3, 35.0), ("b", 2, 10.0)]  # orders and spend by hand

    def no_recompute(*args, **kwargs):
        raise AssertionError("the totals of the run should have been read back")

    monkeypatch.setattr(segment_stats_module, "customer_totals", no_recompute)
    both = stages.write_segment_stats(ctx, data, assignments, {"behavioural": "cluster_name"})
    assert both.filter(pl.col("segmentation") == "rfm").equals(rfm)
    big = both.filter((pl.col("segmentation") == "behavioural") & (pl.col("segment") == "Big"))
    assert (big["customers"].item(), big["transactions"].item(), big["spend"].item()) == (1, 3, 35.0)
