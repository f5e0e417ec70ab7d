"""Static figures for the report notebooks (seaborn / matplotlib), one function per figure.

Every function takes a small polars table (already aggregated by the library) and draws a titled
figure with labelled axes (with units) and readable category names; it never samples without a seed.
Single-panel functions take ``ax=`` (a matplotlib Axes; None creates a figure) and return the Axes;
multi-panel functions (``activity_over_time``, ``log_distributions``, ``segment_bars``, ``k_sweep``,
``predictive_comparison``) take ``axes=`` (a sequence of Axes) and return the Figure.
Segment colours come from one mapping, :func:`segment_palette`, passed as ``palette=`` so that a
segment has the same colour in every figure of a run. pandas appears only at seaborn's boundary.

>>> import polars as pl
>>> fig = segment_bars(pl.DataFrame({"segment": ["A", "B"], "customers": [10, 5], "revenue": [100.0, 20.0]}))
>>> fig.axes[0].get_title()
'Customers by segment'
>>> ax = stability_bars(pl.DataFrame({"segment": ["A"], "jaccard_mean": [0.9]}))
>>> ax.get_title()
'Segment stability across resamples and seeds'
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import polars as pl
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter


#: default figure width in inches (fits the report column at 96 dpi)
WIDTH = 10.0
CURRENCY = "currency units"


def apply_style(dpi: int = 96) -> None:
    """Seaborn theme and sizes used by every report figure (call once per notebook)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook", palette="deep")
    matplotlib.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "axes.titleweight": "semibold",
                                "axes.titlesize": 12, "figure.titlesize": 13, "figure.titleweight": "semibold",
                                "axes.labelsize": 10, "legend.fontsize": 9, "legend.title_fontsize": 9})


#: colours of the segments, in order (seaborn "deep", then "dark", without their greys)
SEGMENT_COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#ccb974", "#64b5cd",
                  "#001c7f", "#b1400d", "#12711c", "#8c0800", "#591e71", "#592f0d", "#a23582", "#b8850a", "#006374")
#: fixed greys of the groups that are no segment (HDBSCAN noise, customers with returns only)
FIXED_COLORS = {"Noise": "#8c8c8c", "No purchases (returns only)": "#c7c7c7"}


def segment_palette(names: Sequence[str]) -> dict[str, str]:
    """One colour per segment name, in the order given (behavioural segments in id order, RFM segments in the
    map's order); "Noise" and "No purchases (returns only)" always get their fixed greys. Colours repeat after 18.

    >>> segment_palette(["Loyal", "Noise", "New"])
    {'Loyal': '#4c72b0', 'Noise': '#8c8c8c', 'New': '#dd8452'}
    """
    out: dict[str, str] = {}
    i = 0
    for name in dict.fromkeys(str(n) for n in names):
        if name in FIXED_COLORS:
            out[name] = FIXED_COLORS[name]
        else:
            out[name] = SEGMENT_COLORS[i % len(SEGMENT_COLORS)]
            i += 1
    return out


def _colors_for(names: Sequence[str], palette: Mapping[str, str] | None) -> dict[str, str]:
    """``palette`` extended to every name in ``names`` (names it lacks get the next free colours)."""
    pal = dict(palette or {})
    extra = [n for n in dict.fromkeys(str(x) for x in names) if n not in pal]
    if extra:
        more = segment_palette([*pal, *extra])
        pal.update({n: more[n] for n in extra})
    return pal


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> Axes:
    """``ax`` or the Axes of a new figure of ``figsize``."""
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=figsize)
    return new


def _panels(axes: Sequence[Axes] | None, nrows: int, ncols: int, figsize: tuple[float, float], **kw) -> tuple[Figure, np.ndarray]:
    """``(figure, 2-D array of Axes)``: the given ``axes`` (reshaped) or a new grid."""
    if axes is not None:
        arr = np.asarray(list(np.ravel(axes)), dtype=object).reshape(nrows, ncols)
        return arr.flat[0].figure, arr
    fig, arr = plt.subplots(nrows, ncols, figsize=figsize, squeeze=False, **kw)
    return fig, arr


def _finish_ax(ax: Axes, owned: bool) -> Axes:
    """Tight layout of the figure when this function created it; return ``ax``."""
    if owned:
        ax.figure.tight_layout()
    return ax


