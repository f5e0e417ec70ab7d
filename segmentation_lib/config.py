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

from .errors import ConfigError

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
FREE_KEYS = ("data.columns", "data.customers.columns", "clustering.names", "data.demo")


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
    if not isinstance(cfg["run"].get("seed"), int):
        raise ConfigError(f"{source}: run.seed must be an integer, got {cfg['run'].get('seed')!r}. Fix: e.g. seed: 42.")
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
