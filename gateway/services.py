"""The backends, opened once from settings, checked, and closed together.

``open_services`` is the only place that decides which adapter serves which role, and it logs that
decision once per role. Embedded backends (DuckDB, Milvus Lite, a private redis-server) hold the data
directory's lock, so a second process on the same directory fails clearly instead of corrupting files.
``check_health`` pings every backend concurrently (for /healthz and the ``health`` field), and says which
embeddings serve, or that there are none yet.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway import background
from gateway.cache.stats import CacheStats
from gateway.config import Settings, hide_password, redact
from gateway.embedded.datadir_lock import DataDirLock
from gateway.errors import QueryTimeout, StoreUnavailable
from gateway.ops.metrics import BACKEND_UP, POOL_CAPACITY
from gateway.ops.timing import timed
from gateway.stores.collections import USER_COLLECTION
from gateway.stores.contracts import Cache, DocumentStore, VectorIndex
from gateway.stores.vectors import version_of

if TYPE_CHECKING:
    from gateway.embedded.redis_supervisor import RedisSupervisor
    from gateway.realtime.runtime import Realtime

log = logging.getLogger("funnelgate")

NO_EMBEDDINGS = "no embeddings yet: run `funnelgate embed`"


@dataclass
class Services:
    settings: Settings
    store: DocumentStore
    vectors: VectorIndex
    cache: Cache
    cache_stats: CacheStats = field(default_factory=CacheStats)
    redis_supervisor: RedisSupervisor | None = None  # set when the cache is a private redis-server
    realtime: Realtime | None = None  # set by open_services: capture, the pub/sub hub (gateway/realtime)
    # Cache scope (generation id and default revision) -> its stored default funnel, once seen
    # (analytics/default_funnel: it never changes under one scope, so it is read from the store once)
    stored_defaults: dict[str, tuple[str, ...]] = field(default_factory=dict)


async def open_store(settings: Settings, *, index: bool | None = None) -> DocumentStore:
    """The configured document store. ``index`` overrides FUNNEL_INDEX (a job that only writes skips
    building the embedded store's funnel index). Callers of an embedded store hold the data-dir lock,
    so a killed build's leftovers can go now."""
    job = index is False and settings.index  # a command that only writes, not FUNNEL_INDEX=off
    index = settings.index if index is None else index
    if settings.mongo_url:
        from gateway.stores.mongo.store import MongoStore

        store: DocumentStore = MongoStore.connect(
            settings.mongo_url, settings.mongo_db, settings.mongo_pool_size, settings.mongo_timeout_ms
        )
        where = f"MongoDB {hide_password(settings.mongo_url)} db={settings.mongo_db}"
        POOL_CAPACITY.labels("mongo").set(settings.mongo_pool_size)
    else:
        from gateway.stores.duckdb.generations import remove_leftovers
        from gateway.stores.duckdb.store import DuckDBStore

        remove_leftovers(settings.duckdb_path)
        store = await DuckDBStore.open(
            settings.duckdb_path, index=index, preaggregates=settings.preaggregates
        )
        where = f"embedded DuckDB {settings.duckdb_path}"
        if job:
            where += " (no live funnel index: a command builds one only for what it computes)"
        elif not index:
            where += " (funnel index off: funnels in SQL)"
    log.info("document store: %s", where)
    return store


async def open_vectors(settings: Settings) -> VectorIndex:
    from gateway.stores.milvus.recovering import RecoveringVectors

    # A Milvus server that is down, or a corrupt Milvus Lite directory, must not stop the gateway:
    # vector fields report UNAVAILABLE and /healthz says so until it is back (stores/milvus/recovering.py).
    # Milvus Lite runs in-process, so it is verified at once.
    vectors = await RecoveringVectors.open(settings.milvus_target, verify=settings.embedded_vectors)
    kind = "Milvus server" if settings.milvus_uri else "embedded Milvus Lite"
    log.info(
        "vector index: %s %s%s",
        kind,
        hide_password(settings.milvus_target),
        " (broken)" if vectors.broken else "",
    )
    return vectors


async def open_cache(settings: Settings, stack: AsyncExitStack) -> tuple[Cache, RedisSupervisor | None]:
    from gateway.embedded.redis_server import RedisServer
    from gateway.embedded.redis_supervisor import RedisSupervisor
    from gateway.stores.redis.cluster import connect

    supervisor = None
    if settings.redis_url:
        url = settings.redis_url
        log.info("cache: Redis %s %s", "Cluster via" if settings.redis_cluster else "at", hide_password(url))
    else:
        supervisor = RedisSupervisor(
            RedisServer(settings.data_dir / "redis", maxmemory=settings.redis_maxmemory)
        )
        url = await supervisor.start()
        stack.push_async_callback(supervisor.stop)
        log.info(
            "cache: private redis-server (pid %s) at %s, maxmemory %s, volatile-lru",
            supervisor.server.pid,
            url,
            settings.redis_maxmemory,
        )
    cache = connect(url, cluster=settings.redis_cluster, nodes=cluster_nodes(settings))
    stack.push_async_callback(cache.close)
    return cache, supervisor


def cluster_nodes(settings: Settings) -> list[tuple[str, int]]:
    """FUNNEL_REDIS_CLUSTER_NODES as (host, port) pairs: more nodes to discover a cluster from."""
    from gateway.setting_values import split_host_port

    return [split_host_port(item) for item in settings.redis_cluster_nodes]


def scoped_by_dataset(cache: Cache, store: DocumentStore) -> Cache:
    """The cache with derived keys scoped by the generation ``store`` serves and the revision of its
    default funnel (``datasets.cache_scope``; gateway/cache/scoped.py)."""
    from gateway.cache.scoped import DatasetScopedCache
    from gateway.stores.datasets import cache_scope

    return DatasetScopedCache(cache, lambda: cache_scope(store))


async def invalidate_shared_cache(settings: Settings, dataset: str | None = None) -> int:
    """After a data change, drop derived cache entries from a shared Redis (a private one starts empty):
    those of ``dataset`` (a generation no longer served: its entries are never read again, this only frees
    memory sooner), else all of them, whatever generation (embed changes what every one answers)."""
    if not settings.redis_url:
        return 0
    from gateway.cache.keys import ANY_DATASET, DERIVED_PREFIXES, dataset_scoped
    from gateway.stores.redis.cluster import connect

    # A generation's entries: under its id, and under its id and a pinned default's revision (``~``).
    scopes = [dataset, f"{dataset}~{ANY_DATASET}"] if dataset is not None else ["", ANY_DATASET]
    prefixes = list(dict.fromkeys(dataset_scoped(p, scope) for scope in scopes for p in DERIVED_PREFIXES))
    cache = connect(settings.redis_url, cluster=settings.redis_cluster, nodes=cluster_nodes(settings))
    try:
        removed = await cache.delete_prefixes(prefixes)
    finally:
        await cache.close()
    log.info("cache: dropped %d derived entries from %s", removed, hide_password(settings.redis_url))
    return removed


# How often a gateway that started with MongoDB down tries again to ensure its indexes (the generation is
# re-read every second by the follower, and by each health probe, whichever comes first).
STORE_RETRY_S = 5.0


async def _store_ready(store: DocumentStore, stack: AsyncExitStack, settings: Settings) -> None:
    """``serve`` on MongoDB: a server that cannot be reached at start does not stop the gateway (as a
    Milvus server or Redis that is down does not). It starts with the document store refused --
    store-backed fields answer UNAVAILABLE, /healthz 503 ``document_store: down`` -- and serves as soon
    as MongoDB answers, without a restart. Anything else (bad credentials, a refused command) still
    stops it."""
    try:
        await store.ensure_indexes()
        return
    except (StoreUnavailable, QueryTimeout) as exc:
        log.warning(
            "document store unreachable at start, serving without it until it answers "
            "(/healthz: document_store down; retried every %g s): %s",
            STORE_RETRY_S,
            redact(str(exc), settings),
        )
    getattr(store, "generation_unknown", lambda: None)()
    task = asyncio.create_task(_ensure_indexes_when_back(store), name="funnelgate-store-retry")

    # Bounded, as the generation follower's stop is: a cancelled driver call must not hold SIGTERM.
    stack.push_async_callback(background.stop, task, "the index retry")


async def _ensure_indexes_when_back(store: DocumentStore) -> None:
    while True:
        await asyncio.sleep(STORE_RETRY_S)
        try:
            await store.ensure_indexes()
        except (StoreUnavailable, QueryTimeout) as exc:
            if background.stop_requested():  # cancelled, though the driver said "unreachable"
                return
            log.debug("document store still unreachable: %s", exc)
            continue
        except Exception as exc:  # a background task: no one else would hear it
            # MongoDB answers and refuses (credentials, a command not allowed): at start that stopped
            # serve; now it serves, so it is said here, and not raised out of the exit stack at shutdown.
            log.error("document store answers but its indexes could not be ensured: %s", exc)
            return
        log.info("document store answers again: indexes ensured")
        return


@asynccontextmanager
async def open_services(
    settings: Settings, *, need_cache: bool = True, serving: bool = False
) -> AsyncIterator[Services]:
    """Open every backend; close them all (child redis-server included) on exit, even after errors.
    ``serving`` (``serve``): a MongoDB that cannot be reached at start is waited for, not fatal."""
    async with AsyncExitStack() as stack:
        if settings.uses_data_dir_exclusively:
            stack.enter_context(DataDirLock(settings.data_dir))
        # The cache first: a missing redis-server is the likeliest start-up failure, and the cheapest.
        cache, supervisor = await open_cache(settings, stack) if need_cache else (NoCache(), None)
        store = await open_store(settings)
        stack.push_async_callback(store.close)
        if serving and settings.mongo_url:
            await _store_ready(store, stack, settings)
        else:
            await store.ensure_indexes()
        follow = getattr(store, "follow", None)
        if follow is not None:
            follow()  # MongoDB: an ingest elsewhere may switch generations (stores/datasets.py)
        cache = scoped_by_dataset(cache, store)
        vectors = await open_vectors(settings)
        stack.push_async_callback(vectors.close)
        # Timed: each backend call is measured (funnelgate_backend_call_seconds, the slow-operation log).
        services = Services(
            settings=settings,
            store=timed(store, "document_store"),
            vectors=timed(vectors, "vector_index"),
            cache=timed(cache, "cache"),
            redis_supervisor=supervisor,
        )
        from gateway.realtime.runtime import Realtime

        services.realtime = Realtime(services)
        stack.push_async_callback(services.realtime.close)  # first closed: drains pending captures
        yield services


async def _probe(ping: Any, timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(ping(), timeout_s)
    except TimeoutError as exc:
        # The probe's own deadline says nothing ("TimeoutError: "): say what happened. A backend that
        # cannot be reached usually ends here, e.g. MongoDB, whose server selection waits longer.
        reason = str(exc) or f"no answer within {timeout_s:g} s"
        return {"status": "down", "error": f"{type(exc).__name__}: {reason}"[:300]}
    except Exception as exc:  # any failure means "down"; the reason is reported, not raised
        return {"status": "down", "error": f"{type(exc).__name__}: {exc}"[:300]}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def probe_backends(services: Services, timeout_s: float = 2.0) -> dict[str, dict[str, Any]]:
    """Ping every backend concurrently (each bounded by ``timeout_s``) and set funnelgate_backend_up:
    {role: {backend, status: up|down, latency_ms | error}}, errors not yet redacted. What /metrics needs;
    :func:`check_health` adds what the embeddings are."""
    roles: dict[str, Any] = {
        "document_store": services.store,
        "vector_index": services.vectors,
        "cache": services.cache,
    }
    results = await asyncio.gather(*(_probe(b.ping, timeout_s) for b in roles.values()))
    deps = {
        role: {"backend": backend.name, **result}
        for (role, backend), result in zip(roles.items(), results, strict=True)
    }
    for role, dep in deps.items():
        BACKEND_UP.labels(role).set(1 if dep["status"] == "up" else 0)
    return deps


async def check_health(services: Services, timeout_s: float = 2.0) -> dict[str, Any]:
    """{status: ok|degraded, dependencies: {role: {backend, status: up|down, latency_ms | error}}}; errors
    are redacted (config.redact): no data-dir path, no password."""
    deps = await probe_backends(services, timeout_s)
    vector_index = deps["vector_index"]
    if vector_index["status"] == "up":
        served = str(getattr(services.store, "dataset", "") or "")
        vector_index["embeddings"] = await _embeddings(services.vectors, timeout_s, served)
    if services.redis_supervisor is not None:
        deps["cache"].update(services.redis_supervisor.state())
    for dep in deps.values():  # the report goes to clients (/healthz, the health field): no server paths
        if "error" in dep:
            dep["error"] = redact(dep["error"], services.settings)
    ok = all(d["status"] == "up" for d in deps.values())
    return {"status": "ok" if ok else "degraded", "dependencies": deps}


async def _embeddings(vectors: VectorIndex, timeout_s: float, served_dataset: str = "") -> str:
    """Which behaviour vectors serve. None yet is not "down": the vector index is up, every other field
    answers, and only the vector fields say UNAVAILABLE until an embed runs — so the gateway stays in its
    load balancer (status ok) while health says plainly that there is nothing to search. Vectors embedded
    from another dataset than the one served (a re-ingest since the embed) still answer, and health says
    they are stale."""
    try:
        # serving() lists aliases rather than describing a missing one, which pymilvus logs as an ERROR.
        collection = await asyncio.wait_for(vectors.serving(USER_COLLECTION), timeout_s)
        if collection is None:
            legacy = await asyncio.wait_for(vectors.count(USER_COLLECTION), timeout_s)
            return "embedded before versions (re-embed)" if legacy else NO_EMBEDDINGS
    except Exception as exc:  # reported, not raised: health must answer whatever the vectors do
        return f"unknown ({type(exc).__name__})"
    try:
        made_by = await asyncio.wait_for(_made_by(vectors, collection), timeout_s)
    except Exception:  # the collection is known: say its version, and nothing about the dataset
        made_by = {}
    # The model that made the vectors, as their rows say: a restore names its collections after the next
    # free number, which need not be the backed-up model's (whose file it restores).
    version = f"model version {made_by.get('model_version') or version_of(USER_COLLECTION, collection)}"
    embedded_from = str(made_by.get("dataset") or "")
    if embedded_from and served_dataset and embedded_from != served_dataset:
        return (
            f"{version}, stale: embedded from dataset {embedded_from}, dataset {served_dataset} is served "
            "now (re-ingested since): run `funnelgate embed`"
        )
    return version


# Per vector index, each version's metadata once read: a version is filled before it is switched to and
# never written again (embed and restore build a new one), so every health check after the first -- a
# load balancer's every few seconds -- would read the same row again.
_MADE_BY: weakref.WeakKeyDictionary[VectorIndex, dict[str, dict[str, Any]]] = weakref.WeakKeyDictionary()


async def _made_by(vectors: VectorIndex, collection: str) -> dict[str, Any]:
    """One row's metadata: the model version and the dataset the version's vectors were embedded from
    (absent when they do not say: embedded before they did, or the version is empty)."""
    known = _MADE_BY.setdefault(vectors, {})
    if collection not in known:
        rows = await vectors.rows_between(collection, -(2**62), 2**62, 1)
        if not rows:
            return {}  # empty (being filled?): asked again next time
        known[collection] = dict(rows[0].get("metadata") or {})
    return known[collection]


class NoCache:
    """For one-shot CLI commands that don't need Redis (ingest, embed): every read misses."""

    name = "none"
    clustered = False

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    async def set_many(self, items: Sequence[tuple[str, bytes, int]]) -> None:
        return None

    async def set_absent(self, items: Sequence[tuple[str, bytes, int]]) -> list[bool]:
        return [False] * len(items)

    async def ttl(self, key: str) -> int:
        return -2

    async def delete(self, keys: Sequence[str]) -> int:
        return 0

    async def delete_prefixes(self, prefixes: Sequence[str]) -> int:
        return 0

    async def incr(self, key: str, amount: int = 1) -> int:
        return amount

    async def publish(self, channel: str, message: bytes) -> int:
        return 0

    async def pipeline(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        raise StoreUnavailable("no cache configured for this command")

    async def execute_many(self, commands: Sequence[Sequence[Any]]) -> None:
        raise StoreUnavailable("no cache configured for this command")

    async def run_script(self, source: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        raise StoreUnavailable("no cache configured for this command")

    async def open_subscription(self, channel: str) -> Any:
        raise StoreUnavailable("no cache configured for this command")
