"""Data-quality step: explicit policies, one lazy pass of flags, a counted report.

``clean_transactions(lf, as_of, policy)`` computes one boolean flag per rule in a single pass,
aggregates the counts, then filters. Rules, in the order used to attribute an excluded row
(a row failing several rules counts in each rule's ``rows`` but is excluded once, under the
first of these, so ``rows_in - sum(excluded) == rows_out``):

1. ``null_customer``: null or blank customer id (also "nan"/"None"/"null")  - drop | error
2. ``bad_timestamp``: missing or unparseable timestamp                        - drop | error
3. ``implausible_timestamp``: before 1900 or after 2199 (``config.PLAUSIBLE_YEARS``): a two-digit
   year read as year 0024, a 9999-12-31 placeholder. Dropped and counted (or ``error``), so such a
   row can never become the inferred ``as_of``; when most dates of the file are implausible the
   reader stops first and names the date format to use (``%y`` for two-digit years)  - drop | error
4. ``non_numeric_amount``: missing, non-numeric or non-finite amount          - always dropped
5. ``future``: timestamp at or after ``as_of`` (as_of is exclusive: a date means 00:00 UTC of
   that day; ``as_of=None`` keeps every row and reports as_of = day after the last kept row) - drop | keep
6. ``duplicates``: exact duplicate rows (every source column equal; the first copy is kept) - drop | keep
7. ``zero_amount``: amount == 0                                                - drop | keep
8. ``returns``: negative amount or cancelled invoice (``is_cancellation``)     - net | drop

Stops (DataError) rather than rules: ids in Excel's scientific notation (``1.23457E+11``: distinct
customers merged), and data whose kept rows are all returns (nothing to segment).

Informational: ``mixed_time_zones`` (kept rows whose UTC offset differs from the most common one,
naive values counting as one zone; all are converted to UTC; never excluded).

**Outliers (customer level, after the rules above).** Customers whose net spend (kept rows) is
above the ``outlier_quantile`` of customers, e.g. a few wholesalers in a retail log. Policy:

- ``keep`` (default): counted in the report only;
- ``flag``: kept everywhere, marked by an ``is_outlier`` column (rows of the clean frame; the data
  stage carries it per customer into the feature table and the assignments). The clustering
  leaves them out of *fitting* (scaling, k and the model, see ``CustomerSegmenter.fit_exclude``),
  so they cannot pull the segments, and still assigns each one a segment;
- ``exclude``: all their rows are removed; each such customer is counted in the rule's
  ``excluded`` rows and listed in ``dropped_customers`` with reason ``outliers`` (never silently).

The full list is ``report.outlier_customers`` (customer_id, rows, net_spend) under every policy.

**Returns policy (default ``net``).** A return or cancellation refunds money the customer had
paid. Keeping the negative rows makes every customer total *net* (purchases minus refunds),
which is what the customer is really worth; dropping them (``drop``) overstates returners as
gross spenders, and the peers (lifetimes, pymc-marketing) silently mix both. With ``net`` the
rows stay and an ``is_return`` column marks them, so feature code sums amounts (net) but does not
count returns as orders; the feature table also carries ``gross_spend`` and ``returned_spend``.
Customers whose net spend ends at or below zero are counted in the report, not dropped. (An
earlier ``keep`` value behaved exactly like ``net``; it now raises ConfigError naming the fix.)

>>> clean, report = clean_transactions(read_transactions("tx.csv"), as_of="2024-01-01")  # doctest: +SKIP
>>> print(report)  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import polars as pl

from segmentation_lib.config import PLAUSIBLE_YEARS
from segmentation_lib.formatting import fmt_number
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.data.read import (NULL_TOKENS, CANONICAL, HELPER_COLUMNS, TS_DTYPE, check_id_notation,
                                        polars_error_message, read_transactions)


RULES = ("null_customer", "bad_timestamp", "implausible_timestamp", "non_numeric_amount", "future", "duplicates",
         "zero_amount", "returns")
INFO_RULES = ("mixed_time_zones", "outliers")
#: reason recorded in ``dropped_customers`` for customers removed by ``outliers: exclude``
OUTLIER_REASON = "outliers"
DESCRIPTIONS = {
    "null_customer": "null or blank customer id",
    "bad_timestamp": "missing or unparseable timestamp",
    "implausible_timestamp": f"timestamp before {PLAUSIBLE_YEARS[0]} or after {PLAUSIBLE_YEARS[1]}, e.g. a two-digit year "
                             "read as 0024 or a 9999-12-31 placeholder",
    "non_numeric_amount": "missing or non-numeric amount",
    "future": "timestamp at or after as_of",
    "duplicates": "exact duplicate row (first copy kept)",
    "zero_amount": "amount is zero",
    "returns": "negative amount / return / cancellation",
    "mixed_time_zones": "timestamp offset differs from the most common one",
    "outliers": "customer net spend above the outlier quantile",
}
_ALLOWED = {
    "null_customer": ("drop", "error"),
    "bad_timestamp": ("drop", "error"),
    "implausible_timestamp": ("drop", "error"),
    "future": ("drop", "keep"),
    "zero_amount": ("drop", "keep"),
    "returns": ("net", "drop"),
    "duplicates": ("drop", "keep"),
    "outliers": ("keep", "flag", "exclude"),
}
#: values that were valid once, with the message that says what to use instead
_REMOVED = {
    ("returns", "keep"): "quality.returns: 'keep' is no longer a policy: it kept the negative rows exactly like "
                         "'net' (the results were identical). Fix: use 'net' (return rows kept, spend columns net "
                         "of returns, with gross_spend and returned_spend beside them) or 'drop' (return rows "
                         "excluded and counted, spend is gross).",
}


@dataclass(frozen=True)
class QualityPolicy:
    """What to do per rule (the ``quality:`` section of the run configuration).

    >>> QualityPolicy.from_config({"returns": "drop"}).returns
    'drop'
    """

    null_customer: str = "drop"
    bad_timestamp: str = "drop"
    implausible_timestamp: str = "drop"
    future: str = "drop"
    zero_amount: str = "drop"
    returns: str = "net"
    duplicates: str = "drop"
    outliers: str = "keep"
    outlier_quantile: float = 0.999
    max_excluded_share: float | None = 0.5

    def __post_init__(self) -> None:
        for key, allowed in _ALLOWED.items():
            value = getattr(self, key)
            if (key, value) in _REMOVED:
                raise ConfigError(_REMOVED[(key, value)])
            if value not in allowed:
                raise ConfigError(f"quality.{key}: '{value}' is not a valid policy. Fix: use one of "
                                  f"{', '.join(allowed)}.")
        q = self.outlier_quantile
        if not isinstance(q, (int, float)) or not 0 < q < 1:
            raise ConfigError(f"quality.outlier_quantile: {q!r} must be a number between 0 and 1 "
                              "(exclusive). Fix: use e.g. 0.999.")
        m = self.max_excluded_share
        if m is not None and (isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 <= m <= 1):
            raise ConfigError(f"quality.max_excluded_share: {m!r} must be a share between 0 and 1, or null for no "
                              "limit. Fix: use e.g. 0.5.")

    def check_excluded_share(self, report: "DataQualityReport") -> None:
        """Stop a run when the rules excluded more than ``max_excluded_share`` of the rows (a wrong
        date format or column mapping usually shows up this way); DataError naming the rules.

        >>> from types import SimpleNamespace as NS
        >>> r = NS(source="t.csv", rows_in=10, rows_excluded=8, rules=[NS(rule="bad_timestamp", excluded=8)])
        >>> QualityPolicy(max_excluded_share=0.5).check_excluded_share(r)
        Traceback (most recent call last):
        ...
        segmentation_lib.errors.DataError: t.csv: the data-quality rules excluded 8 of 10 rows (80.0%), more than quality.max_excluded_share (50%): bad_timestamp 8. Fix: run `segment check-data` to see examples of the excluded rows and correct the column mapping, data.date_format or the file; or raise quality.max_excluded_share (null = no limit) if this is expected.
        """
        limit = self.max_excluded_share
        if limit is None or not report.rows_in or report.rows_excluded / report.rows_in <= limit:
            return
        top = sorted((r for r in report.rules if r.excluded), key=lambda r: -r.excluded)[:3]
        rules = ", ".join(f"{r.rule} {r.excluded:,}" for r in top)
        raise DataError(
            f"{report.source}: the data-quality rules excluded {report.rows_excluded:,} of {report.rows_in:,} rows "
            f"({report.rows_excluded / report.rows_in:.1%}), more than quality.max_excluded_share ({limit:.0%}): "
            f"{rules}. Fix: run `segment check-data` to see examples of the excluded rows and correct the column "
            "mapping, data.date_format or the file; or raise quality.max_excluded_share (null = no limit) if this "
            "is expected."
        )

    @classmethod
    def from_config(cls, section: Mapping | None) -> QualityPolicy:
        """Build from the ``quality:`` mapping; unknown keys raise ConfigError."""
        section = dict(section or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - names)
        if unknown:
            raise ConfigError(f"quality: unknown key(s) {', '.join(unknown)}. Fix: use only "
                              f"{', '.join(sorted(names))}.")
        return cls(**section)

    def excludes(self, rule: str) -> bool:
        """Whether rows failing ``rule`` are removed under this policy."""
        if rule == "non_numeric_amount":
            return True
        return getattr(self, rule) in ("drop", "error")

    def action(self, rule: str) -> str:
        if rule == "non_numeric_amount":
            return "dropped"
        value = getattr(self, rule)
        if rule == "returns":
            return {"net": "kept (net: totals are net of returns)", "drop": "dropped"}[value]
        if rule == "outliers":
            return {"keep": "kept (reported only)", "flag": "flagged is_outlier (kept, left out of fitting clusters)",
                    "exclude": "customers excluded"}[value]
        return {"drop": "dropped", "error": "error", "keep": "kept"}[value]


@dataclass
class RuleResult:
    """One rule's outcome: rows failing it, rows it excluded, customers involved, examples."""

    rule: str
    rows: int
    excluded: int
    customers: int | None
    action: str
    examples: pl.DataFrame = field(default_factory=pl.DataFrame)
    details: str = ""

    @property
    def description(self) -> str:
        return DESCRIPTIONS.get(self.rule, self.rule)




