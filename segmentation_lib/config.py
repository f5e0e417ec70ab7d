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
import os
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
    "data.products.path",
    "data.events.path",
    "data.truth",
    "rfm.frozen_edges",
    "run.reference",
    "run.compare_to",
    "report.out_dir",
    "experiment.path",
    "experiment.segments_run",
    "experiment.segments_model",
)

#: the years a transaction or ``run.as_of`` may fall in: a date outside (a two-digit year read as year
#: 0024, a 9999-12-31 placeholder) is a reading error, counted by quality.implausible_timestamp
PLAUSIBLE_YEARS = (1900, 2199)

#: mappings whose keys are free-form (not checked against the defaults)
FREE_KEYS = ("data.columns", "data.customers.columns", "clustering.names", "data.demo", "engine.conf",
             "data.products.columns", "clustering.encodings")


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
    "data.partition_rows": ("int", 1000, None, False),
    "quality.outlier_quantile": ("num", ("(", 0), (1, ")"), False),
    "rfm.value_engagement.value_cut": ("num", ("(", 0), (1, ")"), False),
    "rfm.value_engagement.engagement_cut": ("num", ("(", 0), (1, ")"), False),
    "clustering.k": ("int", 2, None, True),
    "clustering.min_k": ("int", 2, None, False),  # a segmentation has at least two segments
    "clustering.max_k": ("int", 2, None, False),
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
    "experiment.window_days": ("int", 1, None, False),
    "experiment.pre_period_days": ("int", 1, None, False),
    "experiment.alpha": ("num", ("(", 0), (0.5, ")"), False),
    "experiment.srm_warn": ("num", ("(", 0), (1, ")"), False),
    "experiment.srm_fail": ("num", ("(", 0), (1, ")"), False),
    "experiment.min_segment_size": ("int", 2, None, False),
    "feedback.min_responses": ("int", 1, None, False),
    "feedback.confidence": ("num", ("(", 0), (1, ")"), False),
    "history.min_overlap": ("num", 0, 1, False),
    "history.top_flows": ("int", 1, None, False),
    "history.drift.psi": ("num", 0, None, False),
    "history.drift.share_shift": ("num", 0, 1, False),
    "history.drift.ari": ("num", -1, 1, False),
    "engine.partitions": ("int", 1, None, False),
    "features.categories.top": ("int", 1, 100, False),
}


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, again: int) -> None:
        super().__init__(f"the key '{key}' appears twice in one mapping (lines {first} and {again})")
        self.key, self.first, self.again = key, first, again


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader refusing a key given twice in one mapping (plain YAML keeps the last one silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], key_node.start_mark.line + 1)
                seen[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the base class names it
                break
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str, source: str) -> Any:
    """YAML text as Python data with the safe loader; a duplicated key or a syntax error raises
    ConfigError naming ``source`` and the line(s).

    >>> load_yaml("a: 1\\nb: 2\\n", "x.yaml")
    {'a': 1, 'b': 2}
    >>> load_yaml("data:\\n  path: a.csv\\n  path: b.csv\\n", "x.yaml")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    segmentation_lib.errors.ConfigError: x.yaml: the key 'path' appears twice in one mapping (lines 2 and 3)...
    """
    try:
        return yaml.load(text, Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{source}: {exc}; YAML would silently keep only the last value. Fix: keep one of the "
                          "two entries (merge them if both hold settings).") from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{source} is not valid YAML ({first}{where}). Fix the syntax at the line named; "
                          "configs/default.yaml shows the expected layout.") from None


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
    if isinstance(value, str) and value.strip().lower() == "today":
        return "today"  # resolved when the data are read (data.quality.parse_as_of) and recorded in the manifest
    try:
        day = value.date() if isinstance(value, datetime) else value if isinstance(value, date) \
            else date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"{source}: run.as_of is '{value}', which is not a date. Fix: write it as YYYY-MM-DD "
            f"(for example 2024-12-31), today for the day of the run, or null to use the day after the last "
            "transaction."
        ) from None
    if not PLAUSIBLE_YEARS[0] <= day.year <= PLAUSIBLE_YEARS[1]:
        raise ConfigError(
            f"{source}: run.as_of is {day.isoformat()}, outside the years {PLAUSIBLE_YEARS[0]}-{PLAUSIBLE_YEARS[1]} a "
            f"transaction log can cover (a two-digit year is read as year {day.year:04d}). Fix: write the year with "
            f"four digits (for example 2024-12-25), or null to use the day after the last transaction."
        )
    return day.isoformat()


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
    names = _get(cfg, "features.categories.names")
    if names is not None and not (isinstance(names, list) and names and all(isinstance(n, str) and n.strip() for n in names)
                                  and len(set(names)) == len(names)):
        problems.append(f"features.categories.names is {names!r} (allowed: null, or a non-empty list of distinct "
                        "category names, e.g. [Books, Toys])")
    return problems


