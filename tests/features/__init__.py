"""Shared test data of the feature tests."""
from __future__ import annotations

import polars as pl

from tests.conftest import random_log


def warehouse_log(seed: int, n_customers: int = 300, with_order: bool = True, with_product: bool = True) -> pl.DataFrame:
    """:func:`tests.conftest.random_log` in the layout of a warehouse export (issue 15): integer
    customer, order and product ids (Int64), rows in time order, and timestamps squeezed onto three
    seconds of each day, so that several orders (of different customers) share a second."""
    log = random_log(seed, n_customers=n_customers, with_order=with_order, with_product=with_product)
    c = pl.col
    out = log.with_columns(
        c("customer_id").str.replace("R", "9").str.strip_prefix("C").cast(pl.Int64) * 1_000_003,
        (c("timestamp").dt.truncate("1d") + pl.duration(seconds=c("timestamp").dt.minute() % 3)).alias("timestamp"),
    )
    if with_order:
        out = out.with_columns(c("order_id").str.strip_prefix("O").str.replace("X", "-").cast(pl.Int64))
    if with_product:
        out = out.with_columns(c("product_id").str.strip_prefix("P").cast(pl.Int64))
    return out.sort("timestamp", maintain_order=True)


def as_text_ids(log: pl.DataFrame) -> pl.DataFrame:
    """The same log with its integer ids written as text."""
    return log.with_columns(pl.col(c).cast(pl.String) for c in ("customer_id", "order_id", "product_id") if c in log.columns)


def force_pieces(monkeypatch, module, name: str) -> list[int]:
    """Make the threaded numpy passes cut small logs into three pieces (``features.common``) and spy on
    ``module.name`` (the per-piece function; its first argument an array per piece): the returned
    list receives each call's first-argument size."""
    import segmentation_lib.features.common as common

    sizes: list[int] = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda first, *a: sizes.append(first.size) or real(first, *a))
    monkeypatch.setattr(common, "THREADS", 3)
    monkeypatch.setattr(common, "MIN_ROWS_PER_THREAD", 100)
    return sizes
