"""Visit lists are pages: `Journey.visits`, `Session.visits` and `Session.pagesVisited` answer the first
100 unless `first`/`last` ask otherwise, while a journey's progress still reads every visit."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from gateway.services import Services
from gateway.stores.collections import PAGE_VISITS
from tests.api import fixture_data as fx
from tests.api.conftest import data_of

USER_JS = Path(__file__).resolve().parents[2] / "gateway/web/static/dashboard/user.js"


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


async def test_a_long_journey_answers_the_first_hundred_unless_asked(services: Services):
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
    # The dashboard (static/dashboard/user.js) asks visits and pagesVisited without a page.
    document = re.search(r"const USER = `(.*?)`;", USER_JS.read_text(), flags=re.S)
    assert document is not None
    data = await data_of(services, document.group(1), {"id": 4})
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
