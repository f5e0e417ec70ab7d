"""The report pages: every sentence with numbers comes from a tested text function; the pages return one
Markdown or Figure per call, record the library's warnings and write the run folder's files."""
from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl
import pytest
import yaml
from matplotlib.figure import Figure

from segmentation_lib.describe import clustering_text as ct
from segmentation_lib.describe import exploration_text as et
from segmentation_lib.describe import validation_text as vt
from segmentation_lib.describe.notes_text import run_notes_markdown
from segmentation_lib.describe.rfm_page_text import score_notes_markdown
from segmentation_lib.report import pages

REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- exploration text


def test_top_line_markdown() -> None:
    tl = {"customers": 1234, "orders": 5678, "rows": 9012, "first": dt.datetime(2023, 1, 5), "last": dt.datetime(2024, 12, 31),
          "revenue": 123456.7, "returns_share": 0.0345, "repeat_share": 0.62, "median_orders": 3.0, "median_spend": 250.4,
          "top20_revenue_share": 0.615}
    assert et.top_line_markdown(tl, dt.datetime(2025, 1, 1)) == (
        "- **1,234 customers** placed **5,678 orders** (9,012 transaction lines) between\n"
        "  05 Jan 2023 and 31 Dec 2024; the analysis date is **01 Jan 2025**.\n"
        "- Net revenue was **123,457**; returns and cancellations took back 3.5% of gross sales.\n"
        "- 62% of customers ordered more than once. The median customer placed 3\n"
        "  order(s) and spent 250 in total.\n"
        "- The top 20% of customers by spend bring in **62% of net revenue**.")


MONTHLY = pl.DataFrame({"month": [dt.date(2024, 1, 1), dt.date(2024, 2, 1), dt.date(2024, 3, 1), dt.date(2024, 4, 1)],
                        "customers": [100, 300, 200, 50], "orders": [120, 400, 260, 60],
                        "revenue": [1000.0, 5000.0, 3000.0, 9000.0]})


def test_activity_sentence_leaves_out_the_partial_month() -> None:
    # as of 15 Apr: April is incomplete, so its 9,000 is no peak; March is the last complete month; mean of 100, 300, 200
    assert et.activity_sentence(MONTHLY, dt.date(2024, 4, 15)) == (
        "Revenue peaked in **February 2024** (5,000 from 300 customers). In the last complete month, March 2024, "
        "200 customers placed 260 orders (3,000), against a monthly average of 200 customers over the period.")
    # as of 1 May every month is complete
    assert et.activity_sentence(MONTHLY, dt.date(2024, 5, 1)).startswith("Revenue peaked in **April 2024** (9,000 from 50")
    assert et.complete_months(MONTHLY.head(2), dt.date(2024, 2, 10)).height == 2  # too short to drop a month


def test_spend_frequency_sentence() -> None:
    f = pl.DataFrame({"total_spend": [10.0, 20.0, 30.0, 40.0, 1000.0], "n_orders": [1, 1, 2, 5, 9]})
    q = et.spend_frequency_quantiles(f)
    assert q == {"p50": 30.0, "p90": 1000.0, "one_time": 0.4, "o90": 9.0}
    assert et.spend_frequency_sentence(q) == (
        "Half of the customers spent less than **30**, while the top 10% spent more than **1,000**. "
        "40% bought only once; the most active 10% placed 9 or more orders.")


# --------------------------------------------------------------------------- clustering text


def test_k_choice_and_outlier_sentences() -> None:
    info = {"k": 5, "algorithm": "gmm", "recommendation": {"reasons": "K=5 has the best BIC."}}
    assert ct.k_choice_sentence(info) == "**5 segments** (gmm). K=5 has the best BIC."
    a = pl.DataFrame({"cluster_name": ["Whales", "Whales", "Bargain", "Loyal"], "is_outlier": [True, True, True, False]})
    flagged = ct.flagged_by_segment(a)
    assert flagged == [("Whales", 2), ("Bargain", 1)]
    assert ct.outlier_sentence(3, 0.995, flagged) == (
        "3 outlier customer(s) (net spend above the 99.5% quantile, flagged `is_outlier`) were left out of fitting, so "
        "they cannot pull the segments, and then assigned by the fitted model: Whales (2), Bargain (1).")
    assert ct.outlier_sentence(0, 0.995, flagged) == ""
    assert ct.flagged_by_segment(a.drop("is_outlier")) == []


