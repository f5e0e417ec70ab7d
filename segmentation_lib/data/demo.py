"""Demo data with a known truth: a realistic transaction log with planted customer archetypes.

The generator is fully vectorised (numpy + polars, no Python loop per customer or transaction)
and deterministic for a seed. Customers are generated in fixed-size chunks, each with its own
child random stream, so memory stays bounded and the output never depends on the machine.

Six archetypes are planted (``ARCHETYPES``):

- ``power``: frequent, recent, high value per order, long tenure;
- ``steady``: regular moderate purchases, recent;
- ``explorer``: many visits, low spend per order, recent;
- ``dormant``: used to buy moderately, inactive for 7-14 months;
- ``new``: first purchase in the last ~60 days, 1-3 orders;
- ``churned``: 1-3 purchases, all more than a year before the end.

They are separated in the behavioural features the kit clusters on (recency, orders, spend,
order value, days between purchases, tenure), so a k-means on log-scaled features recovers them.

>>> demo = make_transactions(n_customers=1_000, seed=1)
>>> demo.transactions.columns[:3]
['customer_id', 'timestamp', 'amount']
>>> sorted(demo.truth["archetype"].unique().to_list())
['churned', 'dormant', 'explorer', 'new', 'power', 'steady']
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import polars as pl

from segmentation_lib.errors import ConfigError


#: planted archetypes, in a fixed order (their integer code is the position here)
ARCHETYPES: tuple[str, ...] = ("power", "steady", "explorer", "dormant", "new", "churned")

#: default share of each archetype among customers
DEFAULT_SHARES: dict[str, float] = {
    "power": 0.08,
    "steady": 0.25,
    "explorer": 0.17,
    "dormant": 0.20,
    "new": 0.15,
    "churned": 0.15,
}

#: customers generated per chunk, each chunk with its own random stream (bounds memory; part of
#: the generator's definition: changing it changes the data for a given seed)
CHUNK_CUSTOMERS = 200_000

_US_PER_DAY = 86_400_000_000
_US_PER_S = 1_000_000

#: schema of ``DemoData.transactions`` (the canonical transaction frame, all columns)
TRANSACTION_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "timestamp": pl.Datetime("us", "UTC"),
    "amount": pl.Float64(),
    "order_id": pl.String(),
    "product_id": pl.String(),
    "quantity": pl.Float64(),
    "unit_price": pl.Float64(),
}


@dataclass(frozen=True)
class _Behaviour:
    """How one archetype buys. Days are relative to ``as_of`` (= end + 1 day)."""

    orders_median: float  # lognormal median of the number of orders (ignored when orders_p is set)
    orders_sigma: float
    orders_min: int
    orders_p: tuple[float, ...] | None  # P(1 order), P(2), ... for few-order archetypes
    aov_median: float  # median order value of a customer
    aov_sigma: float  # spread of the customer-level order value (lognormal sigma)
    tenure: tuple[float, float]  # first purchase, days before as_of: fraction of the span (lo, hi)
    # last purchase, days before as_of: ("exp", mean, cap) days; ("frac", lo, hi) of the span;
    # ("new", _, _): first purchase in the last 60 days; ("churn", lo, hi): active for lo..hi of the span
    recency: tuple[str, float, float]


#: behaviour of each archetype (tuned so k-means on log-scaled features recovers them)
BEHAVIOUR: dict[str, _Behaviour] = {
    "power": _Behaviour(26, 0.45, 12, None, 190.0, 0.30, (0.65, 1.0), ("exp", 5, 21)),
    "steady": _Behaviour(9, 0.25, 5, None, 60.0, 0.30, (0.45, 1.0), ("exp", 8, 35)),
    "explorer": _Behaviour(16, 0.35, 8, None, 11.0, 0.30, (0.35, 0.95), ("exp", 6, 30)),
    "dormant": _Behaviour(8, 0.25, 4, None, 70.0, 0.30, (0.80, 1.0), ("frac", 0.30, 0.50)),
    "new": _Behaviour(0, 0, 1, (0.45, 0.35, 0.20), 45.0, 0.35, (0.0, 0.0), ("new", 1, 60)),
    "churned": _Behaviour(0, 0, 1, (0.20, 0.45, 0.35), 32.0, 0.35, (0.80, 1.0), ("churn", 0.02, 0.15)),
}

#: weekday weights (Monday first): business purchases, quieter weekends
_WEEKDAY_W = np.array([1.10, 1.15, 1.15, 1.10, 1.00, 0.60, 0.50])
#: hour-of-day probabilities (UTC), peaking in office hours
_HOUR_W = np.array(
    [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 11, 11, 10, 10, 11, 10, 9, 7, 5, 4, 3, 2, 2, 1], dtype=float
)
_HOUR_P = _HOUR_W / _HOUR_W.sum()

#: attributes table: categories and per-archetype probabilities (rows follow ARCHETYPES)
PLAN_TIERS = ("free", "standard", "premium", "enterprise")
_PLAN_P = np.array(
    [
        [0.02, 0.18, 0.45, 0.35],  # power
        [0.10, 0.55, 0.28, 0.07],  # steady
        [0.45, 0.40, 0.12, 0.03],  # explorer
        [0.20, 0.55, 0.20, 0.05],  # dormant
        [0.55, 0.35, 0.08, 0.02],  # new
        [0.60, 0.32, 0.07, 0.01],  # churned
    ]
)
REGIONS = ("North America", "Europe", "Asia Pacific", "Latin America", "Middle East & Africa")
_REGION_P = np.array(
    [
        [0.50, 0.30, 0.12, 0.04, 0.04],
        [0.38, 0.34, 0.16, 0.07, 0.05],
        [0.30, 0.28, 0.24, 0.11, 0.07],
        [0.36, 0.33, 0.17, 0.08, 0.06],
        [0.30, 0.30, 0.22, 0.11, 0.07],
        [0.33, 0.30, 0.18, 0.11, 0.08],
    ]
)
#: median employee count per archetype (lognormal, sigma 1.0)
_COMPANY_MEDIAN = np.array([400.0, 80.0, 15.0, 60.0, 20.0, 12.0])


#: optional feedback columns (``make_transactions(feedback=True)``), per archetype (rows follow ARCHETYPES):
#: share answering the survey, P(detractor 0-6, passive 7-8, promoter 9-10), mean support tickets (Poisson)
#: and P(positive, neutral, negative) sentiment among those who answered
_FEEDBACK_RESPONSE = np.array([0.60, 0.45, 0.35, 0.20, 0.30, 0.15])
_NPS_P = np.array(
    [
        [0.05, 0.20, 0.75],  # power: NPS +70
        [0.15, 0.35, 0.50],  # steady: +35
        [0.25, 0.40, 0.35],  # explorer: +10
        [0.45, 0.35, 0.20],  # dormant: -25
        [0.20, 0.40, 0.40],  # new: +20
        [0.60, 0.25, 0.15],  # churned: -45
    ]
)
#: the NPS planted in each archetype (points), what a large enough sample recovers
PLANTED_NPS: dict[str, float] = {a: float(round(100 * (p[2] - p[0]), 6)) for a, p in zip(ARCHETYPES, _NPS_P)}
_TICKETS_MEAN = np.array([1.5, 0.8, 1.2, 0.4, 0.6, 0.9])
SENTIMENTS = ("positive", "neutral", "negative")
_SENTIMENT_P = np.array(
    [
        [0.70, 0.22, 0.08],
        [0.50, 0.35, 0.15],
        [0.35, 0.45, 0.20],
        [0.20, 0.40, 0.40],
        [0.40, 0.40, 0.20],
        [0.10, 0.30, 0.60],
    ]
)


def _feedback_columns(code: np.ndarray, seed: int) -> dict[str, pl.Series]:
    """``nps_score`` (null = no answer), ``ticket_count`` and ``sentiment`` (null = no answer) correlated with
    the archetype, from their own random stream (the other demo outputs do not change)."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 18]))
    n = code.shape[0]
    answered = rng.random(n) < _FEEDBACK_RESPONSE[code]
    cat = (rng.random(n)[:, None] > np.cumsum(_NPS_P, axis=1)[code]).sum(axis=1).clip(0, 2)
    low, width = np.array([0, 7, 9])[cat], np.array([7, 2, 2])[cat]
    score = low + np.floor(rng.random(n) * width).astype(np.int64)
    tickets = rng.poisson(_TICKETS_MEAN[code])
    mood = (rng.random(n)[:, None] > np.cumsum(_SENTIMENT_P, axis=1)[code]).sum(axis=1).clip(0, 2)
    return {
        "nps_score": pl.Series("nps_score", np.where(answered, score, -1), dtype=pl.Int64).replace(-1, None),
        "ticket_count": pl.Series("ticket_count", tickets, dtype=pl.Int64),
        "sentiment": pl.Series("sentiment", np.where(answered, np.array(SENTIMENTS)[mood], ""),
                               dtype=pl.String).replace("", None),
    }


