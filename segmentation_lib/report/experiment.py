"""The experiment page: an experiment read by segment, from exposures to the HTML page and experiment.json.

``analyse_experiment`` runs the steps (exposures -> outcomes -> segments as of the start -> readout ->
Simpson checks -> recommendations); ``ExperimentPage`` is what ``notebooks/experiment.ipynb`` shows,
one call per cell; ``run_experiment_report`` executes that notebook with papermill into
``<out>/experiment-<date>_<time>_<id>/`` (``experiment.html``, ``experiment.json``, the executed
notebook), atomically: a failed run leaves a ``failed-experiment-...`` folder and nothing half-written.

>>> path = run_experiment_report("configs/default.yaml", "data/demo/exposures.parquet")  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import math
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import polars as pl
from matplotlib.figure import Figure

from segmentation_lib.describe import experiment_text as text
from segmentation_lib.describe.format import md_table
from segmentation_lib.errors import PipelineError
from segmentation_lib.experiment.assignment import segments_as_of
from segmentation_lib.experiment.exposures import load_exposures
from segmentation_lib.experiment.outcomes import experiment_start, outcomes_from_transactions
from segmentation_lib.experiment.readout import OVERALL, Readout, arm_statistics, read_experiment
from segmentation_lib.experiment.simpson import simpson_check
from segmentation_lib.experiment.variants import recommendations
from segmentation_lib.report import plots
from segmentation_lib.report.context import open_run
from segmentation_lib.report.files import read_json, write_json
from segmentation_lib.report.pages import MarkdownText, Page, recording

NOTEBOOK = "experiment"
FOLDER_PREFIX = "experiment-"


@dataclass
class ExperimentResult:
    """Everything the page shows and ``experiment.json`` holds."""

    exposures: dict[str, Any]
    readout: Readout
    simpson: list[dict[str, Any]]
    recommendations: pl.DataFrame
    methods: list[str]
    origin: str
    start: dt.datetime
    truth: dict[str, Any] | None = None
    frame: pl.DataFrame | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return finite({"exposures": self.exposures, "start": self.start.isoformat(), "segments_from": self.origin,
                       "methods": self.methods, **self.readout.to_dict(), "simpson": self.simpson,
                       "recommendations": self.recommendations.to_dicts(), "truth": self.truth})


def finite(value: Any) -> Any:
    """``value`` with NaN / infinite floats as None (experiment.json is strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def analyse_experiment(cfg: Mapping[str, Any], exposures: str | Path | None = None) -> ExperimentResult:
    """Read the exposures, compute outcomes and segments as of the start, and read the experiment."""
    ex_cfg = cfg.get("experiment") or {}
    ex, report = load_exposures(cfg, exposures)
    start = experiment_start(ex, ex_cfg.get("start"))
    late = ex.filter(pl.col("exposure_time") < start).height
    if late:
        warnings.warn(f"{late:,} exposure(s) happened before experiment.start ({start:%Y-%m-%d}); they are kept.",
                      UserWarning, stacklevel=2)
    tx = None
    data_path = (cfg.get("data") or {}).get("path")
    if data_path and Path(data_path).exists():
        from segmentation_lib.data.quality import load_transactions

        from segmentation_lib.data.read import ids_like

        tx = load_transactions(cfg)[0]
        ex = ids_like(ex, "customer_id", tx.collect_schema()["customer_id"])  # integer ids of the log stay integers
    window, pre_days = int(ex_cfg.get("window_days", 14)), int(ex_cfg.get("pre_period_days", 90))
    if tx is not None:
        frame = outcomes_from_transactions(ex, tx, window, pre_days, start)
    else:
        frame = ex
    frame, methods, origin = segments_as_of(frame, cfg, tx, start)
    metrics = [m for m in ex_cfg.get("metrics") or ["conversion"]]
    available = [m for m in metrics if all(c in frame.columns for c in {"conversion": ["converted"],
                 "revenue": ["revenue"], "revenue_per_order": ["revenue", "orders"]}.get(m, [m]))]
    if available and len(available) < len(metrics):
        warnings.warn(f"Metric(s) {', '.join(m for m in metrics if m not in available)} left out: their outcome columns "
                      "are neither given in the exposures nor computed from a transaction log.", UserWarning, stacklevel=2)
    control = str(ex_cfg.get("control", "control"))
    readout = read_experiment(frame, methods, available or metrics, control=control, alpha=float(ex_cfg.get("alpha", 0.05)),
                              pre_registered=ex_cfg.get("pre_registered") or [], expected_split=ex_cfg.get("expected_split"),
                              srm_warn=float(ex_cfg.get("srm_warn", 0.01)), srm_fail=float(ex_cfg.get("srm_fail", 0.001)),
                              covariate="pre_spend" if "pre_spend" in frame.columns else None,
                              min_segment_size=int(ex_cfg.get("min_segment_size", 30)))
    primary = readout.settings["metrics"][0]
    treatments = [v for v in readout.settings["variants"] if v != control]
    by = (["stratum"] if "stratum" in frame.columns else []) + methods
    simpson = []
    for b in by:
        sums = arm_statistics(frame, [b], covariate=None)
        for v in treatments:
            simpson.append(simpson_check(frame, b, control, v, primary, readout.settings["alpha"], sums=sums))
    recs = recommendations(readout.lifts, readout.heterogeneity, primary, control)
    truth = None
    source = Path(exposures or ex_cfg.get("path") or "")
    if (source.parent / "experiment_truth.json").is_file():
        truth = read_json(source.parent / "experiment_truth.json")
    return ExperimentResult(exposures=report, readout=readout, simpson=simpson, recommendations=recs, methods=methods,
                            origin=origin, start=start, truth=truth, frame=frame)


def _md(*parts: str) -> MarkdownText:
    return MarkdownText("\n\n".join(p for p in parts if p))


class ExperimentPage(Page):
    """The experiment page (``notebooks/experiment.ipynb``); ``options``: ``exposures`` (a file path)."""

    def _compute(self) -> None:
        self.result = analyse_experiment(self.cfg, self.options.get("exposures") or None)
        r = self.result.readout
        self.settings = r.settings
        self.primary = r.settings["metrics"][0]
        self.control = r.settings["control"]
        self.lifts = r.lifts.to_dicts()
        self.het = r.heterogeneity.to_dicts()
        write_json(self.ctx.run_dir / "experiment.json", self.result.to_dict())

    def _rows(self, method: str, metric: str | None = None) -> list[dict[str, Any]]:
        metric = metric or self.primary
        return [r for r in self.lifts if r["method"] == method and r["metric"] == metric]

    def intro(self) -> MarkdownText:
        """Who was exposed, where the segments come from, and which corrections apply."""
        s = self.settings
        methods = ", ".join(f"{text.method_word(m)} ({'pre-registered, Holm' if m in s['pre_registered'] else 'exploratory, Benjamini-Hochberg'})"
                            for m in s["methods"])
        return _md(text.exposure_sentence(self.result.exposures),
                   f"Segments as of the start ({self.result.start:%Y-%m-%d}), from {text.esc(self.result.origin)}: {methods}. "
                   f"Outcomes over {self.cfg['experiment']['window_days']} days after each customer's exposure; "
                   f"primary metric: {text.METRIC_WORDS.get(self.primary, self.primary)}.")

    def conclusion(self) -> MarkdownText:
        """The plain-language conclusion, written from the numbers below."""
        over = self._rows(OVERALL)[0]
        srm = next((r for r in self.result.readout.srm.to_dicts() if r["method"] == OVERALL), None)
        return _md(text.conclusion_markdown(over, self.lifts, self.het, srm, self.result.simpson, self.settings))

    def overall(self) -> MarkdownText:
        """The overall lift of every variant on every metric."""
        return _md(*[f"- {text.METRIC_WORDS.get(m, m).capitalize()}: " + text.lift_sentence(r, self.control)
                     for m in self.settings["metrics"] for r in self._rows(OVERALL, m)])

    def srm(self) -> MarkdownText:
        """The sample-ratio-mismatch check, overall and the segments that warn or fail."""
        rows = self.result.readout.srm
        bad = rows.filter(pl.col("status").is_in(["warn", "fail"]) & (pl.col("method") != OVERALL))
        table = md_table(bad.drop("chi2"), {"p_value": "float"}) if bad.height else ""
        return _md(text.srm_sentence(rows.to_dicts(), self.settings), table)

    def forest(self) -> Figure:
        """Forest plot of the primary metric's lift per segment of every method, overall first."""
        rows = [r for r in self.lifts if r["metric"] == self.primary]
        rows.sort(key=lambda r: (r["method"] != OVERALL, r["method"], r["segment"], r["variant"]))
        multi = len(self.settings["variants"]) > 2
        table = pl.DataFrame({
            "label": [("All customers" if r["method"] == OVERALL else f"{text.method_word(r['method'])}: {r['segment']}")
                      + (f" [{r['variant']}]" if multi else "") for r in rows],
            "abs_lift": [r["abs_lift"] for r in rows], "abs_low": [r["abs_low"] for r in rows],
            "abs_high": [r["abs_high"] for r in rows], "significant": [bool(r["significant"]) for r in rows]})
        conv = self.primary == "conversion"
        ax = plots.lift_forest(table, scale=100.0 if conv else 1.0,
                               xlabel="lift in conversion (percentage points)" if conv else f"lift in {self.primary}",
                               title="Lift by segment (red: significant after correction)")
        fig = ax.figure
        import matplotlib.pyplot as plt

        plt.close(fig)
        return fig

    def segment_tables(self) -> MarkdownText:
        """Per method: n per variant, means, lifts with intervals, raw and adjusted p-values."""
        out = []
        conv = self.primary == "conversion"
        for m in self.settings["methods"]:
            rows = pl.DataFrame(self._rows(m))
            if rows.height == 0:
                continue
            scale = 100.0 if conv else 1.0
            table = rows.select(
                "segment", "variant", "n_control", "n_variant",
                (pl.col("mean_control") * scale).alias("control"), (pl.col("mean_variant") * scale).alias("treated"),
                (pl.col("abs_lift") * scale).alias("lift"), (pl.col("abs_low") * scale).alias("low"),
                (pl.col("abs_high") * scale).alias("high"), "rel_lift", "p_value", "p_adjusted", "significant")
            unit = " (conversion in %, lift in points)" if conv else ""
            out.append(f"**By {text.method_word(m)}**{unit}, corrected with {self.settings['corrections'][m]}:\n\n"
                       + md_table(table, {"control": "float", "treated": "float", "lift": "float", "low": "float",
                                                    "high": "float", "rel_lift": "pct", "p_value": "float",
                                                    "p_adjusted": "float"}))
        return _md(*out)

    def heterogeneity(self) -> MarkdownText:
        """Cochran's Q per method: does the effect differ across segments?"""
        return _md(*[f"- {text.heterogeneity_sentence(h)}" for h in self.het if h["metric"] == self.primary])

    def cuped(self) -> MarkdownText:
        """Raw and CUPED-adjusted overall estimates side by side."""
        lines = [text.cuped_sentence(r) for m in self.settings["metrics"] for r in self._rows(OVERALL, m)]
        lines = [f"- {x}" for x in lines if x]
        return _md(*lines) if lines else _md("CUPED needs pre-period spend (the transaction log before the start); "
                                              "none was available.")

    def simpson(self) -> MarkdownText:
        """The Simpson's paradox checks: by stratum (when given) and by each segmentation."""
        return _md(*[f"- {text.simpson_sentence(s)}" for s in self.result.simpson])

    def recommendations(self) -> MarkdownText:
        """The per-segment recommendation table (also in experiment.json) for a campaign tool."""
        recs = self.result.recommendations
        conv = self.primary == "conversion"
        scale = 100.0 if conv else 1.0
        table = recs.with_columns([(pl.col(c) * scale).alias(c) for c in ("abs_lift", "abs_low", "abs_high")])
        return _md("Basis: *segment* = a significant lift in that segment where the effect differs across segments; "
                   "*overall* = the effect is not shown to differ, so the overall result applies; *no winner* = the "
                   "control stays.", md_table(table, {"abs_lift": "float", "abs_low": "float",
                                                               "abs_high": "float", "p_adjusted": "float"}))

    def planted_truth(self) -> MarkdownText | None:
        """Demo only: the planted effect per archetype against the estimate and whether the interval covers it."""
        truth = self.result.truth
        if not truth or "archetype" not in self.settings["methods"]:
            return None
        rows = []
        for r in self._rows("archetype", "conversion"):
            planted = (truth.get("effect_by_archetype") or {}).get(r["segment"], {}).get(r["variant"])
            if planted is None:
                continue
            rows.append({"archetype": r["segment"], "variant": r["variant"], "planted": 100 * planted,
                         "estimate": 100 * r["abs_lift"], "low": 100 * r["abs_low"], "high": 100 * r["abs_high"],
                         "covered": bool(r["abs_low"] <= planted <= r["abs_high"]), "significant": bool(r["significant"])})
        if not rows:
            return None
        return _md("Planted conversion effects (points) and what the readout recovered:",
                   md_table(pl.DataFrame(rows), {"planted": "float", "estimate": "float", "low": "float",
                                                           "high": "float"}))


def experiment_setup(config_path: str = "configs/default.yaml", run_dir: str = "", exposures: str = "",
                     seed: int | None = None, as_of: str | None = None) -> ExperimentPage:
    """The experiment notebook's one setup call: open the run, style the figures, read the experiment.

    >>> page = experiment_setup("configs/default.yaml", "", "data/demo/exposures.parquet")  # doctest: +SKIP
    """
    plots.apply_style()
    ctx = open_run(config_path, run_dir, seed=seed, as_of=as_of)
    return ExperimentPage(ctx, exposures=exposures)


def run_experiment_report(config_path: str | Path, exposures: str | Path | None = None, out_dir: str | Path | None = None,
                          kernel_name: str | None = None, timeout: int | None = None) -> Path:
    """Execute ``notebooks/experiment.ipynb`` into a new folder; return the path of its ``experiment.html``.

    ``out_dir`` defaults to ``report.out_dir``. Raises PipelineError naming the failing cell (the
    executed notebook kept in ``failed-experiment-...``) or the library's own error on bad input.
    """
    from segmentation_lib.config import load_config
    from segmentation_lib.report.html import notebook_to_html
    from segmentation_lib.report.pipeline import ensure_kernel, execute_notebook, notebook_dir
    from segmentation_lib.report.runs import TMP_PREFIX, run_names

    config_path = Path(config_path).resolve()
    cfg = load_config(config_path)
    exposures = str(Path(exposures).resolve()) if exposures else (cfg.get("experiment") or {}).get("path") or ""
    with recording([]):  # fail early on a bad exposures file (a clear message, no notebook started)
        load_exposures(cfg, exposures or None)
    out = Path(out_dir if out_dir is not None else (cfg.get("report") or {}).get("out_dir") or "reports").resolve()
    out.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:8]
    final, failed = run_names(dt.datetime.now(dt.timezone.utc), run_id)
    tmp = out / f"{TMP_PREFIX}{FOLDER_PREFIX}{run_id}"
    tmp.mkdir()
    src = notebook_dir() / f"{NOTEBOOK}.ipynb"
    params = {"config_path": str(config_path), "run_dir": str(tmp), "exposures": exposures,
              "seed": int(cfg["run"]["seed"]), "run_id": run_id}
    try:
        execute_notebook(src, tmp / src.name, params, kernel_name or ensure_kernel(), cwd=src.parent, timeout=timeout)
        page = notebook_to_html(tmp / src.name, tmp / f"{NOTEBOOK}.html")
        (tmp / "index.html").write_text(f"<!doctype html><meta http-equiv='refresh' content='0; url={page.name}'>"
                                        f"<a href='{page.name}'>Experiment readout</a>\n", encoding="utf-8")
        shutil.rmtree(tmp / "work", ignore_errors=True)
        os.replace(tmp, out / f"{FOLDER_PREFIX}{final}")
    except BaseException as exc:
        shutil.rmtree(tmp / "work", ignore_errors=True)
        dest = out / failed.replace("failed-", f"failed-{FOLDER_PREFIX}", 1)
        if tmp.exists():
            os.replace(tmp, dest)
        if isinstance(exc, PipelineError):
            exc.args = (f"{exc} The executed notebook is kept in {dest}.",)
            exc.exit_code = 2 if getattr(exc, "bad_input", False) else 1
        raise
    from segmentation_lib.report.html import render_reports_index

    render_reports_index(out)  # the reports index lists the experiment beside the runs
    return out / f"{FOLDER_PREFIX}{final}" / f"{NOTEBOOK}.html"