def test_profile_tables_and_sentences() -> None:
    prof = pl.DataFrame({"segment": [0, 1], "name": ["Loyal", "Casual"], "size": [30, 70], "share": [0.3, 0.7],
                         "revenue_share": [0.64, 0.36], "median_n_orders": [9.0, 2.0], "median_tenure_days": [400.0, 90.0],
                         "rel_n_orders": [1.2, -0.5]})
    show = ct.profile_table(prof, ["n_orders", "tenure_days", "total_spend"])
    assert show.columns == ["segment", "size", "share", "revenue_share", "median n orders", "median tenure days"]
    assert show["segment"].to_list() == ["Loyal", "Casual"]
    assert ct.most_valuable_sentence(prof) == "**Loyal** is the most valuable segment: 30% of customers bringing 64% of revenue."
    assert ct.most_valuable_sentence(prof.drop("revenue_share")) == "**Casual** is the most valuable segment: 70% of customers."
    heat = ct.importance_table(prof.select("segment", "name", "rel_n_orders"))
    assert heat.rows() == [("Loyal", 1.2), ("Casual", -0.5)] and heat.columns == ["segment", "n_orders"]
    assert ct.projection_sentence(1234, [0.4, 0.255]) == (
        "A seeded sample of 1,234 customers; the two axes keep 66% of the variation in the clustering features.")
    assert ct.rules_markdown(0.954, "If x <= 1 then segment 'A'\n \nIf x > 1 then segment 'B'\n") == (
        "The rules below reproduce the segments for **95% of customers**. The same rules as SQL are in "
        "`segment_rules.sql` in this run folder.\n\n- If x <= 1 then segment 'A'\n- If x > 1 then segment 'B'")


# --------------------------------------------------------------------------- validation text


def test_separation_table() -> None:
    qs = {"silhouette": 0.512, "calinski_harabasz": 2000.25, "calinski_harabasz_rows": 12345, "davies_bouldin": 0.8}
    t = vt.separation_table(qs, [(0.7, "strong"), (0.5, "reasonable")], "reasonable")
    assert vt.separation_markdown(t) == (
        "| measure | value | how to read it |\n|---|---:|---|\n"
        "| Silhouette | 0.512 | -1..1 (strong from 0.7, reasonable from 0.5); here: reasonable structure |\n"
        "| Calinski-Harabasz | 2,000.2 | higher = more separated; no fixed scale, it grows with the number of customers "
        "(here 12,345), so the clustering page's value, on a smaller sample, is lower |\n"
        "| Davies-Bouldin | 0.800 | lower = more separated; below 1 is good |")
    undefined = vt.separation_table({}, [(0.7, "strong")], None)
    assert undefined["how to read it"][0].endswith("here: undefined structure") and undefined["value"].null_count() == 3


def test_stability_texts() -> None:
    s = {"n_resamples": 5, "ari_median": 0.876, "ari_min": 0.5, "n_stable": 2, "n_moderate": 1, "n_doubtful": 1}
    assert vt.stability_sentence(s) == (
        "Median adjusted Rand index across 5 refits: **0.88** (lowest 0.50). 2 segment(s) stable, 1 moderate, 1 doubtful.")
    st = vt.stability_table(pl.DataFrame({"segment": ["1", "0", "-1"], "jaccard_mean": [0.9, 0.8, 0.3]}), {0: "A", 1: "B"})
    assert st["segment"].to_list() == ["B", "A", "Noise"]