def _json_value(v: object) -> object:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    if isinstance(v, (list, tuple)):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json_value(x) for k, x in v.items()}
    return str(v)


def _jsonable(df: pl.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts (datetimes as ISO text, other objects as text)."""
    return [{k: _json_value(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


@dataclass
class DataQualityReport:
    """Counts and examples per rule, plus row and customer totals.

    Invariants: ``rows_in - sum(r.excluded) == rows_out`` and
    ``customers_in == customers_out + len(dropped_customers)``; ``dropped_customers`` lists every
    customer whose rows were all excluded, with the reason(s) (``outliers`` for customers removed
    by ``outliers: exclude``). ``outlier_customers`` lists every outlier customer (customer_id,
    rows, net_spend) whatever the policy.
    """

    source: str | None
    as_of: dt.datetime | None
    as_of_inferred: bool
    policy: QualityPolicy
    rows_in: int
    rows_out: int
    customers_in: int
    customers_out: int
    rules: list[RuleResult]
    dropped_customers: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    outlier_customers: pl.DataFrame = field(default_factory=lambda: _no_outliers())
    as_of_today: bool = False  # run.as_of: today (the date of the run, not of the data)

    def __getitem__(self, rule: str) -> RuleResult:
        for r in self.rules:
            if r.rule == rule:
                return r
        raise KeyError(rule)

    @property
    def customers_dropped(self) -> int:
        return self.dropped_customers.height

    @property
    def rows_excluded(self) -> int:
        return self.rows_in - self.rows_out

    @property
    def customers_outliers(self) -> int:
        """Outlier customers found (flagged, excluded or only reported, by ``policy.outliers``)."""
        return self.outlier_customers.height

    def dropped_by_reason(self) -> dict[str, int]:
        """Customers dropped entirely, counted by reason (rules joined with ', ')."""
        if self.dropped_customers.height == 0:
            return {}
        counts = self.dropped_customers.group_by("reason").len().sort(["len", "reason"], descending=[True, False])
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list()))

    def to_polars(self) -> pl.DataFrame:
        """One row per rule: rule, description, rows, excluded, customers, action, details."""
        return pl.DataFrame(
            {
                "rule": [r.rule for r in self.rules],
                "description": [r.description for r in self.rules],
                "rows": [r.rows for r in self.rules],
                "excluded": [r.excluded for r in self.rules],
                "customers": [r.customers for r in self.rules],
                "action": [r.action for r in self.rules],
                "details": [r.details for r in self.rules],
            },
            schema={"rule": pl.String, "description": pl.String, "rows": pl.Int64, "excluded": pl.Int64,
                    "customers": pl.Int64, "action": pl.String, "details": pl.String},
        )

    def to_dict(self) -> dict:
        """JSON-serialisable summary (examples as lists of records)."""
        return {
            "source": self.source,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "as_of_inferred": self.as_of_inferred,
            "as_of_today": self.as_of_today,
            "policy": asdict(self.policy),
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rows_excluded": self.rows_excluded,
            "customers_in": self.customers_in,
            "customers_out": self.customers_out,
            "customers_dropped": self.customers_dropped,
            "customers_dropped_by_reason": self.dropped_by_reason(),
            "customers_outliers": self.customers_outliers,
            "outlier_policy": self.policy.outliers,
            "dropped_customer_examples": _jsonable(self.dropped_customers.head(20)),
            "rules": [
                {"rule": r.rule, "description": r.description, "rows": r.rows, "excluded": r.excluded,
                 "customers": r.customers, "action": r.action, "details": r.details,
                 "examples": _jsonable(r.examples)}
                for r in self.rules
            ],
            "notes": list(self.notes),
        }

    def _header_lines(self) -> list[str]:
        as_of = self.as_of.date().isoformat() if self.as_of else "-"
        how = (" (inferred: day after the last transaction)" if self.as_of_inferred
               else " (today: the date of the run)" if self.as_of_today else "")
        reasons = "; ".join(f"{k}: {_fmt_example(v)}" for k, v in self.dropped_by_reason().items())
        reasons = f"; by reason: {reasons}" if reasons else ""
        return [
            f"Data quality report: {self.source or 'transactions'}",
            f"as_of {as_of}{how}",
            f"rows:      {_fmt_example(self.rows_in)} in -> {_fmt_example(self.rows_out)} out ({_fmt_example(self.rows_excluded)} excluded)",
            f"customers: {_fmt_example(self.customers_in)} in -> {_fmt_example(self.customers_out)} out "
            f"({_fmt_example(self.customers_dropped)} dropped entirely{reasons})",
        ]

    def to_text(self, examples: int = 3) -> str:
        """Plain-text report for the terminal (``segment check-data``)."""
        lines = self._header_lines() + [""]
        w = max(len(r.rule) for r in self.rules)
        lines.append(f"{'rule':<{w}}  {'rows':>11}  {'excluded':>11}  {'customers':>10}  action")
        for r in self.rules:
            lines.append(f"{r.rule:<{w}}  {_fmt_example(r.rows):>11}  {_fmt_example(r.excluded):>11}  {_fmt_example(r.customers):>10}  "
                         f"{r.action}" + (f"  [{r.details}]" if r.details else ""))
        for r in self.rules:
            if examples and r.rows and r.examples.height:
                lines.append(f"\n{r.rule} ({r.description}), e.g.:")
                for row in r.examples.head(examples).iter_rows(named=True):
                    cells = (f"{k}={round(v, 6) if isinstance(v, float) else v}" for k, v in row.items() if v is not None)
                    lines.append("  " + ", ".join(cells))
        for note in self.notes:
            lines.append(f"note: {note}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()

    def to_markdown(self) -> str:
        """Markdown tables for reports/notebooks."""
        head = self._header_lines()
        lines = [f"### {head[0]}", "", *[f"- {h}" for h in head[1:]], "",
                 "| rule | description | rows | excluded | customers | action | details |",
                 "|---|---|---:|---:|---:|---|---|"]
        for r in self.rules:
            lines.append(f"| {r.rule} | {r.description} | {_fmt_example(r.rows)} | {_fmt_example(r.excluded)} | "
                         f"{_fmt_example(r.customers)} | {r.action} | {r.details} |")
        if self.notes:
            lines += ["", *[f"- note: {n}" for n in self.notes]]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


# --------------------------------------------------------------------------- helpers


def parse_as_of(as_of: str | dt.date | dt.datetime | None) -> dt.datetime | None:
    """``"YYYY-MM-DD"`` / date / datetime -> aware UTC datetime (a date means 00:00 UTC).
    ``"today"``: 00:00 UTC of the current UTC date (rows from today on are after as_of).

    >>> parse_as_of("2024-03-01")
    datetime.datetime(2024, 3, 1, 0, 0, tzinfo=datetime.timezone.utc)
    """
    if as_of is None:
        return None
    if is_today(as_of):
        today = dt.datetime.now(dt.timezone.utc).date()
        return dt.datetime(today.year, today.month, today.day, tzinfo=dt.timezone.utc)
    if isinstance(as_of, dt.datetime):
        value = as_of
    elif isinstance(as_of, dt.date):
        value = dt.datetime(as_of.year, as_of.month, as_of.day)
    else:
        try:
            value = dt.datetime.fromisoformat(str(as_of).strip())
        except ValueError:
            raise ConfigError(f"run.as_of: '{as_of}' is not a date. Fix: write it as YYYY-MM-DD "
                              "(e.g. 2024-01-31), today for the day of the run, or null for the day after the "
                              "last transaction.") from None
    if not PLAUSIBLE_YEARS[0] <= value.year <= PLAUSIBLE_YEARS[1]:
        raise ConfigError(f"run.as_of: {value.date().isoformat()} is outside the years {PLAUSIBLE_YEARS[0]}-"
                          f"{PLAUSIBLE_YEARS[1]} a transaction log can cover. Fix: write the year with four digits "
                          "(e.g. 2024-12-25), or null for the day after the last transaction.")
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)


def is_today(as_of: object) -> bool:
    """True for the ``run.as_of`` value ``"today"`` (any case).

    >>> is_today("Today"), is_today("2024-01-01")
    (True, False)
    """
    return isinstance(as_of, str) and as_of.strip().lower() == "today"


def valid_customer(col: str = "customer_id", dtype: pl.DataType = pl.String) -> pl.Expr:
    """True where the customer id is usable (not null, not blank, not a null token; an integer id
    only needs to be present).

    >>> pl.DataFrame({"c": [1, None]}).select(valid_customer("c", pl.Int64))["c"].to_list()
    [True, False]
    """
    if dtype != pl.String:
        return pl.col(col).is_not_null()
    return pl.col(col).is_not_null() & ~pl.col(col).is_in(list(NULL_TOKENS))


def duplicate_flag(df: pl.DataFrame, columns: list[str] | None = None) -> pl.Series:
    """True for every exact duplicate row after its first copy.

    Fast path: hash each row, sort the hashes and compare neighbours; only rows whose hash occurs
    twice are compared exactly (so a hash collision can never drop a row).

    >>> duplicate_flag(pl.DataFrame({"a": [1, 2, 1], "b": ["x", "y", "x"]})).to_list()
    [False, False, True]
    """
    columns = columns or df.columns
    h = df.select(pl.struct(columns).hash(0)).to_series()
    s = h.sort()
    repeated = s.filter(s == s.shift(1))
    flag = pl.Series("duplicates", [False], dtype=pl.Boolean).extend_constant(False, df.height - 1) \
        if df.height else pl.Series("duplicates", [], dtype=pl.Boolean)
    if repeated.len() > 0:
        idx = pl.select(pl.arg_where(h.is_in(repeated.unique().implode()))).to_series()
        sub = df.select(columns)[idx]
        flag = flag.scatter(idx.filter(~sub.select(pl.struct(columns).is_first_distinct()).to_series()), True)
    return chunked_like(flag, df)


def chunked_like(s: pl.Series, df: pl.DataFrame) -> pl.Series:
    """``s`` cut into the chunks of ``df``'s columns (zero-copy slices), so adding it to ``df`` keeps the
    frame's layout: a one-chunk column added to a frame read from many files makes polars rechunk every
    column at the next step (0.4 s per 3.5M-row part of the demo log), while rechunking up front would
    make the per-chunk parallel steps (the row hash) single-threaded.

    >>> df = pl.concat([pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [3]})], rechunk=False)
    >>> chunked_like(pl.Series([True, False, True]), df).chunk_lengths()
    [2, 1]
    """
    lengths = df.get_column(df.columns[0]).chunk_lengths() if df.width else []
    if len(lengths) <= 1 or s.n_chunks() > 1:
        return s
    starts = np.cumsum([0, *lengths[:-1]]).tolist()
    return pl.concat([s.slice(o, n) for o, n in zip(starts, lengths)], rechunk=False)


def flag_exprs(columns: list[str], as_of: dt.datetime | None, id_dtype: pl.DataType = pl.String) -> dict[str, pl.Expr]:
    """One boolean expression per rule (except duplicates, see :func:`duplicate_flag`)."""
    returns = pl.col("amount") < 0
    if "is_cancellation" in columns:
        returns = returns | pl.col("is_cancellation")
    future = (pl.col("timestamp") >= pl.lit(as_of).cast(TS_DTYPE)) if as_of else pl.lit(False)
    ts = pl.col("timestamp")
    first, last = (dt.datetime(PLAUSIBLE_YEARS[0], 1, 1, tzinfo=dt.timezone.utc),
                   dt.datetime(PLAUSIBLE_YEARS[1] + 1, 1, 1, tzinfo=dt.timezone.utc))
    return {
        "null_customer": ~valid_customer(dtype=id_dtype),
        "bad_timestamp": ts.is_null(),
        "implausible_timestamp": ((ts < pl.lit(first).cast(TS_DTYPE)) | (ts >= pl.lit(last).cast(TS_DTYPE))).fill_null(False),
        "non_numeric_amount": pl.col("amount").is_null(),
        "future": future.fill_null(False),
        "zero_amount": (pl.col("amount") == 0).fill_null(False),
        "returns": returns.fill_null(False),
    }


def _example_cols(columns: list[str], rule: str) -> list[str]:
    base = [c for c in CANONICAL if c in columns]
    extra = {"bad_timestamp": ["_raw_timestamp"], "non_numeric_amount": ["_raw_amount"],
             "mixed_time_zones": ["_tz"], "returns": ["is_cancellation"]}.get(rule, [])
    return base + [c for c in extra if c in columns]


def _examples(df: pl.DataFrame, mask: pl.Expr, cols: list[str], n: int = 5) -> pl.DataFrame:
    """First ``n`` rows where ``mask`` holds (gathers by index instead of filtering every column)."""
    idx = df.select(pl.arg_where(mask).head(n)).to_series()
    return df.select(cols)[idx]


def _rename_raw(df: pl.DataFrame) -> pl.DataFrame:
    names = {"_raw_timestamp": "timestamp_raw", "_raw_amount": "amount_raw", "_tz": "utc_offset"}
    return df.rename({k: v for k, v in names.items() if k in df.columns})


def _collect(lf: pl.LazyFrame, source: str | None) -> pl.DataFrame:
    try:
        return lf.collect()
    except pl.exceptions.PolarsError as err:
        raise DataError(polars_error_message(err, source or "the transaction data")) from None


# --------------------------------------------------------------------------- main step


def _raise_on_errors(df: pl.DataFrame, stats: dict, policy: QualityPolicy, columns: list[str], where: str) -> None:
    """DataError for `error` policies that fired (the log-level stops are in :func:`_merge_parts`)."""
    for rule in ("null_customer", "bad_timestamp", "implausible_timestamp"):
        if getattr(policy, rule) == "error" and stats[f"n_{rule}"]:
            ex = _rename_raw(_examples(df, pl.col(f"_f_{rule}"), _example_cols(columns, rule), 3))
            raise DataError(f"{where}: {stats[f'n_{rule}']:,} row(s) have a {DESCRIPTIONS[rule]} and quality.{rule} "
                            f"is 'error' (e.g. {_jsonable(ex)}). Fix: correct these rows, or set quality.{rule}: drop "
                            "to exclude and count them.")


#: money is summed exactly as integers of ``2**-MONEY_FRACTION_BITS`` (Int128): sums independent of row
#: order and partitioning, exact for every amount whose magnitude is between ``2**-60`` (about 8.7e-19,
#: smaller parts are truncated) and ``2**66`` (about 7.4e19); the BTYD summary uses the same units
MONEY_FRACTION_BITS = 60


def money_units(amount: pl.Expr) -> pl.Expr:
    """Amounts as exact Int128 multiples of 2**-60 (as the BTYD summary sums money): sums of these are
    exact, so the same for any row order or partitioning; :func:`units_to_money` turns a sum back."""
    return (amount.cast(pl.Float64) * float(2**MONEY_FRACTION_BITS)).cast(pl.Int128)


def units_to_money(units: pl.Expr) -> pl.Expr:
    """A sum of :func:`money_units` as Float64 (rounded once)."""
    return units.cast(pl.Float64) / float(2**MONEY_FRACTION_BITS)


def exact_sum(amount: pl.Expr) -> pl.Expr:
    """The sum of an amount column, exact then rounded once (:func:`money_units`).

    >>> pl.DataFrame({"a": [2.5, 0.25, -1.0]}).select(exact_sum(pl.col("a"))).item()
    1.75
    """
    return units_to_money(money_units(amount).sum())


def _customer_accounting(df: pl.DataFrame, keep: pl.Expr) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """(all customers, customers with kept rows, customers dropped entirely with their reasons).

    One group_by over customers gives rows, kept rows and the net spend of kept rows; the reasons
    are gathered only for the (few) customers with no kept row.
    """
    cust = (df.lazy().filter(~pl.col("_f_null_customer"))
            .select("customer_id", _k=keep, _a=pl.when(keep).then(pl.col("amount")).otherwise(0.0))
            .group_by("customer_id")
            .agg(n_rows=pl.len(), kept_rows=pl.col("_k").sum(), net=exact_sum(pl.col("_a")))
            .collect())
    dropped_ids = cust.filter(pl.col("kept_rows") == 0)["customer_id"]
    dropped = (df.lazy().filter(~pl.col("_f_null_customer") & pl.col("customer_id").is_in(dropped_ids.implode()))
               .group_by("customer_id")
               .agg(n_rows=pl.len(), reason=pl.col("_reason").cast(pl.String).unique().sort().str.join(", "))
               .sort("customer_id").collect())
    return cust, cust.filter(pl.col("kept_rows") > 0), dropped


#: rows per customer partition when a large log is cleaned out of core (``clean_transactions_to``): the
#: rows of one partition are held at a time (about 0.3 GB per million rows of a demo-shaped log)
PARTITION_ROWS = 4_000_000
#: order ids checked for spreadsheet notation (a sample: the first rows)
ORDER_ID_SAMPLE = 20_000
_ROW = "_row"  # the source row number: examples and zones are reported in file order whatever the partitions


@dataclass
class _Part:
    """What one customer partition of the log contributes to the quality report (see ``clean_transactions``).

    Customers are disjoint between partitions, so counts and customer counts add up; examples carry
    the source row number, so the first examples of the whole log can be picked from the partitions'."""

    out: pl.DataFrame          # kept rows (before the customer-level outlier rule), with is_return and _row
    stats: dict
    cust: pl.DataFrame         # every customer: n_rows, kept_rows, net
    dropped: pl.DataFrame      # customers with no kept row, with their reasons
    examples: dict             # rule -> up to 5 rows (with _row)
    raw: dict                  # "_raw_amount" / "_raw_timestamp" -> up to 3 distinct unreadable values
    zones: pl.DataFrame | None  # per UTC offset: rows; zone pairs: distinct (customer, zone) of valid ids
    zone_pairs: pl.DataFrame | None
    zone_examples: pl.DataFrame | None
    purchases: int
    rows_kept: int


