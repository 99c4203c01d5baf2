"""The Kaggle funnel set as the benches use it: in an embedded store file at x1 and x10, and as the
DataFrames the peer engines start from. Not a bench itself (run.py runs bench_*.py only).

x1: the Kaggle CSVs become one page visit per user per page reached (timestamp = the user's date + 30 s
per step + a few seconds; 5..41 s on the page): 90,400 users, 142k visits. x10: the same rows ten
times, user ids offset by 1,000,000 per replica (the largest Kaggle id is below that), replicated
inside DuckDB. Every engine must count [90400, 45200, 6030, 452] times the scale.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from gateway.stores.duckdb.store import DuckDBStore

# shared/ sits beside the repository (CI, /work/main) or beside its worktrees' folder (/work/wt/NAME)
_CANDIDATES = [Path(__file__).resolve().parents[n] / "shared" / "data" / "kaggle-funnel" for n in (2, 3)]
KAGGLE = next((c for c in _CANDIDATES if c.exists()), _CANDIDATES[0])
PAGES = ("home_page", "search_page", "payment_page", "payment_confirmation_page")
FILES = ("home_page_table", "search_page_table", "payment_page_table", "payment_confirmation_table")
EXPECTED = [90400, 45200, 6030, 452]
ID_OFFSET = 1_000_000
CHUNK = 50_000


def available() -> bool:
    return (KAGGLE / "user_table.csv").exists()


def read_tables(replicas: int = 1) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The user table and the four page tables (page column renamed to the page: headers vary)."""
    users = pd.read_csv(KAGGLE / "user_table.csv")
    pages = []
    for name, page in zip(FILES, PAGES, strict=True):
        table = pd.read_csv(KAGGLE / f"{name}.csv")
        table.columns = ["user_id", page]
        pages.append(table)

    def copies(frame: pd.DataFrame) -> pd.DataFrame:
        shifted = [frame.assign(user_id=frame.user_id + r * ID_OFFSET) for r in range(replicas)]
        return pd.concat(shifted, ignore_index=True)

    return copies(users), [copies(p) for p in pages]


def _user_docs(users: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "user_id": int(u),
            "device": d,
            "sex": s,
            "date": datetime.fromisoformat(day).date(),
            "attributes": {},
        }
        for u, day, d, s in zip(users.user_id, users.date, users.device, users.sex, strict=True)
    ]


def _visit_docs(users: pd.DataFrame, pages: list[pd.DataFrame]) -> list[dict[str, Any]]:
    info = users.set_index("user_id")
    docs = []
    for step, table in enumerate(pages):
        joined = info.loc[table.user_id]
        docs += [
            {
                "event_id": f"{u}-{step}",
                "user_id": int(u),
                "session_id": f"s{u}",
                "page_type": PAGES[step],
                "timestamp": datetime.fromisoformat(day) + timedelta(seconds=30 * step + u % 7),
                "duration": float(5 + u % 37),
                "device": d,
            }
            for u, day, d in zip(joined.index, joined.date, joined.device, strict=True)
        ]
    return docs


async def build_x1(path: Path) -> float:
    """Write the x1 store file through the product's insert path; returns docs/s of insert_many."""
    users, pages = read_tables()
    store = await DuckDBStore.open(path, index=False, preaggregates=False)
    try:
        await store.ensure_indexes()
        spent = 0.0
        docs = 0
        for collection, rows in (("users", _user_docs(users)), ("page_visits", _visit_docs(users, pages))):
            for i in range(0, len(rows), CHUNK):
                started = time.perf_counter()
                docs += (await store.insert_many(collection, rows[i : i + CHUNK])).written
                spent += time.perf_counter() - started
        await store.set_default_funnel(PAGES)
    finally:
        await store.close()
    return docs / spent


def replicate(source: Path, target: Path, replicas: int) -> None:
    """``target``: ``source``'s users and visits ``replicas`` times over, ids offset per replica."""
    target.write_bytes(source.read_bytes())
    con = duckdb.connect(str(target))
    try:
        for r in range(1, replicas):
            offset = r * ID_OFFSET
            con.execute(
                f"INSERT INTO users SELECT user_id + {offset}, device, sex, date, attributes FROM users "
                f"WHERE user_id < {ID_OFFSET}"
            )
            con.execute(
                f"INSERT INTO page_visits SELECT 'r{r}-' || event_id, user_id + {offset}, "
                f"'r{r}-' || session_id, page_type, timestamp, duration, device FROM page_visits "
                f"WHERE user_id < {ID_OFFSET}"
            )
            # The event tables' key (gateway/stores/duckdb/event_ids.py) holds every visit's id.
            con.execute(
                f"INSERT INTO event_ids SELECT 'r{r}-' || event_id FROM page_visits WHERE user_id < {ID_OFFSET}"
            )
        con.execute("CHECKPOINT")
    finally:
        con.close()


def visits_frame(path: Path) -> pd.DataFrame:
    """(user_id, ts µs, page) of every visit: what the peer engines start from."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(
            'SELECT user_id, epoch_us("timestamp") AS ts, page_type AS page FROM page_visits '
            'WHERE "timestamp" IS NOT NULL'
        ).df()
    finally:
        con.close()


def prepare(folder: Path) -> dict[int, Path]:
    """The store files per scale, built once per run."""
    x1, x10 = folder / "x1.duckdb", folder / "x10.duckdb"
    rate = asyncio.run(build_x1(x1))
    print(f"x1 store written with insert_many at {rate:,.0f} docs/s", flush=True)
    replicate(x1, x10, 10)
    return {1: x1, 10: x10}
