"""Enrichment: valid events -> the documents ``DocumentStore.record_events`` writes.

Two store reads per group of events (whatever its size), made at once: the users, and the users'
sessions -- only for users this process has not seen lately (:class:`PlannerMemory`). Up to two more,
one after the other, and only when needed: the sessions of remembered users with an event their
remembered session does not settle, and the owners of named sessions the group does not know.

* **Users.** A known user keeps their document. An unknown one is planned from their earliest event in
  the group that is not refused (below), and created by the store only if one of their events is new
  (a duplicate creates no one): ``date`` that event's day, ``device`` the first device any of their
  kept events in the group reports (in time order; None when none does), ``sex`` None,
  ``attributes`` {}. A user document is never changed afterwards: a device reported by a later group
  does not fill in a None. The plan cannot tell a duplicate (an id stored before) from a new event; a
  group holding one is planned again without it (``runtime.Realtime._record``), so a duplicate never
  sets a new user's day or device, nor starts, joins or stretches a session.
* **Device.** Every visit and session carries its *user's* device (the store's device invariant, which
  the MongoDB adapter's indexed device filters rely on). When an event reports another device than its
  user's, the stored documents keep the user's; the reported device travels with the published event
  (``userActivity`` shows it as ``reportedDevice``) and the live session state in Redis
  (``session:{id}`` field ``reported_device``), and is otherwise not stored.
* **Sessions.** An event naming ``sessionId`` belongs to that session -- if the session is its user's
  and the event falls within its time: an event naming another user's session (stored, or begun by
  another user's earlier event in the group) is refused, and so is one naming an existing session
  (stored, remembered, or begun earlier in the group) more than the gap outside its span as the
  group's earlier events (in time order) have extended it -- ``start - gap <= timestamp <= end +
  gap``, bounds included, the rule a sessionless event joins by (``named_sessions.py`` has both
  rules). A refused event is listed in ``Planned.refused``, reported to its client as rejected (unless
  its id is stored: a replay, then a duplicate, ``runtime.Realtime._record``), and
  changes nothing: no document, no user created, no span moved, nothing remembered (it is not in
  ``Planned.events``). One store read finds the owners of named sessions this group does not already
  know; a named session that does not exist yet is started by its earliest event. A sessionless event
  joins the latest-starting of the user's known sessions whose span, widened by ``gap``
  (FUNNEL_SESSION_GAP_S, 30 minutes, the TTL of ``session:{id}``), holds it, and starts a new one,
  ``rt-{eventId}``, when none does. Known: the user's latest session (the last by start time), those
  the group begins or names, and all the user's stored sessions when the user is read from the store
  -- which happens for a remembered user too when their latest session does not settle an event: one
  before its start (a late, offline event) or one more than the gap after its end (a sessionless one
  may join an older session that ends later; one naming the latest is judged on its stored span,
  which another process may have extended). So the window of a named session is always its real
  span: remembered (what this process committed), read with the user, or built by the group. The
  user's latest session is the one that starts last, ties by id, as the stores order them: a late
  event that starts a session of its own does not end the live one, and a warm process and a
  restarted one put every event in the same session, and refuse the same ones. Events of a user are
  taken in timestamp order, so a group holding a whole day of one user splits at every 30-minute pause.
* **Form values** are stored with ``free_text`` true (what the user typed: sentiment reads them).
* **Conversions** are stored as ``user_interactions`` with ``interaction_type`` ``conversion``,
  ``element`` ``conversion`` and the amount as ``value``; the store folds them into the session
  (``converted``, ``conversion_value``), see ``gateway/stores/event_fold.py``.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.models import Document, EventBatch
from gateway.realtime.captured import CONVERSION, PAGE_VIEW, Event
from gateway.realtime.named_sessions import LIVE_SESSION_PREFIX, outside_reason, refuse_foreign_sessions
from gateway.stores.contracts import DocumentStore
from gateway.stores.event_fold import CONVERSION as STORED_CONVERSION


@dataclass
class _Span:
    session_id: str
    start: datetime
    end: datetime


@dataclass
class Planned:
    """A group of events as the store will write it, and what capture needs once it is committed."""

    batch: EventBatch
    events: list[Event]
    session_of: dict[str, str] = field(default_factory=dict)  # event_id -> session_id
    user_device: dict[int, str | None] = field(default_factory=dict)
    user_sex: dict[int, str | None] = field(default_factory=dict)
    stored_start: dict[str, datetime] = field(default_factory=dict)  # sessions that existed: their start
    refused: dict[str, str] = field(default_factory=dict)  # event_id -> why it is not stored
    spans: dict[int, _Span] = field(default_factory=dict)  # each user's latest session after the group


def _order(span: _Span) -> tuple[datetime, str]:
    """The stores' order of a user's sessions (start, then id): the last is the user's latest."""
    return span.start, span.session_id


