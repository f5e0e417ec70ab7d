"""The five report pages: one setup call per notebook, then one call per cell returning what the cell shows.

A notebook holds no logic of its own: its setup cell is ``page = notebook_setup("exploration", config_path,
run_dir, seed=seed, as_of=as_of, ...)`` and every later cell one call such as ``page.top_line()``. A call
returns a :class:`MarkdownText` (text and tables), a matplotlib ``Figure`` (closed from pyplot, so the
inline backend does not show it a second time) or None (a section that does not apply to this run).
Warnings the library raises while a page computes are recorded and listed by ``page.run_notes()``.

>>> page = notebook_setup("exploration", "configs/default.yaml", "/tmp/run")  # doctest: +SKIP
>>> page.top_line()                                                            # doctest: +SKIP
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, Callable, Iterator, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from segmentation_lib.describe import captions, clustering_text, exploration_text, history_text, validation_text, value_text
from segmentation_lib.describe.format import inert_markdown, md_table
from segmentation_lib.describe.notes_text import run_notes_markdown
from segmentation_lib.describe.rfm_page_text import boundaries_markdown, score_notes_markdown
from segmentation_lib.report import plots, stages
from segmentation_lib.report.context import RunContext, open_run
from segmentation_lib.report.files import write_json
from segmentation_lib.report.timings import stage_timer, timed, timing_dir

F = TypeVar("F", bound=Callable[..., Any])


# --------------------------------------------------------------------------- what a cell returns


class MarkdownText(str):
    """A Markdown string that IPython displays once, as Markdown; an empty one displays nothing.

    What is displayed is :func:`~segmentation_lib.describe.format.inert_markdown` of the text: a
    user-supplied name (a segment, rule or run name) that looks like HTML shows literally.

    >>> MarkdownText("**hi** <script>x</script>")._repr_markdown_()
    '**hi** &lt;script>x&lt;/script>'
    """

    def _repr_markdown_(self) -> str | None:
        return inert_markdown(str(self)) or None

    def _ipython_display_(self) -> None:
        if str(self):
            from IPython.display import display

            display({"text/markdown": inert_markdown(str(self)), "text/plain": str(self)}, raw=True)


def _md(*parts: str) -> MarkdownText:
    """The non-empty ``parts`` as one Markdown text, separated by blank lines."""
    return MarkdownText("\n\n".join(p for p in parts if p))


def _figure(drawn: Axes | Figure) -> Figure:
    """The Figure of what a plot function returned, closed from pyplot (IPython's formatter shows the returned one)."""
    fig = drawn if isinstance(drawn, Figure) else drawn.figure
    plt.close(fig)
    return fig


class Chart:
    """A closed figure with its one-sentence caption (what to look at, from the numbers): IPython shows the figure,
    then the caption in italics. Attributes other than ``figure`` and ``caption`` are the figure's.

    >>> fig = plt.figure(); plt.close(fig)
    >>> Chart(fig, "The largest segment holds 31% of customers.").caption
    'The largest segment holds 31% of customers.'
    """

    def __init__(self, figure: Figure, caption: str = "") -> None:
        self.figure = figure
        self.caption = caption

    def __getattr__(self, name: str) -> Any:
        if name in ("figure", "caption"):
            raise AttributeError(name)
        return getattr(self.figure, name)

    def caption_markdown(self) -> MarkdownText:
        """The caption as an italic Markdown line (empty without a caption)."""
        return MarkdownText(f"*{self.caption}*" if self.caption else "")

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.figure)
        self.caption_markdown()._ipython_display_()


def _chart(drawn: Axes | Figure, caption: str) -> Chart:
    """The closed Figure of what a plot function returned, with its caption."""
    return Chart(_figure(drawn), caption)


@contextlib.contextmanager
def recording(sink: list[str]) -> Iterator[None]:
    """Record the messages of UserWarnings raised inside into ``sink``; other warnings are shown as usual.

    >>> notes: list[str] = []
    >>> with recording(notes):
    ...     warnings.warn("rule 'x' matches no customer.", UserWarning)
    >>> notes
    ["rule 'x' matches no customer."]
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        yield
    for w in caught:
        if issubclass(w.category, UserWarning):
            sink.append(str(w.message))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _recorded(method: F) -> F:
    """Run a page method with its warnings recorded into the page's notes."""

    @functools.wraps(method)
    def wrapper(self: "Page", *args: Any, **kwargs: Any) -> Any:
        with recording(self.notes), stage_timer(timing_dir(self.ctx), f"cell: {method.__name__}"):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- pages


class Page:
    """What every page has: the run context, its stages' results, one segment palette and the run notes."""

    def __init__(self, ctx: RunContext, **options: Any) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.options = options
        self.notes: list[str] = []
        with recording(self.notes):
            self._compute()

    def _compute(self) -> None:  # the stages of the page
        raise NotImplementedError

    def run_notes(self) -> MarkdownText:
        """"Notes on this run": the warnings raised while this page computed (empty when there were none);
        also left in ``work/notes_<page>.json`` for the run's ``metrics.json``."""
        name = next((k for k, v in PAGES.items() if v is type(self)), type(self).__name__)
        write_json(self.ctx.work / f"notes_{name}.json", [" ".join(str(m).split()) for m in self.notes])
        return MarkdownText(run_notes_markdown(self.notes))

    def glossary(self) -> MarkdownText:
        """"Terms on this page": one sentence per term the page uses (``describe.glossary.PAGE_TERMS`` under the
        page's name in :data:`PAGES`), from the one glossary of the report."""
        from segmentation_lib.describe.glossary import PAGE_TERMS, glossary_markdown

        name = next((n for n, cls in PAGES.items() if type(self) is cls), "")
        return MarkdownText(glossary_markdown(PAGE_TERMS.get(name, ())))


