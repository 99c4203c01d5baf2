"""Realtime events: the wire format and every validation rule, into the normalised ``captured.Event``.

``POST /events`` and the ``trackEvents`` mutation both hand their raw events (JSON objects with the
camelCase names below) to :func:`gateway.realtime.batch.validate`, which judges each event here
(:func:`parse_event`), so a rule and its message exist once. Each event is judged on its own: a bad one
is rejected with its index and reason and never costs a good one its place.

=================  ==============================================================================
field              rule
=================  ==============================================================================
type               required: ``page_view`` | ``interaction`` | ``conversion``
eventId            optional (generated when absent): 1-128 of ``A-Z a-z 0-9 _ . : @ -``; the key of
                   idempotency -- an id already stored, or repeated in the batch, changes nothing
userId             required: an integer in 1..2^31-1 (GraphQL's Int); an unknown user is created
sessionId          optional, like eventId; absent: the user's session continues unless it has been
                   inactive for FUNNEL_SESSION_GAP_S (30 min), then a new one starts; named: joins
                   that session within the gap of its span, else refused by enrichment
                   (``named_sessions.py``)
pageType           required: known page types and new ones alike, as a slug ``[a-z][a-z0-9_]{0,39}``
                   (``home``, ``search``, ``payment``, ``confirmation``, ``wishlist``...)
timestamp          optional (absent: the time it arrived): ISO-8601 *with* an offset (``Z``,
                   ``+02:00``) or epoch seconds (a number); from FUNNEL_EVENTS_MAX_AGE_DAYS (30) in
                   the past up to FUNNEL_EVENTS_MAX_SKEW_S (300 s) in the future: live capture is
                   for what happens now (an offline batch included); history goes through ingest
duration           page_view only, optional: seconds on the page, 0..86400 (default 0)
device             optional: desktop | mobile | tablet | other (any case); absent: the user's device
interactionType    interaction only, required: click | scroll | hover | form
element            interaction only, optional: up to 100 characters
coordinates        interaction only, optional: ``{"x": int, "y": int}``, each 0..100000
value              form interactions: the text typed, up to 2000 characters (optional);
                   conversion: required, the amount, a number (or decimal string) 0..1e9
=================  ==============================================================================

A field that does not belong to the event's type, or that the format does not know, is an error (a
typo such as ``user_id`` must not silently drop data); ``null`` counts as absent.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.errors import json_type, shown
from gateway.models import Device
from gateway.realtime.captured import CONVERSION, INTERACTION, PAGE_VIEW, Event, build_event
from gateway.validation import USER_ID_MAX, USER_ID_MIN

EVENT_TYPES = (PAGE_VIEW, INTERACTION, CONVERSION)
INTERACTION_TYPES = ("click", "scroll", "hover", "form")
MAX_DURATION_S = 86_400
MAX_ELEMENT, MAX_TEXT = 100, 2000
MAX_COORDINATE = 100_000
MAX_AMOUNT = 1e9
EARLIEST = datetime(1970, 1, 1)
# Epoch seconds beyond this (the year 5138), up to the same in milliseconds, are surely milliseconds:
# a common client mistake, named as such.
EPOCH_MILLISECONDS = 1e11

MAX_ID_CHARS = 128
_ID = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}\Z")  # 1..MAX_ID_CHARS
_SLUG = re.compile(r"^[a-z][a-z0-9_]{0,39}\Z")
_DECIMAL = re.compile(r"^[0-9]{1,10}(\.[0-9]{1,2})?\Z")  # an amount given as a string: 49.90
_COMMON = {"type", "eventId", "userId", "sessionId", "pageType", "timestamp", "device"}
FIELDS: dict[str, frozenset[str]] = {
    PAGE_VIEW: frozenset({*_COMMON, "duration"}),
    INTERACTION: frozenset({*_COMMON, "interactionType", "element", "coordinates", "value"}),
    CONVERSION: frozenset({*_COMMON, "value"}),
}
ALL_FIELDS = frozenset().union(*FIELDS.values())
REQUIRED: dict[str, tuple[str, ...]] = {
    PAGE_VIEW: ("userId", "pageType"),
    INTERACTION: ("userId", "pageType", "interactionType"),
    CONVERSION: ("userId", "pageType", "value"),
}
_REQUIRED_SETS = {kind: frozenset(names) for kind, names in REQUIRED.items()}


class Invalid(ValueError):
    """One event breaks a rule; the message is the reason the client sees."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