def _end(event: Event) -> datetime:
    return event.timestamp + timedelta(seconds=event.duration) if event.type == PAGE_VIEW else event.timestamp


def _document(event: Event, session_id: str, device: str | None) -> Document:
    # One dict literal per kind: this runs for every event of every group.
    if event.type == PAGE_VIEW:
        return {
            "event_id": event.event_id,
            "user_id": event.user_id,
            "session_id": session_id,
            "page_type": event.page_type,
            "timestamp": event.timestamp,
            "duration": event.duration,
            "device": device,
        }
    kind: str | None
    if event.type == CONVERSION:
        kind, element, coordinates = STORED_CONVERSION, "conversion", None
    else:
        kind, element, coordinates = event.interaction_type, event.element or "", event.coordinates
    return {
        "event_id": event.event_id,
        "user_id": event.user_id,
        "session_id": session_id,
        "page_type": event.page_type,
        "timestamp": event.timestamp,
        "interaction_type": kind,
        "element": element,
        "coordinates": coordinates,
        "value": event.value,
        "free_text": kind == "form",  # a live form value is what the user typed: it carries sentiment
    }


@dataclass(slots=True)
class _Known:
    device: str | None
    sex: str | None
    span: _Span | None
    until: float


class PlannerMemory:
    """What enrichment learnt about users, kept between this process's group commits, so a returning
    visitor costs no store read: their device and sex (user documents never change) and their latest
    session's span, for ``ttl_s`` seconds after their last event, at most ``max_users`` (least recently
    seen forgotten first). Remembered only after a commit succeeded, and only for users whose events in
    it were all new (a replayed one may have been planned into a session that was never created).

    Across replicas this is per process: a user whose events alternate between two gateways within the
    session gap may get a new session where one process would have continued it (sticky routing by user
    avoids that); ``ttl_s`` bounds how long a re-ingested user's changed device can be missed.
    """

    def __init__(self, ttl_s: float, max_users: int = 200_000) -> None:
        self._ttl_s = ttl_s
        self._max_users = max_users
        self._known: OrderedDict[int, _Known] = OrderedDict()

    def recall(self, user_ids: list[int], now: float) -> dict[int, _Known]:
        out = {}
        for user_id in user_ids:
            known = self._known.get(user_id)
            if known is not None and known.until >= now:
                out[user_id] = known
        return out

    def remember(self, planned: Planned, new_ids: set[str], now: float) -> None:
        events = planned.events
        # The group's ids are distinct and the new ones among them: as many means none was replayed.
        replayed = (
            {e.user_id for e in events if e.event_id not in new_ids} if len(new_ids) < len(events) else ()
        )
        until = now + self._ttl_s
        known, device, sex, spans = self._known, planned.user_device, planned.user_sex, planned.spans
        for user_id in {e.user_id for e in events}:
            known.pop(user_id, None)
            if user_id in replayed:
                continue
            span = spans.get(user_id)
            # The span object itself: plan() copies a remembered span before it changes one.
            known[user_id] = _Known(device.get(user_id), sex.get(user_id), span, until)
        while len(self._known) > self._max_users:
            self._known.popitem(last=False)


