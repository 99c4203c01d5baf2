"""The trend chart's breaks and the totals' big amounts, in a real browser.

The API sends every period of a trend, the empty ones as zeros (analytics/trend_periods.py); one event
posted today after a 2015 dataset is then ~620 weeks of zeros. The chart draws a run of more than 8
empty periods as one narrow break (dashboard/slots.js), so the periods with data keep the width.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from tests.browser.conftest import Tab
from tests.browser.test_dashboard import assert_clean, open_dashboard, trend_point

pytestmark = pytest.mark.asyncio(loop_scope="session")

SLOTS = """async ([cohorts, maxEmpty]) => {
    const { trendSlots } = await import('/static/dashboard/slots.js');
    return maxEmpty == null ? trendSlots(cohorts) : trendSlots(cohorts, maxEmpty);
}"""


def period(i: int) -> dict:
    return {"kind": "period", "index": i}


def gap(a: int, b: int) -> dict:
    return {"kind": "gap", "from": a, "to": b}


async def test_runs_of_more_than_8_empty_periods_become_one_break(tab: Tab) -> None:
    await open_dashboard(tab)

    async def slots(cohorts: list[int], max_empty: int | None = None) -> list[dict]:
        return await tab.page.evaluate(SLOTS, [cohorts, max_empty])

    # A short run keeps its slots: two empty weeks between weeks with entrants.
    assert await slots([3, 0, 0, 1]) == [period(0), period(1), period(2), period(3)]
    # 8 empty periods are still drawn; 9 are one break (indices 1..9, both ends included).
    assert await slots([3, *[0] * 8, 1]) == [period(i) for i in range(10)]
    assert await slots([3, *[0] * 9, 1]) == [period(0), gap(1, 9), period(10)]
    # At either end too (a closed date range around the data), and two breaks apart.
    assert await slots([*[0] * 10, 2, *[0] * 9]) == [gap(0, 9), period(10), gap(11, 19)]
    assert await slots([1, *[0] * 12, 1, 0, 1, *[0] * 9, 5]) == [
        period(0), gap(1, 12), period(13), period(14), period(15), gap(16, 24), period(25),
    ]  # fmt: skip
    # The threshold is the caller's to pick: 2 empty periods over a maximum of 1.
    assert await slots([1, 0, 0, 1, 0, 1], 1) == [period(0), gap(1, 2), period(3), period(4), period(5)]
    await assert_clean(tab)


TREND = """async ([points, interval, width]) => {
    const charts = await import('/static/dashboard/charts.js');
    const svg = charts.trendChart(points, interval, width);
    const num = (node, name) => Number(node.getAttribute(name));
    const gaps = [...svg.querySelectorAll('g.gap')];
    return {
        periods: svg.dataset.periods,
        gaps: svg.dataset.gaps,
        bars: [...svg.querySelectorAll('rect.cohort')].map((r) => num(r, 'x') + num(r, 'width') / 2),
        dots: svg.querySelectorAll('circle.dot').length,
        breaks: gaps.map((g) => {
            const band = g.querySelector('rect.gap-band');
            return {
                from: g.dataset.from, to: g.dataset.to, x: num(band, 'x'), width: num(band, 'width'),
                lines: g.querySelectorAll('line.gap-line').length,
                text: g.querySelector('text').textContent, title: g.querySelector('title').textContent,
            };
        }),
        labels: [...svg.querySelectorAll('text.period')].map((t) => t.textContent),
        line: svg.querySelector('path.line')?.getAttribute('d') ?? null,
        aria: svg.getAttribute('aria-label'),
    };
}"""


def mondays(first: date, last: date) -> list[str]:
    return [(first + timedelta(weeks=k)).isoformat() for k in range((last - first).days // 7 + 1)]


async def test_a_break_gives_the_weeks_with_data_the_width_and_says_what_it_hides(tab: Tab) -> None:
    await open_dashboard(tab)
    # What the API sends for 17 weeks of a 2015 dataset plus one week of live data in 2026-11: every
    # Monday between, 623 weeks, 605 of them empty.
    weeks = mondays(date(2014, 12, 29), date(2026, 11, 30))
    assert len(weeks) == 623 and weeks[17] == "2015-04-27" and weeks[-2] == "2026-11-23"
    points = [
        trend_point(p, 5 if i < 17 or i == 622 else 0, 0.2 if i < 17 else 0.0) for i, p in enumerate(weeks)
    ]
    chart = await tab.page.evaluate(TREND, [points, "WEEK", 1000])
    # Plot 1000 - 96 = 904 px: the break is min(40, 1.5 * 904 / (18 + 1.5)) = 40 px, each of the 18
    # weeks (904 - 40) / 18 = 48 px. Week k of 2015 is centred at 48 + 48 k + 24; the break starts at
    # 48 + 17 * 48 = 864; the live week is centred at 904 + 24.
    assert (chart["periods"], chart["gaps"]) == ("18", "1")
    assert chart["bars"] == pytest.approx([72 + 48 * k for k in range(17)] + [928])
    assert chart["dots"] == 18
    assert chart["breaks"] == [
        {
            "from": "2015-04-27", "to": "2026-11-23", "x": pytest.approx(864), "width": 40, "lines": 2,
            "text": "no entrants · 605 weeks",
            "title": "Nobody started the funnel in the 605 weeks from Apr 27, 2015 to Nov 23, 2026: "
            "drawn as one break, not to scale",
        }
    ]  # fmt: skip
    # Labels "Dec 29, 2014" wide need 92 px: 864 / 92 = 9 fit, one every 2 weeks; Apr 20 (840) is
    # 88 px from the live week's (928) and goes, the latest period being the one people look for.
    assert chart["labels"] == [
        "Dec 29, 2014", "Jan 12, 2015", "Jan 26", "Feb 9", "Feb 23", "Mar 9", "Mar 23", "Apr 6", "Nov 30, 2026",
    ]  # fmt: skip
    # The line joins the 17 weeks of 2015 and never crosses the break.
    assert chart["line"].count("M") == 2 and chart["line"].count("L") == 16
    assert "2015-04-27 to 2026-11-23 nobody started (605 weeks, drawn as a break)" in chart["aria"]
    assert "2015-05-04" not in chart["aria"]  # the hidden weeks are named by the break, not one by one

    # At 360 px (a phone): plot 264, break min(40, 1.5 * 264 / 19.5) = 20.3 px, weeks 13.5 px; 243.7 /
    # 92 = 2 labels fit, one every 9 weeks: Dec 29 and Apr 20 of the first run, Nov 30 after the break;
    # Apr 20 is 13.5 + 20.3 px from Nov 30 and goes.
    narrow = await tab.page.evaluate(TREND, [points, "WEEK", 360])
    assert (narrow["periods"], narrow["gaps"]) == ("18", "1")
    assert narrow["breaks"][0]["width"] == pytest.approx(1.5 * 264 / 19.5)
    assert narrow["labels"] == ["Dec 29, 2014", "Nov 30, 2026"]

    # Months 2014-12 .. 2026-11 with data in the first two and the last: 2015-02 .. 2026-10 are one break.
    months = [f"{y}-{m:02d}-01" for y in range(2014, 2027) for m in range(1, 13)][11:-1]
    assert months[0] == "2014-12-01" and months[-1] == "2026-11-01" and len(months) == 144
    monthly = [trend_point(p, 9 if i in (0, 1, 143) else 0, 0.1) for i, p in enumerate(months)]
    chart = await tab.page.evaluate(TREND, [monthly, "MONTH", 1000])
    assert (chart["periods"], chart["gaps"]) == ("3", "1")
    assert [(b["from"], b["to"], b["text"]) for b in chart["breaks"]] == [
        ("2015-02-01", "2026-10-01", "no entrants · 141 months")
    ]
    assert chart["labels"] == ["Dec 2014", "Jan 2015", "Nov 2026"]
    await assert_clean(tab)


async def post_events(base: str, events: list[dict]) -> None:
    async with aiohttp.ClientSession() as session, session.post(f"{base}/events", json=events) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["rejected"] == []


TREND_CHART = """() => {
    const svg = document.querySelector('#trend-chart svg');
    const band = svg?.querySelector('g.gap rect.gap-band');
    if (!svg || !band) return null;
    return {
        periods: svg.dataset.periods, gaps: svg.dataset.gaps, width: Number(svg.getAttribute('width')),
        from: band.parentNode.dataset.from, to: band.parentNode.dataset.to,
        left: Number(band.getAttribute('x')), gapWidth: Number(band.getAttribute('width')),
        bars: svg.querySelectorAll('rect.cohort').length,
    };
}"""


async def wait_for_break(tab: Tab) -> Any:
    handle = await tab.page.wait_for_function(TREND_CHART, timeout=20_000)
    return await handle.json_value()


async def test_one_live_event_today_after_the_2015_shop_draws_a_break_and_a_big_revenue_fits(
    tab: Tab,
) -> None:
    # User 6 of the fixture has no visits: a home page today makes them this week's cohort, and three
    # conversions of a billion dollars (the most one may be) make the revenue tile's figure 13 digits long.
    buy = [
        {"type": "conversion", "eventId": f"gap-buy-{k}", "userId": 6, "pageType": "home_page", "value": "1000000000.00"}
        for k in range(3)
    ]  # fmt: skip
    await post_events(
        tab.base, [{"type": "page_view", "eventId": "gap-1", "userId": 6, "pageType": "home_page"}, *buy]
    )
    today = datetime.now(UTC).date()
    monday = today - timedelta(days=today.weekday())
    await open_dashboard(tab)
    page = tab.page
    chart = await wait_for_break(tab)
    # The fixture's weeks 2014-12-29 and 2015-01-05, then nothing until this week: 3 weeks drawn, the
    # weeks from 2015-01-12 to last week as one break of at most 40 px.
    assert chart["periods"] == "3" and chart["gaps"] == "1" and chart["bars"] == 3
    assert (chart["from"], chart["to"]) == ("2015-01-12", (monday - timedelta(weeks=1)).isoformat())
    plot = chart["width"] - 96
    assert chart["gapWidth"] == 40
    # The two 2015 weeks get two thirds of what the break leaves, ending where the break starts.
    assert chart["left"] == pytest.approx(48 + (plot - 40) * 2 / 3, abs=0.01)

    # The revenue (fixture 50.00 + 30.00, plus the 3,000,000,000.00) fits its tile, exact in the title.
    await page.wait_for_function("() => document.querySelector('#kpi-revenue').textContent === '$3.0B'")
    assert await page.get_attribute("#kpi-revenue", "title") == "$3,000,000,080.00 exactly"
    fits = "n => n.scrollWidth <= n.clientWidth && n.getBoundingClientRect().right <= n.parentNode.getBoundingClientRect().right"
    assert await page.eval_on_selector("#kpi-revenue", fits)
    # The live panel's revenue per minute (all three billion while their minute runs, a share of it in
    # the next: billions either way for the seconds this test takes) is shortened the same way, and
    # nothing on the page is wider than the window.
    await page.wait_for_function(
        """() => /^\\$[0-9.]+B$/.test(document.querySelector('#live-rpm').textContent)
              && / exactly$/.test(document.querySelector('#live-rpm').title)""",
        timeout=20_000,
    )
    assert await page.eval_on_selector("#live-rpm", fits)
    assert await page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")

    await tab.screenshot("dashboard-trend-break-weekly.png", full_page=True)
    # Monthly: the fixture is all January 2015; that month and this one drawn, the months between one break.
    await page.click("#trend-panel [data-interval=MONTH]")
    await page.wait_for_function(
        "() => document.querySelector('#trend-chart svg g.gap')?.dataset.to?.endsWith('-01')", timeout=20_000
    )
    chart = await wait_for_break(tab)
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    assert (chart["periods"], chart["from"], chart["to"]) == ("2", "2015-02-01", last_month.isoformat())
    await tab.screenshot("dashboard-trend-break.png", full_page=True)
    await assert_clean(tab)


MONEY = """async (amounts) => {
    const { fmt } = await import('/static/dashboard/charts.js');
    return amounts.map((x) => fmt.moneyFit(x));
}"""


async def test_amounts_from_a_million_dollars_are_shortened(tab: Tab) -> None:
    await open_dashboard(tab)
    amounts = [0, 80, 999_999.99, 1_000_000, 12_345_678, 3_000_000_635.25, 1.5e12]
    assert await tab.page.evaluate(MONEY, amounts) == [
        "$0.00", "$80.00", "$999,999.99", "$1.0M", "$12.3M", "$3.0B", "$1.5T",
    ]  # fmt: skip
    # Below a million the tile shows the exact amount and has no title (the fixture's 80.00).
    await tab.page.wait_for_function("() => document.querySelector('#kpi-revenue').textContent === '$80.00'")
    assert await tab.page.get_attribute("#kpi-revenue", "title") is None
    await assert_clean(tab)