def _clean_part(lf: pl.LazyFrame, columns: list[str], id_dtype: pl.DataType, as_of_dt: dt.datetime | None,
                policy: QualityPolicy, where: str, source: str | None, check_orders: bool) -> _Part:
    """Flags, counts, customer accounting and kept rows of one partition (all of the log when unpartitioned)."""
    flags = flag_exprs(columns, as_of_dt, id_dtype)
    reason = pl.lit(None, dtype=pl.String)
    for rule in reversed(RULES):
        if policy.excludes(rule):
            reason = pl.when(pl.col(f"_f_{rule}")).then(pl.lit(rule)).otherwise(reason)
    df = _collect(lf.with_columns(**{f"_f_{k}": v for k, v in flags.items()}), source)
    df = df.with_columns(duplicate_flag(df, [c for c in columns if c not in ("_tz", _ROW)]).alias("_f_duplicates"))
    df = df.with_columns(_reason=reason.cast(pl.Enum(list(RULES))))
    keep = pl.col("_reason").is_null()
    stats = df.select(
        rows_in=pl.len(),
        **{f"n_{r}": pl.col(f"_f_{r}").sum() for r in RULES},
        **{f"x_{r}": (pl.col("_reason") == r).sum() for r in RULES},
        **{f"c_{r}": pl.col("customer_id").filter(pl.col(f"_f_{r}") & ~pl.col("_f_null_customer")).n_unique()
           for r in RULES},
        n_aware=pl.col("_tz").is_not_null().sum(),
        max_ts=pl.col("timestamp").filter(keep).max(),
    ).row(0, named=True)
    _raise_on_errors(df, stats, policy, columns, where)
    cust, _, dropped = _customer_accounting(df, keep)
    # every distinct customer id is checked (a million, not the ten million rows); order ids on a sample
    check_id_notation(cust, where, ("customer_id",))
    if check_orders:
        check_id_notation(df.head(ORDER_ID_SAMPLE), where, ("order_id",))
    examples = {rule: _examples(df, pl.col(f"_f_{rule}"), _example_cols(columns, rule) + [_ROW])
                for rule in RULES if stats[f"n_{rule}"]}
    raw = {c: df[c].drop_nulls().unique(maintain_order=True).head(3).to_list() for c in ("_raw_amount", "_raw_timestamp")}
    # the kept rows without the rule flags and raw text (filtering those too would copy them for nothing)
    out = df.select([c for c in df.columns if not c.startswith("_f_") and c not in ("_raw_timestamp", "_raw_amount")]
                    ).filter(keep).drop("_reason")
    del df
    zones = zone_pairs = zone_examples = None
    if stats["n_aware"] and out.height:
        zone = _zone_expr(out)
        zones = out.group_by(zone).len()
        zone_pairs = out.filter(valid_customer(dtype=id_dtype)).select("customer_id", zone).unique()
        zone_examples = out.with_columns(zone).group_by("_zone", maintain_order=True).head(5)
    is_return = pl.col("amount") < 0
    if "is_cancellation" in columns:
        is_return = is_return | pl.col("is_cancellation")
    out = out.drop(HELPER_COLUMNS, strict=False).with_columns(is_return.alias("is_return"))
    purchases = out.select((~pl.col("is_return") & (pl.col("amount") > 0)).sum()).item()
    return _Part(out, stats, cust, dropped, examples, raw, zones, zone_pairs, zone_examples, purchases, out.height)


