"""Text of the run's index page: the run's title, the data-sufficiency banner, the links to the exported lists.

>>> run_title({"run": {"name": "demo"}, "data": {"path": "/shop/exports/orders_2024.csv"}})
'orders_2024'
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

#: data-sufficiency caution (its words before the colon, as predict/sufficiency.py writes them) -> figures to read with care
CAUTION_FIGURES: dict[str, str] = {
    "Few purchasers": "segment sizes and shares, the validation scores (silhouette, stability, predictive power) and "
                      "every predicted value",
    "Short history": "cohort retention, the holdout checks (predictive power, migration, calibration), P(alive) and "
                     "churn risk",
    "No recent orders": "recency scores and the RFM segments built on them, P(alive), churn risk and expected purchases",
    "Few customers with 3+ orders": "frequency scores, expected purchases and CLV",
    "Few repeat buyers": "frequency scores, retention, expected purchases and CLV",
}


def run_title(cfg: Mapping[str, Any]) -> str:
    """The name a run is shown under: ``run.name``, except that the default ``demo`` on data that is not the demo
    data gives way to the data file's name (a folder's name, or a glob's folder).

    >>> run_title({"run": {"name": "weekly"}, "data": {"path": "x.csv"}})
    'weekly'
    >>> run_title({"run": {"name": "demo"}, "data": {"path": "/repo/data/demo/transactions.parquet"}})
    'demo'
    >>> run_title({"run": {"name": None}, "data": {"path": "/data/shop/*.parquet"}})
    'shop'
    """
    name = str((cfg.get("run") or {}).get("name") or "").strip()
    raw = str((cfg.get("data") or {}).get("path") or "").strip()
    if not raw:
        return name or "run"
    p = Path(raw)
    if any(ch in p.name for ch in "*?["):
        p = p.parent
    derived = p.stem if p.suffix else p.name
    if name and (name != "demo" or "demo" in p.parts):
        return name
    return derived or name or "run"


def caution_headline(caution: str) -> str:
    """The words of a caution before its first colon.

    >>> caution_headline("Short history: the log covers 90 days")
    'Short history'
    """
    return caution.split(":", 1)[0].strip()


def sufficiency_banner(cautions: Sequence[str]) -> list[dict[str, str]]:
    """One item per data-sufficiency caution: its headline, the finding and which figures to treat with care.

    >>> sufficiency_banner(["No recent orders: nobody ordered in the last 30 days. Fix: check as_of."])[0]["figures"][:14]
    'recency scores'
    >>> sufficiency_banner([])
    []
    """
    out = []
    for c in cautions:
        head = caution_headline(c)
        finding = c.split(":", 1)[1].split(" Fix:", 1)[0].strip() if ":" in c else c
        out.append({"headline": head, "finding": finding,
                    "figures": CAUTION_FIGURES.get(head, "the figures that depend on it")})
    return out


def _key(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "", text.lower())


def export_links(names: Iterable[str], files: Iterable[str]) -> dict[str, str]:
    """Segment name -> the first of ``files`` (paths relative to the run folder, e.g. ``exports/behavioural/at_risk.csv``)
    whose file name is the segment's name, ignoring case and punctuation; segments without a file are left out.

    >>> export_links(["At risk", "Loyal"], ["exports/behavioural/at_risk.csv", "exports/rfm/champions.csv"])
    {'At risk': 'exports/behavioural/at_risk.csv'}
    """
    keys: dict[str, str] = {}
    for f in files:
        if str(f).endswith(".csv"):
            keys.setdefault(_key(Path(f).stem), str(f))
    return {str(n): keys[_key(str(n))] for n in names if _key(str(n)) in keys}
