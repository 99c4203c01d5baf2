"""GraphQL enums. Their values are the store's lower-case strings, so ``Device(doc["device"])`` and
``Device.MOBILE.value`` convert in both directions without a table."""

from __future__ import annotations

from enum import Enum

import strawberry

from gateway import models


@strawberry.enum(description="The device a user browsed with.")
class Device(Enum):
    DESKTOP = "desktop"
    MOBILE = "mobile"
    TABLET = "tablet"


@strawberry.enum
class Sex(Enum):
    FEMALE = "female"
    MALE = "male"


@strawberry.enum(description="Cohort period of a funnel trend: day, ISO week (from Monday) or month.")
class Interval(Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    def to_model(self) -> models.Interval:
        return models.Interval(self.value)


@strawberry.enum(
    description=(
        "ORDERED: steps in order, other pages allowed between; STRICT: no other listed step between; "
        "UNORDERED: every earlier step visited, in any order."
    )
)
class StepOrder(Enum):
    ORDERED = "ordered"
    STRICT = "strict"
    UNORDERED = "unordered"

    def to_model(self) -> models.StepOrder:
        return models.StepOrder(self.value)


@strawberry.enum(description="Split a funnel by a user attribute.")
class Breakdown(Enum):
    DEVICE = "device"
    SEX = "sex"

    def to_model(self) -> models.Breakdown:
        return models.Breakdown(self.value)


# Stores keep lower-case values; .lower() forgives a document written before that rule.
def device_of(value: str | None) -> Device | None:
    return None if value is None else Device(value.lower())


def sex_of(value: str | None) -> Sex | None:
    return None if value is None else Sex(value.lower())