class ExplorationPage(Page):
    """01 exploration: top line, data quality, activity over time, spend / frequency, cohort retention."""

    def _compute(self) -> None:
        from segmentation_lib.describe import activity

        self.data = stages.data_stage(self.ctx, recompute=True)
        work = timing_dir(self.ctx)
        self.monthly = timed(work, "exploration: monthly activity", activity.monthly_activity, self.data.parts())
        self.top = timed(work, "exploration: top line", activity.top_line, self.data.parts(), self.data.features)

    @_recorded
    def top_line(self) -> MarkdownText:
        """Customers, orders, period, revenue, returns, repeat share and concentration."""
        return _md(exploration_text.top_line_markdown(self.top, self.data.as_of))

    @_recorded
    def quality_table(self) -> MarkdownText:
        """What each data-quality rule found and what was done."""
        from segmentation_lib.describe.quality_text import quality_markdown

        return _md(quality_markdown(self.data.quality))

    @_recorded
    def activity_over_time(self) -> Chart:
        """Customers, orders and revenue per month."""
        return _chart(plots.activity_over_time(self.monthly), captions.activity_caption(self.monthly))

    @_recorded
    def activity_summary(self) -> MarkdownText:
        """Peak month, last complete month and the monthly average."""
        return _md(exploration_text.activity_sentence(self.monthly, self.data.as_of))

    @_recorded
    def spend_frequency(self) -> Chart:
        """Spend and orders per customer (log scales)."""
        return _chart(plots.log_distributions(self.data.features), captions.distribution_caption(self.data.features))

    @_recorded
    def spend_frequency_summary(self) -> MarkdownText:
        """Median and top-10% spend, one-time buyers, most active customers."""
        return _md(exploration_text.spend_frequency_sentence(exploration_text.spend_frequency_quantiles(self.data.features)))

    @functools.cached_property
    def _cohorts(self) -> pl.DataFrame:
        from segmentation_lib.features.cohorts import cohort_table

        with recording(self.notes):
            return cohort_table(self.data.scan("customer_id", "timestamp", "amount"), period="month")

    @_recorded
    def cohort_retention(self) -> Chart:
        """Cohort retention heatmap (the latest ``max_cohorts`` first-purchase months)."""
        from segmentation_lib.features.cohorts import retention_curve

        ret = self._cohorts.rename({"period_number": "months_since"})
        return _chart(plots.cohort_heatmap(ret, max_cohorts=int(self.options.get("max_cohorts", 24))),
                      captions.retention_caption(retention_curve(self._cohorts)))

    @_recorded
    def retention_summary(self) -> MarkdownText:
        """Pooled retention 1, 3 and 12 months after the first purchase."""
        from segmentation_lib.features.cohorts import describe_retention, retention_curve

        return _md(describe_retention(retention_curve(self._cohorts), periods=(1, 3, 12), period="month"))

    @_recorded
    def purchase_mix(self) -> MarkdownText:
        """Categories and discounts (top categories, discount shares, lines counted as uncategorised / not on
        discount); nothing when no category, product table or discount column is configured."""
        from segmentation_lib.describe.purchase_mix_text import purchase_mix_markdown

        return _md(purchase_mix_markdown(self.data.quality.get("purchase_mix"), self.data.features))


def segment_stats_markdown(ctx: RunContext, segmentation: str) -> MarkdownText:
    """The ``segmentation`` rows of the run's ``segment_stats.parquet`` as a table, then the unknown-customer sentence."""
    from segmentation_lib.describe.segment_stats import unknown_customers_sentence

    stats = pl.read_parquet(ctx.run_dir / stages.SEGMENT_STATS_FILE).filter(pl.col("segmentation") == segmentation)
    unknown = int(stats["unknown_customer_rows"].max() or 0) if stats.height else 0
    show = stats.drop("segmentation", "unknown_customer_rows")
    money = ("spend", "spend_per_customer", "spend_per_transaction", "price_per_unit")
    formats = {c: "money" for c in money} | {c: "pct" for c in show.columns if c.endswith("_share")}
    formats |= {"customers": "int", "transactions": "int", "units": "int"}
    note = unknown_customers_sentence(unknown, "the data-quality report's null_customer rule, as the clean "
                                      "transactions no longer hold those rows")
    return _md(md_table(show, formats), note, f"The table is also in `{stages.SEGMENT_STATS_FILE}` in this run folder.")


def feedback_markdown(ctx: RunContext, data: stages.DataStage, methods: list[tuple[str, pl.DataFrame, str]],
                      recompute: bool = False) -> MarkdownText:
    """"What customers say": the configured feedback signals per segment of each ``(title, table, column)``
    method, with intervals and the difference tests (empty when no ``feedback`` is configured)."""
    from segmentation_lib.describe.feedback_text import feedback_markdown as section
    from segmentation_lib.validate.feedback import feedback_by_segment, feedback_sources

    fb = stages.feedback_stage(ctx, data, recompute=recompute)
    if fb is None:
        return MarkdownText("")
    c = ctx.cfg["feedback"]
    found = [(title, feedback_by_segment(fb, table, col, float(c["confidence"]), int(c["min_responses"])))
             for title, table, col in methods if col in table.columns and table[col].drop_nulls().len()]
    return _md(section(found, feedback_sources(ctx.cfg)))


