"""The private redis-server must start reliably while Milvus Lite's gRPC threads are busy.

Forking a child that runs Python before exec (a ``preexec_fn``) while gRPC threads work lets gRPC's fork
handlers abort the child (SIGABRT, "epoll_wait error: Bad file descriptor"): about 1 start in 12 failed
this way on a 2-core machine. The spawn must not run fork handlers at all.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from gateway.embedded.redis_server import RedisServer

pytestmark = pytest.mark.slow

STARTS = 80


@pytest.fixture
def busy_milvus(tmp_path: Path):
    client = MilvusClient(str(tmp_path / "milvus.db"))
    client.create_collection("busy", dimension=8)
    rng = np.random.default_rng(0)
    client.insert("busy", [{"id": i, "vector": rng.random(8).tolist()} for i in range(200)])
    stop = threading.Event()

    def search_until_stopped() -> None:
        local = np.random.default_rng(1)
        while not stop.is_set():
            client.search("busy", [local.random(8).tolist()], limit=5)

    threads = [threading.Thread(target=search_until_stopped, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        yield client
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        client.close()


async def test_redis_child_starts_every_time_while_grpc_threads_run(tmp_path, busy_milvus):
    failures = []
    for i in range(STARTS):
        server = RedisServer(tmp_path / f"redis-{i}")
        try:
            await server.start()
        except Exception as exc:  # collected, so the assertion reports how many of the starts failed
            failures.append(f"start {i}: {exc}"[:200])
        finally:
            await server.stop()
    assert failures == [], f"{len(failures)} of {STARTS} starts failed: {failures[:3]}"
