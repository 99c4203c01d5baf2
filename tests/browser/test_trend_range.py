"""The trend over a date range much wider than the data, and a trend the gateway refuses.

The API refuses (BAD_USER_INPUT) a trend of more than 1000 periods; the dashboard's range 1970-01-01 ..
2999-12-31 is ~53,000 weeks although the fixture's data is two weeks of January 2015 (cohorts by week:
2014-12-29 with users 1, 2, 3; 2015-01-05 with users 4, 5). The panel failed with a "Try again" that
could only fail again; the range is now clamped to the data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, open_dashboard
from tests.browser.test_keeping_up import REFRESH_MS

pytestmark = pytest.mark.asyncio(loop_scope="session")

BARS = """() => [...document.querySelectorAll('#trend-chart svg rect.cohort')]
    .map((r) => r.querySelector('title').textContent)"""


async def set_range(page: Any, start: str, end: str) -> None:
    await page.fill("#filters input[name=start]", start)
    await page.fill("#filters input[name=end]", end)


async def bars_become(page: Any, expected: list[str]) -> None:
    await page.wait_for_function(
        f"expected => JSON.stringify(({BARS})()) === JSON.stringify(expected)", arg=expected, timeout=20_000
    )


async def test_a_range_far_wider_than_the_data_shows_the_datas_weeks(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page

    # The chart of the page's load has these bars too: wait for the request that learns the data's span
    # (the same funnel without dates), then for the panel's loading veil to go.
    def spans(response: Any) -> bool:
        body = response.request.post_data or ""
        return "DashboardTrend" in body and json.loads(body)["variables"]["filter"] is None

    async with page.expect_response(spans):
        await set_range(page, "1970-01-01", "2999-12-31")
    await page.wait_for_function(
        "() => document.querySelector('#trend-panel').getAttribute('aria-busy') === 'false'"
    )
    await bars_become(page, ["2014-12-29: 3 users started", "2015-01-05: 2 users started"])
    assert await page.is_hidden("#trend-state")
    # A start inside the data is kept (it leaves users 1-3 out), the end past it is not needed.
    await set_range(page, "2015-01-05", "2999-12-31")
    await bars_become(page, ["2015-01-05: 2 users started"])
    # By month, 1970 .. 2999 is 12,360 months: clamped to January 2015, when all 5 started.
    await set_range(page, "1970-01-01", "2999-12-31")
    await page.click("#trend-panel [data-interval=MONTH]")
    await bars_become(page, ["2015-01-01: 5 users started"])
    assert await page.is_hidden("#trend-state")
    await assert_clean(tab)


async def test_a_trend_the_gateway_refuses_offers_no_try_again(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    refusal = {
        "data": None,
        "errors": [{"message": "too many periods", "extensions": {"code": "BAD_USER_INPUT"}}],
    }

    async def refuse_trends(route: Any) -> None:
        if "DashboardTrend" in (route.request.post_data or ""):
            await route.fulfill(status=200, content_type="application/json", body=json.dumps(refusal))
        else:
            await route.continue_()

    await page.route("**/graphql", refuse_trends)
    await page.click("#trend-panel [data-interval=MONTH]")
    await page.wait_for_function(
        "() => document.querySelector('#trend-state').textContent.includes('too many periods')",
        timeout=20_000,
    )
    assert await page.get_attribute("#trend-state", "class") == "state error"
    assert await page.locator("#trend-state button").count() == 0
    assert tab.blocked == [] and await tab.violations() == []


async def test_the_refresh_asks_for_the_clamped_range_at_once(tab: Tab) -> None:
    # The range includes today, so the trend is asked again every 15 s: with the range it clamped last
    # time (no dates: 1970 .. 2999 holds all the data), not refused and clamped anew each time.
    page = tab.page
    await page.clock.install()
    await open_dashboard(tab)
    await set_range(page, "1970-01-01", "2999-12-31")
    await page.clock.run_for(500)  # the filters' debounce: the trend is asked, refused and clamped
    # The bars of the page's load are the same: wait for the panel's loading veil to go instead.
    await page.wait_for_function(
        "() => document.querySelector('#trend-panel').getAttribute('aria-busy') === 'false'"
    )
    await bars_become(page, ["2014-12-29: 3 users started", "2015-01-05: 2 users started"])
    async with page.expect_request(lambda r: "DashboardTrend" in (r.post_data or "")) as asked:
        await page.clock.run_for(REFRESH_MS)
    request = await asked.value
    assert json.loads(request.post_data)["variables"]["filter"] is None
    await bars_become(page, ["2014-12-29: 3 users started", "2015-01-05: 2 users started"])
    await assert_clean(tab)
