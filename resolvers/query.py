"""Query root: each resolver maps arguments to a loader or service call and returns schema types."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from gateway.analytics.sentiment import page_sentiment
from gateway.cache.responses import volatile
from gateway.errors import NotFound
from gateway.funnel_service import FunnelService, check_page_size, check_range
from gateway.services import check_health
from loaders.similar_users import DEFAULT_LIMIT, SimilarQuery
from schema.dashboard import Dashboard, PathCount
from schema.enums import Breakdown, Interval, StepOrder
from schema.funnel import Funnel, FunnelTrendPoint
from schema.health import Health
from schema.inputs import DateRange, FunnelFilter, SimilarUserFilter, user_filter
from schema.journey import Journey
from schema.sentiment import Sentiment
from schema.session import Session
from schema.user import SimilarUser, User, UserConnection, decode_cursor, similar_users

DEFAULT_PAGE = 100
Steps = Annotated[
    list[str] | None,
    strawberry.argument(description="Page types in funnel order; omitted = the dataset's default funnel."),
]
Window = Annotated[
    int | None,
    strawberry.argument(description="A step counts only within this many seconds of the funnel's start."),
]


async def _require_user(info: strawberry.Info, user_id: int) -> None:
    if await info.context.loaders.users.load(user_id) is None:
        raise NotFound(f"user {user_id} does not exist")


@strawberry.type
class Query:
    @strawberry.field(description="Conversion through `steps` for the filtered users.")
    async def funnel(
        self,
        info: strawberry.Info,
        steps: Steps = None,
        filter: FunnelFilter | None = None,
        order: StepOrder = StepOrder.ORDERED,
        conversion_window_seconds: Window = None,
        breakdown: Breakdown | None = None,
    ) -> Funnel:
        result = await FunnelService(info.context.services).funnel(
            steps, user_filter(filter), order.to_model(), conversion_window_seconds,
            breakdown.to_model() if breakdown else None,
        )  # fmt: skip
        return Funnel.from_model(result)

    @strawberry.field(description="The funnel per cohort of users who started it in the same period.")
    async def funnel_trend(
        self,
        info: strawberry.Info,
        interval: Interval,
        steps: Steps = None,
        filter: FunnelFilter | None = None,
        order: StepOrder = StepOrder.ORDERED,
        conversion_window_seconds: Window = None,
    ) -> list[FunnelTrendPoint]:
        points = await FunnelService(info.context.services).trend(
            interval.to_model(), steps, user_filter(filter), order.to_model(), conversion_window_seconds
        )
        return [FunnelTrendPoint.from_model(p) for p in points]

    @strawberry.field(description="Users who reached `afterStep` but not the next step.")
    async def dropped_off(
        self,
        info: strawberry.Info,
        after_step: str,
        steps: Steps = None,
        filter: FunnelFilter | None = None,
        order: StepOrder = StepOrder.ORDERED,
        conversion_window_seconds: Window = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection:
        page = await FunnelService(info.context.services).users(
            converted=False, after_step=after_step, steps=steps, filter=user_filter(filter),
            order=order.to_model(), window_seconds=conversion_window_seconds,
            first=first, after=decode_cursor(after),
        )  # fmt: skip
        return UserConnection.from_page(page)

    @strawberry.field(description="Users who reached the funnel's last step.")
    async def converted(
        self,
        info: strawberry.Info,
        steps: Steps = None,
        filter: FunnelFilter | None = None,
        order: StepOrder = StepOrder.ORDERED,
        conversion_window_seconds: Window = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection:
        page = await FunnelService(info.context.services).users(
            converted=True, after_step=None, steps=steps, filter=user_filter(filter),
            order=order.to_model(), window_seconds=conversion_window_seconds,
            first=first, after=decode_cursor(after),
        )  # fmt: skip
        return UserConnection.from_page(page)

    @strawberry.field(description="One user; null with a NOT_FOUND error when the id is unknown.")
    async def user(self, info: strawberry.Info, id: int) -> User | None:
        await _require_user(info, id)
        return User(id=id)

    # A listing read from the store on every request, past the cache: never a cached response.
    @strawberry.field(
        description="Users by id ascending; the filter's dates apply to the user's first visit.",
        metadata=volatile(),
    )
    async def users(
        self,
        info: strawberry.Info,
        filter: FunnelFilter | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection:
        services = info.context.services
        check_page_size(first, services.settings.max_page_size)
        model = user_filter(filter)
        check_range(model.start, model.end)
        return UserConnection.from_page(await services.store.list_users(model, first, decode_cursor(after)))

    @strawberry.field(description="One session; null with a NOT_FOUND error when the id is unknown.")
    async def session(self, info: strawberry.Info, id: str) -> Session | None:
        doc = await info.context.loaders.session.load(id)
        if doc is None:
            raise NotFound(f"session {id} does not exist")
        return Session.from_doc(doc)

    @strawberry.field(description="A user's page visits and progress along the default funnel.")
    async def journey(self, info: strawberry.Info, user_id: int) -> Journey | None:
        await _require_user(info, user_id)
        return Journey.from_record(user_id, await info.context.loaders.journey.load(user_id))

    @strawberry.field(
        description="Users with the most similar behaviour, best first (null if Milvus is down)."
    )
    async def similar_users(
        self,
        info: strawberry.Info,
        user_id: int,
        limit: int = DEFAULT_LIMIT,
        filter: SimilarUserFilter | None = None,
    ) -> list[SimilarUser] | None:
        await _require_user(info, user_id)
        device = filter.device.value if filter and filter.device else None
        converted = filter.converted if filter else None
        return await similar_users(info, SimilarQuery(user_id, limit, device=device, converted=converted))

    @strawberry.field(description="Session metrics over sessions starting in the range (inclusive days).")
    async def dashboard(
        self,
        info: strawberry.Info,
        range_: Annotated[DateRange | None, strawberry.argument(name="range")] = None,
    ) -> Dashboard:
        start, end = (range_.start, range_.end) if range_ else (None, None)
        return Dashboard.from_model(await FunnelService(info.context.services).dashboard(start, end))

    @strawberry.field(description="The most frequent page sequences of sessions, most frequent first.")
    async def top_paths(
        self, info: strawberry.Info, limit: int = 10, filter: FunnelFilter | None = None
    ) -> list[PathCount]:
        services = info.context.services
        check_page_size(limit, services.settings.max_page_size, "limit")
        paths = await FunnelService(services).top_paths(limit, user_filter(filter))
        return [PathCount.from_model(p) for p in paths]

    @strawberry.field(description="Sentiment of the form values typed on a page type, on a day if given.")
    async def sentiment(self, info: strawberry.Info, page_type: str, date: date | None = None) -> Sentiment:
        return Sentiment.from_summary(await page_sentiment(info.context.services, page_type, date))

    @strawberry.field(description="Status of every backend the gateway uses.", metadata=volatile())
    async def health(self, info: strawberry.Info) -> Health:
        return Health.from_report(await check_health(info.context.services))
