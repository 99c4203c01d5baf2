"""The dashboard's tiles, funnel and trend keep up with live events while the period includes today.

They are queries, loaded again every 15 s (``REFRESH_MS`` in app.js) on the page's clock, which these
tests drive (Playwright's fake clock): nothing waits 15 real seconds, and "not yet" is checkable.

The fixture (tests/api/fixture_data.py, all January 2015): 5 users with sessions, 6 sessions; the
default funnel 5 / 4 / 3 / 2. A new visitor today (user 7, home then search) makes it 6 users and 7
sessions, and the funnel 6 / 5 / 3 / 2.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, funnel_users, open_dashboard, wait_for_funnel
from tests.browser.test_live_panel import post_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

REFRESH_MS = 15_000
TILES = ["#kpi-users", "#kpi-sessions"]
TODAYS_VISITOR = [
    {"type": "page_view", "eventId": "keep-up-1", "userId": 7, "pageType": "home_page"},
    {"type": "page_view", "eventId": "keep-up-2", "userId": 7, "pageType": "search_page"},
]


def graphql_operations(page: Any) -> list[str]:
    """The names of the GraphQL queries the page sends over HTTP from now on (appended as they go)."""
    sent: list[str] = []

    def request(req: Any) -> None:
        if req.method == "POST" and req.url.endswith("/graphql"):
            name = re.match(r"\s*query\s+(\w+)", json.loads(req.post_data)["query"])
            sent.append(name.group(1) if name else "?")

    page.on("request", request)
    return sent


async def tiles(page: Any) -> list[str | None]:
    return [await page.text_content(t) for t in TILES]


async def test_the_tiles_funnel_and_trend_load_again_and_show_todays_events(tab: Tab) -> None:
    page = tab.page
    await page.clock.install()
    await open_dashboard(tab)
    assert await tiles(page) == ["5", "6"]
    sent = graphql_operations(page)

    await post_events(tab.base, TODAYS_VISITOR)
    await page.clock.run_for(REFRESH_MS - 1_000)
    # Not yet: the page asks at its own pace, so the numbers are still those of the load.
    assert sent == []
    assert await tiles(page) == ["5", "6"]
    assert await funnel_users(tab) == [
        ["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"],
    ]  # fmt: skip

    await page.clock.run_for(1_000)
    await wait_for_funnel(
        tab,
        [["home_page", "6"], ["search_page", "5"], ["payment_page", "3"], ["payment_confirmation_page", "2"]],
    )
    await page.wait_for_function(
        "() => document.querySelector('#kpi-users').textContent === '6'"
        " && document.querySelector('#kpi-sessions').textContent === '7'"
    )
    assert sorted(sent) == ["DashboardFunnel", "DashboardTotals", "DashboardTrend"]
    # Quietly: no panel was veiled as loading by a refresh.
    assert await page.locator("[aria-busy=true]").count() == 0
    await assert_clean(tab)


async def test_a_period_that_ends_before_today_is_not_asked_again(tab: Tab) -> None:
    page = tab.page
    await page.clock.install()
    await open_dashboard(tab)
    sent = graphql_operations(page)
    await page.fill("#filters input[name=end]", "2015-01-31")
    await page.dispatch_event("#filters input[name=end]", "change")
    await page.clock.run_for(500)  # the filters' debounce
    for _ in range(400):  # the change's own loads (real time: requests are not the page's timers)
        if sorted(sent) == ["DashboardFunnel", "DashboardTotals", "DashboardTrend"]:
            break
        await page.wait_for_timeout(50)
    assert sorted(sent) == ["DashboardFunnel", "DashboardTotals", "DashboardTrend"]
    await page.wait_for_function(
        "() => document.querySelector('#kpis').getAttribute('aria-busy') === 'false'"
    )
    sent.clear()

    await post_events(tab.base, TODAYS_VISITOR)
    await page.clock.run_for(3 * REFRESH_MS)
    # Today's events cannot change January 2015: nothing is asked, nothing moves.
    assert [s for s in sent if s != "DashboardHealth"] == []
    assert await tiles(page) == ["5", "6"]
    await assert_clean(tab)


async def test_a_refresh_still_waiting_for_its_answer_is_not_asked_again(tab: Tab) -> None:
    # A gateway slower than REFRESH_MS to answer (a large range, a busy store): each tick superseded the
    # previous refresh before it could show anything, and the queries piled up on the gateway. A tick
    # that finds the last refresh still waiting leaves it be.
    page = tab.page
    await page.clock.install()
    await open_dashboard(tab)
    held: list[Any] = []

    async def hold(route: Any) -> None:
        held.append(route)

    await page.route("**/graphql", hold)
    sent = graphql_operations(page)
    await page.clock.run_for(REFRESH_MS)
    for _ in range(400):  # the first refresh's three queries reach the route (real time)
        if len(held) == 3:
            break
        await page.wait_for_timeout(50)
    assert sorted(sent) == ["DashboardFunnel", "DashboardTotals", "DashboardTrend"]

    await page.clock.run_for(2 * REFRESH_MS)  # two more ticks while those three are unanswered
    await page.wait_for_timeout(200)
    assert sorted(s for s in sent if s != "DashboardHealth") == [
        "DashboardFunnel", "DashboardTotals", "DashboardTrend",
    ]  # fmt: skip

    for route in held:
        await route.continue_()
    await page.unroute("**/graphql")
    await page.wait_for_function("() => document.querySelector('#kpi-users').textContent === '5'")
    sent.clear()
    await page.clock.run_for(REFRESH_MS)  # answered: the next tick refreshes again
    for _ in range(400):
        if len([s for s in sent if s != "DashboardHealth"]) == 3:
            break
        await page.wait_for_timeout(50)
    assert sorted(s for s in sent if s != "DashboardHealth") == [
        "DashboardFunnel", "DashboardTotals", "DashboardTrend",
    ]  # fmt: skip
    await assert_clean(tab)
