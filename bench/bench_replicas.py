"""Scale-out on this machine: one replica vs two behind nginx, and a single Redis vs a Redis Cluster.

Topology (tests/replicas.py): ``funnelgate serve`` processes on the MongoDB adapter over the wire (the
Mongo-wire test server, USERS users) and a Redis (a private redis-server, or a 3-master cluster on
loopback), nginx in front (docs/deploy/nginx.conf's proxy block).

* cached: the same ``user(id: 1)`` POST again and again: after the first, a whole-response hit (one
  Redis read, no store call);
* uncached: ``user(id: n)`` with a fresh n per request (every id exists, none asked twice): every
  request misses Redis and asks the store.

Load: one child process, HTTP_CONCURRENCY connections, HTTP_SECONDS per run. The machine has 2 cores
shared with the load generator, nginx, the replicas, Redis and the wire server: two replicas cannot
double anything here, and the ratio is reported as measured.

Run: ``python bench/bench_replicas.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientError, ClientSession, TCPConnector

from gateway.embedded.redis_server import RedisServer
from gateway.stores.collections import USERS
from gateway.stores.mongo.store import MongoStore
from tests.mongo_server import running_mongo_wire_server
from tests.redis_cluster import running_redis_cluster
from tests.redis_fixtures import cluster_env, flush_cluster
from tests.replicas import nginx_executable, nginx_in_front, replicas_running

Row = dict[str, Any]
BENCH = "replicas"
USER_COUNT = 12_000
IDS_PER_RUN = 1_200  # an uncached run stops before it would ask for an id a second time
HTTP_SECONDS = 4.0
ROUNDS = 3
HTTP_CONCURRENCY = 16
CACHED = json.dumps({"query": "{ user(id: 1) { id device sex } }"})
UNCACHED = '{"query": "{ user(id: %d) { id device sex } }"}'
# Every load run comes from one address, and with authentication off that address is the rate limit's
# subject (admin: 1,200 requests a minute by default): a cached run reaches 1,200 requests in under
# HTTP_SECONDS, and its workers' last in-flight requests, then every later run in that minute, got 429.
# A limit no run reaches keeps the limiter's per-request counting and Redis flushes in what is measured
# (0 would skip them).
UNLIMITED = "viewer=1000000000,analyst=1000000000,admin=1000000000"


async def _load(url: str, body: str, first_id: int) -> float:
    """req/s measured by a child process; ``body`` may hold %d (a fresh user id per request)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--load", f"{url}/graphql", body, str(first_id), str(HTTP_SECONDS),
        str(HTTP_CONCURRENCY),
        stdout=subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    report = json.loads(out)
    if report["errors"]:
        raise RuntimeError(
            f"{report['errors']} of {report['requests']} requests failed against {url}: "
            f"by status {report['statuses']}, first: {report['first_error']}"
        )
    return float(report["rps"])


async def _seed(mongo_url: str, database: str) -> None:
    store = MongoStore.connect(mongo_url, database)
    try:
        await store.ensure_indexes()
        users = [
            {"user_id": i, "device": ("desktop", "mobile")[i % 2], "sex": ("male", "female")[i % 3 == 0]}
            for i in range(1, USER_COUNT + 1)
        ]
        await store.insert_many(USERS, users)
    finally:
        await store.close()


async def _rounds(targets: dict[str, str], body: str, ids: itertools.count | None = None) -> dict[str, float]:
    """Median req/s per target over ROUNDS rounds, the targets taking turns inside each round, so a
    change in the machine's other load hits them alike."""
    seen: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, url in targets.items():
            seen[name].append(await _load(url, body, next(ids) if ids else 0))
    return {name: statistics.median(values) for name, values in seen.items()}


