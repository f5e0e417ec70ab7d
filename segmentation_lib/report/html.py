"""HTML for stakeholders: code-free notebook pages, the run's index.html and the reports/ listing.

Everything is rendered offline (no CDN scripts), with figures inlined as PNG, so a run folder can be
zipped, mailed or served as static files.

>>> notebook_to_html("reports/run/02_rfm.ipynb", "reports/run/02_rfm.html")  # doctest: +SKIP
>>> render_run_index(Path("reports/run"), manifest)                          # doctest: +SKIP
>>> render_reports_index(Path("reports"))                                    # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence
from segmentation_lib.describe.format import fmt_value
from segmentation_lib.describe.glossary import GLOSSARY
from segmentation_lib.describe.index_text import export_links, run_title, sufficiency_banner
from segmentation_lib.describe.quality_text import as_of_note, as_of_record, customer_attributes_sentence
from segmentation_lib.report.files import read_json


TEMPLATES = Path(__file__).resolve().parent / "templates"

#: the Content-Security-Policy of every generated page (a ``<meta http-equiv>`` in its head): no scripts
#: at all, nothing loaded from anywhere (images are inlined ``data:`` PNGs, styles are inline), no
#: forms, no ``<base>``; a name that slipped through as markup stays inert
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'none'; object-src 'none'; img-src data:; "
                           "style-src 'unsafe-inline'; font-src data:; base-uri 'none'; form-action 'none'")

#: what each report page is about (shown on the run's index page)
PAGE_BLURBS = {
    "01_exploration": "Data quality, customers and orders over time, spend and frequency, cohort retention.",
    "02_rfm": "Recency-frequency-monetary scores, the named RFM segments, sizes, revenue and suggested actions.",
    "03_clustering": "Behavioural segments found by clustering: how many and why, profiles, names and rules.",
    "04_validation": "Are the segments worth acting on: quality, stability, predictive value, migration, checks.",
    "05_value": "Predicted value and churn risk: who will buy again, who is slipping away, value per segment, model check.",
    "06_since_last_run": "Since last run: who moved between segments, size and revenue change, new and lost customers, drift.",
}
PAGE_TITLES = {
    "01_exploration": "Data exploration",
    "02_rfm": "RFM segments",
    "03_clustering": "Behavioural clusters",
    "04_validation": "Validation",
    "05_value": "Predicted value",
    "06_since_last_run": "Since last run",
    "experiment": "Experiment by segment",
}

#: headline metrics shown as cards on the run index: metrics.json key -> (label, format, hint)
HEADLINES: tuple[tuple[str, str, str, str], ...] = (
    ("customers", "Customers", "int", "after data-quality rules"),
    ("revenue", "Net revenue", "money", "all customers, returns netted"),
    ("n_clusters", "Behavioural segments", "int", "chosen number of clusters"),
    ("n_rfm_segments", "RFM segments in use", "int", "named RFM groups with customers"),
    ("silhouette", "Silhouette", "float", "separation of clusters, -1..1"),
    ("stability_ari_median", "Stability (ARI)", "float", "median agreement across refits, 0..1"),
    ("predictive_clusters", "Predictive power: clusters", "pct", "holdout spend variance explained"),
    ("predictive_rfm", "Predictive power: RFM", "pct", "holdout spend variance explained"),
    ("ground_truth_ari", "Agreement with planted truth", "float", "adjusted Rand index (demo data)"),
    ("actionability_pass", "Actionability checks passed", "ratio", "pass / all checks"),
)


def html_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
               numeric: Iterable[str] = (), formats: Mapping[str, str] | None = None) -> str:
    """A plain escaped ``<table>`` from records (numbers right-aligned).

    >>> html_table([{"a": 1, "b": "x"}])[:7]
    '<table>'
    """
    if not rows:
        return "<p class='muted'>No rows.</p>"
    columns = list(columns or rows[0].keys())
    formats = dict(formats or {})
    numeric = set(numeric) | {c for c in columns if all(isinstance(r.get(c), (int, float)) and not isinstance(r.get(c), bool)
                                                          for r in rows if r.get(c) is not None)}
    head = "".join(f"<th class='{'num' if c in numeric else ''}'>{html.escape(str(c).replace('_', ' '))}</th>" for c in columns)
    body = []
    for r in rows:
        cells = "".join(
            f"<td class='{'num' if c in numeric else ''}'>{html.escape(fmt_value(r.get(c), formats.get(c, 'auto')))}</td>"
            for c in columns)
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _env():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt_value
    env.globals["csp"] = CONTENT_SECURITY_POLICY
    return env


def atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file of its own (``.<name>.<pid>.<hex>.tmp``) and an
    atomic ``os.replace``: concurrent writers never share a temporary file, readers see the old or the new
    page, and a failed write (a full disk) leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# --------------------------------------------------------------------------- notebook pages


def clean_for_stakeholders(nb) -> Any:
    """Drop what a stakeholder must not see: stderr streams (warnings), the parameters cells and empty cells."""
    keep = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters", "remove", "remove_cell"}:
            continue
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.get("outputs", [])
                            if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
            if not cell.outputs:
                continue
        keep.append(cell)
    nb.cells = keep
    return nb


def notebook_to_html(nb_path: str | Path, html_path: str | Path, nav: Sequence[tuple[str, str]] = ()) -> Path:
    """Render an executed notebook to a self-contained HTML page without code, prompts or stderr.

    ``nav`` is a list of ``(notebook stem, href)`` shown as a navigation bar with a link back to the run index.
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb_path, html_path = Path(nb_path), Path(html_path)
    nb = clean_for_stakeholders(nbformat.read(str(nb_path), as_version=4))
    nb.metadata["title"] = PAGE_TITLES.get(nb_path.stem, nb_path.stem.replace("_", " "))
    exporter = HTMLExporter(extra_template_basedirs=[str(TEMPLATES)], template_name="nbreport",
                            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    links = ["<a href='index.html'>&larr; Run overview</a>"]
    for stem, href in nav:
        title = html.escape(PAGE_TITLES.get(stem, stem))
        links.append(f"<span class='current'>{title}</span>" if stem == nb_path.stem
                     else f"<a href='{html.escape(href)}'>{title}</a>")
    body, _ = exporter.from_notebook_node(nb, resources={"seg_nav": _markup(" ".join(links)),
                                                         "seg_csp": CONTENT_SECURITY_POLICY})
    return atomic_write(html_path, body)


def _markup(text: str):
    from markupsafe import Markup

    return Markup(text)


# --------------------------------------------------------------------------- run index


def as_of_of_run(run_dir: Path) -> dict[str, Any]:
    """The analysis date of a run and how it was chosen (for the manifest), from ``data_quality.json``."""
    return as_of_record(read_json(Path(run_dir) / "data_quality.json", None) or {})


def row_counts(run_dir: Path) -> dict[str, Any]:
    """Row counts for the manifest, read from the run's data-quality summary and Parquet outputs."""
    out: dict[str, Any] = {}
    dq = read_json(run_dir / "data_quality.json", None) or {}
    for key in ("rows_in", "rows_out", "rows_excluded", "customers_in", "customers_out", "customers_dropped"):
        if key in dq:
            out[key] = dq[key]
    try:
        import polars as pl

        for p in sorted(run_dir.glob("*.parquet")):
            out[p.name] = pl.scan_parquet(p).select(pl.len()).collect().item()
    except Exception:  # noqa: BLE001 - counts are informative only
        pass
    return out


def headline_cards(metrics: Mapping[str, Any]) -> list[dict[str, str]]:
    """Cards for the run index from ``metrics.json`` (keys in :data:`HEADLINES`, present ones only)."""
    cards = []
    for key, label, kind, hint in HEADLINES:
        if key in metrics and metrics[key] is not None:
            cards.append({"label": label, "value": fmt_value(metrics[key], kind), "hint": hint})
    return cards


def _segment_rows(run_dir: Path) -> list[dict[str, Any]]:
    data = read_json(run_dir / "segments.json", None)
    return data if isinstance(data, list) else []


#: glossary terms of the run index (the headline cards and the segment table)
INDEX_TERMS = ("behavioural segment", "RFM segment", "silhouette", "ARI", "holdout", "variance explained")


def segments_with_exports(run_dir: Path) -> list[dict[str, Any]]:
    """The rows of ``segments.json``, each with ``export``: the link to its exported list
    (``exports/behavioural/<segment>.csv``, else ``exports/<segment>.csv``) when that file exists, else None."""
    rows = _segment_rows(run_dir)
    files = [p.relative_to(run_dir).as_posix() for folder in (run_dir / "exports" / "behavioural", run_dir / "exports")
             if folder.is_dir() for p in sorted(folder.glob("*.csv"))]
    links = export_links([str(r.get("name") or "") for r in rows], files)
    return [{**r, "export": links.get(str(r.get("name") or ""))} for r in rows]


def render_run_index(run_dir: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``index.html`` of one run: headline numbers, links to each report, segments, data quality, files."""
    run_dir = Path(run_dir)
    metrics = read_json(run_dir / "metrics.json", None) or {}
    dq = read_json(run_dir / "data_quality.json", None) or {}
    pages = [{"href": f"{Path(n).stem}.html", "title": PAGE_TITLES.get(Path(n).stem, Path(n).stem),
              "blurb": PAGE_BLURBS.get(Path(n).stem, ""), "notebook": n} for n in manifest.get("notebooks", [])]
    dq_rules = [r for r in dq.get("rules", []) if r.get("rows")]
    files = [{"name": n, "what": FILE_NOTES.get(n, "executed notebook (code and outputs)" if n.endswith(".ipynb") else "")} for n in manifest.get("files", []) if not n.endswith(".html")]
    ctx = {
        "manifest": manifest,
        "metrics": metrics,
        "cards": headline_cards(metrics),
        "summary": metrics.get("summary_text"),
        "pages": pages,
        "skipped": [{"name": n, "title": PAGE_TITLES.get(n, n), "reason": r}
                    for n, r in (manifest.get("skipped_notebooks") or {}).items()],
        "segments": segments_with_exports(run_dir),
        "title": run_title(manifest.get("configuration") or {}),
        "banner": sufficiency_banner(metrics.get("data_sufficiency") or []),
        "glossary": [{"term": t[0].upper() + t[1:], "text": GLOSSARY[t]} for t in INDEX_TERMS],
        "dq": dq,
        "dq_rules": dq_rules,
        "attributes_sentence": customer_attributes_sentence(dq["customer_attributes"]) if dq.get("customer_attributes") else "",
        "as_of_note": as_of_note(dq),
        "files": files,
        "started_local": _local(manifest.get("started")),
    }
    if dq.get("usage_only"):  # no purchases: the index's own texts in usage words
        ctx = usage_index_context(ctx)
    text = _env().get_template("run_index.html.j2").render(**ctx)
    return atomic_write(run_dir / "index.html", text)


def usage_index_context(ctx: dict[str, Any]) -> dict[str, Any]:
    """The run index's texts (summary, cards, page blurbs, glossary, data-quality notes, file notes) in the
    words of a usage-only run (``describe.usage_wording``); segment names and the skipped pages' notes unchanged.

    >>> usage_index_context({"summary": "Net revenue", "cards": [{"label": "Net revenue", "hint": "x"}]})["cards"][0]["label"]
    'Event count'
    """
    from segmentation_lib.describe.usage_wording import usage_wording

    def words(rows: Any, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        return [{**r, **{k: usage_wording(r[k]) for k in keys if isinstance(r.get(k), str)}} for r in rows or []]

    out = dict(ctx, rows_word="session rows (of the event log)", revenue_header="Share of events")
    for key in ("summary", "as_of_note", "attributes_sentence"):
        if isinstance(out.get(key), str):
            out[key] = usage_wording(out[key])
    out["cards"] = words(out.get("cards"), ("label", "hint"))
    out["pages"] = words(out.get("pages"), ("title", "blurb"))
    out["glossary"] = words(out.get("glossary"), ("text",))
    out["files"] = words(out.get("files"), ("what",))
    out["dq_rules"] = words(out.get("dq_rules"), ("description",))
    return out


FILE_NOTES = {
    "assignments.parquet": "customer_id -> segment for every method (RFM, value/engagement, rule tier, cluster) and the predicted value columns (p_alive, expected purchases, CLV, churn risk, value x churn-risk cell)",
    "features.parquet": "the customer feature table the segments were computed from",
    "metrics.json": "headline metrics (for alerting in scheduled runs)",
    "manifest.json": "configuration, input fingerprints, row counts, versions, timings, SHA-256 of every file",
    "model.joblib": "the fitted segmentation (a skops archive, opened without running code once its SHA-256 matches the manifest); score new customers with `segment score`",
    "data_quality.json": "what the data-quality rules did, rule by rule",
    "run_config.yaml": "the configuration of this run with the command-line overrides applied (only when there were any)",
    "segment_rules.sql": "the surrogate rules as a SQL CASE expression for a warehouse or CRM",
    "segments.json": "behavioural segments with sizes, revenue shares, the suggested action and the RFM composition (as shown above)",
    "rfm_edges.json": "learned RFM bin edges (reuse via rfm.frozen_edges to keep scores comparable)",
    "excluded_customers.parquet": "every customer the data-quality step left out, with the rule that did it",
    "segment_stats.parquet": "transactions, units, spend and their ratios per RFM and behavioural segment, with a Total row",
}


def _local(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except ValueError:
        return iso


def readable_notebook(path: Path) -> bool:
    """True when ``path`` is a whole notebook (valid JSON with cells): a run stopped by a full disk can leave a
    truncated one, which is then neither linked nor kept."""
    try:
        with open(path, encoding="utf-8") as fh:
            return isinstance(json.load(fh).get("cells"), list)
    except (OSError, ValueError, AttributeError):
        return False


def render_reports_index(out_dir: str | Path) -> Path:
    """Write ``<out_dir>/index.html`` listing every successful run newest first (and failed runs apart)."""
    from segmentation_lib.report.runs import list_failed_runs, list_runs

    out = Path(out_dir)
    runs = []
    for p in list_runs(out):
        man = read_json(p / "manifest.json", None) or {}
        met = read_json(p / "metrics.json", None) or {}
        cfg = man.get("configuration") or {}
        runs.append({
            "href": f"{p.name}/index.html", "name": p.name, "started": _local(man.get("started")),
            "run_name": run_title(cfg),
            "data": Path(str((cfg.get("data") or {}).get("path") or "-")).name,
            "customers": fmt_value(met.get("customers"), "int"),
            "k": fmt_value(met.get("n_clusters"), "int"),
            "stability": fmt_value(met.get("stability_ari_median"), "float"),
            "seconds": fmt_value(round(man["seconds"]) if isinstance(man.get("seconds"), (int, float)) else None, "int"),
        })
    failed = []
    for p in list_failed_runs(out):
        reason = (p / "FAILED.txt").read_text(encoding="utf-8").strip() if (p / "FAILED.txt").is_file() else ""
        nbs = [x.name for x in sorted(p.glob("*.ipynb"), reverse=True) if readable_notebook(x)][:1]
        failed.append({"name": p.name, "reason": reason[:400], "href": f"{p.name}/{nbs[-1]}" if nbs else ""})
    text = _env().get_template("reports_index.html.j2").render(runs=runs, failed=failed[:20],
                                                               n_failed=len(failed), out=str(out), trend=trend_rows(out),
                                                               experiments=experiment_rows(out))
    out.mkdir(parents=True, exist_ok=True)
    return atomic_write(out / "index.html", text)


def experiment_rows(out_dir: str | Path) -> list[dict[str, Any]]:
    """The experiments section of the reports index: every finished ``segment experiment`` folder, newest first
    (the page, its exposure period, exposed customers per variant)."""
    rows = []
    for p in sorted(Path(out_dir).glob("experiment-*"), reverse=True):
        doc = read_json(p / "experiment.json", None) if (p / "experiment.html").is_file() else None
        if not isinstance(doc, dict):
            continue
        ex = doc.get("exposures") or {}
        variants = ex.get("variants") or {}
        rows.append({"href": f"{p.name}/experiment.html", "name": p.name,
                     "period": f"{str(ex.get('start') or '')[:10]} to {str(ex.get('end') or '')[:10]}",
                     "customers": fmt_value(ex.get("customers"), "int"),
                     "variants": ", ".join(f"{k} {fmt_value(v, 'int')}" for k, v in variants.items())})
    return rows


def trend_rows(out_dir: str | Path) -> dict[str, Any] | None:
    """The trend section of the reports index: behavioural segment share and revenue share per run of the newest
    run's configuration, oldest first (None before two runs with segment sizes)."""
    from segmentation_lib.report.history import run_name_of, trend_table
    from segmentation_lib.report.runs import list_runs

    runs = list_runs(out_dir)
    if not runs:
        return None
    name = run_name_of(runs[0])
    t = trend_table(out_dir, name)
    if t.height == 0 or t["run"].n_unique() < 2:
        return None
    segments = list(dict.fromkeys(t.sort("run", "segment")["segment"].to_list()))
    rows = []
    for run in sorted(set(t["run"].to_list())):
        part = {r["segment"]: r for r in t.filter(t["run"] == run).iter_rows(named=True)}
        first = next(iter(part.values()))
        rows.append({"run": run, "as_of": first["as_of"] or "",
                     "cells": [(fmt_value(part[s]["share"], "pct") if s in part else "-",
                                fmt_value(part[s]["revenue_share"], "pct") if s in part and part[s]["revenue_share"] is not None else "-",
                                round(100 * part[s]["share"]) if s in part else 0) for s in segments]})
    return {"name": name or "", "segments": segments, "rows": rows}


def usage_worded_notebook(nb_path: str | Path) -> Path:
    """Rewrite the Markdown cells (headings, introductions) of an executed notebook of a usage-only run in
    usage words (``describe.usage_wording``), in place; the outputs are worded by the pages already."""
    import nbformat

    from segmentation_lib.describe.usage_wording import usage_wording

    nb_path = Path(nb_path)
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = usage_wording(cell.source)
    nbformat.write(nb, str(nb_path))
    return nb_path

