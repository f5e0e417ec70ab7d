"""End to end: the whole workflow on real-shaped data and under failure, as the three kinds of user meet it.

- scheduled runs: `segment check-data` / `segment run` on a UCI Online Retail II-shaped CSV (configs/online_retail.yaml),
  bad input exiting 2 with a one-paragraph message, a run interrupted by SIGTERM / SIGINT leaving nothing half-written;
- stakeholders: complete run folders whose HTML holds no errors, also on the HDBSCAN path with noise;
- library users: the run folder's assignments cover every customer kept by the data checks.

The pipeline runs take ~20-30 s each (four notebooks on 1,500 customers); they are marked slow.
"""
from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from segmentation_lib.report import pipeline, runs
from segmentation_lib.cli import app
from tests.conftest import kernel_pids

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "configs" / "online_retail.yaml"
NOTEBOOKS = ("01_exploration", "02_rfm", "03_clustering", "04_validation", "05_value")
RUN_FILES = {"index.html", "manifest.json", "metrics.json", "assignments.parquet", "model.joblib", "data_quality.json",
             "rfm_edges.json", "segments.json"} | {f"{nb}.{ext}" for nb in NOTEBOOKS for ext in ("ipynb", "html")}
#: small but complete: every step runs, on fewer resamples / candidates
SMALL = {"clustering": {"k_range": [2, 6], "metric_sample_size": 1500, "n_init": 2},
         "validation": {"n_resamples": 3, "sample_size": 1500, "n_seeds": 1}}

runner = CliRunner()


# --------------------------------------------------------------------------- helpers and the Online Retail project


def write_config(path: Path, base: Path | None = None, **sections) -> Path:
    """``base`` (a shipped YAML) with ``sections`` merged over it (one level deep), written to ``path``."""
    cfg = yaml.safe_load(base.read_text(encoding="utf-8")) if base else {}
    for key, value in sections.items():
        cfg[key] = {**(cfg.get(key) or {}), **value} if isinstance(value, dict) else value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


def html_problems(html: str) -> list[str]:
    """Code cells, error output or tracebacks visible in a rendered report (empty list = clean)."""
    body = re.sub(r"<style.*?</style>|<script.*?</script>", "", html, flags=re.S)
    found = [w for w in ("Traceback", "Error", "application/vnd.jupyter.stderr", "jp-CodeMirrorEditor",
                         'class="highlight', "from segmentation_lib") if w in body]
    return found


#: figures a page shows at the least (the value page: the value x churn-risk matrix and the calibration plot)
MIN_FIGURES = {"05_value": 2}


