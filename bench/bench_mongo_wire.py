"""Bytes the MongoDB server returns per funnel question: the old approach (per-user groups pulled into
the gateway and matched in Python) against the adapter's server-side pipelines, and their times.

Data: ``funnelgate generate --users 5000`` ingested through the product's ingest into an embedded DuckDB
store, then copied document for document into a private MongoDB wire-protocol test server
(``tests/mongo_server.py``; its own ingest path, one ReplaceOne upsert per document, takes minutes on that
server). Bytes: the BSON size of every reply (aggregate firstBatch, getMore nextBatch) seen by a PyMongo
CommandListener -- exact. Time: median wall time of ``RUNS`` calls; gateway CPU: ``process_time`` of this
process. The test server evaluates pipelines in Python, far slower than MongoDB: its times compare the
two approaches on one machine, not what production takes (docs/scaling.md has the estimates).

    .venv/bin/python bench/bench_mongo_wire.py [--users 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import bson
from pymongo import AsyncMongoClient
from pymongo.monitoring import CommandListener, CommandSucceededEvent

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.ingest.generator import generate_dataset
from gateway.jobs.ingest import ingest_directory
from gateway.models import Breakdown, FunnelQuery, Interval, StepOrder, UserFilter, UserPage
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.funnel_math import UserMatch, funnel_result, match_steps, trend
from gateway.stores.mongo.store import MongoStore
from tests.mongo_server import running_mongo_wire_server

USERS = 5_000
SEED = 0
RUNS = 3
TARGET_RATIO = 100.0
Row = dict[str, Any]


class ReplyBytes(CommandListener):
    def __init__(self) -> None:
        self.bytes = 0

    def started(self, event: Any) -> None:
        pass

    def succeeded(self, event: CommandSucceededEvent) -> None:
        self.bytes += len(bson.encode(event.reply))

    def failed(self, event: Any) -> None:
        pass


# -- the old approach, kept minimal here as the baseline ------------------------------------------------


class PerUserBaseline:
    """What the adapter did before: group each user's listed visits on the server, pull every group,
    match steps in Python (gateway.stores.funnel_math). Breakdown values read through $map: the test
    server drops ``"$u.device"`` paths through arrays (which the old adapter used)."""

    def __init__(self, db: Any) -> None:
        self.db = db

    def _pipeline(self, query: FunnelQuery, group: str | None) -> list[dict[str, Any]]:
        steps, f = list(query.steps), query.filter
        match: dict[str, Any] = {"page_type": {"$in": steps}}
        if f.start or f.end:
            raise NotImplementedError("the bench's cases have no day range")
        durations = {f"d{k}": {"$sum": {"$cond": [{"$eq": ["$s", k]}, "$d", 0]}} for k in range(len(steps))}
        branches = [{"case": {"$eq": ["$page_type", s]}, "then": k} for k, s in enumerate(steps)]
        pipeline: list[dict[str, Any]] = [
            {"$match": match},
            {
                "$project": {
                    "user_id": 1,
                    "t": "$timestamp",
                    "d": "$duration",
                    "s": {"$switch": {"branches": branches, "default": -1}},
                }
            },
            {"$group": {"_id": "$user_id", "ev": {"$push": {"s": "$s", "t": "$t"}}, **durations}},
        ]
        wanted = {k: v for k, v in (("device", f.device), ("sex", f.sex)) if v is not None}
        if wanted or group:
            pipeline.append(
                {"$lookup": {"from": "users", "localField": "_id", "foreignField": "user_id", "as": "u"}}
            )
            if wanted:
                pipeline.append({"$match": {f"u.{k}": v for k, v in wanted.items()}})
            if group:
                pipeline.append(
                    {"$addFields": {"g": {"$first": {"$map": {"input": "$u", "in": f"$$this.{group}"}}}}}
                )
            pipeline.append({"$project": {"u": 0}})
        return pipeline

    async def matches(self, query: FunnelQuery) -> list[UserMatch]:
        group = query.breakdown.value if query.breakdown else None
        cursor = await self.db["page_visits"].aggregate(self._pipeline(query, group), allowDiskUse=True)
        out = []
        for doc in await cursor.to_list(None):
            anchor, times = match_steps(
                [(e["s"], e["t"]) for e in doc["ev"]], len(query.steps), query.order, query.window_seconds
            )
            if anchor is not None:
                durations = [float(doc.get(f"d{k}") or 0.0) for k in range(len(query.steps))]
                out.append(UserMatch(doc["_id"], doc.get("g"), anchor, times, durations))
        return out

    async def funnel(self, query: FunnelQuery) -> Any:
        return funnel_result(query.steps, await self.matches(query), query.breakdown is not None)

    async def funnel_trend(self, query: FunnelQuery, interval: Interval) -> Any:
        return trend(query.steps, await self.matches(query), interval)

    async def funnel_users(
        self, query: FunnelQuery, k: int, converted: bool, first: int, after: Any
    ) -> UserPage:
        reached = len(query.steps) if converted else k + 1
        ids = sorted(m.user_id for m in await self.matches(query) if len(m.times) == reached)
        return UserPage(ids[:first], len(ids), len(ids) > first)


# -- data ------------------------------------------------------------------------------------------------


async def load(csv_dir: Path, duck_path: Path, mongo: MongoStore) -> tuple[tuple[str, ...], dict[str, int]]:
    """Ingest into DuckDB with the product's ingest, then copy every document into MongoDB."""
    duck = await DuckDBStore.open(duck_path)
    try:
        await duck.ensure_indexes()
        await ingest_directory(duck, csv_dir, seed=SEED)
        ids = (await duck.list_users(UserFilter(), 10_000_000, None)).user_ids
        users = [u for u in await duck.users_by_ids(ids) if u]
        sessions = [s for per in await duck.sessions_by_user_ids(ids) for s in per]
        visits = [v for per in await duck.visits_by_user_ids(ids) for v in per]
        interactions = [
            i
            for per in await duck.interactions_by_session_ids([s["session_id"] for s in sessions])
            for i in per
        ]
        steps = tuple(await duck.default_funnel() or ())
    finally:
        await duck.close()
    await mongo.ensure_indexes()
    counts = {}
    for name, docs in (
        ("users", users),
        ("user_sessions", sessions),
        ("page_visits", visits),
        ("user_interactions", interactions),
    ):
        counts[name] = (await mongo.insert_many(name, docs)).written
    await mongo.set_default_funnel(steps)
    return steps, counts


