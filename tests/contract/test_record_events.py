"""record_events: which events are new, idempotent replays, users created once, sessions folded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.errors import StoredEvents
from gateway.models import EventBatch
from gateway.stores.contracts import DocumentStore
from gateway.stores.event_fold import CONVERSION
from tests.contract.fixture_data import SESSION_BY_ID, USER_BY_ID, at, fresh

pytestmark = pytest.mark.asyncio(loop_scope="module")


def visit(
    event_id: str, user_id: int, session_id: str, page: str, stamp: str, duration: float = 10.0
) -> dict:
    return {
        "event_id": event_id, "user_id": user_id, "session_id": session_id, "page_type": page,
        "timestamp": at(stamp), "duration": duration, "device": "mobile",
    }  # fmt: skip


def interaction(event_id: str, session_id: str, kind: str, stamp: str, value: str | None = None) -> dict:
    return {
        "event_id": event_id, "user_id": 500, "session_id": session_id, "page_type": "payment",
        "interaction_type": kind, "element": "pay_button", "timestamp": at(stamp),
        "coordinates": {"x": 1, "y": 2}, "value": value, "free_text": kind == "form",
    }  # fmt: skip


NEW_USER = {
    "user_id": 500,
    "device": "mobile",
    "sex": None,
    "date": at("2026-03-01 00:00:00").date(),
    "attributes": {},
}
SEED = {"session_id": "rt-1", "user_id": 500, "device": "mobile"}


def live_batch() -> EventBatch:
    """User 500 (new): two visits out of order, a click, a form, a conversion, one session."""
    return EventBatch(
        visits=[
            visit("v2", 500, "rt-1", "search", "2026-03-01 10:01:00", 30.0),
            visit("v1", 500, "rt-1", "home", "2026-03-01 10:00:00", 20.0),
        ],
        interactions=[
            interaction("i1", "rt-1", "click", "2026-03-01 10:00:05"),
            interaction("i2", "rt-1", "form", "2026-03-01 10:01:10", "great shop"),
            interaction("c1", "rt-1", CONVERSION, "2026-03-01 10:02:00", "85.5"),
        ],
        sessions=[dict(SEED)],
        users=[dict(NEW_USER)],
    )


async def test_new_events_are_stored_and_returned_in_batch_order(store: DocumentStore) -> None:
    assert await store.record_events(live_batch()) == ["v2", "v1", "i1", "i2", "c1"]
    [visits] = await store.visits_by_user_ids([500])
    assert [v["event_id"] for v in visits] == ["v1", "v2"]
    [interactions] = await store.interactions_by_session_ids(["rt-1"])
    assert [(i["event_id"], i["interaction_type"], i["value"]) for i in interactions] == [
        ("i1", "click", None),
        ("i2", "form", "great shop"),
        ("c1", CONVERSION, "85.5"),
    ]
    assert await store.users_by_ids([500]) == [NEW_USER]


async def test_a_new_session_is_the_fold_of_its_events(store: DocumentStore) -> None:
    await store.record_events(live_batch())
    [session] = await store.sessions_by_ids(["rt-1"])
    assert session == {
        "session_id": "rt-1",
        "user_id": 500,
        "start_time": at("2026-03-01 10:00:00"),
        "end_time": at("2026-03-01 10:02:00"),  # the conversion, after the search visit's end (10:01:30)
        "device": "mobile",
        "pages_visited": ["home", "search"],  # by timestamp, not by batch order
        "total_interactions": 3,  # click, form, conversion: what Session.interactions lists
        "converted": True,
        "conversion_value": 85.5,
    }


async def test_a_session_ends_to_the_millisecond(store: DocumentStore) -> None:
    # A view of 1.2345 s at 10:00:00 ends at 10:00:01.234 (truncated, as MongoDB stores a date): the
    # session's end is the same on every adapter, and never finer than the timestamps it comes from.
    batch = EventBatch(
        visits=[visit("v1", 500, "rt-1", "home", "2026-03-01 10:00:00", 1.2345)],
        sessions=[dict(SEED)],
        users=[dict(NEW_USER)],
    )
    await store.record_events(batch)
    [session] = await store.sessions_by_ids(["rt-1"])
    assert session["end_time"] == at("2026-03-01 10:00:00") + timedelta(milliseconds=1_234)


async def test_replaying_a_batch_changes_nothing(store: DocumentStore) -> None:
    await store.record_events(live_batch())
    before = (await store.sessions_by_ids(["rt-1"]), await store.count("page_visits"))
    assert await store.record_events(live_batch()) == []
    assert (await store.sessions_by_ids(["rt-1"]), await store.count("page_visits")) == before
    assert await store.count("user_interactions") == 3 and await store.count("users") == 1


async def test_only_the_new_events_of_a_mixed_batch_extend_the_session(store: DocumentStore) -> None:
    await store.record_events(live_batch())
    again = live_batch()
    later = visit("v3", 500, "rt-1", "payment", "2026-03-01 10:05:00", 60.0)
    mixed = EventBatch(
        visits=[*again.visits, later], interactions=again.interactions, sessions=again.sessions
    )
    assert await store.record_events(mixed) == ["v3"]
    [session] = await store.sessions_by_ids(["rt-1"])
    assert session["pages_visited"] == ["home", "search", "payment"]
    assert session["end_time"] == at("2026-03-01 10:06:00")
    assert (session["total_interactions"], session["conversion_value"]) == (3, 85.5)


async def test_one_stored_interaction_among_new_events_is_the_only_one_skipped(store: DocumentStore) -> None:
    # Every id new but one interaction's: nothing else of the group may be lost or stored twice.
    await store.record_events(EventBatch(interactions=[interaction("i1", "rt-1", "click", "2026-03-01 10:00:05")],
                                         sessions=[dict(SEED)], users=[dict(NEW_USER)]))  # fmt: skip
    again = live_batch()
    assert await store.record_events(again) == ["v2", "v1", "i2", "c1"]
    assert (await store.count("page_visits"), await store.count("user_interactions")) == (2, 3)
    [session] = await store.sessions_by_ids(["rt-1"])
    assert (session["total_interactions"], session["pages_visited"]) == (3, ["home", "search"])


async def test_a_repeated_event_id_in_one_batch_is_stored_once(store: DocumentStore) -> None:
    first = visit("dup", 500, "rt-1", "home", "2026-03-01 10:00:00")
    second = visit("dup", 500, "rt-1", "search", "2026-03-01 10:00:30")
    batch = EventBatch(visits=[first, second], sessions=[dict(SEED)], users=[dict(NEW_USER)])
    assert await store.record_events(batch) == ["dup"]
    [visits] = await store.visits_by_user_ids([500])
    assert [(v["event_id"], v["page_type"]) for v in visits] == [("dup", "home")]
    [session] = await store.sessions_by_ids(["rt-1"])
    assert session["pages_visited"] == ["home"]


async def test_stored_sessions_and_users_are_extended_not_replaced(loaded_store: DocumentStore) -> None:
    """An ingested session (s10a, user 10) gets a late click and an early visit; user 10 stays as is."""
    stored = SESSION_BY_ID["s10a"]
    early = visit("e1", 10, "s10a", "home", "2015-01-05 09:59:00", 5.0)
    click = {**interaction("e2", "s10a", "click", "2015-01-05 10:10:00"), "user_id": 10}
    changed_user = {**USER_BY_ID[10], "device": "tablet"}
    batch = EventBatch(
        visits=[early],
        interactions=[click],
        sessions=[{"session_id": "s10a", "user_id": 10, "device": "desktop"}],
        users=fresh([changed_user]),
    )
    assert await loaded_store.record_events(batch) == ["e1", "e2"]
    [session] = await loaded_store.sessions_by_ids(["s10a"])
    assert session == {
        **stored,
        "start_time": at("2015-01-05 09:59:00"),
        "end_time": at("2015-01-05 10:10:00"),
        "pages_visited": ["home", *stored["pages_visited"]],  # 09:59, before every stored visit
        "total_interactions": stored["total_interactions"] + 1,
    }
    assert await loaded_store.users_by_ids([10]) == [USER_BY_ID[10]]


async def test_an_empty_batch_touches_nothing(store: DocumentStore) -> None:
    assert await store.record_events(EventBatch()) == []
    assert await store.count("user_sessions") == 0


async def test_sessions_of_only_duplicate_events_are_not_created(store: DocumentStore) -> None:
    await store.record_events(live_batch())
    stray = EventBatch(
        visits=[visit("v1", 500, "rt-2", "home", "2026-03-01 10:00:00")],
        sessions=[{"session_id": "rt-2", "user_id": 500, "device": "mobile"}],
    )
    assert await store.record_events(stray) == []
    assert await store.sessions_by_ids(["rt-2"]) == [None]
    [visits] = await store.visits_by_user_ids([500])
    assert {v["session_id"] for v in visits} == {"rt-1"}
    assert visits[0]["timestamp"] + timedelta(0) == at("2026-03-01 10:00:00")


async def test_a_duplicate_creates_no_user(store: DocumentStore) -> None:
    """An eventId reused under another, unknown user: a duplicate, and that user is not created. A user
    with one duplicate and one new event is created (the new event is theirs)."""
    await store.record_events(live_batch())  # creates user 500
    other = {**NEW_USER, "user_id": 501}
    third = {**NEW_USER, "user_id": 502}
    batch = EventBatch(
        visits=[
            visit("v1", 501, "rt-501", "home", "2026-03-01 11:00:00"),  # v1 is user 500's
            visit("v2", 502, "rt-502", "home", "2026-03-01 11:00:00"),  # v2 is user 500's
            visit("n1", 502, "rt-502", "search", "2026-03-01 11:01:00"),  # new
        ],
        interactions=[
            {**interaction("c1", "rt-501", CONVERSION, "2026-03-01 11:02:00", "5"), "user_id": 501}
        ],
        sessions=[
            {"session_id": "rt-501", "user_id": 501, "device": "mobile"},
            {"session_id": "rt-502", "user_id": 502, "device": "mobile"},
        ],
        users=[other, third],
    )
    assert await store.record_events(batch) == ["n1"]
    assert await store.users_by_ids([500, 501, 502]) == [NEW_USER, None, third]
    assert await store.count("users") == 2
    assert await store.sessions_by_ids(["rt-501"]) == [None]
    [session] = await store.sessions_by_ids(["rt-502"])
    assert (session["pages_visited"], session["total_interactions"]) == (["search"], 0)


def _pages(session_id: str, *visits: tuple[str, str, str]) -> EventBatch:
    """User 500's visits (event_id, page, time) in one session, in the order given."""
    return EventBatch(
        visits=[visit(e, 500, session_id, page, stamp, 10.0) for e, page, stamp in visits],
        sessions=[{"session_id": session_id, "user_id": 500, "device": "mobile"}],
        users=[dict(NEW_USER)],
    )