def _thousands(ax_axis) -> None:
    ax_axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _pd(df: pl.DataFrame):
    return df.to_pandas()


def _finish(fig: Figure, title: str | None = None) -> Figure:
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- exploration


def activity_over_time(monthly: pl.DataFrame, month_col: str = "month", axes: Sequence[Axes] | None = None) -> Figure:
    """Active customers, orders and net revenue per month (three stacked panels sharing the time axis).

    ``monthly``: one row per month with ``customers``, ``orders`` and ``revenue``. Multi-panel: ``axes`` takes
    three Axes (None: a new figure) and the Figure is returned.
    """
    m = monthly.sort(month_col)
    x = m[month_col].to_list()
    owned = axes is None
    fig, grid = _panels(axes, 3, 1, (WIDTH, 7.2), sharex=True)
    axes = grid[:, 0]
    for ax, col, label, color in zip(axes, ("customers", "orders", "revenue"),
                                     ("Active customers", "Orders", f"Net revenue ({CURRENCY})"),
                                     ("#4C72B0", "#55A868", "#C44E52")):
        ax.plot(x, m[col].to_list(), marker="o", ms=3, color=color)
        ax.set_ylabel(label)
        _thousands(ax.yaxis)
        ax.set_ylim(bottom=0)
    axes[0].set_title("Customers, orders and revenue per month")
    axes[-1].set_xlabel("Month (UTC)")
    return _finish(fig) if owned else fig


def log_distributions(features: pl.DataFrame, spend_col: str = "total_spend", freq_col: str = "n_orders",
                      axes: Sequence[Axes] | None = None) -> Figure:
    """Histograms of spend per customer and orders per customer on log scales (customers with positive values).

    Multi-panel: ``axes`` takes two Axes (None: a new figure) and the Figure is returned.
    """
    owned = axes is None
    fig, grid = _panels(axes, 1, 2, (WIDTH, 3.8))
    a1, a2 = grid[0]
    spend = features.filter(pl.col(spend_col) > 0)[spend_col].to_numpy()
    if spend.size:
        a1.hist(spend, bins=np.logspace(np.log10(spend.min()), np.log10(spend.max()) + 1e-9, 40), color="#4C72B0")
    a1.set_xscale("log")
    a1.set_title("Net spend per customer")
    a1.set_xlabel(f"Total net spend ({CURRENCY}, log scale)")
    a1.set_ylabel("Customers")
    freq = features.filter(pl.col(freq_col) > 0)[freq_col].to_numpy()
    if freq.size:
        a2.hist(freq, bins=np.unique(np.round(np.logspace(0, np.log10(freq.max() + 1), 30))) - 0.5, color="#55A868")
    a2.set_xscale("log")
    a2.set_title("Orders per customer")
    a2.set_xlabel("Orders (log scale)")
    a2.set_ylabel("Customers")
    for ax in (a1, a2):
        _thousands(ax.yaxis)
    return _finish(fig) if owned else fig


def cohort_heatmap(retention: pl.DataFrame, max_cohorts: int = 24, max_months: int = 24, ax: Axes | None = None) -> Axes:
    """Share of each first-purchase cohort buying again N months later.

    ``retention``: long table ``cohort`` (month label), ``months_since`` (0..), ``retention`` (share).
    """
    import seaborn as sns

    r = retention.filter(pl.col("months_since") <= max_months)
    cohorts = r["cohort"].unique().sort().to_list()[-max_cohorts:]
    wide = (r.filter(pl.col("cohort").is_in(cohorts))
            .pivot(on="months_since", index="cohort", values="retention", sort_columns=True).sort("cohort"))
    mat = wide.drop("cohort").to_numpy().astype(float)
    cols = [int(c) for c in wide.columns[1:]]
    owned = ax is None
    ax = _axes(ax, (WIDTH, max(3.5, 0.26 * len(cohorts) + 1.5)))
    sns.heatmap(mat, ax=ax, cmap="Blues", vmin=0, vmax=min(1.0, float(np.nanmax(mat[:, 1:])) if mat.shape[1] > 1 else 1.0),
                cbar_kws={"label": "Share of cohort purchasing", "format": PercentFormatter(1.0, decimals=0)},
                xticklabels=cols, yticklabels=wide["cohort"].to_list(), linewidths=0.2, linecolor="white")
    ax.set_title("Cohort retention: share of customers buying again, by first-purchase month")
    ax.set_xlabel("Months since first purchase")
    ax.set_ylabel("First-purchase month")
    ax.tick_params(axis="y", labelsize=8)
    ax.tick_params(axis="x", labelsize=8, rotation=0)
    return _finish_ax(ax, owned)


