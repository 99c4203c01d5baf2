"""A page of 1,000 users with their profile and ``converted``, against the same page with ids only.

In process (``run_query``: the schema, its guard and the loaders, no HTTP), on the embedded store and a
private redis-server, warm (every loader entry cached, as a repeated listing is: ``users`` is never
response-cached) and cold (the loaders' entries dropped first). The figure is the ratio of the medians
over alternating rounds: what asking the profile and ``converted`` adds to listing the ids. Measured
one after the other on 2 shared cores: before the listing read its page's documents in one batch
(schema/user.py: an awaitable per field per user before) and set_many/set_absent became one script call
each (pipelines before), warm 23.9 and cold 24.9-35.4; after, warm 4.7-4.8 and cold 7.5-7.8.

    .venv/bin/python bench/bench_listing.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gateway.config import load_settings
from gateway.services import Services, open_services
from gateway.stores.collections import USER_SESSIONS, USERS
from gateway.web.query_runner import run_query

Row = dict[str, Any]
N_USERS = 1000
ROUNDS = 7
IDS = "{ users(first: 1000) { edges { node { id } } } }"
PROFILE = "{ users(first: 1000) { edges { node { id device sex date converted } } } }"


def shop(n: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    start = datetime(2015, 1, 1)
    users, sessions = [], []
    for uid in range(1, n + 1):
        day = start + timedelta(days=uid % 60)
        users.append({"user_id": uid, "device": ("desktop", "mobile")[uid % 2], "sex": "female",
                      "date": day.date(), "attributes": {}})  # fmt: skip
        for s in range(1 + uid % 3):
            sessions.append({
                "session_id": f"s{uid}-{s}", "user_id": uid, "start_time": day, "end_time": day + timedelta(minutes=5),
                "device": "mobile", "pages_visited": ["home", "search"], "total_interactions": 0,
                "converted": uid % 5 == 0 and s == 0, "conversion_value": 10.0 if uid % 5 == 0 and s == 0 else 0.0,
            })  # fmt: skip
    return users, sessions


async def _ms(services: Services, query: str, cold: bool) -> float:
    if cold:
        await services.cache.delete_prefixes(["query:", "ver:"])
    started = time.perf_counter()
    result = await run_query(services, query)
    elapsed = (time.perf_counter() - started) * 1000
    assert "errors" not in result, result["errors"]
    return elapsed


async def _bench() -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-listing-") as tmp:
        settings = load_settings(env={"FUNNEL_DATA_DIR": tmp})
        async with open_services(settings) as services:
            users, sessions = shop(N_USERS)
            await services.store.insert_many(USERS, users)
            await services.store.insert_many(USER_SESSIONS, sessions)
            for query in (IDS, PROFILE):  # warm DuckDB, the schema and the loaders' entries
                await _ms(services, query, cold=False)
            for kind, cold in (("warm", False), ("cold", True)):
                ratios, base, full = [], [], []
                for _ in range(ROUNDS):
                    ids = statistics.median([await _ms(services, IDS, cold) for _ in range(3)])
                    profile = statistics.median([await _ms(services, PROFILE, cold) for _ in range(3)])
                    base.append(ids)
                    full.append(profile)
                    ratios.append(profile / ids)
                print(f"{kind}: ids {statistics.median(base):.1f} ms, profile and converted "
                      f"{statistics.median(full):.1f} ms, ratio {statistics.median(ratios):.2f}")  # fmt: skip
                rows += [
                    {"bench": "listing", "metric": f"{kind} ids ms", "value": statistics.median(base), "unit": "ms"},
                    {"bench": "listing", "metric": f"{kind} profile ms", "value": statistics.median(full), "unit": "ms"},
                    {"bench": "listing", "metric": f"{kind} profile / ids", "value": statistics.median(ratios), "unit": "x"},
                ]  # fmt: skip
    return rows


def main() -> list[Row]:
    return asyncio.run(_bench())


if __name__ == "__main__":
    main()