def assert_complete_run(index: Path) -> tuple[Path, dict]:
    run = index.parent
    assert runs.RUN_DIR_RE.match(run.name) and index.is_file()
    assert RUN_FILES <= {p.name for p in run.iterdir()}, RUN_FILES - {p.name for p in run.iterdir()}
    assert not (run / "work").exists()
    for nb in NOTEBOOKS:
        html = (run / f"{nb}.html").read_text(encoding="utf-8")
        assert html_problems(html) == [], (nb, html_problems(html))
        assert html.count("<img") >= MIN_FIGURES.get(nb, 3), nb
    return run, json.loads((run / "metrics.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_project, online_retail_csv):
    """The session's demo project (1,500 customers, seed 7), its log as an Online Retail II CSV, a folder of this module's own."""
    tx = pl.read_parquet(demo_project.paths["transactions"])
    return {"root": tmp_path_factory.mktemp("e2e"), "paths": demo_project.paths, "tx": tx, "csv": online_retail_csv}


@pytest.fixture(scope="module")
def retail_cfg(demo):
    """configs/online_retail.yaml pointed at the converted CSV, with small sample sizes."""
    return write_config(demo["root"] / "online_retail.yaml", SHIPPED, data={"path": str(demo["csv"])},
                        report={"out_dir": "reports"}, **SMALL)


@pytest.fixture(scope="module")
def retail_run(demo, retail_cfg):
    """One full `segment run` on the Online Retail-shaped CSV (an earlier successful run for later tests)."""
    result = runner.invoke(app, ["run", "--config", str(retail_cfg)])
    assert result.exit_code == 0, result.output
    index = Path(result.stdout.strip().splitlines()[-1])
    return {"index": index, "out": demo["root"] / "reports"}


# --------------------------------------------------------------------------- fast checks


def _bad_input_cases(root: Path) -> dict[str, tuple[Path, list[str]]]:
    """name -> (config, words the message must contain)."""
    root.mkdir(exist_ok=True)
    good = "cust,ts,qty,price\n1,2024-01-02,2,3.5\n2,2024-01-03,1,9.0\n"
    (root / "missing.csv").write_text(good.replace(",price", "").replace(",3.5", "").replace(",9.0", ""), encoding="utf-8")
    (root / "empty.csv").write_bytes(b"")
    (root / "latin1.csv").write_bytes("cust,ts,qty,price,note\n1,2024-01-02,2,3.5,Tea\n3,2024-01-04,1,2.0,Caf\u00e9\n"
                                      .encode("cp1252"))
    mapping = {"customer_id": "cust", "timestamp": "ts", "amount": None, "quantity": "qty", "unit_price": "price",
               "order_id": None, "product_id": None}
    cases = {}
    for name, words in {"missing": ["missing.csv", "'price'", "unit_price"], "empty": ["empty.csv", "empty"],
                        "latin1": ["latin1.csv", "UTF-8", "encoding"]}.items():
        cfg = write_config(root / f"{name}.yaml", data={"path": f"{name}.csv", "columns": mapping},
                           report={"out_dir": "reports"})
        cases[name] = (cfg, words)
    unknown = write_config(root / "unknown.yaml", data={"path": "missing.csv", "colums": mapping})
    cases["unknown_key"] = (unknown, ["unknown.yaml", "data.colums", "columns"])
    return cases


def _assert_one_paragraph(result, words: list[str]) -> None:
    out = result.output
    assert result.exit_code == 2, (result.exit_code, out)
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    message = out[out.index("Error:"):].strip()
    assert "\n\n" not in message and "Fix" in message, message
    for word in words:
        assert word in message, (word, message)


@pytest.mark.parametrize("case", ["missing", "empty", "latin1", "unknown_key"])
def test_bad_input_check_data_exits_2_with_one_paragraph(tmp_path: Path, case: str) -> None:
    cfg, words = _bad_input_cases(tmp_path / "bad")[case]
    _assert_one_paragraph(runner.invoke(app, ["check-data", "--config", str(cfg)]), words)


@pytest.mark.slow
@pytest.mark.parametrize("case", ["missing", "unknown_key"])
def test_bad_input_scheduled_run_exits_2_with_one_paragraph(tmp_path: Path, case: str) -> None:
    """`segment run` (what cron calls): bad data found inside the first notebook is still exit 2, one paragraph."""
    cfg, words = _bad_input_cases(tmp_path / "bad")[case]
    result = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(tmp_path / "reports")])
    _assert_one_paragraph(result, words)
    assert runs.list_runs(tmp_path / "reports") == []
    if case == "missing":  # found by the preflight (pipeline.preflight) before any notebook ran: nothing kept
        assert "01_exploration" not in result.output and runs.list_failed_runs(tmp_path / "reports") == []


# --------------------------------------------------------------------------- whole pipeline (slow)