def test_predictive_texts() -> None:
    sep = pl.DataFrame({"method": ["clusters", "rfm"], "n_segments": [4, 6], "eta_squared_spend": [0.456, 0.123],
                        "eta_squared_purchase": [0.5, 0.25], "purchase_rate_spread": [0.9, 0.8],
                        "best_segment": ["A", "Champions"], "worst_segment": ["B", "Lost"], "extra": [1, 2]})
    table = vt.predictive_table(sep)
    assert "extra" not in table.columns
    assert vt.predictive_markdown(table).splitlines()[2] == "| clusters | 4 | 45.6% | 50.0% | 90.0% | A | B |"
    ps = {"cutoff": "2024-06-01T00:00:00+00:00", "new_in_holdout_excluded": 1500}
    assert vt.predictive_sentence(ps, 60, table) == (
        "Cutoff 2024-06-01, holdout of 60 days; 1,500 customers first seen in the holdout were excluded. "
        "**Behavioural segments** explain more of the holdout spend (45.6%).")
    assert vt.refit_sentence(3, 4, "hdbscan") == (
        "Refitted on the history before the cutoff, hdbscan found **3 segments** instead of 4: the structure it finds "
        "depends on the period, so this comparison describes that refit, not the segments of this run.")
    assert vt.refit_sentence(None, 4, "kmeans") == "" == vt.refit_sentence(4, 4, "kmeans")


def test_migration_checks_truth_and_summary() -> None:
    ms = {"changed_share": 0.255, "customers_in_both": 1000, "moved_to_at_risk": 42, "appeared": 1200}
    assert vt.migration_sentence(ms) == (
        "26% of the 1,000 customers present at both dates changed segment; **42** moved into an at-risk or lost segment, "
        "and 1,200 are new.")
    checks = pl.DataFrame({"check": ["a", "b", "c", "d"], "status": ["pass", "warn", "info", "fail"],
                           "reason": ["ok", "small", "fyi", "no"]})
    assert vt.checks_markdown(checks).splitlines()[2:] == ["| a | ✅ pass | ok |", "| b | ⚠️ warn | small |",
                                                           "| c | ℹ️ info | fyi |", "| d | fail | no |"]
    assert vt.truth_markdown(0.8, 0.777) == (
        "## Agreement with the planted truth\nThe demo data has known customer archetypes. Adjusted Rand index **0.80** "
        "(1 = identical grouping), normalised mutual information 0.78.")
    conf = pl.DataFrame({"segment": ["B", "A"], "truth": ["y", "x"], "count": [2, 5]})
    assert vt.truth_wide(conf).sort("segment").rows() == [("A", 5, 0), ("B", 0, 2)]
    assert vt.summary_markdown("10 customers.") == "**Summary.** 10 customers."


def test_notes_and_score_notes() -> None:
    assert run_notes_markdown([]) == ""
    assert run_notes_markdown(["a  b", "c", "a b"]) == (
        "**Notes on this run.** The library raised these warnings while computing this page:\n\n- a b (2 times)\n- c")
    assert score_notes_markdown(None) == ""
    assert score_notes_markdown({"n_orders": "3 values.", "total_spend": "1 value."}) == (
        "**Note on n_orders:** 3 values.\n\n**Note on total_spend:** 1 value.")


def test_markdown_text_displays_once_or_not_at_all(monkeypatch) -> None:
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append(obj))
    pages.MarkdownText("**x**")._ipython_display_()
    pages.MarkdownText("")._ipython_display_()
    assert shown == [{"text/markdown": "**x**", "text/plain": "**x**"}]
    assert pages.MarkdownText("")._repr_markdown_() is None


def test_recording_keeps_user_warnings_and_shows_the_rest() -> None:
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as outer:
        warnings.simplefilter("always")
        with pages.recording(notes):
            warnings.warn("rule 'x' matches no customer.", UserWarning)
            warnings.warn("numpy said so", RuntimeWarning)
    assert notes == ["rule 'x' matches no customer."]
    assert [str(w.message) for w in outer] == ["numpy said so"]


# --------------------------------------------------------------------------- the pages on a small demo project