class RFMPage(Page):
    """02 RFM: scores, cut points, the segment map, sizes, R x F heatmap, value / engagement, tiers, actions."""

    def _compute(self) -> None:
        from segmentation_lib.describe.rfm_text import score_axis_labels
        from segmentation_lib.segment.rfm_maps import load_segment_map, map_bins

        rc = self.cfg["rfm"]
        self.data = stages.data_stage(self.ctx)
        self.rfm = stages.rfm_stage(self.ctx, self.data, recompute=True)
        self.measures = [rc["recency"], rc["frequency"], rc["monetary"]]  # the configured R, F, M columns
        cols = dict.fromkeys([*self.measures, "total_spend"])
        self.table = self.rfm.table.join(self.data.features.select("customer_id", *cols), on="customer_id")
        self.segment_map_ = load_segment_map(rc["segment_map"], bins=map_bins(rc["bins"]))  # the map for the bin count
        self.axis = score_axis_labels(self.rfm.scorer)
        self.palette = plots.segment_palette(self.segment_map_.segments)

    @_recorded
    def scores_intro(self) -> MarkdownText:
        """What each score measures and its range."""
        from segmentation_lib.describe.rfm_text import describe_scores

        return _md(describe_scores(self.rfm.scorer))

    @_recorded
    def score_boundaries(self) -> MarkdownText:
        """How this run's score boundaries were set (frozen edges, thresholds, percentiles or quantiles)."""
        return _md(boundaries_markdown(self.cfg["rfm"]))

    @_recorded
    def score_ranges(self) -> MarkdownText:
        """The value range of every score, then what the best score takes."""
        from segmentation_lib.describe.rfm_text import describe_cut_points, score_ranges

        return _md(md_table(score_ranges(self.rfm.scorer)), describe_cut_points(self.rfm.scorer))

    @_recorded
    def score_notes(self) -> MarkdownText:
        """Columns with fewer distinct values than score levels (empty when none)."""
        return _md(score_notes_markdown(getattr(self.rfm.scorer, "degenerate_", None)))

    @_recorded
    def segment_map_intro(self) -> MarkdownText:
        """Which map is used and how the chart reads."""
        from segmentation_lib.describe.rfm_text import describe_segment_map

        return _md(describe_segment_map(self.segment_map_))

    @_recorded
    def segment_map(self) -> Chart:
        """The most common segment per recency x frequency cell."""
        cells = self.table.drop_nulls("rfm_segment")
        return _chart(plots.segment_map(cells, segment_col="rfm_segment", labels=self.axis, palette=self.palette),
                      captions.segment_map_caption(cells, "rfm_segment"))

    @functools.cached_property
    def sizes(self) -> pl.DataFrame:
        """Customers, revenue and median R / F / M per RFM segment."""
        from segmentation_lib.describe.tables import segment_summary

        return segment_summary(self.table, "rfm_segment", median_cols=self.measures)

    @_recorded
    def segment_sizes(self) -> Chart:
        """Customers and revenue share per RFM segment."""
        return _chart(plots.segment_bars(self.sizes, segment_col="rfm_segment", title="Customers by RFM segment"),
                      captions.largest_segment_caption(self.sizes, "rfm_segment"))

    @_recorded
    def segment_table(self) -> MarkdownText:
        """The segment summary table and its sentence (largest, most revenue)."""
        from segmentation_lib.describe.tables import describe_summary

        formats = {"share": "pct", "revenue_share": "pct", "revenue": "money", f"median_{self.cfg['rfm']['monetary']}": "money"}
        return _md(md_table(self.sizes, formats), describe_summary(self.sizes, "rfm_segment"))

    @_recorded
    def score_heatmap(self) -> Chart:
        """Customers per recency x frequency score."""
        return _chart(plots.score_heatmap(self.table, labels=self.axis), captions.busiest_cell_caption(self.table))

    @functools.cached_property
    def _value_engagement(self) -> pl.DataFrame:
        from segmentation_lib.segment.value_engagement import value_engagement_summary

        return value_engagement_summary(self.table)

    @_recorded
    def value_engagement(self) -> Chart:
        """The 2 x 2 value vs engagement matrix."""
        return _chart(plots.value_engagement(self._value_engagement),
                      captions.quadrant_caption(self._value_engagement, "value_engagement", "revenue_share", "revenue"))

    @_recorded
    def value_engagement_summary(self) -> MarkdownText:
        """What high value / engagement mean, and the high-value, low-engagement cell."""
        from segmentation_lib.describe.rfm_text import describe_value_engagement

        ve = self.cfg["rfm"].get("value_engagement") or {}
        return _md(describe_value_engagement(self.data.features, self._value_engagement, **ve))

    @_recorded
    def rule_tiers(self) -> MarkdownText:
        """Customers and revenue per rule-based tier."""
        from segmentation_lib.describe.tables import segment_summary

        tiers = segment_summary(self.table, self.rfm.rule_col, median_cols=[])
        return _md(md_table(tiers, {"share": "pct", "revenue_share": "pct", "revenue": "money"}))

    @_recorded
    def actions(self) -> MarkdownText:
        """The suggested action per RFM segment."""
        from segmentation_lib.describe.tables import with_actions

        acts = with_actions(self.sizes, self.segment_map_.actions, "rfm_segment")
        return _md(md_table(acts.select("rfm_segment", "customers", "revenue_share", "suggested_action"),
                            {"revenue_share": "pct"}, rename={"rfm_segment": "segment"}))

    @_recorded
    def segment_stats(self) -> MarkdownText:
        """Customers, transactions, spend and their ratios and shares per RFM segment (segment_stats.parquet)."""
        return segment_stats_markdown(self.ctx, "rfm")

    @_recorded
    def feedback(self) -> MarkdownText:
        """What customers say (NPS, CSAT, tickets, sentiment) per RFM segment, value / engagement cell and rule
        tier, with intervals (empty when no ``feedback`` is configured)."""
        methods = [("RFM segments", self.rfm.table, "rfm_segment"),
                   ("value / engagement cells", self.rfm.table, "value_engagement"),
                   ("rule-based tiers", self.rfm.table, self.rfm.rule_col)]
        return feedback_markdown(self.ctx, self.data, methods, recompute=True)


