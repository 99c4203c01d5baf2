"""How newly stored realtime events change their sessions: one rule, shared by every adapter.

``DocumentStore.record_events`` inserts events idempotently and then folds only the *newly inserted*
ones into ``user_sessions`` with :func:`session_deltas` (a retried event changes nothing). Per session:

* ``start_time`` = min(stored start, earliest new event), ``end_time`` = max(stored end, latest new
  event's end: a visit ends at timestamp + its duration in whole milliseconds, an interaction at its
  timestamp);
* ``pages_visited`` is the page types of ALL the session's visits in (timestamp, event_id) order, however
  the events arrived. Cheap when they arrive in order: the new visits' pages are appended when the
  adapter knows the earliest of them comes after every stored visit -- after the stored ``end_time``
  (:meth:`SessionDelta.appends_after`; every stored visit starts at or before it), or, on DuckDB, after
  the latest visit it remembers writing. Otherwise the list is rebuilt from the session's stored
  visits (:func:`pages_in_order`);
* ``total_interactions`` += new ``user_interactions`` documents, conversions included: it counts what
  ``Session.interactions`` lists, as CSV ingest counts every interaction of a session;
* ``converted`` becomes true with a conversion (``interaction_type`` ``"conversion"``) and
  ``conversion_value`` adds its amount (the interaction's ``value``, a decimal string).

A session that does not exist yet is created from its seed in ``EventBatch.sessions`` (session_id,
user_id, device) with these values over an empty session. A user of ``EventBatch.users`` is created only
with at least one newly inserted event (:func:`users_with_new_events`): a duplicate changes nothing,
even when it names a user the store does not know.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway.errors import BadInput
from gateway.models import Document, EventBatch

CONVERSION = "conversion"  # the interaction_type a conversion event is stored with


# Slots: made per session of every live write, and DuckDB keeps one per pending session (tens of
# thousands) and updates it per write: attributes inline in the object are fewer memory reads.
@dataclass(slots=True)
class SessionDelta:
    session_id: str
    user_id: int
    device: str | None
    start_time: datetime
    end_time: datetime
    pages: list[str] = field(default_factory=list)
    interactions: int = 0
    converted: bool = False
    conversion_value: float = 0.0
    first_visit: datetime | None = None  # the earliest new visit's timestamp (None: no new visit)
    last_visit: datetime | None = None  # the latest one

    def appends_after(self, stored_end: datetime | None) -> bool:
        """True when appending ``pages`` to a session stored with this end keeps the visit-time order:
        no new visit, or every one after the stored end (a stored visit starts at or before the end;
        equal times would order by event_id, so they rebuild)."""
        return self.first_visit is None or stored_end is None or self.first_visit > stored_end

    def as_new_session(self) -> Document:
        """The session document when no session of this id is stored yet."""
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "device": self.device,
            "pages_visited": list(self.pages),
            "total_interactions": self.interactions,
            "converted": self.converted,
            "conversion_value": self.conversion_value,
        }

    def merged_into(self, stored: Document | None, visits: list[Document]) -> Document:
        """The stored session with this delta folded in (the reference the adapters implement);
        ``visits``: every visit of the session once the new ones are stored."""
        if stored is None:
            return self.as_new_session()
        return {
            **stored,
            "start_time": min(stored["start_time"], self.start_time),
            "end_time": max(stored["end_time"], self.end_time),
            "pages_visited": (
                [*stored.get("pages_visited", []), *self.pages]
                if self.appends_after(stored["end_time"])
                else pages_in_order(visits)
            ),
            "total_interactions": int(stored.get("total_interactions") or 0) + self.interactions,
            "converted": bool(stored.get("converted")) or self.converted,
            "conversion_value": float(stored.get("conversion_value") or 0.0) + self.conversion_value,
        }


def pages_in_order(visits: Iterable[Document]) -> list[str]:
    """A session's ``pages_visited`` from its visits: by (timestamp, event_id)."""
    return [v["page_type"] for v in sorted(visits, key=lambda v: (v["timestamp"], v["event_id"]))]


