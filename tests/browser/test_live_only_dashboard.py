"""The dashboard of a gateway fed only by live events (nothing ingested, no default funnel stored).

Before any page view it says so (not "No data yet" beside totals that may count users); once page views
are posted, the funnel, the trend and the live steps use the default funnel derived from them
(README, "Funnel semantics"). Three users: 1 lands, adds to cart, checks out; 2 lands and adds to cart;
3 only lands. Reach: landing 3, cart 2, checkout 1, so the funnel is landing > cart > checkout with
3, 2, 1 users (each step after the one before).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from gateway.config import load_settings
from gateway.services import Services, open_services
from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, open_dashboard, wait_for_funnel
from tests.browser.test_live_panel import post_events

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def view(event_id: str, user_id: int, page: str, seconds: int) -> dict[str, object]:
    moment = (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    return {
        "type": "page_view",
        "eventId": event_id,
        "userId": user_id,
        "pageType": page,
        "timestamp": moment,
    }


@pytest_asyncio.fixture(loop_scope="session")
async def services(tmp_path: Path) -> AsyncIterator[Services]:
    """Nothing loaded: an empty data dir, as `funnelgate serve` starts on one."""
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data")})
    async with open_services(settings) as opened:
        yield opened


async def test_live_only_dashboard_says_no_page_views_then_shows_the_derived_funnel(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    for state in ("#funnel-state", "#trend-state"):
        await page.wait_for_function(
            "selector => document.querySelector(selector).textContent.includes('No page views yet')",
            arg=state,
            timeout=20_000,
        )
    assert "No data yet" not in (await page.text_content("#funnel-panel") or "")
    # No data is no failure: said as the trend says it (the funnel's was red, as an error), and no
    # "Pick at least two steps" under a picker that has no page to pick.
    for state in ("#funnel-state", "#trend-state"):
        assert await page.get_attribute(state, "class") == "state empty"
    assert await page.text_content("#steps-hint") == ""
    # Nor "every page is a step" in the picker: there is no page.
    assert await page.text_content("#step-add option") == "no pages yet"

    await post_events(
        tab.base,
        [
            view("l1", 1, "landing", 0),
            view("c1", 1, "cart", 10),
            view("k1", 1, "checkout", 20),
            view("l2", 2, "landing", 0),
            view("c2", 2, "cart", 30),
            view("l3", 3, "landing", 5),
        ],
    )
    await open_dashboard(tab)
    await wait_for_funnel(tab, [["landing", "3"], ["cart", "2"], ["checkout", "1"]])
    assert (await page.text_content("#funnel-state") or "").strip() == ""
    assert await page.text_content("#step-add option") == "every page is a step"  # all three are steps
    # The live panel's steps are the same default funnel (today's unique users per step).
    await page.wait_for_function(
        """() => ['landing', 'cart', 'checkout'].every(
             step => document.querySelector(`#live-steps li[data-step=${step}]`))""",
        timeout=20_000,
    )
    await assert_clean(tab)
