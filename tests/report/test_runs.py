"""segmentation_lib.report.runs: finished and failed run folders, newest first."""
from __future__ import annotations

from pathlib import Path

from segmentation_lib.report import runs


def test_list_runs_newest_first_ignores_failed_and_tmp(tmp_path: Path) -> None:
    for name in ("2024-01-01_000000_aaaaaaaa", "2024-03-01_000000_bbbbbbbb", "failed-2024-04-01_000000_cccccccc",
                 ".tmp-dddddddd", "2024-05-01_000000_eeeeeeee"):
        (tmp_path / name).mkdir()
        if not name.startswith("2024-05"):  # a folder without index.html is not a finished run
            (tmp_path / name / "index.html").write_text("x")
    assert [p.name for p in runs.list_runs(tmp_path)] == ["2024-03-01_000000_bbbbbbbb", "2024-01-01_000000_aaaaaaaa"]
    assert [p.name for p in runs.list_failed_runs(tmp_path)] == ["failed-2024-04-01_000000_cccccccc"]