async def test_pages_visited_follow_visit_time_across_groups(store: DocumentStore) -> None:
    """The probe's case: search (10:01) and home (10:00) in one group, confirmation (10:00:30) in a
    later one, then payment in order, a tie and a late click with an in-order visit."""
    await store.record_events(_pages("rt-p", ("p-search", "search", "2026-03-01 10:01:00"),
                                     ("p-home", "home", "2026-03-01 10:00:00")))  # fmt: skip
    [session] = await store.sessions_by_ids(["rt-p"])
    assert session["pages_visited"] == ["home", "search"]
    # Before the stored end (10:01:10): between home and search, not after them.
    await store.record_events(_pages("rt-p", ("p-conf", "confirmation", "2026-03-01 10:00:30")))
    [session] = await store.sessions_by_ids(["rt-p"])
    assert session["pages_visited"] == ["home", "confirmation", "search"]
    # After the stored end: appended.
    await store.record_events(_pages("rt-p", ("p-pay", "payment", "2026-03-01 10:05:00")))
    # The same time as home (10:00:00): equal times go by event_id, "p-a" < "p-home".
    await store.record_events(_pages("rt-p", ("p-a", "product", "2026-03-01 10:00:00")))
    [session] = await store.sessions_by_ids(["rt-p"])
    assert session["pages_visited"] == ["product", "home", "confirmation", "search", "payment"]
    # A late click (10:00:05) with a visit after the end (10:05:10): the visit is still last.
    late = _pages("rt-p", ("p-cart", "cart", "2026-03-01 10:06:00"))
    late.interactions.append(interaction("p-click", "rt-p", "click", "2026-03-01 10:00:05"))
    await store.record_events(late)
    [session] = await store.sessions_by_ids(["rt-p"])
    assert session["pages_visited"] == ["product", "home", "confirmation", "search", "payment", "cart"]
    assert (session["start_time"], session["end_time"]) == (
        at("2026-03-01 10:00:00"),
        at("2026-03-01 10:06:10"),
    )
    assert session["total_interactions"] == 1
    # Replaying every group changes nothing.
    before = await store.sessions_by_ids(["rt-p"])
    assert await store.record_events(_pages("rt-p", ("p-conf", "confirmation", "2026-03-01 10:00:30"))) == []
    assert await store.sessions_by_ids(["rt-p"]) == before


