"""A demo experiment on the demo customer base, with planted heterogeneous effects and their truth.

Every demo customer (or a share of them) is exposed once during ``days`` days from ``start`` to the
control or a treatment variant; the outcomes over the following window are planted as columns
(``converted``, ``revenue``, ``orders``): a baseline conversion per archetype (the recorded truth of
``data/demo.py``) plus a planted absolute effect per variant and archetype, by default +8 points
for ``explorer``, -3 points for ``dormant`` and 0 for the others. Revenue of a converting
customer scales with the customer's typical order value in the log, so pre-period spend predicts
it (CUPED has something to remove).

With ``split_change`` the traffic split changes mid-test: during the first ``ramp_days`` days 90% of
the exposures go to the control, and those days convert at twice the baseline (a promotion week);
the ``stratum`` column names the period. Treatment then wins in each period and can lose pooled.

>>> from segmentation_lib.data.demo import make_transactions
>>> demo = make_transactions(n_customers=600, seed=1)
>>> exp = make_experiment(demo.transactions, demo.truth, seed=1)
>>> exp.exposures.height, sorted(exp.exposures["variant"].unique().to_list())
(600, ['control', 'treatment'])
>>> exp.truth["effects"]["treatment"]["explorer"]
0.08
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import polars as pl

from segmentation_lib.data.demo import ARCHETYPES
from segmentation_lib.errors import ConfigError

#: baseline conversion in the outcome window, per archetype
BASELINE: dict[str, float] = {"power": 0.30, "steady": 0.16, "explorer": 0.12, "dormant": 0.08, "new": 0.10, "churned": 0.03}
#: planted absolute conversion effects per treatment variant and archetype (absent = 0)
DEFAULT_EFFECTS: dict[str, dict[str, float]] = {"treatment": {"explorer": 0.08, "dormant": -0.03}}
#: three variants (message A/B/C): B helps explorers, C helps steady customers and hurts dormant ones
THREE_VARIANT_EFFECTS: dict[str, dict[str, float]] = {"B": {"explorer": 0.08}, "C": {"steady": 0.06, "dormant": -0.03}}


@dataclass
class DemoExperiment:
    """The exposures table (with planted outcome columns) and the truth that was planted."""

    exposures: pl.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)


def make_experiment(transactions: pl.DataFrame, truth: pl.DataFrame, start: str = "2024-12-01", days: int = 7,
                    effects: Mapping[str, Mapping[str, float]] | None = None, control: str = "control",
                    split_change: bool = False, ramp_days: int = 2, exposed_share: float = 1.0, window_days: int = 14,
                    seed: int = 0) -> DemoExperiment:
    """Exposures and planted outcomes for the customers of ``truth`` (see the module docstring)."""
    effects = {v: dict(e) for v, e in (effects or DEFAULT_EFFECTS).items()}
    unknown = sorted({a for e in effects.values() for a in e} - set(ARCHETYPES))
    if unknown or control in effects or not effects:
        raise ConfigError(f"demo experiment: effects {effects} must name treatment variants (not the control "
                          f"'{control}') and archetypes among {list(ARCHETYPES)}. Fix: e.g. {DEFAULT_EFFECTS}.")
    if not (0 < exposed_share <= 1) or days < 1 or (split_change and not 0 < ramp_days < days):
        raise ConfigError("demo experiment: exposed_share must be in (0, 1], days >= 1 and 0 < ramp_days < days. "
                          "Fix: e.g. days=7, ramp_days=2, exposed_share=1.0.")
    rng = np.random.default_rng(seed)
    start_d = date.fromisoformat(str(start))
    start_us = int(datetime(start_d.year, start_d.month, start_d.day, tzinfo=timezone.utc).timestamp() * 1_000_000)
    people = truth.select("customer_id", "archetype").sort("customer_id")
    if exposed_share < 1:
        people = people.filter(pl.Series(rng.random(people.height) < exposed_share))
    n = people.height
    arche = people["archetype"].to_numpy()
    day = rng.integers(0, days, n)
    offset = (day * 86_400 + rng.integers(0, 86_400, n)).astype(np.int64) * 1_000_000
    names = [control, *effects]
    ramp = split_change & (day < ramp_days)
    # the split: equal shares, or 90% control during the ramp-up
    u = rng.random(n)
    share_t = np.where(ramp, 0.10, 1 - 1 / len(names)) if split_change else np.full(n, 1 - 1 / len(names))
    treated = u < share_t
    pick = 1 + np.minimum((u / np.maximum(share_t, 1e-12) * (len(names) - 1)).astype(int), len(names) - 2)
    variant_idx = np.where(treated, pick, 0)
    variant = np.array(names, dtype=object)[variant_idx]
    base = np.array([BASELINE[a] for a in arche]) * np.where(ramp, 2.0, 1.0)
    effect = np.zeros(n)
    for i, v in enumerate(names[1:], start=1):
        eff = np.array([effects[v].get(a, 0.0) for a in arche])
        effect = np.where(variant_idx == i, eff, effect)
    converted = (rng.random(n) < np.clip(base + effect, 0, 1)).astype(float)
    aov = (transactions.filter(pl.col("customer_id").is_not_null() & (pl.col("amount") > 0))
           .group_by("customer_id").agg(pl.col("amount").mean().alias("aov")))
    aov = people.join(aov, on="customer_id", how="left")["aov"].fill_null(40.0).to_numpy()
    orders = converted * (1 + rng.poisson(0.3, n))
    revenue = np.round(orders * aov * np.exp(rng.normal(-0.045, 0.3, n)), 2)
    frame = pl.DataFrame({
        "customer_id": people["customer_id"],
        "variant": variant.astype(str),
        "exposure_time": pl.Series(start_us + offset).cast(pl.Datetime("us")).dt.replace_time_zone("UTC"),
        "converted": converted, "revenue": revenue, "orders": orders,
    })
    if split_change:
        frame = frame.with_columns(stratum=pl.Series(np.where(ramp, f"ramp-up (days 1-{ramp_days}, 90/10)",
                                                              f"full traffic (days {ramp_days + 1}-{days})")))
    expected = {a: {v: effects.get(v, {}).get(a, 0.0) for v in effects} for a in ARCHETYPES}
    info = {"start": start_d.isoformat(), "days": days, "window_days": window_days, "control": control,
            "variants": names, "baseline": BASELINE, "effects": effects, "effect_by_archetype": expected,
            "split_change": split_change, "ramp_days": ramp_days if split_change else None,
            "ramp_split": {"control": 0.9, "treatments": 0.1} if split_change else None,
            "ramp_baseline_multiplier": 2.0 if split_change else None, "exposed_share": exposed_share, "seed": seed,
            "customers": n, "note": "outcome columns are planted; effects are absolute conversion differences"}
    return DemoExperiment(exposures=frame.sort("exposure_time", "customer_id"), truth=info)


def write_demo_experiment(data_dir: str | Path, out: str | Path | None = None, seed: int = 0, split_change: bool = False,
                          variants: int = 2, start: str = "2024-12-01", fmt: str = "parquet") -> dict[str, Path]:
    """Read the demo data in ``data_dir``, plant an experiment and write ``exposures`` and ``experiment_truth.json``.

    ``variants`` 2 (control, treatment) or 3 (control, B, C with ``THREE_VARIANT_EFFECTS``).

    >>> write_demo_experiment("data/demo")  # doctest: +SKIP
    {'exposures': PosixPath('data/demo/exposures.parquet'), 'truth': PosixPath('data/demo/experiment_truth.json')}
    """
    src = Path(data_dir)
    tx_p, truth_p = src / "transactions.parquet", src / "truth.parquet"
    if not (tx_p.is_file() and truth_p.is_file()):
        raise ConfigError(f"{src}: the demo data (transactions.parquet, truth.parquet) is not there. Fix: run "
                          f"`segment demo-data --out {src}` first.")
    if variants not in (2, 3):
        raise ConfigError(f"demo experiment: --variants {variants} is not supported. Fix: use 2 or 3.")
    effects: Sequence = DEFAULT_EFFECTS if variants == 2 else THREE_VARIANT_EFFECTS
    exp = make_experiment(pl.read_parquet(tx_p), pl.read_parquet(truth_p), start=start, effects=dict(effects),
                          split_change=split_change, seed=seed)
    dst = Path(out) if out else src
    dst.mkdir(parents=True, exist_ok=True)
    ex_p = dst / f"exposures.{fmt}"
    if fmt == "csv":
        exp.exposures.with_columns(pl.col("exposure_time").dt.strftime("%Y-%m-%dT%H:%M:%SZ")).write_csv(ex_p)
    else:
        exp.exposures.write_parquet(ex_p)
    truth_out = dst / "experiment_truth.json"
    truth_out.write_text(json.dumps(exp.truth, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return {"exposures": ex_p, "truth": truth_out}