_RFM_DIMS = ("recency", "frequency", "monetary")


def _check_rfm_cuts(cfg: dict) -> list[str]:
    """rfm.bins as a mapping, rfm.percentiles, rfm.thresholds and rfm.filters (see RFMScorer)."""
    problems: list[str] = []
    bins = _get(cfg, "rfm.bins")
    allowed = CHOICES["rfm.bins"]
    counts: dict[str, Any] = {d: bins for d in _RFM_DIMS}
    if isinstance(bins, Mapping):
        # a count per measure: the segment map is the one for the largest count, the other
        # measures' scores read on its scale (segment.rfm_maps.score_on_map_scale)
        bad = {k: v for k, v in bins.items() if k not in _RFM_DIMS or isinstance(v, bool) or v not in allowed}
        if bad or not bins:
            problems.append(f"rfm.bins is {dict(bins)!r} (allowed: one of {', '.join(map(str, allowed))} for all three "
                            "measures, or a mapping of recency/frequency/monetary to those counts, e.g. "
                            "{recency: 5, frequency: 3, monetary: 5}; a measure left out has 5)")
            counts = {d: None for d in _RFM_DIMS}
        else:
            counts = {d: int(bins.get(d, 5)) for d in _RFM_DIMS}
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
    k_range = _get(cfg, "clustering.k_range")
    if (_is_number(lo, "int") and _is_number(hi, "int") and lo <= hi and isinstance(k_range, list)
            and len(k_range) == 2 and all(_is_number(v, "int") for v in k_range) and 2 <= k_range[0] <= k_range[1]
            and max(lo, k_range[0]) > min(hi, k_range[1]) and _get(cfg, "clustering.k") is None):
        problems.append(f"clustering.k_range {k_range} and clustering.min_k..max_k ({lo}..{hi}) have no k in common, "
                        "so no number of segments could be recommended (allowed: ranges that overlap)")
    weak, strong = _get(cfg, "validation.doubtful_threshold"), _get(cfg, "validation.stable_threshold")
    if _is_number(weak, "num") and _is_number(strong, "num") and weak > strong:
        problems.append(f"validation.doubtful_threshold ({weak}) is above validation.stable_threshold ({strong}) "
                        "(allowed: doubtful_threshold <= stable_threshold)")
    return problems


def _check_feedback(cfg: dict) -> list[str]:
    """The ``feedback`` section: column and event names are text or null, one source per signal, and the
    table or log they come from is configured (validate/feedback.py reads them)."""
    fb = _get(cfg, "feedback") or {}
    events = fb.get("events") or {}
    data = cfg.get("data") or {}
    problems = []
    for s in ("nps", "csat", "tickets", "sentiment"):
        if fb.get(s) is not None and not isinstance(fb[s], str):
            problems.append(f"feedback.{s} is {fb[s]!r} (allowed: a column name of the customer table, or null)")
    for s, v in events.items():
        if v is not None and not isinstance(v, str):
            problems.append(f"feedback.events.{s} is {v!r} (allowed: an event name of data.events, or null)")
        if fb.get(s) and v:
            problems.append(f"feedback.{s} and feedback.events.{s} both give the {s} signal (allowed: one source per "
                            "signal; set the other to null)")
    if any(fb.get(s) for s in ("nps", "csat", "tickets", "sentiment")) and not (data.get("customers") or {}).get("path"):
        problems.append("feedback names customer-table columns but data.customers.path is null (allowed: set "
                        "data.customers.path to the table that holds them, or use feedback.events)")
    if any(events.values()) and not (data.get("events") or {}).get("path"):
        problems.append("feedback.events names events but data.events.path is null (allowed: set data.events.path to "
                        "the event log, or name customer-table columns in feedback)")
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
    problems += _check_feedback(cfg)
    problems += encoding_problems(_get(cfg, "clustering.encodings"))
    if problems:
        n = len(problems)
        head = "1 setting has an invalid value" if n == 1 else f"{n} settings have invalid values"
        raise ConfigError(f"{source}: {head}: " + "; ".join(problems) + ". Fix: correct these values in the "
                          "configuration file (docs/configuration.md describes every setting).")