def cluster_labels(assignments: pl.DataFrame, features: pl.DataFrame) -> np.ndarray:
    """The cluster id of every row of ``features`` (assignments aligned on ``customer_id``; null when absent).

    >>> a = pl.DataFrame({"customer_id": ["b", "a"], "cluster": [1, 0]})
    >>> cluster_labels(a, pl.DataFrame({"customer_id": ["a", "b"]})).tolist()
    [0, 1]
    """
    return stages.cluster_labels_of(assignments, features)


def cluster_palette(info: dict[str, Any]) -> dict[str, str]:
    """:func:`plots.segment_palette` of a run's behavioural segments: names in segment-id order, then the fixed greys.

    >>> cluster_palette({"names": {"1": "B", "0": "A"}})["A"]
    '#4c72b0'
    """
    names = [v for _, v in sorted((int(k), v) for k, v in info["names"].items())]
    return plots.segment_palette([*names, "Noise", stages.NO_PURCHASE_NAME])


class ClusteringPage(Page):
    """03 clustering: how many segments, profiles, snake plot, 2-D projection, surrogate rules, vs RFM."""

    def _compute(self) -> None:
        self.data = stages.data_stage(self.ctx)
        self.rfm = stages.rfm_stage(self.ctx, self.data)
        self.cl = stages.clustering_stage(self.ctx, self.data, self.rfm, recompute=True)
        self.model, self.info = self.cl.model, self.cl.info
        self.features = stages.purchasing(self.data.features)  # customers with purchases
        self.names = {int(k): v for k, v in self.info["names"].items()}
        self.labels = cluster_labels(self.cl.assignments, self.features)
        self.palette = cluster_palette(self.info)

    @_recorded
    def intro(self) -> MarkdownText:
        """What the segments were found from (the run's ``clustering.features``)."""
        return _md(clustering_text.features_intro(self.cfg["clustering"]["features"]))

    @_recorded
    def k_choice(self) -> MarkdownText:
        """How many segments and why; the outliers left out of fitting when there were any."""
        excluded = int(self.info.get("excluded_from_fit") or 0)
        outliers = clustering_text.outlier_sentence(excluded, float(self.cfg["quality"]["outlier_quantile"]),
                                                    clustering_text.flagged_by_segment(self.cl.assignments) if excluded else [])
        return _md(clustering_text.k_choice_sentence(self.info), outliers)

    @_recorded
    def k_sweep(self) -> Chart | None:
        """Quality metrics across k (None when k was configured, without a sweep)."""
        if self.model.sweep_ is None:
            return None
        return _chart(plots.k_sweep(self.model.sweep_, chosen_k=self.info["k"]),
                      captions.k_sweep_caption(int(self.info["k"]), str(self.info["algorithm"])))

    @functools.cached_property
    def profiles(self) -> pl.DataFrame:
        """Per-segment sizes, shares, means, medians and relative importance of the clustering features."""
        from segmentation_lib.segment.preprocessing import readable_profiles, with_encoded
        from segmentation_lib.segment.profiles import segment_profiles

        with recording(self.notes):
            frame, columns = with_encoded(self.model, self.features)  # text features as the model encodes them
            return readable_profiles(self.model, segment_profiles(frame, self.labels, names=self.names, columns=columns))

    @_recorded
    def importance(self) -> Chart:
        """Each segment's mean against the average customer, per feature."""
        from segmentation_lib.segment.profiles import relative_importance

        heat = clustering_text.importance_table(relative_importance(self.profiles, form="wide"))
        return _chart(plots.importance_heatmap(heat), captions.strongest_cell_caption(
            heat, "The strongest contrast: segment '{row}' is at {value} against the average customer on {column}.", "signed_pct"))

    @_recorded
    def profile_table(self) -> MarkdownText:
        """Size, shares and feature medians per segment, and the most valuable segment."""
        from segmentation_lib.segment.preprocessing import one_hot_shares

        show = clustering_text.profile_table(self.profiles, self.cfg["clustering"]["features"])
        shares = one_hot_shares(self.model, self.profiles)  # one-hot text features: share of the segment per level
        show = show.hstack(shares)
        return _md(md_table(show, {"share": "pct", "revenue_share": "pct", "size": "int", **{c: "pct" for c in shares.columns}}),
                   clustering_text.most_valuable_sentence(self.profiles))

    @_recorded
    def snake_plot(self) -> Chart:
        """Standardised feature means per segment (the model's scale)."""
        from segmentation_lib.describe.projection import standardised_means

        means = standardised_means(self.model, self.features, self.labels, self.names)
        return _chart(plots.snake_plot(means, palette=self.palette), captions.strongest_cell_caption(
            means, "The line furthest from 0 is segment '{row}' on {column}, at {value} from the average customer.", "sd"))

    @functools.cached_property
    def _projection(self) -> tuple[pl.DataFrame, list[float]]:
        from segmentation_lib.describe.projection import pca_projection

        with recording(self.notes):
            seg = self.cl.assignments.select("customer_id", pl.col("cluster_name").alias("segment"))
            return pca_projection(self.model, self.features, seg, int(self.options.get("projection_sample", 3000)),
                                  self.ctx.seed)

    @_recorded
    def projection_summary(self) -> MarkdownText:
        """Sample size of the 2-D picture and the variation it keeps."""
        coords, explained = self._projection
        return _md(clustering_text.projection_sentence(coords.height, explained))

    @_recorded
    def projection(self) -> Chart:
        """Customers on the first two principal components, coloured by segment."""
        coords, explained = self._projection
        return _chart(plots.projection(coords, explained=explained, palette=self.palette),
                      captions.projection_caption(coords.height, explained))

    @_recorded
    def surrogate_rules(self) -> MarkdownText:
        """How well the rules reproduce the segments, then the rules (the SQL is in segment_rules.sql)."""
        return _md(clustering_text.rules_markdown(self.info["surrogate_fidelity"], self.info["surrogate_rules"]))

    @_recorded
    def rfm_crosstab(self) -> Chart:
        """How each behavioural segment spreads over the RFM segments."""
        from segmentation_lib.segment.profiles import crosstab

        a = self.cl.assignments
        ct = crosstab(a["cluster_name"], a["rfm_segment"].fill_null("(none)"), "segment", "rfm")
        return _chart(plots.crosstab_heatmap(ct, "segment", "Behavioural segment vs RFM segment (share of each behavioural segment)",
                                             "RFM segment", "Behavioural segment"),
                      captions.strongest_cell_caption(captions.row_shares(ct), "The strongest overlap: {value} of segment '{row}' are RFM '{column}'."))

    @_recorded
    def segment_stats(self) -> MarkdownText:
        """Customers, transactions, spend and their ratios and shares per behavioural segment (segment_stats.parquet)."""
        return segment_stats_markdown(self.ctx, "behavioural")

    @_recorded
    def feedback(self) -> MarkdownText:
        """What customers say per behavioural segment, with intervals (empty when no ``feedback`` is configured)."""
        return feedback_markdown(self.ctx, self.data, [("behavioural segments", self.cl.assignments, "cluster_name")])


