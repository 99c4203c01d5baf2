"""Every validation rule of gateway/realtime/events.py: one bad event each, and what valid ones become."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.realtime import events as events_module
from gateway.realtime.batch import ValidationFault, validate
from gateway.realtime.captured import Event
from gateway.realtime.events import parse_event

NOW = datetime(2026, 3, 1, 12, 0, 0)
SKEW = timedelta(seconds=300)
VIEW = {"type": "page_view", "userId": 7, "pageType": "home"}
CLICK = {"type": "interaction", "userId": 7, "pageType": "home", "interactionType": "click"}
FORM = {**CLICK, "interactionType": "form"}
BUY = {"type": "conversion", "userId": 7, "pageType": "confirmation", "value": 10}


def reason(raw: Any) -> str:
    checked = validate([raw], NOW, SKEW)
    assert checked.events == [], f"accepted: {checked.events}"
    return checked.rejected[0].reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("text", "an event must be a JSON object, got a string"),
        (None, "an event must be a JSON object, got null"),
        ([1], "an event must be a JSON object, got an array"),
        (
            {**CLICK, "coordinates": {"x": 1, "y": 5, "z": 1}},
            'coordinates must be an object {x, y}, got {"x":1,"y":5,"z":1}',
        ),
        ({**VIEW, "user_id": 7}, "unknown field(s) user_id (fields are camelCase"),
        ({**VIEW, "type": None}, "type must be one of page_view, interaction, conversion, got null"),
        ({**VIEW, "type": "view"}, 'type must be one of page_view, interaction, conversion, got "view"'),
        ({**VIEW, "interactionType": "click"}, "field(s) interactionType do not apply to page_view events"),
        ({**CLICK, "duration": 3}, "field(s) duration do not apply to interaction events"),
        ({**BUY, "coordinates": {"x": 1, "y": 1}}, "field(s) coordinates do not apply to conversion events"),
        ({"type": "page_view", "userId": 7}, "page_view events need pageType"),
        ({"type": "interaction", "userId": 7, "pageType": "home"}, "interaction events need interactionType"),
        ({"type": "conversion", "userId": 7, "pageType": "confirmation"}, "conversion events need value"),
        ({**VIEW, "userId": "7"}, 'userId must be an integer 1..2147483647, got "7"'),
        ({**VIEW, "userId": True}, "userId must be an integer 1..2147483647, got true"),
        ({**VIEW, "userId": 0}, "userId must be an integer 1..2147483647, got 0"),
        ({**VIEW, "userId": 2**31}, "userId must be an integer 1..2147483647, got 2147483648"),
        ({**VIEW, "pageType": "Home"}, "pageType must be a slug"),
        ({**VIEW, "pageType": "a" * 41}, "pageType must be a slug"),
        ({**VIEW, "pageType": 3}, "pageType must be a slug"),
        ({**VIEW, "eventId": ""}, "eventId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -"),
        ({**VIEW, "eventId": "a b"}, "eventId must be 1-128 characters"),
        ({**VIEW, "eventId": "x" * 129}, "eventId must be 1-128 characters"),
        ({**VIEW, "eventId": 12}, "eventId must be 1-128 characters"),
        ({**VIEW, "eventId": "abc\n"}, "eventId must be 1-128 characters"),  # `$` would let it through
        ({**VIEW, "pageType": "home\n"}, "pageType must be a slug"),
        ({**VIEW, "sessionId": "s/1"}, "sessionId must be 1-128 characters"),
        ({**VIEW, "timestamp": "2026-03-01 10:00:00"}, "timestamp needs a UTC offset (Z or +hh:mm)"),
        ({**VIEW, "timestamp": "yesterday"}, 'timestamp must be ISO-8601 or epoch seconds, got "yesterday"'),
        ({**VIEW, "timestamp": True}, "timestamp must be ISO-8601 or epoch seconds, got true"),
        ({**VIEW, "timestamp": [1]}, "timestamp must be ISO-8601 or epoch seconds"),
        ({**VIEW, "timestamp": 1e300}, "is not a usable epoch time"),
        ({**VIEW, "timestamp": -1}, "is before 1970-01-01"),
        ({**VIEW, "timestamp": "2026-03-01T12:05:01Z"}, "is more than 300 s in the future"),
        # Valid ISO-8601 whose UTC time is outside years 1-9999 (Python cannot even represent it).
        ({**VIEW, "timestamp": "9999-12-31T23:59:59-05:00"}, "is more than 300 s in the future"),
        ({**VIEW, "timestamp": "0001-01-01T00:00:00+05:00"}, "is before 1970-01-01"),
        ({**VIEW, "duration": -1}, "duration must be a number of seconds 0..86400, got -1"),
        ({**VIEW, "duration": 86_401}, "duration must be a number of seconds 0..86400"),
        ({**VIEW, "duration": "5"}, "duration must be a number of seconds 0..86400"),
        ({**VIEW, "duration": float("nan")}, "duration must be a number of seconds 0..86400"),
        ({**VIEW, "device": "phone"}, "device must be one of desktop, mobile, tablet"),
        ({**VIEW, "device": 1}, "device must be one of desktop, mobile, tablet"),
        ({**CLICK, "interactionType": "tap"}, "interactionType must be one of click, scroll, hover, form"),
        ({**CLICK, "value": "x"}, "value applies to form interactions only"),
        ({**CLICK, "element": "e" * 101}, "element must be a string of at most 100 characters"),
        ({**CLICK, "coordinates": [1, 2]}, "coordinates must be an object {x, y}"),
        ({**CLICK, "coordinates": {"x": 1}}, "coordinates must be an object {x, y}"),
        ({**CLICK, "coordinates": {"x": -1, "y": 0}}, "coordinates.x must be an integer 0..100000"),
        ({**CLICK, "coordinates": {"x": 0, "y": 1.5}}, "coordinates.y must be an integer 0..100000"),
        ({**FORM, "value": "v" * 2001}, "value must be a string of at most 2000 characters"),
        ({**FORM, "value": 5}, "value must be a string of at most 2000 characters"),
        ({**BUY, "value": "ten"}, 'a conversion\'s value must be an amount like 49.90, got "ten"'),
        # A string amount is a plain decimal: what float() would read besides is refused.
        *(
            ({**BUY, "value": text}, f'a conversion\'s value must be an amount like 49.90, got "{text}"')
            for text in ("1_000", " 12 ", "\u0661\u0662", "1e3", "+5", ".5", "12.", "-0", "inf", "nan")
        ),
        ({**BUY, "value": 1000000001}, "a conversion's value must be between 0 and 1e+09, got 1000000001"),
        (
            {**BUY, "value": 17.301},
            "a conversion's value must be an amount in currency units with at most 2 decimals (whole cents), got 17.301",
        ),
        ({**BUY, "value": "17.301"}, 'a conversion\'s value must be an amount like 49.90, got "17.301"'),
        (
            {**BUY, "value": 1000000001.5},
            "a conversion's value must be between 0 and 1e+09, got 1000000001.5",
        ),
        ({**BUY, "value": -5}, "a conversion's value must be between 0 and 1e+09, got -5"),
        ({**BUY, "value": True}, "a conversion's value must be an amount, got true"),
    ],
)
def test_each_rule_rejects_with_its_reason(raw: Any, expected: str) -> None:
    assert expected in reason(raw)


def test_valid_events_are_normalised() -> None:
    view = parse_event(
        {**VIEW, "timestamp": "2026-03-01T13:00:00.1234+02:00", "device": " Mobile "}, NOW, SKEW
    )
    assert (view.timestamp, view.device, view.duration) == (
        datetime(2026, 3, 1, 11, 0, 0, 123000),
        "mobile",
        0.0,
    )
    assert parse_event({**VIEW, "timestamp": 0}, NOW, SKEW).timestamp == datetime(1970, 1, 1)
    lower = parse_event({**VIEW, "timestamp": "2026-03-01t11:30:00z"}, NOW, SKEW)  # RFC 3339 allows it
    assert lower.timestamp == datetime(2026, 3, 1, 11, 30)
    assert parse_event({**VIEW, "timestamp": None}, NOW, SKEW).timestamp == NOW  # null = absent = arrival
    assert parse_event({**VIEW, "timestamp": "2026-03-01T12:05:00Z"}, NOW, SKEW).timestamp == NOW + SKEW
    assert parse_event({**BUY, "value": "12.50"}, NOW, SKEW).value == "12.5"
    assert parse_event({**BUY, "value": -0.0}, NOW, SKEW).value == "0.0"  # not "-0.0"
    assert str(parse_event({**VIEW, "duration": -0.0}, NOW, SKEW).duration) == "0.0"
    form = parse_event({**FORM, "value": "great", "coordinates": {"x": 1, "y": 2}}, NOW, SKEW)
    assert (form.value, form.coordinates, form.element) == ("great", {"x": 1, "y": 2}, "")
    generated = parse_event(VIEW, NOW, SKEW)
    assert len(generated.event_id) == 32 and generated.session_id is None


def test_a_bad_event_never_costs_a_good_one_and_repeats_count_once() -> None:
    checked = validate([VIEW | {"eventId": "a"}, {"type": "x"}, VIEW | {"eventId": "a"}, BUY], NOW, SKEW)
    assert checked.events[0].event_id == "a" and len(checked.events) == 2
    assert checked.indexes == [0, 3]
    assert checked.repeats == [(2, "a")]  # the repeat at index 2, of the first "a"
    assert [(r.index, r.event_id) for r in checked.rejected] == [(1, None)]
    assert all(isinstance(e, Event) for e in checked.events)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"userId": True}, "userId must be an integer 1..2147483647, got true"),
        ({"userId": 42.0}, "userId must be an integer 1..2147483647, got a decimal number (42.0)"),
        # orjson reads 10**29 as the float 1e+29: the client sent an integer, not a decimal number.
        ({"userId": 1e29}, "userId must be an integer 1..2147483647, got an integer past 64 bits (1e+29)"),
        ({"timestamp": False}, "timestamp must be ISO-8601 or epoch seconds, got false"),
        (
            {"timestamp": 1_764_633_600_000},
            "timestamp 1764633600000 is too large for epoch seconds (milliseconds? divide by 1000)",
        ),
        # Strings in JSON's double quotes and escapes, not Python's 'view'.
        (
            {"pageType": "Home Page"},
            'pageType must be a slug like "home" or "gift_cards" ([a-z][a-z0-9_]{0,39}), got "Home Page"',
        ),
        # The client sent a"b\c: JSON writes "a\"b\\c"; Python's repr would have written 'a"b\\c'.
        ({"eventId": 'a"b\\c'}, r'eventId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, got "a\"b\\c"'),
        ({"eventId": "abc\n"}, r'eventId must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, got "abc\n"'),
        (
            {"device": "t\u00e9l\u00e9phone"},
            'device must be one of desktop, mobile, tablet, other, got "t\u00e9l\u00e9phone"',
        ),
        ({"device": False}, "device must be one of desktop, mobile, tablet, other, got false"),
        ({"device": [None, True]}, "device must be one of desktop, mobile, tablet, other, got [null,true]"),
        # GraphQL's Float hands -1 over as -1.0: shown as the client wrote it.
        ({"duration": -1.0}, "duration must be a number of seconds 0..86400, got -1"),
        ({"duration": -1.5}, "duration must be a number of seconds 0..86400, got -1.5"),
        # A long value is cut at 60 characters, and says how long it was: here the JSON text of 200
        # x's (202 characters with its quotes) is cut after the opening quote and 59 x's; the string's
        # own length is given.
        (
            {"element": "x" * 200, "type": "interaction", "interactionType": "click"},
            'element must be a string of at most 100 characters, got "' + "x" * 59 + "... (200 characters)",
        ),
    ],
)
def test_messages_name_values_as_the_client_wrote_them(change: dict[str, object], reason: str):
    raw = {"type": "page_view", "eventId": "m-1", "userId": 1, "pageType": "home_page", **change}
    checked = validate([raw], NOW, timedelta(minutes=5))
    assert [r.reason for r in checked.rejected] == [reason]


def test_a_live_event_is_at_most_max_age_old() -> None:
    # Live capture is for what happens now (offline batches included); an unset clock (epoch 0) or a
    # backfill would stretch every open-ended trend back to it.
    age = timedelta(days=30)
    inside = NOW - age + timedelta(seconds=1)
    assert validate([{**VIEW, "timestamp": inside.isoformat() + "Z"}], NOW, SKEW, age).events
    [rejected] = validate([{**VIEW, "timestamp": 0}], NOW, SKEW, age).rejected
    assert rejected.reason == (
        "timestamp 0 is more than 30 days in the past (FUNNEL_EVENTS_MAX_AGE_DAYS); "
        "past data is loaded with `funnelgate ingest`"
    )
    outside = NOW - age - timedelta(seconds=1)
    assert validate([{**VIEW, "timestamp": outside.isoformat() + "Z"}], NOW, SKEW, age).rejected


def test_a_user_s_unstamped_events_keep_their_batch_order_1_ms_apart() -> None:
    batch = [
        VIEW | {"eventId": "z-home"},
        VIEW | {"eventId": "other", "userId": 8},
        VIEW | {"eventId": "a-search", "pageType": "search"},
        VIEW | {"eventId": "z-home"},  # a repeat: stamps nothing
        VIEW | {"eventId": "given", "timestamp": "2026-03-01T11:00:00Z"},  # its own time, untouched
        CLICK | {"eventId": "m-pay", "pageType": "payment"},
    ]
    at = {e.event_id: e.timestamp for e in validate(batch, NOW, SKEW).events}
    ms = timedelta(milliseconds=1)
    assert at == {
        "z-home": NOW,
        "other": NOW,  # another user's first
        "a-search": NOW + ms,
        "given": datetime(2026, 3, 1, 11, 0, 0),
        "m-pay": NOW + 2 * ms,
    }


def break_device(monkeypatch: pytest.MonkeyPatch, marker: str = "tablet") -> None:
    """A bug in one rule: judging an event whose device is ``marker`` raises RuntimeError("a bug")."""
    real = events_module._device

    def broken(value: Any) -> Any:
        if value == marker:
            raise RuntimeError("a bug")
        return real(value)

    monkeypatch.setattr(events_module, "_device", broken)


def test_an_unexpected_fault_in_one_event_fails_the_batch_not_the_event(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A bug of ours is no bad event: rejecting it would blame (and count) the client. The batch fails
    # whole, the bug as the cause, and validation itself logs nothing (the route logs the failure once).
    break_device(monkeypatch)
    batch = [
        VIEW | {"eventId": "a"},
        VIEW | {"eventId": "b", "device": "tablet"},
        VIEW | {"eventId": "c", "device": "phone"},  # a bad event too: the fault wins
    ]
    with pytest.raises(ValidationFault) as raised:
        validate(batch, NOW, SKEW)
    fault = raised.value
    assert (fault.index, fault.others) == (1, 0)
    assert isinstance(fault.__cause__, RuntimeError) and str(fault.__cause__) == "a bug"
    assert str(fault) == (
        "validating event 1 of a batch of 3 failed (a fault of the gateway's): "
        "the batch was refused whole, nothing of it was stored"
    )
    assert caplog.records == []


def test_a_fault_counts_the_other_faulty_events_and_keeps_the_first_as_its_cause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_device(monkeypatch)
    tablet = VIEW | {"device": "tablet"}
    batch = [VIEW, VIEW, tablet | {"eventId": "first"}, VIEW, tablet, tablet, "not an event", tablet]
    with pytest.raises(ValidationFault) as raised:
        validate(batch, NOW, SKEW)
    assert (raised.value.index, raised.value.others) == (2, 3)  # indexes 2, 4, 5 and 7 faulted
    assert "event 2 of a batch of 8 failed" in str(raised.value)
    assert "3 other event(s) of the batch faulted too" in str(raised.value)
    assert raised.value.__cause__ is not None
    assert raised.value.__cause__.__traceback__ is not None  # the bug's own frames, for the log


def test_a_batch_without_a_fault_is_judged_as_before_while_a_rule_is_broken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    break_device(monkeypatch)  # only a tablet would fault
    batch = [VIEW | {"eventId": "a"}, VIEW | {"eventId": "b", "device": "phone"}, VIEW | {"eventId": "c"}]
    checked = validate(batch, NOW, SKEW)
    assert [e.event_id for e in checked.events] == ["a", "c"]
    assert [(r.index, r.event_id, r.reason) for r in checked.rejected] == [
        (1, "b", 'device must be one of desktop, mobile, tablet, other, got "phone"')
    ]


def test_a_rejected_event_echoes_its_id_only_if_it_could_be_one() -> None:
    bad = {**VIEW, "device": "phone"}
    batch = [
        bad | {"eventId": "x" * 128},
        bad | {"eventId": "x" * 129},
        bad | {"eventId": "é"},
        bad | {"eventId": 5},
    ]
    checked = validate(batch, NOW, SKEW)
    assert [r.event_id for r in checked.rejected] == ["x" * 128, None, "é", None]
    assert (
        "(900,000 characters)" in validate([VIEW | {"eventId": "y" * 900_000}], NOW, SKEW).rejected[0].reason
    )
    assert validate([VIEW | {"eventId": "y" * 900_000}], NOW, SKEW).rejected[0].event_id is None


def test_a_field_nested_past_pythons_repr_is_rejected_with_its_rule_not_an_internal_error() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    [rejected] = validate([{**VIEW, "device": deep}], NOW, SKEW).rejected
    assert rejected.reason.startswith("device must be one of desktop, mobile, tablet")
    assert "nested too deeply to show" in rejected.reason
