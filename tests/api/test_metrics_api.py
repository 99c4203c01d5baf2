"""dashboard, topPaths, sentiment and health on the hand-made shop."""

from __future__ import annotations

import statistics

from pytest import approx
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from tests.api import fixture_data as fx
from tests.api.conftest import data_of

DASHBOARD = """query($r: DateRange) { dashboard(range: $r) {
    users sessions conversions revenue avgSessionDuration conversionRate
    byDevice { device users sessions conversions revenue avgSessionDuration } } }"""


async def test_dashboard_all_time(services):
    d = (await data_of(services, DASHBOARD))["dashboard"]
    # Sessions last 360, 180, 300, 60, 660, 360 s; s1 (50.0) and s4b (30.0) converted.
    assert (d["users"], d["sessions"], d["conversions"]) == (5, 6, 2)
    assert d["revenue"] == approx(80.0)
    assert d["avgSessionDuration"] == approx(320.0)
    assert d["conversionRate"] == approx(2 / 6)
    assert d["byDevice"] == [
        {
            "device": "DESKTOP",
            "users": 2,
            "sessions": 2,
            "conversions": 1,
            "revenue": 50.0,
            "avgSessionDuration": 330.0,
        },
        {
            "device": "MOBILE",
            "users": 2,
            "sessions": 3,
            "conversions": 1,
            "revenue": 30.0,
            "avgSessionDuration": 300.0,
        },
        {
            "device": "TABLET",
            "users": 1,
            "sessions": 1,
            "conversions": 0,
            "revenue": 0.0,
            "avgSessionDuration": 360.0,
        },
    ]


async def test_dashboard_range(services):
    d = (await data_of(services, DASHBOARD, {"r": {"start": "2015-01-05", "end": "2015-01-06"}}))["dashboard"]
    # s4a, s4b (user 4) and s5 (user 5).
    assert (d["users"], d["sessions"], d["conversions"], d["revenue"]) == (2, 3, 1, 30.0)
    assert d["avgSessionDuration"] == approx(360.0)
    assert [b["device"] for b in d["byDevice"]] == ["MOBILE", "TABLET"]
    empty = (await data_of(services, DASHBOARD, {"r": {"start": "2016-01-01"}}))["dashboard"]
    assert (empty["sessions"], empty["avgSessionDuration"], empty["conversionRate"]) == (0, None, 0.0)


FILTERED = """query($r: DateRange, $d: Device, $s: Sex) { dashboard(range: $r, device: $d, sex: $s) {
    users sessions conversions revenue avgSessionDuration conversionRate byDevice { device sessions } } }"""


async def test_dashboard_of_users_with_a_device_and_sex(services):
    async def dashboard(**variables):
        return (await data_of(services, FILTERED, variables))["dashboard"]

    # Mobile users 2 and 4: s2 (180 s), s4a (60), s4b (660, converted 30.0).
    mobile = await dashboard(d="MOBILE")
    assert (mobile["users"], mobile["sessions"], mobile["conversions"], mobile["revenue"]) == (2, 3, 1, 30.0)
    assert mobile["avgSessionDuration"] == approx(300.0)
    assert mobile["conversionRate"] == approx(1 / 3)
    assert mobile["byDevice"] == [{"device": "MOBILE", "sessions": 3}]
    # Women 2 and 3 (6 has no session): s2 (180 s, mobile), s3 (300, desktop), neither converted.
    women = await dashboard(s="FEMALE")
    assert (women["users"], women["sessions"], women["conversions"], women["revenue"]) == (2, 2, 0, 0.0)
    assert women["avgSessionDuration"] == approx(240.0)
    assert women["byDevice"] == [{"device": "DESKTOP", "sessions": 1}, {"device": "MOBILE", "sessions": 1}]
    # Mobile men in 01-05..01-06: user 4's s4a and s4b.
    both = await dashboard(r={"start": "2015-01-05", "end": "2015-01-06"}, d="MOBILE", s="MALE")
    assert (both["users"], both["sessions"], both["conversions"], both["revenue"]) == (1, 2, 1, 30.0)
    assert both["avgSessionDuration"] == approx(360.0)
    # Cached apart: the unfiltered totals after the filtered ones are still everyone's.
    everyone = await dashboard()
    assert (everyone["users"], everyone["sessions"]) == (5, 6)


async def test_top_paths(services):
    full = [fx.HOME, fx.SEARCH, fx.PAYMENT, fx.CONFIRM]
    data = await data_of(services, "{ topPaths(limit: 3) { path sessions } }")
    # s1 and s4b share the full path; ties sorted by the path joined with '>'.
    assert data["topPaths"] == [
        {"path": full, "sessions": 2},
        {"path": [fx.HOME], "sessions": 1},
        {"path": [fx.HOME, fx.PAYMENT, fx.SEARCH], "sessions": 1},
    ]
    everything = await data_of(services, "{ topPaths { path sessions } }")
    assert [p["path"] for p in everything["topPaths"]][3:] == [
        [fx.HOME, fx.SEARCH, fx.PAYMENT],
        [fx.SEARCH, fx.HOME],
    ]
    mobile = await data_of(services, "{ topPaths(filter: {device: MOBILE}) { path sessions } }")
    assert mobile["topPaths"] == [
        {"path": [fx.HOME], "sessions": 1},
        {"path": [fx.HOME, fx.PAYMENT, fx.SEARCH], "sessions": 1},
        {"path": full, "sessions": 1},
    ]


SENTIMENT = """query($p: String!, $d: Date) {
    sentiment(pageType: $p, date: $d) { pageType date texts meanCompound positive neutral negative } }"""


def vader(text: str) -> float:
    return SentimentIntensityAnalyzer().polarity_scores(text)["compound"]


async def test_sentiment_all_days(services):
    query = SENTIMENT
    s = (await data_of(services, query, {"p": fx.PAYMENT}))["sentiment"]
    # The empty form value of user 2 is not a text.
    assert (s["pageType"], s["date"], s["texts"]) == (fx.PAYMENT, None, 3)
    assert (s["positive"], s["neutral"], s["negative"]) == (1, 1, 1)
    expected = statistics.fmean(vader(t) for t in (fx.POSITIVE_TEXT, fx.NEGATIVE_TEXT, fx.NEUTRAL_TEXT))
    assert s["meanCompound"] == approx(expected)


async def test_sentiment_one_day_and_no_texts(services):
    query = SENTIMENT
    s = (await data_of(services, query, {"p": fx.PAYMENT, "d": "2015-01-01"}))["sentiment"]
    assert s["date"] == "2015-01-01"
    assert (s["texts"], s["positive"], s["neutral"], s["negative"]) == (1, 1, 0, 0)
    assert s["meanCompound"] == approx(vader(fx.POSITIVE_TEXT))
    assert s["meanCompound"] > 0.5  # the fixture's positive text is clearly positive
    none = (await data_of(services, query, {"p": fx.HOME}))["sentiment"]
    assert none == {
        "pageType": fx.HOME,
        "date": None,
        "texts": 0,
        "meanCompound": None,
        "positive": 0,
        "neutral": 0,
        "negative": 0,
    }


async def test_health(services):
    data = await data_of(services, "{ health { status dependencies { role backend up } } }")
    assert data["health"]["status"] == "ok"
    assert {(d["role"], d["up"]) for d in data["health"]["dependencies"]} == {
        ("document_store", True), ("vector_index", True), ("cache", True)
    }  # fmt: skip
