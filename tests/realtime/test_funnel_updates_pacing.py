"""``funnelUpdates`` coalesces a burst into one recomputation per interval, also when the answer the
client sees does not move (so nothing is sent and the message pace alone would not hold it back).

The stream runs against a fake hub and a fake clock: ``asyncio.sleep`` as the stream sees it advances
the clock by what it was asked, so the times below are the clock's, computed by hand, never measured."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.models import FunnelDefinition, UserFilter
from gateway.realtime import streams
from gateway.realtime.hub import ChangeFlag

INTERVAL_S = 10.0
HOME_VIEW = {"type": "page_view", "pageType": "home", "device": "mobile", "sex": None}


class FakeClock:
    """The loop's ``time()`` and ``asyncio.sleep`` as the stream module sees them."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def get_running_loop(self) -> FakeClock:
        return self

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)

    def __getattr__(self, name: str) -> Any:  # everything else: the real asyncio
        return getattr(asyncio, name)


class FakeHub:
    def __init__(self) -> None:
        self.flags: list[ChangeFlag] = []

    @contextlib.asynccontextmanager
    async def subscribed(self, flag: ChangeFlag) -> AsyncIterator[ChangeFlag]:
        self.flags.append(flag)
        yield flag


async def settle(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the stream did not get there")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(streams, "asyncio", fake)
    return fake


async def test_unseen_changes_are_recomputed_at_most_once_per_interval(clock, monkeypatch) -> None:
    computed_at: list[float] = []
    answer = SimpleNamespace(steps=[SimpleNamespace(name="home"), SimpleNamespace(name="search")])

    async def funnel(services: Any, definition: FunnelDefinition) -> Any:
        computed_at.append(clock.now)
        return answer  # the same answer every time: the client is never sent another message

    monkeypatch.setattr(streams, "_funnel", funnel)
    hub = FakeHub()
    services = SimpleNamespace(realtime=SimpleNamespace(hub=hub))
    definition = FunnelDefinition(steps=("home", "search"), filter=UserFilter())
    stream = cast(AsyncGenerator[Any, None], streams.funnel_updates(services, definition, INTERVAL_S))  # type: ignore[arg-type]

    assert await anext(stream) is answer
    waiting = asyncio.ensure_future(anext(stream))  # nothing more is sent: this never completes
    try:
        await settle(lambda: len(hub.flags) == 1)
        for n in range(2, 6):  # an event that could change the funnel, each after the last computation
            hub.flags[0].offer([HOME_VIEW])
            await settle(lambda n=n: len(computed_at) == n)
        # The first answer at 0; each later one a whole interval after the one before, however soon
        # the next event came: 0, 10, 20, 30, 40 (not 0, 10, 10, 10, 10).
        assert computed_at == [0.0, 10.0, 20.0, 30.0, 40.0]
        assert not waiting.done()
    finally:
        waiting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiting
        await stream.aclose()


async def test_a_burst_between_computations_is_one_computation(clock, monkeypatch) -> None:
    computed_at: list[float] = []
    answers = iter(range(100))

    async def funnel(services: Any, definition: FunnelDefinition) -> Any:
        computed_at.append(clock.now)
        return next(answers)  # a new answer each time: each computation is a message

    monkeypatch.setattr(streams, "_funnel", funnel)
    hub = FakeHub()
    services = SimpleNamespace(realtime=SimpleNamespace(hub=hub))
    definition = FunnelDefinition(steps=("home", "search"), filter=UserFilter())
    stream = cast(AsyncGenerator[Any, None], streams.funnel_updates(services, definition, INTERVAL_S))  # type: ignore[arg-type]
    try:
        assert await anext(stream) == 0
        following = asyncio.ensure_future(anext(stream))
        await settle(lambda: len(hub.flags) == 1)
        for _ in range(50):
            hub.flags[0].offer([HOME_VIEW])
        assert await following == 1
        assert computed_at == [0.0, 10.0]  # fifty events, one recomputation, an interval later
    finally:
        await stream.aclose()
