"""Many clients asking distinct uncached funnels at once, while one client repeats a cached one: do the
distinct funnels use both cores, and do cached requests still come back quickly?

The gateway runs here (the embedded store with its funnel index, a private redis-server, the response
cache on); the clients run in a child process so they do not share the gateway's event loop. Distinct
funnels differ by their conversion window, so each one misses every cache and is computed. Reported:
distinct funnels per second with 1 client and with CLIENTS clients, the gateway process's CPU use in
cores meanwhile, and the cached request's latency alone and under that load. Called by bench_funnel.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from itertools import count
from pathlib import Path
from typing import Any

# The load runs this file as a child process: the checkout's gateway, not whichever one is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession, web

from gateway.config import load_settings
from gateway.embedded.redis_server import RedisServer
from gateway.services import Services
from gateway.stores.duckdb.store import DuckDBStore
from gateway.stores.redis.cache import RedisCache
from gateway.web.app import create_app

CLIENTS = 32
SECONDS = 8.0
# One document, a new window in its variables each time: what a dashboard sends (parsed once).
DISTINCT = "query($w: Int) { funnel(conversionWindowSeconds: $w) { steps { users medianTimeToConvert } } }"
CACHED = "{ funnel(breakdown: DEVICE) { steps { users } breakdowns { key } } }"


async def measure(path: Path, tmp: Path) -> list[dict[str, Any]]:
    redis = RedisServer(tmp / "redis")
    cache = RedisCache.connect(await redis.start())
    store = await DuckDBStore.open(path)
    runner = None
    try:
        assert await store.wait_for_funnel_index()
        services = Services(load_settings(env={}), store, vectors=None, cache=cache)  # type: ignore[arg-type]
        runner = web.AppRunner(create_app(services), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/graphql"  # type: ignore[union-attr]
        results = {}
        for label, clients in (("idle", 0), ("1 client", 1), (f"{CLIENTS} clients", CLIENTS)):
            loop0, other0, wall0 = *_thread_cpu(), time.perf_counter()
            results[label] = await _child(url, clients, 1_000_000 * (clients + 1))
            loop1, other1, wall = *_thread_cpu(), time.perf_counter() - wall0
            results[label] |= {"loop": (loop1 - loop0) / wall, "pool": (other1 - other0) / wall}
    finally:
        if runner is not None:
            await runner.cleanup()
        await store.close()
        await cache.close()
        await redis.stop()
    return _report(results)


def _thread_cpu() -> tuple[float, float]:
    """CPU seconds of this process's event-loop (main) thread, and of all its other threads (the
    store's pool, where the funnels run; ended threads included), from /proc (Linux)."""
    fields = Path(f"/proc/self/task/{threading.main_thread().native_id}/stat").read_text().rsplit(")", 1)[1]
    ticks = fields.split()
    loop = (int(ticks[11]) + int(ticks[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return loop, time.process_time() - loop


def _report(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    print(f"\nconcurrency (x10, {SECONDS:.0f} s per load; gateway CPU in cores: event loop / other threads):")
    print(
        f"{'load':<12} {'distinct/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'loop':>5} {'pool':>5} "
        f"{'cached p50':>11} {'cached p99':>11}"
    )
    rows = []
    for label, r in results.items():
        print(
            f"{label:<12} {r['rps']:>10.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['loop']:>5.2f} "
            f"{r['pool']:>5.2f} {r['cached_p50']:>11.2f} {r['cached_p99']:>11.2f}"
        )
        rows += [
            {"bench": "funnel", "metric": f"concurrency {label}: distinct funnels", "value": r["rps"], "unit": "req/s"},
            {"bench": "funnel", "metric": f"concurrency {label}: cached p99", "value": r["cached_p99"], "unit": "ms"},
        ]  # fmt: skip
    return rows


async def _child(url: str, clients: int, first_window: int) -> dict[str, Any]:
    args = [sys.executable, __file__, "--load", url, str(clients), str(first_window), str(SECONDS)]
    proc = await asyncio.create_subprocess_exec(*args, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    return json.loads(out)


# -- the clients (child process) ----------------------------------------------------------------------
async def _load(url: str, clients: int, first_window: int, seconds: float) -> dict[str, Any]:
    windows = count(first_window)
    distinct: list[float] = []
    cached: list[float] = []
    errors = 0
    headers = {"Content-Type": "application/json"}

    async def ask(
        session: ClientSession, document: str, into: list[float], window: int | None = None
    ) -> None:
        nonlocal errors
        started = time.perf_counter()
        payload = {"query": document, "variables": {"w": window} if window is not None else {}}
        async with session.post(url, data=json.dumps(payload), headers=headers) as response:
            body = await response.read()
        into.append((time.perf_counter() - started) * 1000)
        errors += response.status != 200 or b'"errors"' in body

    async with ClientSession() as session:
        await ask(session, CACHED, [])  # computed once: cached from here on
        deadline = time.perf_counter() + seconds

        async def distinct_client() -> None:
            while time.perf_counter() < deadline:
                await ask(session, DISTINCT, distinct, next(windows))

        async def cached_client() -> None:
            while time.perf_counter() < deadline:
                await ask(session, CACHED, cached)
                await asyncio.sleep(0.02)

        started = time.perf_counter()
        await asyncio.gather(cached_client(), *(distinct_client() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    if errors:
        raise SystemExit(f"{errors} failed requests")

    def pct(values: list[float], q: float) -> float:
        return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else (values or [0.0])[0]

    return {
        "rps": len(distinct) / elapsed,
        "p50": pct(distinct, 50),
        "p99": pct(distinct, 99),
        "cached_p50": pct(cached, 50),
        "cached_p99": pct(cached, 99),
    }


if __name__ == "__main__" and sys.argv[1:2] == ["--load"]:
    target, n, window, secs = sys.argv[2:6]
    print(json.dumps(asyncio.run(_load(target, int(n), int(window), float(secs)))))
