"""A user's path through the site against the dataset's default funnel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway.security.analysis import price
from schema.events import PageVisit

if TYPE_CHECKING:
    from schema.user import User


@strawberry.type(description="Every page visit of a user, and how far along the default funnel they got.")
class Journey:
    user_id: int
    visits: list[PageVisit] = strawberry.field(
        description="All the user's page visits in time order.", metadata=price(list_size=10)
    )
    furthest_step: str | None = strawberry.field(
        description="Last default-funnel step reached (ordered matching, no window); null if none."
    )
    converted: bool = strawberry.field(description="Reached the last step of the default funnel.")
    time_to_convert_seconds: float | None = strawberry.field(
        description="Seconds from the first step to the last; null unless converted."
    )

    @strawberry.field
    def user(self) -> Annotated[User, strawberry.lazy("schema.user")]:
        from schema.user import User

        return User(id=self.user_id)
