"""Runs over time: the reference and previous run of a run, the comparison, exports, movers and history.

- :func:`resolve_links`: the run's ``reference`` (frozen model, edges, map, rules) and ``previous``
  run (what "Since last run" compares with: ``--compare-to``, else the latest earlier successful run
  of the same ``run.name`` in the reports folder, else the reference), written to ``history.json``;
- :func:`compare_runs`: per method (RFM segments, value/engagement cells, rule tiers, behavioural
  segments) the transition matrix (counts, shares), size and revenue change, top flows;
- :func:`write_exports`: ``exports/<method>/<segment>.csv`` and ``movers.csv``;
- :func:`history_rows`: ``segment_history.parquet`` (per customer and method: current segment,
  previous segment, date of the last change), and :func:`append_history` copying it into the
  reports folder's ``segment_history.parquet/`` dataset (one file per run, earlier files untouched);
- :func:`write_comparison`: the same comparison as HTML + Parquet for ``segment compare``.

>>> links = resolve_links({"run": {"name": "demo"}}, "reports")  # doctest: +SKIP
>>> links["previous"]                                             # doctest: +SKIP
'/srv/kit/reports/2026-11-02_020000_1a2b3c4d'
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import polars as pl

from segmentation_lib.errors import ConfigError, DataError, ModelError
from segmentation_lib.report.files import read_json, write_json
from segmentation_lib.report.runs import list_runs
from segmentation_lib.segment.sizes import segment_sizes
from segmentation_lib.validate.movement import main_reason, migration, segment_changes, top_flows

LINKS_FILE = "history.json"
SIZES_FILE = "segment_sizes.parquet"
HISTORY_FILE = "segment_history.parquet"
MOVERS_FILE = "movers.csv"
EXPORTS_DIR = "exports"


def methods(cfg: Mapping[str, Any]) -> dict[str, str]:
    """Method -> assignments column: ``rfm``, ``value_engagement``, ``rules`` (``rules.segment_col``), ``behavioural``.

    >>> methods({"rules": {"segment_col": "tier"}})["rules"]
    'tier'
    """
    return {"rfm": "rfm_segment", "value_engagement": "value_engagement",
            "rules": (cfg.get("rules") or {}).get("segment_col") or "tier", "behavioural": "cluster_name"}


# --------------------------------------------------------------------------- reference and previous run


def reference_dir(path: str | Path) -> Path:
    """The run folder of a reference given as a run folder or its ``model.joblib``; ConfigError when it is no run."""
    p = Path(path).expanduser().resolve()
    folder = p.parent if p.is_file() else p
    missing = [n for n in ("model.joblib", "rfm_edges.json") if not (folder / n).is_file()]
    if not folder.is_dir() or missing:
        raise ConfigError(
            f"run.reference '{path}' is not a finished run folder (missing: {', '.join(missing) or 'the folder'}). "
            "Fix: name a folder reports/<date>_<time>_<id>/ of an earlier successful run (or its model.joblib), "
            "or set run.reference: null to fit afresh.")
    return folder


def run_name_of(run_dir: Path) -> str | None:
    """``run.name`` of a finished run (from its manifest), or None."""
    man = run_dir / "manifest.json"
    if not man.is_file():
        return None
    return ((read_json(man).get("configuration") or {}).get("run") or {}).get("name")


def find_previous_run(out_dir: str | Path, name: str | None, before: str | None = None) -> Path | None:
    """The latest successful run of configuration ``name`` in ``out_dir`` (folder name before ``before``), or None."""
    for run in list_runs(out_dir):  # newest first
        if before and run.name >= before:
            continue
        if run_name_of(run) == name:
            return run
    return None


def resolve_links(cfg: Mapping[str, Any], out_dir: str | Path, reference: str | Path | None = None,
                  compare_to: str | Path | None = None) -> dict[str, str | None]:
    """``{"reference", "previous"}`` folders (absolute, or None) for a run of ``cfg`` writing into ``out_dir``."""
    run = cfg.get("run") or {}
    ref = reference or run.get("reference")
    ref_dir = reference_dir(ref) if ref else None
    cmp = compare_to or run.get("compare_to")
    if cmp:
        prev = Path(cmp).expanduser().resolve()
        if not (prev / "assignments.parquet").is_file():
            raise ConfigError(f"--compare-to / run.compare_to '{cmp}' is not a finished run folder (no assignments.parquet). "
                              "Fix: name a folder reports/<date>_<time>_<id>/ of an earlier successful run.")
    else:
        prev = find_previous_run(out_dir, run.get("name")) or ref_dir
    return {"reference": str(ref_dir) if ref_dir else None, "previous": str(prev) if prev else None}


def read_links(run_dir: Path, cfg: Mapping[str, Any]) -> dict[str, str | None]:
    """The links the pipeline wrote into ``history.json``; in JupyterLab (no file) resolved from the configuration."""
    p = run_dir / LINKS_FILE
    if p.is_file():
        return read_json(p)
    out = (cfg.get("report") or {}).get("out_dir") or run_dir.parent
    return resolve_links(cfg, out)


def frozen_config(cfg: Mapping[str, Any], ref_dir: Path) -> dict[str, Any]:
    """``cfg`` with the reference run's RFM measures, bins, segment map, value/engagement cuts and rules.

    The RFM edges are the reference's ``rfm_edges.json``; the value/engagement cuts its
    ``rfm_cuts.json`` (absolute values); the map and rules come from its manifest's configuration.
    """
    import copy

    man = read_json(ref_dir / "manifest.json") if (ref_dir / "manifest.json").is_file() else {}
    ref_cfg = man.get("configuration") or {}
    out = copy.deepcopy(dict(cfg))
    rfm = out["rfm"] = copy.deepcopy(dict(ref_cfg.get("rfm") or out["rfm"]))
    rfm["frozen_edges"] = str(ref_dir / "rfm_edges.json")
    cuts_p = ref_dir / "rfm_cuts.json"
    if cuts_p.is_file():
        cuts = read_json(cuts_p)
        ve = dict(rfm.get("value_engagement") or {})
        rfm["value_engagement"] = {"value": ve.get("value", "total_spend"), "engagement": ve.get("engagement", "n_orders"),
                                   "value_cut": cuts["value"], "engagement_cut": cuts["engagement"], "absolute": True}
    if ref_cfg.get("rules") is not None:
        out["rules"] = copy.deepcopy(ref_cfg["rules"])
    out["_reference"] = str(ref_dir)
    return out


def check_reference_model(model: Any, features: Sequence[str], ref_dir: Path) -> None:
    """ModelError when the reference model clusters on other features than the configuration."""
    have = [str(f) for f in getattr(model, "feature_names_in_", [])]
    if list(have) != [str(f) for f in features]:
        raise ModelError(
            f"The reference {ref_dir / 'model.joblib'} was fitted on the features {have}, but this configuration "
            f"clusters on {list(features)}. Fix: set clustering.features to the reference's features, or set "
            "run.reference: null (no --reference) to fit afresh.")


def load_reference_model(ref_dir: Path) -> Any:
    """The reference's model via ``load_model``; ModelError when it was saved with other library versions."""
    import warnings

    from segmentation_lib.score.persistence import ModelVersionWarning, load_model

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelVersionWarning)
        model = load_model(ref_dir / "model.joblib")
    for w in caught:
        if issubclass(w.category, ModelVersionWarning):
            raise ModelError(f"The reference cannot be reused: {w.message} A frozen segmentation must score with the "
                             "versions it was fitted with. Fix: install those versions, or run without "
                             "--reference / run.reference to fit afresh.")
    return model