# --------------------------------------------------------------------------- RFM and summaries


def segment_bars(summary: pl.DataFrame, segment_col: str = "segment", customers_col: str = "customers",
                 revenue_col: str = "revenue", title: str = "Customers by segment",
                 axes: Sequence[Axes] | None = None) -> Figure:
    """Customers and share of revenue per segment, side by side (horizontal bars, largest first).

    Multi-panel: ``axes`` takes two Axes (None: a new figure) and the Figure is returned.
    """
    s = summary.sort(customers_col, descending=True)
    names = [str(x) for x in s[segment_col].to_list()]
    total_rev = float(s[revenue_col].sum()) or 1.0
    owned = axes is None
    fig, grid = _panels(axes, 1, 2, (WIDTH, max(3.0, 0.38 * len(names) + 1.4)), sharey=True)
    a1, a2 = grid[0]
    y = np.arange(len(names))
    a1.barh(y, s[customers_col].to_numpy(), color="#4C72B0")
    a1.set_yticks(y, names)
    a1.invert_yaxis()
    a1.set_title(title)
    a1.set_xlabel("Customers")
    _thousands(a1.xaxis)
    share = s[revenue_col].to_numpy() / total_rev
    a2.barh(y, share, color="#C44E52")
    a2.set_title("Share of net revenue")
    a2.set_xlabel("Share of net revenue (%)")
    a2.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    for yi, v in zip(y, share):
        a2.text(v, yi, f" {100 * v:.1f}%", va="center", fontsize=8)
    a2.set_xlim(right=max(share.max() * 1.18, 0.05) if len(share) else 1)
    return _finish(fig) if owned else fig


#: axis labels of score charts when none are given (``rfm.score_axis_labels`` gives the configured ones)
SCORE_LABELS = {"recency": "Recency score (higher = bought more recently)",
                "frequency": "Frequency score (higher = buys more often)"}


def score_heatmap(scores: pl.DataFrame, row: str = "f_score", col: str = "r_score", value: str | None = None,
                  title: str = "Customers by recency and frequency score",
                  labels: dict[str, str] | None = None, ax: Axes | None = None) -> Axes:
    """Heatmap of customers (or the mean of ``value``) per R score x F score cell; higher = better.
    ``labels``: axis labels by dimension, e.g. ``rfm.score_axis_labels(scorer)``. Returns the Axes."""
    import seaborn as sns

    agg = pl.len().alias("v") if value is None else pl.col(value).mean().alias("v")
    g = scores.group_by(row, col).agg(agg)
    wide = g.pivot(on=col, index=row, values="v", sort_columns=True).sort(row, descending=True)
    mat = wide.drop(row).to_numpy().astype(float)
    owned = ax is None
    ax = _axes(ax, (min(WIDTH, 1.0 * mat.shape[1] + 3), 0.6 * mat.shape[0] + 1.8))
    sns.heatmap(mat, ax=ax, annot=True, fmt=",.0f", cmap="YlGnBu", annot_kws={"fontsize": 8},
                xticklabels=[str(c) for c in wide.columns[1:]], yticklabels=[str(v) for v in wide[row].to_list()],
                cbar_kws={"label": "Customers" if value is None else f"Mean {value.replace('_', ' ')}"})
    ax.set_title(title)
    lab = {**SCORE_LABELS, **(labels or {})}
    ax.set_xlabel(lab["recency"] if col.startswith("r") else col.replace("_", " "))
    ax.set_ylabel(lab["frequency"] if row.startswith("f") else row.replace("_", " "))
    return _finish_ax(ax, owned)