class ValidationPage(Page):
    """04 validation: summary, separation, stability, predictive validity, migration, checklist, planted truth."""

    def _compute(self) -> None:
        self.data = stages.data_stage(self.ctx)
        self.rfm = stages.rfm_stage(self.ctx, self.data)
        self.cl = stages.clustering_stage(self.ctx, self.data, self.rfm)
        self.val = stages.validation_stage(self.ctx, self.data, self.rfm, self.cl)
        self.metrics = self.val.metrics
        self.names = {int(k): v for k, v in self.cl.info["names"].items()}
        self.palette = cluster_palette(self.cl.info)

    @_recorded
    def summary(self) -> MarkdownText:
        """The run's plain-language summary paragraph."""
        return _md(validation_text.summary_markdown(self.metrics["summary_text"]))

    @_recorded
    def separation_table(self) -> MarkdownText:
        """Silhouette, Calinski-Harabasz and Davies-Bouldin with how to read them."""
        from segmentation_lib.validate.common import SILHOUETTE_READINGS
        from segmentation_lib.validate.resampling import silhouette_reading

        qs = self.val.quality.summary
        table = validation_text.separation_table(qs, SILHOUETTE_READINGS, silhouette_reading(qs.get("silhouette")))
        return _md(validation_text.separation_markdown(table))

    @_recorded
    def stability_summary(self) -> MarkdownText:
        """ARI across refits and how many segments are stable."""
        return _md(validation_text.stability_sentence(self.val.stability.summary))

    @_recorded
    def stability_figure(self) -> Chart:
        """Per-segment Jaccard stability against the thresholds."""
        vc = self.cfg["validation"]
        st = validation_text.stability_table(self.val.stability.segments, self.names)
        return _chart(plots.stability_bars(st, stable=float(vc["stable_threshold"]), doubtful=float(vc["doubtful_threshold"])),
                      captions.stability_caption(st, float(vc["stable_threshold"])))

    @_recorded
    def predictive_table(self) -> MarkdownText:
        """Variance explained per method, the cutoff sentence and a note when the refit found another k."""
        table = validation_text.predictive_table(self.val.predictive.separation)
        info = self.cl.info
        return _md(validation_text.predictive_markdown(table),
                   validation_text.predictive_sentence(self.val.predictive.summary, int(self.cfg["validation"]["holdout_days"]), table),
                   validation_text.refit_sentence(self.metrics.get("predictive_clusters_refit_k"), info["k"], info["algorithm"]))

    @_recorded
    def predictive_figure(self) -> Chart:
        """Mean holdout spend per segment, behavioural vs RFM."""
        labels = {"clusters": "Behavioural segments", "rfm": "RFM segments"}
        return _chart(plots.predictive_comparison(self.val.predictive.segments, value_col="mean_holdout_spend", labels=labels),
                      captions.holdout_spend_caption(self.val.predictive.segments,
                                                     {"clusters": "behavioural segments", "rfm": "RFM segments"}))

    @_recorded
    def migration_summary(self) -> MarkdownText:
        """How many customers changed RFM segment between the cutoff and today."""
        return _md(validation_text.migration_sentence(self.val.migration.summary))

    @_recorded
    def migration_figure(self) -> Chart:
        """Transition shares between RFM segments."""
        return _chart(plots.migration_heatmap(self.val.migration.shares_wide, from_col="from_segment"),
                      captions.migration_caption(self.val.migration.shares_wide))

    @_recorded
    def checklist(self) -> MarkdownText:
        """The actionability checks with their status."""
        return _md(validation_text.checks_markdown(self.val.checks))

    @_recorded
    def truth_summary(self) -> MarkdownText:
        """Agreement with the planted archetypes (empty without a truth file)."""
        t = self.val.truth
        return _md(validation_text.truth_markdown(t.ari, t.nmi) if t is not None else "")

    @_recorded
    def truth_figure(self) -> Chart | None:
        """Behavioural segments vs planted archetypes (None without a truth file)."""
        if self.val.truth is None:
            return None
        conf = validation_text.truth_wide(self.val.truth.confusion)
        return _chart(plots.crosstab_heatmap(conf, "segment", "Behavioural segments vs planted archetypes (share of each segment)",
                                             "Planted archetype", "Behavioural segment"),
                      captions.strongest_cell_caption(captions.row_shares(conf), "The clearest match: {value} of segment '{row}' are planted '{column}' customers."))


