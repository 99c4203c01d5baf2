"""Realtime capture: sustained events/s through POST /events and request -> subscriber latency, against
the limit: a bare aiohttp handler that only does the durable write and a PUBLISH.

1. The embedded stack (DuckDB, Milvus Lite, a private redis-server) with USER_COUNT users already stored
   (bench_api's synthetic shop), the gateway app served on 127.0.0.1. Each side gets a stack of its own,
   so both start from the same stored rows.
2. A child process (so the load generator does not share the server's event loop) posts batches of 100
   events: a live mix from ACTIVE visitors (35 % page views, 60 % interactions, 5 % conversions; no
   sessionId, no timestamp: the gateway sessionises and stamps them). Each batch carries one probe
   event for user PROBE_USER whose id holds its send time; a subscriber in the same child measures
   request -> message: a GraphQL ``userActivity`` subscription over WebSocket for the gateway, a plain
   Redis SUBSCRIBE for the limit.
   * closed loop, CONCURRENCY clients posting back to back for SECONDS: the sustained events/s;
   * open loop at OFFERED events/s (the target rate), then at LIGHT, for SECONDS each: p50/p99 latency
     at that load (past its capacity a server queues, and latency measures the queue).
   BENCH_CONCURRENCY changes CONCURRENCY (more clients, bigger group commits), BENCH_SECONDS the
   length of each phase. The mean number of events per group commit is printed with the figures.
3. The limit: a bare aiohttp ``POST /events`` that parses the batch, writes it as page_visits through
   the same group commit (``GroupCommitWriter`` + ``DocumentStore.insert_many``: one DuckDB commit per
   group, fsync) and PUBLISHes it -- no validation, enrichment, sessions, aggregates or invalidation.
4. The pub/sub hub's cost per published message (FANOUT_EVENTS events) with 1, 100 and 1,000
   ``userActivity`` subscribers following distinct users: offered by user, as the hub does, against a
   predicate per subscriber.

Targets on 2 cores: >= 5,000 events/s, p99 <= 100 ms, gateway/limit >= 0.5. The machine's load average
is printed with the figures: others' processes share the 2 cores.

Run: ``python bench/bench_realtime.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson
from aiohttp import ClientSession, TCPConnector, WSMsgType, web

from gateway.cache import keys
from gateway.config import load_settings
from gateway.realtime.events import utc_now
from gateway.realtime.hub import EventFeed, Hub
from gateway.realtime.writer import GroupCommitWriter
from gateway.services import Services, open_services
from gateway.stores.collections import PAGE_VISITS, USERS
from gateway.web.app import create_app
from gateway.web.server import freeze_startup_heap

Row = dict[str, Any]
BENCH = "realtime"
USER_COUNT = 20_000
ACTIVE = 5_000  # visitors sending events during the run
PROBE_USER = 1
BATCH = 100
SECONDS = float(os.environ.get("BENCH_SECONDS", "6"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "32"))  # clients posting back to back
CLOSED_MAX_RATE = 80_000  # events/s the closed loop prepares distinct batches for (the limit's ~60k)
OFFERED = 5_000  # events/s in the open-loop phase (the target)
LIGHT = 1_000  # and at a light load: latency when the gateway is not saturated
PAGES = ("home_page", "search_page", "payment_page", "payment_confirmation_page")


def _batches(count: int, seed: int, prefix: str) -> list[bytes]:
    """Pre-built request bodies (the probe's id is filled in at send time)."""
    rng = random.Random(seed)
    out = []
    for b in range(count):
        events: list[dict[str, Any]] = [
            {"type": "page_view", "eventId": "PROBE", "userId": PROBE_USER, "pageType": "home_page"}
        ]
        for i in range(BATCH - 1):
            user = rng.randrange(2, ACTIVE + 2)
            page = rng.choice(PAGES)
            event_id = f"{prefix}-{seed}-{b}-{i}"
            roll = rng.random()
            if roll < 0.35:
                events.append(
                    {
                        "type": "page_view",
                        "eventId": event_id,
                        "userId": user,
                        "pageType": page,
                        "duration": 30,
                    }
                )
            elif roll < 0.95:
                kind = rng.choice(("click", "scroll", "hover"))
                events.append({"type": "interaction", "eventId": event_id, "userId": user, "pageType": page,
                               "interactionType": kind, "element": f"{page}-{kind}", "coordinates": {"x": 10, "y": 20}})  # fmt: skip
            else:
                events.append({"type": "conversion", "eventId": event_id, "userId": user,
                               "pageType": "payment_confirmation_page", "value": 49.9})  # fmt: skip
        out.append(orjson.dumps(events))
    return out


# -- the limit: durable write + PUBLISH, nothing else ----------------------------------------------------
def bare_app(services: Services) -> web.Application:
    store, cache = services.store, services.cache

    async def commit(docs: list[Any]) -> tuple[set[str], dict[str, str], Any]:
        await store.insert_many(PAGE_VISITS, docs)
        await cache.publish(
            keys.CHANNEL_EVENTS,
            orjson.dumps({"events": [{"eventId": d["event_id"], "userId": d["user_id"]} for d in docs]}),
        )
        return set(), {}, asyncio.sleep(0)

    writer = GroupCommitWriter(commit)  # type: ignore[arg-type]  # documents instead of Events: same queue

    async def post(request: web.Request) -> web.Response:
        raw = orjson.loads(await request.read())
        now = utc_now()
        docs = [
            _Doc(event_id=e["eventId"], user_id=e["userId"], session_id="bare", page_type=e["pageType"],
                 timestamp=now, duration=0.0, device=None)
            for e in raw
        ]  # fmt: skip
        await writer.write(docs)  # type: ignore[arg-type]
        return web.Response(
            body=orjson.dumps({"accepted": [e["eventId"] for e in raw]}), content_type="application/json"
        )

    async def close(_: web.Application) -> None:
        await writer.close()

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_post("/events", post)
    app.on_cleanup.append(close)
    return app


class _Doc(dict):  # type: ignore[type-arg]
    """A page_visits document with the ``event_id`` attribute the writer dedupes by."""

    @property
    def event_id(self) -> str:
        return str(self["event_id"])


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def _groups(services: Services, name: str) -> int:
    return services.realtime.writer.groups if name == "gateway" and services.realtime else 0


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _child(mode: str, url: str, subscriber: str, seed: int, prefix: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--load", mode, url, subscriber, str(seed), prefix, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return json.loads(out)


async def _side(name: str) -> dict[str, Any]:
    """One side's three phases on a stack of its own: each side starts from the same stored shop (the
    limit's ~300,000 rows would otherwise be in the gateway's tables, its indexes and its checkpoints)."""
    from bench_api import synthetic_shop

    with tempfile.TemporaryDirectory(prefix="bench-realtime-") as tmp:
        settings = load_settings(env={"FUNNEL_DATA_DIR": tmp})
        async with open_services(settings) as services:
            users, visits = synthetic_shop(USER_COUNT)
            await services.store.insert_many(USERS, users)
            await services.store.insert_many(PAGE_VISITS, visits)
            await services.store.set_default_funnel(list(PAGES))
            del users, visits
            freeze_startup_heap()  # as `funnelgate serve` does
            print(f"{name}: {USER_COUNT} users in DuckDB; load average {os.getloadavg()}")
            if name == "limit":
                app, subscriber = bare_app(services), f"redis:{services.cache.where}"  # type: ignore[attr-defined]
            else:
                app, subscriber = create_app(services), "ws"
            runner, url = await _serve(app)
            try:
                cpu, groups = _cpu_s(), _groups(services, name)
                closed = await _child("closed", url, subscriber, 1, name)
                if name == "gateway":  # how many events one commit took, on average
                    closed["per_commit"] = closed["events"] / max(1, _groups(services, name) - groups)
                # CPU of this process (server, DuckDB threads, not Redis) per event: depends far less
                # on the others sharing the machine than wall-clock rates do.
                closed["cpu_us_per_event"] = (_cpu_s() - cpu) / max(1, closed["events"]) * 1e6
                opened = await _child(f"open:{OFFERED}", url, subscriber, 2, name)
                light = await _child(f"open:{LIGHT}", url, subscriber, 3, name)
            finally:
                await runner.cleanup()
            fanout = await _fanout(services.realtime.hub) if services.realtime and name == "gateway" else {}
    print(f"{name}: {closed['events_per_s']:.0f} events/s closed loop; at {OFFERED}/s offered: "
          f"{opened['events_per_s']:.0f}/s, p50 {opened['p50_ms']:.1f} ms, p99 {opened['p99_ms']:.1f} ms; "
          f"at {LIGHT}/s: p50 {light['p50_ms']:.1f} ms, p99 {light['p99_ms']:.1f} ms")  # fmt: skip
    return {"closed": closed, "open": opened, "light": light, "fanout": fanout}


FANOUT_EVENTS = 1_500  # a closed-loop group's published message
FANOUT_SUBSCRIBERS = (1, 100, 1_000)


async def _fanout(hub: Hub) -> dict[int, tuple[float, float]]:
    """The hub's cost per published message with N ``userActivity`` subscribers (distinct users): offered
    by user (the hub splits the message once) against a predicate per subscriber (what they were)."""
    rng = random.Random(7)
    events = [
        {
            "eventId": f"fan-{i}",
            "type": "page_view",
            "userId": rng.randrange(1, ACTIVE),
            "pageType": "home_page",
        }
        for i in range(FANOUT_EVENTS)
    ]
    message = orjson.dumps({"events": events})
    repeats = 5
    out = {}
    for count in FANOUT_SUBSCRIBERS:
        timings = []
        for keyed in (True, False):
            feeds = [
                EventFeed(None, 10**6, user=u) if keyed else EventFeed(_follows(u), 10**6)
                for u in range(1, count + 1)
            ]
            async with contextlib.AsyncExitStack() as stack:
                for feed in feeds:
                    await stack.enter_async_context(hub.subscribed(feed))
                took = []
                for _ in range(repeats):
                    started = time.perf_counter()
                    hub.dispatch(message)
                    took.append(time.perf_counter() - started)
            timings.append(statistics.median(took) * 1e3)
        out[count] = (timings[0], timings[1])
        print(f"hub fan-out, {FANOUT_EVENTS} events to {count} userActivity subscribers: "
              f"{timings[0]:.2f} ms by user, {timings[1]:.2f} ms by predicate")  # fmt: skip
    return out


def _follows(user: int) -> Any:
    return lambda event: event.get("userId") == user


async def _bench() -> list[Row]:
    results = {name: await _side(name) for name in ("limit", "gateway")}
    load = os.getloadavg()

    gateway, limit = results["gateway"], results["limit"]
    ratio = gateway["closed"]["events_per_s"] / limit["closed"]["events_per_s"]
    print(f"{'POST /events, batches of 100':<36} {'gateway':>10} {'limit':>10}")
    for label, phase, field, unit in (
        (f"sustained (closed loop, c={CONCURRENCY})", "closed", "events_per_s", "ev/s"),
        (f"achieved at {OFFERED} ev/s offered", "open", "events_per_s", "ev/s"),
        ("p50 request -> subscriber", "open", "p50_ms", "ms"),
        ("p99 request -> subscriber", "open", "p99_ms", "ms"),
        (f"achieved at {LIGHT} ev/s offered", "light", "events_per_s", "ev/s"),
        ("p50 request -> subscriber", "light", "p50_ms", "ms"),
        ("p99 request -> subscriber", "light", "p99_ms", "ms"),
        ("server CPU per event (closed loop)", "closed", "cpu_us_per_event", "us"),
    ):
        print(f"{label:<36} {gateway[phase][field]:>10.1f} {limit[phase][field]:>10.1f} {unit}")
    print(f"{'events per group commit (closed loop)':<36} {gateway['closed']['per_commit']:>10.0f}")
    print(f"{'gateway / limit (target >= 0.5)':<36} {ratio:>10.2f}")
    for count, (by_user, by_predicate) in gateway["fanout"].items():
        print(f"{f'hub, 1 message to {count} followers':<36} {by_user:>10.2f} {by_predicate:>10.2f} ms "
              f"(by user / by predicate: {by_user / by_predicate:.3f})")  # fmt: skip
    print(f"load average during the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (2 cores)")
    rows = []
    for who in ("gateway", "limit"):
        r = results[who]
        rows += [
            {"bench": BENCH, "metric": f"{who}: sustained events/s (c={CONCURRENCY})", "value": r["closed"]["events_per_s"], "unit": "ev/s"},
            {"bench": BENCH, "metric": f"{who}: p50 at {OFFERED} ev/s offered", "value": r["open"]["p50_ms"], "unit": "ms"},
            {"bench": BENCH, "metric": f"{who}: p99 at {OFFERED} ev/s offered", "value": r["open"]["p99_ms"], "unit": "ms"},
            {"bench": BENCH, "metric": f"{who}: p99 at {LIGHT} ev/s offered", "value": r["light"]["p99_ms"], "unit": "ms"},
            {"bench": BENCH, "metric": f"{who}: server CPU per event", "value": r["closed"]["cpu_us_per_event"], "unit": "us"},
        ]  # fmt: skip
    rows.append(
        {
            "bench": BENCH,
            "metric": "gateway / limit events/s (target >= 0.5)",
            "value": ratio,
            "unit": "ratio",
        }
    )
    for count, (by_user, by_predicate) in gateway["fanout"].items():
        rows.append({"bench": BENCH, "metric": f"hub fan-out to {count} followers: by user / by predicate",
                     "value": by_user / by_predicate, "unit": "ratio"})  # fmt: skip
    rows.append({"bench": BENCH, "metric": "load average (1 min) at the end", "value": load[0], "unit": ""})
    return rows


# -- the load generator (child process) ------------------------------------------------------------------
async def _subscribe(url: str, subscriber: str, latencies: list[float], ready: asyncio.Event) -> None:
    def record(event_id: str) -> None:
        if event_id.startswith("probe-"):
            latencies.append((time.time_ns() - int(event_id.split("-")[1])) / 1e6)

    if subscriber == "ws":
        async with (
            ClientSession() as http,
            http.ws_connect(url + "/graphql", protocols=["graphql-transport-ws"]) as ws,
        ):
            await ws.send_json({"type": "connection_init"})
            await ws.receive_json()
            query = "subscription($u: Int!) { userActivity(userId: $u) { eventId } }"
            await ws.send_json(
                {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"u": PROBE_USER}}}
            )
            await asyncio.sleep(0.5)  # the hub subscribes to Redis
            ready.set()
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                if data.get("type") == "next":
                    record(data["payload"]["data"]["userActivity"]["eventId"])
    else:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(subscriber.removeprefix("redis:"))
        pubsub = client.pubsub()
        await pubsub.subscribe(keys.CHANNEL_EVENTS)
        ready.set()
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if message and message["type"] == "message":
                for event in orjson.loads(message["data"])["events"]:
                    record(event["eventId"])


