"""Run configuration: one YAML file per run, merged over the kit's defaults and checked.

Relative paths in a configuration file are resolved against the folder of that file, so a run
behaves the same from the repository root, from `notebooks/` in JupyterLab, or from cron.

>>> cfg = load_config("configs/default.yaml")  # doctest: +SKIP
>>> cfg["rfm"]["bins"]                           # doctest: +SKIP
5
"""
from __future__ import annotations

import copy
import difflib
from datetime import date, datetime
from pathlib import Path
from typing import Any, Mapping

import yaml

from segmentation_lib.errors import ConfigError

DEFAULTS_FILE = Path(__file__).with_name("default_config.yaml")

#: keys (dotted) whose values are file paths, resolved relative to the configuration file
PATH_KEYS = (
    "data.path",
    "data.customers.path",
    "data.truth",
    "rfm.frozen_edges",
    "report.out_dir",
)

#: mappings whose keys are free-form (not checked against the defaults)
FREE_KEYS = ("data.columns", "data.customers.columns", "clustering.names", "data.demo", "engine.conf")


#: settings with a fixed set of values (kept equal to the modules' own lists; tests/test_config.py checks it)
CHOICES: dict[str, tuple] = {
    "rfm.bins": (3, 4, 5, 10),                                                          # rfm.ALLOWED_BINS
    "clustering.algorithm": ("kmeans", "minibatch_kmeans", "gmm", "agglomerative", "hdbscan"),  # clustering.ALGORITHMS
    "clustering.scaler": ("standard", "robust"),                                        # preprocessing.SCALERS
    "clustering.noise": ("assign", "label"),
    "validation.method": ("bootstrap", "subsample"),
    "predict.model": ("mbgnbd", "bgnbd", "pareto"),                                     # predict.counts.COUNT_MODELS
    "predict.freq": ("D", "W", "M"),                                                    # features.common.FREQS
    "engine.kind": ("polars", "spark"),                                                 # engine.spark_session.ENGINES
}

#: numeric settings: dotted key -> (kind, low, high, nullable); kind "int" = a whole number,
#: "num" = any number; bounds are inclusive unless written as ("(", value) / (value, ")")
NUMBERS: dict[str, tuple[str, Any, Any, bool]] = {
    "run.seed": ("int", None, None, False),
    "quality.outlier_quantile": ("num", ("(", 0), (1, ")"), False),
    "rfm.value_engagement.value_cut": ("num", ("(", 0), (1, ")"), False),
    "rfm.value_engagement.engagement_cut": ("num", ("(", 0), (1, ")"), False),
    "clustering.k": ("int", 2, None, True),
    "clustering.min_k": ("int", 1, None, False),
    "clustering.max_k": ("int", 1, None, False),
    "clustering.clip_quantile": ("num", ("(", 0.5), 1, True),
    "clustering.min_segment_share": ("num", 0, (1, ")"), False),
    "clustering.sample_size": ("int", 1, None, False),
    "clustering.metric_sample_size": ("int", 1, None, False),
    "clustering.n_init": ("int", 1, None, False),
    "clustering.hdbscan_min_cluster_size": ("int", 2, None, True),
    "clustering.hdbscan_min_samples": ("int", 1, None, True),
    "clustering.surrogate_depth": ("int", 1, None, False),
    "validation.n_resamples": ("int", 1, None, False),
    "validation.sample_size": ("int", 1, None, False),
    "validation.holdout_days": ("int", 1, None, False),
    "validation.stable_threshold": ("num", 0, 1, False),
    "validation.doubtful_threshold": ("num", 0, 1, False),
    "validation.n_seeds": ("int", 0, None, False),
    "validation.metric_sample_size": ("int", 1, None, False),
    "validation.min_fidelity": ("num", 0, 1, False),
    "validation.min_effect_size": ("num", 0, None, False),
    "validation.min_segment_size": ("int", 1, None, False),
    "predict.clv_months": ("int", 1, 600, False),
    "predict.monthly_discount": ("num", ("(", -1), 1, False),
    "predict.value_cut": ("num", ("(", 0), (1, ")"), False),
    "predict.alive_cut": ("num", ("(", 0), (1, ")"), False),
    "engine.partitions": ("int", 1, None, False),
}