class ValuePage(Page):
    """05 predicted value: who will buy again, who is slipping away, value per segment, the matrix, the calibration."""

    def _compute(self) -> None:
        self.data = stages.data_stage(self.ctx)
        self.rfm = stages.rfm_stage(self.ctx, self.data)
        self.cl = stages.clustering_stage(self.ctx, self.data, self.rfm)
        self.val = stages.value_stage(self.ctx, self.data, self.cl, recompute=True)
        self.info = self.val.info
        self.horizon = f"expected_purchases_{float(sorted(self.info['horizons_days'], key=lambda h: abs(h - 90))[0]):g}d"

    @_recorded
    def model_intro(self) -> MarkdownText:
        """Which model made the predictions (``predict.model``) and what they mean."""
        return _md(value_text.model_sentence(self.info))

    @_recorded
    def likely_to_buy(self) -> MarkdownText:
        """Who is likely to buy again: customers and expected purchases per churn-risk tier."""
        risk = value_text.churn_risk_table(self.val.assignments, self.val.clv_col, self.horizon)
        formats = {"share": "pct", "mean_p_alive": "pct", self.horizon: "int", self.val.clv_col: "money"}
        return _md(value_text.buy_again_sentence(risk, self.info["risk_cuts"], self.horizon), md_table(risk, formats))

    @_recorded
    def slipping_away(self) -> MarkdownText:
        """Valuable customers with a low P(alive): counts and value."""
        from segmentation_lib.segment.predicted import predicted_value_cut

        cut = predicted_value_cut(self.val.assignments, self.val.clv_col, self.info["value_cut"])
        return _md(value_text.slipping_away_sentence(self.val.matrix, cut, self.info["alive_cut"], self.info["clv_months"]))

    @_recorded
    def value_matrix(self) -> Chart:
        """The predicted value x churn-risk matrix."""
        return _chart(plots.value_churn_matrix(self.val.matrix),
                      captions.quadrant_caption(self.val.matrix, "value_churn", "expected_clv_share", "predicted CLV"))

    @_recorded
    def value_matrix_summary(self) -> MarkdownText:
        """How the matrix is cut, and its table."""
        formats = {"share": "pct", "expected_clv": "money", "expected_clv_share": "pct", "mean_p_alive": "pct"}
        table = self.val.matrix.drop("high_value", "likely_active")
        return _md(value_text.matrix_note(self.info["value_cut"], self.info["alive_cut"]),
                   md_table(table, formats, rename={"value_churn": "cell"}))

    def _by_segment(self, table: pl.DataFrame, col: str, kind: str) -> MarkdownText:
        formats = {"share": "pct", "expected_clv": "money", "expected_clv_share": "pct", "mean_p_alive": "pct",
                   "no_prediction": "int"}
        return _md(value_text.value_by_segment_sentence(table, col, kind),
                   md_table(table.sort("expected_clv", descending=True), formats, rename={col: "segment"}))

    @_recorded
    def value_by_rfm_segment(self) -> MarkdownText:
        """Expected value per RFM segment."""
        return self._by_segment(self.val.by_rfm, "rfm_segment", "RFM")

    @_recorded
    def value_by_behavioural_segment(self) -> MarkdownText:
        """Expected value per behavioural segment."""
        return self._by_segment(self.val.by_cluster, "cluster_name", "behavioural")

    @_recorded
    def value_by_rule_tier(self) -> MarkdownText:
        """Expected value per rule-based tier (empty when the run has no tiers)."""
        if self.val.by_rule is None:
            return MarkdownText("")
        return self._by_segment(self.val.by_rule, self.val.by_rule.columns[0], "rule-based")

    @_recorded
    def calibration_figure(self) -> Chart | None:
        """Predicted vs actual holdout purchases per calibration frequency (None when it could not be fitted)."""
        if self.val.buckets is None:
            return None
        holdout = int(self.cfg["validation"]["holdout_days"])
        return _chart(plots.calibration_plot(self.val.buckets, holdout),
                      captions.calibration_caption(self.info.get("calibration"), holdout))

    @_recorded
    def calibration_summary(self) -> MarkdownText:
        """Predicted vs actual holdout purchases, the calibration error, and spend per RFM segment at the cutoff."""
        seg = self.val.calibration_segments
        table = "" if seg is None else md_table(seg.rename({"segment": "RFM segment at the cutoff"}),
                                                {"predicted_spend": "money", "actual_spend": "money",
                                                 "relative_error": "pct"})
        return _md(value_text.calibration_sentence(self.info.get("calibration"), self.info.get("calibration_note")), table)

    @_recorded
    def cautions(self) -> MarkdownText:
        """The data-sufficiency cautions in plain language (or that the check passed)."""
        cautions = self.info.get("cautions") or []
        return _md(value_text.cautions_markdown(cautions), value_text.sufficiency_ok_sentence(len(cautions)))

    @_recorded
    def feedback(self) -> MarkdownText:
        """What customers say per predicted value x churn-risk cell and churn-risk tier, with intervals (empty
        when no ``feedback`` is configured)."""
        a = self.val.assignments
        return feedback_markdown(self.ctx, self.data, [("predicted value x churn-risk cells", a, "value_churn"),
                                                       ("churn-risk tiers", a, "churn_risk")])


