"""The experiment readout, overall and per segment for every segmentation method.

Per segment and variant (each treatment against the control): n per variant, the two means, the
absolute lift and the relative lift with 95% intervals, the p-value and the p-value adjusted for
the number of segments (and variants) read; a sample-ratio-mismatch check; Cochran's Q that the
effect differs across segments; and CUPED-adjusted estimates (pre-period spend as covariate)
beside the raw ones.

Statistics come from scipy and statsmodels (``confint_proportions_2indep`` /
``test_proportions_2indep`` for conversion, ``ttest_ind_from_stats`` for Welch's test,
``multipletests`` for Holm and Benjamini-Hochberg, ``combine_effects`` for Cochran's Q,
``scipy.stats.chisquare`` for the SRM check). The data are reduced first to sufficient statistics
per (method, segment, variant) with one polars ``group_by``, so the readout of a million exposed
customers costs one pass over the rows; the tests then run on a few hundred summary rows.

Metrics: ``conversion`` (a proportion), ``revenue`` (revenue per exposed customer, a mean, Welch)
and ``revenue_per_order`` (a ratio of two means, per-customer revenue / orders, the delta method).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ex = pl.DataFrame({"variant": ["control", "treatment"] * 500, "converted": rng.binomial(1, 0.3, 1000) * 1.0,
...                    "tier": ["a"] * 1000})
>>> r = read_experiment(ex, methods=["tier"], metrics=["conversion"], control="control")
>>> r.lifts.filter(pl.col("method") == "overall")["n_control"].item()
500
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl
from scipy import stats
from statsmodels.stats.meta_analysis import combine_effects
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, test_proportions_2indep

from segmentation_lib.errors import ConfigError, DataError

#: metric -> (outcome column, denominator column or None, kind)
METRICS: dict[str, tuple[str, str | None, str]] = {
    "conversion": ("converted", None, "proportion"),
    "revenue": ("revenue", None, "mean"),
    "revenue_per_order": ("revenue", "orders", "ratio"),
}
#: the method name of the whole-experiment rows (one segment, ``ALL``)
OVERALL, ALL = "overall", "All customers"
#: multiple-testing corrections: pre-registered methods are confirmatory (Holm), the others exploratory (BH)
HOLM, BH = "holm", "fdr_bh"
CORRECTION_WORDS = {HOLM: "Holm (pre-registered segments, or the variants overall)", BH: "Benjamini-Hochberg (exploratory slices)",
                    "none": "none (one pre-registered overall test)"}


@dataclass
class Readout:
    """The readout tables and the settings they were computed with (``to_dict`` for experiment.json)."""

    lifts: pl.DataFrame
    srm: pl.DataFrame
    heterogeneity: pl.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"settings": self.settings, "lifts": self.lifts.to_dicts(), "srm": self.srm.to_dicts(),
                "heterogeneity": self.heterogeneity.to_dicts()}


# --------------------------------------------------------------------------- sufficient statistics


def arm_statistics(frame: pl.DataFrame | pl.LazyFrame, methods: Sequence[str], covariate: str | None = "pre_spend") -> pl.DataFrame:
    """Sums per (method, segment, variant): ``n`` and the first and second moments of the outcomes.

    One row per method x segment x variant plus the ``overall`` rows; columns ``method, segment,
    variant, n, s_<c>, ss_<c>`` for each outcome column and ``s_<a>_<b>`` cross products.
    """
    lf = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    cols = lf.collect_schema().names()
    have = [c for c in ("converted", "revenue", "orders") if c in cols]
    if covariate and covariate in cols:
        have.append(covariate)
    aggs = [pl.len().alias("n")]
    for i, a in enumerate(have):
        aggs += [pl.col(a).sum().alias(f"s_{a}"), (pl.col(a) ** 2).sum().alias(f"ss_{a}")]
        aggs += [(pl.col(a) * pl.col(b)).sum().alias(f"s_{a}_{b}") for b in have[i + 1:]]
    lf = lf.with_columns(pl.col("variant").cast(pl.String))
    parts = [lf.group_by("variant").agg(aggs).with_columns(pl.lit(OVERALL).alias("method"), pl.lit(ALL).alias("segment"))]
    for m in methods:
        parts.append(lf.group_by(pl.col(m).cast(pl.String).alias("segment"), "variant").agg(aggs)
                     .with_columns(pl.lit(m).alias("method")))
    out = pl.concat([p.select("method", "segment", "variant", pl.exclude("method", "segment", "variant")) for p in parts],
                    how="vertical_relaxed")
    return out.collect().sort("method", "segment", "variant")


def _moments(row: Mapping[str, Any], y: str) -> tuple[float, float, float]:
    """(n, mean, sample variance) of column ``y`` from the sums of one arm."""
    n = float(row["n"])
    mean = row[f"s_{y}"] / n
    var = (row[f"ss_{y}"] - n * mean * mean) / (n - 1) if n > 1 else float("nan")
    return n, mean, max(var, 0.0)


def _cov(row: Mapping[str, Any], a: str, b: str) -> float:
    n = float(row["n"])
    key = f"s_{a}_{b}" if f"s_{a}_{b}" in row else f"s_{b}_{a}"
    return (row[key] - row[f"s_{a}"] * row[f"s_{b}"] / n) / (n - 1) if n > 1 else float("nan")


# --------------------------------------------------------------------------- one comparison


def _normal(diff: float, se: float, alpha: float) -> tuple[float, float, float]:
    """(low, high, two-sided p) of a normal estimate."""
    if not (se > 0 and math.isfinite(se)):
        return float("nan"), float("nan"), float("nan")
    z = stats.norm.ppf(1 - alpha / 2)
    return diff - z * se, diff + z * se, float(2 * stats.norm.sf(abs(diff / se)))


def _welch(m1: float, v1: float, n1: float, m0: float, v0: float, n0: float, alpha: float) -> tuple[float, float, float]:
    """(low, high, p) of Welch's t for the difference of two means from summary statistics."""
    se2 = v1 / n1 + v0 / n0
    if not (se2 > 0 and math.isfinite(se2)):
        return float("nan"), float("nan"), float("nan")
    df = se2 ** 2 / ((v1 / n1) ** 2 / (n1 - 1) + (v0 / n0) ** 2 / (n0 - 1))
    half = stats.t.ppf(1 - alpha / 2, df) * math.sqrt(se2)
    p = stats.ttest_ind_from_stats(m1, math.sqrt(v1), n1, m0, math.sqrt(v0), n0, equal_var=False).pvalue
    return m1 - m0 - half, m1 - m0 + half, float(p)


