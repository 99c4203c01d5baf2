"""Visit lists are pages: `Journey.visits`, `Session.visits` and `Session.pagesVisited` answer the first
100 unless `offset`/`first`/`last` ask otherwise, while a journey's progress still reads every visit.
`offset` skips from the start, then `first`/`last` take from what remains, so every visit is reachable
however long the journey and whatever FUNNEL_MAX_PAGE_SIZE is."""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, timedelta
from pathlib import Path

from gateway.services import Services
from gateway.stores.collections import PAGE_VISITS
from tests.api import fixture_data as fx
from tests.api.conftest import data_of

USER_JS = Path(__file__).resolve().parents[2] / "gateway/web/static/dashboard/user.js"
# What user.js sends with its query at FUNNEL_MAX_PAGE_SIZE's default (1000): its pageSize() and the
# CHIPS and SIMILAR derived from it.
DASHBOARD_PAGES = {"page": 1000, "chips": 40, "similar": 8}


async def test_first_and_last_page_a_journey_and_progress_sees_every_visit(services: Services):
    # User 4: s4a home; s4b home, search, payment, confirmation (fixture_data), converted at the last.
    data = await data_of(
        services,
        """{ journey(userId: 4) {
            a: visits(first: 2) { sessionId pageType } b: visits(last: 2) { pageType }
            c: visits(first: 3, last: 1) { pageType } furthestStep converted } }""",
    )
    journey = data["journey"]
    assert journey["a"] == [
        {"sessionId": "s4a", "pageType": fx.HOME},
        {"sessionId": "s4b", "pageType": fx.HOME},
    ]
    assert journey["b"] == [{"pageType": fx.PAYMENT}, {"pageType": fx.CONFIRM}]
    assert journey["c"] == [{"pageType": fx.SEARCH}]
    # The first two visits never reach confirmation: the progress is not the page's.
    assert (journey["furthestStep"], journey["converted"]) == (fx.CONFIRM, True)


async def test_a_session_pages_its_visits_and_page_types(services: Services):
    data = await data_of(
        services,
        """{ session(id: "s4b") { pagesVisited(last: 2) all: pagesVisited
            visits(first: 1) { pageType } late: visits(last: 3, first: 3) { pageType } } }""",
    )
    assert data["session"] == {
        "pagesVisited": [fx.PAYMENT, fx.CONFIRM],
        "all": [fx.HOME, fx.SEARCH, fx.PAYMENT, fx.CONFIRM],
        "visits": [{"pageType": fx.HOME}],
        "late": [{"pageType": fx.HOME}, {"pageType": fx.SEARCH}, {"pageType": fx.PAYMENT}],
    }


async def _long_journey(services: Services) -> None:
    # 150 more page views for user 5 (who had 2 on 01-05: search, home), a minute apart, after them.
    start = datetime(2015, 1, 20)
    extra = [
        {
            "event_id": f"long{i:03d}",
            "user_id": 5,
            "session_id": "s5-long",
            "page_type": fx.HOME,
            "timestamp": start + timedelta(minutes=i),
            "duration": 1.0,
            "device": fx.DEVICE[5],
        }
        for i in range(150)
    ]
    await services.store.insert_many(PAGE_VISITS, extra)


async def test_a_long_journey_answers_the_first_hundred_unless_asked(services: Services):
    await _long_journey(services)
    data = await data_of(
        services,
        """{ journey(userId: 5) { visits { eventId } all: visits(first: 1000) { eventId }
            tail: visits(last: 1) { eventId } } }""",
    )
    journey = data["journey"]
    # The fixture's two visits come first (earlier days), then long000 onwards.
    assert len(journey["visits"]) == 100
    assert journey["visits"][-1] == {"eventId": "long097"}
    assert len(journey["all"]) == 152
    assert journey["tail"] == [{"eventId": "long149"}]