class SinceLastRunPage(Page):
    """06 since last run: transitions per method, size and revenue change, top flows, new and gone customers,
    drift and the keep/refit recommendation, how a refit was matched, retention by segment, exports."""

    def _compute(self) -> None:
        self.data = stages.data_stage(self.ctx)
        self.rfm = stages.rfm_stage(self.ctx, self.data)
        self.cl = stages.clustering_stage(self.ctx, self.data, self.rfm)
        self.hist = stages.history_stage(self.ctx, self.data, self.rfm, self.cl)
        self.cmp = self.hist.comparison

    @_recorded
    def intro(self) -> MarkdownText:
        """Which run this one is compared with, customers in both, new and no longer present (or: first run)."""
        if self.cmp is None:
            return _md(history_text.first_run_text((self.cfg.get("run") or {}).get("name")))
        return _md(history_text.intro_text(self.hist.summary),
                   history_text.exports_text(self.hist.exports, int(self.hist.summary.get("movers") or 0)))

    @_recorded
    def drift_summary(self) -> MarkdownText:
        """Feature PSI, share shift, frozen-vs-fresh agreement and the keep/refit recommendation."""
        d = self.hist.drift
        if d is None:
            return _md("")
        table = pl.DataFrame({"feature": list(d.psi), "psi": list(d.psi.values())})
        return _md(history_text.drift_text(d.summary), md_table(table, rename={"feature": "Feature", "psi": "PSI"}))

    @_recorded
    def matching_summary(self) -> MarkdownText:
        """How a refit's segments were matched to the earlier run's (empty for frozen or first runs)."""
        rows = self.cl.info.get("matching")
        if not rows:
            return _md("")
        t = pl.DataFrame([r for r in rows if not r.get("vanished")])
        vanished = [r["name"] for r in rows if r.get("vanished")]
        return _md(history_text.matching_text(t, vanished))

    @_recorded
    def method_summary(self, method: str) -> MarkdownText:
        """One method: changed share, the largest moves in words, the size and revenue change per segment."""
        if self.cmp is None or method not in self.cmp.methods:
            return _md("")
        c = self.cmp.methods[method]
        title = history_text.METHOD_TITLES.get(method, method)
        return _md(history_text.method_text(title, c.migration.summary, c.flows), history_text.changes_markdown(c.changes))

    @_recorded
    def transitions(self, method: str) -> Chart | None:
        """Transition matrix of one method in counts and in shares of each earlier segment."""
        if self.cmp is None or method not in self.cmp.methods:
            return None
        wide = self.cmp.methods[method].migration.counts_wide
        if wide.width < 2:
            return None
        title = history_text.METHOD_TITLES.get(method, method)
        fig, axes = plt.subplots(1, 2, figsize=(2 * plots.WIDTH, 0.5 * wide.height + 3))
        plots.crosstab_heatmap(wide, "from_segment", f"{title}: customers", "Now", "Last run", fmt=".0f",
                               normalize_rows=False, ax=axes[0])
        plots.crosstab_heatmap(wide, "from_segment", f"{title}: share of each earlier segment", "Now", "Last run", ax=axes[1])
        fig.tight_layout()
        c = self.cmp.methods[method]
        return _chart(fig, captions.transition_caption(c.migration.summary, c.flows))

    @_recorded
    def retention(self) -> Chart | None:
        """Share of each earlier behavioural segment still buying 1, 2, 3 ... months after the last run."""
        r = self.hist.retention
        if r is None or r.height == 0:
            return None
        return _chart(plots.retention_lines(r), captions.segment_retention_caption(r))

    @_recorded
    def trend(self) -> Chart | None:
        """Behavioural segment sizes per run of this configuration (None before a second run)."""
        from segmentation_lib.report.history import trend_table

        out = self.ctx.run_dir.parent
        t = trend_table(out, (self.cfg.get("run") or {}).get("name"))
        cur = self.hist.sizes.filter(pl.col("method") == "behavioural").select(
            pl.lit(self.ctx.run_dir.name).alias("run"), pl.lit(self.data.as_of.date().isoformat()).alias("as_of"),
            "segment", "customers", "share", "revenue_share")
        t = pl.concat([t, cur], how="vertical_relaxed") if t.height else cur
        if t["run"].n_unique() < 2:
            return None
        return _chart(plots.trend_lines(t), captions.trend_caption(t))


