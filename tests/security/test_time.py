"""Time: a request timeout, cancel on disconnect, single-flight, and work that stops when nobody waits.

A backend call is "observed to stop" by running a real long DuckDB statement in the store's own
connection and recording how it ended: ``interrupted`` (DuckDB's InterruptException) or ``finished``.
No assertion is about how long anything took.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import duckdb

from gateway.cache.flight import flights
from gateway.services import Services
from tests.security.conftest import client_of, with_settings

FUNNEL = "{ funnel(conversionWindowSeconds: 77) { overallConversionRate } }"
LONG_STATEMENT = "SELECT count(*) FROM range(50000000000) t WHERE (t.range * 7) % 13 = 5"


class SlowFunnel:
    """The real store, whose ``funnel`` runs a statement that would take minutes, on the store's connection."""

    def __init__(self, store: Any) -> None:
        self._target = store
        self.outcomes: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def funnel(self, *args: Any, **kwargs: Any) -> Any:
        def statement(cursor: Any) -> Any:
            self.outcomes.append("started")
            try:
                cursor.execute(LONG_STATEMENT).fetchall()
            except duckdb.InterruptException:
                self.outcomes.append("interrupted")
                raise
            self.outcomes.append("finished")

        return await self._target._db.run("slow funnel", statement)


class GatedStore:
    """The real store; ``funnel`` and ``users_by_ids`` wait for a gate, and their calls are counted."""

    def __init__(self, store: Any) -> None:
        self._target = store
        self.gate = asyncio.Event()
        self.calls: dict[str, int] = {"funnel": 0, "users_by_ids": 0}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    async def funnel(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["funnel"] += 1
        await self.gate.wait()
        return await self._target.funnel(*args, **kwargs)

    async def users_by_ids(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["users_by_ids"] += 1
        await self.gate.wait()
        return await self._target.users_by_ids(*args, **kwargs)


async def until(condition: Any, what: str, tries: int = 1000) -> None:
    for _ in range(tries):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


def slow(services: Services, **settings: Any) -> tuple[Services, SlowFunnel]:
    store = SlowFunnel(services.store)
    return with_settings(dataclasses.replace(services, store=store), **settings), store


async def test_the_request_timeout_answers_timeout_and_stops_the_statement(services):
    configured, store = slow(services, request_timeout_s=0.5)
    async with client_of(configured) as client:
        response = await client.post(
            "/graphql", json={"query": FUNNEL}, headers={"Accept": "application/graphql-response+json"}
        )
        body = await response.json()
    assert response.status == 504
    assert body["errors"][0]["extensions"]["code"] == "TIMEOUT" and "data" not in body
    assert "FUNNEL_REQUEST_TIMEOUT_S" in body["errors"][0]["message"]
    await until(lambda: store.outcomes[-1:] == ["interrupted"], "the statement was interrupted")
    assert store.outcomes == ["started", "interrupted"]


async def test_a_client_that_leaves_stops_its_backend_work(services):
    configured, store = slow(services)
    async with client_of(configured, handler_cancellation=True) as client:
        # The client leaves once the statement runs (not after a fixed time: on a loaded machine the
        # request may not have reached the store yet, and then there is nothing to interrupt).
        request = asyncio.ensure_future(client.post("/graphql", json={"query": FUNNEL}))
        await until(lambda: store.outcomes == ["started"], "the statement started")
        request.cancel()  # the client gives up and closes its connection
        with contextlib.suppress(asyncio.CancelledError):
            await request
        await until(lambda: store.outcomes[-1:] == ["interrupted"], "the statement was interrupted")
    assert store.outcomes == ["started", "interrupted"]


async def test_identical_concurrent_misses_make_one_backend_call(services):
    store = GatedStore(services.store)
    gated = dataclasses.replace(services, store=store)
    table = flights()
    joined = table.joined
    async with client_of(gated) as client:
        requests = [asyncio.create_task(client.post("/graphql", json={"query": FUNNEL})) for _ in range(8)]
        await until(
            lambda: table.joined - joined >= 7 and store.calls["funnel"] == 1,
            "seven requests joined the first one's computation, which reached the store",
        )
        store.gate.set()
        bodies = [await r.json() for r in await asyncio.gather(*requests)]
    assert all("errors" not in b for b in bodies) and len({str(b["data"]) for b in bodies}) == 1
    assert store.calls["funnel"] == 1


async def test_identical_loads_of_concurrent_requests_make_one_backend_call(services):
    store = GatedStore(services.store)
    gated = dataclasses.replace(services, store=store)
    table = flights()
    joined = table.joined
    query = {"query": "{ user(id: 3) { device sex } }"}
    async with client_of(gated) as client:
        requests = [asyncio.create_task(client.post("/graphql", json=query)) for _ in range(5)]
        await until(lambda: table.joined - joined >= 4, "four requests joined the first one's batch")
        store.gate.set()
        bodies = [await r.json() for r in await asyncio.gather(*requests)]
    assert {str(b["data"]) for b in bodies} == {"{'user': {'device': 'DESKTOP', 'sex': 'FEMALE'}}"}
    assert store.calls["users_by_ids"] == 1


async def test_aliases_of_one_funnel_in_one_request_compute_it_once(services):
    store = GatedStore(services.store)
    store.gate.set()
    gated = dataclasses.replace(services, store=store)
    query = "{ a: funnel(conversionWindowSeconds: 5) { overallConversionRate } b: funnel(conversionWindowSeconds: 5) { steps { users } } }"
    async with client_of(gated) as client:
        body = await (await client.post("/graphql", json={"query": query})).json()
    assert "errors" not in body and store.calls["funnel"] == 1