def _identifier(name: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise Invalid(f"{name} must be 1-128 characters of A-Z a-z 0-9 _ . : @ -, got {_shown(value)}")
    return value


# Rejection reasons come one per rejected event, up to FUNNEL_EVENTS_MAX_BATCH in one answer: each echo
# is kept shorter than gateway.errors.SHOWN_CHARS.
EVENT_SHOWN_CHARS = 60


def _shown(value: Any) -> str:
    # As the client wrote it, in JSON (gateway.errors.shown); a number the same way whether it came as
    # JSON (-1) or through GraphQL's Float (-1.0).
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        value = int(value)
    return shown(value, EVENT_SHOWN_CHARS)


def _timestamp(
    value: Any, now: datetime, arrival: datetime | None, max_skew: timedelta, max_age: timedelta | None
) -> datetime:
    if value is None:  # the time it arrived: ``arrival`` when the caller has it (once a batch)
        return to_milliseconds(now) if arrival is None else arrival
    if _is_number(value):
        if EPOCH_MILLISECONDS < value < EPOCH_MILLISECONDS * 1000:
            raise Invalid(
                f"timestamp {_shown(value)} is too large for epoch seconds (milliseconds? divide by 1000)"
            )
        try:
            moment = datetime.fromtimestamp(float(value), UTC).replace(tzinfo=None)
        except (OverflowError, OSError, ValueError):
            raise Invalid(f"timestamp {_shown(value)} is not a usable epoch time") from None
    elif isinstance(value, str):
        try:  # RFC 3339 allows a lower-case "t" and "z"; fromisoformat does not
            parsed = datetime.fromisoformat(value.upper() if "t" in value or "z" in value else value)
        except ValueError:
            raise Invalid(f"timestamp must be ISO-8601 or epoch seconds, got {_shown(value)}") from None
        if parsed.tzinfo is None:
            raise Invalid(f"timestamp needs a UTC offset (Z or +hh:mm), got {_shown(value)}")
        try:
            moment = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # its UTC time is outside years 1-9999: judged by the range rules below
            moment = datetime.max if parsed.year > EARLIEST.year else datetime.min
    else:
        raise Invalid(f"timestamp must be ISO-8601 or epoch seconds, got {_shown(value)}")
    if moment < EARLIEST:
        raise Invalid(f"timestamp {_shown(value)} is before 1970-01-01")
    if moment > now + max_skew:
        seconds = int(max_skew.total_seconds())
        raise Invalid(f"timestamp {_shown(value)} is more than {seconds} s in the future")
    if max_age is not None and moment < now - max_age:
        # An unset clock (epoch 0) or a backfill: either would skew every open-ended trend.
        raise Invalid(
            f"timestamp {_shown(value)} is more than {max_age.days} days in the past "
            "(FUNNEL_EVENTS_MAX_AGE_DAYS); past data is loaded with `funnelgate ingest`"
        )
    return to_milliseconds(moment)


_MICROSECOND = timedelta(microseconds=1)


def to_milliseconds(moment: datetime) -> datetime:
    # MongoDB keeps milliseconds: every store holds the same instant. (A subtraction costs a third of
    # moment.replace(microsecond=...), and this runs for each event that carries its own time.)
    return moment - _MICROSECOND * (moment.microsecond % 1000)


_DEVICES = tuple(d.value for d in Device)


def _device(value: Any) -> str | None:
    if value is None:
        return None
    if value in _DEVICES:  # already normal: the common case
        return str(value)
    if not isinstance(value, str) or value.strip().lower() not in _DEVICES:
        raise Invalid(f"device must be one of {', '.join(_DEVICES)}, got {_shown(value)}")
    return value.strip().lower()


def _coordinates(value: Any) -> dict[str, int] | None:
    if type(value) is dict and len(value) == 2:  # the common case, without building a set
        x, y = value.get("x"), value.get("y")
        if type(x) is int and type(y) is int and 0 <= x <= MAX_COORDINATE and 0 <= y <= MAX_COORDINATE:
            return {"x": x, "y": y}
    if value is None:
        return None
    if not isinstance(value, Mapping) or set(value) != {"x", "y"}:
        raise Invalid(f"coordinates must be an object {{x, y}}, got {_shown(value)}")
    for axis in ("x", "y"):
        if not _is_int(value[axis]) or not 0 <= value[axis] <= MAX_COORDINATE:
            raise Invalid(
                f"coordinates.{axis} must be an integer 0..{MAX_COORDINATE}, got {_shown(value[axis])}"
            )
    return {"x": value["x"], "y": value["y"]}


def _amount(value: Any) -> str:
    if isinstance(value, str):
        # Plain decimals only: float() would also read "1_000", " 12 ", "1e3" and other scripts' digits.
        if not _DECIMAL.match(value):
            raise Invalid(f"a conversion's value must be an amount like 49.90, got {_shown(value)}")
        number = float(value)
    elif _is_number(value):
        number = float(value)
    else:
        raise Invalid(f"a conversion's value must be an amount, got {_shown(value)}")
    if not math.isfinite(number) or not 0 <= number <= MAX_AMOUNT:
        raise Invalid(f"a conversion's value must be between 0 and {MAX_AMOUNT:.0e}, got {_shown(value)}")
    if round(number, 2) != number:
        # Money is summed and reported to the cent (gateway/stores/money.py): a finer amount would make
        # totals depend on the order a store adds them in.
        raise Invalid(
            "a conversion's value must be an amount in currency units with at most 2 decimals "
            f"(whole cents), got {_shown(value)}"
        )
    return repr(number + 0.0)  # -0.0 is an amount of 0: stored and read back as 0.0


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"{name} must be a string of at most {limit} characters, got {_shown(value)}")
    return value


