"""What validation's quick tests for the common case must not change (gateway/realtime/events.py): the
Event built (complete, frozen), what is accepted besides plain dicts and ints, null as absent, and the
arrival stamps. Every rule's own message is in test_validation.py."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest

from gateway.realtime.batch import validate
from gateway.realtime.captured import Event
from gateway.realtime.events import parse_event

NOW = datetime(2026, 3, 1, 12, 0, 0, 123_456)  # arrival: 12:00:00.123, events are kept to the millisecond
ARRIVAL = datetime(2026, 3, 1, 12, 0, 0, 123_000)
SKEW = timedelta(seconds=300)
VIEW = {"type": "page_view", "eventId": "v-1", "userId": 7, "pageType": "home"}
CLICK = {"type": "interaction", "eventId": "c-1", "userId": 7, "pageType": "home", "interactionType": "click"}


def reason(raw: Any) -> str:
    checked = validate([raw], NOW, SKEW)
    assert checked.events == [], f"accepted: {checked.events}"
    return checked.rejected[0].reason


class Wrapped(Mapping[str, Any]):
    """A mapping that is not a dict."""

    def __init__(self, items: dict[str, Any]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


class Tagged(dict[str, Any]):
    pass


class Code(enum.IntEnum):
    SEVEN = 7


class Name(str):
    pass


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {
                **VIEW,
                "sessionId": "s-1",
                "duration": 12.5,
                "device": "Tablet",
                "timestamp": "2026-03-01T11:00:00Z",
            },
            Event("v-1", "page_view", 7, "s-1", "home", datetime(2026, 3, 1, 11), "tablet", 12.5),
        ),
        (
            {
                **CLICK,
                "interactionType": "form",
                "element": "email",
                "coordinates": {"x": 0, "y": 100_000},
                "value": "a@b.c",
                "device": "mobile",
                "sessionId": "s-2",
            },
            Event(
                "c-1",
                "interaction",
                7,
                "s-2",
                "home",
                ARRIVAL,
                "mobile",
                0.0,
                "form",
                "email",
                {"x": 0, "y": 100_000},
                "a@b.c",
            ),
        ),
        (
            {
                "type": "conversion",
                "eventId": "b-1",
                "userId": 7,
                "pageType": "confirmation",
                "value": "49.90",
            },
            Event("b-1", "conversion", 7, None, "confirmation", ARRIVAL, None, value="49.9"),
        ),
    ],
)
def test_a_valid_event_becomes_a_complete_frozen_event(raw: dict[str, Any], expected: Event) -> None:
    for event in (parse_event(raw, NOW, SKEW), validate([raw], NOW, SKEW).events[0]):
        assert type(event) is Event
        assert event == expected  # every field, compared with an Event built by its own __init__
        assert repr(event) == repr(expected)
        with pytest.raises(dataclasses.FrozenInstanceError):
            event.user_id = 8  # type: ignore[misc]
        assert dataclasses.replace(event, user_id=8).user_id == 8


def test_a_page_view_hashes_like_the_event_it_equals() -> None:
    expected = Event("v-1", "page_view", 7, None, "home", ARRIVAL, None, 0.0)
    assert hash(parse_event(VIEW, NOW, SKEW)) == hash(expected)


def test_mappings_that_are_not_plain_dicts_are_events_too() -> None:
    expected = Event("c-1", "interaction", 7, None, "home", ARRIVAL, None, 0.0, "click", "", {"x": 3, "y": 4})
    raw = {**CLICK, "coordinates": {"x": 3, "y": 4}}
    for given in (Tagged(raw), Wrapped(raw), MappingProxyType(raw)):
        assert parse_event(given, NOW, SKEW) == expected
    for coordinates in (Tagged(x=3, y=4), Wrapped({"x": 3, "y": 4}), MappingProxyType({"x": 3, "y": 4})):
        event = parse_event({**CLICK, "coordinates": coordinates}, NOW, SKEW)
        assert event == expected and type(event.coordinates) is dict
    # A mapping without its nulls, like a dict.
    assert parse_event(Wrapped({**raw, "sessionId": None}), NOW, SKEW) == expected


def test_int_and_str_subclasses_are_still_accepted() -> None:
    event = parse_event(
        {**VIEW, "userId": Code.SEVEN, "eventId": Name("n-1"), "duration": Code.SEVEN}, NOW, SKEW
    )
    assert (event.user_id, event.event_id, event.duration) == (7, "n-1", 7.0)
    assert parse_event({**CLICK, "element": Name("buy")}, NOW, SKEW).element == "buy"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({**VIEW, "userId": False}, "userId must be an integer 1..2147483647, got false"),
        ({**VIEW, "duration": True}, "duration must be a number of seconds 0..86400, got true"),
        ({**CLICK, "coordinates": {"x": True, "y": 1}}, "coordinates.x must be an integer 0..100000, got true"),
        ({**CLICK, "coordinates": {"x": 1, "y": False}}, "coordinates.y must be an integer 0..100000, got false"),
        ({**CLICK, "coordinates": {"x": 1.0, "y": 2}}, "coordinates.x must be an integer 0..100000, got 1"),
        ({**CLICK, "coordinates": {"x": 1, "y": 100_001}}, "coordinates.y must be an integer 0..100000, got 100001"),
        ({**CLICK, "coordinates": {"x": None, "y": 2}}, "coordinates.x must be an integer 0..100000, got null"),
        (
            {**CLICK, "coordinates": {"x": 1, "y": 2, "z": None}},  # null is absent at the top level only
            'coordinates must be an object {x, y}, got {"x":1,"y":2,"z":null}',
        ),
        ({**CLICK, "coordinates": {"x": 1, "z": 2}}, 'coordinates must be an object {x, y}, got {"x":1,"z":2}'),
        ({**CLICK, "coordinates": "1,2"}, 'coordinates must be an object {x, y}, got "1,2"'),
        ({**CLICK, "element": 5}, "element must be a string of at most 100 characters, got 5"),
        ({**VIEW, "userId": None}, "page_view events need userId"),
        ({**CLICK, "userId": None, "interactionType": None}, "interaction events need userId, interactionType"),
        ({**VIEW, "eventId": "a b", "sessionId": "s/1"}, 'eventId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, got "a b"'),
        ({**VIEW, "eventId": Name("a b")}, 'eventId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, got "a b"'),
    ],
)  # fmt: skip
def test_what_the_quick_tests_do_not_pass_gets_the_rule_s_own_message(raw: Any, expected: str) -> None:
    assert reason(raw) == expected


def test_null_fields_count_as_absent() -> None:
    nulls = {"sessionId": None, "device": None, "timestamp": None, "element": None, "coordinates": None}
    event = parse_event({**CLICK, **nulls, "eventId": None, "value": None}, NOW, SKEW)
    assert len(event.event_id) == 32 and event.event_id != "c-1"  # generated
    assert (event.session_id, event.device, event.timestamp) == (None, None, ARRIVAL)
    assert (event.element, event.coordinates, event.value) == ("", None, None)
    assert parse_event({**VIEW, "duration": None}, NOW, SKEW).duration == 0.0


def test_times_are_kept_to_the_millisecond() -> None:
    late = parse_event({**VIEW, "timestamp": "2026-03-01T11:59:59.999999Z"}, NOW, SKEW)
    assert late.timestamp == datetime(2026, 3, 1, 11, 59, 59, 999_000)
    exact = parse_event({**VIEW, "timestamp": "2026-03-01T11:59:59.004+00:00"}, NOW, SKEW)
    assert exact.timestamp == datetime(2026, 3, 1, 11, 59, 59, 4_000)
    assert parse_event(VIEW, NOW, SKEW).timestamp == ARRIVAL
    assert parse_event(VIEW, datetime(2026, 3, 1, 12, 0, 0, 999), SKEW).timestamp == datetime(2026, 3, 1, 12)


def test_a_user_s_unstamped_events_are_1_ms_apart_in_batch_order() -> None:
    ms = timedelta(milliseconds=1)
    batch = [
        {**VIEW, "eventId": "a"},
        {**CLICK, "eventId": "b", "coordinates": {"x": 1, "y": 2}, "element": "e", "device": "other"},
        {**VIEW, "eventId": "bad", "userId": 0},  # rejected: stamps nothing
        {**VIEW, "eventId": "x", "userId": 9},
        {**VIEW, "eventId": "a"},  # a repeat: stamps nothing
        {**VIEW, "eventId": "c", "timestamp": None},  # null: stamped like an absent time
        {**VIEW, "eventId": "y", "userId": 9, "sessionId": "s-9"},
    ]
    checked = validate(batch, NOW, SKEW)
    assert checked.events == [
        Event("a", "page_view", 7, None, "home", ARRIVAL, None, 0.0),
        Event(
            "b", "interaction", 7, None, "home", ARRIVAL + ms, "other", 0.0, "click", "e", {"x": 1, "y": 2}
        ),
        Event("x", "page_view", 9, None, "home", ARRIVAL, None, 0.0),
        Event("c", "page_view", 7, None, "home", ARRIVAL + 2 * ms, None, 0.0),
        Event("y", "page_view", 9, "s-9", "home", ARRIVAL + ms, None, 0.0),
    ]
    assert checked.indexes == [0, 1, 3, 5, 6] and checked.repeats == [(4, "a")]
    assert all(type(e) is Event for e in checked.events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        checked.events[1].timestamp = NOW  # type: ignore[misc]
