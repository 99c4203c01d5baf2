"""The dashboard at / in a real browser, on the hand-made shop of tests/api/fixture_data.py (issue 16).

The fixture's default funnel, worked out by hand (ORDERED: each step at or after the previous one):

  step            all users                mobile (users 2, 4)
  home_page       1 2 3 4 5        = 5     2 4   = 2
  search_page     1 2 3 4 (5: before home) = 4     2 4   = 2
  payment_page    1 3 4 (2: before search) = 3     4     = 1
  confirmation    1 4              = 2     4     = 1

Without search_page (home -> payment -> confirmation): 5, 4 (1 2 3 4), 2.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.services import Services
from tests.api.conftest import FailingProxy
from tests.browser.conftest import Tab

pytestmark = pytest.mark.asyncio(loop_scope="session")

FUNNEL_USERS = """() => [...document.querySelectorAll('#funnel-table tbody tr')]
    .map(tr => [tr.dataset.step, tr.querySelector('.users').textContent])"""


async def open_dashboard(tab: Tab) -> None:
    response = await tab.page.goto(f"{tab.base}/", wait_until="load")
    assert response is not None and response.status == 200
    await tab.page.wait_for_function("() => document.body.dataset.ready === 'true'", timeout=20_000)


async def funnel_users(tab: Tab) -> list[list[str]]:
    return await tab.page.evaluate(FUNNEL_USERS)


async def wait_for_funnel(tab: Tab, expected: list[list[str]]) -> None:
    await tab.page.wait_for_function(
        f"expected => JSON.stringify(({FUNNEL_USERS})()) === JSON.stringify(expected)",
        arg=expected,
        timeout=20_000,
    )


async def assert_clean(tab: Tab) -> None:
    assert tab.errors == [], tab.errors
    assert await tab.violations() == []
    assert tab.blocked == []


async def test_the_funnel_shows_the_fixture_and_follows_the_filters_and_steps(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    assert await funnel_users(tab) == [
        ["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"],
    ]  # fmt: skip
    assert await page.text_content("#funnel-overall") == "40.0%"
    assert await page.locator("#funnel-chart svg rect.bar").count() == 4
    assert await page.text_content("#kpi-sessions") == "6"
    await tab.screenshot("dashboard-funnel.png", full_page=True)

    await page.select_option("#filters select[name=device]", "MOBILE")
    await wait_for_funnel(
        tab,
        [["home_page", "2"], ["search_page", "2"], ["payment_page", "1"], ["payment_confirmation_page", "1"]],
    )
    assert await page.text_content("#funnel-overall") == "50.0%"
    # The tiles beside it follow the same filter: users 2 and 4, sessions s2 s4a s4b, s4b converted 30.0.
    await page.wait_for_function("() => document.querySelector('#kpi-sessions').textContent === '3'")
    tiles = ["#kpi-users", "#kpi-sessions", "#kpi-conversions", "#kpi-rate", "#kpi-revenue"]
    assert [await page.text_content(t) for t in tiles] == ["2", "3", "1", "33.3%", "$30.00"]
    # Mobile women: user 2 alone, s2 not converted.
    await page.select_option("#filters select[name=sex]", "FEMALE")
    await page.wait_for_function("() => document.querySelector('#kpi-sessions').textContent === '1'")
    assert [await page.text_content(t) for t in tiles] == ["1", "1", "0", "0.0%", "$0.00"]
    await page.select_option("#filters select[name=sex]", "")

    await page.select_option("#filters select[name=device]", "")
    await page.wait_for_function("() => document.querySelector('#kpi-sessions').textContent === '6'")
    await page.click("#step-list li[data-step=search_page] button[aria-label='Remove search_page']")
    await wait_for_funnel(
        tab, [["home_page", "5"], ["payment_page", "4"], ["payment_confirmation_page", "2"]]
    )
    await page.click("#step-reset")
    await wait_for_funnel(
        tab,
        [["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"]],
    )
    await assert_clean(tab)


TREND_LABELS = """async ([periods, interval, width]) => {
    const charts = await import('/static/dashboard/charts.js');
    const points = periods.map((period) => ({ period, conversionRate: 0.1, steps: [{ users: 3 }] }));
    const svg = charts.trendChart(points, interval, width);
    return [svg.querySelectorAll('rect.cohort').length, [...svg.querySelectorAll('text.period')].map((t) => t.textContent)];
}"""


async def test_trend_labels_name_the_year_across_years_and_the_last_bar(tab: Tab) -> None:
    await open_dashboard(tab)

    async def labels(periods: list[str], interval: str, width: int) -> list[str]:
        bars, texts = await tab.page.evaluate(TREND_LABELS, [periods, interval, width])
        assert bars == len(periods)
        return texts

    # Bars eleven years apart (a replayed 2025 week after the 2014 data) must not read as neighbours.
    assert await labels(["2014-12-29", "2025-12-01"], "WEEK", 600) == ["Dec 29, 2014", "Dec 1, 2025"]
    # The year on the first label and where it changes, not on every one.
    assert await labels(["2014-12-22", "2014-12-29", "2015-01-05"], "WEEK", 600) == [
        "Dec 22, 2014", "Dec 29", "Jan 5, 2015",
    ]  # fmt: skip
    # 30 days in a 304 px plot: a label every 8 bars (4 fit), and the last bar's instead of day 25's.
    days = [f"2015-01-{d:02d}" for d in range(1, 31)]
    assert await labels(days, "DAY", 400) == ["Jan 1", "Jan 9", "Jan 17", "Jan 30"]
    await assert_clean(tab)


TREND_SHAPES = """async ([points, width]) => {
    const charts = await import('/static/dashboard/charts.js');
    const svg = charts.trendChart(points, 'WEEK', width);
    const bars = [...svg.querySelectorAll('rect.cohort')];
    return {
        centres: bars.map((r) => Number(r.getAttribute('x')) + Number(r.getAttribute('width')) / 2),
        heights: bars.map((r) => Number(r.getAttribute('height'))),
        dots: [...svg.querySelectorAll('circle.dot')].map((c) => Number(c.getAttribute('cx'))),
        line: svg.querySelector('path.line')?.getAttribute('d') ?? null,
    };
}"""


def trend_point(period: str, users: int, rate: float) -> dict:
    return {"period": period, "conversionRate": rate, "steps": [{"users": users}]}


async def test_trend_chart_gives_empty_periods_their_slot_and_no_conversion_point(tab: Tab) -> None:
    await open_dashboard(tab)
    # Weeks 1 and 4 with entrants, 2 and 3 the API's zero points. Plot 600 - 48 - 48 = 504 px wide, a
    # 126 px slot per week: bar centres at 48 + 126 * (i + 0.5).
    points = [
        trend_point("2015-01-05", 2, 0.5), trend_point("2015-01-12", 0, 0.0),
        trend_point("2015-01-19", 0, 0.0), trend_point("2015-01-26", 1, 0.0),
    ]  # fmt: skip
    shapes = await tab.page.evaluate(TREND_SHAPES, [points, 600])
    assert shapes["centres"] == [111, 237, 363, 489]
    assert [h > 0 for h in shapes["heights"]] == [True, False, False, True]
    # No rate is drawn for a week nobody started in: two dots, and the line does not join them
    # through 0% (a new subpath at week 4, no segment).
    assert shapes["dots"] == [111, 489]
    assert shapes["line"] is not None and shapes["line"].count("M") == 2 and "L" not in shapes["line"]
    # Neighbouring weeks with entrants are joined as before.
    joined = await tab.page.evaluate(TREND_SHAPES, [[*points[:1], trend_point("2015-01-12", 1, 1.0)], 600])
    assert joined["line"].count("M") == 1 and joined["line"].count("L") == 1
    await assert_clean(tab)


REDRAW_TWICE = """async () => {
    const charts = await import('/static/dashboard/charts.js');
    const box = document.createElement('div');
    box.id = 'resize-probe';
    document.body.append(box);
    const step = (name, users) => ({ name, users, conversionRate: 1, dropOffRate: 0, conversionFromStart: 1 });
    charts.responsive(box, (width) => charts.funnelChart([step('chart_a', 7)], width));
    charts.responsive(box, (width) => charts.funnelChart([step('chart_b', 3)], width));
    return box.querySelector('svg').getAttribute('width');
}"""


async def test_a_resize_redraws_the_chart_drawn_last_with_its_data(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    before = await page.evaluate(REDRAW_TWICE)
    await page.set_viewport_size({"width": 900, "height": 900})
    # The observer redraws at the new width; what it draws must be B, the chart drawn last.
    await page.wait_for_function(
        "w => document.querySelector('#resize-probe svg')?.getAttribute('width') !== w",
        arg=before,
        timeout=20_000,
    )
    label = await page.get_attribute("#resize-probe svg", "aria-label")
    assert label == "Funnel: chart_b 3 users"
    await assert_clean(tab)


async def test_trend_over_a_range_shows_every_week_and_says_when_nobody_started(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    bars = "n => document.querySelectorAll('#trend-chart svg rect.cohort').length === n"
    # The fixture's cohorts by week: 2014-12-29 (users 1, 2, 3) and 2015-01-05 (users 4, 5).
    await page.wait_for_function(bars, arg=2, timeout=20_000)
    # 2015-01-01 .. 2015-02-28 by week: Mondays 2014-12-29, 01-05, 01-12, 01-19, 01-26, 02-02, 02-09,
    # 02-16, 02-23 = 9 bars, 2 of them with entrants and a conversion dot.
    await page.fill("#filters input[name=end]", "2015-02-28")
    await page.fill("#filters input[name=start]", "2015-01-01")
    await page.wait_for_function(bars, arg=9, timeout=20_000)
    assert await page.locator("#trend-chart svg circle.dot").count() == 2
    # A range nobody started in: the API sends zero weeks, the panel says there is nobody.
    await page.fill("#filters input[name=start]", "2016-01-04")
    await page.fill("#filters input[name=end]", "2016-01-20")
    await page.wait_for_function(
        "() => document.querySelector('#trend-state').textContent.includes('No user started')", timeout=20_000
    )
    assert await page.locator("#trend-chart svg").count() == 0
    await assert_clean(tab)


async def test_user_lookup_shows_journey_sessions_and_look_alikes(tab: Tab) -> None:
    await open_dashboard(tab)
    page = tab.page
    await page.fill("#user-id", "4")
    await page.press("#user-id", "Enter")
    await page.wait_for_selector("#user-result:not([hidden])")
    # user 4: two sessions (s4a: home; s4b: home, search, payment, confirmation), converted
    assert await page.locator("#user-journey .session").count() == 2
    assert await page.locator("#user-journey .timeline li").count() == 5
    assert await page.locator("#user-progress li.reached").count() == 4
    similar = await page.eval_on_selector_all(
        "#user-similar tbody tr", "rows => rows.map(r => r.dataset.user)"
    )
    assert similar[0] == "1"  # [0.95, 0, 0.1, 0] is nearest to user 1's [1, 0, 0, 0]
    # Converted already: the API's 1.0 is that fact, not "100.0% likely" from the look-alikes.
    assert await page.text_content("#user-profile .fact:has-text('Conversion likelihood') .fact-value") == (
        "converted already"
    )
    note = await page.text_content("#user-similar p.muted")
    assert note.startswith("Converted already") and "%" not in note

    # user 3 has not converted: a likelihood strictly between 0 and 1 (smoothed), and where it comes from
    await page.fill("#user-id", "3")
    await page.press("#user-id", "Enter")
    await page.wait_for_function(
        "() => document.querySelector('#user-profile .avatar')?.textContent === '#3'"
    )
    shown = await page.text_content("#user-profile .fact:has-text('Conversion likelihood') .fact-value")
    assert shown.endswith("%") and shown not in ("0.0%", "100.0%")
    assert await page.text_content("#user-similar p.muted") == (
        f"{shown} likely to convert, from the outcomes of the 50 most similar users (weighted by similarity)."
    )

    await page.fill("#user-id", "999")
    await page.press("#user-id", "Enter")
    await page.wait_for_function(
        "() => document.querySelector('#user-state').textContent.includes('no user 999')"
    )
    await assert_clean(tab)


@pytest.fixture
def milvus_down(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.errors import StoreUnavailable

    def down() -> Exception:
        return StoreUnavailable("milvus: connection refused")

    broken = FailingProxy(services.vectors, {"get_vectors": down, "search": down})
    monkeypatch.setattr(services, "vectors", broken)


async def test_with_milvus_down_the_look_alikes_say_so_and_the_rest_works(
    milvus_down: None, tab: Tab
) -> None:
    await open_dashboard(tab)
    page = tab.page
    await page.fill("#user-id", "1")
    await page.press("#user-id", "Enter")
    await page.wait_for_selector("#user-result:not([hidden])")
    assert "vector index (Milvus) is unavailable" in await page.text_content("#user-similar")
    assert await page.locator("#user-journey .timeline li").count() == 4  # the journey still shows
    assert await funnel_users(tab) == [
        ["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"],
    ]  # fmt: skip
    assert tab.errors == []  # an unavailable backend is a state the page shows, not a script error


@pytest.fixture
def funnel_and_totals_down(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    from gateway.errors import StoreUnavailable

    def down() -> Exception:
        return StoreUnavailable("document store: connection refused")

    monkeypatch.setattr(services, "store", FailingProxy(services.store, {"funnel": down, "dashboard": down}))


async def test_a_root_field_answered_null_with_its_error_is_shown_as_that_error(
    funnel_and_totals_down: None, tab: Tab
) -> None:
    """Root fields are nullable: a failed `funnel` or `dashboard` comes back null beside its error, no
    longer as a `data: null` answer. The panels read that null as the failure it is and show the
    gateway's error, not a script's "Cannot read properties of null"."""
    await open_dashboard(tab)
    page = tab.page
    funnel_state = await page.text_content("#funnel-state") or ""
    assert "The funnel could not be loaded:" in funnel_state and "(UNAVAILABLE)" in funnel_state, funnel_state
    totals = await page.get_attribute("#kpis", "title") or ""
    assert totals.startswith("Totals unavailable:") and totals.endswith("(UNAVAILABLE)"), totals
    assert await page.text_content("#kpi-users") == "\u2013"  # the dash of a tile with no figure
    assert "null" not in funnel_state + totals
    await assert_clean(tab)


async def test_with_one_step_left_the_panels_say_so_whatever_the_filters(tab: Tab) -> None:
    """Down to one step, the funnel kept the last two-step funnel's rows beside a one-step picker, and
    a filter changed then wiped the "Pick at least two steps" hint while the tiles beside it moved on
    to the new filter: numbers that matched neither the picker nor the filters, unexplained."""
    await open_dashboard(tab)
    page = tab.page
    for step in ("home_page", "search_page", "payment_page"):
        await page.click(f"#step-list li[data-step={step}] button[aria-label='Remove {step}']")
    await page.select_option("#filters select[name=device]", "MOBILE")
    # The tiles follow the filter (users 2 and 4: 3 sessions), so the filter change has been handled.
    await page.wait_for_function("() => document.querySelector('#kpi-sessions').textContent === '3'")
    assert await page.text_content("#steps-hint") == "Pick at least two steps."
    assert await funnel_users(tab) == []
    assert "at least two steps" in (await page.text_content("#funnel-state") or "")
    assert "at least two steps" in (await page.text_content("#trend-state") or "")
    assert await page.locator("#funnel-chart svg, #trend-chart svg").count() == 0

    await page.click("#step-reset")  # the default funnel, on mobile users (the docstring's table)
    await wait_for_funnel(
        tab,
        [["home_page", "2"], ["search_page", "2"], ["payment_page", "1"], ["payment_confirmation_page", "1"]],
    )
    assert await page.text_content("#steps-hint") == ""
    await assert_clean(tab)


async def test_a_user_id_past_graphql_int_is_stopped_in_the_form(tab: Tab) -> None:
    """User ids are 1..2,147,483,647 (GraphQL Int). A larger one went to the gateway and came back as
    "Variable '$id' has invalid value: Int cannot represent non 32-bit signed integer value"."""
    await open_dashboard(tab)
    page = tab.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/graphql") else None)
    await page.fill("#user-id", "2147483648")
    await page.click("#user-form button[type=submit]")
    assert await page.eval_on_selector("#user-id", "e => e.validity.rangeOverflow")
    await page.fill("#user-id", "4")  # a real lookup after it: by then the larger id would have gone out
    await page.click("#user-form button[type=submit]")
    await page.wait_for_selector("#user-result:not([hidden])")
    lookups = [json.loads(body)["variables"]["id"] for body in sent if "DashboardUser" in body]
    assert lookups == [4]
    assert "Int cannot represent" not in (await page.text_content("#user-panel") or "")
    await assert_clean(tab)


async def test_the_period_picker_is_one_tab_stop_moved_with_the_arrow_keys(tab: Tab) -> None:
    """Weekly/Monthly is announced as a radio group, which a keyboard user moves with the arrow keys;
    they did nothing, and each button was its own tab stop."""
    await open_dashboard(tab)
    page = tab.page
    await page.focus("#trend-panel [data-interval=WEEK]")
    await page.keyboard.press("ArrowRight")
    assert await page.evaluate("() => document.activeElement.dataset.interval") == "MONTH"
    assert await page.get_attribute("[data-interval=MONTH]", "aria-checked") == "true"
    assert await page.get_attribute("[data-interval=WEEK]", "aria-checked") == "false"
    # The trend is drawn again, by month.
    await page.wait_for_function(
        "() => document.querySelector('#trend-chart svg')?.getAttribute('aria-label')?.startsWith('Conversion by month')",
        timeout=20_000,
    )
    await page.keyboard.press("Shift+Tab")  # out of the group and back in: lands on the checked one
    await page.keyboard.press("Tab")
    assert await page.evaluate("() => document.activeElement.dataset.interval") == "MONTH"
    await assert_clean(tab)


async def invert_the_range(page: Any) -> None:
    """From 2015-03-10 to 2015-03-01: a range that ends before it starts."""
    await page.fill("#filters input[name=start]", "2015-03-10")
    await page.dispatch_event("#filters input[name=start]", "change")
    await page.fill("#filters input[name=end]", "2015-03-01")
    await page.dispatch_event("#filters input[name=end]", "change")


async def test_a_range_that_ends_before_it_starts_empties_the_panels_until_it_is_fixed(tab: Tab) -> None:
    """With "To" set before "From", the hint said so but the funnel, the trend and the tiles kept the
    numbers of the range before: figures for filters no longer on screen."""
    await open_dashboard(tab)
    page = tab.page
    await invert_the_range(page)
    await page.wait_for_function(
        "() => document.querySelector('#funnel-state').textContent.includes('ends before it starts')",
        timeout=20_000,
    )
    assert await funnel_users(tab) == []
    assert "ends before it starts" in (await page.text_content("#trend-state") or "")
    assert await page.text_content("#kpi-users") == "\u2013"  # the dash of a tile with no figure
    assert await page.text_content("#steps-hint") == "The range ends before it starts."
    await page.click("#filters button[type=reset]")  # the whole history again

    await wait_for_funnel(
        tab,
        [["home_page", "5"], ["search_page", "4"], ["payment_page", "3"], ["payment_confirmation_page", "2"]],
    )
    await page.wait_for_function("() => document.querySelector('#kpi-sessions').textContent === '6'")
    assert await page.text_content("#steps-hint") == ""
    await assert_clean(tab)


async def test_the_period_picker_sends_nothing_the_gateway_can_only_refuse(tab: Tab) -> None:
    """With the range inverted or one step left the panels say why; choosing Monthly then sent the trend
    request anyway and swapped that reason for the gateway's refusal and a "Try again"."""
    await open_dashboard(tab)
    page = tab.page
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.post_data or "") if r.url.endswith("/graphql") else None)
    await invert_the_range(page)
    await page.wait_for_function(
        "() => document.querySelector('#trend-state').textContent.includes('ends before it starts')",
        timeout=20_000,
    )
    sent.clear()
    await page.click("#trend-panel [data-interval=MONTH]")
    await page.focus("#trend-panel [data-interval=MONTH]")
    await page.keyboard.press("ArrowLeft")
    await page.click("#filters button[type=reset]")  # then a request that is sent, to wait for
    await page.wait_for_function(
        "() => document.querySelector('#trend-chart svg')?.getAttribute('aria-label')?.startsWith('Conversion by week')",
        timeout=20_000,
    )
    trends = [json.loads(body)["variables"] for body in sent if "DashboardTrend" in body]
    assert [
        v for v in trends if (v.get("filter") or {}).get("start") == "2015-03-10"
    ] == []  # the inverted range
    assert await page.locator("#trend-state.error").count() == 0
    await assert_clean(tab)