def default_config() -> dict[str, Any]:
    """The kit's defaults (a fresh copy), as documented in ``segmentation_lib/default_config.yaml``."""
    with DEFAULTS_FILE.open(encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def _merge(base: dict, override: Mapping, where: str, source: str) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        dotted = f"{where}.{key}" if where else str(key)
        if key not in base and not any(dotted.startswith(f + ".") or dotted == f for f in FREE_KEYS):
            if where in FREE_KEYS:
                out[key] = value
                continue
            close = difflib.get_close_matches(str(key), [str(k) for k in base], n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            known = ", ".join(sorted(str(k) for k in base))
            raise ConfigError(
                f"{source}: unknown setting '{dotted}'.{hint} Known settings under "
                f"'{where or 'top level'}' are: {known}. Fix the key in the configuration file "
                f"(see docs/configuration.md)."
            )
        if isinstance(value, Mapping) and isinstance(base.get(key), Mapping) and dotted not in FREE_KEYS:
            out[key] = _merge(base[key], value, dotted, source)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _get(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set(cfg: dict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = value


def _parse_as_of(value: Any, source: str) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        return date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise ConfigError(
            f"{source}: run.as_of is '{value}', which is not a date. Fix: write it as YYYY-MM-DD "
            f"(for example 2024-12-31), or null to use the day after the last transaction."
        ) from None


def _is_number(value: Any, kind: str) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) if kind == "int" else value == value  # NaN is not a usable number


def _bound_ok(value: float, bound: Any, low: bool) -> bool:
    if bound is None:
        return True
    if isinstance(bound, tuple):  # exclusive
        limit = bound[1] if low else bound[0]
        return value > limit if low else value < limit
    return value >= bound if low else value <= bound


def _range_text(kind: str, low: Any, high: Any, nullable: bool) -> str:
    what = "a whole number" if kind == "int" else "a number"
    parts = []
    if low is not None:
        parts.append(f"> {low[1]}" if isinstance(low, tuple) else f">= {low}")
    if high is not None:
        parts.append(f"< {high[0]}" if isinstance(high, tuple) else f"<= {high}")
    return what + (" " + " and ".join(parts) if parts else "") + (", or null" if nullable else "")


def _check_number(cfg: dict, dotted: str) -> str | None:
    kind, low, high, nullable = NUMBERS[dotted]
    value = _get(cfg, dotted)
    if value is None and nullable:
        return None
    if _is_number(value, kind) and _bound_ok(value, low, True) and _bound_ok(value, high, False):
        return None
    return f"{dotted} is {value!r} (allowed: {_range_text(kind, low, high, nullable)})"


def _check_choice(cfg: dict, dotted: str) -> str | None:
    value, allowed = _get(cfg, dotted), CHOICES[dotted]
    if value in allowed and not isinstance(value, bool):
        return None
    close = difflib.get_close_matches(str(value), [str(a) for a in allowed], n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"{dotted} is {value!r} (allowed: {', '.join(str(a) for a in allowed)}{hint})"


def _check_lists(cfg: dict) -> list[str]:
    problems = []
    windows = _get(cfg, "features.windows")
    if not isinstance(windows, list) or not windows or not all(_is_number(w, "int") and w > 0 for w in windows):
        problems.append(f"features.windows is {windows!r} (allowed: a non-empty list of whole numbers of days > 0, "
                        "e.g. [30, 90, 365])")
    k_range = _get(cfg, "clustering.k_range")
    if not (isinstance(k_range, list) and len(k_range) == 2 and all(_is_number(v, "int") for v in k_range)
            and 2 <= k_range[0] <= k_range[1]):
        problems.append(f"clustering.k_range is {k_range!r} (allowed: two whole numbers [low, high] with "
                        "2 <= low <= high, e.g. [2, 10])")
    horizons = _get(cfg, "predict.horizons")
    if not isinstance(horizons, list) or not horizons or not all(_is_number(h, "num") and h > 0 for h in horizons):
        problems.append(f"predict.horizons is {horizons!r} (allowed: a non-empty list of numbers of days > 0, "
                        "e.g. [30, 90, 365])")
    cuts = _get(cfg, "predict.risk_cuts")
    if not (isinstance(cuts, list) and len(cuts) == 2 and all(_is_number(c, "num") for c in cuts)
            and 0 <= cuts[0] <= cuts[1] <= 1):
        problems.append(f"predict.risk_cuts is {cuts!r} (allowed: two P(alive) cut points [low, high] with "
                        "0 <= low <= high <= 1, e.g. [0.3, 0.7])")
    return problems


_RFM_DIMS = ("recency", "frequency", "monetary")


def _check_rfm_cuts(cfg: dict) -> list[str]:
    """rfm.bins as a mapping, rfm.percentiles, rfm.thresholds and rfm.filters (see RFMScorer)."""
    problems: list[str] = []
    bins = _get(cfg, "rfm.bins")
    allowed = CHOICES["rfm.bins"]
    counts: dict[str, Any] = {d: bins for d in _RFM_DIMS}
    if isinstance(bins, Mapping):
        # the report's segment maps name the cells of one score grid, so a run needs one bin count;
        # per-measure counts are for library use (RFMScorer(bins={...}))
        problems.append(f"rfm.bins is {dict(bins)!r} (allowed in a run: one of {', '.join(map(str, allowed))} for "
                        "all three measures, because the segment maps name cells of one score grid; per-measure "
                        "counts are available in the library as RFMScorer(bins={'recency': 5, 'frequency': 3, ...}))")
        counts = {d: None for d in _RFM_DIMS}
    per_cut: dict[str, str] = {}
    for key, unit, example in (("rfm.percentiles", "percentile", "[0.2, 0.5, 0.8]"),
                               ("rfm.thresholds", "value", "{recency: [30, 90, 180]}")):
        value = _get(cfg, key)
        if value is None:
            continue
        per = dict(value) if isinstance(value, Mapping) else {d: value for d in _RFM_DIMS}
        for dim, lst in per.items():
            if lst is None:
                continue
            ok = (dim in _RFM_DIMS and isinstance(lst, list) and 1 <= len(lst) <= 9
                  and all(_is_number(x, "num") and abs(x) != float("inf") for x in lst)
                  and all(a < b for a, b in zip(lst, lst[1:]))
                  and (key != "rfm.percentiles" or all(0 < x < 1 for x in lst)))
            if not ok:
                problems.append(f"{key} for {dim} is {lst!r} (allowed: a list of 1 to 9 strictly increasing {unit} "
                                f"cut points{' in (0, 1)' if unit == 'percentile' else ''}, for all measures or per "
                                f"measure recency/frequency/monetary, e.g. {example})")
                continue
            if dim in per_cut:
                problems.append(f"rfm.percentiles and rfm.thresholds both cut {dim} (allowed: one of them per measure)")
                continue
            per_cut[dim] = key
            if counts.get(dim) != len(lst) + 1:
                problems.append(f"{key} for {dim} makes {len(lst) + 1} scores but rfm.bins gives {dim} "
                                f"{counts.get(dim)!r} (allowed: equal counts, so the segment map and report read the "
                                f"scores right; set rfm.bins{'' if not isinstance(bins, Mapping) else '.' + dim} to "
                                f"{len(lst) + 1})")
    filters = _get(cfg, "rfm.filters")
    if filters is not None:
        ok = isinstance(filters, Mapping) and all(
            isinstance(spec, Mapping) and spec and all(k in ("min", "max") and _is_number(v, "num") for k, v in spec.items())
            and not ("min" in spec and "max" in spec and spec["min"] > spec["max"]) for spec in filters.values())
        if not ok:
            problems.append(f"rfm.filters is {filters!r} (allowed: a mapping of a column to min and/or max numbers with "
                            "min <= max, e.g. {total_spend: {min: 0}, n_orders: {max: 500}})")
    return problems


def _check_relations(cfg: dict) -> list[str]:
    problems = []
    lo, hi = _get(cfg, "clustering.min_k"), _get(cfg, "clustering.max_k")
    if _is_number(lo, "int") and _is_number(hi, "int") and lo > hi:
        problems.append(f"clustering.min_k ({lo}) is larger than clustering.max_k ({hi}) (allowed: min_k <= max_k)")
    weak, strong = _get(cfg, "validation.doubtful_threshold"), _get(cfg, "validation.stable_threshold")
    if _is_number(weak, "num") and _is_number(strong, "num") and weak > strong:
        problems.append(f"validation.doubtful_threshold ({weak}) is above validation.stable_threshold ({strong}) "
                        "(allowed: doubtful_threshold <= stable_threshold)")
    return problems


def check_values(cfg: dict, source: str = "configuration") -> None:
    """Check the values whose allowed range is known; raise ONE ConfigError listing every problem.

    >>> check_values(resolve_config({}))  # the defaults pass
    >>> resolve_config({"rfm": {"bins": 6}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.ConfigError: configuration: 1 setting has an invalid value: rfm.bins is 6 (allowed: 3, 4, 5, 10)...
    """
    problems = [p for p in (_check_choice(cfg, k) for k in CHOICES
                            if not (k == "rfm.bins" and isinstance(_get(cfg, k), Mapping))) if p]
    problems += _check_rfm_cuts(cfg)
    problems += [p for p in (_check_number(cfg, k) for k in NUMBERS) if p]
    problems += _check_lists(cfg) + _check_relations(cfg)
    if problems:
        n = len(problems)
        head = "1 setting has an invalid value" if n == 1 else f"{n} settings have invalid values"
        raise ConfigError(f"{source}: {head}: " + "; ".join(problems) + ". Fix: correct these values in the "
                          "configuration file (docs/configuration.md describes every setting).")


def resolve_config(raw: Mapping[str, Any] | None, base_dir: Path | str = ".", source: str = "configuration") -> dict[str, Any]:
    """Merge ``raw`` over the defaults, check keys, resolve paths against ``base_dir``.

    >>> resolve_config({"rfm": {"bins": 4}})["rfm"]["bins"]
    4
    """
    cfg = _merge(default_config(), raw or {}, "", source)
    base = Path(base_dir)
    for dotted in PATH_KEYS:
        value = _get(cfg, dotted)
        if isinstance(value, str) and value and "://" not in value:
            _set(cfg, dotted, str((base / value).resolve()) if not Path(value).is_absolute() else value)
    seg_map = _get(cfg, "rfm.segment_map")
    if isinstance(seg_map, str) and seg_map.endswith((".yaml", ".yml")) and not Path(seg_map).is_absolute():
        cfg["rfm"]["segment_map"] = str((base / seg_map).resolve())
    cfg["run"]["as_of"] = _parse_as_of(cfg["run"].get("as_of"), source)
    check_values(cfg, source)
    return cfg


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a run configuration YAML file, merged over the defaults, with paths made absolute.

    ``overrides`` is a nested mapping applied on top of the file (used by tests and the CLI).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"Configuration file '{p}' does not exist. Fix: pass an existing YAML file, for example "
            f"--config configs/default.yaml (copy it to start a configuration of your own)."
        )
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"Configuration file '{p}' is not valid YAML ({first}). Fix the syntax at the line named; "
            f"configs/default.yaml shows the expected layout."
        ) from None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"Configuration file '{p}' must hold a mapping of sections (run, data, rfm, ...), not {type(raw).__name__}.")
    if overrides:
        raw = _merge_free(raw, overrides)
    cfg = resolve_config(raw, p.parent, source=str(p))
    cfg["_source"] = str(p.resolve())
    return cfg


def _merge_free(base: Mapping, override: Mapping) -> dict:
    out = dict(copy.deepcopy(base))
    for k, v in override.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge_free(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The configuration as YAML text (for manifests)."""
    return yaml.safe_dump({k: v for k, v in cfg.items() if not str(k).startswith("_")}, sort_keys=False)