@dataclass
class DemoData:
    """Generated demo data: the transaction log, customer attributes and the planted truth.

    >>> d = make_transactions(n_customers=200, seed=3)
    >>> d.truth.height
    200
    """

    transactions: pl.DataFrame
    customers: pl.DataFrame
    truth: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def _to_date(value: str | date | datetime, name: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(
            f"demo data: parameter '{name}' = {value!r} is not a date. "
            "Fix: give it as 'YYYY-MM-DD', for example start='2023-01-01'."
        ) from None


def _check_params(n_customers: int, seed: int, rates: Mapping[str, float], start: date, end: date) -> None:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(
            f"demo data: seed = {seed!r} must be a non-negative whole number. Fix: pass for example seed=42."
        )
    if not isinstance(n_customers, (int, np.integer)) or isinstance(n_customers, bool) or n_customers < 1:
        raise ConfigError(
            f"demo data: n_customers = {n_customers!r} must be a positive whole number. "
            "Fix: pass for example n_customers=20000."
        )
    for name, value in rates.items():
        if not (0.0 <= float(value) < 0.5):
            raise ConfigError(
                f"demo data: {name} = {value!r} is outside [0, 0.5). "
                f"Fix: give {name} as a fraction of rows, for example 0.01 for one percent."
            )
    if (end - start).days < 120:
        raise ConfigError(
            f"demo data: the period {start} .. {end} is shorter than 120 days, too short to plant "
            "dormant, new and churned customers. Fix: choose start and end at least 120 days apart "
            "(the default is two years, 2023-01-01 .. 2024-12-31)."
        )


def _resolve_shares(shares: Mapping[str, float] | None) -> np.ndarray:
    if shares is None:
        shares = DEFAULT_SHARES
    unknown = sorted(set(shares) - set(ARCHETYPES))
    if unknown:
        raise ConfigError(
            f"demo data: unknown archetype(s) {unknown} in archetype_shares. "
            f"Fix: use only {list(ARCHETYPES)}."
        )
    p = np.array([float(shares.get(a, 0.0)) for a in ARCHETYPES])
    if (p < 0).any() or p.sum() <= 0:
        raise ConfigError(
            f"demo data: archetype_shares {dict(shares)} must be non-negative and not all zero. "
            f"Fix: give shares such as {DEFAULT_SHARES}."
        )
    return p / p.sum()


def _allocate(n: int, p: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Archetype codes for ``n`` customers with exact proportions (largest remainder), shuffled."""
    raw = p * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - counts.sum()
    if rest:
        order = np.argsort(-(raw - counts), kind="stable")
        counts[order[:rest]] += 1
    codes = np.repeat(np.arange(len(p), dtype=np.int8), counts)
    return rng.permutation(codes)


def _catalog(rng: np.random.Generator, n_products: int = 2_000) -> tuple[np.ndarray, np.ndarray]:
    """Product catalogue: prices sorted ascending and the product number of each price."""
    prices = np.round(np.exp(rng.normal(np.log(15.0), 1.15, n_products)), 2)
    prices = np.sort(np.clip(prices, 0.5, 2_500.0))
    numbers = rng.permutation(n_products) + 1
    return prices, numbers


def _day_weights(start: date, n_days: int) -> np.ndarray:
    """Relative purchase intensity of each day: weekly and yearly seasonality."""
    days = np.arange(n_days)
    dow = (start.weekday() + days) % 7
    doy = (start.timetuple().tm_yday - 1 + days) % 365.25
    yearly = 1.0 + 0.30 * np.cos(2 * np.pi * (doy - 335.0) / 365.25)  # peak around early December
    return _WEEKDAY_W[dow] * yearly


def _n_orders(code: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Number of orders of each customer: lognormal per archetype (heavy tail overall), or 1-3."""
    n = np.empty(code.shape[0], dtype=np.int64)
    for k, name in enumerate(ARCHETYPES):  # loop over the 6 archetypes, not over customers
        m = code == k
        cnt = int(m.sum())
        if not cnt:
            continue
        b = BEHAVIOUR[name]
        if b.orders_p is not None:
            pp = np.asarray(b.orders_p) / sum(b.orders_p)
            n[m] = rng.choice(np.arange(1, len(pp) + 1), size=cnt, p=pp)
        else:
            draw = np.exp(rng.normal(np.log(b.orders_median), b.orders_sigma, cnt))
            n[m] = np.maximum(np.rint(draw).astype(np.int64), b.orders_min)
    return n


def _windows(code: np.ndarray, span: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """First and last purchase day (index from start, 0..span-1) of each customer."""
    m_cnt = code.shape[0]
    rec = np.ones(m_cnt, dtype=np.int64)  # days from last purchase to as_of (>= 1)
    ten = np.ones(m_cnt, dtype=np.int64)  # days from first purchase to as_of (>= rec)
    new_window = min(60, span // 6)
    for k, name in enumerate(ARCHETYPES):
        m = code == k
        cnt = int(m.sum())
        if not cnt:
            continue
        b = BEHAVIOUR[name]
        kind, a, c = b.recency
        if kind == "new":
            t = rng.integers(1, new_window + 1, cnt)
            r = 1 + np.floor(rng.random(cnt) * np.minimum(t, 21)).astype(np.int64)
        elif kind == "churn":
            t = np.rint(span * rng.uniform(*b.tenure, cnt)).astype(np.int64)
            active = np.rint(span * rng.uniform(a, c, cnt)).astype(np.int64)
            r = t - active
        else:
            t = np.rint(span * rng.uniform(*b.tenure, cnt)).astype(np.int64)
            if kind == "exp":
                r = 1 + np.minimum(np.floor(rng.exponential(a, cnt)), c).astype(np.int64)
            else:
                r = np.rint(span * rng.uniform(a, c, cnt)).astype(np.int64)
        ten[m] = t
        rec[m] = r
    ten = np.clip(ten, 1, span)
    rec = np.clip(rec, 1, ten)
    return span - ten, span - rec


def _seasonal_days(lo: np.ndarray, hi: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One day in [lo, hi] per element, drawn with probability proportional to ``w`` (rejection)."""
    out = np.empty(lo.shape[0], dtype=np.int64)
    todo = np.arange(lo.shape[0])
    wmax = w.max()
    for _ in range(40):
        if todo.size == 0:
            break
        l, h = lo[todo], hi[todo]
        d = l + np.floor(rng.random(todo.size) * (h - l + 1)).astype(np.int64)
        ok = rng.random(todo.size) * wmax <= w[d]
        out[todo[ok]] = d[ok]
        todo = todo[~ok]
    if todo.size:
        out[todo] = lo[todo]
    return out


def _distinct_in_group(idx: np.ndarray, group: np.ndarray, n_values: int) -> np.ndarray:
    """Make ``idx`` distinct within each group (``group`` sorted ascending), moving collisions up.

    Sort by (group, idx); within a group force a strictly increasing sequence with a running
    maximum of ``idx - rank``; values past the end wrap to the start of the range.

    >>> _distinct_in_group(np.array([4, 4, 2, 4]), np.array([0, 0, 1, 1]), 10).tolist()
    [4, 5, 2, 4]
    """
    if idx.size == 0:
        return idx
    order = np.lexsort((idx, group))
    g, v = group[order], idx[order].astype(np.int64)
    starts = np.r_[True, g[1:] != g[:-1]]
    first = np.flatnonzero(starts)
    rank = np.arange(v.size) - np.repeat(first, np.diff(np.r_[first, v.size]))
    big = np.int64(4 * (n_values + v.size + 1))
    t = v - rank + g.astype(np.int64) * big
    fixed = np.maximum.accumulate(t) - g.astype(np.int64) * big + rank
    out = np.empty_like(v)
    out[order] = fixed % n_values
    return out


def _chunk(
    code: np.ndarray,
    chunk: int,
    n_chunks: int,
    first_customer: int,
    span: int,
    start_us: int,
    end_us: int,
    day_w: np.ndarray,
    prices: np.ndarray,
    return_rate: float,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, np.ndarray]:
    """Purchase and return rows of one chunk of customers, with integer ids (formatted later).

    Returns the rows (columns ``cust``, ``ts`` (µs), ``amount``, ``order``, ``product``,
    ``quantity``, ``unit_price``) and the first purchase day of each customer of the chunk.
    Order numbers are ``rank by time within the chunk * n_chunks + chunk``: unique, and roughly
    chronological over the whole log, like invoice numbers.
    """
    n_cust = code.shape[0]
    n_ord = _n_orders(code, rng)
    first_day, last_day = _windows(code, span, rng)

    # --- orders: first and last on the window ends, the others seasonal in between ----------
    total = int(n_ord.sum())
    cust = np.repeat(np.arange(n_cust, dtype=np.int64), n_ord)
    starts = np.cumsum(n_ord) - n_ord
    pos = np.arange(total) - np.repeat(starts, n_ord)
    lo, hi = first_day[cust], last_day[cust]
    day = _seasonal_days(lo, hi, day_w, rng)
    day = np.where(pos == 0, lo, np.where(pos == np.repeat(n_ord, n_ord) - 1, hi, day))
    sec = rng.choice(24, size=total, p=_HOUR_P) * 3600 + rng.integers(0, 3600, total)
    ts = start_us + day * _US_PER_DAY + sec * _US_PER_S
    # order value: the customer's typical value times an order-level factor
    aov_med = np.array([BEHAVIOUR[a].aov_median for a in ARCHETYPES])
    aov_sig = np.array([BEHAVIOUR[a].aov_sigma for a in ARCHETYPES])
    cust_aov = np.exp(rng.normal(np.log(aov_med[code]), aov_sig[code]))
    value = cust_aov[cust] * np.exp(rng.normal(-0.08, 0.4, total))
    by_time = np.argsort(ts, kind="stable")
    cust, ts, value = cust[by_time], ts[by_time], value[by_time]
    order = np.arange(total, dtype=np.int64) * n_chunks + chunk

    # --- lines: 1 + Poisson products per order, distinct within the order --------------------
    n_lines = 1 + rng.poisson(0.05, total)
    n_rows = int(n_lines.sum())
    o = np.repeat(np.arange(total), n_lines)
    line_value = value[o] / n_lines[o] * np.exp(rng.normal(0.0, 0.2, n_rows))
    qty = 1 + rng.poisson(0.8, n_rows)
    idx = np.searchsorted(prices, line_value / qty) + rng.integers(-3, 3, n_rows)
    idx = np.clip(idx, 0, prices.shape[0] - 1)
    multi = np.flatnonzero(n_lines[o] > 1)  # only multi-line orders can repeat a product
    idx[multi] = _distinct_in_group(idx[multi], o[multi], prices.shape[0])
    price = prices[idx]
    amount = np.round(qty * price, 2)
    row_cust, row_ts, row_order = cust[o], ts[o], order[o]

    # --- returns: a later negative row on an earlier order line of the same customer --------
    if return_rate > 0:
        r = np.flatnonzero(rng.random(n_rows) < return_rate)
        r_qty = 1 + np.floor(rng.random(r.size) * qty[r]).astype(np.int64)
        r_ts = row_ts[r] + rng.integers(3_600, 14 * 86_400, r.size) * _US_PER_S
        r_ts = np.minimum(r_ts, end_us - _US_PER_S)
        row_cust = np.concatenate([row_cust, row_cust[r]])
        row_ts = np.concatenate([row_ts, r_ts])
        row_order = np.concatenate([row_order, row_order[r]])
        idx = np.concatenate([idx, idx[r]])
        price = np.concatenate([price, price[r]])
        qty = np.concatenate([qty, -r_qty])
        amount = np.concatenate([amount, np.round(-r_qty * price[r], 2)])

    frame = pl.DataFrame(
        {
            "cust": row_cust + first_customer,
            "ts": row_ts,
            "amount": amount,
            "order": row_order,
            "product": idx.astype(np.int32),
            "quantity": qty.astype(np.float64),
            "unit_price": price,
        }
    )
    return frame, first_day


def _id_series(prefix: str, numbers: np.ndarray, width: int) -> pl.Series:
    """Ids like ``C0000123`` from integers (vectorised)."""
    return (
        pl.DataFrame({"n": numbers})
        .select(pl.lit(prefix) + pl.col("n").cast(pl.String).str.zfill(width))
        .to_series()
    )


def _format(raw: pl.DataFrame, customer_ids: pl.Series, product_ids: pl.Series, order_width: int) -> pl.DataFrame:
    """Canonical transaction frame from the integer-coded rows (``cust`` < 0 = no customer id,
    ``order`` < 0 = guest order ``G...``)."""
    order_no = pl.col("order").abs() - pl.when(pl.col("order") < 0).then(1).otherwise(0)
    return raw.lazy().select(
        customer_id=pl.lit(customer_ids).gather(pl.when(pl.col("cust") >= 0).then(pl.col("cust"))),
        timestamp=pl.col("ts").cast(pl.Datetime("us", "UTC")),
        amount=pl.col("amount"),
        order_id=pl.when(pl.col("order") < 0).then(pl.lit("G")).otherwise(pl.lit("O"))
        + order_no.cast(pl.String).str.zfill(order_width),
        product_id=pl.lit(product_ids).gather(pl.col("product")),
        quantity=pl.col("quantity"),
        unit_price=pl.col("unit_price"),
    ).collect()


def _customers_table(code: np.ndarray, ids: pl.Series, first_day: np.ndarray, start: date, rng: np.random.Generator) -> pl.DataFrame:
    """Customer attributes correlated with the archetype; signup on or before the first purchase."""
    n = code.shape[0]
    u = rng.random(n)  # categorical draws by inverse CDF, vectorised over customers
    plan = (u[:, None] > np.cumsum(_PLAN_P, axis=1)[code]).sum(axis=1)
    u = rng.random(n)
    region = (u[:, None] > np.cumsum(_REGION_P, axis=1)[code]).sum(axis=1)
    size = np.maximum(1, np.rint(np.exp(rng.normal(np.log(_COMPANY_MEDIAN[code]), 1.0)))).astype(np.int64)
    lead_days = np.floor(rng.exponential(45.0, n)).astype(np.int64)
    signup = np.datetime64(start, "D") + (first_day - lead_days)
    return pl.DataFrame(
        {
            "customer_id": ids,
            "plan_tier": np.array(PLAN_TIERS)[np.minimum(plan, len(PLAN_TIERS) - 1)],
            "company_size": size,
            "region": np.array(REGIONS)[np.minimum(region, len(REGIONS) - 1)],
            "signup_date": signup,
        }
    ).with_columns(pl.col("signup_date").cast(pl.Date))


def make_transactions(
    n_customers: int = 20_000,
    seed: int = 42,
    start: str | date = "2023-01-01",
    end: str | date = "2024-12-31",
    return_rate: float = 0.03,
    duplicate_rate: float = 0.002,
    null_id_rate: float = 0.001,
    archetype_shares: Mapping[str, float] | None = None,
    categories: bool = False,
    discounts: bool = False,
    feedback: bool = False,
) -> DemoData:
    """Generate a transaction log with planted archetypes, its customer table and the truth.

    ``categories`` adds a ``category`` column (one of :data:`DEMO_CATEGORIES` per product) and
    ``discounts`` a ``discount`` column (money off per purchase line, 0 at full price; the share of
    lines on discount planted per archetype, :data:`DISCOUNT_P`); both default to off, which leaves
    the log exactly as without them (their draws use their own random streams).

    Rates are fractions of the purchase rows: each purchase row gets a later negative row with
    probability ``return_rate`` (same customer, order, product and unit price; part or all of the
    quantity, 1 hour to 14 days later); ``round(duplicate_rate * purchase rows)`` purchase rows are
    appended again as exact duplicates; ``round(null_id_rate * purchase rows)`` purchase rows are
    appended as guest rows with a null ``customer_id`` and their own order id ``G...``. Every
    customer in ``truth`` and ``customers`` has at least one purchase. Timestamps lie in
    [start 00:00, end 23:59:59] UTC; rows are sorted by time. ``as_of`` for features is end + 1 day.
    ``feedback=True`` adds survey and support columns to ``customers`` (``nps_score`` with missing answers,
    ``ticket_count``, ``sentiment``) correlated with the archetype (:data:`PLANTED_NPS`); off, nothing changes.

    >>> d = make_transactions(n_customers=500, seed=7)
    >>> d.transactions.schema["timestamp"]
    Datetime(time_unit='us', time_zone='UTC')
    >>> d.truth.columns
    ['customer_id', 'archetype']
    """
    start_d, end_d = _to_date(start, "start"), _to_date(end, "end")
    rates = {"return_rate": return_rate, "duplicate_rate": duplicate_rate, "null_id_rate": null_id_rate}
    _check_params(n_customers, seed, rates, start_d, end_d)
    p = _resolve_shares(archetype_shares)
    n_customers = int(n_customers)

    span = (end_d - start_d).days + 1  # days in the period; as_of = end + 1 day = day `span`
    start_us = int(datetime(start_d.year, start_d.month, start_d.day, tzinfo=timezone.utc).timestamp()) * _US_PER_S
    end_us = start_us + span * _US_PER_DAY  # exclusive
    n_chunks = math.ceil(n_customers / CHUNK_CUSTOMERS)

    root = np.random.SeedSequence(int(seed))
    main_ss, noise_ss, *chunk_ss = root.spawn(2 + n_chunks)
    main = np.random.default_rng(main_ss)
    codes = _allocate(n_customers, p, main)
    prices, product_numbers = _catalog(main)
    day_w = _day_weights(start_d, span)

    frames: list[pl.DataFrame] = []
    first_days: list[np.ndarray] = []
    for i, ss in enumerate(chunk_ss):  # a handful of fixed-size chunks, not customers
        lo, hi = i * CHUNK_CUSTOMERS, min(n_customers, (i + 1) * CHUNK_CUSTOMERS)
        frame, first_day = _chunk(
            codes[lo:hi], i, n_chunks, lo, span, start_us, end_us, day_w, prices,
            float(return_rate), np.random.default_rng(ss),
        )
        frames.append(frame)
        first_days.append(first_day)
    raw = pl.concat(frames)
    del frames

    # --- noise: exact duplicates and guest rows without a customer id ----------------------
    noise = np.random.default_rng(noise_ss)
    purchases = np.flatnonzero(raw["amount"].to_numpy() > 0)
    n_dup = int(round(duplicate_rate * purchases.size))
    n_null = int(round(null_id_rate * purchases.size))
    dup_rows = np.sort(noise.choice(purchases, n_dup, replace=False)) if n_dup else np.empty(0, np.int64)
    null_rows = np.sort(noise.choice(purchases, n_null, replace=False)) if n_null else np.empty(0, np.int64)
    guests = raw[null_rows].with_columns(
        cust=pl.lit(-1, dtype=pl.Int64), order=-pl.int_range(1, n_null + 1, dtype=pl.Int64)
    )
    raw = pl.concat([raw, raw[dup_rows], guests]).sort("ts", "order", maintain_order=True)

    customer_ids = _id_series("C", np.arange(1, n_customers + 1), max(7, len(str(n_customers))))
    product_ids = _id_series("P", product_numbers, 5)
    order_width = max(9, len(str(int(raw["order"].max() or 0))))
    tx = _format(raw, customer_ids, product_ids, order_width)
    del raw

    # --- customers and truth ---------------------------------------------------------------
    customers = _customers_table(codes, customer_ids, np.concatenate(first_days), start_d, noise)
    truth = pl.DataFrame({"customer_id": customer_ids, "archetype": np.array(ARCHETYPES)[codes]})
    if categories or discounts:  # purchase-mix columns (features/purchase_mix.py), off by default
        tx = with_demo_mix(tx, truth, int(seed), categories, discounts)
    params = {
        "n_customers": n_customers,
        "seed": int(seed),
        "start": start_d.isoformat(),
        "end": end_d.isoformat(),
        "as_of": (end_d + timedelta(days=1)).isoformat(),
        "return_rate": float(return_rate),
        "duplicate_rate": float(duplicate_rate),
        "null_id_rate": float(null_id_rate),
        "archetype_shares": {a: float(x) for a, x in zip(ARCHETYPES, p)},
    }
    params.update({k: True for k, on in (("categories", categories), ("discounts", discounts)) if on})
    if feedback:
        customers = customers.with_columns(**_feedback_columns(codes, seed))
        params["feedback"] = True
    return DemoData(transactions=tx, customers=customers, truth=truth, params=params)


# --------------------------------------------------------------------------- purchase mix (optional columns)

#: demo product categories and the share of the catalogue in each
DEMO_CATEGORIES: dict[str, float] = {"Home & Garden": 0.25, "Clothing": 0.2, "Electronics": 0.15, "Books": 0.15,
                                     "Toys": 0.1, "Beauty": 0.1, "Sports": 0.05}

#: planted probability that a purchase line of each archetype is bought on discount
DISCOUNT_P: dict[str, float] = {"power": 0.05, "steady": 0.15, "explorer": 0.5, "dormant": 0.2, "new": 0.3,
                                "churned": 0.25}


def with_demo_mix(tx: pl.DataFrame, truth: pl.DataFrame, seed: int, categories: bool = True,
                  discounts: bool = True) -> pl.DataFrame:
    """The demo log with ``category`` (per product) and/or ``discount`` (per purchase line: 10%, 20%
    or 30% of the list price off with the archetype's :data:`DISCOUNT_P`; guests as ``new``; returns
    0) columns appended. Draws come from streams of their own (``SeedSequence([seed, 18, k])``), and
    a line's discount is drawn per (order, product), so the log's exact duplicates stay exact.

    >>> d = make_transactions(n_customers=200, seed=3, categories=True)
    >>> d.transactions["category"].is_in(list(DEMO_CATEGORIES)).all()
    True
    """
    out = tx
    if categories:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 18, 1]))
        products = tx["product_id"].drop_nulls().unique().sort()
        names = np.array(list(DEMO_CATEGORIES))
        p = np.array(list(DEMO_CATEGORIES.values()))
        table = pl.DataFrame({"product_id": products, "category": names[rng.choice(len(names), products.len(), p=p / p.sum())]})
        out = out.join(table, on="product_id", how="left", maintain_order="left")
    if discounts:
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 18, 2]))
        keys = tx.select("order_id", "product_id").unique(maintain_order=True)
        keys = keys.with_columns(pl.Series("_u", rng.random(keys.height)), pl.Series("_r", rng.choice([0.1, 0.2, 0.3], keys.height)))
        prob = truth.select("customer_id", pl.col("archetype").replace_strict(DISCOUNT_P, return_dtype=pl.Float64).alias("_p"))
        amount = pl.col("amount")
        out = (out.join(keys, on=["order_id", "product_id"], how="left", maintain_order="left")
               .join(prob, on="customer_id", how="left", maintain_order="left")
               .with_columns(pl.when((amount > 0) & (pl.col("_u") < pl.col("_p").fill_null(DISCOUNT_P["new"])))
                             .then((amount * pl.col("_r") / (1 - pl.col("_r"))).round(2)).otherwise(0.0).alias("discount"))
               .drop("_u", "_r", "_p"))
    return out


def write_demo_data(
    out_dir: str | Path,
    n_customers: int = 20_000,
    seed: int = 42,
    fmt: str = "parquet",
    **kwargs: Any,
) -> dict[str, Path]:
    """Generate demo data and write ``transactions``, ``customers``, ``truth`` and ``manifest.json``.

    ``fmt`` is ``"parquet"`` (default) or ``"csv"``. Extra keyword arguments go to
    :func:`make_transactions`. Returns the written paths by name.

    >>> paths = write_demo_data("/tmp/demo", n_customers=300, seed=1)  # doctest: +SKIP
    >>> sorted(paths)                                                  # doctest: +SKIP
    ['customers', 'manifest', 'transactions', 'truth']
    """
    if fmt not in ("parquet", "csv"):
        raise ConfigError(f"demo data: fmt={fmt!r} is not supported. Fix: use fmt='parquet' or fmt='csv'.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    demo = make_transactions(n_customers=n_customers, seed=seed, **kwargs)
    paths: dict[str, Path] = {}
    for name in ("transactions", "customers", "truth"):
        frame: pl.DataFrame = getattr(demo, name)
        path = out / f"{name}.{fmt}"
        tmp = path.with_name(f".{path.name}.tmp")
        if fmt == "parquet":
            frame.write_parquet(tmp)
        else:
            frame.write_csv(tmp)
        tmp.replace(path)
        paths[name] = path
    manifest = out / "manifest.json"
    info = dict(demo.params)
    info["generator"] = "segmentation_lib.demo.make_transactions"
    info["format"] = fmt
    info["rows"] = {n: getattr(demo, n).height for n in ("transactions", "customers", "truth")}
    manifest.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    paths["manifest"] = manifest
    return paths


# --------------------------------------------------------------------------- snapshots over time


#: archetypes that keep buying between two snapshots (the others make no further purchase)
CONTINUING: tuple[str, ...] = ("power", "steady", "explorer")


@dataclass
class DemoSnapshots:
    """Two snapshots of one customer base with planted migrations between them.

    ``first`` is exactly ``make_transactions(n_customers, seed, end=end)``; ``second`` holds the same
    log plus the purchases of the ``gap_days`` after it and the customers who joined meanwhile.
    ``movements`` has one row per customer of either snapshot: ``customer_id``, ``archetype_before``
    (null: joined after the first snapshot), ``archetype_after``, ``planted`` (True for the customers
    deliberately moved from ``drift_from`` to ``drift_to``).

    >>> s = make_snapshots(n_customers=400, seed=1)
    >>> int(s.movements["planted"].sum())  # 10% of the 100 steady customers
    10
    """

    first: DemoData
    second: DemoData
    movements: pl.DataFrame
    params: dict[str, Any] = field(default_factory=dict)


def make_snapshots(
    n_customers: int = 2_000,
    seed: int = 7,
    end: str | date = "2024-12-31",
    gap_days: int = 270,
    drift_share: float = 0.10,
    drift_from: str = "steady",
    drift_to: str = "dormant",
    joined_share: float = 0.05,
) -> DemoSnapshots:
    """Two snapshots ``gap_days`` apart: ``drift_share`` of the ``drift_from`` customers stop buying
    (they look like ``drift_to`` at the second snapshot); the other power, steady and explorer
    customers keep buying at their own rate; the others make no further purchase; ``joined_share``
    x ``n_customers`` new customers join in the last 60 days. Deterministic for a seed.

    >>> s = make_snapshots(n_customers=300, seed=2)
    >>> s.second.transactions.height > s.first.transactions.height
    True
    """
    for name, value in (("drift_from", drift_from), ("drift_to", drift_to)):
        if value not in ARCHETYPES:
            raise ConfigError(f"demo snapshots: {name} = {value!r} is not an archetype. Fix: use one of {list(ARCHETYPES)}.")
    if not (0.0 <= float(drift_share) <= 1.0) or not (0.0 <= float(joined_share) < 1.0):
        raise ConfigError(f"demo snapshots: drift_share = {drift_share!r} and joined_share = {joined_share!r} must be "
                          "fractions. Fix: pass for example drift_share=0.1, joined_share=0.05.")
    if int(gap_days) < 1:
        raise ConfigError(f"demo snapshots: gap_days = {gap_days!r} must be at least 1. Fix: pass for example gap_days=270.")
    first = make_transactions(n_customers=n_customers, seed=seed, end=end)
    end1 = _to_date(end, "end")
    end2 = end1 + timedelta(days=int(gap_days))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 2]))
    truth = first.truth
    # drifters: an exact share of the drift_from customers, chosen at random
    pool = truth.filter(pl.col("archetype") == drift_from)["customer_id"].to_numpy()
    n_drift = int(round(float(drift_share) * pool.size))
    drifters = np.sort(rng.choice(pool, n_drift, replace=False)) if n_drift else np.empty(0, dtype=object)
    # per continuing customer: order rate and typical order value over the first snapshot
    start1_us = int(datetime(end1.year, end1.month, end1.day, tzinfo=timezone.utc).timestamp()) * _US_PER_S + _US_PER_DAY
    per = (first.transactions.filter(pl.col("customer_id").is_not_null() & (pl.col("amount") > 0))
           .group_by("customer_id").agg(pl.col("order_id").n_unique().alias("orders"),
                                        pl.col("timestamp").min().alias("first"),
                                        (pl.col("amount").sum() / pl.col("order_id").n_unique()).alias("aov"))
           .join(truth, on="customer_id")
           .filter(pl.col("archetype").is_in(list(CONTINUING))
                   & ~pl.col("customer_id").is_in(pl.Series(drifters, dtype=pl.String).implode()))
           .sort("customer_id"))
    tenure = ((start1_us - per["first"].dt.epoch("us").to_numpy()) / _US_PER_DAY).clip(30, None)
    n_extra = np.maximum(1, rng.poisson(per["orders"].to_numpy() / tenure * int(gap_days)))
    code = per["archetype"].replace_strict({a: i for i, a in enumerate(ARCHETYPES)}, return_dtype=pl.Int64).to_numpy()
    mean_rec = np.array([BEHAVIOUR[a].recency[1] for a in ARCHETYPES])[code]
    cap_rec = np.array([BEHAVIOUR[a].recency[2] for a in ARCHETYPES])[code]
    last = int(gap_days) - np.minimum(np.floor(rng.exponential(mean_rec)), cap_rec).astype(np.int64)  # day in 1..gap
    last = np.clip(last, 1, int(gap_days))
    cust = np.repeat(np.arange(per.height), n_extra)
    pos = np.arange(cust.size) - np.repeat(np.cumsum(n_extra) - n_extra, n_extra)
    day = np.where(pos == 0, last[cust], 1 + np.floor(rng.random(cust.size) * last[cust]).astype(np.int64))
    sec = rng.choice(24, size=cust.size, p=_HOUR_P) * 3600 + rng.integers(0, 3600, cust.size)
    ts = start1_us + (day - 1) * _US_PER_DAY + sec * _US_PER_S
    amount = np.round(per["aov"].to_numpy()[cust] * np.exp(rng.normal(-0.08, 0.4, cust.size)), 2).clip(0.5, None)
    products = first.transactions["product_id"].drop_nulls().unique().sort()
    extra = pl.DataFrame({
        "customer_id": per["customer_id"].gather(cust),
        "timestamp": pl.Series(ts).cast(pl.Datetime("us", "UTC")),
        "amount": amount,
        "order_id": _id_series("S", np.arange(1, cust.size + 1), 9),
        "product_id": products.gather(rng.integers(0, products.len(), cust.size)),
        "quantity": np.ones(cust.size),
        "unit_price": amount,
    })
    # customers who joined in the last 60 days before the second snapshot
    n_joined = int(round(float(joined_share) * n_customers))
    parts = [first.transactions, extra]
    customers = [first.customers]
    joined_truth = pl.DataFrame(schema={"customer_id": pl.String, "archetype": pl.String})
    if n_joined:
        j = make_transactions(n_customers=n_joined, seed=int(seed) + 1, end=end2, archetype_shares={"new": 1.0},
                              duplicate_rate=0.0, null_id_rate=0.0)
        width = max(7, len(str(n_customers + n_joined)))
        new_ids = dict(zip(j.truth["customer_id"].to_list(),
                           _id_series("C", np.arange(n_customers + 1, n_customers + n_joined + 1), width).to_list()))
        parts.append(j.transactions.with_columns(pl.col("customer_id").replace_strict(new_ids),
                                                 pl.lit("J").add(pl.col("order_id")).alias("order_id")))
        customers.append(j.customers.with_columns(pl.col("customer_id").replace_strict(new_ids)))
        joined_truth = j.truth.with_columns(pl.col("customer_id").replace_strict(new_ids))
    tx2 = pl.concat([p.select(list(TRANSACTION_SCHEMA)).cast(TRANSACTION_SCHEMA) for p in parts]).sort("timestamp", maintain_order=True)
    after = truth.with_columns(
        pl.when(pl.col("customer_id").is_in(pl.Series(drifters, dtype=pl.String).implode()))
        .then(pl.lit(drift_to)).otherwise(pl.col("archetype")).alias("archetype"))
    truth2 = pl.concat([after, joined_truth])
    movements = (truth.rename({"archetype": "archetype_before"})
                 .join(truth2.rename({"archetype": "archetype_after"}), on="customer_id", how="full", coalesce=True)
                 .with_columns(pl.col("customer_id").is_in(pl.Series(drifters, dtype=pl.String).implode()).alias("planted"))
                 .sort("customer_id"))
    params = {**first.params, "end": end2.isoformat(), "as_of": (end2 + timedelta(days=1)).isoformat(),
              "snapshot": 2, "gap_days": int(gap_days), "drift_share": float(drift_share), "drift_from": drift_from,
              "drift_to": drift_to, "planted_movers": n_drift, "joined": n_joined}
    second = DemoData(transactions=tx2, customers=pl.concat(customers, how="vertical_relaxed"), truth=truth2, params=params)
    return DemoSnapshots(first, second, movements, {"gap_days": int(gap_days), "planted_movers": n_drift,
                                                    "joined": n_joined, "drift_from": drift_from, "drift_to": drift_to})


def write_demo_snapshots(out_dir: str | Path, n_customers: int = 2_000, seed: int = 7, **kwargs: Any) -> dict[str, dict[str, Path]]:
    """Write both snapshots (``snapshot_1/``, ``snapshot_2/`` with transactions, customers, truth) and
    ``movements.parquet`` (the planted truth) under ``out_dir``; returns the paths.

    >>> paths = write_demo_snapshots("/tmp/snaps", n_customers=300)  # doctest: +SKIP
    >>> sorted(paths)                                                # doctest: +SKIP
    ['movements', 'snapshot_1', 'snapshot_2']
    """
    out = Path(out_dir)
    snaps = make_snapshots(n_customers=n_customers, seed=seed, **kwargs)
    paths: dict[str, Any] = {}
    for i, demo in enumerate((snaps.first, snaps.second), start=1):
        folder = out / f"snapshot_{i}"
        folder.mkdir(parents=True, exist_ok=True)
        paths[f"snapshot_{i}"] = {}
        for name in ("transactions", "customers", "truth"):
            path = folder / f"{name}.parquet"
            getattr(demo, name).write_parquet(path)
            paths[f"snapshot_{i}"][name] = path
        (folder / "manifest.json").write_text(json.dumps(demo.params, indent=2) + "\n", encoding="utf-8")
    snaps.movements.write_parquet(out / "movements.parquet")
    paths["movements"] = out / "movements.parquet"
    return paths