async def test_pages_visited_match_the_stored_visits_below_a_millisecond(store: DocumentStore) -> None:
    """Each adapter stores times at its own precision (MongoDB: milliseconds); ``pages_visited`` follows
    the visits as stored, by (timestamp, event_id). "z" at 10:00:00.000 (no duration), then "a" 300 us
    later: DuckDB keeps them apart ("z" first), MongoDB stores both at .000 ("a" first, by event_id)."""
    stamp = "2026-03-01 10:00:00"
    first = visit("z", 500, "rt-ms", "home", stamp, 0.0)
    later = {
        **visit("a", 500, "rt-ms", "search", stamp, 0.0),
        "timestamp": at(stamp) + timedelta(microseconds=300),
    }
    seed = [{"session_id": "rt-ms", "user_id": 500, "device": "mobile"}]
    await store.record_events(EventBatch(visits=[first], sessions=seed, users=[dict(NEW_USER)]))
    await store.record_events(EventBatch(visits=[later], sessions=seed))
    [visits] = await store.visits_by_session_ids(["rt-ms"])
    expected = [v["page_type"] for v in sorted(visits, key=lambda v: (v["timestamp"], v["event_id"]))]
    [session] = await store.sessions_by_ids(["rt-ms"])
    assert session["pages_visited"] == expected
    assert sorted(expected) == ["home", "search"]


