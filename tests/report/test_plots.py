"""Every figure function draws into a given Axes (``ax=`` / ``axes=``) and returns it; one palette per run."""
from __future__ import annotations

import datetime as dt

import matplotlib.pyplot as plt
import numpy as np
import polars as pl
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from segmentation_lib.report import pages, plots

SEGS = ["Loyal", "Casual", "Lapsed"]
SCORES = pl.DataFrame({"r_score": [1, 2, 3, 1, 2, 3], "f_score": [1, 1, 2, 2, 3, 3], "segment": ["A", "A", "B", "B", "C", "C"]})
SWEEP = pl.DataFrame({"k": [2, 3, 4], "inertia": [9.0, 5.0, 4.0], "silhouette": [0.3, 0.4, 0.35]})

#: single-panel functions: name -> (args, kwargs)
SINGLE = {
    "cohort_heatmap": ((pl.DataFrame({"cohort": ["2024-01", "2024-01", "2024-02"], "months_since": [0, 1, 0],
                                      "retention": [1.0, 0.4, 1.0]}),), {}),
    "score_heatmap": ((SCORES,), {}),
    "segment_map": ((SCORES,), {}),
    "value_engagement": ((pl.DataFrame({"value_engagement": ["Champions", "Dormant"], "high_value": [True, False],
                                        "high_engagement": [True, False], "customers": [3, 7], "revenue": [90.0, 10.0]}),), {}),
    "importance_heatmap": ((pl.DataFrame({"segment": SEGS, "n_orders": [1.0, -0.5, -0.5]}),), {}),
    "snake_plot": ((pl.DataFrame({"segment": SEGS, "f1": [1.0, 0.0, -1.0], "f2": [0.5, 0.1, -0.6]}),), {}),
    "projection": ((pl.DataFrame({"pc1": [0.0, 1.0, 2.0], "pc2": [1.0, 0.0, 2.0], "segment": SEGS}),), {"explained": [0.5, 0.2]}),
    "crosstab_heatmap": ((pl.DataFrame({"seg": ["A", "B"], "x": [1, 2], "y": [3, 0]}), "seg", "T", "X", "Y"), {}),
    "migration_heatmap": ((pl.DataFrame({"from_segment": ["A", "B"], "A": [0.5, 0.2], "B": [0.5, 0.8]}),), {}),
    "stability_bars": ((pl.DataFrame({"segment": SEGS, "jaccard_mean": [0.9, 0.7, 0.4]}),), {}),
    "value_churn_matrix": ((pl.DataFrame({"value_churn": ["Champions", "At Risk"], "high_value": [True, True],
                                          "likely_active": [True, False], "customers": [3, 7],
                                          "expected_clv": [90.0, 10.0]}),), {}),
    "calibration_plot": ((pl.DataFrame({"bucket": ["0", "1", "6+"], "customers": [5, 3, 0], "predicted": [0.1, 0.5, None],
                                        "actual": [0.2, 0.4, None]}),), {"holdout_days": 90}),
    "lift_forest": ((pl.DataFrame({"label": ["All", "A"], "abs_lift": [0.01, 0.05], "abs_low": [0.0, 0.02],
                                   "abs_high": [0.02, 0.08], "significant": [False, True]}),), {"scale": 100.0}),
    "retention_lines": ((pl.DataFrame({"segment": ["A", "A", "B"], "month": [1, 2, 1], "share": [0.5, 0.3, 0.1]}),), {}),
    "trend_lines": ((pl.DataFrame({"run": ["r1", "r1", "r2"], "as_of": ["2025-01-01", "2025-01-01", "2025-04-01"],
                                   "segment": ["A", "B", "A"], "share": [0.6, 0.4, 1.0]}),), {}),
}
#: multi-panel functions: name -> (args, kwargs, (nrows, ncols))
MULTI = {
    "activity_over_time": ((pl.DataFrame({"month": [dt.date(2024, 1, 1), dt.date(2024, 2, 1)], "customers": [3, 4],
                                          "orders": [5, 6], "revenue": [10.0, 12.0]}),), {}, (3, 1)),
    "log_distributions": ((pl.DataFrame({"total_spend": [1.0, 10.0, 100.0], "n_orders": [1, 2, 8]}),), {}, (1, 2)),
    "segment_bars": ((pl.DataFrame({"segment": SEGS, "customers": [5, 3, 2], "revenue": [50.0, 30.0, 20.0]}),), {}, (1, 2)),
    "k_sweep": ((SWEEP,), {"chosen_k": 3}, (1, 2)),
    "predictive_comparison": ((pl.DataFrame({"method": ["clusters", "rfm"], "segment": ["A", "B"],
                                             "holdout_spend_mean": [3.0, 4.0]}),), {}, (1, 2)),
}