def segment_map(cells: pl.DataFrame, r_col: str = "r_score", f_col: str = "f_score", segment_col: str = "segment",
                title: str = "RFM segment map: most common segment per recency x frequency cell",
                labels: dict[str, str] | None = None, palette: Mapping[str, str] | None = None,
                ax: Axes | None = None) -> Axes:
    """The segment map: for every R x F cell, the segment most of its customers belong to (with its share).
    ``labels``: axis labels by dimension, e.g. ``rfm.score_axis_labels(scorer)``; ``palette``: segment -> colour
    (:func:`segment_palette`; None: colours by sorted name). Returns the Axes."""
    modal = (cells.group_by(r_col, f_col, segment_col).agg(pl.len().alias("n"))
             .sort([r_col, f_col, "n", segment_col], descending=[False, False, True, False])
             .group_by(r_col, f_col, maintain_order=True)
             .agg(pl.col(segment_col).first(), (pl.col("n").first() / pl.col("n").sum()).alias("share")))
    names = sorted(modal[segment_col].unique().to_list())
    colors = _colors_for(names, palette)
    code = {n: i for i, n in enumerate(names)}
    rs = sorted(modal[r_col].unique().to_list())
    fs = sorted(modal[f_col].unique().to_list(), reverse=True)
    mat = np.full((len(fs), len(rs)), np.nan)
    owned = ax is None
    ax = _axes(ax, (WIDTH, 0.75 * len(fs) + 2.0))
    cmap = matplotlib.colors.ListedColormap([colors[n] for n in names] or ["#ffffff"])
    for r, f, seg, share in modal.iter_rows():
        i, j = fs.index(f), rs.index(r)
        mat[i, j] = code[seg]
        ax.text(j, i, f"{seg}\n{100 * share:.0f}%", ha="center", va="center", fontsize=7)
    ax.imshow(mat, cmap=cmap, vmin=-0.5, vmax=len(names) - 0.5, aspect="auto", alpha=0.55)
    ax.set_xticks(range(len(rs)), [str(r) for r in rs])
    ax.set_yticks(range(len(fs)), [str(f) for f in fs])
    ax.grid(False)
    lab = {**SCORE_LABELS, **(labels or {})}
    ax.set_xlabel(lab["recency"])
    ax.set_ylabel(lab["frequency"])
    ax.set_title(title)
    return _finish_ax(ax, owned)


def _quadrants(matrix: pl.DataFrame, segment_col: str, x_flag: str, y_flag: str, amount_col: str, amount_word: str,
               cmap: str, xticks: tuple[str, str], yticks: tuple[str, str], title: str, ax: Axes | None) -> Axes:
    """The one 2 x 2 cell picture: a cell per row placed by two boolean flags, coloured by its share of
    ``amount_col``, labelled with its name, customers and that share."""
    total_c = float(matrix["customers"].sum()) or 1.0
    total = float(matrix[amount_col].sum()) or 1.0
    owned = ax is None
    ax = _axes(ax, (6.4, 4.6))
    for row in matrix.iter_rows(named=True):  # four cells
        x, y = int(bool(row[x_flag])), int(bool(row[y_flag]))
        share = row[amount_col] / total
        ax.add_patch(plt.Rectangle((x, y), 1, 1, color=plt.get_cmap(cmap)(0.15 + 0.8 * max(share, 0)), ec="white", lw=3))
        ax.text(x + 0.5, y + 0.5, f"{row[segment_col]}\n{row['customers']:,} customers ({100 * row['customers'] / total_c:.0f}%)\n"
                f"{100 * share:.0f}% of {amount_word}", ha="center", va="center", fontsize=9,
                color="white" if share > 0.45 else "black")
    ax.set_xlim(0, 2)
    ax.set_ylim(0, 2)
    ax.set_xticks([0.5, 1.5], list(xticks))
    ax.set_yticks([0.5, 1.5], list(yticks))
    ax.grid(False)
    ax.set_title(title)
    return _finish_ax(ax, owned)


def value_engagement(matrix: pl.DataFrame, segment_col: str = "value_engagement", revenue_col: str = "revenue",
                     ax: Axes | None = None) -> Axes:
    """2 x 2 value-vs-engagement matrix: customers and share of revenue per quadrant.

    ``matrix``: one row per quadrant with ``segment_col``, ``customers``, ``revenue``, and the flags
    ``high_value`` / ``high_engagement`` (booleans) that place the quadrant. Returns the Axes.
    """
    return _quadrants(matrix, segment_col, "high_engagement", "high_value", revenue_col, "revenue", "Blues",
                      ("Low engagement", "High engagement"), ("Low value", "High value"),
                      "Value vs engagement (colour = share of revenue)", ax)


# --------------------------------------------------------------------------- clustering