def _fields_problem(given: Mapping[str, Any]) -> str:
    """Why the event's fields do not fit its type: the first of an unknown field, a bad type, a
    field of another type (checked in that order)."""
    if not given.keys() <= ALL_FIELDS:
        unknown = sorted(str(k) for k in given if k not in ALL_FIELDS)
        return (
            f"unknown field(s) {', '.join(unknown)} (fields are camelCase: {', '.join(sorted(ALL_FIELDS))})"
        )
    kind = given.get("type")
    if kind not in EVENT_TYPES:
        return f"type must be one of {', '.join(EVENT_TYPES)}, got {_shown(kind)}"
    foreign = sorted(k for k in given if k not in FIELDS[kind])
    return f"field(s) {', '.join(foreign)} do not apply to {kind} events"


def parse_event(
    raw: Any,
    now: datetime,
    max_skew: timedelta,
    max_age: timedelta | None = None,
    arrival: datetime | None = None,
) -> Event:
    """One raw event (a JSON object) -> Event, or :class:`Invalid` naming the first broken rule
    (``max_age`` None: no lower bound but 1970). ``arrival``: ``now`` to the stores' precision, the
    time of an event without one (computed once per batch by :func:`gateway.realtime.batch.validate`)."""
    return _parse(raw, now, arrival, max_skew, max_age)


