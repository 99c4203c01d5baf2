"""An event naming a session joins it only within the session's span widened by the gap.

The window is ``start - gap <= timestamp <= end + gap`` (bounds included, the rule a sessionless event
joins by), the span as stored -- or remembered, or as the group's earlier events extended it. Every
test runs with the planner remembering the user and with its memory cleared before each judged batch
(a restarted process): both must give the same verdicts. Times are hand-computed from ``NOW``; the gap
is the default 1800 s.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.realtime.enrichment import PlannerMemory
from gateway.services import Services
from tests.api.conftest import data_of
from tests.realtime.conftest import page_view, post_events
from tests.redis_fixtures import REDIS_MODES

pytestmark = pytest.mark.parametrize("redis_mode", REDIS_MODES, indirect=True)
FORGET = pytest.mark.parametrize("forget", [False, True], ids=["remembered", "after a restart"])

NOW = datetime.now(UTC).replace(microsecond=0)
MIN = timedelta(minutes=1)
SEC = timedelta(seconds=1)
GAP = timedelta(seconds=1800)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def naive(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None)  # the stores' times: naive UTC


def outside(session_id: str, start: str, end: str, at: str) -> str:
    return (
        f"sessionId {session_id} spans {start} .. {end}; this event ({at}) is more than the session gap "
        "(FUNNEL_SESSION_GAP_S = 1800 s) outside it: omit sessionId to let the gateway sessionise it, "
        "or name another session"
    )


def view(event_id: str, user_id: int, at: datetime, session_id: str | None, **extra: Any) -> dict:
    named = {"sessionId": session_id} if session_id else {}
    return page_view(event_id, user_id, "home_page", timestamp=iso(at), **named, **extra)


async def judged(http, services: Services, forget: bool, events: list[dict]) -> dict[str, Any]:
    """POST one batch; with ``forget`` the planner first loses its memory, as a restart would."""
    if forget:
        assert services.realtime is not None
        services.realtime.memory = PlannerMemory(ttl_s=3600)
    _, body = await post_events(http, events)
    return body


async def span(services: Services, session_id: str) -> tuple[datetime, datetime, list[str]]:
    [session] = await services.store.sessions_by_ids([session_id])
    return session["start_time"], session["end_time"], session["pages_visited"]


@pytest.fixture(autouse=True)
def default_gap(services: Services) -> None:
    assert services.realtime is not None and services.realtime.gap == GAP


DASHBOARD = '{ dashboard(range: {start: "2015-01-01", end: "2015-01-31"}) { sessions avgSessionDuration } }'


@FORGET
async def test_an_event_far_outside_its_named_session_is_refused_and_the_rest_stored(
    http, services: Services, forget: bool
):
    # s1 is user 1's fixture session of 2015-01-01 10:00:00 .. 10:06:00; today is years outside it.
    [before] = await services.store.sessions_by_ids(["s1"])
    dashboard = await data_of(services, DASHBOARD)
    batch = [
        view("far-1", 1, NOW, "s1"),
        view("far-ok-1", 1, NOW, None),
        view("far-ok-2", 2, NOW, None),
    ]
    body = await judged(http, services, forget, batch)
    assert body == {
        "accepted": ["far-ok-1", "far-ok-2"],
        "duplicates": [],
        "rejected": [
            {
                "index": 0,
                "eventId": "far-1",
                "reason": outside("s1", "2015-01-01T10:00:00Z", "2015-01-01T10:06:00Z", iso(NOW)),
            }
        ],
    }
    [after] = await services.store.sessions_by_ids(["s1"])
    assert after == before  # start, end, pages: untouched
    assert await data_of(services, DASHBOARD) == dashboard  # s1 still lasts 360 s
    stored = {
        v["event_id"]: v["session_id"] for vs in await services.store.visits_by_user_ids([1, 2]) for v in vs
    }
    assert "far-1" not in stored
    assert (stored["far-ok-1"], stored["far-ok-2"]) == ("rt-far-ok-1", "rt-far-ok-2")


@FORGET
async def test_a_named_session_grows_by_events_within_the_gap_of_either_end(
    http, services: Services, forget: bool
):
    t0 = NOW - timedelta(hours=3)
    await post_events(http, [view("gw-0", 970, t0, "grow"), view("gw-1", 970, t0 + 5 * MIN, "grow")])
    assert await span(services, "grow") == (naive(t0), naive(t0 + 5 * MIN), ["home_page", "home_page"])
    # (b) 20 minutes after the end: joins, and the end moves.
    assert (await judged(http, services, forget, [view("gw-2", 970, t0 + 25 * MIN, "grow")]))["accepted"] == [
        "gw-2"
    ]
    assert (await span(services, "grow"))[:2] == (naive(t0), naive(t0 + 25 * MIN))
    # (c) 20 minutes before the start (a late event): joins, and the start moves.
    assert (await judged(http, services, forget, [view("gw-3", 970, t0 - 20 * MIN, "grow")]))["accepted"] == [
        "gw-3"
    ]
    start, end, pages = await span(services, "grow")
    assert (start, end, len(pages)) == (naive(t0 - 20 * MIN), naive(t0 + 25 * MIN), 4)


@FORGET
async def test_the_window_is_the_gap_on_either_side_bounds_included(http, services: Services, forget: bool):
    t0 = NOW - timedelta(hours=3)
    await post_events(http, [view("bd-0", 971, t0, "bound"), view("bd-1", 971, t0 + 5 * MIN, "bound")])
    end = t0 + 5 * MIN
    # (d) One second beyond the gap after the end: refused, nothing changes.
    body = await judged(http, services, forget, [view("bd-2", 971, end + GAP + SEC, "bound")])
    assert body["rejected"] == [
        {"index": 0, "eventId": "bd-2", "reason": outside("bound", iso(t0), iso(end), iso(end + GAP + SEC))}
    ]
    assert await span(services, "bound") == (naive(t0), naive(end), ["home_page", "home_page"])
    # Exactly the gap after the end: accepted (inclusive, as for a sessionless event).
    body = await judged(http, services, forget, [view("bd-3", 971, end + GAP, "bound")])
    assert body["accepted"] == ["bd-3"]
    end = end + GAP
    # The same before the start: a second too early is refused, exactly the gap before is accepted.
    body = await judged(http, services, forget, [view("bd-4", 971, t0 - GAP - SEC, "bound")])
    assert body["rejected"] == [
        {"index": 0, "eventId": "bd-4", "reason": outside("bound", iso(t0), iso(end), iso(t0 - GAP - SEC))}
    ]
    body = await judged(http, services, forget, [view("bd-5", 971, t0 - GAP, "bound")])
    assert body["accepted"] == ["bd-5"]
    start, stored_end, pages = await span(services, "bound")
    assert (start, stored_end, len(pages)) == (naive(t0 - GAP), naive(end), 4)


@FORGET
async def test_a_session_a_batch_begins_is_judged_as_its_earlier_events_extend_it(
    http, services: Services, forget: bool
):
    t1 = NOW - timedelta(hours=5)
    # (e) Two events naming a new session, 10 minutes apart (batch order differs from time order).
    body = await judged(
        http, services, forget, [view("nw-1", 972, t1 + 10 * MIN, "fresh"), view("nw-0", 972, t1, "fresh")]
    )
    assert body["accepted"] == ["nw-1", "nw-0"] and body["rejected"] == []
    assert await span(services, "fresh") == (naive(t1), naive(t1 + 10 * MIN), ["home_page", "home_page"])
    # In one batch: steps of 25 minutes each join (each within the gap of the span the earlier extended);
    # a step of 31 minutes after them does not.
    steps = [view(f"st-{i}", 973, t1 + 25 * i * MIN, "steps") for i in range(3)]
    body = await judged(http, services, forget, [*steps, view("st-x", 973, t1 + 81 * MIN, "steps")])
    assert body["accepted"] == ["st-0", "st-1", "st-2"]
    assert body["rejected"] == [
        {
            "index": 3,
            "eventId": "st-x",
            "reason": outside("steps", iso(t1), iso(t1 + 50 * MIN), iso(t1 + 81 * MIN)),
        }
    ]
    assert (await span(services, "steps"))[:2] == (naive(t1), naive(t1 + 50 * MIN))
    # (f) A later batch naming the first session two hours after its end: refused.
    late = t1 + 10 * MIN + timedelta(hours=2)
    body = await judged(http, services, forget, [view("nw-2", 972, late, "fresh")])
    assert body["rejected"] == [
        {"index": 0, "eventId": "nw-2", "reason": outside("fresh", iso(t1), iso(t1 + 10 * MIN), iso(late))}
    ]
    assert await span(services, "fresh") == (naive(t1), naive(t1 + 10 * MIN), ["home_page", "home_page"])


async def test_a_refused_event_gives_a_new_user_nothing(http, services: Services):
    # User 974 is new: their session begins at t, an event naming it an hour later (reporting a tablet)
    # is refused, a sessionless one two hours later (reporting a mobile) starts another session. The
    # user is created with the device of their kept events only.
    t = NOW - timedelta(hours=3)
    batch = [
        view("nu-0", 974, t, "nu"),
        view("nu-1", 974, t + timedelta(hours=1), "nu", device="tablet"),
        view("nu-2", 974, t + timedelta(hours=2), None, device="mobile"),
    ]
    body = await judged(http, services, False, batch)
    assert (body["accepted"], [r["index"] for r in body["rejected"]]) == (["nu-0", "nu-2"], [1])
    [user] = await services.store.users_by_ids([974])
    assert (user["device"], user["date"]) == ("mobile", naive(t).date())
    [sessions] = await services.store.sessions_by_user_ids([974])
    assert [(s["session_id"], s["start_time"], s["end_time"]) for s in sessions] == [
        ("nu", naive(t), naive(t)),
        ("rt-nu-2", naive(t + timedelta(hours=2)), naive(t + timedelta(hours=2))),
    ]


async def test_a_remembered_span_another_process_extended_is_judged_on_the_stored_one(
    http, services: Services
):
    # Another gateway (here: another planner memory) extends the session; this process still
    # remembers the old end and must not refuse an event within the gap of the stored end.
    realtime = services.realtime
    assert realtime is not None
    t2 = NOW - timedelta(hours=2)
    await post_events(http, [view("rp-0", 975, t2, "rep")])
    ours = realtime.memory
    realtime.memory = PlannerMemory(ttl_s=3600)
    assert (await post_events(http, [view("rp-1", 975, t2 + 25 * MIN, "rep")]))[1]["accepted"] == ["rp-1"]
    realtime.memory = ours  # remembers rep as t2 .. t2
    body = (await post_events(http, [view("rp-2", 975, t2 + 50 * MIN, "rep")]))[1]
    assert (body["accepted"], body["rejected"]) == (["rp-2"], [])
    assert (await span(services, "rep"))[:2] == (naive(t2), naive(t2 + 50 * MIN))


async def test_trackevents_refuses_the_same_event_with_the_same_reason(http, services: Services):
    mutation = """mutation($e: [EventInput!]!) {
        trackEvents(events: $e) { accepted rejected { index eventId reason } } }"""
    events = [
        page_view("tf-ok", 1, "home_page", timestamp=NOW.timestamp()),
        page_view("tf-far", 1, "home_page", sessionId="s1", timestamp=NOW.timestamp()),
    ]
    [before] = await services.store.sessions_by_ids(["s1"])
    data = await data_of(services, mutation, {"e": events})
    reason = outside("s1", "2015-01-01T10:00:00Z", "2015-01-01T10:06:00Z", iso(NOW))
    assert data["trackEvents"] == {
        "accepted": ["tf-ok"],
        "rejected": [{"index": 1, "eventId": "tf-far", "reason": reason}],
    }
    assert await services.store.sessions_by_ids(["s1"]) == [before]


@FORGET
async def test_an_rt_id_named_from_before_the_event_that_starts_it_is_refused(
    http, services: Services, forget
):
    # rt-hole-a is the session the sessionless hole-a starts, an hour ago. An event naming it from
    # five hours ago would begin it first (the window checks nothing for a session not begun yet),
    # and hole-a, finding no session in reach, would begin another under the same id: one session
    # over four hours with nothing between.
    a = view("hole-a", 980, NOW - 60 * MIN, None)
    early = view("hole-b", 980, NOW - 300 * MIN, "rt-hole-a")
    later = view("hole-c", 980, NOW - 50 * MIN, "rt-hole-a")
    body = await judged(http, services, forget, [a, early, later])
    assert body["accepted"] == ["hole-a", "hole-c"]
    starts = iso(naive(NOW - 60 * MIN)).rstrip("Z") + "Z"
    assert body["rejected"] == [
        {
            "index": 1,
            "eventId": "hole-b",
            "reason": f"sessionId rt-hole-a is the session event hole-a starts, at {starts}; "
            f"this event ({iso(naive(NOW - 300 * MIN))}Z) comes before it",
        }
    ]
    [sessions] = await services.store.sessions_by_user_ids([980])
    assert [(s["session_id"], s["start_time"], s["end_time"]) for s in sessions] == [
        ("rt-hole-a", naive(NOW - 60 * MIN), naive(NOW - 50 * MIN))
    ]


async def test_a_repeat_of_a_refused_event_is_rejected_at_its_own_index(http, services: Services):
    # s1 is the fixture's 2015 session of user 1: today is far outside it.
    ok = view("rep-ok", 1, NOW, None)
    far = view("rep-far", 1, NOW, "s1")
    _, body = await post_events(http, [ok, far, far])
    assert body["accepted"] == ["rep-ok"] and body["duplicates"] == []
    assert [r["index"] for r in body["rejected"]] == [1, 2]
    assert body["rejected"][0]["reason"] == body["rejected"][1]["reason"]
    assert body["rejected"][1]["eventId"] == "rep-far"