def _learn_sessions(
    user_id: int,
    sessions: list[Document],
    planned: Planned,
    latest: dict[int, _Span],
    owner: dict[str, int],
    known_spans: dict[int, dict[str, _Span]],
) -> None:
    """A user's stored sessions (in start order): each one's start and owner, all of them as sessions
    the group may extend, the last as the user's latest."""
    spans: dict[str, _Span] = {}
    for session in sessions:
        session_id = session["session_id"]
        planned.stored_start[session_id] = session["start_time"]
        owner[session_id] = user_id
        spans[session_id] = _Span(session_id, session["start_time"], session["end_time"])
    if sessions:
        latest[user_id] = spans[sessions[-1]["session_id"]]
    known_spans[user_id] = spans


async def _read(
    store: DocumentStore,
    user_ids: list[int],
    planned: Planned,
    latest: dict[int, _Span],
    owner: dict[str, int],
    known_spans: dict[int, dict[str, _Span]],
) -> None:
    if not user_ids:
        return
    # Both reads at once: the commit waits on the slower only (each is an executor round trip on
    # DuckDB, a server round trip on MongoDB).
    users, histories = await asyncio.gather(
        store.users_by_ids(user_ids), store.sessions_by_user_ids(user_ids)
    )
    for user_id, doc, sessions in zip(user_ids, users, histories, strict=True):
        _learn_sessions(user_id, sessions, planned, latest, owner, known_spans)
        if doc is not None:
            planned.user_device[user_id] = doc.get("device")
            planned.user_sex[user_id] = doc.get("sex")


async def _read_unless_in_reach(
    store: DocumentStore,
    events: list[Event],
    gap: timedelta,
    planned: Planned,
    latest: dict[int, _Span],
    owner: dict[str, int],
    known_spans: dict[int, dict[str, _Span]],
) -> None:
    """Users remembered by their latest session only, with an event that session does not settle: one
    before its start (it may join, or reach back past, another session) or more than the gap after
    its end (without a sessionId, an older session may end later; naming the latest, it would be
    refused, and a refusal is judged on the stored span: another process may have extended it).
    Their stored sessions are read, so the group sees every session a restarted process would."""
    unsure = list(
        dict.fromkeys(
            e.user_id
            for e in events
            if e.user_id not in known_spans
            and e.user_id in latest
            and not latest[e.user_id].start <= e.timestamp <= latest[e.user_id].end + gap
        )
    )
    if unsure:
        for user_id, sessions in zip(unsure, await store.sessions_by_user_ids(unsure), strict=True):
            _learn_sessions(user_id, sessions, planned, latest, owner, known_spans)


def _without_refused(planned: Planned, in_time_order: list[Event]) -> list[Event]:
    """Drop the refused events from the group (``planned.events``, batch order) and ``in_time_order``."""
    refused = planned.refused
    if not refused:
        return in_time_order
    planned.events = [e for e in planned.events if e.event_id not in refused]
    return [e for e in in_time_order if e.event_id not in refused]


