"""Ingest of the Kaggle set (with synthesis) into a temporary DuckDBStore, phase by phase.

Side by side in one run: reading + validating the CSVs, synthesis alone (no store), and the whole
ingest into a fresh embedded store (which overlaps synthesis of one batch with the writes of the
previous one). Write throughput per collection is measured around the build's appends.
``--reingest`` also times a second ingest of the same directory into the populated store (the
next generation built aside and switched to, the other users carried over). Target: whole ingest <= 60 s on 2 cores.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.ingest.csv_files import read_dataset
from gateway.ingest.synthesis import SynthesisPlan, synthesise
from gateway.jobs.ingest import BATCH_USERS, fewer_gc_pauses, ingest_directory
from gateway.models import Document
from gateway.stores.duckdb.store import DuckDBStore

KAGGLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "kaggle-funnel"
TARGET_SECONDS = 60.0
BENCH = "ingest"

Row = dict[str, Any]


def _row(metric: str, value: float, unit: str) -> Row:
    return {"bench": BENCH, "metric": metric, "value": float(value), "unit": unit}


class _TimedWrites:
    """Wraps the writes of a store's builds (``begin_build().write``, the appends of an ingest) to add up
    seconds and documents per collection."""

    def __init__(self, store: DuckDBStore) -> None:
        self.seconds: defaultdict[str, float] = defaultdict(float)
        self.documents: Counter[str] = Counter()
        self._begin = store.begin_build
        store.begin_build = self._begin_timed  # type: ignore[method-assign]

    async def _begin_timed(self) -> Any:
        build = await self._begin()
        write = build.write

        async def timed(collection: str, documents: Sequence[Document]) -> int:
            started = time.perf_counter()
            try:
                return await write(collection, documents)
            finally:
                self.seconds[collection] += time.perf_counter() - started
                self.documents[collection] += len(documents)

        build.write = timed  # type: ignore[method-assign]
        return build


def _time_synthesis() -> tuple[float, float, int]:
    started = time.perf_counter()
    dataset = read_dataset(KAGGLE)
    read_seconds = time.perf_counter() - started
    order = dataset.default_order()
    plan = SynthesisPlan(tuple(order), order[-1], seed=0)
    reached = dataset.pages_by_user()
    started = time.perf_counter()
    documents = 0
    with fewer_gc_pauses():  # as in the pipeline
        for i in range(0, len(dataset.users), BATCH_USERS):
            out = synthesise(dataset.users[i : i + BATCH_USERS], reached, plan)
            documents += len(out.sessions) + len(out.visits) + len(out.interactions)
    return read_seconds, time.perf_counter() - started, documents


async def _ingest(
    path: Path, reingest: bool
) -> tuple[float, float | None, Counter[str], dict[str, float], int]:
    store = await DuckDBStore.open(path)
    try:
        await store.ensure_indexes()
        writes = _TimedWrites(store)
        started = time.perf_counter()
        report = await ingest_directory(store, KAGGLE)
        first = time.perf_counter() - started
        documents, seconds = Counter(writes.documents), dict(writes.seconds)  # the first ingest's
        second = None
        if reingest:
            started = time.perf_counter()
            await ingest_directory(store, KAGGLE)
            second = time.perf_counter() - started
        return first, second, documents, seconds, report.analytics_rows
    finally:
        await store.close()


def main(reingest: bool = False) -> list[Row]:
    if not (KAGGLE / "user_table.csv").exists():
        print(f"skipped: Kaggle CSVs not present at {KAGGLE}")
        return []
    read_seconds, synth_seconds, synth_docs = _time_synthesis()
    with tempfile.TemporaryDirectory() as tmp:
        total, again, documents, seconds, analytics_rows = asyncio.run(
            _ingest(Path(tmp) / "bench.duckdb", reingest)
        )
    rows = [
        _row("read + validate CSVs", read_seconds, "s"),
        _row("synthesis alone (all users)", synth_seconds, "s"),
        _row("synthesis documents/s", synth_docs / synth_seconds, "docs/s"),
        _row("whole ingest, fresh store", total, "s"),
        _row("whole ingest / 60 s target", total / TARGET_SECONDS, "ratio"),
        _row("synthesis / whole ingest", synth_seconds / total, "ratio"),
    ]
    rows.append(_row("documents written/s (whole ingest)", sum(documents.values()) / total, "docs/s"))
    for collection in ("users", "user_sessions", "page_visits", "user_interactions"):
        docs, spent = documents[collection], seconds.get(collection, 0.0)
        rows.append(_row(f"{collection}: documents", docs, "docs"))
        rows.append(_row(f"{collection}: append documents/s", docs / spent if spent else 0.0, "docs/s"))
    rows.append(_row("funnel_analytics rows", analytics_rows, "rows"))
    if again is not None:
        rows.append(_row("re-ingest into the populated store", again, "s"))
        rows.append(_row("re-ingest / first ingest", again / total, "ratio"))
    print(f"{'metric':<44} {'value':>14} unit")
    for row in rows:
        print(f"{row['metric']:<44} {row['value']:>14,.2f} {row['unit']}")
    return rows


if __name__ == "__main__":
    main(reingest="--reingest" in sys.argv[1:])
