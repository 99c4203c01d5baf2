"""Session-level metrics and the most frequent paths."""

from __future__ import annotations

import strawberry

from schema.enums import Device


@strawberry.type
class DeviceMetrics:
    device: Device | None
    users: int
    sessions: int
    conversions: int
    revenue: float = strawberry.field(
        description="Sum of the converted sessions' value in currency units, rounded to whole cents (2 decimals)."
    )
    avg_session_duration: float | None = strawberry.field(description="Seconds; null without sessions.")


@strawberry.type(description="Over sessions starting in the range.")
class Dashboard:
    users: int = strawberry.field(description="Distinct users with a session in the range.")
    sessions: int
    conversions: int = strawberry.field(description="Converted sessions.")
    revenue: float = strawberry.field(
        description="Sum of the converted sessions' value in currency units, rounded to whole cents (2 decimals)."
    )
    avg_session_duration: float | None = strawberry.field(description="Seconds; null without sessions.")
    by_device: list[DeviceMetrics]

    @strawberry.field(description="Conversions / sessions; 0 without sessions.")
    def conversion_rate(self) -> float:
        return self.conversions / self.sessions if self.sessions else 0.0


@strawberry.type(
    description="A sequence of pages visited in one session, and how many sessions followed it. Sessions "
    "without a page view (only interactions or a conversion) have no path and are not counted."
)
class PathCount:
    path: list[str]
    sessions: int