# --------------------------------------------------------------------------- comparison


def sizes_table(assignments: pl.DataFrame, features: pl.DataFrame, cols: Mapping[str, str]) -> pl.DataFrame:
    """``method, segment, customers, revenue, share, revenue_share`` for every method column present."""
    j = assignments.join(features.select("customer_id", "total_spend"), on="customer_id", how="left")
    parts = [segment_sizes(j.with_columns(pl.col(col).cast(pl.String).alias("segment")), "segment", "total_spend")
             .select(pl.lit(method).alias("method"), "segment", "customers", "revenue", "share", "revenue_share")
             for method, col in cols.items() if col in j.columns]
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()


@dataclass
class MethodComparison:
    method: str
    migration: Any                 # validate.movement.MigrationResult
    changes: pl.DataFrame          # size and revenue change per segment
    flows: pl.DataFrame            # the largest moves


@dataclass
class RunComparison:
    methods: dict[str, MethodComparison]
    summary: dict[str, Any]
    movers: pl.DataFrame = field(default_factory=pl.DataFrame)


def compare_runs(previous: pl.DataFrame, current: pl.DataFrame, prev_sizes: pl.DataFrame | None,
                 cur_sizes: pl.DataFrame, cols: Mapping[str, str], n_flows: int = 5,
                 orders: Mapping[str, Sequence[str]] | None = None) -> RunComparison:
    """Transitions, size/revenue changes and top flows per method; ``movers`` with from/to and main reason."""
    out: dict[str, MethodComparison] = {}
    present = {m: c for m, c in cols.items() if c in previous.columns and c in current.columns}
    # one join of the two runs for every method's movers (not one per method)
    both = (previous.select("customer_id", *[pl.col(c).cast(pl.String).alias(m) for m, c in present.items()])
            .join(current.select("customer_id", *[pl.col(c).cast(pl.String).alias(f"{m}__now") for m, c in present.items()]),
                  on="customer_id", how="inner"))
    mover_parts = []
    for method, col in present.items():
        b = previous.select("customer_id", pl.col(col).cast(pl.String).alias("segment"))
        a = current.select("customer_id", pl.col(col).cast(pl.String).alias("segment"))
        order = list((orders or {}).get(method) or []) or None
        mig = migration(b, a, order=order)
        before = (prev_sizes.filter(pl.col("method") == method) if prev_sizes is not None and prev_sizes.height
                  else segment_sizes(b, "segment", None))
        changes = segment_changes(before, cur_sizes.filter(pl.col("method") == method), order=order)
        out[method] = MethodComparison(method, mig, changes, top_flows(mig.counts, n_flows))
        was, now = pl.col(method).fill_null("(null)"), pl.col(f"{method}__now").fill_null("(null)")
        mover_parts.append(both.filter(was != now).select("customer_id", pl.lit(method).alias("method"),
                                                          was.alias("from_segment"), now.alias("to_segment")))
    first = next(iter(out.values()), None)
    summary = {k: first.migration.summary[k] for k in ("customers_before", "customers_after", "customers_in_both",
                                                        "appeared", "disappeared")} if first else {}
    summary["changed"] = {m: c.migration.summary["changed"] for m, c in out.items()}
    mv = pl.concat(mover_parts) if mover_parts else pl.DataFrame(schema={"customer_id": pl.String})
    if mv.height:
        reason = main_reason(previous, current)
        mv = (mv.join(reason, on="customer_id", how="left")
              .select("customer_id", "method", "from_segment", "to_segment", pl.col("reason").fill_null("scores not available"))
              .sort("method", "customer_id"))
    return RunComparison(out, summary, mv)