async def test_the_dashboards_user_query_still_gets_every_visit(services: Services):
    # The dashboard (static/dashboard/user.js) asks the first 1,000 visits, and of each session the 40
    # pages its table names, with the counts that say what it did not load.
    document = re.search(r"const USER = `(.*?)`;", USER_JS.read_text(), flags=re.S)
    assert document is not None
    data = await data_of(services, document.group(1), {"id": 4, **DASHBOARD_PAGES})
    user = data["user"]
    assert [v["pageType"] for v in user["journey"]["visits"]] == [
        fx.HOME,
        fx.HOME,
        fx.SEARCH,
        fx.PAYMENT,
        fx.CONFIRM,
    ]
    assert [s["pagesVisited"] for s in user["sessions"]] == [
        [fx.HOME],
        [fx.HOME, fx.SEARCH, fx.PAYMENT, fx.CONFIRM],
    ]
    assert (user["journey"]["visitCount"], user["sessionCount"]) == (5, 2)
    assert [s["visitCount"] for s in user["sessions"]] == [1, 4]


async def test_offset_skips_then_first_and_last_take_from_what_remains(services: Services):
    # User 4's visits in time order: v11 (s4a home), v12 home, v13 search, v14 payment, v15 confirmation.
    data = await data_of(
        services,
        """{ journey(userId: 4) {
            a: visits(offset: 1, first: 2) { eventId } b: visits(offset: 2, last: 2) { eventId }
            c: visits(offset: 1, first: 3, last: 1) { eventId } d: visits(offset: 4) { eventId }
            e: visits(offset: 5) { eventId } f: visits(offset: 0) { eventId } visitCount converted } }""",
    )
    ids = {key: [v["eventId"] for v in value] for key, value in data["journey"].items() if len(key) == 1}
    assert ids == {
        "a": ["v12", "v13"],
        "b": ["v14", "v15"],  # the last 2 of v13 v14 v15
        "c": ["v14"],  # v12..v15, their first 3 (v12 v13 v14), the last of those
        "d": ["v15"],
        "e": [],  # past the end
        "f": ["v11", "v12", "v13", "v14", "v15"],
    }
    # The page is not the progress: still 5 visits, still converted.
    assert (data["journey"]["visitCount"], data["journey"]["converted"]) == (5, True)


async def test_a_session_skips_into_its_visits_and_page_types(services: Services):
    # s4b: v12 home, v13 search, v14 payment, v15 confirmation.
    data = await data_of(
        services,
        """{ session(id: "s4b") { visitCount pagesVisited(offset: 2) late: pagesVisited(offset: 1, last: 1)
            none: pagesVisited(offset: 4) visits(offset: 3) { eventId } mid: visits(offset: 1, first: 2) { eventId } } }""",
    )
    assert data["session"] == {
        "visitCount": 4,
        "pagesVisited": [fx.PAYMENT, fx.CONFIRM],
        "late": [fx.CONFIRM],
        "none": [],
        "visits": [{"eventId": "v15"}],
        "mid": [{"eventId": "v13"}, {"eventId": "v14"}],
    }


async def test_every_visit_is_reached_past_the_largest_page(services: Services):
    # With FUNNEL_MAX_PAGE_SIZE 50, user 5's 152 visits (v16 v17, then long000..long149) took a first
    # page of 50 and no more: offset 50, 100 and 150 reach the rest, in order, each visit once.
    await _long_journey(services)
    small = dataclasses.replace(services, settings=dataclasses.replace(services.settings, max_page_size=50))
    query = "query($o: Int) { journey(userId: 5) { visitCount visits(offset: $o, first: 50) { eventId } } }"
    seen = []
    for offset in (0, 50, 100, 150):
        journey = (await data_of(small, query, {"o": offset}))["journey"]
        assert journey["visitCount"] == 152
        seen += [v["eventId"] for v in journey["visits"]]
    assert seen == ["v16", "v17", *(f"long{i:03d}" for i in range(150))]
    # Without first, an offset still answers the default page, bounded by the maximum: 50 from long098.
    tail = await data_of(small, "{ journey(userId: 5) { visits(offset: 100) { eventId } } }")
    assert [v["eventId"] for v in tail["journey"]["visits"]] == [f"long{i:03d}" for i in range(98, 148)]