def _relative(m1: float, var_m1: float, m0: float, var_m0: float, alpha: float) -> tuple[float, float, float]:
    """Relative lift m1/m0 - 1 and its delta-method interval (independent arms)."""
    if not (m0 > 0):
        return float("nan"), float("nan"), float("nan")
    r = m1 / m0
    se = math.sqrt(var_m1 / m0 ** 2 + m1 ** 2 * var_m0 / m0 ** 4)
    low, high, _ = _normal(r - 1, se, alpha)
    return r - 1, low, high


def compare_arms(treat: Mapping[str, Any], control: Mapping[str, Any], metric: str, alpha: float = 0.05,
                 covariate: str | None = None, theta: float = 0.0, covariate_mean: float = 0.0) -> dict[str, float]:
    """Lift of one treatment arm over the control from their sums (see ``arm_statistics``).

    Keys: ``mean_control, mean_variant, abs_lift, abs_low, abs_high, rel_lift, rel_low, rel_high, p_value``.
    With ``covariate`` (CUPED) the outcome is ``y - theta * (x - covariate_mean)`` in both arms.

    >>> c = {"n": 1000, "s_converted": 100, "ss_converted": 100}
    >>> t = {"n": 1000, "s_converted": 130, "ss_converted": 130}
    >>> round(compare_arms(t, c, "conversion")["abs_lift"], 3)
    0.03
    """
    y, d, kind = METRICS[metric]
    n1, m1, v1 = _moments(treat, y)
    n0, m0, v0 = _moments(control, y)
    if covariate:  # CUPED: the same theta in both arms (estimated on the pooled segment)
        _, x1, vx1 = _moments(treat, covariate)
        _, x0, vx0 = _moments(control, covariate)
        m1, m0 = m1 - theta * (x1 - covariate_mean), m0 - theta * (x0 - covariate_mean)
        v1 = max(v1 - 2 * theta * _cov(treat, y, covariate) + theta ** 2 * vx1, 0.0)
        v0 = max(v0 - 2 * theta * _cov(control, y, covariate) + theta ** 2 * vx0, 0.0)
        kind = "mean"
    out = {"mean_control": m0, "mean_variant": m1, "abs_lift": m1 - m0}
    if kind == "proportion":
        c1, c0 = treat[f"s_{y}"], control[f"s_{y}"]
        if 0 < c1 + c0 < n1 + n0:
            with np.errstate(divide="ignore", invalid="ignore"):  # a zero rate in one arm: ratios statsmodels also reports
                low, high = confint_proportions_2indep(c1, n1, c0, n0, compare="diff", method="wald", alpha=alpha)
                p = test_proportions_2indep(c1, n1, c0, n0, compare="diff", method="wald").pvalue
        else:
            low = high = p = float("nan")
        rel = _relative(m1, m1 * (1 - m1) / n1, m0, m0 * (1 - m0) / n0, alpha)
    elif kind == "mean":
        low, high, p = _welch(m1, v1, n1, m0, v0, n0, alpha)
        rel = _relative(m1, v1 / n1, m0, v0 / n0, alpha)
    else:  # ratio of means: revenue / orders per arm, delta method
        ratios, variances = [], []
        for arm in (treat, control):
            n, my, vy = _moments(arm, y)
            _, md, vd = _moments(arm, d)
            r = my / md if md > 0 else float("nan")
            ratios.append(r)
            variances.append((vy - 2 * r * _cov(arm, y, d) + r * r * vd) / (n * md * md) if md > 0 else float("nan"))
        (m1, m0), (var1, var0) = ratios, variances
        out = {"mean_control": m0, "mean_variant": m1, "abs_lift": m1 - m0}
        low, high, p = _normal(m1 - m0, math.sqrt(var1 + var0) if var1 + var0 >= 0 else float("nan"), alpha)
        rel = _relative(m1, var1, m0, var0, alpha)
    out.update(abs_low=float(low), abs_high=float(high), p_value=float(p), rel_lift=rel[0], rel_low=rel[1], rel_high=rel[2])
    return out