def k_sweep(sweep: pl.DataFrame, chosen_k: int | None = None, k_col: str = "k", axes: Sequence[Axes] | None = None) -> Figure:
    """Elbow and quality metrics across k (one small panel per metric; the chosen k marked).

    Multi-panel: ``axes`` takes ``nrows x 3`` Axes (one per metric present, at most 3 a row; None: a new figure)
    and the Figure is returned.
    """
    panels = [(c, t) for c, t in (("inertia", "Inertia\n(within-segment spread, lower = tighter)"),
                                  ("silhouette", "Silhouette\n(higher = better separated)"),
                                  ("calinski_harabasz", "Calinski-Harabasz\n(higher = better)"),
                                  ("davies_bouldin", "Davies-Bouldin\n(lower = better)"),
                                  ("bic", "BIC\n(lower = better)"))
              if c in sweep.columns and sweep[c].drop_nulls().len() > 0]
    n = len(panels)
    ncols = min(3, max(n, 1))
    nrows = int(np.ceil(n / ncols)) or 1
    owned = axes is None
    fig, axes = _panels(axes, nrows, ncols, (WIDTH, 3.0 * nrows))
    s = sweep.sort(k_col)
    for ax, (col, title) in zip(axes.flat, panels):
        ax.plot(s[k_col].to_list(), s[col].to_list(), marker="o", color="#4C72B0")
        if chosen_k is not None:
            ax.axvline(chosen_k, color="#C44E52", ls="--", lw=1.2, label=f"chosen k = {chosen_k}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("Number of segments k")
        ax.set_xticks(s[k_col].to_list())
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if chosen_k is not None and n:
        axes.flat[0].legend(loc="best")
    return _finish(fig, "Choosing the number of segments") if owned else fig


def importance_heatmap(importance: pl.DataFrame, segment_col: str = "segment",
                       title: str = "What sets each segment apart (segment mean vs overall mean)",
                       ax: Axes | None = None) -> Axes:
    """Relative importance (segment mean / overall mean - 1) per segment x feature, diverging colours; returns the Axes."""
    import seaborn as sns

    feats = [c for c in importance.columns if c != segment_col]
    mat = importance.select(feats).to_numpy().astype(float)
    lim = float(np.nanmax(np.abs(mat))) if mat.size else 1.0
    owned = ax is None
    ax = _axes(ax, (WIDTH, 0.55 * importance.height + 2.4))
    # most features are non-negative, so a mean lies at most 100% below the average: the colour scale stops
    # at -100% (the annotations keep the exact values)
    sns.heatmap(mat, ax=ax, cmap="RdBu_r", center=0, vmin=-min(lim, 1.0), vmax=min(lim, 3), annot=True, fmt="+.0%",
                annot_kws={"fontsize": 8}, xticklabels=[f.replace("_", " ") for f in feats],
                yticklabels=[str(v) for v in importance[segment_col].to_list()],
                cbar_kws={"label": "Difference from the average customer", "format": PercentFormatter(1.0, decimals=0)})
    ax.set_title(title)
    ax.set_xlabel("Feature")
    ax.set_ylabel("Segment")
    ax.tick_params(axis="x", rotation=30)
    plt.setp(ax.get_xticklabels(), ha="right")
    return _finish_ax(ax, owned)


def snake_plot(means: pl.DataFrame, segment_col: str = "segment",
               title: str = "Snake plot: standardised feature means per segment",
               palette: Mapping[str, str] | None = None, ax: Axes | None = None) -> Axes:
    """One line per segment across features (values standardised: 0 = average customer, units = std devs).

    ``palette``: segment -> colour (:func:`segment_palette`; None: by the rows' order). Returns the Axes.
    """
    feats = [c for c in means.columns if c != segment_col]
    owned = ax is None
    ax = _axes(ax, (WIDTH, 4.2))
    x = np.arange(len(feats))
    colors = _colors_for([str(v) for v in means[segment_col].to_list()], palette)
    for row in means.iter_rows(named=True):
        name = str(row[segment_col])
        ax.plot(x, [row[f] for f in feats], marker="o", label=name, color=colors[name])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xticks(x, [f.replace("_", " ") for f in feats], rotation=20, ha="right")
    ax.set_ylabel("Standardised mean (std devs from average)")
    ax.set_xlabel("Feature (after the model's log / clipping / scaling)")
    ax.set_title(title)
    ax.legend(title="Segment", bbox_to_anchor=(1.01, 1), loc="upper left")
    return _finish_ax(ax, owned)


def projection(coords: pl.DataFrame, segment_col: str = "segment", x: str = "pc1", y: str = "pc2",
               explained: Sequence[float] | None = None,
               title: str = "Customers in two dimensions (PCA of the clustering features), coloured by segment",
               palette: Mapping[str, str] | None = None, ax: Axes | None = None) -> Axes:
    """Scatter of a sampled 2-D projection, one colour (and one collection, labelled) per segment.

    ``palette``: segment -> colour (:func:`segment_palette`); segments are drawn and listed in its order
    (segments it lacks after them, by name). Returns the Axes.
    """
    owned = ax is None
    ax = _axes(ax, (WIDTH, 5.6))
    present = {str(v) for v in coords[segment_col].drop_nulls().to_list()}
    order = [n for n in (palette or {}) if n in present] + sorted(present - set(palette or {}))
    colors = _colors_for(order, palette)
    seg = coords[segment_col].cast(pl.String)
    for name in order:
        part = coords.filter(seg == name)
        ax.scatter(part[x].to_numpy(), part[y].to_numpy(), s=9, alpha=0.55, linewidths=0, color=colors[name], label=name)
    ex = list(explained or [])
    ax.set_xlabel(f"Component 1 ({100 * ex[0]:.0f}% of variance)" if ex else "Component 1")
    ax.set_ylabel(f"Component 2 ({100 * ex[1]:.0f}% of variance)" if len(ex) > 1 else "Component 2")
    ax.set_title(title)
    ax.legend(title="Segment", bbox_to_anchor=(1.01, 1), loc="upper left", markerscale=2)
    return _finish_ax(ax, owned)


def crosstab_heatmap(table: pl.DataFrame, index_col: str, title: str, xlabel: str, ylabel: str,
                     fmt: str = ".0%", normalize_rows: bool = True, ax: Axes | None = None) -> Axes:
    """Heatmap of a wide cross-tab (first column = row labels); rows normalised to shares by default. Returns the Axes."""
    import seaborn as sns

    cols = [c for c in table.columns if c != index_col]
    mat = table.select(cols).to_numpy().astype(float)
    if normalize_rows:
        tot = mat.sum(axis=1, keepdims=True)
        mat = np.divide(mat, tot, out=np.zeros_like(mat), where=tot > 0)
    owned = ax is None
    ax = _axes(ax, (WIDTH, 0.5 * table.height + 2.8))
    sns.heatmap(mat, ax=ax, cmap="Blues", annot=mat.size <= 180, fmt=fmt, annot_kws={"fontsize": 7},
                vmin=0, vmax=1 if normalize_rows else None,
                xticklabels=[str(c) for c in cols], yticklabels=[str(v) for v in table[index_col].to_list()],
                cbar_kws={"label": "Share of row" if normalize_rows else "Customers"})
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=35, labelsize=8)
    plt.setp(ax.get_xticklabels(), ha="right")
    return _finish_ax(ax, owned)