async def test_an_id_stored_as_another_type_is_a_duplicate(store: DocumentStore) -> None:
    """An eventId is one event whatever its type: a conversion reusing a stored visit's id, or a visit
    reusing a stored interaction's, changes nothing -- not user 500's session, and user 501 (named only
    by them) is not created."""
    await store.record_events(live_batch())
    [before] = await store.sessions_by_ids(["rt-1"])
    reused = EventBatch(
        visits=[visit("c1", 501, "rt-501", "home", "2026-03-01 11:00:00")],  # c1: 500's conversion
        interactions=[
            {
                **interaction("v1", "rt-501", CONVERSION, "2026-03-01 11:01:00", "7"),
                "user_id": 501,
            },  # 500's visit
        ],
        sessions=[{"session_id": "rt-501", "user_id": 501, "device": "mobile"}],
        users=[{**NEW_USER, "user_id": 501}],
    )
    assert await store.record_events(reused) == []
    assert (await store.count("page_visits"), await store.count("user_interactions")) == (2, 3)
    assert await store.users_by_ids([501]) == [None]
    assert await store.sessions_by_ids(["rt-501", "rt-1"]) == [None, before]


async def test_one_id_as_a_visit_and_an_interaction_in_a_batch_is_the_visit(store: DocumentStore) -> None:
    batch = EventBatch(
        visits=[visit("x", 500, "rt-1", "home", "2026-03-01 10:00:00")],
        interactions=[interaction("x", "rt-1", CONVERSION, "2026-03-01 10:00:05", "9.5")],
        sessions=[dict(SEED)],
        users=[dict(NEW_USER)],
    )
    assert await store.record_events(batch) == ["x"]
    assert (await store.count("page_visits"), await store.count("user_interactions")) == (1, 0)
    [session] = await store.sessions_by_ids(["rt-1"])
    assert (session["pages_visited"], session["total_interactions"], session["converted"]) == (
        ["home"],
        0,
        False,
    )