def test_every_figure_function_is_covered() -> None:
    public = {n for n, f in vars(plots).items() if callable(f) and getattr(f, "__module__", "") == plots.__name__
              and not n.startswith("_") and n not in ("apply_style", "segment_palette")}
    assert public == set(SINGLE) | set(MULTI)


@pytest.mark.parametrize("name", sorted(SINGLE))
def test_single_panel_functions_take_and_return_ax(name: str) -> None:
    args, kwargs = SINGLE[name]
    fig, ax = plt.subplots()
    try:
        assert getattr(plots, name)(*args, ax=ax, **kwargs) is ax
        assert ax.get_title(), name
        assert len(plt.get_fignums()) == 1, f"{name} opened a figure of its own"
        own = getattr(plots, name)(*args, **kwargs)  # ax=None: a new figure
        assert own is not ax and own.figure is not fig
    finally:
        plt.close("all")


@pytest.mark.parametrize("name", sorted(MULTI))
def test_multi_panel_functions_take_axes_and_return_the_figure(name: str) -> None:
    args, kwargs, (nrows, ncols) = MULTI[name]
    fig, axes = plt.subplots(nrows, ncols, squeeze=False)
    try:
        assert getattr(plots, name)(*args, axes=axes, **kwargs) is fig
        assert len(plt.get_fignums()) == 1, f"{name} opened a figure of its own"
        assert isinstance(getattr(plots, name)(*args, **kwargs), Figure)
    finally:
        plt.close("all")


def test_segment_palette_is_ordered_with_fixed_greys() -> None:
    pal = plots.segment_palette(["B", "Noise", "A", "No purchases (returns only)", "B"])
    assert list(pal) == ["B", "Noise", "A", "No purchases (returns only)"]
    assert pal["B"] == plots.SEGMENT_COLORS[0] and pal["A"] == plots.SEGMENT_COLORS[1]
    assert pal["Noise"] == "#8c8c8c" and pal["No purchases (returns only)"] == "#c7c7c7"
    many = plots.segment_palette([f"s{i}" for i in range(20)])
    assert len(set(list(many.values())[:18])) == 18 and "#8c8c8c" not in many.values()
    # behavioural segments are keyed by name in segment-id order, whatever order the names come in
    assert list(pages.cluster_palette({"names": {"2": "C", "0": "A", "1": "B"}}))[:3] == ["A", "B", "C"]


def test_projection_and_snake_plot_of_one_run_give_a_segment_the_same_colour() -> None:
    names = {"0": "Loyal", "1": "Casual", "2": "Lapsed"}
    palette = pages.cluster_palette({"names": names})
    means = pl.DataFrame({"segment": ["Loyal", "Casual", "Lapsed", "Noise"], "f1": [1.0, 0.0, -1.0, 0.2]})
    rng = np.random.default_rng(0)
    coords = pl.DataFrame({"pc1": rng.normal(size=40), "pc2": rng.normal(size=40),
                           "segment": ["Lapsed", "Noise", "Casual", "Loyal"] * 10})
    try:
        snake = {l.get_label(): to_hex(l.get_color()) for l in plots.snake_plot(means, palette=palette).get_lines()
                 if not l.get_label().startswith("_")}
        proj = {c.get_label(): to_hex(c.get_facecolor()[0]) for c in plots.projection(coords, palette=palette).collections}
    finally:
        plt.close("all")
    assert snake == proj == {n: palette[n] for n in ["Loyal", "Casual", "Lapsed", "Noise"]}
    assert snake["Noise"] == "#8c8c8c"