# --------------------------------------------------------------------------- validation


def predictive_comparison(segments: pl.DataFrame, method_col: str = "method", segment_col: str = "segment",
                          value_col: str = "holdout_spend_mean", labels: Mapping[str, str] | None = None,
                          xlabel: str = f"Mean spend per customer in the holdout period ({CURRENCY})",
                          axes: Sequence[Axes] | None = None) -> Figure:
    """Holdout outcome per segment, one panel per segmentation method (side by side).

    Multi-panel: ``axes`` takes one Axes per method (None: a new figure) and the Figure is returned.
    """
    methods = list(dict.fromkeys(segments[method_col].to_list()))
    heights = [segments.filter(pl.col(method_col) == m).height for m in methods]
    owned = axes is None
    fig, axes = _panels(axes, 1, len(methods), (WIDTH, 0.34 * max(heights + [3]) + 1.6))
    for ax, m in zip(axes[0], methods):
        d = segments.filter(pl.col(method_col) == m).sort(value_col, descending=True)
        y = np.arange(d.height)
        ax.barh(y, d[value_col].to_numpy(), color="#4C72B0" if m == methods[0] else "#DD8452")
        ax.set_yticks(y, [str(s) for s in d[segment_col].to_list()], fontsize=8)
        ax.invert_yaxis()
        ax.set_title((labels or {}).get(m, str(m)))
        _thousands(ax.xaxis)
    fig.supxlabel(xlabel, fontsize=9)  # one label for the panels side by side (per-panel labels collide)
    return _finish(fig, "Do the segments predict what customers do next?") if owned else fig


