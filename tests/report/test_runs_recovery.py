"""Crash recovery: a `segment run` killed with SIGKILL leaves a temporary folder that the next run removes;
a full disk leaves a failed run readable or not at all, and no temporary file."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from segmentation_lib.errors import PipelineError
from segmentation_lib.report import html, pipeline, runs
from tests.conftest import kernel_pids

PARAMS = 'config_path = ""\nrun_dir = ""\nseed = 0\nrun_id = ""'


def notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "segmentation-kit", "display_name": "Python", "language": "python"}
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(c) for c in cells)]
    nbformat.write(nb, path)
    return path


def project(root: Path, notebook_path: Path) -> Path:
    (root / "tx.csv").write_text("customer_id,timestamp,amount\n1,2024-01-01,5\n", encoding="utf-8")
    cfg = root / f"{notebook_path.stem}.yaml"
    cfg.write_text(json.dumps({"run": {"name": "recovery"}, "data": {"path": "tx.csv"},
                               "report": {"notebooks": [str(notebook_path)]}}), encoding="utf-8")
    return cfg


def segment(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "segmentation_lib.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


@pytest.mark.slow
def test_a_killed_run_leaves_nothing_after_the_next_run(tmp_path: Path) -> None:
    slow = notebook(tmp_path / "slow.ipynb",
                    "import pathlib, time\npathlib.Path(run_dir, 'work').mkdir(exist_ok=True)\n"
                    "pathlib.Path(run_dir, 'work', 'customers.parquet').write_text('customer data')\n"
                    "pathlib.Path(run_dir, 'started').write_text('x')\ntime.sleep(120)")
    quick = notebook(tmp_path / "quick.ipynb", "x = 1")
    out = tmp_path / "reports"
    first = segment("run", "--config", str(project(tmp_path, slow)), "--out", str(out))
    deadline, tmp = time.monotonic() + 90, None
    while time.monotonic() < deadline and first.poll() is None and tmp is None:
        tmp = next((p for p in out.glob(".tmp-*") if (p / "started").is_file()), None)
        time.sleep(0.05)
    assert tmp is not None, first.communicate(timeout=30)
    assert json.loads((tmp / runs.OWNER_FILE).read_text())["pid"] == first.pid
    run_id = tmp.name[len(runs.TMP_PREFIX):]
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    for pid in kernel_pids(run_id):  # the killed run's kernel (its child) is orphaned: end it
        os.kill(pid, signal.SIGKILL)
    assert tmp.is_dir() and (tmp / "work" / "customers.parquet").is_file()  # what kill -9 leaves

    second = segment("run", "--config", str(project(tmp_path, quick)), "--out", str(out))
    stdout, stderr = second.communicate(timeout=180)
    assert second.returncode == 0, stderr
    assert f"Removed {tmp}, left by a run that was killed (process {first.pid}" in stderr
    assert "it could hold customer data" in stderr
    assert not tmp.exists() and not list(out.glob(".*"))  # no hidden folder or temporary file remains
    assert len(runs.list_runs(out)) == 1 and stdout.strip().endswith("index.html")


def fake_notebook_run(fail_after: int):
    """An ``execute_notebook`` stand-in: writes the notebook, and the ``fail_after``-th one half, then ENOSPC."""
    calls = {"n": 0}

    def run(src, dst, parameters, kernel_name, cwd, timeout=None):  # noqa: ARG001
        calls["n"] += 1
        text = Path(src).read_text(encoding="utf-8")
        if calls["n"] == fail_after:
            Path(dst).write_text(text[: len(text) // 2], encoding="utf-8")
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        Path(dst).write_text(text, encoding="utf-8")
        Path(parameters["run_dir"], "work").mkdir(exist_ok=True)
        Path(parameters["run_dir"], "work", "features.parquet").write_text("customer data")

    return run


def no_temporary_files(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if p.name.startswith(".") or p.name.endswith((".tmp", ".partial")))


def test_full_disk_in_a_notebook_keeps_a_readable_failed_run(tmp_path: Path, monkeypatch) -> None:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    for name in ("a_one", "b_two"):
        notebook(nbs / f"{name}.ipynb", "x = 1")
    cfg = project(tmp_path, nbs / "a_one.ipynb")
    monkeypatch.setattr(pipeline, "execute_notebook", fake_notebook_run(fail_after=2))
    out = tmp_path / "reports"
    with pytest.raises(OSError) as err:
        pipeline.run_pipeline(cfg, out_dir=out, progress=False, notebooks=["a_one", "b_two"], notebooks_dir=nbs,
                              kernel_name="none")
    failed = runs.list_failed_runs(out)
    assert len(failed) == 1 and "kept in" in err.value.kept_sentence and str(failed[0]) in err.value.kept_sentence
    # the half notebook is gone; history.json holds only the run's links (reference, previous run)
    assert sorted(p.name for p in failed[0].iterdir()) == ["FAILED.txt", "a_one.ipynb", "history.json"]
    assert "No space left on device" in (failed[0] / "FAILED.txt").read_text()
    assert all(html.readable_notebook(p) for p in failed[0].glob("*.ipynb"))
    assert f"{failed[0].name}/a_one.ipynb" in (out / "index.html").read_text()
    assert no_temporary_files(out) == []


def test_full_disk_everywhere_keeps_nothing_and_no_temporary_file(tmp_path: Path, monkeypatch) -> None:
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    notebook(nbs / "a_one.ipynb", "x = 1")
    cfg = project(tmp_path, nbs / "a_one.ipynb")
    out = tmp_path / "reports"
    real_write = Path.write_text

    def full_disk(self, data, *args, **kwargs):  # the disk fills while the run writes its last files
        if self.name in ("FAILED.txt", "manifest.json") or self.name.endswith(".tmp"):
            real_write(self, data[: len(data) // 3], *args, **kwargs)  # a partial write, then the error
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return real_write(self, data, *args, **kwargs)

    monkeypatch.setattr(pipeline, "execute_notebook", fake_notebook_run(fail_after=0))
    monkeypatch.setattr(Path, "write_text", full_disk)
    with pytest.raises(OSError) as err:
        pipeline.run_pipeline(cfg, out_dir=out, progress=False, notebooks=["a_one"], notebooks_dir=nbs,
                              kernel_name="none")
    assert err.value.kept_sentence.startswith("Nothing of this run was kept")
    assert [p.name for p in out.iterdir()] == []  # no failed folder, no index, no temporary file
    monkeypatch.undo()


def test_cli_says_what_an_interrupted_run_kept(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from segmentation_lib.cli import app

    nbs = tmp_path / "nbs"
    nbs.mkdir()
    notebook(nbs / "a_one.ipynb", "x = 1")
    cfg = project(tmp_path, nbs / "a_one.ipynb")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "execute_notebook", interrupted)
    monkeypatch.setattr(pipeline, "ensure_kernel", lambda: "none")
    result = CliRunner().invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "reports")])
    assert result.exit_code == 130
    failed = runs.list_failed_runs(tmp_path / "reports")
    text = " ".join(result.output.split())
    assert "nothing half-written" not in text and len(failed) == 1
    assert f"The unfinished run was kept in {failed[0]}, which holds FAILED.txt" in text
