"""Funnel questions: the funnel, its trend, and who dropped off or converted, Redis first.

Checks that need no data run before the cache is read; the ones that need the store (unknown step
names, the default funnel) run only on a miss, which is safe because only valid answers are cached.
Before the read, a question naming no steps asks whether the default is stored or derived from the
visits (``default_funnel``): a derived one changes with any page view, so its answers read that token too.
A funnel's key is ``metrics:funnel:{device}:{day or range}:{digest of every other argument}``; its TTL is
the historical one when the range is closed in the past (that answer cannot change any more), the
daily one otherwise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from gateway.analytics import default_funnel
from gateway.analytics.trend_periods import check_trend_size, fill_periods
from gateway.cache import keys
from gateway.cache.aside import read_through
from gateway.cache.versions import range_versions
from gateway.errors import BadInput
from gateway.models import (
    Breakdown,
    FunnelDefinition,
    FunnelQuery,
    FunnelResult,
    Interval,
    TrendPoint,
    UserPage,
)
from gateway.services import Services
from gateway.validation import (
    after_step_index,
    check_funnel_definition,
    check_interval,
    check_known_steps,
    check_page_size,
)

T = TypeVar("T")


async def funnel(
    services: Services, definition: FunnelDefinition, breakdown: Breakdown | None
) -> FunnelResult:
    async def compute() -> FunnelResult:
        return await services.store.funnel(await _query(services, definition, breakdown))

    return await _cached(
        services, definition, {"kind": "funnel", "breakdown": breakdown}, compute, FunnelResult
    )


async def trend(services: Services, definition: FunnelDefinition, interval: Interval) -> list[TrendPoint]:
    """Every period of the range, the empty ones as zeros (``trend_periods``). The cache holds the
    store's answer, the periods with entrants only; the grid is laid over it on every read."""
    check_interval(interval)
    f = definition.filter
    if f.start is not None and f.end is not None:
        check_trend_size(f.start, f.end, interval)  # before the store or the cache is asked

    async def compute() -> list[TrendPoint]:
        return await services.store.funnel_trend(await _query(services, definition), interval)

    points = await _cached(
        services, definition, {"kind": "trend", "interval": interval}, compute, list[TrendPoint]
    )
    if points:
        steps = tuple(s.name for s in points[0].steps)
    elif f.start is None or f.end is None:
        return []  # nobody, and no range to lay out
    else:  # nobody in a closed range: its zeros still need the step names
        steps = (await _query(services, definition)).steps
    return fill_periods(points, steps, interval, f.start, f.end)


async def users(
    services: Services,
    definition: FunnelDefinition,
    *,
    converted: bool,
    after_step: str | None,
    first: int,
    after: int | None,
) -> UserPage:
    """Users who converted, or who reached ``after_step`` but not the next step."""
    check_page_size(first, services.settings.max_page_size)

    async def compute() -> UserPage:
        query = await _query(services, definition)
        index = len(query.steps) - 1 if converted else after_step_index(query.steps, after_step)
        return await services.store.funnel_users(query, index, converted, first, after)

    question = {
        "kind": "users",
        "converted": converted,
        "after_step": after_step,
        "first": first,
        "after": after,
    }
    return await _cached(services, definition, question, compute, UserPage)


async def _query(
    services: Services, definition: FunnelDefinition, breakdown: Breakdown | None = None
) -> FunnelQuery:
    """The definition with its steps resolved: the default funnel, or the named steps if they exist."""
    store = services.store
    if definition.steps is None:
        default = await default_funnel.resolve(store, services.stored_defaults)
        if default is None:
            raise BadInput(default_funnel.NO_DEFAULT)
        steps = default.steps
    else:
        steps = definition.steps
        check_known_steps(steps, await store.page_types())
    # Every option of the definition carries over unchanged: a new option needs no edit here.
    options = {
        f.name: getattr(definition, f.name) for f in dataclasses.fields(definition) if f.name != "steps"
    }
    return FunnelQuery(steps=steps, breakdown=breakdown, **options)


async def _cached(
    services: Services,
    definition: FunnelDefinition,
    question: dict[str, Any],
    compute: Callable[[], Awaitable[T]],
    result_type: Any,
) -> T:
    check_funnel_definition(definition)
    # Everything that changes the answer is in the key: the whole definition and the question asked.
    args = {**dataclasses.asdict(definition), **question}
    f = definition.filter
    # Live events change it through page visits of its users' device and sex on its days.
    tokens = range_versions(keys.VERSION_VISITS, f.device, f.sex, f.start, f.end)
    stored = None
    if definition.steps is None:
        stored = await default_funnel.stored(services.store, services.stored_defaults)
        # A stored default's steps are in the key: an answer computed on a default that setDefaultFunnel
        # replaced meanwhile (the cache scope moved during the computation) is never read as the new one's.
        args["default"] = "derived" if stored is None else list(stored)
    if definition.steps is None and stored is None:
        # The steps themselves move with any page view (any day, device, sex); apart in the key, so an
        # answer on a derived default is never read as one on a stored default.
        tokens = list(dict.fromkeys([*tokens, default_funnel.every_page_view()]))
    key = keys.funnel(f.device, keys.days(f.start, f.end), args)
    return await read_through(
        services.cache, services.cache_stats, key, keys.ttl_for_range(f.end), compute, result_type, tokens
    )