def _parse(
    raw: Any, now: datetime, arrival: datetime | None, max_skew: timedelta, max_age: timedelta | None
) -> Event:
    """:func:`parse_event`, given ``arrival`` (or None): the timestamp of an event without one, ``now`` to
    the millisecond, which :func:`gateway.realtime.batch.validate` computes once a batch.

    This runs for every captured event. Each rule is a quick test passing what is plainly valid (``type(x)
    is int``: JSON's and GraphQL's integers), and the rule's own full check otherwise, in the same order:
    the first broken rule and its message are the same either way."""
    if type(raw) is not dict and not isinstance(raw, Mapping):  # a dict skips the ABC machinery
        raise Invalid(f"an event must be a JSON object, got {json_type(raw)}")
    # The common case (no nulls, fields of its type) checks each field once; anything else gets the full
    # diagnosis.
    given = {k: v for k, v in raw.items() if v is not None} if None in raw.values() else raw
    kind = given.get("type")
    if not isinstance(kind, str) or (allowed := FIELDS.get(kind)) is None or not given.keys() <= allowed:
        raise Invalid(_fields_problem(given))
    if not given.keys() >= _REQUIRED_SETS[kind]:
        missing = [k for k in REQUIRED[kind] if k not in given]
        raise Invalid(f"{kind} events need {', '.join(missing)}")
    user_id = given["userId"]
    if not (type(user_id) is int and USER_ID_MIN <= user_id <= USER_ID_MAX) and (
        not _is_int(user_id) or not USER_ID_MIN <= user_id <= USER_ID_MAX
    ):
        got = _shown(user_id)
        if isinstance(user_id, float):
            # orjson reads an integer past 64 bits as a float: the client wrote no decimal number then.
            got = (
                f"an integer past 64 bits ({got})"
                if abs(user_id) >= 2**63
                else f"a decimal number ({shown(user_id)})"
            )
        raise Invalid(f"userId must be an integer {USER_ID_MIN}..{USER_ID_MAX}, got {got}")
    page_type = given["pageType"]
    if not isinstance(page_type, str) or not _SLUG.match(page_type):
        raise Invalid(
            'pageType must be a slug like "home" or "gift_cards" ([a-z][a-z0-9_]{0,39}), '
            f"got {_shown(page_type)}"
        )
    # ``given`` holds no null: None from get() means absent.
    event_id = given.get("eventId")
    if event_id is None:
        event_id = uuid.uuid4().hex
    elif not (type(event_id) is str and _ID.match(event_id)):
        event_id = _identifier("eventId", event_id)
    session_id = given.get("sessionId")
    if session_id is not None:
        session_id = _identifier("sessionId", session_id)
    if kind == PAGE_VIEW:
        duration = given.get("duration", 0)
        if not (type(duration) is int and 0 <= duration <= MAX_DURATION_S) and (
            not _is_number(duration) or not 0 <= duration <= MAX_DURATION_S
        ):
            raise Invalid(f"duration must be a number of seconds 0..{MAX_DURATION_S}, got {_shown(duration)}")
        timestamp = _timestamp(given.get("timestamp"), now, arrival, max_skew, max_age)
        device = _device(given.get("device"))
        return build_event(
            event_id, kind, user_id, session_id, page_type, timestamp, device, float(duration) + 0.0
        )
    if kind == INTERACTION:
        interaction = given["interactionType"]
        if interaction not in INTERACTION_TYPES:
            raise Invalid(
                f"interactionType must be one of {', '.join(INTERACTION_TYPES)}, got {_shown(interaction)}"
            )
        value = given.get("value")
        if value is not None and interaction != "form":
            raise Invalid("value applies to form interactions only")
        element = given.get("element", "")
        if not (type(element) is str and len(element) <= MAX_ELEMENT):
            element = _text("element", element, MAX_ELEMENT)
        coordinates = given.get("coordinates")
        if coordinates is not None:
            coordinates = _coordinates(coordinates)
        if value is not None:
            value = _text("value", value, MAX_TEXT)
        timestamp = _timestamp(given.get("timestamp"), now, arrival, max_skew, max_age)
        device = _device(given.get("device"))
        return build_event(
            event_id, kind, user_id, session_id, page_type, timestamp, device, 0.0, interaction, element,
            coordinates, value,
        )  # fmt: skip
    amount = _amount(given["value"])
    timestamp = _timestamp(given.get("timestamp"), now, arrival, max_skew, max_age)
    device = _device(given.get("device"))
    return build_event(event_id, kind, user_id, session_id, page_type, timestamp, device, value=amount)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