@pytest.fixture(scope="module")
def demo_cfg(tmp_path_factory) -> Path:
    """configs/default.yaml pointed at 1,500 demo customers (small samples; one rule matching nobody)."""
    from segmentation_lib.data.demo import write_demo_data

    root = tmp_path_factory.mktemp("pages")
    paths = write_demo_data(root / "data", n_customers=1500, seed=11)
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["data"]["path"] = str(paths["transactions"])
    cfg["data"]["customers"]["path"] = str(paths["customers"])
    cfg["data"]["truth"] = str(paths["truth"])
    cfg["report"] = {**(cfg.get("report") or {}), "out_dir": str(root / "reports")}
    cfg["clustering"].update(k_range=[2, 6], metric_sample_size=1500, n_init=2)
    cfg["validation"].update(n_resamples=2, sample_size=1500, n_seeds=1, metric_sample_size=1500)
    cfg["rules"]["rules"] = [{"name": "Diamond", "when": "total_spend >= 1e12"}, *cfg["rules"]["rules"]]
    path = root / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(demo_cfg, tmp_path_factory) -> dict[str, pages.Page]:
    run_dir = tmp_path_factory.mktemp("run")
    out = {}
    for name, opts in (("exploration", {"max_cohorts": 12}), ("rfm", {}), ("clustering", {"projection_sample": 800}),
                       ("validation", {})):
        out[name] = pages.notebook_setup(name, str(demo_cfg), str(run_dir), seed=7, **opts)
    return out


def _public_methods(page: pages.Page) -> list[str]:
    own = [n for cls in type(page).__mro__ if cls not in (object,) for n, v in vars(cls).items()
           if callable(v) and not n.startswith("_")]
    return list(dict.fromkeys(own))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["exploration", "rfm", "clustering", "validation"])
def test_every_page_method_returns_a_figure_or_markdown(run, name: str) -> None:
    page = run[name]
    methods = _public_methods(page)
    assert "run_notes" in methods and len(methods) >= 6
    for method in methods:
        result = getattr(page, method)()
        assert isinstance(result, (pages.Chart, pages.MarkdownText)), (name, method, type(result))
        if isinstance(result, pages.Chart):
            fig = result.figure
            assert isinstance(fig, Figure) and fig.number not in plt.get_fignums(), (name, method, "figure left open")
            assert fig.axes and fig.axes[0].get_title() or fig._suptitle is not None, (name, method)
            assert result.caption.endswith(".") and result.caption.count(". ") == 0, (name, method, result.caption)
        elif method not in ("score_notes", "run_notes", "feedback", "purchase_mix"):  # empty when not configured
            assert result.strip(), (name, method)


@pytest.mark.slow
def test_pages_write_the_rules_and_record_warnings(run) -> None:
    cl = run["clustering"]
    sql = cl.ctx.run_dir / "segment_rules.sql"
    assert sql.read_text(encoding="utf-8") == cl.info["surrogate_sql"] + "\n"
    # the rule matching nobody warns while the RFM stage computes: listed once, not hidden
    notes = run["rfm"].run_notes()
    assert notes.startswith("**Notes on this run.**") and notes.count("rule 'Diamond' matches no customer") == 1
    assert run["exploration"].run_notes() == ""
    assert run["validation"].truth_summary().startswith("## Agreement with the planted truth")


@pytest.mark.slow
def test_projection_and_snake_plot_share_segment_colours(run) -> None:
    from matplotlib.colors import to_hex

    cl = run["clustering"]
    snake = {line.get_label(): to_hex(line.get_color()) for line in cl.snake_plot().axes[0].get_lines()
             if not line.get_label().startswith("_")}
    proj = {c.get_label(): to_hex(c.get_facecolor()[0], keep_alpha=False) for c in cl.projection().axes[0].collections}
    assert set(snake) == set(cl.names.values()) and set(proj) <= set(snake) and len(proj) >= 2
    assert all(proj[name] == snake[name] for name in proj), (proj, snake)
    assert snake == {n: c for n, c in cl.palette.items() if n in snake}
    assert run["validation"].palette == cl.palette  # the same mapping on every page of the run
