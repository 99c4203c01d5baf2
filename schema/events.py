"""What happened inside a session: page visits and interactions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.models import Document
from schema.enums import Device, device_of


@strawberry.type(description="One page view.")
class PageVisit:
    event_id: str
    user_id: int
    session_id: str
    page_type: str
    timestamp: datetime = strawberry.field(description="UTC.")
    duration: float = strawberry.field(description="Seconds on the page.")
    device: Device | None

    @classmethod
    def from_doc(cls, doc: Document) -> PageVisit:
        return cls(
            event_id=doc["event_id"],
            user_id=doc["user_id"],
            session_id=doc["session_id"],
            page_type=doc["page_type"],
            timestamp=doc["timestamp"],
            duration=doc["duration"],
            device=device_of(doc.get("device")),
        )


@strawberry.type
class Coordinates:
    x: int
    y: int


@strawberry.type(description="A click, scroll, hover or form entry on a page.")
class Interaction:
    event_id: str
    session_id: str
    page_type: str
    interaction_type: str = strawberry.field(description="click, scroll, hover or form.")
    element: str
    timestamp: datetime = strawberry.field(description="UTC.")
    coordinates: Coordinates | None
    value: str | None = strawberry.field(description="What was typed (form interactions).")

    @classmethod
    def from_doc(cls, doc: Document) -> Interaction:
        xy = doc.get("coordinates")
        return cls(
            event_id=doc["event_id"],
            session_id=doc["session_id"],
            page_type=doc["page_type"],
            interaction_type=doc["interaction_type"],
            element=doc["element"],
            timestamp=doc["timestamp"],
            coordinates=Coordinates(x=xy["x"], y=xy["y"]) if xy else None,
            value=doc.get("value"),
        )