def cuped_theta(arms: Sequence[Mapping[str, Any]], y: str, x: str) -> tuple[float, float]:
    """(theta, covariate mean) pooled over the arms of one segment: cov(y, x) / var(x)."""
    n = sum(float(a["n"]) for a in arms)
    sx, sy = sum(a[f"s_{x}"] for a in arms), sum(a[f"s_{y}"] for a in arms)
    key = f"s_{y}_{x}" if f"s_{y}_{x}" in arms[0] else f"s_{x}_{y}"
    sxy, sxx = sum(a[key] for a in arms), sum(a[f"ss_{x}"] for a in arms)
    var_x = sxx - sx * sx / n
    return ((sxy - sx * sy / n) / var_x if var_x > 0 else 0.0), sx / n


# --------------------------------------------------------------------------- the tables


def srm_check(counts: Mapping[str, int], expected: Mapping[str, float] | None = None, warn: float = 0.01,
              fail: float = 0.001) -> dict[str, Any]:
    """Sample-ratio mismatch: chi-square of the variant counts against the planned split.

    ``expected`` maps variant -> planned share (None = equal shares). Status ``fail`` when
    p < ``fail``, ``warn`` when p < ``warn``, ``too small`` when an expected count is below 5.

    >>> srm_check({"control": 50_000, "treatment": 47_500})["status"]
    'fail'
    """
    names = list(counts)
    obs = np.array([counts[v] for v in names], dtype=float)
    share = np.array([float((expected or {}).get(v, 1.0)) if expected else 1.0 for v in names])
    exp = obs.sum() * share / share.sum()
    if (exp < 5).any():
        return {"chi2": float("nan"), "p_value": float("nan"), "status": "too small"}
    chi2, p = stats.chisquare(obs, exp)
    status = "fail" if p < fail else "warn" if p < warn else "ok"
    return {"chi2": float(chi2), "p_value": float(p), "status": status}