# --------------------------------------------------------------------------- exports and history


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_") or "segment"


def write_exports(run_dir: Path, assignments: pl.DataFrame, features: pl.DataFrame, columns: Mapping[str, Sequence[str]],
                  actions: Mapping[str, Mapping[str, str]], extra_columns: Sequence[str] = ()) -> dict[str, int]:
    """One CSV per segment and method (``exports/<method>/<segment>.csv``); returns {relative path: rows}.

    ``columns``: method -> the values that put a customer in the segment; ``actions``: method -> segment
    -> suggested action. Ids are written as text, exactly as in the canonical frame.
    """
    out = run_dir / EXPORTS_DIR
    shutil.rmtree(out, ignore_errors=True)
    cols = methods({})  # the method names; the segment columns of this table follow below
    written: dict[str, int] = {}
    for method, values in columns.items():
        seg_col = {"rfm": "rfm_segment", "behavioural": "cluster_name"}.get(method, cols.get(method))
        if seg_col not in assignments.columns:
            continue
        feats = [c for c in [*values, *extra_columns] if c in features.columns and c not in assignments.columns]
        t = (assignments.select("customer_id", pl.col(seg_col).cast(pl.String).alias("segment"),
                                *[c for c in values if c in assignments.columns])
             .join(features.select("customer_id", *feats), on="customer_id", how="left")
             .with_columns(pl.col("segment").replace_strict(dict(actions.get(method) or {}), default="",
                                                            return_dtype=pl.String).alias("suggested_action"))
             .sort("customer_id"))
        folder = out / method
        folder.mkdir(parents=True, exist_ok=True)
        for (name,), part in t.partition_by("segment", as_dict=True, maintain_order=True).items():
            p = folder / f"{_slug(name)}.csv"
            part.write_csv(p)
            written[str(p.relative_to(run_dir))] = part.height
    return written