def _zone_expr(df: pl.DataFrame) -> pl.Expr:
    """A row's UTC offset as text (``"naive"`` without one); the clean frame keeps it in ``_tz`` until the end."""
    return pl.col("_tz").str.replace(":", "", literal=True).fill_null("naive").alias("_zone")


def _first_rows(frames: list[pl.DataFrame], n: int = 5) -> pl.DataFrame:
    """The first ``n`` rows in source order of the partitions' example rows (``_row`` dropped)."""
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="vertical_relaxed").sort(_ROW).head(n).drop(_ROW)


def _merge_parts(parts: list[_Part], columns: list[str], as_of: object, as_of_dt: dt.datetime | None,
                 policy: QualityPolicy, where: str, source: str | None) -> tuple[DataQualityReport, pl.DataFrame]:
    """The quality report of a log from its partitions', and the outlier customers (global: one quantile
    over all customers). Raises the log-level stops (nothing readable, nothing left, only returns)."""
    stats = {k: sum(p.stats[k] for p in parts) for k in parts[0].stats if k != "max_ts"}
    last = [p.stats["max_ts"] for p in parts if p.stats["max_ts"] is not None]
    rows_in = stats["rows_in"]
    for key, rule, what, fix in (
        ("_raw_amount", "non_numeric_amount", "amounts is a number",
         "map data.columns.amount (or quantity and unit_price) to numeric columns."),
        ("_raw_timestamp", "bad_timestamp", "timestamps could be read",
         "map data.columns.timestamp to the date column and set data.date_format to its format."),
    ):
        if rows_in and stats[f"n_{rule}"] == rows_in:
            ex = list(dict.fromkeys(v for p in parts for v in p.raw[key]))[:3]
            raise DataError(f"{where}: none of the {rows_in:,} {what} (e.g. {ex}). Fix: {fix}")
    cust = pl.concat([p.cust for p in parts]) if len(parts) > 1 else parts[0].cust
    kept_cust = cust.filter(pl.col("kept_rows") > 0)
    dropped = pl.concat([p.dropped for p in parts]).sort("customer_id") if len(parts) > 1 else parts[0].dropped
    results: list[RuleResult] = []
    for rule in RULES:
        n = stats[f"n_{rule}"]
        ex = _first_rows([p.examples.get(rule, pl.DataFrame()) for p in parts]) if n else pl.DataFrame()
        details = ""
        if rule == "future":
            details = f"as_of {as_of_dt.date().isoformat()}" if as_of_dt else "no as_of given: nothing is in the future"
        if rule == "returns":
            nonpos = int((kept_cust["net"] <= 0).sum())
            details = f"{nonpos:,} customer(s) end with net spend <= 0"
        results.append(RuleResult(rule, n, stats[f"x_{rule}"], None if rule == "null_customer" else stats[f"c_{rule}"],
                                  policy.action(rule), _rename_raw(ex), details))
    results.append(_mixed_zones(parts, columns))
    out_rule, outliers = _outliers(kept_cust, policy)
    results.append(out_rule)
    notes: list[str] = []
    if policy.outliers == "exclude" and outliers.height:
        dropped = _with_outliers_dropped(dropped, cust, outliers)
    if outliers.height and policy.outliers in ("exclude", "flag"):
        notes.append(outlier_note(policy.outliers, outliers.height, out_rule))
    inferred = as_of_dt is None
    if inferred and last:
        m = max(last)
        as_of_dt = dt.datetime(m.year, m.month, m.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    excluded_outlier_rows = out_rule.excluded if policy.outliers == "exclude" else 0
    rows_out = sum(p.rows_kept for p in parts) - excluded_outlier_rows
    report = DataQualityReport(
        source=source, as_of=as_of_dt, as_of_inferred=inferred, as_of_today=is_today(as_of), policy=policy,
        rows_in=rows_in, rows_out=rows_out, customers_in=cust.height,
        customers_out=kept_cust.height - (outliers.height if policy.outliers == "exclude" else 0),
        rules=results, dropped_customers=dropped, notes=notes, outlier_customers=outliers,
    )
    if rows_out == 0:
        raise DataError(no_rows_message(where, rows_in, results))
    if sum(p.purchases for p in parts) == 0:
        raise DataError(f"{where}: all {rows_out:,} row(s) left after the quality checks are returns or cancellations "
                        "(negative amounts or cancelled invoices), so there is no purchase to segment. Fix: check that "
                        "data.columns.amount is the sale amount with purchases positive (a refunds-only export, or "
                        "amounts with the sign reversed, look like this), and that the file holds the purchases.")
    return report, outliers


def _finish(out: pl.DataFrame, outliers: pl.DataFrame, policy: QualityPolicy) -> pl.DataFrame:
    """The clean frame of a partition: the customer-level outlier rule applied, the row number dropped."""
    is_outlier = pl.col("customer_id").is_in(outliers["customer_id"].implode())
    if policy.outliers == "exclude" and outliers.height:
        out = out.filter(~is_outlier)
    if policy.outliers == "flag":
        out = out.with_columns(is_outlier.alias("is_outlier"))
    return out.drop(_ROW, strict=False)


def _prepare(lf: pl.LazyFrame | pl.DataFrame, source: str | None) -> tuple[pl.LazyFrame, list[str]]:
    """The log with the helper columns present and timestamps as UTC microseconds (and its columns)."""
    lf = lf.lazy()
    columns = lf.collect_schema().names()
    missing = [c for c in ("customer_id", "timestamp", "amount") if c not in columns]
    if missing:
        raise DataError(f"{source or 'transactions'}: the frame lacks the canonical column(s) {', '.join(missing)} "
                        f"(it has {', '.join(columns)}). Fix: read it with read_transactions(...) and a column mapping.")
    for helper in HELPER_COLUMNS:
        if helper not in columns:
            lf = lf.with_columns(pl.lit(None, dtype=pl.String).alias(helper))
    ts_dtype = lf.collect_schema()["timestamp"]
    if not isinstance(ts_dtype, pl.Datetime):
        raise DataError(f"{source or 'transactions'}: column 'timestamp' has type {ts_dtype}, not a datetime. "
                        "Fix: read the data with read_transactions(...), which parses timestamps.")
    if ts_dtype != TS_DTYPE:
        ts = pl.col("timestamp").cast(pl.Datetime("us", ts_dtype.time_zone))
        ts = ts.dt.convert_time_zone("UTC") if ts_dtype.time_zone else ts.dt.replace_time_zone("UTC")
        lf = lf.with_columns(ts.alias("timestamp"))
    return lf, lf.collect_schema().names()


def _policy(policy: QualityPolicy | Mapping | None) -> QualityPolicy:
    if policy is None:
        return QualityPolicy()
    return policy if isinstance(policy, QualityPolicy) else QualityPolicy.from_config(policy)


def clean_transactions(
    lf: pl.LazyFrame | pl.DataFrame,
    as_of: str | dt.date | dt.datetime | None = None,
    policy: QualityPolicy | Mapping | None = None,
    source: str | None = None,
) -> tuple[pl.DataFrame, DataQualityReport]:
    """Apply the quality rules; return the clean canonical frame and the report.

    The clean frame has the canonical columns, the extra source columns, ``is_return`` (and
    ``is_cancellation`` / ``is_outlier`` when present); helper columns are dropped. For a log too
    large to hold, :func:`clean_transactions_to` gives the same rows and report, customer partition
    by customer partition, into a folder.

    >>> raw = pl.DataFrame({"customer_id": ["a", None], "timestamp": [dt.datetime(2024, 1, 1)] * 2,
    ...                     "amount": [5.0, 3.0]}).with_columns(pl.col("timestamp").dt.replace_time_zone("UTC"))
    >>> clean, rep = clean_transactions(raw)
    >>> clean.height, rep["null_customer"].excluded
    (1, 1)
    """
    policy, as_of_dt = _policy(policy), parse_as_of(as_of)
    lf, columns = _prepare(lf, source)
    where = source or "transactions"
    id_dtype = lf.collect_schema()["customer_id"]
    part = _clean_part(lf.with_row_index(_ROW), columns + [_ROW], id_dtype, as_of_dt, policy, where, source, True)
    report, outliers = _merge_parts([part], columns, as_of, as_of_dt, policy, where, source)
    out = _finish(part.out, outliers, policy)
    _validate_schema(out, where)
    return out, report


def clean_transactions_to(
    lf: pl.LazyFrame,
    folder: str | Path,
    as_of: str | dt.date | dt.datetime | None = None,
    policy: QualityPolicy | Mapping | None = None,
    source: str | None = None,
    partitions: int = 2,
) -> DataQualityReport:
    """:func:`clean_transactions` out of core: the clean rows written to ``folder/part-NNNN.parquet``,
    one file per customer partition, the log never held whole; returns the report.

    The log is split once (a streaming pass) into ``partitions`` parts by a hash of the customer id, so
    every rule sees all of a customer's rows in one part; each part is then cleaned alone, and the
    log-level parts of the report (the outlier quantile, the inferred ``as_of``, the first examples) are
    computed over all of them. Rows, report and the feature table equal the in-memory path's (tested);
    the clean rows come part by part, in source order within a part.

    >>> report = clean_transactions_to(read_transactions("big.parquet"), "work/tx", partitions=25)  # doctest: +SKIP
    """
    import shutil
    import tempfile

    policy, as_of_dt = _policy(policy), parse_as_of(as_of)
    lf, columns = _prepare(lf, source)
    where = source or "transactions"
    id_dtype = lf.collect_schema()["customer_id"]
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    split = Path(tempfile.mkdtemp(prefix="split_", dir=folder.parent))
    try:
        key = (pl.col("customer_id").hash(seed=7) % partitions).alias("_part")
        try:  # (temporary files: the fast lz4, not the default zstd)
            lf.with_row_index(_ROW).sink_parquet(pl.PartitionBy(split, key=key, include_key=False), mkdir=True,
                                                 compression="lz4")
        except pl.exceptions.PolarsError as err:
            raise DataError(polars_error_message(err, source or "the transaction data")) from None
        parts: list[_Part] = []
        for i in range(partitions):
            files = sorted(split.glob(f"_part={i}/*.parquet"))
            if not files:
                continue
            rows = pl.scan_parquet(files).sort(_ROW)  # back to source order (the sink's order is not promised)
            p = _clean_part(rows, columns + [_ROW], id_dtype, as_of_dt, policy, where, source, not parts)
            p.out.drop(_ROW).write_parquet(folder / f"part-{len(parts):04d}.parquet", compression="lz4")
            p.out = p.out.head(0)  # the rows are on disk; the schema stays
            parts.append(p)
            for f in files:
                f.unlink()
    finally:
        shutil.rmtree(split, ignore_errors=True)
    if not parts:
        raise DataError(no_rows_message(where, 0, []))
    report, outliers = _merge_parts(parts, columns, as_of, as_of_dt, policy, where, source)
    _validate_schema(_finish(parts[0].out, outliers, policy), where)
    if policy.outliers == "flag" or (policy.outliers == "exclude" and outliers.height):
        for i in range(len(parts)):  # the customer-level rule needs every part's customers: a second pass
            path = folder / f"part-{i:04d}.parquet"
            _finish(pl.read_parquet(path), outliers, policy).write_parquet(path, compression="lz4")
    return report


#: what to check when a rule excluded every row
_NO_ROWS_FIX = {
    "null_customer": "map data.columns.customer_id to the customer column",
    "bad_timestamp": "map data.columns.timestamp to the date column and set data.date_format to its format",
    "implausible_timestamp": "set data.date_format to the dates' format (two-digit years need %y)",
    "non_numeric_amount": "map data.columns.amount (or quantity and unit_price) to numeric columns",
    "future": "set run.as_of after the last transaction (rows at or after it are dropped), or null",
    "duplicates": "check the file: every row repeats another",
    "zero_amount": "map data.columns.amount to the sale amount (every amount is zero)",
    "returns": "set quality.returns: net (return rows are kept and netted)",
}


def no_rows_message(where: str, rows_in: int, results: list[RuleResult]) -> str:
    """The error when nothing is left: the rules that excluded the rows, and the fix of each.

    >>> no_rows_message("t.csv", 3, [RuleResult("future", 3, 3, 1, "dropped")])
    't.csv: no rows are left after the quality checks (3 rows in; excluded by future: 3). Fix: set run.as_of after the last transaction (rows at or after it are dropped), or null.'
    """
    hit = sorted((r for r in results if r.excluded and r.rule in _NO_ROWS_FIX), key=lambda r: -r.excluded)
    top = ", ".join(f"{r.rule}: {r.excluded:,}" for r in hit) or "nothing"
    fixes = "; ".join(_NO_ROWS_FIX[r.rule] for r in hit[:3]) or "check the column mapping and data.date_format"
    return f"{where}: no rows are left after the quality checks ({rows_in:,} rows in; excluded by {top}). Fix: {fixes}."


def _mixed_zones(parts: list[_Part], columns: list[str]) -> RuleResult:
    """Kept rows whose UTC offset differs from the most common one (naive values count as one zone)."""
    action = "converted to UTC (kept)"
    found = [p for p in parts if p.zones is not None]
    if not found:
        return RuleResult("mixed_time_zones", 0, 0, 0, action, pl.DataFrame(), "no UTC offsets in the data")
    zones = (pl.concat([p.zones for p in found]).group_by("_zone").agg(pl.col("len").sum())
             .sort(["len", "_zone"], descending=[True, False]))
    main = zones["_zone"][0]
    if zones.height == 1:
        return RuleResult("mixed_time_zones", 0, 0, 0, action, pl.DataFrame(), f"single zone {main}")
    other = pl.col("_zone") != main
    rows = int(zones.filter(other)["len"].sum())
    customers = sum(p.zone_pairs.filter(other)["customer_id"].n_unique() for p in found)
    examples = _first_rows([p.zone_examples.filter(other).select(_example_cols(columns, "mixed_time_zones") + [_ROW])
                            for p in found])
    listing = ", ".join(f"{z}: {n:,}" for z, n in zones.head(6).iter_rows())
    return RuleResult("mixed_time_zones", rows, 0, customers, action, _rename_raw(examples),
                      f"{zones.height} zones (rows: {listing})")


def _no_outliers(id_dtype: pl.DataType = pl.String) -> pl.DataFrame:
    return pl.DataFrame(schema={"customer_id": id_dtype, "rows": pl.Int64, "net_spend": pl.Float64})


def _outliers(kept_cust: pl.DataFrame, policy: QualityPolicy) -> tuple[RuleResult, pl.DataFrame]:
    """The outlier rule and every outlier customer (customer_id, rows kept, net_spend; largest first).

    Outliers: net spend of the kept rows above the linear ``outlier_quantile`` of all kept customers.
    Under ``exclude`` the rule's ``excluded`` is their kept rows (so the row invariant holds).

    >>> cust = pl.DataFrame({"customer_id": ["a", "b", "c"], "kept_rows": [1, 1, 2], "net": [1.0, 2.0, 90.0]})
    >>> _outliers(cust, QualityPolicy(outlier_quantile=0.5))[1]["customer_id"].to_list()
    ['c']
    """
    action = policy.action("outliers")
    if kept_cust.height == 0:
        return RuleResult("outliers", 0, 0, 0, action), _no_outliers(kept_cust.schema["customer_id"])
    threshold = kept_cust["net"].quantile(policy.outlier_quantile, interpolation="linear")
    top = (kept_cust.filter(pl.col("net") > threshold).sort(["net", "customer_id"], descending=[True, False])
           .select("customer_id", pl.col("kept_rows").cast(pl.Int64).alias("rows"),
                   pl.col("net").cast(pl.Float64).alias("net_spend")))
    rows = int(top["rows"].sum())
    return (RuleResult("outliers", rows, rows if policy.outliers == "exclude" else 0, top.height, action, top.head(5),
                       f"net spend > {threshold:,.2f} (quantile {policy.outlier_quantile})"),
            top)


def outlier_note(action: str, n: int, rule: RuleResult) -> str:
    """The data-quality note for ``n`` outlier customers under ``quality.outliers: exclude | flag`` (both engines).

    >>> outlier_note("flag", 3, RuleResult("outliers", 3, 0, 3, "flag", pl.DataFrame(), "spend above 1,000"))[:40]
    '3 outlier customer(s) (spend above 1,000'
    """
    if action == "exclude":
        return (f"{n:,} outlier customer(s) ({rule.details}) were excluded with all their {rule.excluded:,} kept "
                f"row(s) (quality.outliers: exclude); they are listed among the dropped customers with reason "
                f"'{OUTLIER_REASON}'.")
    return (f"{n:,} outlier customer(s) ({rule.details}) are flagged is_outlier (quality.outliers: flag): kept in "
            "every table, left out of fitting the clusters, and assigned a segment by the fitted model.")


def _with_outliers_dropped(dropped: pl.DataFrame, cust: pl.DataFrame, outliers: pl.DataFrame) -> pl.DataFrame:
    """``dropped`` plus the excluded outlier customers (all their rows, reason ``outliers``), by customer id."""
    extra = (cust.join(outliers.select("customer_id"), on="customer_id", how="semi")
             .select("customer_id", pl.col("n_rows").cast(dropped.schema["n_rows"]), pl.lit(OUTLIER_REASON).alias("reason")))
    return pl.concat([dropped, extra.select(dropped.columns)]).sort("customer_id")


def _schema():
    import pandera.polars as pa

    return pa.DataFrameSchema(
        {
            "customer_id": pa.Column(None, nullable=False),  # String or integer: checked in _validate_schema
            "timestamp": pa.Column(TS_DTYPE, nullable=False),
            "amount": pa.Column(pl.Float64, nullable=False),
            "order_id": pa.Column(None, required=False),
            "product_id": pa.Column(None, required=False),
            "quantity": pa.Column(pl.Float64, required=False),
            "unit_price": pa.Column(pl.Float64, required=False),
            "is_return": pa.Column(pl.Boolean),
        },
        strict=False,
        name="canonical_transactions",
    )


CLEAN_SCHEMA = None  # built lazily (importing pandera costs ~0.5 s)


def _validate_schema(df: pl.DataFrame, where: str) -> None:
    """Schema (names and dtypes) check of the clean frame with pandera; failures -> DataError."""
    global CLEAN_SCHEMA
    import pandera.errors

    if CLEAN_SCHEMA is None:
        CLEAN_SCHEMA = _schema()
    for col in ("customer_id", "order_id", "product_id"):
        dtype = df.schema.get(col)
        if dtype is not None and not (dtype == pl.String or dtype.is_integer()):
            raise DataError(f"{where}: the cleaned data does not match the canonical schema (column '{col}' has "
                            f"type {dtype}, expected text or integers). Fix: map data.columns.{col} to an id column.")
    try:
        CLEAN_SCHEMA.validate(df.lazy())  # LazyFrame: schema-level checks only (cheap)
    except (pandera.errors.SchemaError, pandera.errors.SchemaErrors) as err:
        raise DataError(f"{where}: the cleaned data does not match the canonical schema ({str(err).splitlines()[0]}). "
                        "Fix: map the columns to the right source columns (see docs/architecture.md).") from None


def load_transactions(config: Mapping) -> tuple[pl.DataFrame, DataQualityReport]:
    """Read and clean the transactions named by a run configuration (``data``, ``quality``, ``run.as_of``).

    >>> clean, report = load_transactions(load_config("configs/default.yaml"))  # doctest: +SKIP
    """
    lf = read_configured(config)
    policy = QualityPolicy.from_config(config.get("quality"))
    as_of = (config.get("run") or {}).get("as_of")
    return clean_transactions(lf, as_of=as_of, policy=policy, source=str(config["data"]["path"]))


def transaction_partitions(lf: pl.LazyFrame, rows_per_partition: int = PARTITION_ROWS) -> int:
    """Customer partitions for cleaning the log out of core: one per ``rows_per_partition`` rows (1 = in memory).
    Counting is free for Parquet (the metadata); a CSV is scanned once.

    >>> transaction_partitions(pl.LazyFrame({"customer_id": ["a"] * 5}), rows_per_partition=2)
    3
    """
    try:
        rows = int(lf.select(pl.len()).collect().item())
    except pl.exceptions.PolarsError:
        return 1  # unreadable: the in-memory path names the problem
    return max(1, -(-rows // int(rows_per_partition)))


def read_configured(config: Mapping) -> pl.LazyFrame:
    """The raw canonical LazyFrame of the transactions a run configuration names (``data`` section), unchecked.

    >>> lf = read_configured(load_config("configs/default.yaml"))  # doctest: +SKIP
    """
    data = dict(config.get("data") or {})
    path = data.get("path")
    if not path:
        raise ConfigError("data.path is not set. Fix: set data.path to a CSV/Parquet file, directory or glob.")
    columns = data.get("columns")
    preset = data.get("preset")
    if preset and columns:
        # with a preset only entries that differ from the default identity mapping override it
        columns = {k: v for k, v in columns.items() if v != k}
    return read_transactions(path, columns=columns, date_format=data.get("date_format"),
                             timezone=data.get("timezone") or "UTC", preset=preset,
                             encoding=data.get("encoding") or "utf8", sheet=data.get("sheet"),
                             decimal=data.get("decimal") or ".", thousands=data.get("thousands"),
                             timestamp_unit=data.get("timestamp_unit"))


def _fmt_example(v: object) -> str:
    """An example value in a message: floats with two decimals, integers with separators."""
    if isinstance(v, float):
        return fmt_number(v, 2, large=None, trim=False)
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)