def conversion_amount(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise BadInput(f"a conversion's value must be a decimal amount, got {value!r}") from None


def session_deltas(batch: EventBatch, new_ids: Collection[str]) -> list[SessionDelta]:
    """One delta per session that got at least one new event, in first-seen order: the first document
    of each new id counts (visits before interactions), a repeat is skipped. One pass over each list,
    with no call per event: it runs on the store's thread inside every live write."""
    seeds = {seed["session_id"]: seed for seed in batch.sessions}
    deltas: dict[str, SessionDelta] = {}
    visited: dict[str, list[tuple[datetime, str, str]]] = {}  # per session: (time, event_id, page)
    seen: set[str] = set()
    for visit in batch.visits:
        event_id = visit["event_id"]
        if event_id in seen or event_id not in new_ids:
            continue
        seen.add(event_id)
        sid, ts = visit["session_id"], visit["timestamp"]
        duration = visit.get("duration")
        if duration:
            # Whole milliseconds of it, as timestamps are kept (validation) and as MongoDB stores a
            # date: a 1.2345 s view must not end its session at .234500 on DuckDB and .234 on MongoDB.
            spent = timedelta(seconds=float(duration))
            end = ts + (spent - timedelta(microseconds=spent.microseconds % 1000))
        else:
            end = ts
        delta = deltas.get(sid)
        if delta is None:
            seed: Document = seeds.get(sid) or visit
            deltas[sid] = SessionDelta(
                sid, int(seed["user_id"]), seed.get("device"), ts, end, first_visit=ts, last_visit=ts
            )
            visited[sid] = [(ts, event_id, visit["page_type"])]
            continue
        # Strict comparisons: on a tie the earlier value stays, as min() and max() keep it.
        if ts < delta.start_time:
            delta.start_time = ts
        if end > delta.end_time:
            delta.end_time = end
        if ts < delta.first_visit:  # set by the session's first visit, above
            delta.first_visit = ts
        if ts > delta.last_visit:
            delta.last_visit = ts
        visited[sid].append((ts, event_id, visit["page_type"]))
    for interaction in batch.interactions:
        event_id = interaction["event_id"]
        if event_id in seen or event_id not in new_ids:
            continue
        seen.add(event_id)
        sid, ts = interaction["session_id"], interaction["timestamp"]
        delta = deltas.get(sid)
        if delta is None:
            seed = seeds.get(sid) or interaction
            delta = deltas[sid] = SessionDelta(sid, int(seed["user_id"]), seed.get("device"), ts, ts)
        else:
            if ts < delta.start_time:
                delta.start_time = ts
            if ts > delta.end_time:
                delta.end_time = ts
        delta.interactions += 1
        if interaction.get("interaction_type") == CONVERSION:
            delta.converted = True
            delta.conversion_value += conversion_amount(interaction.get("value"))
    for sid, pages in visited.items():
        deltas[sid].pages = [pages[0][2]] if len(pages) == 1 else [page for _, _, page in sorted(pages)]
    return list(deltas.values())


def users_with_new_events(batch: EventBatch, new_ids: Collection[str]) -> list[Document]:
    """The documents of ``batch.users`` to insert: those with at least one newly inserted event. An
    unknown user named only by duplicates (an eventId reused under another userId, a replay) is not
    created: a duplicate changes nothing. An event's user is the one of the first document of its id
    (what was inserted), as in :func:`session_deltas`."""
    if not batch.users:
        return []
    seen: set[str] = set()
    owners: set[Any] = set()
    for doc in (*batch.visits, *batch.interactions):
        event_id = doc["event_id"]
        if event_id not in seen and event_id in new_ids:
            seen.add(event_id)
            owners.add(doc["user_id"])
    return [user for user in batch.users if user["user_id"] in owners]


def new_event_ids(batch: EventBatch, stored: Collection[str]) -> list[str]:
    """The batch's event ids that are in ``stored`` (the newly inserted ones), visits first, batch order,
    each once."""
    ids = [d["event_id"] for d in batch.visits]
    ids += [d["event_id"] for d in batch.interactions]
    return [event_id for event_id in dict.fromkeys(ids) if event_id in stored]
