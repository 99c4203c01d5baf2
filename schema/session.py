"""A browsing session; its visits and interactions come from per-request loaders."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway.analytics.journeys import DEFAULT_VISITS, PAGE, visit_page
from gateway.models import from_fields
from gateway.security.field_rules import price
from gateway.stores.money import cents
from schema.enums import Device
from schema.events import Interaction, PageVisit

if TYPE_CHECKING:
    from schema.user import User


@strawberry.type
class Session:
    id: str
    user_id: int
    start_time: datetime = strawberry.field(description="UTC.")
    end_time: datetime = strawberry.field(description="UTC.")
    device: Device | None
    # The page types in visit order as stored; `pagesVisited` answers a page of them.
    stored_pages: strawberry.Private[list[str]]
    total_interactions: int = strawberry.field(
        description="How many entries `interactions` lists: clicks, scrolls, hovers, form entries and conversions."
    )
    converted: bool
    conversion_value: float = strawberry.field(
        description=(
            "The session's conversions summed, in currency units (not cents), to at most 2 decimals."
        )
    )

    def __post_init__(self) -> None:
        # A sum of float amounts (0.1 + 1.1 = 1.2000000000000002), rounded to whole cents as revenue is.
        self.conversion_value = cents(self.conversion_value)

    @strawberry.field
    def user(self) -> Annotated[User, strawberry.lazy("schema.user")]:
        from schema.user import User

        return User(id=self.user_id)

    @strawberry.field(
        description=f"Page types in visit order. {PAGE}", metadata=price(list_size=DEFAULT_VISITS)
    )
    def pages_visited(
        self, info: strawberry.Info, first: int | None = None, last: int | None = None
    ) -> list[str]:
        return visit_page(self.stored_pages, first, last, info.context.services.settings.max_page_size)

    @strawberry.field(
        description=f"Page visits in time order. {PAGE}", metadata=price(list_size=DEFAULT_VISITS)
    )
    async def visits(
        self, info: strawberry.Info, first: int | None = None, last: int | None = None
    ) -> list[PageVisit]:
        max_page = info.context.services.settings.max_page_size
        visit_page((), first, last, max_page)  # a bad page is refused before the visits are read
        docs = await info.context.loaders.visits_by_session.load(self.id)
        return [from_fields(PageVisit, d) for d in visit_page(docs or [], first, last, max_page)]

    @strawberry.field(description="Interactions in time order.", metadata=price(list_size=15))
    async def interactions(self, info: strawberry.Info) -> list[Interaction]:
        docs = await info.context.loaders.interactions_by_session.load(self.id)
        return [from_fields(Interaction, d) for d in docs or []]