async def test_refuse_stored_names_every_stored_id_and_writes_nothing(store: DocumentStore) -> None:
    """With ``refuse_stored``, a batch holding stored ids (c1 stored as a conversion, now a visit; i1
    stored as a click, again a click) writes none of its events, new ones included, and names both."""
    await store.record_events(live_batch())
    counts = (await store.count("page_visits"), await store.count("user_interactions"))
    reused = EventBatch(
        visits=[
            visit("new-1", 501, "rt-new-1", "home", "2026-03-01 11:00:00"),
            visit("c1", 501, "rt-new-1", "search", "2026-03-01 11:00:30"),
        ],
        interactions=[{**interaction("i1", "rt-new-1", "click", "2026-03-01 11:00:40"), "user_id": 501}],
        sessions=[{"session_id": "rt-new-1", "user_id": 501, "device": "mobile"}],
        users=[{**NEW_USER, "user_id": 501}],
    )
    with pytest.raises(StoredEvents) as refused:
        await store.record_events(reused, refuse_stored=True)
    assert refused.value.ids == {"c1", "i1"}
    assert (await store.count("page_visits"), await store.count("user_interactions")) == counts
    assert await store.users_by_ids([501]) == [None]
    assert await store.sessions_by_ids(["rt-new-1"]) == [None]
    # Without those ids the same batch is written as usual.
    kept = EventBatch(visits=reused.visits[:1], sessions=reused.sessions, users=reused.users)
    assert await store.record_events(kept, refuse_stored=True) == ["new-1"]
    [session] = await store.sessions_by_ids(["rt-new-1"])
    assert (session["user_id"], session["pages_visited"]) == (501, ["home"])


async def test_refuse_stored_does_not_refuse_an_id_repeated_in_the_batch(store: DocumentStore) -> None:
    first = visit("dup", 500, "rt-1", "home", "2026-03-01 10:00:00")
    second = visit("dup", 500, "rt-1", "search", "2026-03-01 10:00:30")
    as_click = interaction("dup", "rt-1", "click", "2026-03-01 10:00:40")
    batch = EventBatch(
        visits=[first, second], interactions=[as_click], sessions=[dict(SEED)], users=[dict(NEW_USER)]
    )
    assert await store.record_events(batch, refuse_stored=True) == ["dup"]
    [visits] = await store.visits_by_user_ids([500])
    assert [(v["event_id"], v["page_type"]) for v in visits] == [("dup", "home")]
    assert await store.count("user_interactions") == 0


async def test_refuse_stored_also_names_stored_ids_the_caller_withheld(store: DocumentStore) -> None:
    """``withheld``: events the caller refused and left out; a stored one is named (it is a replay), even
    with an empty batch, and nothing is written. Unstored ones change nothing."""
    await store.record_events(live_batch())
    counts = (await store.count("page_visits"), await store.count("user_interactions"))
    kept = EventBatch(
        visits=[visit("new-2", 502, "rt-new-2", "home", "2026-03-01 12:00:00")],
        sessions=[{"session_id": "rt-new-2", "user_id": 502, "device": "mobile"}],
        users=[{**NEW_USER, "user_id": 502}],
    )
    with pytest.raises(StoredEvents) as refused:
        await store.record_events(kept, refuse_stored=True, withheld=["v1", "never-stored"])
    assert refused.value.ids == {"v1"}
    with pytest.raises(StoredEvents) as alone:
        await store.record_events(EventBatch(), refuse_stored=True, withheld=["c1"])
    assert alone.value.ids == {"c1"}
    assert (await store.count("page_visits"), await store.count("user_interactions")) == counts
    assert await store.users_by_ids([502]) == [None]
    assert await store.record_events(kept, refuse_stored=True, withheld=["never-stored"]) == ["new-2"]
