"""The engines people would use instead of the gateway, each counting the default 4-step funnel's
users per step (no durations, rates or medians: those the gateway computes on top).

* ClickHouse ``windowFunnel`` in-process (chDB), on a Memory table of (user_id, ts µs, page);
* polars, a first-occurrence chain (min ts per user per step, joined step to step, lazy);
* pandas, the public notebooks' method: left-merge the page tables on the users, count non-null
  (no time order at all).

chdb and polars are the ``bench`` extra (``make bench`` installs it), never runtime dependencies.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from kaggle_funnel import FILES, PAGES, read_tables

Engine = Callable[[], list[int]]
NO_WINDOW_US = 10 * 365 * 86_400 * 1_000_000  # windowFunnel needs a window: ten years


def chdb_engine(visits: pd.DataFrame) -> Engine:
    from chdb import session

    sess = session.Session()
    df = visits  # noqa: F841 - read by name by chDB's Python() table function
    sess.query(
        "CREATE TABLE v ENGINE = Memory AS SELECT toUInt64(user_id) AS user_id, toUInt64(ts) AS ts, "
        "toLowCardinality(page) AS page FROM Python(df)"
    )
    conds = ", ".join(f"page = '{s}'" for s in PAGES)
    counts = ", ".join(f"countIf(level >= {k + 1})" for k in range(len(PAGES)))
    sql = (
        f"SELECT {counts} FROM (SELECT user_id, windowFunnel({NO_WINDOW_US})(ts, {conds}) AS level "
        "FROM v GROUP BY user_id)"
    )

    def run() -> list[int]:
        out = sess.query(sql, "CSV").bytes().decode().strip()
        return [int(x) for x in out.split(",")]

    run.session = sess  # type: ignore[attr-defined]  # kept alive with the engine
    return run


def polars_engine(visits: pd.DataFrame) -> Engine:
    import polars as pl

    frame = pl.from_pandas(visits).with_columns(pl.col("page").cast(pl.Categorical))

    def run() -> list[int]:
        lf = frame.lazy()
        prev = lf.filter(pl.col("page") == PAGES[0]).group_by("user_id").agg(pl.col("ts").min().alias("t"))
        chain = [prev]
        for step in PAGES[1:]:
            prev = (
                lf.filter(pl.col("page") == step)
                .join(prev, on="user_id")
                .filter(pl.col("ts") >= pl.col("t"))
                .group_by("user_id")
                .agg(pl.col("ts").min().alias("t"))
            )
            chain.append(prev)
        return [int(c.item()) for c in pl.collect_all([f.select(pl.len()) for f in chain])]

    return run


def pandas_engine(replicas: int) -> Engine:
    users, pages = read_tables(replicas)

    def run() -> list[int]:
        merged = users
        for table in pages:
            merged = merged.merge(table, on="user_id", how="left")
        return [int(merged[page].notna().sum()) for page in PAGES]

    assert FILES  # the page tables, in funnel order
    return run
