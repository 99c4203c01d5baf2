"""user, users, session and journey on the hand-made shop."""

from __future__ import annotations

import base64

from pytest import approx

from tests.api import fixture_data as fx
from tests.api.conftest import data_of

SESSION_FIELDS = "id userId startTime endTime device pagesVisited totalInteractions converted conversionValue"


async def test_user_fields(services):
    data = await data_of(
        services,
        f"{{ user(id: 1) {{ id device sex date attributes converted sessions {{ {SESSION_FIELDS} }} }} }}",
    )
    assert data["user"] == {
        "id": 1,
        "device": "DESKTOP",
        "sex": "MALE",
        "date": "2015-01-01",
        "attributes": {"channel": "seo"},
        "converted": True,
        "sessions": [
            {
                "id": "s1",
                "userId": 1,
                "startTime": "2015-01-01T10:00:00.000000+00:00",
                "endTime": "2015-01-01T10:06:00.000000+00:00",
                "device": "DESKTOP",
                "pagesVisited": fx.DEFAULT_FUNNEL,
                "totalInteractions": 2,
                "converted": True,
                "conversionValue": 50.0,
            }
        ],
    }


async def test_user_sessions_in_start_order_and_first(services):
    data = await data_of(services, "{ user(id: 4) { all: sessions { id } one: sessions(first: 1) { id } } }")
    assert [s["id"] for s in data["user"]["all"]] == ["s4a", "s4b"]
    assert [s["id"] for s in data["user"]["one"]] == ["s4a"]


async def test_user_without_history(services):
    data = await data_of(
        services,
        """{ user(id: 6) { device sex converted sessions { id }
                     journey { visits { eventId } furthestStep converted timeToConvertSeconds } } }""",
    )
    assert data["user"] == {
        "device": "DESKTOP",
        "sex": "FEMALE",
        "converted": False,
        "sessions": [],
        "journey": {"visits": [], "furthestStep": None, "converted": False, "timeToConvertSeconds": None},
    }


async def test_not_converted_user(services):
    data = await data_of(services, "{ user(id: 2) { converted } }")
    assert data["user"]["converted"] is False


def cursor(user_id: int) -> str:
    return base64.b64encode(str(user_id).encode()).decode()


def ids(connection: dict) -> list[int]:
    return [e["node"]["id"] for e in connection["edges"]]


async def test_users_connection_pages(services):
    query = """query($after: String) { users(first: 4, after: $after) {
        totalCount edges { cursor node { id } }
        pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }"""
    page1 = (await data_of(services, query))["users"]
    assert ids(page1) == [1, 2, 3, 4]
    assert [e["cursor"] for e in page1["edges"]] == [cursor(i) for i in (1, 2, 3, 4)]
    # Relay's four fields; forward pages only, so hasPreviousPage is false (the spec allows it).
    assert page1["pageInfo"] == {
        "hasNextPage": True,
        "hasPreviousPage": False,
        "startCursor": cursor(1),
        "endCursor": cursor(4),
    }
    assert page1["totalCount"] == 6
    page2 = (await data_of(services, query, {"after": cursor(4)}))["users"]
    assert ids(page2) == [5, 6]
    assert page2["pageInfo"] == {
        "hasNextPage": False,
        "hasPreviousPage": False,
        "startCursor": cursor(5),
        "endCursor": cursor(6),
    }
    assert page2["totalCount"] == 6


async def test_users_filters(services):
    query = "query($f: FunnelFilter) { users(filter: $f) { totalCount edges { node { id } } } }"
    assert ids((await data_of(services, query, {"f": {"device": "DESKTOP"}}))["users"]) == [1, 3, 6]
    assert ids((await data_of(services, query, {"f": {"sex": "FEMALE"}}))["users"]) == [2, 3, 6]
    late = (await data_of(services, query, {"f": {"start": "2015-01-05"}}))["users"]
    assert ids(late) == [4, 5, 6]
    assert late["totalCount"] == 3
    window = (await data_of(services, query, {"f": {"start": "2015-01-02", "end": "2015-01-05"}}))["users"]
    assert ids(window) == [3, 4, 5]


