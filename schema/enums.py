"""The domain enums of :mod:`gateway.models`, exposed to GraphQL as they are.

The model enums are the single source: their member names are the GraphQL values and their values the
stores' lower-case strings, so resolvers receive model enums and no conversion is written anywhere.
Registering them here only attaches the GraphQL description; import the enums from this module (not
from gateway.models) in schema code, so the registration has always run.
"""

from __future__ import annotations

import strawberry

from gateway.models import Breakdown, Device, Interval, Sex, StepOrder

strawberry.enum(Device, description="The device a user browsed with; OTHER for a value outside the list.")
strawberry.enum(Sex, description="OTHER for a value outside the list.")
strawberry.enum(
    Interval, description="Cohort period of a funnel trend: day, ISO week (from Monday) or month."
)
strawberry.enum(
    StepOrder,
    description=(
        "ORDERED: steps in order, other pages allowed between; STRICT: no other listed step between "
        "(any attempt counts, not only the first); "
        "UNORDERED: every earlier step visited, in any order."
    ),
)
strawberry.enum(Breakdown, description="Split a funnel by a user attribute.")

__all__ = ["Breakdown", "Device", "Interval", "Sex", "StepOrder", "device_of", "sex_of"]


# Stores keep lower-case values; any other stored string reads as OTHER (see gateway.models).
def device_of(value: str | None) -> Device | None:
    return None if value is None else Device(value)


def sex_of(value: str | None) -> Sex | None:
    return None if value is None else Sex(value)
