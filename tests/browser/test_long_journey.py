"""A user with hundreds of page views in the user lookup: the journey is drawn 200 visits at a time.

Drawing every visit of a 5,000-view journey made a panel 144,125 px tall that took 3.4 s. Here user 50
has 450 page views, 10 s apart in one session (posted as live events), so hand-counted: 200 shown and
250 hidden, then 400 and 50, then all 450.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, open_dashboard
from tests.browser.test_trend_gaps import post_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

VISITS = 450
ROWS = "#user-journey .timeline li"


async def test_a_long_journey_shows_200_visits_says_how_many_are_hidden_and_shows_more(tab: Tab) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    views = [
        {
            "type": "page_view",
            "eventId": f"long-{k}",
            "userId": 50,
            "pageType": "home_page" if k % 2 == 0 else "search_page",
            "timestamp": (start + timedelta(seconds=10 * k)).isoformat().replace("+00:00", "Z"),
        }
        for k in range(VISITS)
    ]
    await post_events(tab.base, views)
    await open_dashboard(tab)
    page = tab.page
    await page.fill("#user-id", "50")
    await page.press("#user-id", "Enter")
    await page.wait_for_selector("#user-result:not([hidden])")
    assert await page.locator(ROWS).count() == 200
    assert await page.text_content("#user-journey .journey-more") == (
        "The first 200 of 450 visits; 250 hidden. Show 200 more · Show all 450"
    )
    # The sessions table names 40 pages of the session and counts the rest.
    chips = page.locator("#user-profile details.sessions tbody tr td").nth(2)
    assert await chips.locator(".page-chip").count() == 40
    assert "+410 more" in (await chips.text_content() or "")

    await page.click("#user-journey .journey-more button:has-text('Show 200 more')")
    assert await page.locator(ROWS).count() == 400
    assert await page.text_content("#user-journey .journey-more") == (
        "The first 400 of 450 visits; 50 hidden. Show 50 more · Show all 450"
    )
    await page.click("#user-journey .journey-more button:has-text('Show all 450')")
    assert await page.locator(ROWS).count() == 450
    assert await page.locator("#user-journey .journey-more").count() == 0
    await assert_clean(tab)


async def test_past_the_thousand_visits_it_loads_the_panel_says_what_is_left_and_where(tab: Tab) -> None:
    # User 51 has 1,010 page views: the panel asks for the first 1,000 (a visit list is a page, at most
    # FUNNEL_MAX_PAGE_SIZE) and visitCount for all of them, so 10 are counted but not drawn.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=4)
    views = [
        {
            "type": "page_view",
            "eventId": f"longer-{k}",
            "userId": 51,
            "pageType": "home_page",
            "timestamp": (start + timedelta(seconds=10 * k)).isoformat().replace("+00:00", "Z"),
        }
        for k in range(1_010)
    ]
    await post_events(tab.base, views[:505])
    await post_events(tab.base, views[505:])
    await open_dashboard(tab)
    page = tab.page
    await page.fill("#user-id", "51")
    await page.press("#user-id", "Enter")
    await page.wait_for_selector("#user-result:not([hidden])")
    assert await page.locator(ROWS).count() == 200
    assert await page.text_content("#user-journey .journey-more") == (
        "The first 200 of 1,010 visits; 810 hidden. Show 200 more · Show the first 1,000"
    )
    await page.click("#user-journey .journey-more button:has-text('Show the first 1,000')")
    assert await page.locator(ROWS).count() == 1_000
    assert await page.text_content("#user-journey .journey-more") == (
        "The first 1,000 of 1,010 visits; 10 hidden. "
        "The panel loads the first 1,000; GraphiQL answers the latest: journey { visits(last: 100) { … } }."
    )
    await assert_clean(tab)
