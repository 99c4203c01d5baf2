"""Query root: each resolver maps arguments to a loader or service call and returns schema types.

The funnel fields take their shared arguments through :func:`resolvers.funnel_arguments.takes_funnel`.
A root field marked ``metadata=volatile()`` is never answered from the whole-response cache. Every root
field names the role that may read it (``requires``, gateway/roles.py; unmarked means admin) and, when it
costs more than a plain lookup, its price (``price``, gateway/security/field_rules.py).

Every root field is nullable: a field that fails (its backend down, a bad argument) answers null with
its coded error, and the other root fields of the request keep their data. A non-null root field's
error would null the whole ``data`` (GraphQL's null propagation stops only at a nullable field), so a
request asking ``funnel`` beside a ``dashboard`` whose store call failed lost the funnel too.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

import strawberry

from gateway.analytics import funnels, reports
from gateway.analytics.sentiment import page_sentiment
from gateway.analytics.similar_users import DEFAULT_LIMIT, SimilarQuery
from gateway.analytics.trend_periods import MAX_TREND_PERIODS, trend_list_size
from gateway.cache.responses import volatile
from gateway.errors import NotFound, shown
from gateway.models import FunnelDefinition, from_fields
from gateway.roles import Role, requires
from gateway.security.field_rules import (
    FUNNEL,
    FUNNEL_TREND,
    LISTING,
    REPORT,
    VECTOR_SEARCH,
    checked,
    paged,
    price,
)
from gateway.services import check_health
from gateway.validation import check_min_score, check_page_size, check_similar_limit, check_user_id
from resolvers.funnel_arguments import takes_funnel
from schema.dashboard import Dashboard, PathCount
from schema.enums import Breakdown, Device, Interval, Sex
from schema.funnel import Funnel, FunnelTrendPoint
from schema.health import Health
from schema.inputs import DateRange, FunnelFilter, SimilarUserFilter, user_filter
from schema.journey import Journey
from schema.sentiment import Sentiment
from schema.session import Session
from schema.user import (
    MIN_SCORE,
    SIMILAR_NULL,
    SimilarUser,
    User,
    UserConnection,
    decode_cursor,
    journey_of,
    similar_users,
    with_documents,
)

DEFAULT_PAGE = 100


async def _require_user(info: strawberry.Info, user_id: int, argument: str = "userId") -> None:
    check_user_id(user_id, argument)  # -3 is a mistake to name, not a user to look for
    if await info.context.loaders.users.load(user_id) is None:
        raise NotFound(f"user {user_id} does not exist")


async def _funnel_users(
    info: strawberry.Info,
    definition: FunnelDefinition,
    converted: bool,
    after_step: str | None,
    first: int,
    after: str | None,
) -> UserConnection:
    page = await funnels.users(
        info.context.services, definition,
        converted=converted, after_step=after_step, first=first, after=decode_cursor(after),
    )  # fmt: skip
    return await with_documents(info, page)


@strawberry.type
class Query:
    @strawberry.field(
        description="Conversion through `steps` for the filtered users.",
        metadata=requires(Role.VIEWER) | price(FUNNEL),
    )
    @takes_funnel
    async def funnel(
        self, info: strawberry.Info, definition: FunnelDefinition, breakdown: Breakdown | None = None
    ) -> Funnel | None:
        result = await funnels.funnel(info.context.services, definition, breakdown)
        if result.source is not None:  # pre-aggregated or computed: said in the response's extensions
            info.context.funnel_sources[str(info.path.key)] = result.source
        return from_fields(Funnel, result)

    @strawberry.field(
        description=(
            "The funnel per cohort of users who started it in the same period, one point per period in "
            "order, with no gaps: from the period of `filter.start` (else the first period anyone "
            "started in) to the period of `filter.end` (else the last), periods nobody started in as "
            f"zeros. At most {MAX_TREND_PERIODS} periods: a longer span is BAD_USER_INPUT (ask a "
            "coarser interval or a narrower range)."
        ),
        metadata=requires(Role.VIEWER) | price(FUNNEL_TREND, sizer=trend_list_size),
    )
    @takes_funnel
    async def funnel_trend(
        self, info: strawberry.Info, interval: Interval, definition: FunnelDefinition
    ) -> list[FunnelTrendPoint] | None:
        points = await funnels.trend(info.context.services, definition, interval)
        return [from_fields(FunnelTrendPoint, p) for p in points]

    @strawberry.field(
        description="Users who reached `afterStep` but not the next step.",
        metadata=requires(Role.ANALYST) | price(FUNNEL),
    )
    @takes_funnel
    async def dropped_off(
        self,
        info: strawberry.Info,
        after_step: str,
        definition: FunnelDefinition,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection | None:
        return await _funnel_users(info, definition, False, after_step, first, after)

    @strawberry.field(
        description="Users who reached the funnel's last step.",
        metadata=requires(Role.ANALYST) | price(FUNNEL),
    )
    @takes_funnel
    async def converted(
        self,
        info: strawberry.Info,
        definition: FunnelDefinition,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection | None:
        return await _funnel_users(info, definition, True, None, first, after)

    # New pages arrive with live events and become steps at once: read past the cache, never kept.
    @strawberry.field(
        description="Every page type of the page visits, sorted: the names `steps` accepts.",
        metadata=volatile() | requires(Role.VIEWER),
    )
    async def page_types(self, info: strawberry.Info) -> list[str] | None:
        return await info.context.services.store.page_types()

    @strawberry.field(
        description="One user; null with a NOT_FOUND error when the id is unknown.",
        metadata=requires(Role.ANALYST),
    )
    async def user(self, info: strawberry.Info, id: int) -> User | None:
        await _require_user(info, id, "id")
        return User(id=id)

    # A listing read from the store on every request, past the cache: never a cached response.
    @strawberry.field(
        description=(
            "Users by id ascending; the filter's dates apply to the user's `date` (the day they were first seen)."
        ),
        metadata=volatile() | requires(Role.ANALYST) | price(LISTING),
    )
    async def users(
        self,
        info: strawberry.Info,
        filter: FunnelFilter | None = None,
        first: int = DEFAULT_PAGE,
        after: str | None = None,
    ) -> UserConnection | None:
        services = info.context.services
        check_page_size(first, services.settings.max_page_size)
        page = await services.store.list_users(user_filter(filter), first, decode_cursor(after))
        return await with_documents(info, page)

    @strawberry.field(
        description="One session; null with a NOT_FOUND error when the id is unknown.",
        metadata=requires(Role.ANALYST),
    )
    async def session(self, info: strawberry.Info, id: str) -> Session | None:
        doc = await info.context.loaders.session.load(id)
        if doc is None:
            raise NotFound(f"session {shown(id)} does not exist")
        return from_fields(Session, doc, id="session_id", stored_pages="pages_visited")

    @strawberry.field(
        description="A user's page visits and progress along the default funnel.",
        metadata=requires(Role.ANALYST),
    )
    async def journey(self, info: strawberry.Info, user_id: int) -> Journey | None:
        await _require_user(info, user_id)
        return await journey_of(info, user_id)

    @strawberry.field(
        description=(
            "Users whose behaviour before their outcome (conversion or leaving) was most like this user's, "
            f"best first; a filter returns `limit` users whenever that many match; {SIMILAR_NULL}."
        ),
        metadata=requires(Role.ANALYST)
        | price(VECTOR_SEARCH)
        | paged(check_similar_limit)
        | checked(minScore=check_min_score),
    )
    async def similar_users(
        self,
        info: strawberry.Info,
        user_id: int,
        limit: int = DEFAULT_LIMIT,
        filter: SimilarUserFilter | None = None,
        min_score: Annotated[float | None, strawberry.argument(description=MIN_SCORE)] = None,
    ) -> list[SimilarUser] | None:
        await _require_user(info, user_id)
        device = filter.device.value if filter and filter.device else None
        converted = filter.converted if filter else None
        query = SimilarQuery(user_id, limit, device=device, converted=converted, min_score=min_score)
        return await similar_users(info, query)

    @strawberry.field(
        description="Session metrics over sessions starting in the range (inclusive days); device and sex keep"
        " the sessions of users with those attributes, as funnel's filter does.",
        metadata=requires(Role.VIEWER) | price(REPORT),
    )
    async def dashboard(
        self,
        info: strawberry.Info,
        range_: Annotated[DateRange | None, strawberry.argument(name="range")] = None,
        device: Device | None = None,
        sex: Sex | None = None,
    ) -> Dashboard | None:
        start, end = (range_.start, range_.end) if range_ else (None, None)
        device_, sex_ = (device.value if device else None), (sex.value if sex else None)
        metrics = await reports.dashboard(info.context.services, start, end, device_, sex_)
        return from_fields(Dashboard, metrics)

    @strawberry.field(
        description="The most frequent page sequences of sessions, most frequent first.",
        metadata=requires(Role.VIEWER) | price(REPORT),
    )
    async def top_paths(
        self, info: strawberry.Info, limit: int = 10, filter: FunnelFilter | None = None
    ) -> list[PathCount] | None:
        paths = await reports.top_paths(info.context.services, limit, user_filter(filter))
        return [from_fields(PathCount, p) for p in paths]

    @strawberry.field(
        description=(
            "Sentiment of the form values typed on a page type, on a day if given. The page must be known: "
            "viewed, or with text typed on it (BAD_USER_INPUT otherwise)."
        ),
        metadata=requires(Role.VIEWER) | price(REPORT),
    )
    async def sentiment(
        self, info: strawberry.Info, page_type: str, date: date | None = None
    ) -> Sentiment | None:
        summary = await page_sentiment(info.context.services, page_type, date)
        return from_fields(Sentiment, summary, date="day")

    @strawberry.field(
        description="Status of every backend the gateway uses.",
        metadata=volatile() | requires(Role.VIEWER),
    )
    async def health(self, info: strawberry.Info) -> Health | None:
        return Health.from_report(await check_health(info.context.services))
