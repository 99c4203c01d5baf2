"""Capture through POST /events and trackEvents: per-event verdicts, what is stored, idempotency."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from gateway.cache import keys
from gateway.realtime import streams
from gateway.realtime.enrichment import PlannerMemory
from gateway.realtime.runtime import Realtime
from gateway.services import Services
from tests.api.conftest import data_of, run
from tests.realtime.conftest import page_view, post_events, wait_for_subscription, wait_until
from tests.redis_fixtures import REDIS_MODES

# One suite, two implementations of the cache: the private Redis and a 3-master Redis Cluster.
pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)

NOW = datetime.now(UTC).replace(microsecond=0)
MINUTE = timedelta(minutes=1)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


async def test_a_mixed_batch_gets_exact_verdicts_and_every_valid_event_is_stored(http, services: Services):
    batch = [
        page_view("ok-1", 1, "home_page", timestamp=iso(NOW)),
        {"type": "page_view", "eventId": "bad-1", "pageType": "home_page"},  # no userId
        page_view("ok-2", 2, "search_page", duration=12.5),
        {"type": "click", "eventId": "bad-2", "userId": 1},  # unknown type
        {
            "type": "interaction",
            "eventId": "ok-3",
            "userId": 1,
            "pageType": "payment_page",
            "interactionType": "form",
            "value": "fast checkout",
            "coordinates": {"x": 3, "y": 4},
        },
        page_view("bad-3", 3, "Home Page"),  # not a slug
        {
            "type": "conversion",
            "eventId": "ok-4",
            "userId": 2,
            "pageType": "payment_confirmation_page",
            "value": 42,
        },
    ]
    status, body = await post_events(http, batch)
    assert status == 200
    assert body == {
        "accepted": ["ok-1", "ok-2", "ok-3", "ok-4"],
        "duplicates": [],
        "rejected": [
            {"index": 1, "eventId": "bad-1", "reason": "page_view events need userId"},
            {
                "index": 3,
                "eventId": "bad-2",
                "reason": 'type must be one of page_view, interaction, conversion, got "click"',
            },
            {
                "index": 5,
                "eventId": "bad-3",
                "reason": 'pageType must be a slug like "home" or "gift_cards" ([a-z][a-z0-9_]{0,39}), got "Home Page"',
            },
        ],
    }
    store = services.store
    [v1], [v2] = (await store.visits_by_user_ids([1]))[0][-1:], (await store.visits_by_user_ids([2]))[0][-1:]
    assert (v1["event_id"], v1["timestamp"], v1["device"]) == ("ok-1", NOW.replace(tzinfo=None), "desktop")
    assert (v2["event_id"], v2["duration"], v2["device"]) == ("ok-2", 12.5, "mobile")
    interactions = (await store.interactions_by_session_ids([v1["session_id"]]))[0]
    assert [(i["event_id"], i["value"], i["coordinates"]) for i in interactions] == [
        ("ok-3", "fast checkout", {"x": 3, "y": 4})
    ]
    [session] = await store.sessions_by_ids([v2["session_id"]])
    assert (session["converted"], session["conversion_value"], session["pages_visited"]) == (
        True,
        42.0,
        ["search_page"],
    )


async def test_both_paths_echo_a_bad_value_as_the_json_it_was(http, services: Services):
    # Clients write JSON: a string comes back in double quotes with JSON's escapes, a boolean as true,
    # and a long value cut (at 60 characters, saying how long it was) -- never Python's 'x' or True.
    mutation = """mutation($events: [EventInput!]!) {
        trackEvents(events: $events) { accepted rejected { index eventId reason } } }"""

    def batch(run: str) -> list[dict[str, object]]:
        base = {"userId": 1, "pageType": "home_page"}
        return [
            page_view(f"{run}-ok", 1, "home_page"),
            {**base, "type": 'vi"ew\\', "eventId": f"{run}-1"},
            {**base, "type": "page_view", "eventId": f"{run}-2", "timestamp": True},
            {
                **base,
                "type": "interaction",
                "eventId": f"{run}-3",
                "interactionType": "click",
                "element": "x" * 200,
            },
        ]

    reasons = [
        r'type must be one of page_view, interaction, conversion, got "vi\"ew\\"',
        "timestamp must be ISO-8601 or epoch seconds, got true",
        # 200 x's are 202 characters of JSON: the quote and 59 x's are kept, the string's length given.
        'element must be a string of at most 100 characters, got "' + "x" * 59 + "... (200 characters)",
    ]
    data = await data_of(services, mutation, {"events": batch("m")})
    assert data["trackEvents"] == {
        "accepted": ["m-ok"],
        "rejected": [{"index": i, "eventId": f"m-{i}", "reason": r} for i, r in enumerate(reasons, 1)],
    }
    status, body = await post_events(http, batch("p"))
    assert (status, body["accepted"]) == (200, ["p-ok"])
    assert body["rejected"] == [
        {"index": i, "eventId": f"p-{i}", "reason": r} for i, r in enumerate(reasons, 1)
    ]


async def test_trackevents_applies_the_same_rules_and_answers_the_same(http, services: Services):
    mutation = """mutation($events: [EventInput!]!) {
        trackEvents(events: $events) { accepted duplicates rejected { index eventId reason } } }"""
    events = [
        page_view("m-1", 1, "home_page", timestamp=NOW.timestamp()),
        {"type": "page_view", "eventId": "m-bad", "userId": 1, "pageType": "home_page", "duration": -1},
    ]
    data = await data_of(services, mutation, {"events": events})
    status, body = await post_events(
        http, [page_view("p-1", 1, "home_page"), events[1] | {"eventId": "p-bad"}]
    )
    assert data["trackEvents"] == {
        "accepted": ["m-1"],
        "duplicates": [],
        "rejected": [
            {
                "index": 1,
                "eventId": "m-bad",
                "reason": "duration must be a number of seconds 0..86400, got -1",
            }
        ],
    }
    assert (status, body["rejected"][0]["reason"]) == (200, data["trackEvents"]["rejected"][0]["reason"])
    [visits] = await services.store.visits_by_user_ids([1])
    # user 1's four fixture visits (v01-v04, tests/api/fixture_data.py) and the two good events: no bad one
    assert {v["event_id"] for v in visits} == {"v01", "v02", "v03", "v04", "m-1", "p-1"}


async def test_an_event_id_reused_under_another_type_and_user_is_a_duplicate(http, services: Services):
    # The probe's case: user 61's conversion reusing user 60's page-view id started no session
    # "rt-x-61" of its own but was folded into user 60's (the id's rt- session), and stored twice.
    view = page_view("x-61", 60, "home_page", timestamp=iso(NOW - MINUTE))
    assert (await post_events(http, [view]))[0] == 200
    [before] = await services.store.sessions_by_user_ids([60])
    conversion = {
        "type": "conversion",
        "eventId": "x-61",
        "userId": 61,
        "pageType": "payment_page",
        "value": 5,
    }
    assert await post_events(http, [conversion]) == (
        200,
        {"accepted": ["x-61"], "duplicates": ["x-61"], "rejected": []},
    )
    assert await services.store.sessions_by_user_ids([60, 61]) == [before, []]
    assert await services.store.users_by_ids([61]) == [None]
    assert await services.store.interactions_by_user_ids([60, 61]) == [[], []]


async def test_a_reused_event_id_starts_no_session_for_the_events_after_it(http, services: Services):
    # User 60's view x-62 started session rt-x-62. New user 62 reuses that id, then sends a new view:
    # the reused event is a duplicate, so it may not start rt-x-62 for user 62 either (the new view
    # was stored in user 60's session, user 62 had none, and was created with the duplicate's day).
    yesterday = NOW - timedelta(days=1)
    assert (await post_events(http, [page_view("x-62", 60, "home_page", timestamp=iso(yesterday))]))[0] == 200
    [before] = await services.store.sessions_by_user_ids([60])
    assert [s["session_id"] for s in before] == ["rt-x-62"]
    conversion = {"type": "conversion", "eventId": "x-62", "userId": 62, "pageType": "payment_page",
                  "value": 5, "timestamp": iso(NOW - MINUTE), "device": "mobile"}  # fmt: skip
    view = page_view("y-62", 62, "search_page", timestamp=iso(NOW), device="tablet")
    assert await post_events(http, [conversion, view]) == (
        200,
        {"accepted": ["x-62", "y-62"], "duplicates": ["x-62"], "rejected": []},
    )
    assert await services.store.sessions_by_user_ids([60]) == [before]
    [[session]] = await services.store.sessions_by_user_ids([62])
    assert (session["session_id"], session["pages_visited"]) == ("rt-y-62", ["search_page"])
    [[visit]] = await services.store.visits_by_user_ids([62])
    assert (visit["event_id"], visit["session_id"], visit["device"]) == ("y-62", "rt-y-62", "tablet")
    [user] = await services.store.users_by_ids([62])
    assert (user["date"], user["device"]) == (NOW.date(), "tablet")


async def test_a_replay_at_another_time_does_not_reopen_its_session(http, services: Services):
    # A client replays its own stored event with a new timestamp, beside a new one: the replay changes
    # nothing, so the new event starts a session of its own instead of joining the replay's old one.
    early = NOW - timedelta(hours=3)
    assert (await post_events(http, [page_view("r-63", 63, "home_page", timestamp=iso(early))]))[0] == 200
    [before] = await services.store.sessions_by_user_ids([63])
    replay = page_view("r-63", 63, "home_page", timestamp=iso(NOW - MINUTE))
    assert await post_events(http, [replay, page_view("s-63", 63, "search_page", timestamp=iso(NOW))]) == (
        200,
        {"accepted": ["r-63", "s-63"], "duplicates": ["r-63"], "rejected": []},
    )
    [sessions] = await services.store.sessions_by_user_ids([63])
    by_id = {s["session_id"]: s["pages_visited"] for s in sessions}
    assert by_id == {"rt-r-63": ["home_page"], "rt-s-63": ["search_page"]}
    assert [s for s in sessions if s["session_id"] == "rt-r-63"] == before


async def test_a_replay_its_session_would_refuse_is_a_duplicate_not_a_rejection(http, services: Services):
    # A stored event replayed three hours later (an offline queue stamping it anew), or under another
    # user, names a session it no longer fits: the plan refuses it, but it is a stored event, so the
    # answer is a duplicate and nothing changes (it was a 400 with the event rejected).
    view = page_view("n-71", 71, "home_page", sessionId="s-71", timestamp=iso(NOW - timedelta(hours=3)))
    assert (await post_events(http, [view]))[0] == 200
    [before] = await services.store.sessions_by_user_ids([71])
    later = view | {"timestamp": iso(NOW)}
    other_user = view | {"userId": 72}
    for replay in (later, other_user):
        assert await post_events(http, [replay]) == (
            200,
            {"accepted": ["n-71"], "duplicates": ["n-71"], "rejected": []},
        )
    assert await services.store.sessions_by_user_ids([71, 72]) == [before, []]
    # A new event naming that session out of its reach is still refused, beside the replay.
    stray = page_view("n-72", 71, "search_page", sessionId="s-71", timestamp=iso(NOW))
    status, body = await post_events(http, [later, stray])
    assert (status, body["accepted"], body["duplicates"]) == (200, ["n-71"], ["n-71"])
    assert [(r["index"], r["eventId"]) for r in body["rejected"]] == [(1, "n-72")]


async def test_a_duplicate_event_id_is_stored_counted_and_published_once(http, services: Services):
    cache, realtime = services.cache, services.realtime
    feed = streams.user_activity(realtime, 4)
    first_message = asyncio.ensure_future(anext(feed))
    await wait_until(lambda: realtime.hub.status.up and realtime.hub.running)
    await wait_for_subscription(services.cache)
    event = page_view("dup-1", 4, "search_page", timestamp=iso(NOW))
    # The second copy is the same event, dropped: dup-1 was stored by this request, so it is no
    # duplicate (a client reads "changed nothing" from that list).
    assert await post_events(http, [event, event]) == (
        200,
        {"accepted": ["dup-1"], "duplicates": [], "rejected": []},
    )
    assert await post_events(http, [event]) == (
        200,
        {"accepted": ["dup-1"], "duplicates": ["dup-1"], "rejected": []},
    )
    mutation = 'mutation { trackEvents(events: [{type: "page_view", eventId: "dup-1", userId: 4, pageType: "search_page"}]) { duplicates } }'
    assert (await data_of(services, mutation))["trackEvents"]["duplicates"] == ["dup-1"]
    marker = page_view("after-dup", 4, "home_page")
    await post_events(http, [marker])

    published = [await first_message, await anext(feed)]
    assert [e["eventId"] for e in published] == ["dup-1", "after-dup"]  # the duplicate was never published
    [visits] = await services.store.visits_by_user_ids([4])
    assert [v["event_id"] for v in visits].count("dup-1") == 1
    session = next(
        s
        for s in (await services.store.sessions_by_user_ids([4]))[0]
        if s["session_id"] == visits[-1]["session_id"]
    )
    assert session["pages_visited"] == ["search_page", "home_page"]
    minute = keys.realtime_minute(NOW.replace(second=0, tzinfo=None))
    counted = await cache.pipeline(
        [
            ("HGET", minute, "page:search_page:mobile"),
            ("PFCOUNT", keys.realtime_uniques(NOW.date(), "search_page", None)),
        ]
    )
    assert [int(counted[0]), counted[1]] == [1, 1]
    await feed.aclose()


async def test_unknown_users_are_created_and_sessions_split_after_the_inactivity_gap(
    http, services: Services
):
    start = NOW - timedelta(hours=2)
    events = [
        page_view("g-1", 900, "home_page", timestamp=iso(start), device="tablet"),
        page_view("g-2", 900, "search_page", timestamp=iso(start + timedelta(minutes=29))),
        page_view("g-3", 900, "payment_page", timestamp=iso(start + timedelta(minutes=29 + 31))),
        page_view("g-4", 1, "home_page", device="mobile"),  # user 1 is desktop: the visit stays desktop
    ]
    status, _ = await post_events(http, events)
    assert status == 200
    [user] = await services.store.users_by_ids([900])
    assert (user["device"], user["sex"], user["date"]) == ("tablet", None, start.date())
    [sessions] = await services.store.sessions_by_user_ids([900])
    assert [(s["session_id"], s["pages_visited"]) for s in sessions] == [
        ("rt-g-1", ["home_page", "search_page"]),
        ("rt-g-3", ["payment_page"]),
    ]
    [visits] = await services.store.visits_by_user_ids([1])
    assert visits[-1]["event_id"] == "g-4" and visits[-1]["device"] == "desktop"
    result = await run(services, "{ user(id: 900) { device sessions { id pagesVisited } } }")
    assert result["data"]["user"]["sessions"][1]["id"] == "rt-g-3"


@pytest.mark.parametrize("forget", [False, True], ids=["remembered", "after a restart"])
async def test_a_late_event_starts_its_own_session_and_the_live_one_goes_on(
    http, services: Services, forget: bool
):
    # An offline batch's event an hour back does not fit the live session: it starts one of its own,
    # and the next live event continues the live session, whether the planner remembers the user or
    # reads the store (a restart): both take the session that starts last as the user's latest.
    def at(seconds_ago: int) -> str:
        return iso(NOW - timedelta(seconds=seconds_ago))

    for event in (
        page_view("late-1", 901, "home_page", timestamp=at(120)),
        page_view("late-2", 901, "search_page", timestamp=at(3600)),
        page_view("late-3", 901, "search_page", timestamp=at(3590)),
    ):
        assert (await post_events(http, [event]))[0] == 200
    if forget:
        assert services.realtime is not None
        services.realtime.memory = PlannerMemory(ttl_s=3600)
    assert (await post_events(http, [page_view("late-4", 901, "payment_page", timestamp=at(60))]))[0] == 200
    [sessions] = await services.store.sessions_by_user_ids([901])
    assert [(s["session_id"], s["pages_visited"]) for s in sessions] == [
        ("rt-late-2", ["search_page", "search_page"]),  # the two late events, 10 s apart: one session
        ("rt-late-1", ["home_page", "payment_page"]),
    ]


@pytest.mark.parametrize("in_one_batch", [True, False], ids=["one batch", "the middle one late"])
async def test_a_late_event_between_two_sessions_joins_the_later_and_merges_nothing(
    http, services: Services, in_one_batch: bool
):
    # 40 and 20 minutes apart (the gap is 30): sent together, in time order, they are one session; the
    # middle one sent after the others fits both sessions' gap and joins the later-starting one, whose
    # start it moves back. The earlier session is not re-keyed (README, sessionId).
    def at(minutes_ago: int) -> str:
        return iso(NOW - minutes_ago * MINUTE)

    first, middle, last = (
        page_view("br-1", 902, "home_page", timestamp=at(60)),
        page_view("br-2", 902, "search_page", timestamp=at(40)),
        page_view("br-3", 902, "payment_page", timestamp=at(20)),
    )
    bodies = [[first, middle, last]] if in_one_batch else [[first, last], [middle]]
    for body in bodies:
        assert (await post_events(http, body))[0] == 200
    [sessions] = await services.store.sessions_by_user_ids([902])
    expected = (
        [("rt-br-1", ["home_page", "search_page", "payment_page"])]
        if in_one_batch
        else [("rt-br-1", ["home_page"]), ("rt-br-3", ["search_page", "payment_page"])]
    )
    assert [(s["session_id"], s["pages_visited"]) for s in sessions] == expected


async def test_an_event_joins_the_session_it_names(http, services: Services):
    # The fixture's s1 is of 2015: too far back to join (tests/realtime/test_named_session_window.py).
    for event_id, page, minutes_ago in (("n-0", "home_page", 2), ("n-1", "search_page", 1)):
        event = page_view(event_id, 1, page, sessionId="s-own", timestamp=iso(NOW - minutes_ago * MINUTE))
        assert (await post_events(http, [event]))[1]["accepted"] == [event_id]
    [session] = await services.store.sessions_by_ids(["s-own"])
    assert (session["user_id"], session["pages_visited"]) == (1, ["home_page", "search_page"])


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"[", 400, "BAD_REQUEST"),  # not JSON
        (b'{"events": []}', 400, "BAD_REQUEST"),  # neither an array nor {"batch": [...]}
        (b"[]", 400, "BAD_REQUEST"),  # no events
        (b'"text"', 400, "BAD_REQUEST"),
    ],
)
async def test_bad_bodies_are_400(http, body: bytes, status: int, code: str):
    resp = await http.post("/events", data=body, headers={"Content-Type": "application/json"})
    answer = await resp.json()
    assert resp.status == status
    assert answer["code"] == code


async def test_a_body_with_a_byte_order_mark_is_read_as_graphql_reads_one(http, services: Services):
    body = b"\xef\xbb\xbf" + orjson.dumps([page_view("bom-1", 907, "home_page")])
    resp = await http.post("/events", data=body, headers={"Content-Type": "application/json"})
    assert (resp.status, (await resp.json())["accepted"]) == (200, ["bom-1"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\xff[]", "the body is not valid JSON: not valid UTF-8 (byte 0 is 0xff)"),
        (
            '[{"a": "\u00e9"}]'.encode("utf-16"),
            "the body is not valid JSON: not valid UTF-8 (byte 0 is 0xff)",
        ),
        (b'[{"a": "ok \xc3"}]', "the body is not valid JSON: not valid UTF-8 (byte 11 is 0xc3)"),
    ],
)
async def test_a_body_that_is_not_utf8_names_the_first_bad_byte(http, body: bytes, reason: str):
    resp = await http.post("/events", data=body, headers={"Content-Type": "application/json"})
    assert (resp.status, await resp.json()) == (400, {"error": reason, "code": "BAD_REQUEST"})


async def test_a_batch_object_with_another_key_names_it(http, services: Services):
    body = {"batch": [page_view("bk-1", 906, "home_page")], "x": 1, "source": "web"}
    status, answer = await post_events(http, body)
    assert (status, answer["code"]) == (400, "BAD_REQUEST")
    assert answer["error"] == (
        'expected a JSON array of events, or {"batch": [...]} alone: unknown key(s) "source", "x" beside it'
    )
    result = await run(services, "{ user(id: 906) { sessions { id } } }")
    assert result["data"]["user"] is None  # nothing of it stored
    many = {"batch": [], **{f"k{i:04}": i for i in range(1000)}}
    status, answer = await post_events(http, many)
    assert answer["error"].endswith(
        'unknown key(s) "k0000", "k0001", "k0002", "k0003", "k0004" and 995 more beside it'
    )


async def test_every_event_rejected_is_a_coded_refusal_that_keeps_the_verdicts(http):
    status, body = await post_events(http, [{"type": "page_view"}, {"type": "click", "eventId": "c"}])
    assert status == 400
    assert body == {
        "error": "every event was rejected; see rejected",
        "code": "BAD_USER_INPUT",
        "accepted": [],
        "duplicates": [],
        "rejected": [
            {"index": 0, "eventId": None, "reason": body["rejected"][0]["reason"]},
            {"index": 1, "eventId": "c", "reason": body["rejected"][1]["reason"]},
        ],
    }


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
async def test_another_method_than_post_is_a_coded_json_405_with_allow(http, method: str):
    resp = await http.request(method, "/events")
    assert resp.status == 405
    assert resp.headers["Allow"] == "POST"
    assert resp.content_type == "application/json"
    assert await resp.json() == {
        "error": f"{method} is not allowed on /events (allowed: POST)",
        "code": "METHOD_NOT_ALLOWED",
    }


async def test_too_many_events_or_bytes_are_413_and_nothing_is_stored(http, services: Services):
    limit = services.settings.events_max_batch
    status, body = await post_events(
        http, {"batch": [page_view(f"big-{i}", 1, "home_page") for i in range(limit + 1)]}
    )
    assert (status, body["code"]) == (413, "PAYLOAD_TOO_LARGE")
    assert "FUNNEL_EVENTS_MAX_BATCH" in body["error"]
    huge = b"[" + b" " * services.settings.events_max_bytes + b"]"
    resp = await http.post("/events", data=huge, headers={"Content-Type": "application/json"})
    assert resp.status == 413 and (await resp.json())["code"] == "PAYLOAD_TOO_LARGE"
    [visits] = await services.store.visits_by_user_ids([1])
    assert not any(v["event_id"].startswith("big-") for v in visits)
    too_many = [{"type": "page_view", "userId": 1, "pageType": "home_page"}] * (limit + 1)
    result = await run(
        services, "mutation($e: [EventInput!]!) { trackEvents(events: $e) { accepted } }", {"e": too_many}
    )
    assert result["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_new_user_takes_the_first_device_their_events_report(http, services: Services):
    # The README's example: the earliest event reports no device, a later one "mobile".
    start = NOW - timedelta(minutes=10)
    events = [
        page_view("dv-2", 901, "search_page", timestamp=iso(start + timedelta(minutes=2)), device="mobile"),
        page_view("dv-1", 901, "home_page", timestamp=iso(start)),
        page_view("dv-3", 901, "payment_page", timestamp=iso(start + timedelta(minutes=3)), device="tablet"),
    ]
    status, _ = await post_events(http, events)
    assert status == 200
    [user] = await services.store.users_by_ids([901])
    assert (user["device"], user["date"]) == ("mobile", start.date())
    [visits] = await services.store.visits_by_user_ids([901])
    assert {v["device"] for v in visits} == {"mobile"}  # every visit carries its user's device


async def test_an_event_naming_another_users_session_is_refused_and_stores_nothing(http, services: Services):
    [before] = await services.store.sessions_by_ids(["s1"])
    assert before["user_id"] == 1
    batch = [
        page_view("own-1", 2, "home_page", timestamp=iso(NOW)),
        page_view("steal-1", 2, "payment_page", sessionId="s1", timestamp=iso(NOW)),  # user 1's session
        page_view("steal-2", 902, "home_page", sessionId="s1", timestamp=iso(NOW)),  # unknown user
        page_view("mine-1", 903, "home_page", sessionId="new-shared", timestamp=iso(NOW)),
        page_view("mine-2", 904, "home_page", sessionId="new-shared",
                  timestamp=iso(NOW + timedelta(seconds=1))),  # begun by user 903 just before
    ]  # fmt: skip
    status, body = await post_events(http, batch)
    assert status == 200
    assert body["accepted"] == ["own-1", "mine-1"]
    assert body["rejected"] == [
        {"index": 1, "eventId": "steal-1", "reason": "sessionId s1 is another user's session"},
        {"index": 2, "eventId": "steal-2", "reason": "sessionId s1 is another user's session"},
        {"index": 4, "eventId": "mine-2", "reason": "sessionId new-shared is another user's session"},
    ]
    [after] = await services.store.sessions_by_ids(["s1"])
    assert after == before  # user 1's session is untouched
    assert await services.store.users_by_ids([902, 904]) == [None, None]  # not created from a refused event
    [shared] = await services.store.sessions_by_ids(["new-shared"])
    assert (shared["user_id"], shared["pages_visited"]) == (903, ["home_page"])
    stored = {v["event_id"] for vs in await services.store.visits_by_user_ids([2, 903]) for v in vs}
    assert stored == {"v05", "v06", "v07", "own-1", "mine-1"}  # user 2's fixture visits, and the accepted
    # The same through the mutation: the refusal is a per-event verdict there too.
    data = await data_of(
        services,
        "mutation($e: [EventInput!]!) { trackEvents(events: $e) { accepted rejected { index reason } } }",
        {"e": [page_view("steal-3", 2, "home_page", sessionId="s1")]},
    )
    assert data["trackEvents"] == {
        "accepted": [],
        "rejected": [{"index": 0, "reason": "sessionId s1 is another user's session"}],
    }


async def test_the_gateways_own_session_ids_cannot_be_taken_by_another_user(http, services: Services):
    reason = "sessionId rt-y1 names no session, and ids starting with rt- are the sessions the gateway starts"
    # In one batch: x1 (user 905, no session) starts rt-x1; user 906 may not name it, 905 may.
    batch = [
        page_view("x1", 905, "home_page", timestamp=iso(NOW)),
        page_view("x2", 906, "payment_page", sessionId="rt-x1", timestamp=iso(NOW + timedelta(seconds=1))),
        page_view("x3", 905, "search_page", sessionId="rt-x1", timestamp=iso(NOW + timedelta(seconds=2))),
        page_view("y0", 907, "home_page", sessionId="rt-y1", timestamp=iso(NOW)),  # not started by anyone
    ]
    status, body = await post_events(http, batch)
    assert status == 200
    assert body["accepted"] == ["x1", "x3"]
    assert body["rejected"] == [
        {"index": 1, "eventId": "x2", "reason": "sessionId rt-x1 is another user's session"},
        {"index": 3, "eventId": "y0", "reason": reason},
    ]
    [session] = await services.store.sessions_by_ids(["rt-x1"])
    assert (session["user_id"], session["pages_visited"]) == (905, ["home_page", "search_page"])
    # Later, y1 (user 908, no session) starts rt-y1 as its own: nobody held it.
    status, body = await post_events(http, [page_view("y1", 908, "home_page", timestamp=iso(NOW))])
    assert (status, body["accepted"]) == (200, ["y1"])
    [started] = await services.store.sessions_by_ids(["rt-y1"])
    assert (started["user_id"], started["pages_visited"]) == (908, ["home_page"])


async def test_a_refused_event_without_an_eventid_is_reported_with_none(http, services: Services):
    """A rejection names the id the client sent, or null -- never the one the gateway generated for an
    event that came without one (the client cannot match it to anything, and nothing was stored)."""

    def anonymous(user_id: int, **extra: object) -> dict:
        return {"type": "page_view", "userId": user_id, "pageType": "home_page", **extra}

    batch = [
        anonymous(2, sessionId="s1", timestamp=iso(NOW)),  # user 1's session: refused by enrichment
        anonymous(909, sessionId="rt-nobody", timestamp=iso(NOW)),  # an rt- id nobody started
        {"type": "page_view", "userId": 909},  # no pageType: refused by validation
        anonymous(2, eventId=None, sessionId="s1", timestamp=iso(NOW)),  # null counts as absent
        page_view("named-1", 2, "home_page", sessionId="s1", timestamp=iso(NOW)),  # named: shown as sent
    ]
    status, body = await post_events(http, batch)
    assert status == 400  # nothing accepted
    assert [(r["index"], r["eventId"]) for r in body["rejected"]] == [
        (0, None), (1, None), (2, None), (3, None), (4, "named-1")
    ]  # fmt: skip
    data = await data_of(
        services,
        "mutation($e: [EventInput!]!) { trackEvents(events: $e) { accepted rejected { index eventId } } }",
        {"e": [anonymous(2, sessionId="s1"), anonymous(909, sessionId="rt-nobody")]},
    )
    assert data["trackEvents"] == {
        "accepted": [],
        "rejected": [{"index": 0, "eventId": None}, {"index": 1, "eventId": None}],
    }


async def test_an_event_id_reused_by_an_unknown_user_creates_no_one(http, services: Services):
    """A later batch reusing an eventId under an unknown userId: a duplicate, and nothing else -- the
    user is not created (not listed, not counted), and their first real event still creates them."""
    count = "{ users(first: 1) { totalCount } }"
    first = page_view("reuse-1", 1, "home_page", timestamp=iso(NOW))
    assert (await post_events(http, [first]))[1]["accepted"] == ["reuse-1"]
    users_before = (await data_of(services, count))["users"]["totalCount"]
    stored_before = await services.store.count("users")

    reused = page_view("reuse-1", 950, "search_page", timestamp=iso(NOW), device="tablet")
    assert await post_events(http, [reused]) == (
        200,
        {"accepted": ["reuse-1"], "duplicates": ["reuse-1"], "rejected": []},
    )
    assert await services.store.users_by_ids([950]) == [None]
    assert await services.store.count("users") == stored_before
    assert (await data_of(services, count))["users"]["totalCount"] == users_before
    assert await services.store.sessions_by_user_ids([950]) == [[]]

    # Not remembered as known either: user 950's first new event creates them from that event.
    later = NOW + timedelta(seconds=5)
    own = page_view("own-950", 950, "search_page", timestamp=iso(later), device="mobile")
    assert (await post_events(http, [own]))[1]["accepted"] == ["own-950"]
    [user] = await services.store.users_by_ids([950])
    assert (user["device"], user["date"]) == ("mobile", later.date())
    assert await services.store.count("users") == stored_before + 1


async def test_total_interactions_counts_what_interactions_lists(http, services: Services):
    """A session with a click and a conversion: 2 interactions listed, totalInteractions 2."""
    click = {
        "type": "interaction", "eventId": "ti-click", "userId": 951, "sessionId": "ti-s",
        "pageType": "payment_page", "interactionType": "click", "timestamp": iso(NOW),
    }  # fmt: skip
    conversion = {
        "type": "conversion", "eventId": "ti-conv", "userId": 951, "sessionId": "ti-s",
        "pageType": "payment_confirmation_page", "value": "12", "timestamp": iso(NOW + timedelta(seconds=5)),
    }  # fmt: skip
    assert (await post_events(http, [click, conversion]))[1]["accepted"] == ["ti-click", "ti-conv"]
    data = await data_of(
        services,
        '{ session(id: "ti-s") { totalInteractions converted conversionValue interactions { interactionType } } }',
    )
    assert data["session"] == {
        "totalInteractions": 2,
        "converted": True,
        "conversionValue": 12.0,
        "interactions": [{"interactionType": "click"}, {"interactionType": "conversion"}],
    }


async def test_pages_visited_are_in_visit_time_order_across_batches(http, services: Services):
    """The probe: search (now-60 s) and home (now-120 s) in one batch, confirmation (now-90 s) in a later
    one -- one session (all within 30 minutes), visited home, confirmation, search."""
    first = [
        page_view("pt-search", 952, "search_page", timestamp=iso(NOW - timedelta(seconds=60))),
        page_view("pt-home", 952, "home_page", timestamp=iso(NOW - timedelta(seconds=120))),
    ]
    assert (await post_events(http, first))[1]["accepted"] == ["pt-search", "pt-home"]
    late = [
        page_view("pt-conf", 952, "payment_confirmation_page", timestamp=iso(NOW - timedelta(seconds=90)))
    ]
    assert (await post_events(http, late))[1]["accepted"] == ["pt-conf"]
    data = await data_of(services, "{ user(id: 952) { sessions { id pagesVisited } } }")
    assert data["user"]["sessions"] == [
        {"id": "rt-pt-home", "pagesVisited": ["home_page", "payment_confirmation_page", "search_page"]}
    ]


async def test_live_state_in_redis_is_the_users_last_event_and_the_sessions_last_sight(
    http, services: Services
):
    # Stamped from the clock now, not the module's NOW: user:active keeps only the last 5 minutes, and a
    # slow suite reaches this test more than 5 minutes after the module was imported.
    now = datetime.now(UTC).replace(microsecond=0)
    seen = now.replace(tzinfo=None) - timedelta(seconds=10)
    at = seen.isoformat()  # naive UTC, as stored
    status, _ = await post_events(http, [page_view("st-1", 4, "search_page", timestamp=iso(now - timedelta(seconds=10)), device="tablet")])  # fmt: skip
    assert status == 200
    [visits] = await services.store.visits_by_user_ids([4])
    session_id = next(v["session_id"] for v in visits if v["event_id"] == "st-1")
    active, session = await services.cache.pipeline(
        [("GET", keys.user_active(4)), ("GET", keys.session(session_id))]
    )
    assert orjson.loads(active) == {
        "eventId": "st-1",
        "type": "page_view",
        "pageType": "search_page",
        "at": at,
    }
    # The stored device is the user's (mobile); what the client reported travels beside it.
    assert orjson.loads(session) == {
        "user_id": 4, "device": "mobile", "reported_device": "tablet", "last_seen": at, "last_page": "search_page",
    }  # fmt: skip


async def test_an_event_older_than_the_max_age_is_rejected_and_the_rest_stored(http, services: Services):
    status, body = await post_events(
        http, [page_view("old-1", 4, "home_page", timestamp=0), page_view("old-2", 4, "home_page")]
    )
    assert (status, body["accepted"]) == (200, ["old-2"])
    [rejected] = body["rejected"]
    assert (rejected["index"], rejected["eventId"]) == (0, "old-1")
    assert "more than 30 days in the past (FUNNEL_EVENTS_MAX_AGE_DAYS)" in rejected["reason"]


async def test_a_timestamp_whose_utc_time_python_cannot_hold_is_rejected_and_the_rest_stored(
    http, services: Services
):
    # Valid ISO-8601 whose UTC time falls past year 9999 (or before year 1): it was a 500 that lost the
    # batch's valid events.
    late = page_view("ovf-2", 905, "home_page", timestamp="9999-12-31T23:59:59-05:00")
    early = page_view("ovf-3", 905, "home_page", timestamp="0001-01-01T00:00:00+05:00")
    status, body = await post_events(http, [page_view("ovf-1", 905, "home_page"), late, early])
    assert (status, body["accepted"]) == (200, ["ovf-1"])
    assert [(r["index"], r["eventId"]) for r in body["rejected"]] == [(1, "ovf-2"), (2, "ovf-3")]
    assert "in the future" in body["rejected"][0]["reason"]
    assert "before 1970-01-01" in body["rejected"][1]["reason"]
    result = await run(services, "{ user(id: 905) { sessions { visits { eventId } } } }")
    assert result["data"]["user"]["sessions"] == [{"visits": [{"eventId": "ovf-1"}]}]


async def test_a_sessions_conversion_value_reads_in_cents(http, services: Services):
    def buy(event_id: str, value: str) -> dict:
        return {"type": "conversion", "eventId": event_id, "userId": 902, "pageType": "payment_confirmation_page", "value": value}  # fmt: skip

    assert (await post_events(http, [buy("cv-1", "0.1"), buy("cv-2", "1.1")]))[0] == 200
    result = await run(services, "{ user(id: 902) { sessions { conversionValue } } }")
    assert result["data"]["user"]["sessions"] == [{"conversionValue": 1.2}]  # not 1.2000000000000002


async def test_live_revenue_per_minute_is_kept_in_exact_cents(http, services: Services):
    def buy(event_id: str, user_id: int, value: object, at: datetime) -> dict:
        return {"type": "conversion", "eventId": event_id, "userId": user_id, "pageType": "payment_confirmation_page", "value": value, "timestamp": iso(at)}  # fmt: skip

    first, second = NOW - timedelta(minutes=5), NOW - timedelta(minutes=6)
    # Two batches into one minute (two HINCRBY on the same field), one batch into the other; numbers
    # and decimal strings alike. The float field held 0.30000000000000002 and 142.48000000000001999
    # for these; in cents they are 10 + 20 = 30 and 1730 + 5488 + 7030 = 14248.
    assert (await post_events(http, [buy("rv-1", 903, 0.1, first)]))[0] == 200
    assert (await post_events(http, [buy("rv-2", 904, "0.2", first)]))[0] == 200
    batch = [
        buy("rv-3", 903, "17.30", second),
        buy("rv-4", 904, 54.88, second),
        buy("rv-5", 905, 70.3, second),
    ]
    assert (await post_events(http, batch))[0] == 200
    replies = await services.cache.pipeline(
        [("HGETALL", keys.realtime_minute(m.replace(second=0, tzinfo=None))) for m in (first, second)]
    )
    fields = [{_text(k): _text(v) for k, v in reply.items()} for reply in replies]
    assert [(f["revenue_cents"], f["conversions"]) for f in fields] == [("30", "2"), ("14248", "3")]
    assert not any("revenue" in f for f in fields)  # the float field is no longer written


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Sequences a review found where a running gateway and a restarted one put events in different sessions
# (minutes before now, sessionId or None, page-view seconds), one POST per group. Some name a session
# more than the gap outside it: both must refuse the same events.
RESTART_SEQUENCES = {
    "start moved back past another": [
        [(344, None, 0)],
        [(310, None, 0)],
        [(331, None, 0)],
        [(312, None, 0)],
        [(291, None, 0), (310, None, 0)],
    ],
    "named session ends later": [[(0, "X", 0)], [(120, None, 0)], [(240, "X", 0)], [(260, None, 0)]],
    "long view ends later": [
        [(184, None, 0), (25, None, 600)],
        [(253, None, 0), (355, None, 3000), (108, None, 20000)],
        [(595, None, 0), (460, None, 0)],
    ],
    "named and late": [
        [(468, "X", 0), (275, "X", 3000)],
        [(429, "Y", 3000), (404, "X", 0), (500, None, 20000)],
        [(86, "Y", 20000), (72, None, 600)],
        [(426, None, 0)],
    ],
    # The two above with every named event within the gap of its session (none refused).
    "named session ends later, within the gap": [
        [(0, "X", 0)],
        [(120, None, 0)],
        [(20, "X", 13200)],
        [(260, None, 0)],
    ],
    "named and late, within the gap": [
        [(350, "X", 0), (275, "X", 3000)],
        [(429, "Y", 3000), (375, "X", 0), (500, None, 20000)],
        [(400, "Y", 20000), (72, None, 600)],
        [(426, None, 0)],
    ],
}


@pytest.mark.parametrize("name", sorted(RESTART_SEQUENCES))
async def test_a_restart_puts_events_in_the_same_sessions(http, services: Services, name: str):
    assert services.realtime is not None
    groups = RESTART_SEQUENCES[name]
    base = NOW - timedelta(minutes=700)

    async def play(user: int, forget: bool) -> list[int]:
        refused: set[str] = set()
        for g in range(len(groups)):
            if forget:
                services.realtime.memory = PlannerMemory(ttl_s=3600)
            events = [
                page_view(
                    f"rs-{user}-{g}-{i}",
                    user,
                    "home_page",
                    timestamp=iso(base + timedelta(minutes=m)),
                    duration=d,
                    **({"sessionId": f"rs-{user}-{sid}"} if sid else {}),
                )
                for i, (m, sid, d) in enumerate(groups[g])
            ]
            status, body = await post_events(http, events)
            assert status == (200 if body["accepted"] else 400)
            refused.update(r["eventId"] for r in body["rejected"])
        [visits] = await services.store.visits_by_user_ids([user])
        by_id = {v["event_id"]: v["session_id"] for v in visits}
        assert not refused & set(by_id)
        ids = [f"rs-{user}-{g}-{i}" for g, group in enumerate(groups) for i in range(len(group))]
        order = [by_id.get(event_id) for event_id in ids]  # None: refused
        first_seen = list(dict.fromkeys(s for s in order if s is not None))
        # Sessions numbered by first appearance, -1 for a refused event.
        return [-1 if s is None else first_seen.index(s) for s in order]

    warm = await play(910, forget=False)
    assert warm == await play(911, forget=True)
    assert (-1 in warm) == (name in {"named session ends later", "named and late"})  # refusals as designed


README_EVENTS = re.search(
    r"curl -s localhost:8000/events [^\n]*-d '(\[.*?\])'\n# (\{.*?\})\n",
    (Path(__file__).resolve().parents[2] / "README.md").read_text(),
    re.S,
)


async def test_the_readmes_event_example_gets_the_answer_the_readme_shows(http, services: Services):
    block = README_EVENTS
    assert block is not None, "the README's POST /events example moved"
    status, answer = await post_events(http, orjson.loads(block[1]))
    assert (status, answer) == (200, orjson.loads(block[2]))


def break_effects_once(realtime: Realtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next group's Redis effects raise (a bug in building the commands); later groups' run."""
    effects = realtime._effects
    calls = 0

    async def breaks_once(planned, new):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug in the effects")
        await effects(planned, new)

    monkeypatch.setattr(realtime, "_effects", breaks_once)