def migration_heatmap(shares_wide: pl.DataFrame, from_col: str | None = None,
                      title: str = "Segment migration between the two snapshots (share of each starting segment)",
                      ax: Axes | None = None) -> Axes:
    """Transition shares from each segment (rows, earlier snapshot) to each segment (columns, later snapshot); returns the Axes."""
    from_col = from_col or shares_wide.columns[0]
    return crosstab_heatmap(shares_wide, from_col, title, "Segment at the later snapshot", "Segment at the earlier snapshot",
                            normalize_rows=False, ax=ax)


def stability_bars(segments: pl.DataFrame, segment_col: str = "segment", value_col: str = "jaccard_mean",
                   stable: float = 0.75, doubtful: float = 0.6, ax: Axes | None = None) -> Axes:
    """Per-segment Jaccard stability across refits, with the 'stable' and 'doubtful' thresholds; returns the Axes."""
    d = segments.sort(segment_col)
    owned = ax is None
    ax = _axes(ax, (WIDTH, max(2.8, 0.4 * d.height + 1.5)))
    y = np.arange(d.height)
    vals = d[value_col].to_numpy().astype(float)
    colors = ["#55A868" if v >= stable else "#DD8452" if v >= doubtful else "#C44E52" for v in vals]
    ax.barh(y, vals, color=colors)
    ax.set_yticks(y, [str(s) for s in d[segment_col].to_list()])
    ax.invert_yaxis()
    ax.axvline(stable, color="#55A868", ls="--", lw=1, label=f"stable ({stable:g})")
    ax.axvline(doubtful, color="#C44E52", ls=":", lw=1, label=f"doubtful ({doubtful:g})")
    ax.set_xlim(0, 1)
    ax.set_xlabel("Mean Jaccard similarity with the segment after refitting (0..1)")
    ax.set_title("Segment stability across resamples and seeds")
    ax.legend(loc="lower right")
    return _finish_ax(ax, owned)


# --------------------------------------------------------------------------- predicted value


def value_churn_matrix(matrix: pl.DataFrame, segment_col: str = "value_churn", ax: Axes | None = None) -> Axes:
    """2 x 2 predicted value x churn-risk matrix: customers and share of predicted CLV per cell.

    ``matrix``: one row per cell with ``segment_col``, ``customers``, ``expected_clv`` and the flags
    ``high_value`` / ``likely_active`` (from ``segment.predicted.predicted_value_summary``). Returns the Axes.
    """
    return _quadrants(matrix, segment_col, "likely_active", "high_value", "expected_clv", "predicted value", "Greens",
                      ("Low P(alive)", "Likely active"), ("Lower predicted value", "High predicted value"),
                      "Predicted value vs churn risk (colour = share of predicted value)", ax)


def calibration_plot(buckets: pl.DataFrame, holdout_days: int | None = None, ax: Axes | None = None) -> Axes:
    """Mean predicted vs actual holdout purchases per calibration frequency bucket (the standard BTYD check).

    ``buckets``: ``bucket`` (0, 1, ..., 6+), ``customers``, ``predicted``, ``actual``. Returns the Axes.
    """
    owned = ax is None
    ax = _axes(ax, (WIDTH * 0.75, 4.2))
    b = buckets.filter(pl.col("customers") > 0)
    xs = np.arange(b.height)
    ax.plot(xs, b["actual"].to_numpy(), marker="o", label="Actual", color="#4c72b0")
    ax.plot(xs, b["predicted"].to_numpy(), marker="s", linestyle="--", label="Predicted", color="#dd8452")
    ax.set_xticks(xs, b["bucket"].to_list())
    ax.set_xlabel("Repeat purchases before the cutoff (calibration period)")
    days = f" in the {holdout_days}-day holdout" if holdout_days else " in the holdout"
    ax.set_ylabel(f"Mean purchases{days}")
    ax.set_title("Is the model right? Predicted vs actual purchases after the cutoff")
    ax.legend()
    return _finish_ax(ax, owned)


# --------------------------------------------------------------------------- experiments