async def test_users_empty_page(services):
    data = await data_of(
        services,
        """{ users(filter: {device: TABLET}, after: "NQ==") {
            totalCount edges { cursor } pageInfo { hasNextPage startCursor endCursor } } }""",
    )
    assert data["users"] == {
        "totalCount": 1,
        "edges": [],
        "pageInfo": {"hasNextPage": False, "startCursor": None, "endCursor": None},
    }


async def test_session_with_visits_and_interactions(services):
    data = await data_of(
        services,
        """{ session(id: "s3") { id startTime user { id device }
              visits { eventId userId sessionId pageType timestamp duration device }
              interactions { eventId sessionId pageType interactionType element timestamp
                             coordinates { x y } value } } }""",
    )
    session = data["session"]
    assert session["id"] == "s3"
    assert session["startTime"] == "2015-01-02T09:00:00.000000+00:00"
    assert session["user"] == {"id": 3, "device": "DESKTOP"}
    assert [(v["pageType"], v["duration"]) for v in session["visits"]] == [
        (fx.HOME, 8.0), (fx.SEARCH, 12.0), (fx.PAYMENT, 40.0)
    ]  # fmt: skip
    assert session["visits"][0] == {
        "eventId": "v08", "userId": 3, "sessionId": "s3", "pageType": fx.HOME,
        "timestamp": "2015-01-02T09:00:00.000000+00:00", "duration": 8.0, "device": "DESKTOP",
    }  # fmt: skip
    assert session["interactions"] == [
        {
            "eventId": "i04", "sessionId": "s3", "pageType": fx.PAYMENT, "interactionType": "form",
            "element": "feedback", "timestamp": "2015-01-02T09:04:30.000000+00:00", "coordinates": {"x": 40, "y": 80},
            "value": fx.NEGATIVE_TEXT,
        }
    ]  # fmt: skip


async def test_session_interactions_in_time_order(services):
    data = await data_of(
        services, '{ session(id: "s1") { totalInteractions interactions { interactionType value } } }'
    )
    assert data["session"] == {
        "totalInteractions": 2,
        "interactions": [
            {"interactionType": "click", "value": None},
            {"interactionType": "form", "value": fx.POSITIVE_TEXT},
        ],
    }


async def test_journeys(services):
    query = """query($u: Int!) { journey(userId: $u) {
        user { id } visits { pageType sessionId } furthestStep converted timeToConvertSeconds } }"""
    four = (await data_of(services, query, {"u": 4}))["journey"]
    assert four["user"] == {"id": 4}
    assert [(v["sessionId"], v["pageType"]) for v in four["visits"]] == [
        ("s4a", fx.HOME), ("s4b", fx.HOME), ("s4b", fx.SEARCH), ("s4b", fx.PAYMENT), ("s4b", fx.CONFIRM)
    ]  # fmt: skip
    assert four["furthestStep"] == fx.CONFIRM
    assert four["converted"] is True
    assert four["timeToConvertSeconds"] == approx(72600.0)  # 01-05 12:00 -> 01-06 08:10
    five = (await data_of(services, query, {"u": 5}))["journey"]
    assert [v["pageType"] for v in five["visits"]] == [fx.SEARCH, fx.HOME]
    assert (five["furthestStep"], five["converted"], five["timeToConvertSeconds"]) == (fx.HOME, False, None)
    two = (await data_of(services, query, {"u": 2}))["journey"]
    assert (two["furthestStep"], two["converted"]) == (fx.SEARCH, False)  # paid before searching


async def test_user_journey_field_matches_root_field(services):
    data = await data_of(
        services, "{ user(id: 1) { journey { furthestStep converted timeToConvertSeconds } } }"
    )
    assert data["user"]["journey"] == {
        "furthestStep": fx.CONFIRM,
        "converted": True,
        "timeToConvertSeconds": 300.0,
    }
