"""Purchase-mix features per customer: category affinity and discount sensitivity (docs/features.md).

Computed from the *purchase lines* (rows with ``amount > 0``, ``timestamp < as_of``, a customer id);
returns are not attributed to categories or discounts.

Category affinity, when the log has a ``category`` column (``data.columns.category``) or a product
-> category table is given (``data.products``; the log's category first, the table's where it is
null): the categories are ranked by their total purchase spend over all customers (ties: text
order of the name); the first ``top`` get a ``spend_share_<slug>`` column each (the customer's
spend in that category / their purchase spend), the rest share ``spend_share_other`` and lines
without a category ``spend_share_unknown`` (the shares of a buyer sum to 1). ``n_categories`` is
the number of distinct categories bought; ``dominant_category`` the category with the largest
spend (money compared at ``MONEY_DECIMALS``; a tie goes to the name first in text order; null
without a categorised line).

Discount sensitivity, when a ``discount`` (money off per line) or a ``list_price`` (undiscounted
unit price) column is mapped: a line is *on discount* when its discount is > 0 or its list price is
above the paid unit price (``unit_price``, else ``amount / quantity``, else ``amount``);
``share_orders_on_discount`` = orders (``features.common.order_key``) with a line on discount /
orders, ``share_spend_on_discount`` = spend of lines on discount / purchase spend.

Never dropped silently: lines whose product is missing from the product table, without a
product id, with a null category, a negative or null discount, a null list price or a list price
below the paid price are counted in the report (such lines count as uncategorised / not on
discount). Customers without a purchase line get 0 in every share and count.

>>> import datetime as dt
>>> t = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
>>> tx = pl.DataFrame({"customer_id": ["a", "a", "b"], "timestamp": [t, t, t], "order_id": ["1", "1", "2"],
...     "amount": [30.0, 10.0, 5.0], "category": ["Books", "Toys", "Toys"], "discount": [0.0, 2.0, 0.0]})
>>> f, report = purchase_mix_features(tx, "2024-02-01", top=1)
>>> f.rows()
[('a', 0.75, 0.25, 0.0, 2, 'Books', 1.0, 0.25), ('b', 0.0, 1.0, 0.0, 1, 'Toys', 0.0, 0.0)]
>>> f.columns[1:4]
['spend_share_books', 'spend_share_other', 'spend_share_unknown']
"""
from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from segmentation_lib.data.quality import parse_as_of
from segmentation_lib.data.read import MIX_COLUMNS, ids_like, unique_products
from segmentation_lib.errors import ConfigError, DataError
from segmentation_lib.features.common import MONEY_DECIMALS, as_lazy, order_key, require_columns, rounded_money
from segmentation_lib.features.usage import feature_column

#: default number of categories with their own share column (``features.categories.top``)
TOP_CATEGORIES = 5
OTHER, UNKNOWN = "other", "unknown"
SHARE_PREFIX = "spend_share_"
DISCOUNT_COLUMNS = ("share_orders_on_discount", "share_spend_on_discount")


def category_slug(name: str) -> str:
    """A category name as a column-name part: lower-case ASCII letters, digits and ``_``
    (accents dropped); ``""`` when nothing is left.

    >>> category_slug("Home & Garden"), category_slug("Électronique"), category_slug("???")
    ('home_garden', 'electronique', '')
    """
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    return feature_column(ascii_name) if any(ch.isalnum() for ch in ascii_name) else ""


def share_columns(categories: Sequence[str]) -> dict[str, str]:
    """Column name -> category for the top categories in rank order: ``spend_share_<slug>``; a slug
    that is empty, ``other``, ``unknown`` or already taken gets ``_2``, ``_3``, ... (an empty slug
    is ``category``), so every column is a safe, distinct name.

    >>> share_columns(["Books", "books!", "Other", "?"])
    {'spend_share_books': 'Books', 'spend_share_books_2': 'books!', 'spend_share_other_2': 'Other', 'spend_share_category': '?'}
    """
    taken = {OTHER, UNKNOWN}
    out: dict[str, str] = {}
    for name in categories:
        base = category_slug(name) or "category"
        slug, n = base, 1
        while slug in taken:
            n += 1
            slug = f"{base}_{n}"
        taken.add(slug)
        out[SHARE_PREFIX + slug] = name
    return out