# -- measuring -------------------------------------------------------------------------------------------


def agree(a: Any, b: Any) -> bool:
    """Equal results up to float rounding (the server sums in another order than Python)."""
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(agree(x, y) for x, y in zip(a, b, strict=True))
    if hasattr(a, "__dataclass_fields__") and type(a) is type(b):
        return all(agree(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    return bool(a == b)


async def measure(meter: ReplyBytes, call: Callable[[], Awaitable[Any]]) -> tuple[Any, int, float, float]:
    """(result, reply bytes of one call, median wall s, median gateway CPU s)."""
    walls, cpus, result, replied = [], [], None, 0
    for _ in range(RUNS):
        meter.bytes = 0
        wall, cpu = time.perf_counter(), time.process_time()
        result = await call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        replied = meter.bytes
    return result, replied, statistics.median(walls), statistics.median(cpus)


def cases(steps: Sequence[str]) -> list[tuple[str, Callable[[Any], Awaitable[Any]]]]:
    base = FunnelQuery(tuple(steps))
    by_device = FunnelQuery(tuple(steps), breakdown=Breakdown.DEVICE)
    strict = FunnelQuery(tuple(steps), UserFilter(sex="female"), StepOrder.STRICT, 3600)
    unordered = FunnelQuery(
        tuple(steps), UserFilter(device="mobile"), StepOrder.UNORDERED, breakdown=Breakdown.SEX
    )
    return [
        ("funnel ordered", lambda s: s.funnel(base)),
        ("funnel ordered, by device", lambda s: s.funnel(by_device)),
        ("funnel strict 1 h, sex=female", lambda s: s.funnel(strict)),
        ("funnel unordered, mobile, by sex", lambda s: s.funnel(unordered)),
        ("trend by week", lambda s: s.funnel_trend(base, Interval.WEEK)),
        ("trend by day", lambda s: s.funnel_trend(base, Interval.DAY)),
        ("dropped off after step 1, page of 50", lambda s: s.funnel_users(base, 0, False, 50, None)),
        ("converted, page of 50", lambda s: s.funnel_users(base, 0, True, 50, None)),
    ]


async def run(url: str, users: int) -> list[Row]:
    meter = ReplyBytes()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=False, event_listeners=[meter])
    new = MongoStore.from_database(client["bench"])
    old = PerUserBaseline(client["bench"])
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(Path(tmp) / "csv", users, SEED)
        started = time.perf_counter()
        steps, counts = await load(Path(tmp) / "csv", Path(tmp) / "d.duckdb", new)
        print(f"loaded {counts} in {time.perf_counter() - started:.0f} s; funnel {steps}", flush=True)
    header = f"{'case':<38} {'old bytes':>10} {'new bytes':>10} {'old/new':>8} {'old s':>7} {'new s':>7} {'CPU old/new s':>14} same"
    print(header)
    for name, call in cases(steps):
        r_old, b_old, t_old, c_old = await measure(meter, lambda call=call: call(old))
        r_new, b_new, t_new, c_new = await measure(meter, lambda call=call: call(new))
        ratio = b_old / max(b_new, 1)
        same = agree(r_old, r_new)
        print(
            f"{name:<38} {b_old:>10,} {b_new:>10,} {ratio:>7.0f}x {t_old:>7.2f} {t_new:>7.2f} "
            f"{c_old:>6.3f}/{c_new:<6.3f} {'yes' if same else 'NO'}",
            flush=True,
        )
        rows += [
            {
                "bench": "mongo_wire",
                "metric": f"{name}: reply bytes old/new",
                "value": ratio,
                "unit": "ratio",
            },
            {"bench": "mongo_wire", "metric": f"{name}: new reply bytes", "value": b_new, "unit": "B"},
            {
                "bench": "mongo_wire",
                "metric": f"{name}: old / new time",
                "value": t_old / t_new,
                "unit": "ratio",
            },
        ]
        if not same:
            raise AssertionError(f"{name}: the two approaches disagree:\n{r_old}\n{r_new}")
    await client.close()
    return rows


def main(users: int = USERS) -> list[Row]:
    with running_mongo_wire_server() as url:  # in the main thread: the server's lifetime follows it
        return asyncio.run(run(url, users))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=USERS)
    main(parser.parse_args().users)
