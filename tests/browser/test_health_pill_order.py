"""The header's health pill shows the answer of the last check asked, not of the last one to answer.

Since 9016066 the pill is checked when the live panel pauses or resumes, besides every 30 s: two checks
overlap, and one asked before Redis went down ("all backends up") that answered after the one asked
since (cache down) left the header saying all was well while the live panel said paused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, open_dashboard

pytestmark = pytest.mark.asyncio(loop_scope="session")

CACHE_DOWN = {
    "data": {
        "health": {
            "status": "degraded",
            "dependencies": [
                {"role": "document_store", "backend": "duckdb", "up": True},
                {"role": "vector_index", "backend": "milvus-lite", "up": True},
                {"role": "cache", "backend": "redis", "up": False},
            ],
        }
    }
}


async def test_an_older_health_answer_arriving_last_does_not_win(tab: Tab) -> None:
    page = tab.page
    await open_dashboard(tab)
    health: list[Any] = []

    async def route(r: Any) -> None:
        if "DashboardHealth" in (r.request.post_data or ""):
            health.append(r)
        else:
            await r.continue_()

    await page.route("**/graphql", route)
    check = "() => import('/static/dashboard/health.js').then((m) => { m.loadHealth(); })"
    await page.evaluate(check)  # asked first: the gateway's real answer, all up
    await page.evaluate(check)  # asked second: the cache went down meanwhile
    for _ in range(400):
        if len(health) == 2:
            break
        await page.wait_for_timeout(50)
    assert len(health) == 2
    await health[1].fulfill(status=200, content_type="application/json", body=json.dumps(CACHE_DOWN))
    await page.wait_for_function(
        "() => document.querySelector('#health').textContent === 'cache (redis) down'"
    )
    async with page.expect_response(lambda r: r.request == health[0].request) as answered:
        await health[0].continue_()  # the older check answers last
    await (await answered.value).finished()
    await page.evaluate("() => new Promise((done) => setTimeout(done, 50))")  # its handler has run
    await page.unroute("**/graphql")
    assert await page.text_content("#health") == "cache (redis) down"
    assert await page.get_attribute("#health", "data-state") == "degraded"
    await assert_clean(tab)
