"""A gateway that pages less than the dashboard would ask (FUNNEL_MAX_PAGE_SIZE 100, the smallest
allowed): the user lookup asks no larger page than the page it was served names, so it still works and
says what it did not load.

User 52 has 150 page views, 10 s apart in one session (posted as live events), so hand-counted: 100
loaded and drawn, 50 counted as hidden; the session row names 40 pages and "+110 more".
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from gateway.config import load_settings
from gateway.services import open_services
from gateway.web.app import create_app
from tests.api.conftest import load_fixture
from tests.browser.conftest import open_tab
from tests.browser.test_dashboard import assert_clean, open_dashboard
from tests.browser.test_trend_gaps import post_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

VIEWS = 150


@pytest_asyncio.fixture(loop_scope="session")
async def small_pages(tmp_path: Path) -> AsyncIterator[TestServer]:
    env = {"FUNNEL_DATA_DIR": str(tmp_path / "data"), "FUNNEL_MAX_PAGE_SIZE": "100"}
    async with open_services(load_settings(env=env)) as services:
        await load_fixture(services)
        server = TestServer(create_app(services), host="127.0.0.1")
        await server.start_server()
        yield server
        await server.close()


async def test_the_user_lookup_asks_pages_the_gateway_serves(browser: Any, small_pages: TestServer) -> None:
    base = f"http://127.0.0.1:{small_pages.port}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    views = [
        {
            "type": "page_view",
            "eventId": f"small-{k}",
            "userId": 52,
            "pageType": "home_page",
            "timestamp": (start + timedelta(seconds=10 * k)).isoformat().replace("+00:00", "Z"),
        }
        for k in range(VIEWS)
    ]
    await post_events(base, views)
    async with open_tab(browser, base) as tab:
        await open_dashboard(tab)
        page = tab.page
        await page.fill("#user-id", "52")
        await page.press("#user-id", "Enter")
        await page.wait_for_selector("#user-result:not([hidden])")
        assert await page.locator("#user-journey .timeline li").count() == 100
        assert await page.text_content("#user-journey .journey-more") == (
            "The first 100 of 150 visits; 50 hidden. "
            "The panel loads the first 100; GraphiQL answers the latest: journey { visits(last: 100) { … } }."
        )
        chips = page.locator("#user-profile details.sessions tbody tr td").nth(2)
        assert await chips.locator(".page-chip").count() == 40
        assert "+110 more" in (await chips.text_content() or "")
        await assert_clean(tab)
