"""Backends failing without taking the gateway down (issue 13): the private Redis supervised and
restarted, a corrupt Milvus Lite directory degrading only the vector fields."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.web.app import create_app
from tests.test_server import _env, _free_port, _run

FIXTURE_CSV = Path(__file__).parent / "fixtures" / "ingest" / "clean"


async def _poll(check, deadline_s: float = 60.0, every_s: float = 0.1):
    """``await check()`` until it returns something truthy; that value, or the last one at the deadline."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    value = await check()
    while not value and loop.time() < end:
        await asyncio.sleep(every_s)
        value = await check()
    return value


async def test_killed_private_redis_is_restarted_and_the_cache_used_again(services):
    supervisor = services.redis_supervisor
    assert supervisor is not None
    first_pid = supervisor.server.pid
    query = {"query": "{ dashboard { sessions } }"}
    async with TestClient(TestServer(create_app(services))) as client:

        async def x_cache() -> str | None:
            resp = await client.post("/graphql", json=query)
            assert resp.status == 200 and "errors" not in await resp.json()
            return resp.headers.get("X-Cache")

        assert [await x_cache(), await x_cache()] == ["miss", "hit"]
        os.kill(first_pid, signal.SIGKILL)

        async def restarted() -> bool:
            return supervisor.restarts == 1 and supervisor.server.pid not in (None, first_pid)

        assert await _poll(restarted), supervisor.state()
        health = await (await client.get("/healthz")).json()
        assert health["dependencies"]["cache"]["status"] == "up"
        assert health["dependencies"]["cache"]["restarts"] == 1
        # The restarted server is empty: the first answer is computed again and stored, the next one
        # comes from the cache, through the same client the gateway opened at start.
        hits_before = services.cache_stats.hits["query:response"]
        assert await _poll(lambda: _is_miss_then_hit(x_cache)), "the cache was not used again"
        assert services.cache_stats.hits["query:response"] > hits_before
    metrics = services.redis_supervisor.state()
    assert metrics == {"restarts": 1}


async def _is_miss_then_hit(x_cache) -> bool:
    return [await x_cache(), await x_cache()] == ["miss", "hit"]


async def test_health_reports_the_gap_while_redis_cannot_restart(services, monkeypatch):
    supervisor = services.redis_supervisor

    async def refuse(*args, **kwargs):
        from gateway.errors import StoreUnavailable

        raise StoreUnavailable("redis-server exited at start (1): simulated")

    first_pid = supervisor.server.pid
    monkeypatch.setattr(supervisor.server, "start", refuse)
    os.kill(first_pid, signal.SIGKILL)
    async with TestClient(TestServer(create_app(services))) as client:

        async def down() -> dict | None:
            resp = await client.get("/healthz")
            body = await resp.json()
            cache = body["dependencies"]["cache"]
            return body if resp.status == 503 and "restart_error" in cache else None

        body = await _poll(down)
        assert body, "health never reported the dead redis-server"
        cache = body["dependencies"]["cache"]
        assert cache["status"] == "down" and cache["restarts"] == 0 and cache["down_for_s"] >= 0
        assert "simulated" in cache["restart_error"]
        # Funnels and the rest still answer, from the store.
        resp = await client.post("/graphql", json={"query": "{ dashboard { sessions } }"})
        assert (await resp.json())["data"] == {"dashboard": {"sessions": 0}}  # the empty store's answer
    monkeypatch.undo()  # let the supervisor bring it back so the fixture closes a live server

    async def back() -> bool:
        return supervisor.restarts == 1

    assert await _poll(back)


@pytest.mark.slow
async def test_corrupt_milvus_db_serve_starts_funnels_answer_vectors_unavailable(tmp_path):
    data_dir, port = tmp_path / "data", _free_port()
    ingest = await _run("ingest", "--csv-dir", str(FIXTURE_CSV), env=_env(data_dir, port))
    _, err = await asyncio.wait_for(ingest.communicate(), 120)
    assert ingest.returncode == 0, err.decode()
    milvus = data_dir / "milvus.db"
    if milvus.is_dir():
        shutil.rmtree(milvus)
    milvus.write_bytes(b"\x00garbage, not a Milvus Lite directory\xff" * 64)

    proc = await _run("serve", env=_env(data_dir, port))
    try:
        async with aiohttp.ClientSession() as http:

            async def health() -> tuple[int, dict] | None:
                if proc.returncode is not None:
                    raise AssertionError(
                        f"serve exited ({proc.returncode}): {(await proc.stderr.read()).decode()}"
                    )
                try:
                    async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                        return resp.status, await resp.json()
                except aiohttp.ClientError:
                    return None

            answered = await _poll(health, deadline_s=120, every_s=0.25)
            assert answered, "serve never answered /healthz"
            status, body = answered
            assert status == 503 and body["status"] == "degraded"
            deps = body["dependencies"]
            assert deps["vector_index"]["status"] == "down"
            assert deps["document_store"]["status"] == "up" and deps["cache"]["status"] == "up"

            url = f"http://127.0.0.1:{port}/graphql"
            funnel = {"query": "{ funnel { steps { name users } } }"}
            async with http.post(url, json=funnel) as resp:
                answer = await resp.json()
            assert "errors" not in answer, answer
            # The clean CSVs (pages named from their files: home_page_table.csv -> home) reach home 6
            # users, search 4, payment 2, confirmation 1, each a subset of the one before.
            assert answer["data"]["funnel"]["steps"] == [
                {"name": "home", "users": 6},
                {"name": "search", "users": 4},
                {"name": "payment", "users": 2},
                {"name": "confirmation", "users": 1},
            ]

            similar = {"query": "{ similarUsers(userId: 1, limit: 3) { userId } }"}
            async with http.post(url, json=similar) as resp:
                answer = await resp.json()
            assert [e["extensions"]["code"] for e in answer["errors"]] == ["UNAVAILABLE"], answer
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert "vector index unavailable" in err.decode()


def _listening_tcp_inodes() -> set[str]:
    """Inodes of this process's listening TCP sockets (IPv4 and IPv6), read from /proc."""
    ours = set()
    for fd in Path("/proc/self/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            ours.add(target[8:-1])
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    listening.add(fields[9])
    return ours & listening


async def test_milvus_lite_listens_on_a_private_unix_socket_not_tcp(tmp_path):
    from gateway.stores.milvus.recovering import RecoveringVectors

    # Other tests of the same process may leave listeners behind: compare before and after the open.
    before = _listening_tcp_inodes()
    vectors = await RecoveringVectors.open(str(tmp_path / "milvus.db"))
    try:
        opened_tcp = _listening_tcp_inodes() - before
        sock = Path(vectors._lite.uri.removeprefix("unix:"))
        assert stat.S_ISSOCK(os.stat(sock).st_mode) and sock.parent == tmp_path / "run"
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert opened_tcp == set(), "Milvus Lite listens on TCP"
        await vectors.ping()
    finally:
        await vectors.close()
