"""Realtime types: the event input of ``trackEvents``, its result, the admin results, and what the
subscriptions send (``realtimeMetrics``, ``userActivity``; ``funnelUpdates`` sends ``Funnel``).

``EventInput`` is deliberately loose (strings, and JSON for ``timestamp`` and ``value``, which take a
string or a number): the rules live in gateway/realtime/events.py and apply to ``POST /events`` and
``trackEvents`` alike, so a bad event is rejected on its own, with its index and reason, instead of
failing the whole mutation.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.scalars import JSON

from gateway.realtime.aggregates import NO_DEVICE, Snapshot
from gateway.realtime.capture import CaptureResult
from gateway.roles import Role, requires
from schema.enums import Device, device_of


@strawberry.input
class CoordinatesInput:
    x: int
    y: int


_WIRE_NAMES = {
    "type": "type",
    "event_id": "eventId",
    "user_id": "userId",
    "session_id": "sessionId",
    "page_type": "pageType",
    "timestamp": "timestamp",
    "duration": "duration",
    "device": "device",
    "interaction_type": "interactionType",
    "element": "element",
    "coordinates": "coordinates",
    "value": "value",
}


@strawberry.input(description="One event, the same fields as a POST /events item (README: Event format).")
class EventInput:
    type: str | None = strawberry.field(
        default=strawberry.UNSET, description="page_view, interaction or conversion."
    )
    event_id: str | None = strawberry.field(
        default=strawberry.UNSET, description="For idempotent retries; generated when absent."
    )
    user_id: int | None = strawberry.UNSET
    session_id: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=(
            "Absent: continues the user's session (30 min gap). Named: joins that session, or starts "
            "it when none exists; an event more than the gap outside the session's span is rejected."
        ),
    )
    page_type: str | None = strawberry.UNSET
    timestamp: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="ISO-8601 with a UTC offset (2026-03-01T10:00:00Z) or epoch seconds; absent: when it arrives.",
    )
    duration: float | None = strawberry.field(
        default=strawberry.UNSET, description="page_view: seconds on the page."
    )
    device: str | None = strawberry.field(
        default=strawberry.UNSET, description="desktop, mobile, tablet or other (any case)."
    )
    interaction_type: str | None = strawberry.field(
        default=strawberry.UNSET, description="click, scroll, hover or form."
    )
    element: str | None = strawberry.UNSET
    coordinates: CoordinatesInput | None = strawberry.UNSET
    value: JSON | None = strawberry.field(
        default=strawberry.UNSET,
        description="A form interaction's text, or a conversion's amount (a number or a decimal string).",
    )

    def to_wire(self) -> dict[str, Any]:
        """The event as POST /events would carry it (unset fields absent)."""
        out: dict[str, Any] = {}
        for name, wire in _WIRE_NAMES.items():
            value = getattr(self, name)
            if value is strawberry.UNSET or value is None:
                continue
            out[wire] = {"x": value.x, "y": value.y} if isinstance(value, CoordinatesInput) else value
        return out


@strawberry.type(description="An event that was not accepted, and why.")
class RejectedEvent:
    index: int = strawberry.field(description="Its position in the batch (0-based).")
    event_id: str | None
    reason: str


@strawberry.type(description="What trackEvents stored. Every accepted id is durably stored.")
class TrackEventsResult:
    accepted: list[str] = strawberry.field(description="Ids of the valid events, stored now or before.")
    duplicates: list[str] = strawberry.field(
        description="Accepted ids that changed nothing (already stored)."
    )
    rejected: list[RejectedEvent]

    @classmethod
    def from_result(cls, result: CaptureResult) -> TrackEventsResult:
        return cls(
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=[
                RejectedEvent(index=r.index, event_id=r.event_id, reason=r.reason) for r in result.rejected
            ],
        )


class CacheScope(str, Enum):
    ALL = "all"
    FUNNELS = "funnels"
    DASHBOARDS = "dashboards"
    TOP_PATHS = "top_paths"
    ENTITIES = "entities"
    SENTIMENT = "sentiment"
    SIMILAR_USERS = "similar_users"
    RESPONSES = "responses"


strawberry.enum(
    CacheScope, description="Which cached entries invalidateCache drops (whole responses always go too)."
)


@strawberry.type
class InvalidationResult:
    scope: CacheScope
    keys_removed: int


@strawberry.type(description="funnel_analytics rows rewritten for the range, for the default funnel.")
class RefreshResult:
    start: date
    end: date
    steps: list[str]
    rows: int


@strawberry.type(description="The default funnel after setDefaultFunnel.")
class DefaultFunnelResult:
    steps: list[str] = strawberry.field(
        description=(
            "The default funnel this change made: the pinned steps, or those derived from the page views."
        )
    )
    derived: bool = strawberry.field(
        description="True when no default is pinned: it is derived from the page views (and moves with them)."
    )
    revision: str = strawberry.field(
        description=(
            'The default\'s revision: it names this change in logs and cache keys. Unchanged ("" when none '
            "was ever pinned) for `steps: []` while no default is stored: nothing changed."
        )
    )


@strawberry.type(description="One event as it arrived (userActivity).")
class ActivityEvent:
    event_id: str
    type: str
    user_id: int
    session_id: str
    page_type: str
    timestamp: datetime = strawberry.field(description="UTC.")
    device: Device | None = strawberry.field(description="The user's device (what is stored).")
    reported_device: Device | None = strawberry.field(description="The device the event itself reported.")
    duration: float | None
    interaction_type: str | None
    element: str | None
    # The same personal data as Interaction.value, so the same mask: a subscription is no way around it.
    value: str | None = strawberry.field(
        description="What was typed (form interactions). Personal data: null below the admin role.",
        metadata=requires(Role.ADMIN, masked=True),
    )

    @classmethod
    def from_live(cls, event: dict[str, Any]) -> ActivityEvent:
        return cls(
            event_id=event["eventId"],
            type=event["type"],
            user_id=event["userId"],
            session_id=event["sessionId"],
            page_type=event["pageType"],
            timestamp=datetime.fromisoformat(event["timestamp"]),
            device=device_of(event.get("device")),
            reported_device=device_of(event.get("reportedDevice")),
            duration=event.get("duration") if event["type"] == "page_view" else None,
            interaction_type=event.get("interactionType"),
            element=event.get("element"),
            value=event.get("value"),
        )


def _device(counted: str) -> Device | None:
    return None if counted == NO_DEVICE else device_of(counted)


_REVENUE = (
    "the conversions' amounts (their `value`, e.g. 12.8 for 12.80) timestamped in the last 60 s, "
    "counted as `eventsPerMinute` is: the minute now running plus the share of the previous minute still "
    "inside the window. Rounded to the cent; 0 when nothing was bought."
)


@strawberry.type
class LiveDevice:
    device: Device | None = strawberry.field(description="The users' device; null for users without one.")
    active_users: int
    events_per_minute: float
    revenue_per_minute: float = strawberry.field(
        description=f"Revenue per minute from these users: {_REVENUE}"
    )


@strawberry.type
class LiveStepDevice:
    device: Device | None = strawberry.field(description="The users' device; null for users without one.")
    users_today: int


@strawberry.type(description="A step of the default funnel today (UTC), counted live.")
class LiveStep:
    name: str
    users_today: int = strawberry.field(
        description="Unique users who viewed it today: a HyperLogLog estimate (standard error 0.81 %)."
    )
    by_device: list[LiveStepDevice]


@strawberry.type(description="Live metrics from Redis (gateway/realtime/aggregates.py).")
class RealtimeMetrics:
    at: datetime = strawberry.field(description="When the snapshot was read (UTC).")
    active_users: int = strawberry.field(
        description=(
            "Users with an event that arrived in the last minute (by arrival time; an event timestamped "
            "more than 5 minutes before it arrived, e.g. from an offline batch, makes no one active)."
        )
    )
    events_per_minute: float = strawberry.field(
        description=(
            "Events timestamped in the last 60 s, estimated from per-minute counters: the minute now "
            "running plus the share of the previous minute still inside the window (so an event counts, "
            "fading, for up to 2 minutes; `activeUsers` counts by exact arrival time)."
        )
    )
    conversions_per_minute: float
    revenue_per_minute: float = strawberry.field(description=f"Revenue per minute: {_REVENUE}")
    by_device: list[LiveDevice]
    steps: list[LiveStep]

    @classmethod
    def from_snapshot(cls, snap: Snapshot) -> RealtimeMetrics:
        return cls(
            at=snap.at,
            active_users=snap.active_users,
            events_per_minute=snap.events_per_minute,
            conversions_per_minute=snap.conversions_per_minute,
            revenue_per_minute=snap.revenue_per_minute,
            by_device=[
                LiveDevice(
                    device=_device(d.device),
                    active_users=d.active_users,
                    events_per_minute=d.events_per_minute,
                    revenue_per_minute=d.revenue_per_minute,
                )
                for d in snap.by_device
            ],
            steps=[
                LiveStep(
                    name=s.name,
                    users_today=s.users_today,
                    by_device=[LiveStepDevice(device=_device(d), users_today=n) for d, n in s.by_device],
                )
                for s in snap.steps
            ],
        )
