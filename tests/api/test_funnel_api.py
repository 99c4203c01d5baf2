"""funnel, funnelTrend, droppedOff and converted on the hand-made shop (see fixture_data's table)."""

from __future__ import annotations

import base64

from pytest import approx

from tests.api import fixture_data as fx
from tests.api.conftest import data_of

STEPS = "steps { name users conversionRate dropOffRate conversionFromStart avgTimeSpent medianTimeToConvert }"


def users_per_step(funnel: dict) -> list[int]:
    return [s["users"] for s in funnel["steps"]]


async def test_default_funnel_every_step_field(services):
    data = await data_of(services, f"{{ funnel {{ overallConversionRate breakdowns {{ key }} {STEPS} }} }}")
    funnel = data["funnel"]
    # Ordered: home 1,2,3,4,5; search after home 1,2,3,4 (user 5 searched before home); payment after
    # search 1,3,4 (user 2 paid before searching); confirmation 1,4.
    assert [s["name"] for s in funnel["steps"]] == fx.DEFAULT_FUNNEL
    assert users_per_step(funnel) == [5, 4, 3, 2]
    assert [s["conversionRate"] for s in funnel["steps"]] == approx([1.0, 0.8, 0.75, 2 / 3])
    assert [s["dropOffRate"] for s in funnel["steps"]] == approx([0.0, 0.2, 0.25, 1 / 3])
    assert [s["conversionFromStart"] for s in funnel["steps"]] == approx([1.0, 0.8, 0.6, 0.4])
    # Per-user seconds on the step's page: home (10+15+8+(5+6)+7)/5, search (20+25+12+9)/4,
    # payment (30+40+11)/3, confirmation (5+3)/2.
    assert [s["avgTimeSpent"] for s in funnel["steps"]] == approx([10.2, 16.5, 27.0, 4.0])
    # Seconds from the first home visit: search 60,120,60,72060 -> 90; payment 180,240,72120 -> 240;
    # confirmation 300,72600 -> 36450.
    assert [s["medianTimeToConvert"] for s in funnel["steps"]] == approx([0.0, 90.0, 240.0, 36450.0])
    assert funnel["overallConversionRate"] == approx(0.4)
    assert funnel["breakdowns"] == []


async def test_explicit_steps(services):
    data = await data_of(
        services,
        '{ funnel(steps: ["search_page", "payment_page"]) { overallConversionRate steps { name users } } }',
    )
    # search by 1,2,3,4,5; payment at or after the first search: 1,3,4 (user 2 paid before searching).
    assert data["funnel"]["steps"] == [{"name": fx.SEARCH, "users": 5}, {"name": fx.PAYMENT, "users": 3}]
    assert data["funnel"]["overallConversionRate"] == approx(0.6)


async def test_step_orders(services):
    query = "query($order: StepOrder!) { funnel(order: $order) { steps { users } } }"
    unordered = await data_of(services, query, {"order": "UNORDERED"})
    strict = await data_of(services, query, {"order": "STRICT"})
    # Unordered: user 5 has home and search in any order; user 2 has home, search and payment.
    assert users_per_step(unordered["funnel"]) == [5, 5, 4, 2]
    # Strict: user 2's next listed page after home is payment, so user 2 stops at home.
    assert users_per_step(strict["funnel"]) == [5, 3, 3, 2]


async def test_conversion_window(services):
    data = await data_of(
        services, "{ funnel(conversionWindowSeconds: 3600) { steps { users } overallConversionRate } }"
    )
    # User 4 searched 20 h after the first home visit: only home counts for them.
    assert users_per_step(data["funnel"]) == [5, 3, 2, 1]
    assert data["funnel"]["overallConversionRate"] == approx(0.2)


async def test_breakdown_by_device_and_sex(services):
    query = """query($b: Breakdown) {
        funnel(breakdown: $b) { breakdowns { key overallConversionRate steps { name users } } } }"""
    by_device = (await data_of(services, query, {"b": "DEVICE"}))["funnel"]["breakdowns"]
    assert [b["key"] for b in by_device] == ["desktop", "mobile", "tablet"]
    assert [users_per_step(b) for b in by_device] == [[2, 2, 2, 1], [2, 2, 1, 1], [1, 0, 0, 0]]
    assert [b["overallConversionRate"] for b in by_device] == approx([0.5, 0.5, 0.0])
    assert by_device[0]["steps"][0]["name"] == fx.HOME
    by_sex = (await data_of(services, query, {"b": "SEX"}))["funnel"]["breakdowns"]
    assert [b["key"] for b in by_sex] == ["female", "male"]
    assert [users_per_step(b) for b in by_sex] == [[2, 2, 1, 0], [3, 2, 2, 2]]
    assert [b["overallConversionRate"] for b in by_sex] == approx([0.0, 2 / 3])


