"""Input objects and their conversion to the store's records."""

from __future__ import annotations

from datetime import date

import strawberry

from gateway.models import UserFilter
from schema.enums import Device, Sex


@strawberry.input(description="Who and when: user attributes, and an inclusive day range.")
class FunnelFilter:
    device: Device | None = None
    sex: Sex | None = None
    start: date | None = strawberry.field(default=None, description="First day included.")
    end: date | None = strawberry.field(default=None, description="Last day included.")

    def to_model(self) -> UserFilter:
        return UserFilter(
            device=self.device.value if self.device else None,
            sex=self.sex.value if self.sex else None,
            start=self.start,
            end=self.end,
        )


def user_filter(value: FunnelFilter | None) -> UserFilter:
    return value.to_model() if value else UserFilter()


@strawberry.input(description="An inclusive day range; a missing end is open.")
class DateRange:
    start: date | None = None
    end: date | None = None


@strawberry.input(
    description="Restrict look-alike users by their embedding metadata: what was true when `funnelgate "
    "embed` last ran, not since."
)
class SimilarUserFilter:
    device: Device | None = strawberry.field(
        default=None, description="The look-alike's device in its user document at the last embed."
    )
    converted: bool | None = strawberry.field(
        default=None,
        description="Whether the look-alike had visited the outcome step (the default funnel's last) at "
        "the last embed. A conversion since then is not seen here: `user { converted }` is current.",
    )