def adjust(p_values: Sequence[float], method: str, alpha: float = 0.05) -> np.ndarray:
    """Adjusted p-values by ``multipletests`` (NaN entries stay NaN and are not counted as tests)."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=alpha, method=method)[1]
    return out


def cochran_q(effects: Sequence[float], ses: Sequence[float]) -> dict[str, float]:
    """Cochran's Q that per-segment effects differ (statsmodels ``combine_effects``); NaN with < 2 usable."""
    e, s = np.asarray(effects, dtype=float), np.asarray(ses, dtype=float)
    ok = np.isfinite(e) & np.isfinite(s) & (s > 0)
    if ok.sum() < 2:
        return {"q": float("nan"), "df": int(ok.sum()) - 1, "p_value": float("nan"), "i2": float("nan"), "k": int(ok.sum())}
    res = combine_effects(e[ok], s[ok] ** 2)
    test = res.test_homogeneity()
    return {"q": float(test.statistic), "df": int(test.df), "p_value": float(test.pvalue), "i2": float(res.i2), "k": int(ok.sum())}


def read_experiment(frame: pl.DataFrame | pl.LazyFrame, methods: Sequence[str], metrics: Sequence[str] = ("conversion",),
                    control: str = "control", alpha: float = 0.05, pre_registered: Sequence[str] = (),
                    expected_split: Mapping[str, float] | None = None, srm_warn: float = 0.01, srm_fail: float = 0.001,
                    covariate: str | None = "pre_spend", min_segment_size: int = 30) -> Readout:
    """The readout of an experiment: lifts, SRM and heterogeneity tables overall and per segment.

    ``frame``: one row per exposed customer with ``variant``, the outcome columns the metrics need
    and one column per method. ``pre_registered`` methods are corrected with Holm, the others with
    Benjamini-Hochberg; each family is the segments x treatment variants of one method and metric.
    """
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"experiment.metrics: unknown metric(s) {unknown}. Fix: use {', '.join(METRICS)}.")
    sums = arm_statistics(frame, methods, covariate)
    for m in metrics:
        need = [c for c in METRICS[m][:2] if c]
        if any(f"s_{c}" not in sums.columns for c in need):
            raise DataError(f"experiment: metric '{m}' needs the column(s) {need}, not found among the outcomes. Fix: "
                            "compute outcomes from the transaction log (data.path) or map experiment.columns.")
    variants = sums.filter(pl.col("method") == OVERALL)["variant"].to_list()
    if control not in variants:
        raise ConfigError(f"experiment.control '{control}' is not among the variants {variants}. Fix: set experiment.control.")
    treatments = [v for v in variants if v != control]
    variants = [control, *treatments]
    use_cov = bool(covariate) and f"s_{covariate}" in sums.columns
    rows, srm_rows = [], []
    for (method, segment), grp in sums.group_by(["method", "segment"], maintain_order=True):
        arms = {r["variant"]: r for r in grp.to_dicts()}
        counts = {v: int(arms[v]["n"]) if v in arms else 0 for v in variants}
        srm_rows.append({"method": method, "segment": segment, **{f"n_{v}": counts[v] for v in variants},
                         **srm_check(counts, expected_split, srm_warn, srm_fail)})
        if control not in arms:
            continue
        for metric in metrics:
            y = METRICS[metric][0]
            theta, xbar = cuped_theta(list(arms.values()), y, covariate) if use_cov and METRICS[metric][2] != "ratio" else (0.0, 0.0)
            for v in treatments:
                if v not in arms:
                    continue
                t, c = arms[v], arms[control]
                small = min(t["n"], c["n"]) < min_segment_size
                row = {"method": method, "segment": segment, "metric": metric, "variant": v,
                       "n_control": int(c["n"]), "n_variant": int(t["n"]), "small": small,
                       **compare_arms(t, c, metric, alpha)}
                if use_cov and METRICS[metric][2] != "ratio":
                    cu = compare_arms(t, c, metric, alpha, covariate=covariate, theta=theta, covariate_mean=xbar)
                    row.update(cuped_lift=cu["abs_lift"], cuped_low=cu["abs_low"], cuped_high=cu["abs_high"],
                               cuped_p=cu["p_value"], cuped_theta=theta)
                else:
                    row.update(cuped_lift=None, cuped_low=None, cuped_high=None, cuped_p=None, cuped_theta=None)
                rows.append(row)
    if not rows:
        raise DataError("experiment: no segment has both the control and a treatment variant. Fix: check the exposures.")
    lifts = pl.DataFrame(rows, infer_schema_length=None).with_columns(
        pl.col(c).cast(pl.Float64) for c in ("cuped_lift", "cuped_low", "cuped_high", "cuped_p", "cuped_theta"))
    lifts = _with_adjusted(lifts, pre_registered, alpha)
    het = _heterogeneity(lifts, methods, metrics, treatments, alpha)
    settings = {"control": control, "variants": variants, "metrics": list(metrics), "methods": list(methods),
                "alpha": alpha, "pre_registered": [m for m in methods if m in pre_registered],
                "exploratory": [m for m in methods if m not in pre_registered],
                "corrections": {m: CORRECTION_WORDS[HOLM if m in pre_registered else BH] for m in methods},
                "expected_split": dict(expected_split) if expected_split else "equal",
                "srm_warn": srm_warn, "srm_fail": srm_fail, "cuped_covariate": covariate if use_cov else None,
                "min_segment_size": min_segment_size}
    return Readout(lifts=lifts, srm=pl.DataFrame(srm_rows, infer_schema_length=None), heterogeneity=het, settings=settings)


