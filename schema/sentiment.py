"""Sentiment of form texts on a page type."""

from __future__ import annotations

from datetime import date

import strawberry


@strawberry.type(
    description=(
        "VADER sentiment of the free text typed into forms on a page type (on a day, if given); values "
        "picked from fixed choices (selects, ratings, promo codes) are not scored."
    )
)
class Sentiment:
    page_type: str
    date: date | None
    texts: int = strawberry.field(description="Non-empty free-text form values scored.")
    mean_compound: float | None = strawberry.field(
        description="Mean compound score in [-1, 1]; null without texts."
    )
    positive: int = strawberry.field(description="Texts with compound >= 0.05.")
    neutral: int
    negative: int = strawberry.field(description="Texts with compound <= -0.05.")