def encoding_problems(encodings: Any) -> list[str]:
    """Problems of a ``clustering.encodings`` mapping (see segmentation_lib.features.encoding); [] when fine.

    >>> encoding_problems({"plan": {"ordinal": ["free", "paid"]}, "region": {"one_hot": {"max_levels": 8}}})
    []
    >>> encoding_problems({"region": {"one_hot": {"max_levels": 0}}})
    ['clustering.encodings.region.one_hot.max_levels is 0 (allowed: a whole number >= 1)']
    """
    if encodings is None:
        return []
    if not isinstance(encodings, Mapping):
        return [f"clustering.encodings is {encodings!r} (allowed: a mapping of text column -> encoding)"]
    problems = []
    for col, spec in encodings.items():
        key = f"clustering.encodings.{col}"
        if not (isinstance(spec, Mapping) and len(spec) == 1 and next(iter(spec)) in ("one_hot", "ordinal")):
            problems.append(f"{key} is {spec!r} (allowed: {{one_hot: {{max_levels: 8}}}} or {{ordinal: [level, ...]}})")
            continue
        kind, value = next(iter(spec.items()))
        if kind == "ordinal":
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)
                    and len(set(value)) == len(value)):
                problems.append(f"{key}.ordinal is {value!r} (allowed: a non-empty list of distinct level names, "
                                "lowest first)")
        else:
            unknown = sorted(set(value) - {"max_levels"}) if isinstance(value, Mapping) else None
            cap = value.get("max_levels") if isinstance(value, Mapping) else None
            if unknown is None or unknown:
                problems.append(f"{key}.one_hot is {value!r} (allowed: {{max_levels: a whole number >= 1}})")
            elif not (_is_number(cap, "int") and cap >= 1):
                problems.append(f"{key}.one_hot.max_levels is {cap!r} (allowed: a whole number >= 1)")
    return problems


def absolute_path(path: Path | str) -> str:
    """``path`` made absolute with links resolved where they lead somewhere (a loop of links or a
    dangling link stays as written, so the reader can name it instead of a RuntimeError here).

    >>> absolute_path("/tmp/../tmp/x.csv")
    '/tmp/x.csv'
    """
    try:
        return str(Path(path).resolve())
    except (RuntimeError, OSError):
        return os.path.abspath(path)


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
            _set(cfg, dotted, absolute_path(base / value) if not Path(value).is_absolute() else value)
    seg_map = _get(cfg, "rfm.segment_map")
    if isinstance(seg_map, str) and seg_map.endswith((".yaml", ".yml")) and not Path(seg_map).is_absolute():
        cfg["rfm"]["segment_map"] = absolute_path(base / seg_map)
    cfg["run"]["as_of"] = _parse_as_of(cfg["run"].get("as_of"), source)
    bins = _get(cfg, "rfm.bins")
    if isinstance(bins, Mapping) and bins and all(k in _RFM_DIMS for k in bins):  # every measure's count written out
        cfg["rfm"]["bins"] = {d: bins.get(d, 5) for d in _RFM_DIMS}
    cfg = with_usage_measures(cfg)  # usage-only runs: rfm.usage replaces the purchase measures
    check_values(cfg, source)
    return cfg


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Read a run configuration YAML file, merged over the defaults, with paths made absolute.

    ``overrides`` is a nested mapping applied on top of the file (used by tests and the CLI).
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(
            f"Configuration file '{p}' does not exist (looked for '{p.resolve()}'). Fix: pass an existing YAML "
            "file with --config, or start one for your data with 'segment init YOUR_DATA_FILE' (writes "
            "segment.yaml with the column mapping guessed from the header)."
        )
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"Configuration file '{p}' is not UTF-8 text ({exc.reason} at byte {exc.start}). Fix: save it as "
            f"UTF-8; configs/default.yaml shows the expected layout."
        ) from None
    raw = load_yaml(text, f"Configuration file '{p}'") or {}
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


