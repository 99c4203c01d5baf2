"""Cache precision both ways: after an event, every cached answer it changes is fresh, every other one is
still served from Redis without a store call; the same for whole cached responses."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.services import Services
from tests.api.conftest import data_of
from tests.realtime.conftest import post_events
from tests.redis_fixtures import REDIS_MODES

# One suite, two implementations of the cache: the private Redis and a 3-master Redis Cluster.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)

TODAY = datetime.now(UTC).replace(microsecond=0)
JANUARY = '{start: "2015-01-01", end: "2015-01-31"}'

# User 2 is mobile/female with one January session; the event is a 100 s home page view today.
CHANGED = {
    "open funnel": "{ funnel { steps { name users avgTimeSpent } } }",
    "mobile funnel": "{ funnel(filter: {device: MOBILE}) { steps { avgTimeSpent } } }",
    "female funnel trend": "{ funnelTrend(interval: DAY, filter: {sex: FEMALE}) { period steps { avgTimeSpent } } }",
    "journey of user 2": "{ journey(userId: 2) { visits { eventId } } }",
    "sessions of user 2": "{ user(id: 2) { sessions { id pagesVisited } } }",
    "open dashboard": "{ dashboard { sessions users } }",
    "open top paths": "{ topPaths { path sessions } }",
}
UNCHANGED = {
    "January funnel": f"{{ funnel(filter: {JANUARY}) {{ steps {{ users avgTimeSpent }} }} }}",
    "desktop funnel": "{ funnel(filter: {device: DESKTOP}) { steps { users avgTimeSpent } } }",
    "male funnel": "{ funnel(filter: {sex: MALE}) { steps { users } } }",
    "journey of user 1": "{ journey(userId: 1) { visits { eventId } } }",
    "sessions of user 1": "{ user(id: 1) { sessions { id pagesVisited } } }",
    "session s2 and its visits": '{ session(id: "s2") { pagesVisited visits { eventId } } }',
    "January dashboard": f"{{ dashboard(range: {JANUARY}) {{ sessions users }} }}",
    "desktop top paths": "{ topPaths(filter: {device: DESKTOP}) { path sessions } }",
    "payment sentiment": '{ sentiment(pageType: "payment_page") { texts } }',
}


async def answers(counted: Services, queries: dict[str, str]) -> dict[str, tuple[Any, int]]:
    """Each query's data and the store calls it cost."""
    out = {}
    for name, query in queries.items():
        before = counted.store.total
        data = await data_of(counted, query)
        out[name] = (data, counted.store.total - before)
    return out


async def test_an_event_invalidates_what_it_changes_and_nothing_else(counted_http, counted: Services):
    await answers(counted, CHANGED | UNCHANGED)  # fill the cache
    warm = await answers(counted, CHANGED | UNCHANGED)
    assert all(calls == 0 for _, calls in warm.values()), warm  # everything is served from Redis

    event = {"type": "page_view", "eventId": "live-1", "userId": 2, "pageType": "home_page", "duration": 100,
             "timestamp": TODAY.isoformat()}  # fmt: skip
    status, _ = await post_events(counted_http, [event])
    assert status == 200

    after = await answers(counted, CHANGED | UNCHANGED)
    for name in UNCHANGED:
        assert after[name] == (warm[name][0], 0), (
            f"{name}: re-computed or changed, but the event cannot change it"
        )
    for name in CHANGED:
        assert after[name][1] > 0, f"{name}: served from the cache although the event changed it"
        assert after[name][0] != warm[name][0], f"{name}: the answer did not change"
    journey = after["journey of user 2"][0]["journey"]["visits"]
    assert journey[-1] == {"eventId": "live-1"}
    assert (
        after["open dashboard"][0]["dashboard"]["sessions"]
        == warm["open dashboard"][0]["dashboard"]["sessions"] + 1
    )
    # ...and served from Redis again from now on.
    again = await answers(counted, CHANGED | UNCHANGED)
    assert all(calls == 0 for _, calls in again.values()), again


async def test_a_form_text_invalidates_that_page_s_sentiment_only(counted_http, counted: Services):
    queries = {
        "payment": '{ sentiment(pageType: "payment_page") { texts } }',
        "payment today": f'{{ sentiment(pageType: "payment_page", date: "{TODAY.date()}") {{ texts }} }}',
        "payment Jan 1": '{ sentiment(pageType: "payment_page", date: "2015-01-01") { texts } }',
        "search": '{ sentiment(pageType: "search_page") { texts } }',
    }
    warm = (await answers(counted, queries), await answers(counted, queries))[1]
    form = {"type": "interaction", "eventId": "form-1", "userId": 3, "pageType": "payment_page",
            "interactionType": "form", "value": "Wonderful, quick and easy!", "timestamp": TODAY.isoformat()}  # fmt: skip
    assert (await post_events(counted_http, [form]))[0] == 200
    after = await answers(counted, queries)
    assert after["payment"][0]["sentiment"]["texts"] == warm["payment"][0]["sentiment"]["texts"] + 1
    assert after["payment today"][0]["sentiment"]["texts"] == 1
    assert after["payment Jan 1"] == (warm["payment Jan 1"][0], 0)
    assert after["search"] == (warm["search"][0], 0)


@pytest.mark.parametrize(
    ("query", "changes"),
    [
        ("{ dashboard { sessions } }", True),
        ("{ user(id: 2) { sessions { id } } journey(userId: 2) { converted } }", True),
        (f"{{ dashboard(range: {JANUARY}) {{ sessions }} }}", False),
        ("{ user(id: 1) { sessions { id } } journey(userId: 1) { converted } }", False),
    ],
)
async def test_whole_cached_responses_are_never_stale_and_otherwise_kept(
    counted_http, query: str, changes: bool
):
    async def post() -> tuple[str | None, Any]:
        resp = await counted_http.post("/graphql", json={"query": query})
        assert resp.status == 200
        return resp.headers.get("X-Cache"), await resp.json()

    assert (await post())[0] == "miss"
    cached, before = await post()
    assert cached == "hit"
    event = {
        "type": "page_view",
        "eventId": "resp-1",
        "userId": 2,
        "pageType": "home_page",
        "timestamp": TODAY.isoformat(),
    }
    assert (await post_events(counted_http, [event]))[0] == 200
    served, after = await post()
    if changes:
        assert served == "miss" and after != before
    else:
        assert (served, after) == ("hit", before)


async def test_text_typed_on_a_page_with_no_views_is_scored(counted_http, counted: Services):
    # A feedback form can live on a page nobody "viewed": its accepted texts must be readable.
    query = '{ sentiment(pageType: "feedback_form") { texts negative } }'
    before = await (await counted_http.post("/graphql", json={"query": query})).json()
    assert before["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    form = {"type": "interaction", "eventId": "fb-1", "userId": 3, "pageType": "feedback_form",
            "interactionType": "form", "value": "This shop is terrible and slow", "timestamp": TODAY.isoformat()}  # fmt: skip
    assert (await post_events(counted_http, [form]))[0] == 200
    after = await (await counted_http.post("/graphql", json={"query": query})).json()
    assert after["data"] == {"sentiment": {"texts": 1, "negative": 1}}
