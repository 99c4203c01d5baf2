"""What happened inside a session: page visits and interactions."""

from __future__ import annotations

from datetime import datetime

import strawberry

from gateway.roles import Role, requires
from schema.enums import Device


@strawberry.type(description="One page view.")
class PageVisit:
    event_id: str
    user_id: int
    session_id: str
    page_type: str
    timestamp: datetime = strawberry.field(description="UTC.")
    duration: float = strawberry.field(description="Seconds on the page.")
    device: Device | None


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
    value: str | None = strawberry.field(
        description="What was typed (form interactions). Personal data: null below the admin role.",
        metadata=requires(Role.ADMIN, masked=True),
    )
