"""Subscriptions fed by Redis pub/sub: over WebSocket, across two gateways, through a Redis outage, with
stalled and churning subscribers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.cache import keys
from gateway.config import load_settings
from gateway.realtime import streams
from gateway.realtime.hub import ChangeFlag, Dropped, EventFeed
from gateway.services import Services, open_services
from gateway.stores.redis.cache import RedisCache
from gateway.web.app import LIMITER, create_app
from tests.realtime.conftest import (
    numsub,
    open_socket,
    page_view,
    post_events,
    wait_for_subscription,
    wait_until,
)
from tests.redis_fixtures import REDIS_MODES, cluster_env, flush_cluster

ACTIVITY = "subscription($id: Int!) { userActivity(userId: $id) { eventId userId sessionId pageType device reportedDevice } }"


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_user_activity_over_websocket_gets_that_user_s_events(http, services: Services):
    socket = await open_socket(http)
    op = await socket.subscribe(ACTIVITY, {"id": 2})
    await wait_for_subscription(services.cache)
    await post_events(
        http, [page_view("other", 3, "home_page"), page_view("mine", 2, "search_page", device="tablet")]
    )
    message = await socket.receive()
    assert message["id"] == op and message["type"] == "next"
    event = message["payload"]["data"]["userActivity"]
    assert event == {
        "eventId": "mine",
        "userId": 2,
        "sessionId": event["sessionId"],
        "pageType": "search_page",
        "device": "MOBILE",  # the user's, as stored
        "reportedDevice": "TABLET",  # what the event said
    }
    await socket.ws.close()


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_funnel_updates_sends_the_funnel_then_each_change(http, services: Services):
    socket = await open_socket(http)
    query = """subscription { funnelUpdates(steps: ["home_page", "search_page"], filter: {device: MOBILE},
                                              intervalSeconds: 0.1) { steps { name users avgTimeSpent } } }"""
    await socket.subscribe(query)
    first = (await socket.receive())["payload"]["data"]["funnelUpdates"]["steps"]
    await wait_for_subscription(services.cache)
    today = datetime.now(UTC).isoformat()
    await post_events(http, [page_view("f-1", 6, "search_page", timestamp=today)])  # user 6: desktop, ignored
    await post_events(http, [page_view("f-2", 2, "search_page", duration=1000, timestamp=today)])
    second = (await socket.receive())["payload"]["data"]["funnelUpdates"]["steps"]
    assert [s["users"] for s in first] == [s["users"] for s in second] == [2, 2]  # users 2 and 4
    # Search time per user (tests/api/fixture_data.py): user 2 25 s, user 4 9 s -> 17; then user 2 1025 s.
    assert (first[1]["avgTimeSpent"], second[1]["avgTimeSpent"]) == (17.0, (1025 + 9) / 2)
    # A step's event that leaves the answer as it was (user 2 views search again, for 0 s: the same
    # users, the same time) sends nothing: the next message is the next change (user 4's 500 s).
    await post_events(http, [page_view("f-3", 2, "search_page", duration=0, timestamp=today)])
    await asyncio.sleep(1.0)  # past the interval: a message for f-3 would come before the next one
    await post_events(http, [page_view("f-4", 4, "search_page", duration=500, timestamp=today)])
    third = (await socket.receive())["payload"]["data"]["funnelUpdates"]["steps"]
    assert third[1]["avgTimeSpent"] == (1025 + 9 + 500) / 2  # f-3 added 0 s; f-4 500 s to user 4's 9
    await socket.ws.close()


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_funnel_updates_send_nothing_when_only_unselected_fields_change(http, services: Services):
    socket = await open_socket(http)
    query = """subscription { funnelUpdates(steps: ["home_page", "search_page"], filter: {device: MOBILE},
                                              intervalSeconds: 0.1) { steps { users } ...Rate } }
               fragment Rate on Funnel { overallConversionRate }"""
    await socket.subscribe(query)
    first = (await socket.receive())["payload"]["data"]["funnelUpdates"]
    await wait_for_subscription(services.cache)
    today = datetime.now(UTC).isoformat()
    # User 2 (mobile, already counted at both steps) spends 1000 s more on search: avgTimeSpent
    # changes, which this client did not select; then user 10, new, reaches home only.
    await post_events(http, [page_view("u-1", 2, "search_page", duration=1000, timestamp=today)])
    await asyncio.sleep(1.0)  # past the interval: a message for u-1 would come before the next one
    await post_events(http, [page_view("u-2", 10, "home_page", device="mobile", timestamp=today)])
    second = (await socket.receive())["payload"]["data"]["funnelUpdates"]
    assert [s["users"] for s in first["steps"]] == [2, 2]  # users 2 and 4
    assert [s["users"] for s in second["steps"]] == [3, 2]
    assert (first["overallConversionRate"], second["overallConversionRate"]) == (1.0, 2 / 3)
    await socket.ws.close()


def test_a_change_flag_coalesces_any_number_of_messages() -> None:
    flag = ChangeFlag(lambda event: event["pageType"] == "home")
    for _ in range(100):
        flag.offer([{"pageType": "home"}, {"pageType": "other"}])
    assert flag.take() == (True, None)
    assert flag.take() == (False, None)
    flag.offer([{"pageType": "other"}])
    assert flag.take() == (False, None)


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_realtime_metrics_count_live_events(http, services: Services):
    minute = datetime.now(UTC).replace(second=1, microsecond=0)
    events = [
        page_view(f"m-{i}", i, "home_page", duration=5, timestamp=minute.isoformat()) for i in (1, 2, 4, 900)
    ]  # user 900 is new and reports no device: counted as a user without one
    await post_events(http, [*events, page_view("m-search", 4, "search_page", timestamp=minute.isoformat())])
    socket = await open_socket(http)
    await socket.subscribe("""subscription { realtimeMetrics(intervalSeconds: 0.1) {
        activeUsers eventsPerMinute byDevice { device activeUsers } steps { name usersToday byDevice { device usersToday } } } }""")
    metrics = (await socket.receive())["payload"]["data"]["realtimeMetrics"]
    assert metrics["activeUsers"] == 4
    # The Device enum, as every other device field; null for users without a device.
    assert {d["device"]: d["activeUsers"] for d in metrics["byDevice"]} == {
        "DESKTOP": 1,
        "MOBILE": 2,
        None: 1,
    }
    home, search = metrics["steps"][:2]
    assert home["name"] == "home_page" and home["usersToday"] == 4
    assert {d["device"]: d["usersToday"] for d in home["byDevice"]} == {"DESKTOP": 1, "MOBILE": 2, None: 1}
    assert search == {
        "name": "search_page",
        "usersToday": 1,
        "byDevice": [{"device": "MOBILE", "usersToday": 1}],
    }
    await socket.ws.close()
    # Per minute: the running minute, plus the part of the previous one still inside the last 60 s.
    at = minute.replace(second=30, tzinfo=None)
    assert (await services.realtime.snapshot(now=at)).events_per_minute == 5
    later = await services.realtime.snapshot(now=at.replace(second=15) + timedelta(minutes=1))
    assert later.events_per_minute == 3.75  # 45 s of the previous minute's 60 still count: 5 * 0.75


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_a_stalled_subscriber_does_not_delay_another(http, services: Services):
    """A stops reading after its first event; B reads everything. B gets every event, in order, while A
    falls behind and is dropped -- the hub never waits for A."""
    realtime = services.realtime
    stalled = streams.user_activity(realtime, 2)
    reader = streams.user_activity(realtime, 2)
    first_of_stalled = asyncio.ensure_future(anext(stalled))
    received: list[str] = []

    async def read_all() -> None:
        async for event in reader:
            received.append(event["eventId"])
            if len(received) == 1 + 4 * 100:
                return

    reading = asyncio.ensure_future(read_all())
    await wait_until(lambda: realtime.hub.subscribers == 2)
    await wait_for_subscription(services.cache)
    await post_events(http, [page_view("start", 2, "home_page")])
    assert (await first_of_stalled)["eventId"] == "start"
    # 300 events unread when the fourth batch comes: past the stalled subscriber's buffer (256).
    for batch in range(4):
        await post_events(http, [page_view(f"e{batch}-{i}", 2, "home_page") for i in range(100)])
    await asyncio.wait_for(reading, 60)
    assert received == ["start", *(f"e{b}-{i}" for b in range(4) for i in range(100))]
    with pytest.raises(Dropped, match="more than 256 events were waiting"):
        await anext(stalled)
    await reader.aclose()
    await stalled.aclose()
    await wait_until(lambda: not realtime.hub.running)


@pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
async def test_a_reader_gets_a_batch_larger_than_the_buffer_whole(http, services: Services):
    """One batch of 600 events for the user: more than the buffer (256), but the subscriber was not
    behind when it came, so it is delivered, every event in order, and the subscriber stays."""
    realtime = services.realtime
    reader = streams.user_activity(realtime, 3)
    first = asyncio.ensure_future(anext(reader))
    await wait_until(lambda: realtime.hub.subscribers == 1)
    await wait_for_subscription(services.cache)
    status, _ = await post_events(http, [page_view(f"big-{i}", 3, "home_page") for i in range(600)])
    assert status == 200
    received = [(await asyncio.wait_for(first, 30))["eventId"]]
    while len(received) < 600:
        received.append((await asyncio.wait_for(anext(reader), 30))["eventId"])
    assert received == [f"big-{i}" for i in range(600)]
    await post_events(http, [page_view("after", 3, "home_page")])
    assert (await asyncio.wait_for(anext(reader), 30))["eventId"] == "after"
    await reader.aclose()
    await wait_until(lambda: not realtime.hub.running)


async def test_100_subscribe_unsubscribe_cycles_leave_no_task_and_no_redis_subscription(
    http, services: Services
):
    persistent = await open_socket(http)
    # Opening the socket was counted by the rate limiter, whose flush runs as a short task of its own: let
    # it end, or the count below includes a task that is gone by the end of the test.
    await wait_until(lambda: not http.server.app[LIMITER].flushing)
    tasks_before, subscribed_before = len(asyncio.all_tasks()), await numsub(services.cache)
    assert subscribed_before == 0
    for cycle in range(100):
        if cycle % 2 == 0:  # unsubscribe: "complete" on a connection that stays open
            op = await persistent.subscribe(ACTIVITY, {"id": 2})
            await wait_for_subscription(services.cache, 1)
            await persistent.complete(op)
        else:  # disconnect: the client goes away mid-subscription
            socket = await open_socket(http)
            await socket.subscribe(ACTIVITY, {"id": 2})
            await wait_for_subscription(services.cache, 1)
            await socket.ws.close()
        await wait_for_subscription(services.cache, 0)
    await wait_until(lambda: len(asyncio.all_tasks()) <= tasks_before)
    assert len(asyncio.all_tasks()) == tasks_before
    assert await numsub(services.cache) == subscribed_before
    assert services.realtime.hub.subscribers == 0 and not services.realtime.hub.running
    await persistent.ws.close()


# -- with a Redis of our own: two gateways on it, and an outage ------------------------------------------
@contextlib.asynccontextmanager
async def gateway(data_dir: Path, redis_url: str, **env: str) -> AsyncIterator[tuple[Services, TestClient]]:
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(data_dir), "FUNNEL_REDIS_URL": redis_url, **env})
    async with open_services(settings) as services, TestClient(TestServer(create_app(services))) as client:
        yield services, client


async def test_an_event_posted_to_one_gateway_reaches_a_subscriber_on_another(tmp_path: Path, shared_redis):
    async with (
        gateway(tmp_path / "one", shared_redis.url) as (_, one),
        gateway(tmp_path / "two", shared_redis.url) as (two, http_two),
    ):
        socket = await open_socket(http_two)
        await socket.subscribe(ACTIVITY, {"id": 77})
        await wait_for_subscription(two.cache)
        status, _ = await post_events(one, [page_view("cross-1", 77, "home_page", device="mobile")])
        assert status == 200
        event = (await socket.receive())["payload"]["data"]["userActivity"]
        assert (event["eventId"], event["userId"], event["device"]) == ("cross-1", 77, "MOBILE")
        await socket.ws.close()


async def test_two_gateways_on_the_cluster_share_events_through_it(tmp_path: Path, redis_cluster):
    await flush_cluster(redis_cluster)
    env = cluster_env(redis_cluster)
    # Each gateway knows the cluster through a different node.
    other = env["FUNNEL_REDIS_URL"].replace(str(redis_cluster[0]), str(redis_cluster[2]))
    async with (
        gateway(tmp_path / "one", env["FUNNEL_REDIS_URL"], FUNNEL_REDIS_CLUSTER="on") as (one, http_one),
        gateway(tmp_path / "two", other, FUNNEL_REDIS_CLUSTER="on") as (two, http_two),
    ):
        assert one.cache.name == two.cache.name == "redis-cluster"
        socket = await open_socket(http_two)
        await socket.subscribe(ACTIVITY, {"id": 78})
        await wait_for_subscription(two.cache)
        status, _ = await post_events(http_one, [page_view("cluster-1", 78, "home_page", device="desktop")])
        assert status == 200
        event = (await socket.receive())["payload"]["data"]["userActivity"]
        assert (event["eventId"], event["userId"], event["device"]) == ("cluster-1", 78, "DESKTOP")
        await socket.ws.close()


async def test_redis_down_capture_stays_durable_and_subscribers_hear_it_then_resume(
    tmp_path: Path, shared_redis
):
    async with gateway(tmp_path / "gw", shared_redis.url) as (services, http):
        socket = await open_socket(http)
        await socket.subscribe(ACTIVITY, {"id": 5})
        await wait_for_subscription(services.cache)
        await shared_redis.stop()

        outage: dict[str, Any] = await socket.receive()
        [error] = outage["payload"]["errors"]
        assert outage["type"] == "next" and outage["payload"]["data"] == {"userActivity": None}
        assert error["extensions"]["code"] == "UNAVAILABLE" and "Redis is unavailable" in error["message"]
        assert "resume when Redis is back" in error["message"]
        status, body = await post_events(http, [page_view("while-down", 5, "home_page")])
        assert (status, body["accepted"]) == (200, ["while-down"])
        [visits] = await services.store.visits_by_user_ids([5])
        assert visits[-1]["event_id"] == "while-down"

        await shared_redis.start()  # same socket: clients reconnect by themselves
        await wait_for_subscription(services.cache)
        await post_events(http, [page_view("after", 5, "search_page")])
        resumed = await socket.receive()
        assert resumed["payload"]["data"]["userActivity"]["eventId"] == "after"
        assert not services.realtime.redis_debt  # the epoch was replaced once Redis answered again
        await socket.ws.close()


async def test_nothing_cached_before_a_redis_pause_is_served_after_it_with_no_subscriber(
    tmp_path: Path, shared_redis
):
    # A Redis that pauses (SIGSTOP here; a network blip, a long fork) keeps what it cached. A capture
    # during the pause cannot replace its version tokens; with no subscriber (no hub to reconnect) and
    # no later event, nothing else replaced them, and the funnel from before the pause came back.
    funnel = '{ funnel(steps: ["home_page", "search_page"]) { steps { users } } }'
    at = datetime.now(UTC).isoformat()
    async with gateway(tmp_path / "gw", shared_redis.url) as (services, http):

        async def users() -> list[int]:
            resp = await http.post("/graphql", json={"query": funnel})
            body = await resp.json()
            assert "errors" not in body, body
            return [step["users"] for step in body["data"]["funnel"]["steps"]]

        first = [page_view("a-home", 1, "home_page", timestamp=at)]
        first.append(page_view("a-search", 1, "search_page", timestamp=at))
        assert (await post_events(http, first))[0] == 200
        assert await users() == [1, 1]
        hits = services.cache_stats.hits["query:response"]
        assert await users() == [1, 1]
        assert services.cache_stats.hits["query:response"] == hits + 1  # the whole answer, cached

        os.kill(shared_redis.pid, signal.SIGSTOP)  # type: ignore[arg-type]
        try:
            second = [page_view("b-home", 2, "home_page", timestamp=at)]
            second.append(page_view("b-search", 2, "search_page", timestamp=at))
            status, body = await post_events(http, second)
            assert (status, body["accepted"]) == (200, ["b-home", "b-search"])  # stored all the same
            assert services.realtime.redis_debt
        finally:
            os.kill(shared_redis.pid, signal.SIGCONT)  # type: ignore[arg-type]
        assert services.realtime.hub.subscribers == 0

        # Users 1 and 2 both reached both steps, whether Redis answers yet or not ...
        assert await users() == [2, 2]
        breaker = services.cache.breaker  # type: ignore[attr-defined]
        for _ in range(400):  # ... and once it answers again and the breaker has closed (bounded)
            if breaker.state == "closed" and not services.realtime.redis_debt:
                break
            assert await users() == [2, 2]
            await asyncio.sleep(0.05)
        assert breaker.state == "closed" and not services.realtime.redis_debt
        assert await users() == [2, 2]
        assert await users() == [2, 2]


class CuttableLink:
    """A TCP relay in front of a Redis: ``cut`` refuses and drops every connection (Redis unreachable,
    as in a network outage or a restart with persistence) while Redis keeps all it holds; ``restore``
    listens again on the same port."""

    def __init__(self, target: str) -> None:
        self._target = target  # the Redis URL: unix://path or redis://127.0.0.1:port/0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._target.startswith("unix://"):
            return await asyncio.open_unix_connection(self._target.removeprefix("unix://"))
        host, port = self._target.removeprefix("redis://").split("/")[0].split(":")
        return await asyncio.open_connection(host, int(port))

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await self._connect()
        self._writers |= {writer, upstream_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, upstream_writer), pump(upstream_reader, writer))

    async def restore(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        await self._server.wait_closed()


async def test_a_gateway_stopped_while_redis_is_unreachable_pays_its_debt_when_it_runs_again(
    tmp_path: Path, shared_redis
):
    # A gateway stores events while Redis is unreachable (their version tokens are not replaced), then
    # stops (a deploy, a crash) before Redis is reachable again. Redis comes back with everything it
    # cached (it never restarted, or restarted from its append-only file): the funnel from before, under
    # tokens nothing has replaced. The next run of that gateway must not serve it, and once it has
    # replaced the epoch no replica does.
    funnel = '{ funnel(steps: ["home_page", "search_page"]) { steps { users } } }'
    at = datetime.now(UTC).isoformat()
    link = CuttableLink(shared_redis.url)
    await link.restore()

    async def users(http: TestClient) -> list[int]:
        resp = await http.post("/graphql", json={"query": funnel})
        body = await resp.json()
        assert "errors" not in body, body
        return [step["users"] for step in body["data"]["funnel"]["steps"]]

    async with gateway(tmp_path / "gw", link.url) as (services, http):
        first = [page_view("a-home", 1, "home_page", timestamp=at)]
        first.append(page_view("a-search", 1, "search_page", timestamp=at))
        assert (await post_events(http, first))[0] == 200
        assert await users(http) == [1, 1]
        hits = services.cache_stats.hits["query:response"]
        assert await users(http) == [1, 1]
        assert services.cache_stats.hits["query:response"] == hits + 1  # cached in Redis

        await link.cut()
        second = [page_view("b-home", 2, "home_page", timestamp=at)]
        second.append(page_view("b-search", 2, "search_page", timestamp=at))
        status, body = await post_events(http, second)
        assert (status, body["accepted"]) == (200, ["b-home", "b-search"])  # stored all the same
        assert services.realtime is not None and services.realtime.redis_debt
    await link.restore()  # after the gateway stopped

    # Another replica that never saw the outage (its own data directory, the same Redis) would still
    # serve [1, 1] until the epoch is replaced: the stopped gateway's next run replaces it.
    async with gateway(tmp_path / "gw", link.url) as (services, http):
        assert await users(http) == [2, 2]  # users 1 and 2 both reached both steps
        breaker = services.cache.breaker  # type: ignore[attr-defined]
        realtime = services.realtime
        assert realtime is not None
        for _ in range(400):  # until a probe (made by a call) has closed the breaker, the debt paid
            if breaker.state == "closed" and not realtime.redis_debt:
                break
            assert await users(http) == [2, 2]
            await asyncio.sleep(0.05)
        assert breaker.state == "closed" and not realtime.redis_debt
        assert await users(http) == [2, 2]
    async with gateway(tmp_path / "other", link.url) as (services, http):
        assert await users(http) == [2, 2]
        assert services.realtime is not None and not services.realtime.redis_debt  # it owes nothing
    await link.cut()


async def test_a_replica_that_owes_the_epoch_pays_it_without_any_request(tmp_path: Path, shared_redis):
    # Replica A stores events while Redis is unreachable from it, then gets no request at all once it
    # is back (the load balancer sends none its way; no subscriber, no orchestrator probe). Its breaker
    # probes Redis only when a call is refused, so nothing replaced ver:epoch, and every other replica
    # (reading the same Redis, which never went away for them) served the answers from before the
    # events for as long as the entries lived. Redis is read here directly, as another replica would.
    at = datetime.now(UTC).isoformat()
    link = CuttableLink(shared_redis.url)
    await link.restore()
    other = RedisCache.connect(shared_redis.url)
    try:
        async with gateway(tmp_path / "a", link.url) as (a, http_a):
            first = [page_view("a-home", 1, "home_page", timestamp=at)]
            assert (await post_events(http_a, first))[0] == 200
            [before] = await other.get_many([keys.version_epoch()])

            await link.cut()  # Redis unreachable from A only
            second = [page_view("b-home", 2, "home_page", timestamp=at)]
            status, body = await post_events(http_a, second)
            assert (status, body["accepted"]) == (200, ["b-home"])  # stored all the same
            assert a.realtime is not None and a.realtime.redis_debt
            await link.restore()

            # No request to A from here on (bounded at ~20 s: A tries again every DEBT_RETRY_S).
            for _ in range(400):
                if not a.realtime.redis_debt:
                    break
                await asyncio.sleep(0.05)
            assert not a.realtime.redis_debt
            [after] = await other.get_many([keys.version_epoch()])
            assert after is not None and after != before  # every versioned entry is stale now
        await link.cut()
    finally:
        await other.close()


async def test_invalidate_cache_while_redis_is_unreachable_is_unavailable_not_an_internal_error(
    tmp_path: Path, shared_redis
):
    # invalidateCache walks the keys with SCAN, which ran outside the adapter's outage handling: with
    # Redis unreachable its ConnectionError escaped, the operator got INTERNAL_SERVER_ERROR ("the
    # gateway logged it", with a traceback) for what is an outage: UNAVAILABLE, retry when it is back.
    link = CuttableLink(shared_redis.url)
    await link.restore()
    mutation = "mutation($s: CacheScope!) { invalidateCache(scope: $s) { scope keysRemoved } }"
    async with gateway(tmp_path / "gw", link.url) as (_, http):
        await link.cut()
        for scope in ("FUNNELS", "ALL"):
            resp = await http.post("/graphql", json={"query": mutation, "variables": {"s": scope}})
            body = await resp.json()
            assert body["data"] == {"invalidateCache": None}, body  # root fields are nullable
            [error] = body["errors"]
            assert error["extensions"]["code"] == "UNAVAILABLE", error
        await link.restore()
        resp = await http.post("/graphql", json={"query": mutation, "variables": {"s": "FUNNELS"}})
        for _ in range(400):  # once the breaker has closed again (a probe each refused call; bounded)
            body = await resp.json()
            if "errors" not in body:
                break
            await asyncio.sleep(0.05)
            resp = await http.post("/graphql", json={"query": mutation, "variables": {"s": "FUNNELS"}})
        assert body["data"]["invalidateCache"]["scope"] == "FUNNELS", body
    await link.cut()


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (ACTIVITY, {"id": -1}, "userId must be an integer 1..2147483647, got -1"),
        (
            "subscription { realtimeMetrics(intervalSeconds: 0) { activeUsers } }",
            None,
            "intervalSeconds must be 0.1..3600, got 0",
        ),
        (
            "subscription { realtimeMetrics(intervalSeconds: 1e9) { activeUsers } }",
            None,
            "intervalSeconds must be 0.1..3600, got 1e+09",
        ),
        (
            "subscription { health(intervalSeconds: 3600.5) { status } }",
            None,
            "intervalSeconds must be 0.1..3600, got 3600.5",
        ),
    ],
)
async def test_a_subscription_with_a_bad_argument_ends_with_a_coded_error(
    http, query: str, variables: dict[str, Any] | None, message: str
):
    socket = await open_socket(http)
    op = await socket.subscribe(query, variables)
    answer = await socket.receive()
    assert answer["id"] == op and answer["type"] in ("next", "error")
    errors = answer["payload"]["errors"] if answer["type"] == "next" else answer["payload"]
    assert [(e["message"], e["extensions"]["code"]) for e in errors] == [(message, "BAD_USER_INPUT")]
    await socket.ws.close()


async def test_the_hub_offers_a_user_s_followers_only_that_user_s_events(services: Services) -> None:
    hub = services.realtime.hub
    events = [
        {"eventId": "a", "userId": 1, "pageType": "home"},
        {"eventId": "b", "userId": 2, "pageType": "home"},
        {"eventId": "c", "userId": 3, "pageType": "search"},
        {"eventId": "d", "userId": 1, "pageType": "search"},
    ]
    first, second, other = (
        EventFeed(None, 10, user=1),
        EventFeed(None, 10, user=1),
        EventFeed(None, 10, user=2),
    )
    homes = EventFeed(lambda event: event["pageType"] == "home", 10)
    async with (
        hub.subscribed(first),
        hub.subscribed(second),
        hub.subscribed(homes),
    ):
        async with hub.subscribed(other):
            hub.dispatch(orjson.dumps({"events": events}))
        hub.dispatch(orjson.dumps({"events": [{"eventId": "e", "userId": 2, "pageType": "home"}]}))
        assert [(await first.next())["eventId"] for _ in range(2)] == ["a", "d"]
        assert [(await second.next())["eventId"] for _ in range(2)] == ["a", "d"]
        assert first.waiting == second.waiting == 0
        # user 2's follower left before "e": it got "b" only
        assert other.waiting == 1 and (await other.next())["eventId"] == "b"
        assert [(await homes.next())["eventId"] for _ in range(3)] == ["a", "b", "e"]
    assert hub.subscribers == 0


def test_an_event_feed_follows_one_user_or_a_predicate() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        EventFeed(None, 10)
    with pytest.raises(ValueError, match="exactly one"):
        EventFeed(lambda event: True, 10, user=1)