def lift_forest(lifts: pl.DataFrame, label_col: str = "label", lift_col: str = "abs_lift", low_col: str = "abs_low",
                high_col: str = "abs_high", highlight_col: str | None = "significant", scale: float = 1.0,
                xlabel: str = "lift", title: str = "Lift by segment with 95% intervals", ax: Axes | None = None) -> Axes:
    """Forest plot: one row per label, the lift as a point and its interval as a line, zero marked.

    Rows keep the table's order (top to bottom); ``highlight_col`` (a boolean column) draws those
    rows in the accent colour; ``scale`` multiplies the numbers (100 for proportions in points).

    >>> ax = lift_forest(pl.DataFrame({"label": ["All", "A"], "abs_lift": [0.01, 0.05], "abs_low": [0.0, 0.02],
    ...                                "abs_high": [0.02, 0.08], "significant": [False, True]}))
    >>> ax.get_title()
    'Lift by segment with 95% intervals'
    """
    owned = ax is None
    ax = _axes(ax, (WIDTH, max(2.5, 0.42 * lifts.height + 1.2)))
    y = np.arange(lifts.height)[::-1]
    mid = lifts[lift_col].cast(pl.Float64).to_numpy() * scale
    lo = lifts[low_col].cast(pl.Float64).to_numpy() * scale
    hi = lifts[high_col].cast(pl.Float64).to_numpy() * scale
    accent = (lifts[highlight_col].fill_null(False).to_numpy() if highlight_col and highlight_col in lifts.columns
              else np.zeros(lifts.height, dtype=bool))
    colors = np.where(accent, "#c0392b", "#34495e")
    ax.hlines(y, lo, hi, colors=colors, linewidth=2)
    ax.scatter(mid, y, color=colors, zorder=3, s=30)
    ax.axvline(0, color="#7f8c8d", linestyle="--", linewidth=1)
    ax.set_yticks(y)
    ax.set_yticklabels([str(v) for v in lifts[label_col].to_list()])
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    return _finish_ax(ax, owned)


# --------------------------------------------------------------------------- since last run


def retention_lines(retention: pl.DataFrame, segment_col: str = "segment", palette: Mapping[str, str] | None = None,
                    ax: Axes | None = None) -> Axes:
    """Share of each segment's customers buying in month 1, 2, 3 ... (``segment, month, share``); returns the Axes."""
    owned = ax is None
    ax = _axes(ax, (WIDTH, 4.0))
    names = list(dict.fromkeys(retention[segment_col].to_list()))
    colors = _colors_for(names, palette)
    for name in names:
        part = retention.filter(pl.col(segment_col) == name).sort("month")
        ax.plot(part["month"].to_list(), part["share"].to_list(), marker="o", label=name, color=colors[name])
    ax.set_xlabel("Months after the last run")
    ax.set_ylabel("Share of the segment buying that month")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_title("Retention by segment of the last run")
    ax.legend(fontsize=7, loc="best")
    return _finish_ax(ax, owned)


def trend_lines(trend: pl.DataFrame, value_col: str = "share", segment_col: str = "segment",
                palette: Mapping[str, str] | None = None, ax: Axes | None = None) -> Axes:
    """Segment shares (or ``value_col``) per run over time (``run, as_of, segment, share``); returns the Axes."""
    owned = ax is None
    ax = _axes(ax, (WIDTH, 4.0))
    runs = list(dict.fromkeys(trend.sort("run")["run"].to_list()))
    labels = {r: a for r, a in trend.select("run", "as_of").unique().iter_rows()}
    names = list(dict.fromkeys(trend[segment_col].to_list()))
    colors = _colors_for(names, palette)
    for name in names:
        part = trend.filter(pl.col(segment_col) == name)
        vals = dict(zip(part["run"].to_list(), part[value_col].to_list()))
        ax.plot(range(len(runs)), [vals.get(r, 0.0) or 0.0 for r in runs], marker="o", label=name, color=colors[name])
    ax.set_xticks(range(len(runs)), [str(labels.get(r) or r) for r in runs], rotation=20)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.set_xlabel("Run (data as of)")
    ax.set_ylabel("Share of customers" if value_col == "share" else value_col)
    ax.set_title("Behavioural segments over runs")
    ax.legend(fontsize=7, loc="best")
    return _finish_ax(ax, owned)
