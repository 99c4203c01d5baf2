"""The default 4-step ordered funnel: DuckDBStore.funnel (SQL) vs the public notebooks' pandas merge.

Real data: the Kaggle CSVs (user table + one table per page reached) become one page visit per user
per page (timestamp = the user's date + a few seconds per step) in a temporary DuckDBStore. Then a 10x
synthetic copy (ids offset by 1,000,000 per replica). Both sides must report the same step counts.
Timings are warm medians; the pandas side starts from DataFrames already in memory, like the store.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.models import FunnelQuery
from gateway.stores.duckdb.store import DuckDBStore

KAGGLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kaggle-funnel"
PAGES = ("home_page", "search_page", "payment_page", "payment_confirmation_page")
FILES = ("home_page_table", "search_page_table", "payment_page_table", "payment_confirmation_table")
EXPECTED = [90400, 45200, 6030, 452]
REPLICAS = 10
ID_OFFSET = 1_000_000
RUNS = 7
CHUNK = 50_000

Row = dict[str, Any]


def read_tables(folder: Path) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    """The user table and the four page tables, page column renamed to the page name (headers vary)."""
    users = pd.read_csv(folder / "user_table.csv")
    pages = []
    for name, page in zip(FILES, PAGES, strict=True):
        table = pd.read_csv(folder / f"{name}.csv")
        table.columns = ["user_id", page]
        pages.append(table)
    return users, pages


def replicate(
    users: pd.DataFrame, pages: list[pd.DataFrame], times: int
) -> tuple[pd.DataFrame, list[pd.DataFrame]]:
    def copies(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat(
            [frame.assign(user_id=frame.user_id + r * ID_OFFSET) for r in range(times)], ignore_index=True
        )

    return copies(users), [copies(p) for p in pages]


def pandas_counts(users: pd.DataFrame, pages: list[pd.DataFrame]) -> list[int]:
    """The notebooks' funnel: left-merge every page table onto the users, count non-null per page."""
    merged = users
    for table in pages:
        merged = merged.merge(table, on="user_id", how="left")
    return [int(merged[page].notna().sum()) for page in PAGES]


def user_docs(users: pd.DataFrame) -> Iterator[list[Row]]:
    for start in range(0, len(users), CHUNK):
        part = users.iloc[start : start + CHUNK]
        yield [
            {
                "user_id": int(u),
                "device": d,
                "sex": s,
                "date": datetime.fromisoformat(day).date(),
                "attributes": {},
            }
            for u, day, d, s in zip(part.user_id, part.date, part.device, part.sex, strict=True)
        ]


def visit_docs(users: pd.DataFrame, pages: list[pd.DataFrame]) -> Iterator[list[Row]]:
    """One visit per user per page reached: 30 s per step after the user's date, 5..41 s on the page."""
    info = users.set_index("user_id")
    for step, table in enumerate(pages):
        joined = info.loc[table.user_id]
        for start in range(0, len(table), CHUNK):
            part = joined.iloc[start : start + CHUNK]
            yield [
                {
                    "event_id": f"{u}-{step}",
                    "user_id": int(u),
                    "session_id": f"s{u}",
                    "page_type": PAGES[step],
                    "timestamp": datetime.fromisoformat(day) + timedelta(seconds=30 * step + u % 7),
                    "duration": float(5 + u % 37),
                    "device": d,
                }
                for u, day, d in zip(part.index, part.date, part.device, strict=True)
            ]


async def load(store: DuckDBStore, users: pd.DataFrame, pages: list[pd.DataFrame]) -> tuple[int, float]:
    """Insert users and visits; returns (documents, seconds spent in insert_many)."""
    docs = 0
    spent = 0.0
    for chunks, collection in ((user_docs(users), "users"), (visit_docs(users, pages), "page_visits")):
        for chunk in chunks:
            started = time.perf_counter()
            result = await store.insert_many(collection, chunk)
            spent += time.perf_counter() - started
            docs += result.written
    return docs, spent


async def median_ms(fn: Callable[[], Awaitable[Any]]) -> float:
    await fn()  # warm-up
    samples = []
    for _ in range(RUNS):
        started = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def sync_median_ms(fn: Callable[[], Any]) -> float:
    async def call() -> Any:
        return fn()

    return await median_ms(call)


async def compare(label: str, users: pd.DataFrame, pages: list[pd.DataFrame], folder: Path) -> list[Row]:
    store = await DuckDBStore.open(folder / f"{label}.duckdb")
    try:
        await store.ensure_indexes()
        docs, spent = await load(store, users, pages)
        query = FunnelQuery(steps=PAGES)
        ours = [s.users for s in (await store.funnel(query)).steps]
        theirs = pandas_counts(users, pages)
        expected = [n * (len(users) // 90400) for n in EXPECTED]
        if not (ours == theirs == expected):
            raise AssertionError(f"{label}: store {ours}, pandas {theirs}, expected {expected}")
        ours_ms = await median_ms(lambda: store.funnel(query))
        pandas_ms = await sync_median_ms(lambda: pandas_counts(users, pages))
    finally:
        await store.close()
    rate = docs / spent
    print(
        f"{label:<10} {len(users):>7} users  counts {ours}  store {ours_ms:7.1f} ms  "
        f"pandas {pandas_ms:7.1f} ms  ratio {pandas_ms / ours_ms:5.2f}x  ingest {rate:,.0f} docs/s"
    )
    return [
        {
            "bench": "funnel",
            "metric": f"{label} store funnel (ordered, 4 steps)",
            "value": ours_ms,
            "unit": "ms",
        },
        {"bench": "funnel", "metric": f"{label} pandas merge baseline", "value": pandas_ms, "unit": "ms"},
        {
            "bench": "funnel",
            "metric": f"{label} ratio pandas/store",
            "value": pandas_ms / ours_ms,
            "unit": "x",
        },
        {"bench": "funnel", "metric": f"{label} insert_many throughput", "value": rate, "unit": "docs/s"},
    ]


async def run() -> list[Row]:
    if not (KAGGLE / "user_table.csv").exists():
        print(f"Kaggle CSVs not found at {KAGGLE}: nothing to measure")
        return []
    users, pages = read_tables(KAGGLE)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-funnel-") as tmp:
        rows += await compare("kaggle", users, pages, Path(tmp))
        big_users, big_pages = replicate(users, pages, REPLICAS)
        rows += await compare("kaggle10x", big_users, big_pages, Path(tmp))
    return rows


def main() -> list[Row]:
    return asyncio.run(run())


if __name__ == "__main__":
    main()