async def test_filters(services):
    query = "query($f: FunnelFilter) { funnel(filter: $f) { steps { users } } }"
    mobile = await data_of(services, query, {"f": {"device": "MOBILE"}})
    assert users_per_step(mobile["funnel"]) == [2, 2, 1, 1]
    female = await data_of(services, query, {"f": {"sex": "FEMALE"}})
    assert users_per_step(female["funnel"]) == [2, 2, 1, 0]
    # Only visits on 2015-01-06: user 4's second session, the whole funnel.
    one_day = await data_of(services, query, {"f": {"start": "2015-01-06", "end": "2015-01-06"}})
    assert users_per_step(one_day["funnel"]) == [1, 1, 1, 1]
    nobody = await data_of(services, query, {"f": {"start": "2016-01-01"}})
    assert users_per_step(nobody["funnel"]) == [0, 0, 0, 0]


async def test_funnel_trend_per_interval(services):
    query = (
        "query($i: Interval!) { funnelTrend(interval: $i) { period conversionRate steps { name users } } }"
    )
    day = (await data_of(services, query, {"i": "DAY"}))["funnelTrend"]
    # Cohorts by the first home visit: 01-01 users 1,2; 01-02 user 3; 01-05 users 4,5; nobody started
    # on 01-03 or 01-04, which are there as zeros.
    assert [p["period"] for p in day] == [
        "2015-01-01",
        "2015-01-02",
        "2015-01-03",
        "2015-01-04",
        "2015-01-05",
    ]
    assert [users_per_step(p) for p in day] == [
        [2, 2, 1, 1], [1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [2, 1, 1, 1],
    ]  # fmt: skip
    assert [p["conversionRate"] for p in day] == approx([0.5, 0.0, 0.0, 0.0, 0.5])
    assert day[0]["steps"][3]["name"] == fx.CONFIRM
    week = (await data_of(services, query, {"i": "WEEK"}))["funnelTrend"]
    # 2015-01-01 is a Thursday: its ISO week starts 2014-12-29; 2015-01-05 is a Monday.
    assert [p["period"] for p in week] == ["2014-12-29", "2015-01-05"]
    assert [users_per_step(p) for p in week] == [[3, 3, 2, 1], [2, 1, 1, 1]]
    assert [p["conversionRate"] for p in week] == approx([1 / 3, 0.5])
    month = (await data_of(services, query, {"i": "MONTH"}))["funnelTrend"]
    assert [(p["period"], users_per_step(p)) for p in month] == [("2015-01-01", [5, 4, 3, 2])]


async def test_funnel_trend_covers_the_filter_range_with_zero_periods(services):
    query = f"""query($i: Interval!, $f: FunnelFilter) {{
        funnelTrend(interval: $i, filter: $f) {{ period conversionRate {STEPS} }} }}"""
    wide = {"start": "2014-11-20", "end": "2015-03-02"}
    month = (await data_of(services, query, {"i": "MONTH", "f": wide}))["funnelTrend"]
    # Every visit is in January 2015: one cohort [5, 4, 3, 2], the months around it empty.
    assert [(p["period"], users_per_step(p)) for p in month] == [
        ("2014-11-01", [0, 0, 0, 0]), ("2014-12-01", [0, 0, 0, 0]),
        ("2015-01-01", [5, 4, 3, 2]), ("2015-02-01", [0, 0, 0, 0]), ("2015-03-01", [0, 0, 0, 0]),
    ]  # fmt: skip
    empty = month[0]
    assert empty["conversionRate"] == 0.0
    assert [s["name"] for s in empty["steps"]] == fx.DEFAULT_FUNNEL
    assert [(s["conversionRate"], s["dropOffRate"], s["conversionFromStart"]) for s in empty["steps"]] == [
        (0.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0), (0.0, 1.0, 0.0),
    ]  # fmt: skip
    assert {(s["avgTimeSpent"], s["medianTimeToConvert"]) for s in empty["steps"]} == {(None, None)}
    # Nobody at all in a closed range: still one zero point per week (Monday 2016-01-04 to 01-18).
    nobody = {"start": "2016-01-04", "end": "2016-01-20"}
    weeks = (await data_of(services, query, {"i": "WEEK", "f": nobody}))["funnelTrend"]
    assert [(p["period"], users_per_step(p)) for p in weeks] == [
        ("2016-01-04", [0, 0, 0, 0]), ("2016-01-11", [0, 0, 0, 0]), ("2016-01-18", [0, 0, 0, 0]),
    ]  # fmt: skip
    # Nobody and an open end: no range to lay out, no points.
    assert (await data_of(services, query, {"i": "DAY", "f": {"start": "2016-01-04"}}))["funnelTrend"] == []


def cursor(user_id: int) -> str:
    return base64.b64encode(str(user_id).encode()).decode()


def ids(connection: dict) -> list[int]:
    return [e["node"]["id"] for e in connection["edges"]]


async def test_dropped_off_after_each_step(services):
    query = "query($s: String!) { droppedOff(afterStep: $s) { totalCount edges { node { id device } } } }"
    after_home = (await data_of(services, query, {"s": fx.HOME}))["droppedOff"]
    assert ids(after_home) == [5]
    assert after_home["edges"][0]["node"]["device"] == "TABLET"
    assert ids((await data_of(services, query, {"s": fx.SEARCH}))["droppedOff"]) == [2]
    assert ids((await data_of(services, query, {"s": fx.PAYMENT}))["droppedOff"]) == [3]


async def test_dropped_off_with_explicit_steps(services):
    data = await data_of(
        services,
        """{ droppedOff(afterStep: "home_page", steps: ["home_page", "search_page"], order: UNORDERED) {
                totalCount } }""",
    )
    assert data["droppedOff"]["totalCount"] == 0  # unordered, every home visitor also searched


async def test_converted_paginates_with_cursors(services):
    query = """query($after: String) { converted(first: 1, after: $after) {
        totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }"""
    first = (await data_of(services, query))["converted"]
    assert ids(first) == [1]
    assert first["totalCount"] == 2
    assert first["pageInfo"] == {"hasNextPage": True, "endCursor": cursor(1)}
    assert first["edges"][0]["cursor"] == cursor(1)
    second = (await data_of(services, query, {"after": first["pageInfo"]["endCursor"]}))["converted"]
    assert ids(second) == [4]
    assert second["pageInfo"] == {"hasNextPage": False, "endCursor": cursor(4)}


async def test_converted_with_filter(services):
    data = await data_of(
        services, "{ converted(filter: {device: MOBILE}) { totalCount edges { node { id } } } }"
    )
    assert ids(data["converted"]) == [4]
    assert data["converted"]["totalCount"] == 1


async def test_an_empty_funnel_is_what_the_schema_says(services):
    # Issue 9, item 8: step 1 answered 0.0 where the description promised "1 for step 1".
    data = await data_of(
        services,
        """{ funnel(filter: {start: "2030-01-01", end: "2030-01-31"}) {
               overallConversionRate steps { users conversionRate dropOffRate conversionFromStart } }
             __type(name: "FunnelStep") { fields { name description } } }""",
    )
    assert data["funnel"]["overallConversionRate"] == 0.0
    assert {(s["users"], s["conversionRate"]) for s in data["funnel"]["steps"]} == {(0, 0.0)}
    described = {f["name"]: f["description"] for f in data["__type"]["fields"]}
    assert "Step 1: 1 when anyone reached it, 0 when nobody did" in described["conversionRate"]
    full = await data_of(services, "{ funnel { steps { users conversionRate } } }")
    # users 1 to 5 reached home_page (tests/api/fixture_data.py)
    assert full["funnel"]["steps"][0] == {"users": 5, "conversionRate": 1.0}


async def test_extensions_say_what_answered_each_funnel(services):
    """A single day of the default funnel is computed once, then read from the funnel_analytics rows
    (another device filter is another cache key, so it reaches the store); the response says which."""
    from tests.api.conftest import run

    await services.store.wait_for_funnel_index(60)
    day = '{start: "2015-01-01", end: "2015-01-01"'
    first = await run(services, f"{{ funnel(filter: {day}}}) {{ steps {{ users }} }} }}")
    assert first["extensions"]["funnelSources"] == {"funnel": "funnel_index"}
    both = await run(
        services,
        f"{{ mobile: funnel(filter: {day}, device: MOBILE}}) {{ steps {{ users }} }} "
        f'week: funnel(filter: {{start: "2015-01-01", end: "2015-01-07"}}) {{ steps {{ users }} }} }}',
    )
    assert both["extensions"]["funnelSources"] == {"mobile": "funnel_analytics", "week": "funnel_index"}
    # the same funnel computed (a window no visit exceeds sends it past the rows)
    long = "conversionWindowSeconds: 100000000"
    computed = await run(services, f"{{ funnel(filter: {day}, device: MOBILE}}, {long}) {{ {STEPS} }} }}")
    assert computed["extensions"]["funnelSources"] == {"funnel": "funnel_index"}
    from_rows = await run(services, f"{{ funnel(filter: {day}, device: MOBILE}}) {{ {STEPS} }} }}")
    assert from_rows["data"] == computed["data"]