async def _generate(mode: str, url: str, subscriber: str, seed: int, prefix: str) -> dict[str, Any]:
    rate = float(mode.split(":")[1]) if mode.startswith("open:") else 0.0
    # Enough distinct batches for the whole phase: a closed loop that ran out and posted batches again
    # would measure replays (duplicates cost less to store, and the planner never remembers their users).
    planned_rate = CLOSED_MAX_RATE if mode == "closed" else rate
    bodies = _batches(int(planned_rate * SECONDS / BATCH) + 10, seed, prefix)
    latencies: list[float] = []
    ready = asyncio.Event()
    listener = asyncio.create_task(_subscribe(url, subscriber, latencies, ready))
    await asyncio.wait_for(ready.wait(), 30)
    accepted = errors = 0
    sequence = iter(range(10**9))

    async def send(http: ClientSession, body: bytes) -> None:
        nonlocal accepted, errors
        probe = f"probe-{time.time_ns()}-{next(sequence)}".encode()
        async with http.post(
            url + "/events",
            data=body.replace(b"PROBE", probe, 1),
            headers={"Content-Type": "application/json"},
        ) as resp:
            answer = await resp.read()
            if resp.status == 200:
                accepted += len(orjson.loads(answer)["accepted"])
            else:
                errors += 1

    async with ClientSession(connector=TCPConnector(limit=64)) as http:
        started = time.perf_counter()
        deadline = started + SECONDS
        if mode == "closed":
            position = iter(range(10**9))

            async def worker() -> None:
                while time.perf_counter() < deadline:
                    index = next(position)
                    if index >= len(bodies):
                        return  # every distinct batch sent: the phase ends early rather than replay
                    await send(http, bodies[index])

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        else:
            tasks = []
            interval = BATCH / rate
            for i, body in enumerate(bodies):
                due = started + i * interval
                if due > deadline:
                    break
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                tasks.append(asyncio.create_task(send(http, body)))
            await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # the last probes' messages
    listener.cancel()
    ordered = sorted(latencies)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")  # noqa: E731
    return {
        "events": accepted,
        "events_per_s": accepted / elapsed,
        "errors": errors,
        "probes": len(ordered),
        "p50_ms": statistics.median(ordered) if ordered else float("nan"),
        "p99_ms": p(0.99),
    }


def main() -> list[Row]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    return asyncio.run(_bench())


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--load":
        mode, url, subscriber, seed, prefix = sys.argv[2:7]
        print(json.dumps(asyncio.run(_generate(mode, url, subscriber, int(seed), prefix))))
    else:
        main()
