"""`User.sessions` and `Session.interactions` are pages like the visit lists (tests/api/test_visit_pages.py):
`offset` skips from the start, then `first`/`last` take from what remains; without them sessions answer
their first 10 and interactions their first 100. `User.sessionCount` and `Session.totalInteractions` count
them all. A bad `offset` anywhere is refused once, before anything runs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from gateway.services import Services
from gateway.stores.collections import USER_INTERACTIONS, USER_SESSIONS
from tests.api.conftest import data_of, run
from tests.api.test_visit_pages import DASHBOARD_PAGES, USER_JS


def _session(sid: str, user: int, start: datetime, interactions: int = 0) -> dict:
    return {
        "session_id": sid, "user_id": user, "start_time": start, "end_time": start + timedelta(minutes=1),
        "device": "desktop", "pages_visited": [], "total_interactions": interactions, "converted": False,
        "conversion_value": 0.0,
    }  # fmt: skip


async def _many_sessions(services: Services) -> None:
    """User 6 (no sessions in the fixture) gets 25, s6-00..s6-24, an hour apart."""
    start = datetime(2015, 1, 10)
    sessions = [_session(f"s6-{k:02d}", 6, start + timedelta(hours=k)) for k in range(25)]
    await services.store.insert_many(USER_SESSIONS, sessions)


async def _many_interactions(services: Services) -> None:
    """User 5 gets a session s5-many with 150 clicks, x000..x149, a second apart."""
    start = datetime(2015, 1, 20)
    clicks = [
        {
            "event_id": f"x{k:03d}",
            "user_id": 5,
            "session_id": "s5-many",
            "page_type": "home_page",
            "interaction_type": "click",
            "element": "button",
            "timestamp": start + timedelta(seconds=k),
            "coordinates": {"x": k, "y": k},
            "value": None,
            "free_text": False,
        }
        for k in range(150)
    ]
    await services.store.insert_many(USER_SESSIONS, [_session("s5-many", 5, start, interactions=150)])
    await services.store.insert_many(USER_INTERACTIONS, clicks)


def _ids(items: list[dict], key: str = "id") -> list[str]:
    return [item[key] for item in items]


def _s6(numbers: range) -> list[str]:
    return [f"s6-{k:02d}" for k in numbers]


def _x(numbers: range) -> list[str]:
    return [f"x{k:03d}" for k in numbers]


async def test_sessions_answer_ten_unless_asked_and_count_them_all(services: Services):
    await _many_sessions(services)
    data = await data_of(
        services,
        """{ user(id: 6) { sessionCount sessions { id } all: sessions(first: 1000) { id }
            rest: sessions(offset: 20) { id } second: sessions(offset: 10, first: 10) { id }
            tail: sessions(last: 3) { id } mid: sessions(offset: 5, first: 10, last: 2) { id }
            none: sessions(offset: 25) { id } } }""",
    )
    user = {key: value if key == "sessionCount" else _ids(value) for key, value in data["user"].items()}
    assert user == {
        "sessionCount": 25,
        "sessions": _s6(range(10)),  # the default page
        "all": _s6(range(25)),
        "rest": _s6(range(20, 25)),  # the default page of the 5 that remain
        "second": _s6(range(10, 20)),
        "tail": ["s6-22", "s6-23", "s6-24"],
        "mid": ["s6-13", "s6-14"],  # s6-05.., its first 10 (s6-05..s6-14), their last 2
        "none": [],
    }


@pytest.mark.parametrize("converted", ["", "converted"])
async def test_a_listing_counts_each_users_sessions(services: Services, converted: str):
    # With `converted` the listing reads its page's sessions in one batch (schema/user.py
    # with_documents); without, each user asks the loader: the same counts and pages either way.
    await _many_sessions(services)
    query = (
        f"{{ users {{ edges {{ node {{ id {converted} sessionCount sessions(first: 1) {{ id }} }} }} }} }}"
    )
    nodes = [edge["node"] for edge in (await data_of(services, query))["users"]["edges"]]
    counts = {node["id"]: (node["sessionCount"], _ids(node["sessions"])) for node in nodes}
    assert counts == {
        1: (1, ["s1"]),
        2: (1, ["s2"]),
        3: (1, ["s3"]),
        4: (2, ["s4a"]),
        5: (1, ["s5"]),
        6: (25, ["s6-00"]),
    }


async def test_the_dashboard_asks_every_session_and_their_count(services: Services):
    # Its user lookup (static/dashboard/user.js) lists every session: it asks them explicitly, beyond
    # the default page of 10, and sessionCount tells it whether the page was all of them.
    await _many_sessions(services)
    document = re.search(r"const USER = `(.*?)`;", USER_JS.read_text(), flags=re.S)
    assert document is not None
    user = (await data_of(services, document.group(1), {"id": 6, **DASHBOARD_PAGES}))["user"]
    assert (user["sessionCount"], _ids(user["sessions"])) == (25, _s6(range(25)))


async def test_interactions_answer_a_hundred_unless_asked(services: Services):
    await _many_interactions(services)
    data = await data_of(
        services,
        """{ session(id: "s5-many") { totalInteractions interactions { eventId }
            rest: interactions(offset: 100) { eventId } mid: interactions(offset: 140, first: 5, last: 2) { eventId }
            tail: interactions(last: 1) { eventId } none: interactions(offset: 150) { eventId } }
            small: session(id: "s1") { totalInteractions interactions(first: 1) { eventId }
            second: interactions(offset: 1) { eventId } } }""",
    )
    session = data["session"]
    assert session["totalInteractions"] == 150
    assert _ids(session["interactions"], "eventId") == _x(range(100))
    assert _ids(session["rest"], "eventId") == _x(range(100, 150))
    assert _ids(session["mid"], "eventId") == ["x143", "x144"]  # x140..x144, their last 2
    assert _ids(session["tail"], "eventId") == ["x149"]
    assert session["none"] == []
    # s1: i01 (a click on home), i02 (the feedback form on payment).
    assert data["small"] == {
        "totalInteractions": 2,
        "interactions": [{"eventId": "i01"}],
        "second": [{"eventId": "i02"}],
    }


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (
            "{ users(first: 50) { edges { node { journey { visits(offset: -1) { pageType } } } } } }",
            None,
            "offset must be an integer in 0..1000000, got -1 at users.edges.node.journey.visits",
        ),
        (
            "query($o: Int) { users { edges { node { sessions(offset: $o) { id } } } } }",
            {"o": 1_000_001},
            "offset must be an integer in 0..1000000, got 1000001 at users.edges.node.sessions",
        ),
        (
            "{ users { edges { node { sessions(first: 2) { interactions(offset: -5) { value } } } } } }",
            None,
            "offset must be an integer in 0..1000000, got -5 at users.edges.node.sessions.interactions",
        ),
        (
            "{ users { edges { node { sessions { pagesVisited(offset: 2000000) } } } } }",
            None,
            "offset must be an integer in 0..1000000, got 2000000 at users.edges.node.sessions.pagesVisited",
        ),
        (
            '{ session(id: "s4b") { visits(offset: -1, first: 2) { pageType } } }',
            None,
            "offset must be an integer in 0..1000000, got -1 at session.visits",
        ),
    ],
    ids=["journey visits", "sessions variable", "interactions", "pagesVisited", "session visits"],
)
async def test_a_bad_offset_is_refused_once_before_execution(counted, query, variables, message):
    # Nested under six users, a resolver's refusal would come six times, after the listing ran.
    result = await run(counted, query, variables)
    assert result.get("data") is None
    [error] = result["errors"]
    assert (error["message"], error["extensions"]["code"]) == (message, "BAD_USER_INPUT")
    assert counted.store.total == 0 and counted.vectors.total == 0 and counted.cache.total == 0


@pytest.mark.parametrize(
    ("query", "variables", "code", "message"),
    [
        ('{ user(id: 4) { sessions(offset: "2") { id } } }', None, "GRAPHQL_VALIDATION_FAILED", '"2"'),
        ("{ user(id: 4) { sessions(offset: 1.5) { id } } }", None, "GRAPHQL_VALIDATION_FAILED", "1.5"),
        (
            "query($o: Int) { user(id: 4) { sessions(offset: $o) { id } } }",
            {"o": "2"},
            "BAD_USER_INPUT",
            '"2"',
        ),
        (
            "query($o: Int) { user(id: 4) { sessions(offset: $o) { id } } }",
            {"o": 2.5},
            "BAD_USER_INPUT",
            "2.5",
        ),
    ],
    ids=["string literal", "float literal", "string variable", "float variable"],
)
async def test_an_offset_that_is_no_integer_is_a_coded_error(counted, query, variables, code, message):
    result = await run(counted, query, variables)
    assert result.get("data") is None
    [error] = result["errors"]
    assert error["extensions"]["code"] == code
    assert error["message"].endswith(f"Int cannot represent non-integer value: {message}")
    assert counted.store.total == 0
