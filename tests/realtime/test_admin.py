"""The admin mutations (invalidateCache, refreshAnalytics) and the planner's memory of users."""

from __future__ import annotations

from datetime import date, timedelta

from gateway.cache import keys
from gateway.realtime.batch import validate
from gateway.realtime.enrichment import plan
from gateway.realtime.events import utc_now
from gateway.services import Services
from tests.api.conftest import data_of, error_codes, run
from tests.realtime.conftest import page_view, post_events

FUNNEL = "{ funnel { steps { users } } }"
DASHBOARD = "{ dashboard { sessions } }"


async def test_invalidate_cache_drops_one_family_and_whole_responses(counted_http, counted: Services):
    for query in (FUNNEL, DASHBOARD, FUNNEL, DASHBOARD):
        await data_of(counted, query)
    for _ in range(2):
        await counted_http.post("/graphql", json={"query": DASHBOARD})
    calls = counted.store.total
    result = await data_of(counted, "mutation { invalidateCache(scope: FUNNELS) { scope keysRemoved } }")
    assert result["invalidateCache"] == {"scope": "FUNNELS", "keysRemoved": 2}  # the funnel + the response
    await data_of(counted, DASHBOARD)
    assert counted.store.total == calls  # dashboards stay cached
    await data_of(counted, FUNNEL)
    assert counted.store.calls["funnel"] == 2  # recomputed
    resp = await counted_http.post("/graphql", json={"query": DASHBOARD})
    assert resp.headers.get("X-Cache") == "miss"  # whole responses go with every scope


async def test_the_similar_users_scope_drops_every_answer_read_from_the_vectors(counted: Services):
    vectors = '{ user(id: 3) { similarUsers { userId } similarOnPage(pageType: "home") { userId } conversionLikelihood } }'
    await data_of(counted, vectors)
    result = await data_of(counted, "mutation { invalidateCache(scope: SIMILAR_USERS) { keysRemoved } }")
    assert result["invalidateCache"] == {"keysRemoved": 3}  # similar users, on the page, the likelihood
    counted.vectors.calls.clear()
    await data_of(counted, vectors)
    assert counted.vectors.calls["search"] == 3  # all three asked again


async def test_invalidate_all_replaces_the_epoch(counted: Services):
    await data_of(counted, FUNNEL)
    before = await counted.cache.get_many([keys.version_epoch()])
    await data_of(counted, "mutation { invalidateCache(scope: ALL) { keysRemoved } }")
    assert await counted.cache.get_many([keys.version_epoch()]) != before
    await data_of(counted, FUNNEL)
    assert counted.store.calls["funnel"] == 2


async def test_refresh_analytics_rewrites_the_range(services: Services):
    mutation = 'mutation { refreshAnalytics(range: {start: "2015-01-01", end: "2015-01-31"}) { start end steps rows } }'
    result = (await data_of(services, mutation))["refreshAnalytics"]
    assert (result["start"], result["end"], len(result["steps"])) == ("2015-01-01", "2015-01-31", 4)
    rows = await services.store.funnel_analytics(date(2015, 1, 1), date(2015, 1, 31), None)
    # By hand (tests/api/fixture_data.py): 4 steps for "all" and for each device that reached home that
    # day: 01-01 desktop+mobile, 01-02 desktop, 01-05 mobile+tablet, 01-06 mobile -> (3+2+3+2) * 4 = 40.
    assert result["rows"] == len(rows) == 40
    new_year = sorted(
        (r["device"], r["step_index"], r["unique_users"]) for r in rows if r["date"] == date(2015, 1, 1)
    )
    # 01-01: users 1 (desktop, whole funnel) and 2 (mobile: search after home, payment before search)
    assert new_year == [
        *(("all", k, n) for k, n in enumerate([2, 2, 1, 1])),
        *(("desktop", k, 1) for k in range(4)),
        *(("mobile", k, n) for k, n in enumerate([1, 1, 0, 0])),
    ]
    open_ended = await run(services, 'mutation { refreshAnalytics(range: {start: "2015-01-01"}) { rows } }')
    assert error_codes(open_ended) == ["BAD_USER_INPUT"]


async def test_refresh_analytics_refuses_a_range_longer_than_ten_years(services: Services):
    # 2000-01-01..2010-01-08 is 3,661 days (three leap years): one too many; a day less is accepted.
    long = 'mutation { refreshAnalytics(range: {start: "2000-01-01", end: "2010-01-08"}) { rows } }'
    refused = await run(services, long)
    assert error_codes(refused) == ["BAD_USER_INPUT"]
    assert "3660" in refused["errors"][0]["message"] and "3661" in refused["errors"][0]["message"]
    ok = await run(services, long.replace("2010-01-08", "2010-01-07"))
    assert ok.get("errors") is None and ok["data"]["refreshAnalytics"]["rows"] == 0


async def test_a_remembered_user_costs_no_store_read(http, counted: Services):
    await post_events(http, [page_view("mem-1", 3, "home_page")])
    realtime = counted.realtime
    events = validate([page_view("mem-2", 3, "search_page")], utc_now(), timedelta(seconds=300)).events
    counted.store.calls.clear()
    planned = await plan(counted.store, events, realtime.gap, realtime.memory, 0.0)
    assert counted.store.total == 0
    [visit] = planned.batch.visits
    assert (visit["device"], visit["session_id"]) == ("desktop", "rt-mem-1")  # the session continues
    forgetful = await plan(counted.store, events, realtime.gap)
    assert counted.store.calls["users_by_ids"] == 1 and forgetful.batch.visits[0]["session_id"] == "rt-mem-1"