def _paid_unit_price(schema: Mapping[str, pl.DataType]) -> pl.Expr:
    """The unit price paid: ``unit_price``, else ``amount / quantity`` (quantity > 0), else ``amount``."""
    amount = pl.col("amount").cast(pl.Float64)
    if "unit_price" in schema:
        return pl.col("unit_price").cast(pl.Float64)
    if "quantity" in schema:
        q = pl.col("quantity").cast(pl.Float64)
        return pl.when(q > 0).then(amount / q)
    return amount


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    return pl.when(whole > 0).then(part / whole).otherwise(0.0)


def purchase_mix_features(
    transactions: pl.DataFrame | pl.LazyFrame,
    as_of: str | dt.date | dt.datetime,
    products: pl.DataFrame | None = None,
    top: int = TOP_CATEGORIES,
    columns: Sequence[str] | None = None,
    categories: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Per customer with a purchase line (sorted by id): the category and discount columns of the
    module doc, and the report of what was counted. ``columns``: which of ``category``,
    ``discount``, ``list_price`` of the log to use (default: those present); ``products``: a
    ``product_id`` / ``category`` table (needs ``product_id`` in the log); ``categories``: the
    categories with a column of their own, in this order, instead of the ``top`` by spend (the same
    columns in every run, e.g. for scoring with a saved model; a name the data lacks gets zeros).
    Raises ConfigError when neither category nor discount data is given.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ConfigError(f"purchase_mix_features: top={top!r} must be a whole number >= 1. "
                          "Fix: set features.categories.top to e.g. 5.")
    lf = as_lazy(transactions)
    schema = require_columns(lf, ["customer_id", "timestamp", "amount"], "purchase_mix_features")
    use = [c for c in MIX_COLUMNS if c in schema] if columns is None else list(columns)
    missing = [c for c in use if c not in schema]
    if missing or any(c not in MIX_COLUMNS for c in use):
        raise DataError(f"purchase_mix_features: column(s) {missing or use} not found among the purchase-mix "
                        f"columns of the transaction frame (it has {list(schema)}). Fix: map them with "
                        "data.columns.category / discount / list_price (on the polars engine).")
    if products is not None and "product_id" not in schema:
        raise DataError("purchase_mix_features: a product table (data.products) is given but the transaction log has "
                        "no product_id column. Fix: map data.columns.product_id to the log's product column, or map "
                        "data.columns.category to a category column of the log instead of data.products.")
    has_cat = "category" in use or products is not None
    has_disc = "discount" in use or "list_price" in use
    if not (has_cat or has_disc):
        raise ConfigError("purchase_mix_features: no category, discount or list price data. Fix: map "
                          "data.columns.category, data.columns.discount or data.columns.list_price, or set data.products.")
    when = parse_as_of(as_of)
    c = pl.col
    amount = c("amount").cast(pl.Float64)
    lines = lf.filter(c("timestamp") < when, c("customer_id").is_not_null(), amount > 0)
    report: dict[str, Any] = {}
    sel: list[pl.Expr] = [c("customer_id"), amount.alias("_amt")]
    flags: dict[str, pl.Expr] = {}  # report count -> the lines it counts (summed inside the group-bys below)

    if has_cat:
        cat = (c("category").cast(pl.String) if "category" in use else pl.lit(None, dtype=pl.String))
        if products is not None:
            table, product_report = unique_products(products)
            report["product_table"] = product_report
            pid_dtype = schema["product_id"]
            table = ids_like(table, "product_id", pid_dtype)
            key = c("product_id")
            if table.schema["product_id"] != pid_dtype:  # ids of two kinds: compared as text
                key = c("product_id").cast(pl.String).str.strip_chars()
                table = table.with_columns(c("product_id").cast(pl.String))
            table = table.select(c("product_id").alias("_pid"), c("category").alias("_pcat"), pl.lit(True).alias("_listed"))
            lines = lines.with_columns(key.alias("_pid")).join(table.lazy(), on="_pid", how="left")
            cat = pl.coalesce(cat, c("_pcat"))
            no_cat = cat.is_null()
            flags.update(product_id_null=no_cat & c("_pid").is_null(),
                         product_not_in_table=no_cat & c("_pid").is_not_null() & c("_listed").is_null(),
                         null_category=no_cat & c("_listed").fill_null(False))
        else:
            flags["null_category"] = cat.is_null()
        sel.append(cat.alias("_cat"))
    cat_flags = list(flags)

    if has_disc:
        on_discount = pl.lit(False)
        if "discount" in use:
            d = c("discount").cast(pl.Float64)
            on_discount = on_discount | (d > 0).fill_null(False)
            flags.update(negative_discount=d < 0, null_discount=d.is_null())
        if "list_price" in use:
            gap = (c("list_price").cast(pl.Float64) - _paid_unit_price(schema)).round(MONEY_DECIMALS)
            on_discount = on_discount | (gap > 0).fill_null(False)
            flags.update(list_price_below_paid=gap < 0, null_list_price=c("list_price").is_null())
        flags["lines_on_discount"] = on_discount
        sel += [order_key(schema).struct.field("order").alias("_order"), on_discount.alias("_disc")]
    disc_flags = [k for k in flags if k not in cat_flags]

    sel += [e.fill_null(False).cast(pl.UInt32).alias(f"_f_{k}") for k, e in flags.items()]
    projected = lines.select(sel)
    sums = lambda keys: [c(f"_f_{k}").sum() for k in keys]  # noqa: E731
    plans = []
    if has_cat:  # spend per (customer, category): the shares, counts and dominant category come from it
        plans.append(projected.group_by("customer_id", "_cat").agg(
            rounded_money(c("_amt").sum()).alias("_spend"), pl.len().alias("_n"), *sums(cat_flags)))
    if has_disc:  # per (customer, order) first, then per customer: orders are counted without n_unique
        disc_amt = pl.when(c("_disc")).then(c("_amt")).otherwise(0.0)
        plans.append(
            projected.group_by("customer_id", "_order").agg(
                c("_amt").sum().alias("_gross"), disc_amt.sum().alias("_dspend"), c("_disc").any().alias("_d"),
                pl.len().alias("_n"), *sums(disc_flags))
            .group_by("customer_id").agg(
                c("_gross").sum(), c("_dspend").sum(), c("_order").is_not_null().sum().alias("_orders"),
                (c("_d") & c("_order").is_not_null()).sum().alias("_dorders"), c("_n").sum(),
                *[c(f"_f_{k}").sum() for k in disc_flags]))
    collected = pl.collect_all(plans, engine="streaming")
    totals = {k: int(t[f"_f_{k}"].sum()) for t, keys in zip(collected, ([cat_flags] if has_cat else []) + [disc_flags])
              for k in keys}
    report["purchase_lines"] = int(collected[0]["_n"].sum())
    tables: list[pl.DataFrame] = []
    columns_out: list[str] = ["customer_id"]

    if has_cat:
        per_cat = collected[0]
        ranked = (per_cat.filter(c("_cat").is_not_null()).group_by("_cat").agg(rounded_money(c("_spend").sum()).alias("spend"))
                  .sort(["spend", "_cat"], descending=[True, False]))
        chosen = ranked["_cat"].head(top).to_list() if categories is None else [str(x) for x in categories]
        if len(set(chosen)) != len(chosen) or not chosen:
            raise ConfigError(f"purchase_mix_features: categories={list(chosen)} must name each category once. "
                              "Fix: list distinct names in features.categories.names (or set it to null).")
        names = share_columns(chosen)
        in_top = c("_cat").is_in(pl.Series(list(names.values()), dtype=pl.String).implode())
        spend = c("_spend")
        known = c("_cat").is_not_null()
        # plain sums of per-row spend columns (fast group-by kernels; no filters inside the groups)
        wide = per_cat.lazy().select(
            "customer_id", spend.alias("_total"),
            *[pl.when(c("_cat") == name).then(spend).otherwise(0.0).alias(col) for col, name in names.items()],
            pl.when(known & ~in_top).then(spend).otherwise(0.0).alias(SHARE_PREFIX + OTHER),
            pl.when(known).then(0.0).otherwise(spend).alias(SHARE_PREFIX + UNKNOWN),
            known.cast(pl.Int64).alias("n_categories"),
        ).group_by("customer_id").agg(pl.all().sum())
        money = ["_total", *names, SHARE_PREFIX + OTHER, SHARE_PREFIX + UNKNOWN]  # rounded: the same bits every run
        wide = wide.with_columns(rounded_money(c(n)).alias(n) for n in money)
        # the dominant category: the largest (rounded) spend, the first name in text order among equals
        bought = per_cat.lazy().filter(known)
        dominant = (bought.join(bought.group_by("customer_id").agg(spend.max().alias("_max")), on="customer_id")
                    .filter(spend == c("_max")).group_by("customer_id").agg(c("_cat").min().alias("dominant_category")))
        cat_table = wide.join(dominant, on="customer_id", how="left").collect()
        shares = [*names, SHARE_PREFIX + OTHER, SHARE_PREFIX + UNKNOWN]
        tables.append(cat_table.with_columns(_share(c(n), c("_total")).alias(n) for n in shares).drop("_total"))
        columns_out += [*shares, "n_categories", "dominant_category"]
        grand = float(ranked["spend"].sum()) + 0.0
        spend_of = dict(ranked.iter_rows())
        all_spend = float(per_cat["_spend"].sum())
        report["categories"] = {
            "source": ("data.columns.category and data.products" if "category" in use and products is not None
                       else "data.columns.category" if "category" in use else "data.products"),
            "distinct": ranked.height,
            "top": [{"category": name, "column": col, "spend": float(spend_of.get(name, 0.0)),
                     "share": float(spend_of.get(name, 0.0)) / all_spend if all_spend else 0.0}
                    for col, name in names.items()],
            "chosen_by": "features.categories.top" if categories is None else "features.categories.names",
            "other_column": SHARE_PREFIX + OTHER, "unknown_column": SHARE_PREFIX + UNKNOWN,
            "uncategorised_spend": round(all_spend - grand, MONEY_DECIMALS),
            "lines_without_category": int(sum(totals.get(k, 0) for k in ("null_category", "product_not_in_table", "product_id_null"))),
            **{k: int(totals[k]) for k in ("null_category", "product_not_in_table", "product_id_null") if k in totals},
        }

    if has_disc:
        disc = collected[-1].select(
            "customer_id",
            _share(c("_dorders"), c("_orders")).alias(DISCOUNT_COLUMNS[0]),
            _share(rounded_money(c("_dspend")), rounded_money(c("_gross"))).alias(DISCOUNT_COLUMNS[1]),
        )
        tables.append(disc)
        columns_out += list(DISCOUNT_COLUMNS)
        report["discount"] = {"columns": [k for k in ("discount", "list_price") if k in use],
                              **{k: int(totals[k]) for k in ("lines_on_discount", "negative_discount", "null_discount",
                                                             "list_price_below_paid", "null_list_price") if k in totals}}

    out = tables[0]
    for t in tables[1:]:
        out = out.join(t, on="customer_id", how="full", coalesce=True)
    out = out.select(columns_out).sort("customer_id")
    report["customers"] = out.height
    report["columns"] = columns_out[1:]
    return out, report


def join_purchase_mix(features: pl.DataFrame, mix: pl.DataFrame) -> pl.DataFrame:
    """The purchase-mix columns joined onto the feature table (left join on ``customer_id``, the
    feature table's rows and order kept); customers without a purchase line get 0 in the numeric
    columns and a null ``dominant_category``.

    >>> f = pl.DataFrame({"customer_id": ["a", "b"]}); m = pl.DataFrame({"customer_id": ["b"], "n_categories": [2]})
    >>> join_purchase_mix(f, m).rows()
    [('a', 0), ('b', 2)]
    """
    if features.schema.get("customer_id") != mix.schema.get("customer_id"):
        mix = ids_like(mix, "customer_id", features.schema["customer_id"])
    clash = [n for n in mix.columns if n != "customer_id" and n in features.columns]  # recomputed: replaced
    joined = features.drop(clash).join(mix, on="customer_id", how="left", maintain_order="left")
    numeric = [n for n in mix.columns if n != "customer_id" and mix.schema[n].is_numeric()]
    return joined.with_columns(pl.col(numeric).fill_null(0))


def mix_settings(config: Mapping[str, Any]) -> tuple[list[str], Any, list[str] | None]:
    """The purchase-mix columns mapped in ``data.columns``, ``features.categories.top`` and ``.names``.

    >>> mix_settings({"data": {"columns": {"category": "Dept", "discount": None}}, "features": {}})
    (['category'], 5, None)
    """
    columns = ((config.get("data") or {}).get("columns") or {})
    mapped = [k for k in MIX_COLUMNS if columns.get(k)]
    section = (config.get("features") or {}).get("categories") or {}
    return mapped, section.get("top", TOP_CATEGORIES), section.get("names")


#: report counts of lines the purchase-mix features could not read as given, and what happened to them
PROBLEM_COUNTS = {
    "product_not_in_table": ("whose product is missing from the product table (data.products)", "uncategorised"),
    "product_id_null": ("without a product id", "uncategorised"),
    "null_category": ("with a null category", "uncategorised"),
    "negative_discount": ("with a negative discount", "not on discount"),
    "null_discount": ("without a readable discount", "not on discount"),
    "list_price_below_paid": ("with a list price below the paid unit price", "not on discount"),
    "null_list_price": ("without a readable list price", "not on discount"),
}


def problem_counts(report: Mapping[str, Any]) -> dict[str, int]:
    """The non-zero counts of :data:`PROBLEM_COUNTS` in a purchase-mix report.

    >>> problem_counts({"categories": {"null_category": 2, "product_not_in_table": 0}, "discount": {}})
    {'null_category': 2}
    """
    flat = {**(report.get("categories") or {}), **(report.get("discount") or {})}
    return {k: int(flat[k]) for k in PROBLEM_COUNTS if flat.get(k)}


def mix_notes(report: Mapping[str, Any]) -> str:
    """One sentence naming every non-zero problem count of a purchase-mix report ("" when none).

    >>> mix_notes({"purchase_lines": 10, "categories": {"null_category": 2}})
    'Purchase mix: of 10 purchase lines, 2 with a null category (counted as uncategorised, in spend_share_unknown).'
    """
    found = problem_counts(report)
    if not found:
        return ""
    parts = [f"{n:,} {PROBLEM_COUNTS[k][0]} (counted as {PROBLEM_COUNTS[k][1]}"
             + (", in spend_share_unknown)" if PROBLEM_COUNTS[k][1] == "uncategorised" else ")")
             for k, n in found.items()]
    return f"Purchase mix: of {int(report.get('purchase_lines', 0)):,} purchase lines, " + "; ".join(parts) + "."