PAGES: dict[str, type[Page]] = {"exploration": ExplorationPage, "rfm": RFMPage, "clustering": ClusteringPage,
                                "validation": ValidationPage, "value": ValuePage,
                                "since_last_run": SinceLastRunPage}


# --------------------------------------------------------------------------- the one setup call


def _inline_png() -> None:
    """PNG figures in a running IPython (what ``%config InlineBackend.figure_formats = ["png"]`` did); no-op outside."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    with contextlib.suppress(Exception):  # a terminal IPython without matplotlib_inline keeps its defaults
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")


def notebook_setup(page: str, config_path: str = "configs/default.yaml", run_dir: str = "", seed: int | None = None,
                   as_of: str | None = None, **options: Any) -> Page:
    """Open the run, style the figures, compute the page's stages (warnings recorded) and return the page.

    ``page``: ``exploration`` | ``rfm`` | ``clustering`` | ``validation`` | ``value``; ``options`` are the notebook's own
    parameters (``max_cohorts``, ``projection_sample``).

    >>> page = notebook_setup("rfm", "configs/default.yaml", "", seed=42)  # doctest: +SKIP
    >>> page.scores_intro()                                                # doctest: +SKIP
    """
    from segmentation_lib.errors import ConfigError

    if page not in PAGES:
        raise ConfigError(f"notebook_setup: page '{page}' is unknown. Fix: use one of {', '.join(PAGES)}.")
    _inline_png()
    plots.apply_style()
    ctx = open_run(config_path, run_dir, seed=seed, as_of=as_of)
    from segmentation_lib.config import usage_only

    if usage_only(ctx.cfg) and page == "value":  # run on its own (the pipeline skips it): the reason, no models
        return NotApplicablePage(ctx)
    if usage_only(ctx.cfg):  # no purchases: every text of the page in usage words
        return UsageWordingPage(PAGES[page](ctx, **options))
    return PAGES[page](ctx, **options)


# --------------------------------------------------------------------------- usage-only runs


def usage_worded(shown: Any) -> Any:
    """What a page call returned, in the words of a usage-only run (``describe.usage_wording``): Markdown
    text, a chart's caption and every text of its figure (title, axis labels, legend, annotations);
    anything else unchanged.

    >>> usage_worded(MarkdownText("Revenue per month"))
    'Events per month'
    """
    from matplotlib.text import Text

    from segmentation_lib.describe.usage_wording import usage_wording

    if isinstance(shown, str):
        return MarkdownText(usage_wording(str(shown)))
    fig = shown.figure if isinstance(shown, Chart) else shown if isinstance(shown, Figure) else None
    if fig is None:
        return shown
    for ax in fig.axes:  # tick labels are made by the axis formatter: set the worded ones as fixed labels
        for axis in (ax.xaxis, ax.yaxis):
            labels = [t.get_text() for t in axis.get_ticklabels()]
            worded = [usage_wording(t) for t in labels]
            if worded != labels:
                axis.set_ticks(axis.get_ticklocs(), worded)
    for text in fig.findobj(Text):
        if text.get_text():
            text.set_text(usage_wording(text.get_text()))
    return Chart(fig, usage_wording(shown.caption)) if isinstance(shown, Chart) else fig


class UsageWordingPage:
    """A page of a usage-only run (``data.path`` null): the same page, every call's result passed through
    :func:`usage_worded` (sessions for orders, events for spend, activity for purchases)."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def __getattr__(self, name: str) -> Any:
        value = getattr(self.page, name)
        if name.startswith("_") or not callable(value):
            return value

        @functools.wraps(value)
        def worded(*args: Any, **kwargs: Any) -> Any:
            return usage_worded(value(*args, **kwargs))

        return worded


class NotApplicablePage:
    """The predicted-value page of a usage-only run opened on its own (the pipeline skips it): its first cell
    (``model_intro``) says in words why BTYD / Gamma-Gamma models do not apply without purchases
    (``describe.value_text.no_purchases_value_note``); every other cell shows nothing (no chart, no error)."""

    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def model_intro(self) -> MarkdownText:
        from segmentation_lib.describe.value_text import no_purchases_value_note

        return MarkdownText(f"**Not made for this run.** {no_purchases_value_note()}")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: MarkdownText("")

