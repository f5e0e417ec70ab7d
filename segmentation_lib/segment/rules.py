"""Rule-based segments from configuration: ordered rules, first match wins, an explicit default.

A rule is ``{name: Gold, when: "total_spend >= 1000"}``. Conditions are small SQL-style
expressions on the table's columns, parsed by polars' SQL expression parser (``pl.sql_expr``):
comparisons (``>= > <= < == = != <>``), ``and`` / ``or`` / ``not``, parentheses, ``in (...)``,
``between``, ``is null``, string literals in single quotes. Nothing is evaluated as Python.

>>> import polars as pl
>>> t = pl.DataFrame({"total_spend": [6000.0, 1500.0, 50.0], "plan": ["basic", "premium", "basic"]})
>>> cfg = {"segment_col": "tier", "default": "Bronze", "rules": [
...     {"name": "Platinum", "when": "total_spend >= 5000"},
...     {"name": "Gold", "when": "total_spend >= 1000 or plan == 'premium'"}]}
>>> assign_rule_segments(t, cfg)["tier"].to_list()
['Platinum', 'Gold', 'Bronze']
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import polars as pl

from segmentation_lib.errors import ConfigError, DataError


__all__ = ["Rule", "RuleValidation", "parse_rules", "rule_expr", "check_rules", "validate_rules", "assign_rule_segments"]


@dataclass(frozen=True)
class Rule:
    """One rule: the segment ``name`` given to rows where ``when`` holds (and no earlier rule did)."""

    name: str
    when: str


@dataclass
class RuleValidation:
    """What :func:`validate_rules` found on a table.

    ``matches``: rows each rule's condition is true for; ``assigned``: rows it wins (first match);
    ``never_match``: rules true for no row; ``shadowed``: rules true for some rows but always after
    an earlier rule matched; ``default_rows``: rows left to the default.
    """

    matches: dict[str, int] = field(default_factory=dict)
    assigned: dict[str, int] = field(default_factory=dict)
    never_match: list[str] = field(default_factory=list)
    shadowed: list[str] = field(default_factory=list)
    default_rows: int = 0

    @property
    def ok(self) -> bool:
        return not (self.never_match or self.shadowed)


def _config_parts(rules_config: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> tuple[list[Rule], str, str]:
    if isinstance(rules_config, Mapping):
        raw = rules_config.get("rules")
        default = rules_config.get("default")
        segment_col = rules_config.get("segment_col") or "segment"
    else:
        raw, default, segment_col = rules_config, None, "segment"
    if default is None or str(default).strip() == "":
        raise ConfigError(
            "rules: no 'default' segment. Fix: set rules.default to the name for customers no rule matches "
            "(for example 'default: Bronze')."
        )
    return parse_rules(raw), str(default), str(segment_col)


def parse_rules(raw: Any) -> list[Rule]:
    """Check the ``rules`` list of the configuration and return :class:`Rule` objects."""
    if not isinstance(raw, (list, tuple)) or not raw:
        raise ConfigError(
            "rules.rules must be a non-empty list of {name: ..., when: ...}. Fix: e.g. "
            "'- {name: Gold, when: \"total_spend >= 1000\"}'."
        )
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not item.get("name") or not isinstance(item.get("when"), str):
            raise ConfigError(
                f"rules.rules[{i}] = {item!r} needs a 'name' and a 'when' condition (a string). "
                "Fix: write it as {name: Gold, when: \"total_spend >= 1000\"}."
            )
        name = str(item["name"])
        if name in seen:
            raise ConfigError(f"rules.rules[{i}]: segment '{name}' is used by two rules. Fix: combine them with 'or'.")
        seen.add(name)
        rules.append(Rule(name, item["when"].strip()))
    return rules


def rule_expr(rule: Rule, columns: Sequence[str] | None = None) -> pl.Expr:
    """The rule's condition as a boolean polars expression (nulls count as false).

    Raises :class:`ConfigError` naming the rule when the condition does not parse or, if
    ``columns`` is given, uses a column that is not among them.
    """
    try:
        expr = pl.sql_expr(rule.when)
        names = expr.meta.root_names()
    except Exception as exc:  # polars raises several error types for bad SQL
        raise ConfigError(
            f"rule '{rule.name}': condition {rule.when!r} cannot be parsed ({str(exc).splitlines()[0]}). "
            "Fix: write a comparison such as \"total_spend >= 1000\" or \"plan == 'premium' and n_orders > 3\"."
        ) from None
    if columns is not None:
        unknown = [n for n in names if n not in columns]
        if unknown:
            raise ConfigError(
                f"rule '{rule.name}': condition {rule.when!r} uses unknown column(s) {unknown}. "
                f"Available columns: {', '.join(columns)}. Fix: correct the column name in rules.rules."
            )
    return expr.fill_null(False)


def check_rules(rules_config: Mapping[str, Any]) -> list[Rule]:
    """The rules of a configuration checked without data: a default, names, conditions that parse
    (ConfigError naming the rule otherwise). Which rules match or are shadowed needs the customers:
    :func:`validate_rules`. Used before a run starts.

    >>> [r.name for r in check_rules({"default": "Bronze", "rules": [{"name": "Gold", "when": "total_spend >= 1000"}]})]
    ['Gold']
    """
    rules, _, _ = _config_parts(rules_config)
    for r in rules:
        rule_expr(r)
    return rules


def validate_rules(
    rules: Mapping[str, Any] | Sequence[Mapping[str, Any]] | Sequence[Rule],
    table: pl.DataFrame | pl.LazyFrame,
    warn: bool = True,
) -> RuleValidation:
    """Check rules against a table: unknown columns raise; rules that never win are reported.

    A rule that matches no row, or whose rows were all taken by earlier rules (shadowed), gets a
    ``UserWarning`` (when ``warn``) and is listed in the result.

    >>> import polars as pl
    >>> t = pl.DataFrame({"total_spend": [50.0, 2000.0, 9000.0]})
    >>> v = validate_rules([{"name": "Gold", "when": "total_spend >= 1000"},
    ...                     {"name": "Platinum", "when": "total_spend >= 5000"}], t, warn=False)
    >>> v.shadowed
    ['Platinum']
    """
    if rules and all(isinstance(r, Rule) for r in rules):  # type: ignore[union-attr]
        parsed = list(rules)  # type: ignore[arg-type]
    elif isinstance(rules, Mapping):
        parsed = parse_rules(rules.get("rules"))
    else:
        parsed = parse_rules(rules)
    schema = table.collect_schema() if isinstance(table, pl.LazyFrame) else table.schema
    columns = list(schema)
    exprs = [rule_expr(r, columns) for r in parsed]
    taken = pl.lit(False)
    counts = []
    for i, e in enumerate(exprs):
        counts.append(e.sum().alias(f"m{i}"))
        counts.append((e & ~taken).sum().alias(f"a{i}"))
        taken = taken | e
    counts.append((~taken).sum().alias("rest"))
    try:
        row = table.select(counts)
        row = (row.collect() if isinstance(row, pl.LazyFrame) else row).row(0, named=True)
    except pl.exceptions.PolarsError as exc:
        raise ConfigError(
            f"rules: a condition cannot be evaluated on the table ({str(exc).splitlines()[0]}). "
            "Fix: compare columns with values of the same type (numbers unquoted, text in single quotes)."
        ) from None
    out = RuleValidation(default_rows=int(row["rest"]))
    for i, r in enumerate(parsed):
        out.matches[r.name] = int(row[f"m{i}"])
        out.assigned[r.name] = int(row[f"a{i}"])
        if out.matches[r.name] == 0:
            out.never_match.append(r.name)
        elif out.assigned[r.name] == 0:
            out.shadowed.append(r.name)
    if warn:
        for name in out.never_match:
            warnings.warn(f"rule '{name}' matches no customer in this table.", UserWarning, stacklevel=2)
        for name in out.shadowed:
            warnings.warn(
                f"rule '{name}' never wins: every customer it matches is taken by an earlier rule "
                "(first match wins). Fix: move it before the broader rule or narrow the earlier one.",
                UserWarning,
                stacklevel=2,
            )
    return out


def assign_rule_segments(
    features: pl.DataFrame | pl.LazyFrame,
    rules_config: Mapping[str, Any],
    validate: bool = True,
) -> pl.DataFrame | pl.LazyFrame:
    """Add the segment column (``rules_config["segment_col"]``, default ``segment``) by ordered rules.

    ``rules_config`` has ``rules`` (ordered list of ``{name, when}``), ``default`` (required) and
    optionally ``segment_col``. The first rule whose condition is true wins; rows matching none
    get ``default``. With ``validate`` (DataFrame input) :func:`validate_rules` runs first, so
    unknown columns raise and unreachable rules warn.
    """
    rules, default, segment_col = _config_parts(rules_config)
    schema = features.collect_schema() if isinstance(features, pl.LazyFrame) else features.schema
    if not isinstance(features, (pl.DataFrame, pl.LazyFrame)):
        raise DataError("assign_rule_segments: expected a polars DataFrame or LazyFrame of customer features.")
    columns = list(schema)
    if validate and isinstance(features, pl.DataFrame):
        validate_rules(rules, features)
    chain: Any = None
    for r in rules:
        cond = rule_expr(r, columns)
        chain = pl.when(cond).then(pl.lit(r.name)) if chain is None else chain.when(cond).then(pl.lit(r.name))
    return features.with_columns(chain.otherwise(pl.lit(default)).alias(segment_col))
