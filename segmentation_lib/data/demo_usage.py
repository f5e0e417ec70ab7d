"""A demo SaaS account base: a product-usage event log with four planted usage archetypes (the truth),
monthly subscription invoices as the transaction log, and firmographics (plan, company size).

Archetypes (share): ``power`` (most days, several long sessions, most features), ``steady``
(a few days a week, one short session, the core features), ``explorer`` (seldom, short sessions,
but tries nearly every feature), ``dormant`` (used the product at first, silent for months since).
Every account is active over the ``days`` before ``end``; numbers are drawn with numpy from one seed.

>>> d = demo_usage(n_accounts=40, seed=1)
>>> sorted(d.truth["archetype"].unique().to_list())
['dormant', 'explorer', 'power', 'steady']
>>> d.events.columns
['customer_id', 'timestamp', 'event', 'session_id']
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

#: event names of the demo product; the first five are its core features
EVENTS = ("login", "view_dashboard", "search", "create_report", "share_report", "export_pdf", "invite_user",
          "api_call", "create_alert", "edit_settings", "upload_data", "comment", "schedule_report",
          "connect_integration", "use_template", "custom_query", "admin_audit", "billing_view", "sso_setup",
          "mobile_open")
KEY_FEATURES = ("export_pdf", "invite_user", "api_call", "connect_integration")
PLAN_PRICE = {"starter": 49.0, "team": 199.0, "enterprise": 999.0}

#: per archetype: share, daily activity chance (early, late), sessions per active day - 1, events per
#: session - 1, the feature pool (first n names of EVENTS or all), plan weights (starter, team, enterprise)
ARCHETYPES = {
    "power": (0.2, (0.85, 0.85), 1.0, 9, 15, (0.1, 0.4, 0.5)),
    "steady": (0.35, (0.4, 0.4), 0.0, 5, 5, (0.3, 0.6, 0.1)),
    "explorer": (0.2, (0.12, 0.12), 0.0, 3, 20, (0.6, 0.35, 0.05)),
    "dormant": (0.25, (0.35, 0.0), 0.0, 4, 5, (0.7, 0.25, 0.05)),
}


@dataclass(frozen=True)
class DemoUsage:
    events: pl.DataFrame
    transactions: pl.DataFrame
    customers: pl.DataFrame
    truth: pl.DataFrame


def demo_usage(n_accounts: int = 2_000, seed: int = 42, days: int = 180, end: str = "2025-01-01",
               dormant_after: int = 60) -> DemoUsage:
    """Generate the SaaS demo (see the module doc); dormant accounts stop after their first ``dormant_after`` days."""
    rng = np.random.default_rng(seed)
    names = list(ARCHETYPES)
    shares = np.array([ARCHETYPES[a][0] for a in names])
    counts = np.floor(shares * n_accounts).astype(int)
    counts[0] += n_accounts - counts.sum()
    code = rng.permutation(np.repeat(np.arange(len(names)), counts))
    ids = np.array([f"acct{i:06d}" for i in range(n_accounts)])
    start = dt.datetime.fromisoformat(end).replace(tzinfo=dt.timezone.utc) - dt.timedelta(days=days)

    # active days: one Bernoulli draw per account and day
    day = np.arange(days)
    p_early = np.array([ARCHETYPES[a][1][0] for a in names])[code]
    p_late = np.array([ARCHETYPES[a][1][1] for a in names])[code]
    p = np.where(day[None, :] < dormant_after, p_early[:, None], p_late[:, None])
    acct, active_day = np.nonzero(rng.random((n_accounts, days)) < p)
    # sessions per active day, events per session
    extra = np.array([ARCHETYPES[a][2] for a in names])[code[acct]]
    n_sess = 1 + rng.poisson(extra)
    s_acct, s_day = np.repeat(acct, n_sess), np.repeat(active_day, n_sess)
    depth = np.array([ARCHETYPES[a][3] for a in names])[code[s_acct]]
    n_ev = 1 + rng.poisson(depth)
    e_sess = np.repeat(np.arange(s_acct.size), n_ev)
    e_acct, e_day = s_acct[e_sess], s_day[e_sess]
    pool = np.array([ARCHETYPES[a][4] for a in names])[code[e_acct]]
    event = np.floor(rng.random(e_acct.size) * pool).astype(int)
    first = np.r_[True, e_sess[1:] != e_sess[:-1]]
    event[first] = 0  # every session starts with a login
    s_start = rng.integers(8 * 3600, 20 * 3600, s_acct.size)  # a session's start second of its day
    rank = np.arange(e_sess.size) - np.repeat(np.cumsum(n_ev) - n_ev, n_ev)  # event number within its session
    seconds = e_day.astype("int64") * 86_400 + s_start[e_sess] + rank * 45
    epoch = int(start.timestamp())
    events = pl.DataFrame({
        "customer_id": ids[e_acct],
        "timestamp": pl.from_epoch(pl.Series(seconds + epoch), time_unit="s").cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC"),
        "event": np.array(EVENTS)[event],
        "session_id": np.char.add("s", e_sess.astype(str)),
    }).sort("customer_id", "timestamp")

    plan_w = np.array([ARCHETYPES[a][5] for a in names])[code]
    plan = np.array(list(PLAN_PRICE))[(rng.random(n_accounts)[:, None] > plan_w.cumsum(1)).sum(1)]
    size = np.array(["1-10", "11-50", "51-200", "201-1000", "1000+"])[
        np.clip(rng.poisson(np.where(plan == "enterprise", 3.0, np.where(plan == "team", 1.5, 0.5))), 0, 4)]
    customers = pl.DataFrame({"customer_id": ids, "plan_tier": plan, "company_size": size})
    months = days // 30
    inv_acct = np.repeat(np.arange(n_accounts), months)
    inv_month = np.tile(np.arange(months), n_accounts)
    transactions = pl.DataFrame({
        "customer_id": ids[inv_acct],
        "timestamp": pl.Series([start + dt.timedelta(days=30 * int(m)) for m in range(months)])
        .gather(inv_month),
        "amount": np.array([PLAN_PRICE[x] for x in plan])[inv_acct],
        "order_id": np.char.add("inv", np.arange(inv_acct.size).astype(str)),
    })
    truth = pl.DataFrame({"customer_id": ids, "archetype": np.array(names)[code]})
    return DemoUsage(events, transactions, customers, truth)


def write_demo_usage(out: str | Path, n_accounts: int = 2_000, seed: int = 42) -> dict[str, Path]:
    """Write the SaaS demo as Parquet files (events, transactions, customers, truth) into ``out``.

    >>> write_demo_usage("data/saas", n_accounts=500)["events"]  # doctest: +SKIP
    PosixPath('data/saas/events.parquet')
    """
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    demo = demo_usage(n_accounts, seed)
    paths = {}
    for name in ("events", "transactions", "customers", "truth"):
        paths[name] = folder / f"{name}.parquet"
        getattr(demo, name).write_parquet(paths[name])
    return paths
