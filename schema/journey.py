"""A user's path through the site against the dataset's default funnel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import strawberry

from gateway.analytics.journeys import summarise_journey
from gateway.analytics.pages import DEFAULT_PAGE, PAGE, page_of
from gateway.models import Document, from_fields
from schema.events import PageVisit
from schema.paging import Offset, paged_list

if TYPE_CHECKING:
    from schema.user import User


@strawberry.type(description="Every page visit of a user, and how far along the default funnel they got.")
class Journey:
    user_id: int
    # Every visit as stored: `visits` answers a page of them; the progress below is summarised from all
    # of them (never the page) when asked, along the default funnel of that moment (resolved once per
    # request), so asking only for visits reads no default.
    stored_visits: strawberry.Private[list[Document]]

    @strawberry.field(
        description=f"The user's page visits in time order. {PAGE}",
        metadata=paged_list(DEFAULT_PAGE),
    )
    def visits(
        self,
        info: strawberry.Info,
        first: int | None = None,
        last: int | None = None,
        offset: Offset = None,
    ) -> list[PageVisit]:
        max_page = info.context.services.settings.max_page_size
        return [from_fields(PageVisit, v) for v in page_of(self.stored_visits, first, last, offset, max_page)]

    @strawberry.field(
        description="How many page visits the user has: all of them, whatever page `visits` answers."
    )
    def visit_count(self) -> int:
        return len(self.stored_visits)

    @strawberry.field(
        description="Last default-funnel step reached (ordered matching, no window); null if none."
    )
    async def furthest_step(self, info: strawberry.Info) -> str | None:
        return (await self._progress(info))["furthest_step"]

    @strawberry.field(description="Reached the last step of the default funnel.")
    async def converted(self, info: strawberry.Info) -> bool:
        return bool((await self._progress(info))["converted"])

    @strawberry.field(description="Seconds from the first step to the last; null unless converted.")
    async def time_to_convert_seconds(self, info: strawberry.Info) -> float | None:
        return (await self._progress(info))["time_to_convert_seconds"]

    async def _progress(self, info: strawberry.Info) -> dict[str, Any]:
        return summarise_journey(self.stored_visits, await info.context.loaders.default_steps.get())

    @strawberry.field
    def user(self) -> Annotated[User, strawberry.lazy("schema.user")]:
        from schema.user import User

        return User(id=self.user_id)
