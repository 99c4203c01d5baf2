"""Building a funnel index from the store's tables, on one DuckDB cursor.

DuckDB does the heavy part: it joins every visit to its page code and dense user id and sorts by
(page, dense user, ts); numpy only cuts the sorted columns into pages. The dense ids are first
assigned in numpy (clustered by device and sex, see layout.py) and handed to DuckDB as a
connection-local temp table, which it joins far faster than a scanned DataFrame.

The caller chooses the snapshot: run inside a transaction to read one consistent state (live.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gateway.stores.duckdb.funnel_index.layout import FunnelIndex

_TEMP = ("fi_pages", "fi_uids")


def build_from_duckdb(cur: Any) -> FunnelIndex:
    users = cur.execute("SELECT user_id, device, sex FROM users").fetchnumpy()
    visitors = cur.execute("SELECT DISTINCT user_id FROM page_visits").fetchnumpy()["user_id"]
    known = np.concatenate([np.asarray(users["user_id"], np.int64), np.asarray(visitors, np.int64)])
    index = FunnelIndex.with_users(
        known,
        {
            "user_id": np.asarray(users["user_id"], np.int64),
            "device": _with_nulls(users["device"]),
            "sex": _with_nulls(users["sex"]),
        },
    )
    pages = [
        row[0]
        for row in cur.execute(
            "SELECT DISTINCT page_type FROM page_visits WHERE page_type IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    cur.register("fi_pages_df", pd.DataFrame({"page_type": pages, "p": list(range(len(pages)))}))
    cur.register("fi_uids_df", pd.DataFrame({"user_id": index.uids, "u": np.arange(index.n_users)}))
    try:
        cur.execute("CREATE OR REPLACE TEMP TABLE fi_pages AS SELECT * FROM fi_pages_df").fetchall()
        cur.execute("CREATE OR REPLACE TEMP TABLE fi_uids AS SELECT * FROM fi_uids_df").fetchall()
        cols = cur.execute(
            'SELECT p.p AS p, d.u AS u, epoch_us(v."timestamp") AS ts, coalesce(v.duration, 0.0) AS dur '
            "FROM page_visits v JOIN fi_pages p USING (page_type) JOIN fi_uids d USING (user_id) "
            # dur last: equal timestamps sum their durations in one order, build after build
            'WHERE v."timestamp" IS NOT NULL ORDER BY p, u, ts, dur'
        ).fetchnumpy()
    finally:
        cur.unregister("fi_pages_df")
        cur.unregister("fi_uids_df")
        for table in _TEMP:
            cur.execute(f"DROP TABLE IF EXISTS {table}").fetchall()
    index.load_sorted_visits(
        pages,
        np.asarray(cols["p"], np.int64),
        np.asarray(cols["u"], np.int64),
        np.asarray(cols["ts"], np.int64),
        np.asarray(cols["dur"], np.float64),
    )
    return index


def _with_nulls(values: Any) -> list[Any]:
    """A fetched column as a list with None for NULL (fetchnumpy masks NULLs)."""
    if isinstance(values, np.ma.MaskedArray):
        mask = np.ma.getmaskarray(values).tolist()
        return [None if m else v for v, m in zip(values.data.tolist(), mask, strict=True)]
    return list(values.tolist())