async def _bench() -> list[Row]:
    if nginx_executable() is None:
        print("nginx is not installed: run `make install-nginx`; bench_replicas skipped")
        return []
    rows: list[Row] = []
    ids = itertools.count(1, IDS_PER_RUN)  # each uncached run starts on ids no run asked for

    def row(metric: str, value: float, unit: str) -> None:
        rows.append({"bench": BENCH, "metric": metric, "value": value, "unit": unit})
        print(f"{metric:<52} {value:10.1f} {unit}", flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="fg-bench-replicas-") as tmp,
        running_mongo_wire_server() as mongo_url,
        running_redis_cluster() as ports,
    ):
        work = Path(tmp)
        database = f"bench_{uuid.uuid4().hex[:8]}"
        await _seed(mongo_url, database)
        base = {"FUNNEL_MONGO_URL": mongo_url, "FUNNEL_MONGO_DB": database, "FUNNEL_RATE_LIMITS": UNLIMITED}
        await flush_cluster(ports)
        clustered = {**base, **cluster_env(ports)}

        # Single Redis vs the cluster: one replica on each, direct, cached, taking turns.
        redis = RedisServer(work / "redis")
        single: Mapping[str, str] = {**base, "FUNNEL_REDIS_URL": await redis.start()}
        try:
            async with (
                replicas_running(work / "single", single, 1) as [on_single],
                replicas_running(work / "clustered", clustered, 1) as [on_cluster],
            ):
                targets = {"single": f"http://{on_single.address}", "cluster": f"http://{on_cluster.address}"}
                await _rounds(targets, CACHED)  # warm: the first request computes and caches
                cached = await _rounds(targets, CACHED)
        finally:
            await redis.stop()
        row("cached req/s, 1 replica, single Redis", cached["single"], "req/s")
        row("cached req/s, 1 replica, Redis Cluster (3 masters)", cached["cluster"], "req/s")
        row("cluster / single Redis, cached", cached["cluster"] / cached["single"], "ratio")

        # One replica direct, one behind nginx, two behind nginx: the same replicas, taking turns.
        async with (
            replicas_running(work / "replicas", clustered, 2) as (first, second),
            nginx_in_front(work / "nginx-1", [first.port]) as one_behind,
            nginx_in_front(work / "nginx-2", [first.port, second.port]) as two_behind,
        ):
            targets = {"direct": f"http://{first.address}", "nginx-1": one_behind, "nginx-2": two_behind}
            await _rounds(targets, CACHED)
            cached = await _rounds(targets, CACHED)
            uncached = await _rounds(targets, UNCACHED, ids)
        for name, label in (("direct", "1 replica direct"), ("nginx-1", "1 replica behind nginx"),
                            ("nginx-2", "2 replicas behind nginx")):  # fmt: skip
            row(f"cached req/s, {label}", cached[name], "req/s")
            row(f"uncached req/s, {label}", uncached[name], "req/s")
        row("2 / 1 replicas behind nginx, cached", cached["nginx-2"] / cached["nginx-1"], "ratio")
        row("2 / 1 replicas behind nginx, uncached", uncached["nginx-2"] / uncached["nginx-1"], "ratio")
        row("1 behind nginx / 1 direct, cached", cached["nginx-1"] / cached["direct"], "ratio")
    return rows


# -- the load generator (child process) ------------------------------------------------------------
async def _generate_load(
    url: str, body: str, first_id: int, seconds: float, concurrency: int
) -> dict[str, Any]:
    done = errors = issued = 0
    statuses: Counter[str] = Counter()
    first_error = ""
    ids = itertools.count(first_id)
    headers = {"Content-Type": "application/json"}
    deadline = time.perf_counter() + seconds
    varying = "%d" in body

    async def worker(session: ClientSession) -> None:
        nonlocal done, errors, issued, first_error
        # An uncached run stops at IDS_PER_RUN ids *taken* (counting answers let the workers' in-flight
        # requests take ids of the next run); a cached one runs its HTTP_SECONDS.
        while time.perf_counter() < deadline and not (varying and issued >= IDS_PER_RUN):
            issued += 1
            data = body % next(ids) if varying else body
            try:
                async with session.post(url, data=data, headers=headers) as response:
                    payload = await response.read()
                    status = str(response.status)
                    failed = response.status != 200
                    detail = f"HTTP {status}: {payload[:300].decode(errors='replace')}"
            except (ClientError, TimeoutError) as exc:  # counted and described, not fatal to the run
                status, failed, detail = type(exc).__name__, True, f"{type(exc).__name__}: {exc}"[:300]
            statuses[status] += 1
            done += 1
            if failed:
                errors += 1
                first_error = first_error or detail

    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return {
        "rps": done / elapsed, "requests": done, "errors": errors, "statuses": dict(statuses),
        "first_error": first_error,
    }  # fmt: skip


def main() -> list[Row]:
    return asyncio.run(_bench())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        url, body, first_id, seconds, concurrency = sys.argv[2:7]
        load = _generate_load(url, body, int(first_id), float(seconds), int(concurrency))
        print(json.dumps(asyncio.run(load)))
    else:
        main()
