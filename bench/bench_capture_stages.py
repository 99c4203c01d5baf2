"""Where POST /events' CPU goes: each capture stage per event, against the limit's (bench_realtime).

Groups of GROUP events (a closed-loop group commit in bench_realtime is ~1,500), bench_realtime's live
mix, on the embedded stack with its stored shop, one stage after the other on one event loop, no HTTP.
Each stage is timed as the CPU of this process per event (DuckDB's threads included; redis-server's,
another process, not):

* gateway: decode (orjson), validate, plan (sessions, devices: enrichment), record_events (the durable
  write: ids register, visits, interactions, users, session deltas, in one transaction), the planner's
  memory, effects (version tokens, aggregates, the published message: one Redis round trip);
* limit: decode and documents, insert_many (page_visits only), PUBLISH.

The last lines are bounds on bench_realtime's gateway/limit (target >= 0.5) when CPU decides it: the
limit's stages over the gateway's, and over the gateway's durable write and effects alone, the two stages
the issue requires whatever else gets cheaper.

Run: ``python bench/bench_capture_stages.py``. ``main()`` returns rows {bench, metric, value, unit}.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import statistics
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson
from bench_api import synthetic_shop
from bench_realtime import BATCH, PAGES, USER_COUNT, _batches, _Doc

from gateway.cache import keys
from gateway.config import load_settings
from gateway.realtime.batch import validate
from gateway.realtime.enrichment import plan
from gateway.realtime.events import utc_now
from gateway.services import Services, open_services
from gateway.stores.collections import PAGE_VISITS, USERS

Row = dict[str, Any]
BENCH = "capture_stages"
GROUP = 1_500
GROUPS = 24
WARM = 4  # groups left out of the medians: first plans, first inserts, caches filling


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Stages:
    def __init__(self) -> None:
        self.us: dict[str, list[float]] = {}

    @contextlib.contextmanager
    def stage(self, name: str, events: int) -> Iterator[None]:
        started = _cpu_s()
        yield
        self.us.setdefault(name, []).append((_cpu_s() - started) / events * 1e6)

    def medians(self) -> dict[str, float]:
        return {name: statistics.median(values[WARM:]) for name, values in self.us.items()}


def _groups(side: str) -> list[list[dict[str, Any]]]:
    """GROUPS groups of distinct events (the probe's id made unique per body)."""
    bodies = _batches(GROUPS * GROUP // BATCH, 1, side)
    per = GROUP // BATCH
    return [
        [
            event
            for i, body in enumerate(bodies[g * per : (g + 1) * per])
            for event in orjson.loads(body.replace(b'"PROBE"', f'"probe-{g}-{i}"'.encode()))
        ]
        for g in range(GROUPS)
    ]


async def _limit(services: Services, groups: list[list[dict[str, Any]]], stages: Stages) -> None:
    store, cache = services.store, services.cache
    for raw in groups:
        body, n, now = orjson.dumps(raw), len(raw), utc_now()
        with stages.stage("decode, documents", n):
            docs = [
                _Doc(event_id=e["eventId"], user_id=e["userId"], session_id="bare", page_type=e["pageType"],
                     timestamp=now, duration=0.0, device=None)
                for e in orjson.loads(body)
            ]  # fmt: skip
        with stages.stage("insert_many (the write)", n):
            await store.insert_many(PAGE_VISITS, docs)
        with stages.stage("PUBLISH", n):
            message = [{"eventId": d["event_id"], "userId": d["user_id"]} for d in docs]
            await cache.publish(keys.CHANNEL_EVENTS, orjson.dumps({"events": message}))


async def _gateway(services: Services, groups: list[list[dict[str, Any]]], stages: Stages) -> None:
    realtime, store = services.realtime, services.store
    assert realtime is not None
    loop = asyncio.get_running_loop()
    for raw in groups:
        body, n = orjson.dumps(raw), len(raw)
        with stages.stage("decode", n):
            decoded = orjson.loads(body)
        with stages.stage("validate", n):
            checked = validate(decoded, utc_now(), realtime.max_skew, realtime.max_age)
        clock = loop.time()
        with stages.stage("plan (enrichment)", n):
            planned = await plan(store, checked.events, realtime.gap, realtime.memory, clock)
        with stages.stage("record_events (the write)", n):
            refused = list(planned.refused)
            new = set(await store.record_events(planned.batch, refuse_stored=True, withheld=refused))
        with stages.stage("planner memory", n):
            realtime.memory.remember(planned, new, clock)
        with stages.stage("effects (Redis)", n):
            await realtime._effects(planned, new)


async def _side(name: str) -> dict[str, float]:
    stages = Stages()
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        async with open_services(load_settings(env={"FUNNEL_DATA_DIR": tmp})) as services:
            users, visits = synthetic_shop(USER_COUNT)
            await services.store.insert_many(USERS, users)
            await services.store.insert_many(PAGE_VISITS, visits)
            await services.store.set_default_funnel(list(PAGES))
            del users, visits
            run = _limit if name == "limit" else _gateway
            await run(services, _groups(name), stages)
    return stages.medians()


async def _bench() -> list[Row]:
    limit, gateway = await _side("limit"), await _side("gateway")
    print(f"capture stages, groups of {GROUP} events: CPU of this process per event (median of "
          f"{GROUPS - WARM} groups)")  # fmt: skip
    rows = []
    for side, stages in (("gateway", gateway), ("limit", limit)):
        for stage, us in stages.items():
            print(f"  {side:<8} {stage:<28} {us:7.1f} us")
            rows.append({"bench": BENCH, "metric": f"{side}: {stage}", "value": us, "unit": "us/event"})
    limit_us, gateway_us = sum(limit.values()), sum(gateway.values())
    required = gateway["record_events (the write)"] + gateway["effects (Redis)"]
    print(f"  {'limit':<8} {'all stages':<28} {limit_us:7.1f} us")
    print(f"  {'gateway':<8} {'all stages':<28} {gateway_us:7.1f} us")
    bounds = (
        ("limit / gateway, all stages", limit_us / gateway_us),
        ("limit / gateway write + effects", limit_us / required),
    )
    for label, value in bounds:
        print(f"  {label:<37} {value:7.2f} (bench_realtime's ratio target: >= 0.5)")
        rows.append({"bench": BENCH, "metric": label, "value": value, "unit": "ratio"})
    return rows


def main() -> list[Row]:
    return asyncio.run(_bench())


if __name__ == "__main__":
    main()
