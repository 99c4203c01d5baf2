"""A browsing session; its visits and interactions come from per-request loaders."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import strawberry

from gateway.analytics.pages import DEFAULT_PAGE, PAGE, check_page, page_of
from gateway.models import from_fields
from gateway.stores.money import cents
from schema.enums import Device
from schema.events import Interaction, PageVisit
from schema.paging import Offset, paged_list

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
        description=(
            "How many interactions the session has (clicks, scrolls, hovers, form entries and conversions): "
            "all of them, whatever page `interactions` answers."
        )
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
        description="How many page visits the session has: all of them, whatever page `visits` and "
        "`pagesVisited` answer."
    )
    def visit_count(self) -> int:
        return len(self.stored_pages)

    @strawberry.field(description=f"Page types in visit order. {PAGE}", metadata=paged_list(DEFAULT_PAGE))
    def pages_visited(
        self,
        info: strawberry.Info,
        first: int | None = None,
        last: int | None = None,
        offset: Offset = None,
    ) -> list[str]:
        max_page = info.context.services.settings.max_page_size
        return page_of(self.stored_pages, first, last, offset, max_page)

    @strawberry.field(description=f"Page visits in time order. {PAGE}", metadata=paged_list(DEFAULT_PAGE))
    async def visits(
        self,
        info: strawberry.Info,
        first: int | None = None,
        last: int | None = None,
        offset: Offset = None,
    ) -> list[PageVisit]:
        max_page = info.context.services.settings.max_page_size
        check_page(first, last, offset, max_page)  # a bad page is refused before the visits are read
        docs = await info.context.loaders.visits_by_session.load(self.id)
        return [from_fields(PageVisit, d) for d in page_of(docs or [], first, last, offset, max_page)]

    @strawberry.field(
        description=f"Interactions in time order. {PAGE} `totalInteractions` counts them all.",
        metadata=paged_list(DEFAULT_PAGE),
    )
    async def interactions(
        self,
        info: strawberry.Info,
        first: int | None = None,
        last: int | None = None,
        offset: Offset = None,
    ) -> list[Interaction]:
        max_page = info.context.services.settings.max_page_size
        check_page(first, last, offset, max_page)  # a bad page is refused before the interactions are read
        docs = await info.context.loaders.interactions_by_session.load(self.id)
        return [from_fields(Interaction, d) for d in page_of(docs or [], first, last, offset, max_page)]
