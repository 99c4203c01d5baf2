"""dashboard, top_paths, form_texts and activity_by_user_page against hand-computed fixture values.

Session durations (end - start, seconds) and conversions, from fixture_data.SESSIONS:
    s10a  desktop u10  01-05  370  converted 120.5
    s20a  mobile  u20  01-06  305
    s30a  desktop u30  01-12  724  converted 80.0
    s40a  mobile  u40  01-20 1233
    s90a  mobile  u90  01-31   30
    s90b  mobile  u90  02-01   297   (starts 00:00:30)
    s50a  desktop u50  02-02  907  converted 45.25
    s60a  None    u60  02-03  243  converted 60.0
    s80a  desktop u80  02-19   44   (starts 23:58:00)
    s80b  desktop u80  02-20  242  converted 30.0
    s100a desktop u100 02-25   90
    s100b desktop u100 02-26   62
    s100c desktop u100 02-27    9
    s100d desktop u100 02-27    4
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from gateway.errors import BadInput
from gateway.models import DashboardMetrics, DeviceMetrics, PathCount, UserFilter
from gateway.stores.contracts import DocumentStore
from tests.contract.fixture_data import at, day

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the loop of the module's shared store


def assert_dashboard(got: DashboardMetrics, expected: DashboardMetrics) -> None:
    assert (got.users, got.sessions, got.conversions) == (
        expected.users,
        expected.sessions,
        expected.conversions,
    )
    assert got.revenue == pytest.approx(expected.revenue)
    if expected.avg_session_duration is None:
        assert got.avg_session_duration is None
    else:
        assert got.avg_session_duration == pytest.approx(expected.avg_session_duration)
    assert [d.device for d in got.by_device] == [d.device for d in expected.by_device]
    for g, e in zip(got.by_device, expected.by_device, strict=True):
        assert (g.users, g.sessions, g.conversions) == (e.users, e.sessions, e.conversions), e.device
        assert g.revenue == pytest.approx(e.revenue), e.device
        assert g.avg_session_duration == pytest.approx(e.avg_session_duration), e.device


# -- dashboard ------------------------------------------------------------------------------------------


async def test_dashboard_everything(shared_loaded_store: DocumentStore) -> None:
    # 14 sessions of 9 users (all but u70); converted s10a s30a s50a s60a s80b = 5; revenue
    # 120.5+80+45.25+60+30 = 335.75; durations sum 370+305+724+1233+907+243+44+242+30+297+90+62+9+4 = 4560.
    # desktop: u10 u30 u50 u80 u100, 9 sessions, 4 converted, 275.75, 370+724+907+44+242+90+62+9+4 = 2452.
    # mobile: u20 u40 u90, 4 sessions, 0 converted, 305+1233+30+297 = 1865. None: u60, s60a.
    expected = DashboardMetrics(
        users=9,
        sessions=14,
        conversions=5,
        revenue=335.75,
        avg_session_duration=4560 / 14,
        by_device=[
            DeviceMetrics(
                "desktop", users=5, sessions=9, conversions=4, revenue=275.75, avg_session_duration=2452 / 9
            ),
            DeviceMetrics(
                "mobile", users=3, sessions=4, conversions=0, revenue=0.0, avg_session_duration=1865 / 4
            ),
            DeviceMetrics(None, users=1, sessions=1, conversions=1, revenue=60.0, avg_session_duration=243.0),
        ],
    )
    assert_dashboard(await shared_loaded_store.dashboard(None, None), expected)


async def test_dashboard_inclusive_day_range(shared_loaded_store: DocumentStore) -> None:
    # [02-01, 02-19]: s90b (02-01 00:00:30) s50a s60a s80a (02-19 23:58) -> users u90 u50 u60 u80;
    # converted s50a s60a (45.25+60); durations 297+907+243+44 = 1491.
    expected = DashboardMetrics(
        users=4,
        sessions=4,
        conversions=2,
        revenue=105.25,
        avg_session_duration=1491 / 4,
        by_device=[
            DeviceMetrics(
                "desktop", users=2, sessions=2, conversions=1, revenue=45.25, avg_session_duration=951 / 2
            ),
            DeviceMetrics(
                "mobile", users=1, sessions=1, conversions=0, revenue=0.0, avg_session_duration=297.0
            ),
            DeviceMetrics(None, users=1, sessions=1, conversions=1, revenue=60.0, avg_session_duration=243.0),
        ],
    )
    assert_dashboard(await shared_loaded_store.dashboard(day("2015-02-01"), day("2015-02-19")), expected)


async def test_dashboard_open_start(shared_loaded_store: DocumentStore) -> None:
    # up to 01-31: s10a s20a s30a s40a s90a (s90a starts 23:59:00 on the end day); converted s10a s30a
    # (200.5); durations 370+305+724+1233+30 = 2662. desktop s10a s30a (370+724 = 1094); mobile s20a s40a
    # s90a (305+1233+30 = 1568).
    expected = DashboardMetrics(
        users=5,
        sessions=5,
        conversions=2,
        revenue=200.5,
        avg_session_duration=2662 / 5,
        by_device=[
            DeviceMetrics(
                "desktop", users=2, sessions=2, conversions=2, revenue=200.5, avg_session_duration=1094 / 2
            ),
            DeviceMetrics(
                "mobile", users=3, sessions=3, conversions=0, revenue=0.0, avg_session_duration=1568 / 3
            ),
        ],
    )
    assert_dashboard(await shared_loaded_store.dashboard(None, day("2015-01-31")), expected)


async def test_dashboard_open_end_counts_distinct_users(shared_loaded_store: DocumentStore) -> None:
    # from 02-25: u100's four sessions -> 1 user, 4 sessions, durations 90+62+9+4 = 165.
    expected = DashboardMetrics(
        users=1,
        sessions=4,
        conversions=0,
        revenue=0.0,
        avg_session_duration=165 / 4,
        by_device=[DeviceMetrics("desktop", 1, 4, 0, 0.0, 165 / 4)],
    )
    assert_dashboard(await shared_loaded_store.dashboard(day("2015-02-25"), None), expected)


async def test_dashboard_no_sessions(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.dashboard(date(2016, 1, 1), None)
    assert got == DashboardMetrics(0, 0, 0, 0.0, None, [])


DESKTOP_ALL_TIME = DeviceMetrics("desktop", 5, 9, 4, 275.75, 2452 / 9)


@pytest.mark.parametrize(
    ("device", "sex", "start", "end", "expected"),
    [
        # desktop users u10 u30 u50 u80 u100: the desktop row of test_dashboard_everything
        ("desktop", None, None, None, DashboardMetrics(5, 9, 4, 275.75, 2452 / 9, [DESKTOP_ALL_TIME])),
        # male and mobile: u40 u90; s40a s90a s90b, none converted, 1233+30+297 = 1560
        (
            "mobile",
            "male",
            None,
            None,
            DashboardMetrics(2, 3, 0, 0.0, 1560 / 3, [DeviceMetrics("mobile", 2, 3, 0, 0.0, 1560 / 3)]),
        ),
        # female (u20 u30 u60 u70 u100) sessions starting in February: s60a (no device, converted 60.0,
        # 243) and u100's four (desktop, 90+62+9+4 = 165)
        (
            None,
            "female",
            day("2015-02-01"),
            day("2015-02-28"),
            DashboardMetrics(
                2,
                5,
                1,
                60.0,
                408 / 5,
                [DeviceMetrics("desktop", 1, 4, 0, 0.0, 165 / 4), DeviceMetrics(None, 1, 1, 1, 60.0, 243.0)],
            ),
        ),
        ("tablet", None, None, None, DashboardMetrics(0, 0, 0, 0.0, None, [])),
    ],
    ids=["desktop", "mobile-male", "female-february", "nobody"],
)
async def test_dashboard_of_users_with_a_device_and_sex(
    shared_loaded_store: DocumentStore,
    device: str | None,
    sex: str | None,
    start: date | None,
    end: date | None,
    expected: DashboardMetrics,
) -> None:
    assert_dashboard(await shared_loaded_store.dashboard(start, end, device, sex), expected)


async def test_dashboard_empty_store(store: DocumentStore) -> None:
    assert await store.dashboard(None, None) == DashboardMetrics(0, 0, 0, 0.0, None, [])


def _session(session_id: str, user_id: int, device: str, pages: list[str] | None, value: float) -> dict:
    """A session of 2015-03-02 10:00-10:01 (60 s), converted when ``value`` is non-zero."""
    return {
        "session_id": session_id,
        "user_id": user_id,
        "start_time": at("2015-03-02 10:00:00"),
        "end_time": at("2015-03-02 10:01:00"),
        "device": device,
        "pages_visited": pages,
        "total_interactions": 1,
        "converted": bool(value),
        "conversion_value": value,
    }


async def test_dashboard_revenue_is_rounded_to_cents(store: DocumentStore) -> None:
    # Amounts whose float sums are noisy in every order and grouping: 0.1 + 1.1 = 1.2000000000000002,
    # 0.15 + 0.29 = 0.43999999999999995, all four 1.6400000000000001. In cents: 1.20, 0.44 and 1.64,
    # compared exactly (no approx): the noise is what is under test.
    sessions = [
        _session("m1", 1, "desktop", ["home"], 0.1),
        _session("m2", 2, "desktop", ["home"], 1.1),
        _session("m3", 3, "mobile", ["home"], 0.15),
        _session("m4", 3, "mobile", ["home"], 0.29),
    ]
    await store.insert_many("user_sessions", sessions)
    got = await store.dashboard(None, None)
    assert got.revenue == 1.64
    assert [(d.device, d.revenue) for d in got.by_device] == [("desktop", 1.2), ("mobile", 0.44)]
    assert (got.users, got.sessions, got.conversions) == (3, 4, 4)


async def test_dashboard_session_duration_is_one_exact_division(store: DocumentStore) -> None:
    # Each duration summed in whole units and divided once: 100 and 200 ms average to 0.15 s, where a
    # mean of the seconds gives 0.15000000000000002. A session without an end has no duration and is
    # not in the mean (mobile: 1 s and 3 s -> 2.0). Total: 4,300 ms over 4 timed sessions = 1.075.
    def timed(session_id: str, user_id: int, device: str, ms: int | None) -> dict:
        doc = _session(session_id, user_id, device, ["home"], 0.0)
        doc["end_time"] = None if ms is None else doc["start_time"] + timedelta(milliseconds=ms)
        return doc

    sessions = [
        timed("d1", 1, "desktop", 100),
        timed("d2", 2, "desktop", 200),
        timed("m1", 3, "mobile", 1_000),
        timed("m2", 3, "mobile", 3_000),
        timed("m3", 4, "mobile", None),
    ]
    await store.insert_many("user_sessions", sessions)
    got = await store.dashboard(None, None)
    assert got.sessions == 5
    assert got.avg_session_duration == 1.075
    assert [(d.device, d.avg_session_duration) for d in got.by_device] == [("desktop", 0.15), ("mobile", 2.0)]
    assert repr(got.by_device[0].avg_session_duration) == "0.15"


# -- top_paths -------------------------------------------------------------------------------------------


def paths(*rows: tuple[str, int]) -> list[PathCount]:
    return [PathCount(path.split(">"), n) for path, n in rows]


# Every session's pages joined with '>': "product" and "search>product" twice (u100), every other path
# once. Count desc first, then the joined string asc ("home" < "home>payment..." < "home>product..." ...).
ALL_PATHS = paths(
    ("product", 2),
    ("search>product", 2),
    ("home", 1),
    ("home>payment>confirmation", 1),
    ("home>product>home>search>payment>confirmation", 1),
    ("home>search>home>payment>confirmation", 1),
    ("home>search>payment>confirmation", 1),
    ("home>search>product", 1),
    ("payment", 1),
    ("search>home>confirmation", 1),
    ("search>home>search>payment", 1),
    ("search>payment", 1),
)


async def test_top_paths_all(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.top_paths(50, UserFilter()) == ALL_PATHS


async def test_top_paths_limit(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.top_paths(3, UserFilter()) == ALL_PATHS[:3]


async def test_top_paths_limit_zero(shared_loaded_store: DocumentStore) -> None:
    assert await shared_loaded_store.top_paths(0, UserFilter()) == []


async def test_top_paths_leave_out_sessions_without_a_page(store: DocumentStore) -> None:
    # e1 e2 are sessions of interactions only (a conversion, say): pages [] as live capture stores them,
    # or no list at all. Neither is a path; the three sessions with pages are all that is counted.
    sessions = [
        _session("p1", 1, "desktop", ["home", "search"], 0.0),
        _session("p2", 2, "desktop", ["home", "search"], 0.0),
        _session("p3", 3, "desktop", ["home"], 0.0),
        _session("e1", 4, "desktop", [], 12.5),
        _session("e2", 5, "desktop", [], 0.0),
        _session("e3", 6, "desktop", None, 0.0),
    ]
    await store.insert_many("user_sessions", sessions)
    users = [
        {"user_id": n, "device": "desktop", "sex": None, "date": None, "attributes": {}} for n in range(1, 7)
    ]
    await store.insert_many("users", users)  # the device filter reads the user's device
    assert await store.top_paths(50, UserFilter()) == paths(("home>search", 2), ("home", 1))
    assert await store.top_paths(50, UserFilter(device="desktop")) == paths(("home>search", 2), ("home", 1))


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        # desktop users u10 u30 u50 u80 u100
        (
            UserFilter(device="desktop"),
            paths(
                ("product", 2),
                ("search>product", 2),
                ("home>payment>confirmation", 1),
                ("home>product>home>search>payment>confirmation", 1),
                ("home>search>payment>confirmation", 1),
                ("payment", 1),
                ("search>home>confirmation", 1),
            ),
        ),
        # female (u20 u30 u60 u70 u100) sessions starting in February: s60a and u100's four
        (
            UserFilter(sex="female", start=day("2015-02-01"), end=day("2015-02-28")),
            paths(("product", 2), ("search>product", 2), ("home>search>home>payment>confirmation", 1)),
        ),
        # one day: only s90a starts on 01-31 (s90b starts 02-01 00:00:30)
        (UserFilter(start=day("2015-01-31"), end=day("2015-01-31")), paths(("home", 1))),
        # male and mobile: u40 u90
        (
            UserFilter(device="mobile", sex="male"),
            paths(("home", 1), ("search>home>search>payment", 1), ("search>payment", 1)),
        ),
        (UserFilter(device="tablet"), []),
    ],
    ids=["desktop", "female-february", "one-day", "mobile-male", "nobody"],
)
async def test_top_paths_filtered(
    shared_loaded_store: DocumentStore, filter: UserFilter, expected: list
) -> None:
    assert await shared_loaded_store.top_paths(50, filter) == expected


# -- form_texts ------------------------------------------------------------------------------------------


async def test_form_texts_on_a_page(shared_loaded_store: DocumentStore) -> None:
    # Non-empty form values on "search" by (timestamp, event_id); i40-1 (None) is left out, as is the
    # click i40-2 that carries a value; i60-a sorts before i60-b at the same second.
    assert await shared_loaded_store.form_texts("search", None) == [
        "red running shoes",  # 01-05
        "cheap laptop",  # 01-06
        "blue jeans",  # 01-20
        "late night snack",  # 02-01 00:00:40
        "gift ideas",  # 02-02
        "great selection",  # 02-03 16:01:05 i60-a
        "phone case",  # 02-03 16:01:05 i60-b
        "hiking boots",  # 02-20
    ]


@pytest.mark.parametrize(
    ("page", "on", "expected"),
    [
        ("search", "2015-02-03", ["great selection", "phone case"]),
        ("search", "2015-02-01", ["late night snack"]),
        ("search", "2015-01-07", []),
        ("payment", None, ["please deliver fast"]),  # i30-1 is an empty string, i10-5 a choice ("visa")
        ("home", None, []),  # clicks and scrolls only
        ("checkout", None, []),  # no such page
    ],
)
async def test_form_texts_filtered(
    shared_loaded_store: DocumentStore, page: str, on: str | None, expected: list
) -> None:
    assert await shared_loaded_store.form_texts(page, day(on) if on else None) == expected


# -- activity_by_user_page -----------------------------------------------------------------------------


def activity(
    user_id: int, page: str, visits: int, duration: float, first: str, clicks=0, scrolls=0, hovers=0, forms=0
) -> dict:
    return {
        "user_id": user_id,
        "page_type": page,
        "visits": visits,
        "total_duration": duration,
        "first_visit": at(first),
        "clicks": clicks,
        "scrolls": scrolls,
        "hovers": hovers,
        "forms": forms,
    }


# Per (user, page) with visits. u50's click on "product" has no visit there, so no row; u30's empty form
# value is still a form interaction; u40 has two forms (None and "blue jeans") and a click on search.
ACTIVITY = [
    activity(10, "confirmation", 1, 10.0, "2015-01-05 10:06:00"),
    activity(10, "home", 2, 45.0, "2015-01-05 10:00:00", clicks=1, scrolls=1),
    activity(10, "payment", 1, 60.0, "2015-01-05 10:05:00", forms=2),
    activity(10, "product", 1, 20.0, "2015-01-05 10:01:00"),
    activity(10, "search", 1, 40.0, "2015-01-05 10:03:00", forms=1),
    activity(20, "home", 1, 12.0, "2015-01-06 09:00:00"),
    activity(20, "product", 1, 5.0, "2015-01-06 09:05:00", hovers=1),
    activity(20, "search", 1, 8.0, "2015-01-06 09:00:00", forms=1),
    activity(30, "confirmation", 1, 4.0, "2015-01-12 14:12:00"),
    activity(30, "home", 1, 22.0, "2015-01-12 14:00:00"),
    activity(30, "payment", 1, 50.0, "2015-01-12 14:10:00", forms=1),
    activity(40, "home", 1, 25.0, "2015-01-20 08:05:00"),
    activity(40, "payment", 1, 33.0, "2015-01-20 08:20:00"),
    activity(40, "search", 2, 26.0, "2015-01-20 08:00:00", clicks=1, forms=2),
    activity(50, "confirmation", 1, 7.0, "2015-02-02 11:15:00"),
    activity(50, "home", 1, 31.0, "2015-02-02 11:00:00", clicks=1),
    activity(50, "payment", 1, 41.0, "2015-02-02 11:10:01"),
    activity(50, "search", 1, 21.0, "2015-02-02 11:10:00", forms=1),
    activity(60, "confirmation", 1, 3.0, "2015-02-03 16:04:00"),
    activity(60, "home", 2, 24.0, "2015-02-03 16:00:00"),
    activity(60, "payment", 1, 9.0, "2015-02-03 16:03:00"),
    activity(60, "search", 1, 6.0, "2015-02-03 16:01:00", forms=2),
    activity(80, "confirmation", 1, 2.0, "2015-02-20 13:06:00"),
    activity(80, "home", 1, 11.0, "2015-02-20 13:04:00"),
    activity(80, "payment", 1, 44.0, "2015-02-19 23:58:00"),
    activity(80, "search", 1, 18.0, "2015-02-20 13:02:00", forms=1),
    activity(90, "home", 1, 35.0, "2015-01-31 23:59:00"),
    activity(90, "payment", 1, 27.0, "2015-02-01 00:05:00", scrolls=1),
    activity(90, "search", 1, 19.0, "2015-02-01 00:00:30", forms=1),
    activity(100, "product", 4, 65.0, "2015-02-25 10:01:00"),  # 30+22+9+4
    activity(100, "search", 2, 27.0, "2015-02-25 10:00:00"),  # 15+12
]


async def test_activity_by_user_page(shared_loaded_store: DocumentStore) -> None:
    got = await shared_loaded_store.activity_by_user_page()
    assert [(r["user_id"], r["page_type"]) for r in got] == [(r["user_id"], r["page_type"]) for r in ACTIVITY]
    for row, expected in zip(got, ACTIVITY, strict=True):
        assert {k: row[k] for k in expected} == {
            **expected,
            "total_duration": pytest.approx(expected["total_duration"]),
        }


async def test_activity_empty_store(store: DocumentStore) -> None:
    assert await store.activity_by_user_page() == []


# -- malformed arguments -----------------------------------------------------------------------------


async def test_dashboard_inverted_range_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.dashboard(day("2015-02-01"), day("2015-01-31"))


async def test_top_paths_negative_limit_is_bad_input(shared_loaded_store: DocumentStore) -> None:
    with pytest.raises(BadInput):
        await shared_loaded_store.top_paths(-1, UserFilter())