def init_config_text(data_file: str | Path, config_file: str | Path, columns: Mapping[str, str | None],
                     preset: str | None = None, header: list[str] | None = None) -> str:
    """A short, commented run configuration for ``data_file`` (``segment init``): the data path
    relative to the configuration's folder, the preset or the column mapping, and the few settings
    a first run is most likely to change. Everything else keeps its default.

    >>> print(init_config_text("shop.csv", "segment.yaml", {"customer_id": "Member"}).splitlines()[4])
    run:
    """
    import json
    import os

    data_file, config_file = Path(data_file), Path(config_file)
    try:
        rel = os.path.relpath(data_file.resolve(), config_file.resolve().parent)
    except ValueError:  # another drive (Windows)
        rel = str(data_file.resolve())
    q = json.dumps  # a JSON string is a valid YAML scalar, whatever characters the name holds
    name = data_file.stem if data_file.suffix else data_file.name
    lines = [
        f"# Run configuration for {q(str(data_file))}, written by `segment init`.",
        "# Settings left out take the kit's defaults (docs/configuration.md lists every one).",
        "# Relative paths start at this file's folder. Next: segment check-data --config " + q(str(config_file)),
        "",
        "run:",
        f"  name: {q(name)}                # the report title",
        "  seed: 42                # the same seed gives the same report",
        "  as_of: null             # YYYY-MM-DD, today, or null = the day after the last transaction (repeatable)",
        "",
        "data:",
        f"  path: {q(rel)}",
    ]
    if preset:
        lines.append(f"  preset: {q(preset)}       # the header matches this known layout")
    else:
        lines += ["  columns:               # kit column: column in your file, guessed from the header; null = not in the file"]
        notes = {"customer_id": "required", "timestamp": "required", "amount": "required, or quantity x unit_price"}
        for canonical in ("customer_id", "timestamp", "amount", "order_id", "product_id", "quantity", "unit_price"):
            src = columns.get(canonical)
            note = notes.get(canonical, "optional")
            if not src and canonical in ("customer_id", "timestamp"):
                note += ", NOT FOUND: set it"
            elif not src and canonical == "amount":
                note = ("derived as quantity x unit_price" if columns.get("quantity") and columns.get("unit_price")
                        else "required, NOT FOUND: set it, or map quantity and unit_price")
            lines.append(f"    {canonical}: {q(src) if src else 'null'}    # {note}")
        lines += ["  date_format: null       # e.g. \"%d/%m/%Y %H:%M\"; null = inferred from the values",
                  "  timezone: UTC           # zone of timestamps without an offset"]
    lines += [
        "  customers: null         # optional customer attributes table: {path: customers.csv}",
        "  truth: null",
        "",
        "rfm:",
        "  bins: 5                 # 3, 4, 5 or 10 scores per measure, or per measure {recency: 5, frequency: 3, monetary: 5}",
        "",
        "report:",
        "  out_dir: reports        # each run writes a new folder here",
    ]
    if header:
        lines.append(f"# Columns of the file: {', '.join(header)}")
    return "\n".join(lines) + "\n"


def dump_config(cfg: Mapping[str, Any]) -> str:
    """The configuration as YAML text (for manifests)."""
    return yaml.safe_dump({k: v for k, v in cfg.items() if not str(k).startswith("_")}, sort_keys=False)


def usage_only(cfg: Mapping[str, Any]) -> bool:
    """True for a usage-only run: no transaction log (``data.path`` null) and an event log (``data.events.path``).

    >>> usage_only({"data": {"path": None, "events": {"path": "events.parquet"}}})
    True
    >>> usage_only({"data": {"path": "tx.csv", "events": {"path": "events.parquet"}}})
    False
    """
    data = cfg.get("data") or {}
    return not data.get("path") and not data.get("table") and bool((data.get("events") or {}).get("path"))


def with_usage_measures(cfg: dict[str, Any]) -> dict[str, Any]:
    """In a usage-only run, the RFM measures and the value/engagement axes of ``rfm.usage`` replace the
    purchase ones (``rfm.recency``, ``rfm.frequency``, ``rfm.monetary``, ``rfm.value_engagement.value`` /
    ``engagement``); any other run is returned unchanged.

    >>> cfg = {"data": {"path": None, "events": {"path": "e.csv"}}, "rfm": {"recency": "days_since_last",
    ...        "usage": {"recency": "days_since_last_activity"}, "value_engagement": {}}}
    >>> with_usage_measures(cfg)["rfm"]["recency"]
    'days_since_last_activity'
    """
    rfm = cfg.get("rfm") or {}
    usage = rfm.get("usage") or {}
    if not usage_only(cfg) or not usage:
        return cfg
    for dim in _RFM_DIMS:
        if usage.get(dim):
            rfm[dim] = usage[dim]
    ve = rfm.get("value_engagement")
    if isinstance(ve, dict):
        for axis in ("value", "engagement"):
            if usage.get(axis):
                ve[axis] = usage[axis]
    return cfg