@pytest.mark.slow
def test_online_retail_check_data_and_run(demo, retail_cfg, retail_run) -> None:
    csv = pl.read_csv(demo["csv"], schema_overrides={"Invoice": pl.String, "StockCode": pl.String})
    n_cancel = csv.filter(pl.col("Invoice").str.starts_with("C")).height
    n_null = csv["Customer ID"].null_count()
    assert n_cancel > 100 and n_null > 0
    result = runner.invoke(app, ["check-data", "--config", str(retail_cfg)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line[:1].isalpha() and "  " in line}
    assert rows["returns"][0] == f"{n_cancel:,}" and "cancellation" in text  # counted, kept (net)
    assert rows["null_customer"][:2] == [f"{n_null:,}", f"{n_null:,}"]  # counted, dropped
    assert f"rows:      {csv.height:,} in" in text

    run, metrics = assert_complete_run(retail_run["index"])
    kept = set(csv["Customer ID"].drop_nulls().cast(pl.Int64).cast(pl.String))
    a = pl.read_parquet(run / "assignments.parquet")
    assert set(a["customer_id"]) == kept and a.height == len(kept) == metrics["customers"]  # "12870.0" -> "12870"
    assert a.select(pl.col("cluster", "cluster_name", "rfm_segment", "tier").null_count()).sum_horizontal().item() == 0
    man = json.loads((run / "manifest.json").read_text())
    assert man["configuration"]["data"]["preset"] == "online_retail"
    assert man["inputs"]["transactions"][0]["path"] == str(demo["csv"])
    assert str(retail_run["index"]) in (retail_run["out"] / "index.html").read_text() or \
        f"{run.name}/index.html" in (retail_run["out"] / "index.html").read_text()


@pytest.mark.slow
def test_hdbscan_with_noise_through_the_pipeline(demo) -> None:
    """HDBSCAN with noise labelled -1 ("Noise") runs through all four notebooks; the noise share is reported."""
    cfg = write_config(demo["root"] / "hdbscan.yaml",
                       run={"name": "hdbscan", "seed": 7},
                       data={"path": str(demo["paths"]["transactions"]), "truth": str(demo["paths"]["truth"])},
                       clustering={**SMALL["clustering"], "algorithm": "hdbscan", "noise": "label"},
                       validation=SMALL["validation"])
    result = runner.invoke(app, ["run", "--config", str(cfg), "--out", str(demo["root"] / "reports_hdbscan")])
    assert result.exit_code == 0, result.output
    run, m = assert_complete_run(Path(result.stdout.strip().splitlines()[-1]))
    a = pl.read_parquet(run / "assignments.parquet")
    noise = a["is_noise"].mean()
    assert 0 < noise < 0.5 and (a["cluster"] == -1).mean() == noise
    assert set(a.filter(pl.col("is_noise"))["cluster_name"]) == {"Noise"}
    assert m["algorithm"] == "hdbscan" and m["noise_share"] == pytest.approx(noise)
    assert m["validation"]["noise_share"] == pytest.approx(noise)
    assert "HDBSCAN noise" in m["summary_text"]
    assert f"{noise:.1%} of customers are noise" in (run / "03_clustering.html").read_text()


@pytest.mark.slow
def test_hdbscan_assigned_noise_is_counted_in_metrics(demo) -> None:
    """noise: assign (the default) gives every customer a segment, but metrics.json still reports the noise."""
    cfg = write_config(demo["root"] / "hdbscan_assign.yaml", run={"name": "hdbscan-assign", "seed": 7},
                       data={"path": str(demo["paths"]["transactions"])},
                       clustering={**SMALL["clustering"], "algorithm": "hdbscan"}, validation=SMALL["validation"])
    out = demo["root"] / "reports_assign"
    index = pipeline.run_pipeline(cfg, out_dir=out, progress=False, notebooks=["03_clustering", "04_validation"])
    m = json.loads((index.parent / "metrics.json").read_text())
    a = pl.read_parquet(index.parent / "assignments.parquet")
    assert a["cluster"].min() >= 0 and a["is_noise"].sum() > 0
    assert m["noise_share"] == pytest.approx(a["is_noise"].mean())
    assert m["validation"]["noise_share"] == pytest.approx(a["is_noise"].mean())
    for nb in ("03_clustering", "04_validation"):
        assert html_problems((index.parent / f"{nb}.html").read_text()) == [], nb


def _segment_command() -> list[str]:
    exe = Path(sys.executable).with_name("segment")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "segmentation_lib.cli"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_interrupted_run_leaves_nothing_half_written(retail_cfg, retail_run, sig) -> None:
    out = retail_run["out"]
    before = runs.list_runs(out)
    assert retail_run["index"].parent in before
    proc = subprocess.Popen(_segment_command() + ["run", "--config", str(retail_cfg)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    tmp = None
    while time.monotonic() < deadline and proc.poll() is None:
        tmps = [p for p in out.glob(".tmp-*") if (p / "01_exploration.ipynb").is_file()]
        if tmps:  # papermill has written the first notebook: it is executing
            tmp = tmps[0]
            break
        time.sleep(0.1)
    assert tmp is not None, "the run never started its first notebook"
    run_id = tmp.name[len(runs.TMP_PREFIX):]
    time.sleep(1.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0, (stdout, stderr)
    # the run's own message ends the log; no traceback of the `segment` process itself, and none of the kernel
    # (the pipeline shuts the kernel down at once on an interrupt, so it logs no ZMQError traceback).
    # (asyncio may also log nbclient's "Task exception was never retrieved: DeadKernelError" at interpreter exit)
    # the message says exactly what was kept: the failed-... folder holding FAILED.txt (no report published)
    said = " ".join(stderr.split())
    assert "Interrupted during 01_exploration: no report was published and earlier reports are unchanged." in said, stderr
    kept = [p for p in out.glob("failed-*") if run_id in p.name]
    assert len(kept) == 1 and f"kept in {kept[0]}, which holds" in said and "FAILED.txt" in said, stderr
    assert "nothing half-written" not in said
    assert re.search(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ report 1/\d: 01_exploration \.\.\.$", stderr, re.M), stderr
    assert "ZMQError" not in stderr, stderr
    assert "KeyboardInterrupt" not in stderr and "segmentation_lib" not in stderr, stderr
    assert runs.list_runs(out) == before
    assert not list(out.glob(".tmp-*"))
    assert not any(run_id in p.name for p in runs.list_runs(out))
    top = (out / "index.html").read_text(encoding="utf-8")
    assert f"_{run_id}/index.html" not in top  # not listed as a report
    assert f"{before[0].name}/index.html" in top  # the earlier run still is
    time.sleep(0.5)
    assert kernel_pids(run_id) == set(), "the notebook kernel outlived the interrupted run"
