"""Two `funnelgate serve` replicas behind a real nginx, on shared backends: the MongoDB adapter over the
wire (the Mongo-wire test server) and the 3-master Redis Cluster. Vectors stay per replica (Milvus Lite
is one process per file; production shares a Milvus server), so nothing here asks for them."""

from __future__ import annotations

import asyncio
import itertools
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.cache import keys
from gateway.stores.collections import PAGE_VISITS, USER_SESSIONS, USERS
from gateway.stores.mongo.store import MongoStore
from gateway.stores.redis.cache import RedisCache
from tests.api import fixture_data as fx
from tests.realtime.conftest import GraphQLSocket
from tests.redis_fixtures import cluster_env, flush_cluster
from tests.replicas import INSTALL_HINT, Topology, behind_nginx, nginx_executable

pytestmark = pytest.mark.slow

USERS_QUERY = "{ users(first: 10) { totalCount edges { node { id device sex } } } }"
ACTIVITY = "subscription($id: Int!) { userActivity(userId: $id) { eventId userId pageType } }"


@pytest.fixture
async def topology(tmp_path: Path, mongo_wire_url: str, redis_cluster: list[int]) -> AsyncIterator[Topology]:
    if nginx_executable() is None:
        pytest.skip(INSTALL_HINT)
    database = f"replicas_{uuid.uuid4().hex[:10]}"
    store = MongoStore.connect(mongo_wire_url, database)
    try:
        await store.ensure_indexes()
        await store.insert_many(USERS, fx.USERS)
        await store.insert_many(USER_SESSIONS, fx.SESSIONS)
        await store.insert_many(PAGE_VISITS, fx.VISITS)
        await store.set_default_funnel(fx.DEFAULT_FUNNEL)
    finally:
        await store.close()
    await flush_cluster(redis_cluster)
    env = {"FUNNEL_MONGO_URL": mongo_wire_url, "FUNNEL_MONGO_DB": database, **cluster_env(redis_cluster)}
    async with behind_nginx(tmp_path, env) as running:
        running.redis_ports = redis_cluster
        yield running


async def until_subscribed(topology: Topology, within_s: float = 60) -> None:
    """Until a connection is subscribed to the events channel on some cluster node (PUBSUB NUMSUB
    counts the node it is asked on, so every master is asked)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        total = 0
        for port in topology.redis_ports:
            node = RedisCache.connect(f"redis://127.0.0.1:{port}/0")
            try:
                [[_, count]] = await node.pipeline([("PUBSUB", "NUMSUB", keys.CHANNEL_EVENTS)])
            finally:
                await node.close()
            total += int(count)
        if total:
            return
        assert asyncio.get_running_loop().time() < deadline, "no replica subscribed in time"
        await asyncio.sleep(0.05)


async def post_query(http: aiohttp.ClientSession, url: str, query: str) -> tuple[str, dict[str, Any]]:
    async with http.post(f"{url}/graphql", json={"query": query}) as resp:
        assert resp.status == 200, await resp.text()
        return resp.headers["X-Upstream"], await resp.json()


async def test_two_replicas_behind_nginx_share_queries_events_and_survive_a_loss(topology: Topology):
    one, two = (r.address for r in topology.replicas)
    expected_users = sorted(
        ({"id": u["user_id"], "device": u["device"].upper(), "sex": u["sex"].upper()} for u in fx.USERS),
        key=lambda u: u["id"],
    )
    async with aiohttp.ClientSession() as http:
        # Round robin: consecutive requests alternate between the replicas, and their answers agree.
        answers = [await post_query(http, topology.url, USERS_QUERY) for _ in range(6)]
        upstreams = [u for u, _ in answers]
        assert set(upstreams) == {one, two}
        assert all(a != b for a, b in itertools.pairwise(upstreams))
        for _, body in answers:
            assert "errors" not in body, body
            users = body["data"]["users"]
            assert users["totalCount"] == len(fx.USERS)
            assert [e["node"] for e in users["edges"]] == expected_users

        # A subscription through nginx on one replica hears an event posted through nginx to the other.
        ws = await http.ws_connect(f"{topology.url}/graphql", protocols=["graphql-transport-ws"])
        subscribed_on = ws._response.headers["X-Upstream"]
        socket = GraphQLSocket(ws)
        await socket.init()
        await socket.subscribe(ACTIVITY, {"id": 4242})
        await until_subscribed(topology)  # asked of the Redis nodes, not through nginx
        event = {"type": "page_view", "eventId": "nginx-1", "userId": 4242, "pageType": "home_page"}
        async with http.post(f"{topology.url}/events", json=[event]) as resp:
            assert resp.status == 200, await resp.text()
            posted_on = resp.headers["X-Upstream"]
        assert {subscribed_on, posted_on} == {one, two}  # round robin: the next request, the other one
        message = await socket.receive()
        assert message["payload"]["data"]["userActivity"] == {
            "eventId": "nginx-1",
            "userId": 4242,
            "pageType": "home_page",
        }
        await ws.close()

        # The shared store saw the posted events, whichever replica stored them.
        _, body = await post_query(http, topology.url, "{ user(id: 4242) { id sessions { id userId } } }")
        assert "errors" not in body, body
        assert body["data"]["user"]["id"] == 4242
        assert [s["userId"] for s in body["data"]["user"]["sessions"]] == [4242]

        # Kill one replica outright: the other keeps serving everything through nginx.
        victim = topology.replicas[0]
        victim.process.send_signal(signal.SIGKILL)
        await victim.process.wait()
        after = [await post_query(http, topology.url, USERS_QUERY) for _ in range(6)]
        assert {u for u, _ in after} <= {two, f"{one}, {two}"}  # a retried request names both
        # The user the event created is listed too: one document store behind both replicas.
        assert all(b["data"]["users"]["totalCount"] == len(fx.USERS) + 1 for _, b in after)
        assert after[0][1]["data"]["users"]["edges"][-1]["node"]["id"] == 4242