def history_rows(current: pl.DataFrame, cols: Mapping[str, str], as_of: str, run: str,
                 previous: pl.DataFrame | None = None, previous_history: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per customer and method: ``segment``, ``previous_segment``, ``changed_on`` (date of the last change), ``as_of``, ``run``.

    ``changed_on`` carries over from ``previous_history`` while the segment stays the same; it is this
    run's ``as_of`` for a customer who changed or appeared, and null when unchanged since a run without
    history (the date is unknown).
    """
    day = pl.lit(as_of).str.to_date()
    parts = []
    for method, col in cols.items():
        if col not in current.columns:
            continue
        t = current.select("customer_id", pl.lit(method).alias("method"), pl.col(col).cast(pl.String).alias("segment"))
        if previous is not None and col in previous.columns:
            t = t.join(previous.select("customer_id", pl.col(col).cast(pl.String).alias("previous_segment")),
                       on="customer_id", how="left")
        else:
            t = t.with_columns(pl.lit(None, pl.String).alias("previous_segment"))
        if previous_history is not None and previous_history.height:
            ph = previous_history.filter(pl.col("method") == method).select("customer_id", pl.col("changed_on").alias("_was"))
            t = t.join(ph, on="customer_id", how="left")
        else:
            t = t.with_columns(pl.lit(None, pl.Date).alias("_was"))
        unchanged = pl.col("previous_segment").is_not_null() & (pl.col("previous_segment") == pl.col("segment"))
        t = t.with_columns(pl.when(unchanged).then(pl.col("_was")).otherwise(day).alias("changed_on")).drop("_was")
        parts.append(t)
    out = pl.concat(parts) if parts else pl.DataFrame()
    return out.with_columns(day.alias("as_of"), pl.lit(run).alias("run")).sort("method", "customer_id")


def append_history(out_dir: Path, run_dir: Path) -> Path | None:
    """Copy a finished run's ``segment_history.parquet`` into ``<out_dir>/segment_history.parquet/<run>.parquet``.

    The folder is a Parquet dataset (``pl.scan_parquet(".../segment_history.parquet/*.parquet")``):
    every run adds one file, earlier runs' files are never rewritten.
    """
    src = run_dir / HISTORY_FILE
    if not src.is_file():
        return None
    dest = out_dir / HISTORY_FILE
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / f"{run_dir.name}.parquet"
    shutil.copyfile(src, target)
    return target


# --------------------------------------------------------------------------- trend over runs


def trend_table(out_dir: str | Path, name: str | None = None, method: str = "behavioural") -> pl.DataFrame:
    """``run, as_of, segment, customers, share, revenue_share`` of every finished run (of ``name``) with sizes, oldest first."""
    parts = []
    for run in sorted(list_runs(out_dir), key=lambda p: p.name):
        p = run / SIZES_FILE
        if not p.is_file() or (name is not None and run_name_of(run) != name):
            continue
        metrics = read_json(run / "metrics.json") if (run / "metrics.json").is_file() else {}
        parts.append(pl.read_parquet(p).filter(pl.col("method") == method)
                     .select(pl.lit(run.name).alias("run"), pl.lit(metrics.get("as_of")).alias("as_of"),
                             "segment", "customers", "share", "revenue_share"))
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()


# --------------------------------------------------------------------------- two arbitrary runs


def load_run(run_dir: str | Path) -> tuple[pl.DataFrame, pl.DataFrame | None, dict[str, Any]]:
    """Assignments, sizes (None for runs without them) and metrics of a finished run; DataError when it is none."""
    d = Path(run_dir)
    if not (d / "assignments.parquet").is_file():
        raise DataError(f"'{run_dir}' is not a finished run folder (no assignments.parquet). Fix: pass folders "
                        "reports/<date>_<time>_<id>/ of successful runs.")
    sizes = pl.read_parquet(d / SIZES_FILE) if (d / SIZES_FILE).is_file() else None
    metrics = read_json(d / "metrics.json") if (d / "metrics.json").is_file() else {}
    return pl.read_parquet(d / "assignments.parquet"), sizes, metrics


def write_comparison(run_a: str | Path, run_b: str | Path, out: str | Path, n_flows: int = 5) -> Path:
    """``segment compare``: the comparison of run A (before) with run B (after) as ``comparison.html`` plus
    ``transitions.parquet``, ``changes.parquet`` and ``movers.parquet`` in ``out``; returns the HTML path."""
    import html as html_mod

    from segmentation_lib.describe.history_text import METHOD_TITLES, flows_sentences, intro_text

    a, sa, ma = load_run(run_a)
    b, sb, mb = load_run(run_b)
    cols = {m: c for m, c in methods(mb.get("configuration") or {}).items() if c in a.columns and c in b.columns}
    cur = sb if sb is not None else sizes_from_assignments(b, cols)
    cmp = compare_runs(a, b, sa, cur, cols, n_flows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pl.concat([c.migration.counts.join(c.migration.shares, on=["from_segment", "to_segment"])
               .with_columns(pl.lit(m).alias("method")) for m, c in cmp.methods.items()]).write_parquet(out / "transitions.parquet")
    pl.concat([c.changes.with_columns(pl.lit(m).alias("method")) for m, c in cmp.methods.items()],
              how="vertical_relaxed").write_parquet(out / "changes.parquet")
    cmp.movers.write_parquet(out / "movers.parquet")
    summary = {**cmp.summary, "previous_folder": Path(run_a).name, "previous_as_of": ma.get("as_of"),
               "as_of": mb.get("as_of"), "frozen": False}
    body = [f"<h1>{html_mod.escape(Path(run_a).name)} &rarr; {html_mod.escape(Path(run_b).name)}</h1>",
            f"<p>{html_mod.escape(intro_text(summary))}</p>"]
    for m, c in cmp.methods.items():
        title = METHOD_TITLES.get(m, m)
        body.append(f"<h2>{html_mod.escape(title)}</h2>")
        body += [f"<p>{html_mod.escape(s)}</p>" for s in flows_sentences(c.flows)]
        body.append("<h3>Transitions (rows: before, columns: after)</h3>" + html_table(c.migration.counts_wide))
        body.append("<h3>Size and revenue change</h3>" + html_table(c.changes))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Run comparison</title>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body>" + "\n".join(body) + "</body></html>")
    path = out / "comparison.html"
    path.write_text(page, encoding="utf-8")
    return path


def sizes_from_assignments(assignments: pl.DataFrame, cols: Mapping[str, str]) -> pl.DataFrame:
    """Sizes (no revenue) of a run that did not write ``segment_sizes.parquet``."""
    parts = [segment_sizes(assignments.with_columns(pl.col(c).cast(pl.String).alias("segment")), "segment", None)
             .select(pl.lit(m).alias("method"), "segment", "customers") for m, c in cols.items() if c in assignments.columns]
    return pl.concat(parts)


def html_table(df: pl.DataFrame) -> str:
    """A small table (segments x segments) as escaped HTML, numbers by ``fmt_value``.

    >>> html_table(pl.DataFrame({"a": ["<b>"], "n": [3]}))
    '<table><tr><th>a</th><th>n</th></tr><tr><td>&lt;b&gt;</td><td>3</td></tr></table>'
    """
    import html as html_mod

    from segmentation_lib.formatting import fmt_value

    head = "".join(f"<th>{html_mod.escape(str(c))}</th>" for c in df.columns)
    rows = ["".join(f"<td>{html_mod.escape(fmt_value(v) if v is not None else '')}</td>" for v in r) for r in df.iter_rows()]
    return f"<table><tr>{head}</tr>" + "".join(f"<tr>{r}</tr>" for r in rows) + "</table>"
