"""segmentation_lib.report.runs: finished and failed run folders, newest first."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from segmentation_lib.report import runs


def test_list_runs_newest_first_ignores_failed_and_tmp(tmp_path: Path) -> None:
    for name in ("2024-01-01_000000_aaaaaaaa", "2024-03-01_000000_bbbbbbbb", "failed-2024-04-01_000000_cccccccc",
                 ".tmp-dddddddd", "2024-05-01_000000_eeeeeeee"):
        (tmp_path / name).mkdir()
        if not name.startswith("2024-05"):  # a folder without index.html is not a finished run
            (tmp_path / name / "index.html").write_text("x")
    (tmp_path / "failed-2024-04-01_000000_cccccccc" / "FAILED.txt").write_text("reason")
    (tmp_path / "failed-2024-06-01_000000_ffffffff").mkdir()  # no FAILED.txt (a full disk): not listed
    assert [p.name for p in runs.list_runs(tmp_path)] == ["2024-03-01_000000_bbbbbbbb", "2024-01-01_000000_aaaaaaaa"]
    assert [p.name for p in runs.list_failed_runs(tmp_path)] == ["failed-2024-04-01_000000_cccccccc"]


def dead_pid() -> int:
    """The pid of a process that has finished (and was reaped)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def tmp_run(out: Path, name: str, pid: int | None, host: str | None = None, age: float = 0.0) -> Path:
    """A temporary run folder with customer data in work/, owned by ``pid`` (None: no owner record)."""
    folder = out / f"{runs.TMP_PREFIX}{name}"
    (folder / "work").mkdir(parents=True)
    (folder / "work" / "features.parquet").write_bytes(b"customer data")
    if pid is not None:
        owner = {"pid": pid, "host": host or socket.gethostname(), "process_start": runs.process_start(pid)}
        (folder / runs.OWNER_FILE).write_text(json.dumps(owner))
    if age:
        os.utime(folder, (time.time() - age, time.time() - age))
    return folder


def test_stale_temporary_folders_and_files_are_found_and_removed(tmp_path: Path) -> None:
    from segmentation_lib.cli import app

    out = tmp_path / "reports"
    gone = dead_pid()
    killed = tmp_run(out, "aaaaaaaa", gone)
    live = tmp_run(out, "bbbbbbbb", os.getpid())
    elsewhere = tmp_run(out, "cccccccc", gone, host="another-host")
    starting = tmp_run(out, "dddddddd", None)
    ancient = tmp_run(out, "eeeeeeee", None, age=2 * runs.NO_OWNER_GRACE)
    half_index = out / f".index.html.{gone}.0123abcd.tmp"
    half_index.write_text("")
    writing = out / f".index.html.{os.getpid()}.4567abcd.tmp"
    writing.write_text("<html")
    found = {x.path.name: x for x in runs.leftovers(out)}
    assert {n for n, x in found.items() if x.stale} == {killed.name, ancient.name, half_index.name}
    assert f"process {gone} on {socket.gethostname()}" in found[killed.name].reason
    assert "still running" in found[live.name].reason and "another-host" in found[elsewhere.name].reason
    assert "a run may be starting" in found[starting.name].reason

    runner = CliRunner()
    dry = runner.invoke(app, ["clean", "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"Would remove {killed}, left by a run that was killed" in dry.output
    assert killed.is_dir() and half_index.is_file()  # a dry run removes nothing
    done = runner.invoke(app, ["clean", "--out", str(out)])
    assert done.exit_code == 0, done.output
    assert f"Removed {killed}" in done.output and "customer data" in done.output
    assert f"Kept {live}" in done.output
    assert not killed.exists() and not ancient.exists() and not half_index.exists()
    assert live.is_dir() and elsewhere.is_dir() and starting.is_dir() and writing.is_file()
    assert runner.invoke(app, ["clean", "--out", str(tmp_path / "empty")]).output.startswith("Nothing to clean")


def test_a_reused_pid_does_not_keep_a_stale_folder(tmp_path: Path) -> None:
    folder = tmp_run(tmp_path, "ffffffff", os.getpid())
    owner = json.loads((folder / runs.OWNER_FILE).read_text())
    owner["process_start"] = "1"  # this pid, but a process started at another time: the owner is gone
    (folder / runs.OWNER_FILE).write_text(json.dumps(owner))
    assert [x.path for x in runs.stale_leftovers(tmp_path)] == [folder]