def _with_adjusted(lifts: pl.DataFrame, pre_registered: Sequence[str], alpha: float) -> pl.DataFrame:
    """Adjusted p-values per family (method x metric: its segments x treatment variants)."""
    parts = []
    for (method, metric), grp in lifts.group_by(["method", "metric"], maintain_order=True):
        # overall: one pre-registered test per variant; with several variants Holm over them
        how = (("none" if grp.height == 1 else HOLM) if method == OVERALL
               else HOLM if method in pre_registered else BH)
        adj = grp["p_value"].to_numpy() if how == "none" else adjust(grp["p_value"].to_numpy(), how, alpha)
        parts.append(grp.with_columns(pl.Series("p_adjusted", adj, dtype=pl.Float64), pl.lit(how).alias("correction")))
    out = pl.concat(parts)
    return out.with_columns(((pl.col("p_adjusted") < alpha) & pl.col("p_adjusted").is_not_nan()).fill_null(False)
                            .alias("significant"))


def _heterogeneity(lifts: pl.DataFrame, methods: Sequence[str], metrics: Sequence[str], treatments: Sequence[str],
                   alpha: float) -> pl.DataFrame:
    z = stats.norm.ppf(1 - alpha / 2)
    rows = []
    for method in methods:
        for metric in metrics:
            for v in treatments:
                g = lifts.filter((pl.col("method") == method) & (pl.col("metric") == metric) & (pl.col("variant") == v)
                                 & ~pl.col("small"))
                se = ((g["abs_high"] - g["abs_low"]) / (2 * z)).to_numpy() if g.height else np.array([])
                q = cochran_q(g["abs_lift"].to_numpy() if g.height else [], se)
                rows.append({"method": method, "metric": metric, "variant": v, **q,
                             "differs": bool(np.isfinite(q["p_value"]) and q["p_value"] < alpha)})
    schema = {"method": pl.String, "metric": pl.String, "variant": pl.String, "q": pl.Float64, "df": pl.Int64,
              "p_value": pl.Float64, "i2": pl.Float64, "k": pl.Int64, "differs": pl.Boolean}
    return pl.DataFrame(rows, schema=schema)
