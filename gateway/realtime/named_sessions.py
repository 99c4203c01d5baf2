"""Which events may join the session they name (``sessionId``): enrichment's two refusals.

* **Its user's own.** Session ids are global: an event naming another user's session -- stored, or
  begun by another user's earlier event of the group -- is refused, as is one naming an ``rt-`` id
  the gateway has not started, or one the group's sessionless event ``X`` starts (``rt-X``) from a
  time before ``X`` (:func:`refuse_foreign_sessions`).
* **Within its time.** An event naming a session that exists -- stored, remembered, or begun by an
  earlier event of the group -- joins it only when its timestamp lies within the session's span
  widened by the gap, both bounds inclusive: ``start - gap <= timestamp <= end + gap``, the span as
  the group's earlier events (in time order) have extended it. It is the rule a sessionless event
  joins a session by, so a named event goes nowhere a sessionless one at its time could not, and a
  session grows only in steps of at most the gap (plus a page view's duration). Otherwise the event
  is refused (:func:`outside_reason`): one event of today naming a session of 2015 would stretch it
  over eleven years and every average duration with it. Judged in time order within a group: of two
  events reaching back before the start, the earlier is judged against a start the later has not
  moved yet (in separate groups, the later first, both can join). A named session that does not
  exist yet is started by its earliest event of the group, whatever its time.

A refused event is reported to its client (rejected, with its index and the reason) and changes
nothing: no document, no user created, no session extended, nothing remembered.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.realtime.captured import Event
from gateway.stores.contracts import DocumentStore

LIVE_SESSION_PREFIX = "rt-"  # the sessions enrichment starts: rt-{the eventId of their first event}


async def refuse_foreign_sessions(
    store: DocumentStore, in_time_order: list[Event], owner: dict[str, int], refused: dict[str, str]
) -> None:
    """Refuse every event that names a session of another user: stored (its owner read here, one store
    read for the named sessions not known yet) or begun by another user's earlier event of the group.

    A client may not start a session under the gateway's own prefix: ``rt-{eventId}`` is the id the
    gateway gives the session a sessionless event starts, and a client holding one first (for one user)
    would receive another user's events into it when that event arrives (in this group or a later one)."""
    unknown = list(
        dict.fromkeys(e.session_id for e in in_time_order if e.session_id and e.session_id not in owner)
    )
    if unknown:
        for doc in await store.sessions_by_ids(unknown):
            if doc is not None:
                owner[doc["session_id"]] = doc["user_id"]
    # The sessions this group may start for sessionless events, and the events that would start them.
    may_start = {f"{LIVE_SESSION_PREFIX}{e.event_id}": e for e in in_time_order if e.session_id is None}
    for event in in_time_order:
        session_id = event.session_id
        if session_id is None:
            continue
        claimed = owner.get(session_id)
        if claimed is None and session_id.startswith(LIVE_SESSION_PREFIX):
            starter = may_start.get(session_id)
            if starter is None:
                refused[event.event_id] = (
                    f"sessionId {session_id} names no session, and ids starting with "
                    f"{LIVE_SESSION_PREFIX} are the sessions the gateway starts"
                )
                continue
            if event.timestamp < starter.timestamp:
                # Else it would begin that session first, as far back as it likes, and the starting
                # event, finding no session in reach, would begin another under the same id.
                refused[event.event_id] = (
                    f"sessionId {session_id} is the session event {starter.event_id} starts, at "
                    f"{_utc(starter.timestamp)}; this event ({_utc(event.timestamp)}) comes before it"
                )
                continue
            claimed = starter.user_id
        if claimed is None:
            claimed = owner[session_id] = event.user_id
        if claimed != event.user_id:
            refused[event.event_id] = f"sessionId {session_id} is another user's session"


def _utc(moment: datetime) -> str:
    return f"{moment.isoformat()}Z"  # enrichment's times are naive UTC


def outside_reason(
    session_id: str, start: datetime, end: datetime, timestamp: datetime, gap: timedelta
) -> str | None:
    """Why an event at ``timestamp`` may not join the session ``session_id`` spanning ``start`` ..
    ``end``; None when it may (within the gap of the span, bounds included)."""
    if start - gap <= timestamp <= end + gap:
        return None
    return (
        f"sessionId {session_id} spans {_utc(start)} .. {_utc(end)}; this event ({_utc(timestamp)}) is "
        f"more than the session gap (FUNNEL_SESSION_GAP_S = {gap.total_seconds():g} s) outside it: "
        "omit sessionId to let the gateway sessionise it, or name another session"
    )