async def plan(
    store: DocumentStore,
    events: list[Event],
    gap: timedelta,
    memory: PlannerMemory | None = None,
    now: float = 0.0,
) -> Planned:
    user_ids = list(dict.fromkeys(e.user_id for e in events))
    planned = Planned(batch=EventBatch(), events=events)
    latest: dict[int, _Span] = {}
    owner: dict[str, int] = {}  # session_id -> its user, for every session this group may touch
    known = memory.recall(user_ids, now) if memory is not None else {}
    # A user whose events name another session than the remembered latest one is read from the store.
    named: dict[int, set[str]] = {}
    for event in events:
        if event.session_id is not None:
            named.setdefault(event.user_id, set()).add(event.session_id)
    for user_id, facts in known.items():
        sessions = named.get(user_id)
        if sessions and (facts.span is None or sessions != {facts.span.session_id}):
            continue
        planned.user_device[user_id], planned.user_sex[user_id] = facts.device, facts.sex
        if facts.span is not None:
            latest[user_id] = _Span(facts.span.session_id, facts.span.start, facts.span.end)
            planned.stored_start[facts.span.session_id] = facts.span.start
            owner[facts.span.session_id] = user_id
    # Per user, the sessions this group can extend: their latest stored (or remembered) one -- all
    # stored ones when read -- and those the group begins or names. The user's latest is the one that
    # starts last, as the store orders them.
    known_spans: dict[int, dict[str, _Span]] = {}
    await _read(
        store, [u for u in user_ids if u not in planned.user_device], planned, latest, owner, known_spans
    )
    await _read_unless_in_reach(store, events, gap, planned, latest, owner, known_spans)
    in_time_order = sorted(events, key=lambda e: e.timestamp)  # stable: batch order among equal times
    if named:
        await refuse_foreign_sessions(store, in_time_order, owner, planned.refused)
        in_time_order = _without_refused(planned, in_time_order)

    seeded: dict[str, int] = {}  # the sessions the group touches, in first-touch order: their user
    for event in in_time_order:
        user_id = event.user_id
        spans = known_spans.get(user_id)
        if spans is None:
            current = latest.get(user_id)
            spans = known_spans[user_id] = {current.session_id: current} if current is not None else {}
        start, end = event.timestamp, _end(event)
        if event.session_id is not None:
            span = spans.get(event.session_id)
            if span is None:
                known_start = planned.stored_start.get(event.session_id)
                span = spans[event.session_id] = _Span(
                    event.session_id, min(start, known_start or start), end
                )
            else:  # refused before it changes anything: the spans, the latest, the user to create
                why = outside_reason(span.session_id, span.start, span.end, start, gap)
                if why is not None:
                    planned.refused[event.event_id] = why
                    continue
        else:
            # The latest-starting known session whose span, widened by the gap, holds the event: a late
            # event (an offline batch) that starts a session of its own leaves the live one the latest.
            span = None
            for candidate in spans.values():
                if candidate.start - gap <= start <= candidate.end + gap and (
                    span is None or _order(candidate) > _order(span)
                ):
                    span = candidate
            if span is None:
                session_id = f"{LIVE_SESSION_PREFIX}{event.event_id}"
                span = spans[session_id] = _Span(session_id, start, end)
        current = latest.get(user_id)
        if start < span.start:
            span.start = start
            if span is current:  # its start moved back: another known session may start last now
                latest[user_id] = current = max(spans.values(), key=_order)
        if end > span.end:
            span.end = end
        if span is not current and (current is None or _order(span) > _order(current)):
            latest[user_id] = span
        planned.session_of[event.event_id] = span.session_id
        seeded.setdefault(span.session_id, user_id)
    in_time_order = _without_refused(planned, in_time_order)
    events = planned.events

    # Unknown users, created from their earliest kept event with the first device their kept events
    # report (in time order).
    created: dict[int, Document] = {}
    for event in in_time_order:
        user_id = event.user_id
        if user_id in planned.user_device:
            continue
        user = created.get(user_id)
        if user is None:
            date = event.timestamp.date()
            user = created[user_id] = {
                "user_id": user_id, "device": event.device, "sex": None, "date": date, "attributes": {}
            }  # fmt: skip
        elif user["device"] is None:
            user["device"] = event.device
    for user_id, user in created.items():
        planned.user_device[user_id], planned.user_sex[user_id] = user["device"], None
    planned.batch.users.extend(created.values())

    for event in events:  # documents in batch order
        doc = _document(event, planned.session_of[event.event_id], planned.user_device[event.user_id])
        (planned.batch.visits if event.type == PAGE_VIEW else planned.batch.interactions).append(doc)
    device_of = planned.user_device
    planned.batch.sessions.extend(
        {"session_id": s, "user_id": u, "device": device_of[u]} for s, u in seeded.items()
    )
    planned.spans = latest
    return planned
