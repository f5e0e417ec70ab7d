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
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: what each report page is about (shown on the run's index page)
PAGE_BLURBS = {
    "01_exploration": "Data quality, customers and orders over time, spend and frequency, cohort retention.",
    "02_rfm": "Recency-frequency-monetary scores, the named RFM segments, sizes, revenue and suggested actions.",
    "03_clustering": "Behavioural segments found by clustering: how many and why, profiles, names and rules.",
    "04_validation": "Are the segments worth acting on: quality, stability, predictive value, migration, checks.",
}
PAGE_TITLES = {
    "01_exploration": "Data exploration",
    "02_rfm": "RFM segments",
    "03_clustering": "Behavioural clusters",
    "04_validation": "Validation",
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


# --------------------------------------------------------------------------- formatting helpers


def fmt_value(value: Any, kind: str = "auto") -> str:
    """Format a number for people: ``fmt_value(12345.6, "money") == '12,346'``, ``fmt_value(0.123, "pct") == '12.3%'``.

    >>> fmt_value(0.4567, "float"), fmt_value(1234567, "int"), fmt_value(None)
    ('0.457', '1,234,567', '-')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if kind == "ratio" and isinstance(value, (list, tuple)) and len(value) == 2:
        return f"{value[0]} / {value[1]}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if kind == "pct":
        return f"{100 * value:.1f}%"
    if kind == "money":
        return f"{value:,.0f}"
    if kind == "int" or (kind == "auto" and float(value).is_integer()):
        return f"{int(round(value)):,}"
    if kind == "float" or kind == "auto":
        text = f"{value:,.3f}" if abs(value) < 100 else f"{value:,.1f}"
        return text.rstrip("0").rstrip(".") if kind == "auto" else text
    return str(value)


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
    return env


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _atomic_write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
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
    body, _ = exporter.from_notebook_node(nb, resources={"seg_nav": _markup(" ".join(links))})
    return _atomic_write(html_path, body)


def _markup(text: str):
    from markupsafe import Markup

    return Markup(text)


# --------------------------------------------------------------------------- run index


def row_counts(run_dir: Path) -> dict[str, Any]:
    """Row counts for the manifest, read from the run's data-quality summary and Parquet outputs."""
    out: dict[str, Any] = {}
    dq = _read_json(run_dir / "data_quality.json") or {}
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
    data = _read_json(run_dir / "segments.json")
    return data if isinstance(data, list) else []


def render_run_index(run_dir: str | Path, manifest: Mapping[str, Any]) -> Path:
    """Write ``index.html`` of one run: headline numbers, links to each report, segments, data quality, files."""
    run_dir = Path(run_dir)
    metrics = _read_json(run_dir / "metrics.json") or {}
    dq = _read_json(run_dir / "data_quality.json") or {}
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
        "segments": _segment_rows(run_dir),
        "dq": dq,
        "dq_rules": dq_rules,
        "attributes_sentence": customer_attributes_sentence(dq["customer_attributes"]) if dq.get("customer_attributes") else "",
        "files": files,
        "started_local": _local(manifest.get("started")),
    }
    text = _env().get_template("run_index.html.j2").render(**ctx)
    return _atomic_write(run_dir / "index.html", text)


FILE_NOTES = {
    "assignments.parquet": "customer_id -> segment for every method (RFM, value/engagement, rule tier, cluster)",
    "features.parquet": "the customer feature table the segments were computed from",
    "metrics.json": "headline metrics (for alerting in scheduled runs)",
    "manifest.json": "configuration, input fingerprints, row counts, versions, timings",
    "model.joblib": "the fitted segmentation; score new customers with `segment score`",
    "data_quality.json": "what the data-quality rules did, rule by rule",
    "segment_rules.sql": "the surrogate rules as a SQL CASE expression for a warehouse or CRM",
    "segments.json": "behavioural segments with sizes and revenue shares (as shown above)",
    "rfm_edges.json": "learned RFM bin edges (reuse via rfm.frozen_edges to keep scores comparable)",
    "excluded_customers.parquet": "every customer the data-quality step left out, with the rule that did it",
}


def _local(iso: str | None) -> str:
    if not iso:
        return "-"
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
    except ValueError:
        return iso


def render_reports_index(out_dir: str | Path) -> Path:
    """Write ``<out_dir>/index.html`` listing every successful run newest first (and failed runs apart)."""
    from .pipeline import list_failed_runs, list_runs

    out = Path(out_dir)
    runs = []
    for p in list_runs(out):
        man = _read_json(p / "manifest.json") or {}
        met = _read_json(p / "metrics.json") or {}
        cfg = man.get("configuration") or {}
        runs.append({
            "href": f"{p.name}/index.html", "name": p.name, "started": _local(man.get("started")),
            "run_name": (cfg.get("run") or {}).get("name", ""),
            "data": Path(str((cfg.get("data") or {}).get("path") or "-")).name,
            "customers": fmt_value(met.get("customers"), "int"),
            "k": fmt_value(met.get("n_clusters"), "int"),
            "stability": fmt_value(met.get("stability_ari_median"), "float"),
            "seconds": fmt_value(round(man["seconds"]) if isinstance(man.get("seconds"), (int, float)) else None, "int"),
        })
    failed = []
    for p in list_failed_runs(out):
        reason = (p / "FAILED.txt").read_text(encoding="utf-8").strip() if (p / "FAILED.txt").is_file() else ""
        nbs = sorted(x.name for x in p.glob("*.ipynb"))
        failed.append({"name": p.name, "reason": reason[:400], "href": f"{p.name}/{nbs[-1]}" if nbs else ""})
    text = _env().get_template("reports_index.html.j2").render(runs=runs, failed=failed[:20],
                                                               n_failed=len(failed), out=str(out))
    out.mkdir(parents=True, exist_ok=True)
    return _atomic_write(out / "index.html", text)


# --------------------------------------------------------------------------- Markdown for notebooks


def md_table(df, formats: Mapping[str, str] | None = None, max_rows: int = 40, rename: Mapping[str, str] | None = None) -> str:
    """A polars frame as a Markdown table with human number formats (for ``IPython.display.Markdown``).

    ``formats`` maps a column to ``int`` / ``money`` / ``pct`` / ``float``; headers lose underscores.

    >>> import polars as pl
    >>> print(md_table(pl.DataFrame({"segment": ["A"], "share": [0.25]}), {"share": "pct"}))
    | segment | share |
    |---|---:|
    | A | 25.0% |
    """
    formats = dict(formats or {})
    rename = dict(rename or {})
    cols = list(df.columns)
    num = {c for c in cols if df.schema[c].is_numeric()}
    head = "| " + " | ".join(rename.get(c, c.replace("_", " ")) for c in cols) + " |"
    sep = "|" + "|".join("---:" if c in num else "---" for c in cols) + "|"
    rows = []
    for r in df.head(max_rows).iter_rows(named=True):
        cells = []
        for c in cols:
            v = r[c]
            text = fmt_value(v, formats.get(c, "auto")) if c in num or v is None else str(v)
            cells.append(text.replace("|", "\\|").replace("\n", " "))
        rows.append("| " + " | ".join(cells) + " |")
    more = [f"\n*{df.height - max_rows:,} more rows not shown.*"] if df.height > max_rows else []
    return "\n".join([head, sep, *rows, *more])


def quality_markdown(dq: Mapping[str, Any]) -> str:
    """The data-quality summary (``DataQualityReport.to_dict()``) as Markdown: totals, then one row per rule."""
    lines = [
        f"- **Rows:** {fmt_value(dq.get('rows_in'), 'int')} read, {fmt_value(dq.get('rows_out'), 'int')} used, "
        f"{fmt_value(dq.get('rows_excluded'), 'int')} excluded.",
        f"- **Customers:** {fmt_value(dq.get('customers_in'), 'int')} found, {fmt_value(dq.get('customers_out'), 'int')} kept"
        + (f", {fmt_value(dq.get('customers_dropped'), 'int')} dropped because none of their rows was usable."
           if dq.get("customers_dropped") else "."),
        f"- **As of:** {str(dq.get('as_of') or '-')[:10]}"
        + (" (the day after the last transaction)." if dq.get("as_of_inferred") else "."),
        "",
        "| rule | what it checks | rows found | rows excluded | action |",
        "|---|---|---:|---:|---|",
    ]
    for r in dq.get("rules", []):
        lines.append(f"| {r.get('rule')} | {r.get('description')} | {fmt_value(r.get('rows'), 'int')} | "
                     f"{fmt_value(r.get('excluded'), 'int')} | {r.get('action')} |")
    for note in dq.get("notes") or []:
        lines.append(f"\n*Note: {note}*")
    attrs = dq.get("customer_attributes")
    if attrs:
        lines.append(f"\n{customer_attributes_sentence(attrs)}")
    return "\n".join(lines)


def customer_attributes_sentence(attrs: Mapping[str, Any]) -> str:
    """One sentence on the customer attributes join: matched, only in one table, null ids."""
    text = (f"Customer attributes: {fmt_value(attrs.get('matched'), 'int')} of {fmt_value(attrs.get('customers'), 'int')} "
            f"customers matched; {fmt_value(attrs.get('only_in_transactions'), 'int')} have transactions but no attributes, "
            f"{fmt_value(attrs.get('only_in_attributes'), 'int')} have attributes but no usable transactions")
    if attrs.get("attribute_null_ids"):
        text += f", {fmt_value(attrs.get('attribute_null_ids'), 'int')} attribute rows have no customer id"
    return text + "."
