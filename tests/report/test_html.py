"""segmentation_lib.report.html: the shared reports index under several concurrent writers, atomic page writes."""
from __future__ import annotations

import errno
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from segmentation_lib.report import html, runs


def reports_folder(out: Path, n: int = 3) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        run = out / f"2024-0{i + 1}-01_000000_{i:08x}"
        run.mkdir(parents=True)
        (run / "index.html").write_text("x", encoding="utf-8")
    failed = out / "failed-2024-09-01_000000_ffffffff"
    failed.mkdir()
    (failed / "FAILED.txt").write_text("Notebook 03 failed", encoding="utf-8")
    return out


WRITER = """import sys
from segmentation_lib.report import html
for _ in range(int(sys.argv[2])):
    html.render_reports_index(sys.argv[1])
"""


def test_several_writers_of_the_reports_index_never_collide(tmp_path: Path) -> None:
    out = reports_folder(tmp_path / "reports")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(out), "15"], stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for _ in range(15):
                html.render_reports_index(out)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stderr = [p.communicate(timeout=120)[1] for p in procs]
    assert errors == [] and [p.returncode for p in procs] == [0, 0, 0], (errors, stderr)
    page = (out / "index.html").read_text(encoding="utf-8")
    assert page.rstrip().endswith("</html>") and "3 runs, newest first." in page
    assert "Notebook 03 failed" in page
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["index.html"]  # no temporary file left


def test_a_failed_page_write_leaves_the_old_page_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    out = reports_folder(tmp_path / "reports", n=1)
    html.render_reports_index(out)
    before = (out / "index.html").read_text(encoding="utf-8")
    (out / "2024-05-01_000000_0000000a").mkdir()
    (out / "2024-05-01_000000_0000000a" / "index.html").write_text("x")
    real = Path.write_text

    def full_disk(self, data, *args, **kwargs):
        real(self, "", *args, **kwargs)  # a 0-byte file, then the error
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        html.render_reports_index(out)
    monkeypatch.undo()
    assert (out / "index.html").read_text(encoding="utf-8") == before
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == ["index.html"]
    assert runs.stale_leftovers(out) == []


def test_failed_runs_link_only_to_whole_notebooks(tmp_path: Path) -> None:
    out = reports_folder(tmp_path / "reports", n=0)
    failed = out / "failed-2024-09-01_000000_ffffffff"
    (failed / "01_exploration.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    (failed / "02_rfm.ipynb").write_text('{"cells": [{"cell_type": "code", "sou')  # truncated by a full disk
    page = html.render_reports_index(out).read_text(encoding="utf-8")
    assert f"{failed.name}/01_exploration.ipynb" in page and "02_rfm.ipynb" not in page
