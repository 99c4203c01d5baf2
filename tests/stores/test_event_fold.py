"""session_deltas on its own: which documents of a group fold, and what each session's delta holds."""

from __future__ import annotations

from datetime import datetime

from gateway.models import EventBatch
from gateway.stores.event_fold import SessionDelta, new_event_ids, session_deltas

T0 = datetime(2026, 3, 1, 10, 0, 0)


def at(second: int) -> datetime:
    return T0.replace(second=second)


def visit(event_id: str, session_id: str, page: str, second: int, duration: float = 0.0) -> dict:
    return {"event_id": event_id, "user_id": 7, "session_id": session_id, "page_type": page,
            "timestamp": at(second), "duration": duration, "device": "mobile"}  # fmt: skip


def interaction(
    event_id: str, session_id: str, second: int, kind: str = "click", value: str | None = None
) -> dict:
    return {"event_id": event_id, "user_id": 8, "session_id": session_id, "page_type": "cart",
            "interaction_type": kind, "timestamp": at(second), "value": value}  # fmt: skip


def test_the_first_document_of_each_new_id_folds_visits_before_interactions() -> None:
    batch = EventBatch(
        visits=[
            visit("a", "s1", "home", 10, 5.0),
            visit("a", "s1", "search", 50),  # a repeat of "a": skipped
            visit("old", "s1", "cart", 1),  # not new: skipped
        ],
        interactions=[
            interaction("a", "s1", 59),  # the visit "a" came first: skipped
            interaction("b", "s2", 20, "conversion", "12.5"),  # s2 has no seed: its first document's
            interaction("c", "s2", 5),
        ],
        sessions=[{"session_id": "s1", "user_id": 3, "device": "tablet"}],
    )
    deltas = session_deltas(batch, {"a", "b", "c"})
    assert deltas == [
        SessionDelta("s1", 3, "tablet", at(10), at(15), ["home"], 0, False, 0.0, at(10), at(10)),
        SessionDelta("s2", 8, None, at(5), at(20), [], 2, True, 12.5, None, None),
    ]
    assert new_event_ids(batch, {"a", "b", "c"}) == ["a", "b", "c"]


def test_pages_follow_visit_time_then_event_id_and_the_span_covers_every_event() -> None:
    batch = EventBatch(
        visits=[
            visit("v3", "s", "payment", 30, 10.0),
            visit("v2", "s", "search", 20),
            visit("v1", "s", "home", 20, 40.0),  # same time as v2: v1 first by event id
        ],
        interactions=[interaction("i1", "s", 5), interaction("i2", "s", 45)],
        sessions=[{"session_id": "s", "user_id": 7, "device": "mobile"}],
    )
    [delta] = session_deltas(batch, {"v1", "v2", "v3", "i1", "i2"})
    assert delta.pages == ["home", "search", "payment"]
    assert (delta.start_time, delta.end_time) == (at(5), T0.replace(minute=1))  # v1 ends at 10:01:00
    assert (delta.first_visit, delta.last_visit, delta.interactions) == (at(20), at(30), 2)
