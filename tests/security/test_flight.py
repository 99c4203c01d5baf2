"""Single-flight (gateway/cache/flight.py): identical misses in flight share one computation."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache.flight import SingleFlight


async def _until(condition, what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def test_n_identical_concurrent_calls_compute_once():
    flights, gate, calls = SingleFlight(), asyncio.Event(), []

    async def compute():
        calls.append(1)
        await gate.wait()
        return "value"

    waiters = [asyncio.create_task(flights.run("k", compute)) for _ in range(10)]
    await _until(lambda: flights.waiting("k") == 10, "ten waiters")
    gate.set()
    assert await asyncio.gather(*waiters) == ["value"] * 10
    assert calls == [1] and flights.started == 1 and flights.joined == 9
    assert flights.waiting("k") == 0
    assert await flights.run("k", compute) == "value" and calls == [1, 1]  # done: the next miss computes


async def test_one_waiter_leaving_does_not_cancel_the_others_but_the_last_one_does():
    flights, gate, outcome = SingleFlight(), asyncio.Event(), []

    async def compute():
        try:
            await gate.wait()
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("finished")
        return 1

    first = asyncio.create_task(flights.run("k", compute))
    second = asyncio.create_task(flights.run("k", compute))
    await _until(lambda: flights.waiting("k") == 2, "two waiters")
    first.cancel()
    await _until(lambda: flights.waiting("k") == 1, "one waiter left")
    assert outcome == []  # still computing for the other one
    second.cancel()
    await _until(lambda: outcome == ["cancelled"], "the computation stopped")
    for task in (first, second):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_batches_share_the_keys_already_in_flight():
    flights, gate, batches = SingleFlight(), asyncio.Event(), []

    async def compute_for(keys):
        async def compute(indexes):
            batches.append([keys[i] for i in indexes])
            await gate.wait()
            return [f"v{keys[i]}" for i in indexes]

        return compute

    a_keys, b_keys = ["1", "2", "3"], ["2", "3", "4", "4"]
    a = asyncio.create_task(flights.run_many(a_keys, await compute_for(a_keys)))
    await _until(lambda: flights.waiting("3") == 1, "the first batch in flight")
    b = asyncio.create_task(flights.run_many(b_keys, await compute_for(b_keys)))
    await _until(lambda: len(batches) == 2, "the second batch started")
    gate.set()
    assert await a == ["v1", "v2", "v3"]
    assert await b == ["v2", "v3", "v4", "v4"]
    assert batches == [["1", "2", "3"], ["4"]]  # 2 and 3 were not fetched twice


async def test_an_error_reaches_every_waiter():
    flights = SingleFlight()

    async def compute():
        await asyncio.sleep(0)
        raise RuntimeError("backend down")

    results = await asyncio.gather(*(flights.run("k", compute) for _ in range(3)), return_exceptions=True)
    assert [type(r) for r in results] == [RuntimeError] * 3 and flights.started == 1
