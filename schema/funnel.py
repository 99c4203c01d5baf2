"""Funnel results: steps, breakdowns and trend points (built from gateway.models records by from_fields)."""

from __future__ import annotations

from datetime import date

import strawberry


@strawberry.type(description="One funnel step. Rates are fractions in [0, 1].")
class FunnelStep:
    name: str = strawberry.field(description="The step's page type.")
    users: int = strawberry.field(description="Distinct users who reached this step.")
    conversion_rate: float = strawberry.field(
        description=(
            "Users / previous step's users. Step 1: 1 when anyone reached it, 0 when nobody did; "
            "any step after a step nobody reached: 0."
        )
    )
    drop_off_rate: float = strawberry.field(description="1 - conversionRate after step 1; 0 for step 1.")
    conversion_from_start: float = strawberry.field(description="Users / step 1's users.")
    avg_time_spent: float | None = strawberry.field(
        description="Mean per-user total seconds on this step's page, over users who reached it."
    )
    median_time_to_convert: float | None = strawberry.field(
        description="Median seconds from the funnel's start to reaching this step."
    )


@strawberry.type(description="The funnel for the users with one breakdown value.")
class FunnelBreakdown:
    key: str | None = strawberry.field(description="The device or sex value; null for users without one.")
    steps: list[FunnelStep]
    overall_conversion_rate: float


@strawberry.type
class Funnel:
    steps: list[FunnelStep]
    overall_conversion_rate: float = strawberry.field(description="Last step's users / first step's users.")
    breakdowns: list[FunnelBreakdown] = strawberry.field(
        description="One entry per breakdown value (sorted, null last); empty without `breakdown`."
    )


@strawberry.type(
    description=(
        "The funnel of the users whose funnel started in one period. A period nobody started in is a "
        "point too: 0 users at every step, every rate 0 except dropOffRate 1 after step 1 (as for any "
        "step after one nobody reached), null times."
    )
)
class FunnelTrendPoint:
    period: date = strawberry.field(
        description="First day of the period (UTC): the day, the Monday of its ISO week, or the 1st of its month."
    )
    steps: list[FunnelStep]
    conversion_rate: float = strawberry.field(
        description=(
            "Overall conversion rate of this cohort: last step's users / first step's users; "
            "0 when nobody started in the period (no cohort, not a cohort that all dropped off)."
        )
    )