async def test_a_group_whose_redis_effects_break_is_answered_and_the_next_groups_go_on(
    http, services: Services, monkeypatch: pytest.MonkeyPatch
):
    # A bug after the commit (here: in building the Redis commands) must not leave the request hanging,
    # nor stop the effects of every later group, which run one after the other.
    realtime = services.realtime
    assert realtime is not None
    break_effects_once(realtime, monkeypatch)
    status, body = await asyncio.wait_for(post_events(http, [page_view("ab-1", 4, "home_page")]), 30)
    assert (status, body["code"]) == (500, "INTERNAL_SERVER_ERROR") and "Traceback" not in str(body)
    [visits] = await services.store.visits_by_user_ids([4])
    assert "ab-1" in {v["event_id"] for v in visits}  # stored before it broke: a retry is a duplicate
    now = datetime.now(UTC).replace(microsecond=0)
    status, _ = await asyncio.wait_for(post_events(http, [page_view("ab-2", 4, "search_page", timestamp=iso(now))]), 30)  # fmt: skip
    assert status == 200
    [active] = await services.cache.pipeline([("GET", keys.user_active(4))])
    assert orjson.loads(active)["eventId"] == "ab-2"


async def test_the_retry_of_a_group_whose_effects_broke_is_not_answered_from_a_stale_cache(
    http, services: Services, monkeypatch: pytest.MonkeyPatch
):
    # The 500 asks for a retry with the same ids; the retry is all duplicates, so it has no effects
    # of its own. It must still not be answered before the cache stops serving what the first attempt
    # stored but never invalidated (here: user 2's cached sessions).
    realtime = services.realtime
    assert realtime is not None
    query = "{ user(id: 2) { sessions { id } } }"
    before = [s["id"] for s in (await data_of(services, query))["user"]["sessions"]]  # cached now
    break_effects_once(realtime, monkeypatch)
    event = page_view("stale-1", 2, "home_page", timestamp=iso(datetime.now(UTC).replace(microsecond=0)))
    assert (await post_events(http, [event]))[0] == 500
    status, body = await post_events(http, [event])
    assert (status, body["duplicates"]) == (200, ["stale-1"])
    after = [s["id"] for s in (await data_of(services, query))["user"]["sessions"]]
    assert after == [*before, "rt-stale-1"]


async def test_unstamped_events_of_one_batch_are_stored_in_the_order_sent(http, services: Services):
    # No timestamps: the ids would order them payment, home, search if they tied at the arrival time.
    events = [page_view(f"{p}-ord", 960, p) for p in ("z_home", "x_search", "a_payment")]
    status, _ = await post_events(http, events)
    assert status == 200
    data = await data_of(services, "{ user(id: 960) { sessions { pagesVisited } } }")
    assert data["user"]["sessions"] == [{"pagesVisited": ["z_home", "x_search", "a_payment"]}]


async def test_a_beacon_s_text_plain_body_is_read_as_json(http, services: Services):
    # navigator.sendBeacon(url, JSON.stringify(events)) sends text/plain;charset=UTF-8.
    body = orjson.dumps([page_view("beacon-1", 961, "home_page")])
    resp = await http.post("/events", data=body, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert resp.status == 200 and (await resp.json())["accepted"] == ["beacon-1"]
    [visits] = await services.store.visits_by_user_ids([961])
    assert [v["event_id"] for v in visits] == ["beacon-1"]
