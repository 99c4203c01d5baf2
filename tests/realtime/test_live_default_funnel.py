"""A gateway fed only by live events (nothing ingested) derives its default funnel from the stored page
views (``analytics/default_funnel``): ``funnel``, ``funnelTrend`` and the live steps work, answers follow
new pages instead of being served from the cache, a stored default still wins, and without any page view
the clear error stays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.cache import keys
from gateway.models import UserFilter
from gateway.realtime import streams
from gateway.realtime.aggregates import Snapshot
from gateway.realtime.capture import capture
from gateway.realtime.hub import EventFeed
from gateway.realtime.runtime import Realtime
from gateway.realtime.streams import changes_funnel
from gateway.services import Services
from gateway.web.app import create_app
from tests.realtime.conftest import page_view, post_events
from tests.realtime.live_shop import FUNNEL, SHOP, at
from tests.redis_fixtures import numsub

# A closed range with no visits at all: its version tokens are not the ones today's events replace.
PAST = '{ funnel(filter: {start: "2020-01-01", end: "2020-01-31"}) { steps { name users } } }'
TREND = "{ funnelTrend(interval: DAY) { steps { name users } } }"


@pytest.fixture
async def http(empty: Services) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(empty))) as client:
        yield client


async def ask(http: TestClient, query: str) -> dict[str, Any]:
    resp = await http.post("/graphql", json={"query": query})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def steps_of(http: TestClient, query: str = FUNNEL) -> list[tuple[str, int]]:
    body = await ask(http, query)
    assert "errors" not in body, body["errors"]
    return [(s["name"], s["users"]) for s in body["data"]["funnel"]["steps"]]


async def record(http: TestClient, events: list[dict[str, Any]]) -> None:
    status, body = await post_events(http, events)
    assert status == 200 and len(body["accepted"]) == len(events), body


async def test_live_events_alone_give_a_default_funnel(http: TestClient, empty: Services) -> None:
    await record(http, SHOP)
    assert await steps_of(http) == [("landing", 3), ("cart", 2), ("checkout", 1)]
    trend = (await ask(http, TREND))["data"]["funnelTrend"]
    # T0 is ten minutes ago: every visit falls on one day (or two, around midnight); summed over the
    # days, the same entrants.
    assert [s["name"] for s in trend[0]["steps"]] == ["landing", "cart", "checkout"]
    assert sum(p["steps"][0]["users"] for p in trend) == 3
    assert empty.realtime is not None
    assert await empty.realtime.default_funnel() == ["landing", "cart", "checkout"]


async def test_a_new_page_reorders_the_derived_default_at_once(http: TestClient, empty: Services) -> None:
    await record(http, SHOP)
    assert await steps_of(http) == [("landing", 3), ("cart", 2), ("checkout", 1)]
    assert await steps_of(http, PAST) == [("landing", 0), ("cart", 0), ("checkout", 0)]  # now cached
    assert empty.realtime is not None
    assert await empty.realtime.default_funnel() == ["landing", "cart", "checkout"]  # now remembered

    # Four new users each see only "pricing": reach pricing 4 > landing 3 > cart 2 > checkout 1. None of
    # them lands afterwards, so only the first step has users.
    await record(http, [page_view(f"p{u}", u, "pricing", timestamp=at(40)) for u in (4, 5, 6, 7)])
    expected = [("pricing", 4), ("landing", 0), ("cart", 0), ("checkout", 0)]
    assert await steps_of(http) == expected
    # A range no event touched: still not served from the cache, because its steps moved.
    assert await steps_of(http, PAST) == [(name, 0) for name, _ in expected]
    assert await empty.realtime.default_funnel() == ["pricing", "landing", "cart", "checkout"]


JOURNEY = "{ user(id: 2) { journey { furthestStep converted } } }"


async def test_a_user_s_progress_follows_the_derived_default(http: TestClient, empty: Services) -> None:
    await record(http, SHOP)
    # Derived: landing > cart > checkout; user 2 landed and reached the cart, not checkout.
    body = await ask(http, JOURNEY)
    assert body["data"]["user"]["journey"] == {"furthestStep": "cart", "converted": False}
    # "pricing" overtakes every page (reach 4; user 2 never sees it): user 2's journey is cached, and
    # nothing of user 2 changed, yet the progress is along the new default, where step 1 is pricing.
    await record(http, [page_view(f"p{u}", u, "pricing", timestamp=at(40)) for u in (4, 5, 6, 7)])
    body = await ask(http, JOURNEY)
    assert body["data"]["user"]["journey"] == {"furthestStep": None, "converted": False}


async def test_a_stored_default_still_wins(http: TestClient, empty: Services) -> None:
    await empty.store.set_default_funnel(["cart", "checkout"])
    await record(http, SHOP)
    # cart: users 1 and 2; checkout after cart: user 1.
    assert await steps_of(http) == [("cart", 2), ("checkout", 1)]
    assert empty.realtime is not None
    assert await empty.realtime.default_funnel() == ["cart", "checkout"]


async def test_without_page_views_the_error_stays(http: TestClient, empty: Services) -> None:
    body = await ask(http, FUNNEL)
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "no default funnel yet" in error["message"] and "pass steps" in error["message"]
    assert empty.realtime is not None
    assert await empty.realtime.default_funnel() == []


async def test_refresh_analytics_says_a_derived_default_is_not_pre_aggregated(
    http: TestClient, empty: Services
) -> None:
    await record(http, SHOP)
    body = await ask(
        http, 'mutation { refreshAnalytics(range: {start: "2020-01-01", end: "2020-01-02"}) { rows } }'
    )
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith(
        "no stored default funnel to pre-aggregate: ingest or setDefaultFunnel sets one"
    )
    assert "nothing ingested" not in error["message"]  # page views were stored: that was misleading


def test_funnel_updates_on_a_derived_default_wake_on_any_page_view() -> None:
    # A desktop page view today of a page no funnel names: it cannot change a mobile January funnel over
    # named steps, but it can reorder a derived default (its steps are the whole store's pages by reach).
    mobile_january = UserFilter(device="mobile", start=date(2015, 1, 1), end=date(2015, 1, 31))
    typo = {"type": "page_view", "pageType": "crat", "device": "desktop", "timestamp": at(0)}
    assert changes_funnel(None, mobile_january)(typo)
    assert not changes_funnel(["landing", "cart"], mobile_january)(typo)
    assert not changes_funnel(None, mobile_january)({**typo, "type": "interaction"})


async def test_a_new_page_posted_to_another_replica_joins_this_replica_s_live_steps(
    http: TestClient, empty: Services
) -> None:
    """Replicas share the store and Redis. A second ``Realtime`` on the same services is another gateway
    process: its own writer, planner memory, remembered default and hub, as a second replica has. A page
    view of a new page captured there must reach this replica's live steps (``realtimeMetrics``) through
    pub/sub, not only after this replica's remembered default ages out (DEFAULT_FUNNEL_MAX_AGE_S, 60 s)."""
    here = empty.realtime
    assert here is not None
    await record(http, SHOP)  # through this replica
    live = streams.realtime_metrics(here, 0.1)
    first = await anext(live)  # a snapshot (Redis is up); the stream now follows the hub
    assert isinstance(first, Snapshot)
    assert [s.name for s in first.steps] == ["landing", "cart", "checkout"]
    probe = EventFeed(lambda e: True, 100)  # tells the test when this replica has heard the message
    other = Realtime(empty)
    try:
        async with here.hub.subscribed(probe):
            await _until_subscribed(empty)
            # Four new users each see only "pricing", through the other replica: reach pricing 4 >
            # landing 3 > cart 2 > checkout 1.
            pricing = [page_view(f"p{u}", u, "pricing", timestamp=at(40)) for u in (4, 5, 6, 7)]
            result = await capture(other, pricing)
            assert result.accepted == ["p4", "p5", "p6", "p7"]
            heard = [await asyncio.wait_for(probe.next(), 10) for _ in pricing]
            assert [e["eventId"] for e in heard if isinstance(e, dict)] == ["p4", "p5", "p6", "p7"]
            assert await here.default_funnel() == ["pricing", "landing", "cart", "checkout"]
    finally:
        await live.aclose()
        await other.close()


async def _until_subscribed(services: Services) -> None:
    """Until Redis counts a subscriber on the events channel (a bound of ~10 s: it only fails a leak)."""
    for _ in range(1000):
        if await numsub(services.cache, keys.CHANNEL_EVENTS) >= 1:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the hub never subscribed")


async def test_every_realtime_metrics_stream_of_a_process_shares_one_page_watch(empty: Services) -> None:
    """The watch reads every published event: one per open dashboard would multiply that work by the
    number of dashboards. Two streams, one watch; none once both are closed."""
    from gateway.realtime.runtime import _PageWatch

    here = empty.realtime
    assert here is not None

    def watches() -> int:
        return sum(isinstance(s, _PageWatch) for s in here.hub._subscribers)

    first, second = streams.realtime_metrics(here, 0.1), streams.realtime_metrics(here, 0.1)
    await anext(first)
    await anext(second)
    assert watches() == 1
    await first.aclose()
    assert watches() == 1  # the other stream still needs it
    await second.aclose()
    assert watches() == 0
