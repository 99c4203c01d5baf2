"""A batch of raw events judged: each event's verdict (:func:`gateway.realtime.events.parse_event`),
ids repeated in the batch, sessionless events stamped, and a fault of ours failing the batch whole.

``POST /events`` and ``trackEvents`` both call :func:`validate` (through ``capture.capture``). A fault of
ours (anything but :class:`~gateway.realtime.events.Invalid` raised while judging an event: a bug) is not
a bad event, and rejecting the event would blame the client for it: :func:`validate` raises
:class:`ValidationFault` for the whole batch instead, which both routes answer as an internal error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gateway.realtime.captured import Event, restamped
from gateway.realtime.events import MAX_ID_CHARS, Invalid, parse_event, to_milliseconds

_MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Rejected:
    index: int
    event_id: str | None
    reason: str


@dataclass(frozen=True)
class Validated:
    events: list[Event]  # first occurrence of each id, in batch order
    indexes: list[int]  # each event's position in the batch
    repeats: list[tuple[int, str]]  # (index, id) of ids repeated later in the batch: the first counts
    rejected: list[Rejected]


def claimed_id(raw: Any) -> str | None:
    """The eventId a rejected event's verdict echoes: the one the client sent, when it is a string of at
    most an id's 128 characters, else None. Never an id validation generated (the client cannot match it to anything
    it sent), and never a longer string (it would come back whole, megabytes of it; the reason shows it
    cut)."""
    given = raw.get("eventId") if isinstance(raw, Mapping) else None
    return given if isinstance(given, str) and len(given) <= MAX_ID_CHARS else None


class ValidationFault(Exception):
    """Judging an event of the batch raised something else than :class:`Invalid`: a fault of the
    gateway's, not of the event. The first fault is the ``__cause__`` (its traceback is logged with this
    one), the message gives its index and how many other events of the batch faulted.

    The batch fails whole rather than the event being rejected, because a rejection tells the client the
    event is bad and must not be sent again: it would drop a good event for our bug, count it in
    ``funnelgate_events_total{result="rejected"}`` (whose rate alerts on *clients'* mistakes) and, with
    a batch of all such events, answer 400 BAD_USER_INPUT. :func:`validate` runs before anything is
    written (``capture.capture``), so a failed batch stored nothing and a retry with the same eventIds is
    safe: the answer is the retryable internal error, HTTP 500 on ``POST /events`` (the front middleware
    logs it) and a masked ``INTERNAL_SERVER_ERROR`` on ``trackEvents`` (the error policy logs it). Not a
    :class:`gateway.errors.FunnelError` on purpose: those are shown to the client and logged as its
    mistakes; this is masked, and logged once per batch with its traceback, not once per event."""

    def __init__(self, index: int, others: int, size: int) -> None:
        also = f"; {others:,} other event(s) of the batch faulted too" if others else ""
        super().__init__(
            f"validating event {index} of a batch of {size:,} failed (a fault of the gateway's){also}: "
            "the batch was refused whole, nothing of it was stored"
        )
        self.index, self.others = index, others


def validate(
    raw_events: Sequence[Any], now: datetime, max_skew: timedelta, max_age: timedelta | None = None
) -> Validated:
    """Every event judged on its own; ``now`` is naive UTC (the arrival time of the batch).

    An event breaking a rule is rejected; an unexpected exception while judging one (a bug of ours) fails
    the whole batch with :class:`ValidationFault`, raised after judging every event so that it can say how
    many faulted (the first one's exception is its cause).

    Events without a timestamp are stamped ``now``, a user's later ones in the batch 1 ms apart (the
    stores' precision) in batch order: stored visits are ordered by time, then eventId, and a batch's
    order is the only order the client gave them."""
    events: list[Event] = []
    indexes: list[int] = []
    repeats: list[tuple[int, str]] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    stamped: dict[int, int] = {}  # user -> events stamped with the arrival time so far
    arrival = to_milliseconds(now)
    fault: tuple[int, Exception] | None = None  # the first event that faulted, and its exception
    faults = 0
    for index, raw in enumerate(raw_events):
        try:
            event = parse_event(raw, now, max_skew, max_age, arrival)
        except Invalid as exc:
            rejected.append(Rejected(index, claimed_id(raw), str(exc)))
            continue
        except Exception as exc:  # a bug of ours, not a bad event: kept (the first) and counted, not logged
            faults += 1
            if fault is None:
                fault = (index, exc)
            continue
        event_id = event.event_id
        if event_id in seen:
            repeats.append((index, event_id))
            continue
        if raw.get("timestamp") is None:
            user_id = event.user_id
            earlier = stamped.get(user_id, 0)
            stamped[user_id] = earlier + 1
            if earlier:
                event = restamped(event, event.timestamp + earlier * _MILLISECOND)
        seen.add(event_id)
        events.append(event)
        indexes.append(index)
    if fault is not None:
        first_index, first = fault
        raise ValidationFault(first_index, faults - 1, len(raw_events)) from first
    return Validated(events=events, indexes=indexes, repeats=repeats, rejected=rejected)
