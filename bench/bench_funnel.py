"""Issue 17's table: the gateway's uncached funnel next to the engines people would use instead, on the
Kaggle set at x1 and x10, in one run.

Rows (uncached everywhere: no Redis in front, the response cache off):
  store <query>      DuckDBStore.funnel: the funnel index, through the store's thread-pool hop
  HTTP <query>       POST /graphql to the gateway on 127.0.0.1 (schema, resolvers, services, store)
  SQL engine         the store's SQL fallback (what answered every funnel before the index)
  day: rows / index  one day of the default funnel from the funnel_analytics rows vs computed
  chDB / polars / pandas   see funnel_peers.py
Engines are timed round-robin (one call each per round, order shuffled per round), so the machine's
noise hits all alike; the table shows median and best wall time, process CPU time, and each median's
ratio to the fastest peer's. Every engine must give [90400, 45200, 6030, 452] x scale, and the index
must answer every query exactly like the SQL engine, or the bench stops.

Run: ``make bench`` (installs the bench extra: chdb, polars) or ``python bench/bench_funnel.py``.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import funnel_concurrency
import funnel_peers
import kaggle_funnel
from aiohttp import ClientSession, web

from gateway.config import load_settings
from gateway.models import Breakdown, FunnelQuery, FunnelResult, StepOrder, UserFilter
from gateway.services import NoCache, Services
from gateway.stores.contracts import Cache
from gateway.stores.duckdb.store import DuckDBStore
from gateway.web.app import create_app

Row = dict[str, Any]
PAGES = kaggle_funnel.PAGES
QUERIES = {
    "ORDERED (default)": FunnelQuery(PAGES),
    "STRICT": FunnelQuery(PAGES, order=StepOrder.STRICT),
    "UNORDERED": FunnelQuery(PAGES, order=StepOrder.UNORDERED),
    "ORDERED + device breakdown": FunnelQuery(PAGES, breakdown=Breakdown.DEVICE),
}
STEP_FIELDS = "name users conversionRate dropOffRate conversionFromStart avgTimeSpent medianTimeToConvert"
DOCUMENT = (
    "query($order: StepOrder, $breakdown: Breakdown) { funnel(order: $order, breakdown: $breakdown) "
    f"{{ overallConversionRate steps {{ {STEP_FIELDS} }} breakdowns {{ key steps {{ {STEP_FIELDS} }} }} }} }}"
)
HTTP_VARIABLES = {
    "ORDERED (default)": {},
    "STRICT": {"order": "STRICT"},
    "UNORDERED": {"order": "UNORDERED"},
    "ORDERED + device breakdown": {"breakdown": "DEVICE"},
}
DAY = date(2015, 2, 16)
ROUNDS = {1: 31, 10: 21}
SQL_ROUNDS = {1: 7, 10: 3}


def no_cache() -> Cache:
    """The product's own cache for running without Redis (what ``open_services(need_cache=False)`` gives
    the CLI jobs): every read misses, so the HTTP rows measure computing the funnel, not Redis. A stub of
    the bench's own fell behind the Cache protocol twice (set_absent, pipeline); this one is the
    product's, and is checked against the protocol here so a missing method stops the bench at once
    rather than as a 500 mid-measurement."""
    cache = NoCache()
    if not isinstance(cache, Cache):
        members = {*Cache.__annotations__, *(m for m in dir(Cache) if not m.startswith("_"))}
        missing = sorted(m for m in members if not hasattr(cache, m))
        raise TypeError(f"gateway.services.NoCache lacks Cache members {missing}")
    return cache


def measure(engines: dict[str, Callable[[], Any]], rounds: int) -> dict[str, dict[str, float]]:
    names = list(engines)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    rng = random.Random(0)
    for name in names:
        engines[name]()  # warm
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            c0, t0 = time.process_time(), time.perf_counter()
            engines[name]()
            wall[name].append((time.perf_counter() - t0) * 1000)
            cpu[name].append((time.process_time() - c0) * 1000)
    return {
        n: {"median": statistics.median(wall[n]), "best": min(wall[n]), "cpu": statistics.median(cpu[n])}
        for n in engines
    }


def same(a: FunnelResult, b: FunnelResult) -> bool:
    def close(x: float | None, y: float | None) -> bool:
        return (x is None and y is None) or (
            x is not None and y is not None and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        )

    def steps(xs: Any, ys: Any) -> bool:
        return all(
            s.name == t.name and s.users == t.users
            and all(close(getattr(s, f), getattr(t, f)) for f in ("conversion_rate", "avg_time_spent", "median_time_to_convert"))
            for s, t in zip(xs, ys, strict=True)
        )  # fmt: skip

    return (
        steps(a.steps, b.steps)
        and [g.key for g in a.breakdowns] == [g.key for g in b.breakdowns]
        and all(steps(g.steps, h.steps) for g, h in zip(a.breakdowns, b.breakdowns, strict=True))
    )


async def serve(store: DuckDBStore) -> tuple[web.AppRunner, str]:
    services = Services(load_settings(env={}), store, vectors=None, cache=no_cache())  # type: ignore[arg-type]
    runner = web.AppRunner(create_app(services, response_cache=False), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # any free port
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}/graphql"


def run_scale(scale: int, path: Path, tmp: Path) -> list[Row]:
    expected = [n * scale for n in kaggle_funnel.EXPECTED]
    loop = asyncio.new_event_loop()
    run = loop.run_until_complete
    sql_path = tmp / f"sql-{scale}.duckdb"
    shutil.copy(path, sql_path)  # one open per file: the SQL-only store reads a copy
    load_before = os.getloadavg()
    visits = kaggle_funnel.visits_frame(path)  # before the stores open the files
    store = run(DuckDBStore.open(path))
    sql_store = run(DuckDBStore.open(sql_path, index=False, preaggregates=False))
    session = run(_session())
    runner, url = run(serve(store))
    try:
        assert run(store.wait_for_funnel_index())
        assert store.funnel_index is not None
        build_s, index = store.funnel_index.last_build_seconds, store.funnel_index.current()
        assert index is not None
        peers = {
            "chDB windowFunnel": funnel_peers.chdb_engine(visits),
            "polars first-occurrence chain": funnel_peers.polars_engine(visits),
            "pandas merge (no time order)": funnel_peers.pandas_engine(scale),
        }

        def via_store(query: FunnelQuery) -> Callable[[], list[int]]:
            return lambda: [s.users for s in run(store.funnel(query)).steps]

        def via_http(variables: dict[str, Any]) -> Callable[[], list[int]]:
            return lambda: [s["users"] for s in run(_post(session, url, variables))["steps"]]

        ours = {f"store {q}": via_store(query) for q, query in QUERIES.items()}
        ours |= {f"HTTP {q}": via_http(HTTP_VARIABLES[q]) for q in QUERIES}
        day = FunnelQuery(PAGES, UserFilter(start=DAY, end=DAY))
        run(store.funnel(day))  # the day's rows are computed once, then answer
        assert run(store.funnel(day)).source == "funnel_analytics"
        ours["day: from funnel_analytics rows"] = lambda: run(store.funnel(day)).steps
        ours["day: computed by the index"] = lambda: (
            run(store._db.run("day", lambda cur: store.funnels.compute(cur, day))).steps
        )
        for name, fn in {**peers, **{k: v for k, v in ours.items() if not k.startswith("day")}}.items():
            if fn() != expected:
                raise AssertionError(f"x{scale} {name}: {fn()} != {expected}")
        for q, query in QUERIES.items():
            mine, theirs = run(store.funnel(query)), run(sql_store.funnel(query))
            if mine.source != "funnel_index" or not same(mine, theirs):
                raise AssertionError(f"x{scale} {q}: index {mine} != SQL {theirs}")
        if not same(run(store.funnel(day)), run(sql_store.funnel(day))):
            raise AssertionError(f"x{scale}: rows differ from SQL for {DAY}")
        sql = {
            "SQL engine ORDERED (the fallback)": via_store_sql(run, sql_store, QUERIES["ORDERED (default)"])
        }
        results = measure({**peers, **ours}, ROUNDS[scale])
        results |= measure(sql, SQL_ROUNDS[scale])
    finally:
        run(runner.cleanup())
        run(session.close())
        run(store.close())
        run(sql_store.close())
        loop.close()
    return report(scale, results, peers, len(visits), build_s, index.nbytes(), load_before)


def via_store_sql(run: Any, store: DuckDBStore, query: FunnelQuery) -> Callable[[], list[int]]:
    return lambda: [s.users for s in run(store.funnel(query)).steps]


async def _session() -> ClientSession:
    return ClientSession()


async def _post(session: ClientSession, url: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps({"query": DOCUMENT, "variables": variables})
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
        payload = await response.json()
    if "errors" in payload:
        raise AssertionError(payload["errors"])
    return payload["data"]["funnel"]


def report(
    scale: int,
    results: dict[str, dict[str, float]],
    peers: dict[str, Any],
    visits: int,
    build_s: float,
    index_bytes: int,
    load_before: tuple[float, float, float],
) -> list[Row]:
    fastest = min(results[p]["median"] for p in peers)
    load = os.getloadavg()
    print(
        f"\nx{scale}: {90_400 * scale:,} users, {visits:,} visits; funnel index built in {build_s:.2f} s, "
        f"{index_bytes / 1e6:.0f} MB; {ROUNDS[scale]} rounds ({SQL_ROUNDS[scale]} for SQL); "
        f"load average {load_before[0]:.1f} before, {load[0]:.1f} after (2 cores)"
    )
    print(f"{'engine':<42} {'median ms':>10} {'best ms':>9} {'cpu ms':>8} {'x fastest peer':>15}")
    rows: list[Row] = []
    for name, r in results.items():
        ratio = r["median"] / fastest
        print(f"{name:<42} {r['median']:>10.1f} {r['best']:>9.1f} {r['cpu']:>8.1f} {ratio:>15.2f}")
        rows.append({"bench": "funnel", "metric": f"x{scale} {name}", "value": r["median"], "unit": "ms"})
        rows.append(
            {"bench": "funnel", "metric": f"x{scale} {name} / fastest peer", "value": ratio, "unit": "x"}
        )
    base = results["store ORDERED (default)"]
    print("  store variants vs store ORDERED (median wall / best wall / cpu):")
    for q in list(QUERIES)[1:]:
        r = results[f"store {q}"]
        print(
            f"    {q:<30} {r['median'] / base['median']:.2f}x / {r['best'] / base['best']:.2f}x / "
            f"{r['cpu'] / base['cpu']:.2f}x"
        )
    rows_ms, index_ms = results["day: from funnel_analytics rows"], results["day: computed by the index"]
    print(
        f"  one day ({DAY}): rows {rows_ms['median']:.2f} ms vs index {index_ms['median']:.2f} ms "
        f"(rows {index_ms['median'] / rows_ms['median']:.2f}x faster)"
    )
    return rows


def main() -> list[Row]:
    if not kaggle_funnel.available():
        print(f"Kaggle CSVs not found at {kaggle_funnel.KAGGLE}: nothing to measure")
        return []
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-funnel-") as tmp:
        files = kaggle_funnel.prepare(Path(tmp))
        for scale, path in files.items():
            rows += run_scale(scale, path, Path(tmp))
        rows += asyncio.run(funnel_concurrency.measure(files[10], Path(tmp)))
    return rows


if __name__ == "__main__":
    main()
