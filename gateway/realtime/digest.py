"""The newly stored events of one group commit, gathered once for every effect of the commit.

``runtime._effects`` builds three things from the same events: the version tokens they change
(:mod:`gateway.realtime.invalidation`), the live aggregates (:mod:`gateway.realtime.aggregates`) and the
published message. Each used to walk the whole group and test every event against the new ids; the walk
is now made once, here, and keeps only what is per entity (who and which session, their latest event).
What each effect derives from it stays in its module.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from gateway.realtime.captured import Event
from gateway.realtime.enrichment import Planned


@dataclass(frozen=True, slots=True)
class NewEvents:
    events: list[Event]  # the new events, in the group's order
    user_latest: dict[int, Event]  # user -> their latest new event (the last of equal timestamps)
    session_latest: dict[str, Event]  # session -> its latest new event (the first of equal timestamps)
    session_first: dict[str, datetime]  # session -> the timestamp of its earliest new event


def gather(planned: Planned, new_ids: Collection[str]) -> NewEvents:
    """The new events of ``planned`` (``new_ids``: what the store said it stored), one pass."""
    events: list[Event] = []
    user_latest: dict[int, Event] = {}
    session_latest: dict[str, Event] = {}
    session_first: dict[str, datetime] = {}
    session_of = planned.session_of
    for event in planned.events:
        event_id = event.event_id
        if event_id not in new_ids:
            continue
        events.append(event)
        stamp = event.timestamp
        previous = user_latest.get(event.user_id)
        if previous is None or previous.timestamp <= stamp:
            user_latest[event.user_id] = event
        session_id = session_of[event_id]
        latest = session_latest.get(session_id)
        if latest is None:
            session_latest[session_id] = event
            session_first[session_id] = stamp
        elif stamp > latest.timestamp:
            session_latest[session_id] = event
        elif stamp < session_first[session_id]:
            session_first[session_id] = stamp
    return NewEvents(events, user_latest, session_latest, session_first)
