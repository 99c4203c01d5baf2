"""Funnel questions from the API: argument checks shared by every funnel field, then Redis first.

Checks that need no data run before the cache is read; the ones that need the store (unknown step
names, the default funnel) run only on a miss, which is safe because only valid answers are cached.
A funnel's key is ``metrics:funnel:{device}:{day or range}:{digest of every other argument}``; its TTL is
the historical one when the range is closed in the past (that answer cannot change any more), the
daily one otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Any

from gateway.cache import keys
from gateway.cache.aside import read_through
from gateway.errors import BadInput
from gateway.models import (
    Breakdown,
    DashboardMetrics,
    DeviceMetrics,
    FunnelBreakdown,
    FunnelQuery,
    FunnelResult,
    FunnelStepResult,
    Interval,
    PathCount,
    StepOrder,
    TrendPoint,
    UserFilter,
    UserPage,
)
from gateway.services import Services
from gateway.validation import check_range


def today() -> date:
    return datetime.now(UTC).date()


def check_page_size(first: int, maximum: int, name: str = "first") -> None:
    if not 1 <= first <= maximum:
        raise BadInput(f"{name} must be between 1 and {maximum}, got {first}")


def ttl_for(end: date | None) -> int:
    closed_in_past = end is not None and end < today()
    return keys.TTL_HISTORICAL if closed_in_past else keys.TTL_DAILY


def _day_or_range(start: date | None, end: date | None) -> str | date | None:
    if start is None and end is None:
        return None
    if start == end:
        return start
    return f"{start.isoformat() if start else 'all'}..{end.isoformat() if end else 'all'}"


class FunnelService:
    """One per request; holds nothing but the shared services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def funnel(
        self,
        steps: Sequence[str] | None,
        filter: UserFilter,
        order: StepOrder = StepOrder.ORDERED,
        window_seconds: int | None = None,
        breakdown: Breakdown | None = None,
    ) -> FunnelResult:
        self._check(steps, filter, window_seconds)
        args = self._args("funnel", steps, filter, order, window_seconds, breakdown=breakdown)

        async def compute() -> FunnelResult:
            query = await self._query(steps, filter, order, window_seconds, breakdown)
            return await self.services.store.funnel(query)

        return await self._cached(filter, args, compute, _funnel_result)

    async def trend(
        self,
        interval: Interval,
        steps: Sequence[str] | None,
        filter: UserFilter,
        order: StepOrder = StepOrder.ORDERED,
        window_seconds: int | None = None,
    ) -> list[TrendPoint]:
        self._check(steps, filter, window_seconds)
        args = self._args("trend", steps, filter, order, window_seconds, interval=interval)

        async def compute() -> list[TrendPoint]:
            query = await self._query(steps, filter, order, window_seconds, None)
            return await self.services.store.funnel_trend(query, interval)

        return await self._cached(filter, args, compute, lambda rows: [_trend_point(r) for r in rows])

    async def users(
        self,
        *,
        converted: bool,
        after_step: str | None,
        steps: Sequence[str] | None,
        filter: UserFilter,
        order: StepOrder = StepOrder.ORDERED,
        window_seconds: int | None = None,
        first: int,
        after: int | None,
    ) -> UserPage:
        """Users who converted, or who reached ``after_step`` but not the next step."""
        self._check(steps, filter, window_seconds)
        check_page_size(first, self.services.settings.max_page_size)
        args = self._args(
            "users", steps, filter, order, window_seconds,
            converted=converted, after_step=after_step, first=first, after=after,
        )  # fmt: skip

        async def compute() -> UserPage:
            query = await self._query(steps, filter, order, window_seconds, None)
            index = len(query.steps) - 1 if converted else self._step_index(query.steps, after_step)
            return await self.services.store.funnel_users(query, index, converted, first, after)

        return await self._cached(filter, args, compute, lambda d: UserPage(**d))

    async def dashboard(self, start: date | None, end: date | None) -> DashboardMetrics:
        check_range(start, end)

        async def compute() -> DashboardMetrics:
            return await self.services.store.dashboard(start, end)

        return await read_through(
            self.services.cache, self.services.cache_stats,
            keys.dashboard(start, end), ttl_for(end), compute, _dashboard,
        )  # fmt: skip

    async def top_paths(self, limit: int, filter: UserFilter) -> list[PathCount]:
        check_range(filter.start, filter.end)

        async def compute() -> list[PathCount]:
            return await self.services.store.top_paths(limit, filter)

        return await read_through(
            self.services.cache, self.services.cache_stats,
            keys.top_paths({"limit": limit, "filter": filter}), ttl_for(filter.end), compute,
            lambda rows: [PathCount(**row) for row in rows],
        )  # fmt: skip

    # -- arguments --------------------------------------------------------------------------------
    def _check(self, steps: Sequence[str] | None, filter: UserFilter, window_seconds: int | None) -> None:
        if steps is not None:
            if len(steps) < 2:
                raise BadInput(f"a funnel needs at least 2 steps, got {len(steps)}")
            duplicates = sorted(name for name, n in Counter(steps).items() if n > 1)
            if duplicates:
                raise BadInput(f"duplicate funnel steps: {', '.join(duplicates)}")
        check_range(filter.start, filter.end)
        if window_seconds is not None and window_seconds < 1:
            raise BadInput(f"conversionWindowSeconds must be at least 1, got {window_seconds}")

    async def _query(
        self,
        steps: Sequence[str] | None,
        filter: UserFilter,
        order: StepOrder,
        window_seconds: int | None,
        breakdown: Breakdown | None,
    ) -> FunnelQuery:
        store = self.services.store
        if steps is None:
            default = await store.default_funnel()
            if not default:
                raise BadInput("no default funnel yet (nothing ingested): pass steps")
            resolved = tuple(default)
        else:
            known = set(await store.page_types())
            unknown = [s for s in steps if s not in known]
            if unknown:
                raise BadInput(
                    f"unknown funnel steps: {', '.join(unknown)} (known: {', '.join(sorted(known))})"
                )
            resolved = tuple(steps)
        return FunnelQuery(
            steps=resolved, filter=filter, order=order, window_seconds=window_seconds, breakdown=breakdown
        )

    @staticmethod
    def _step_index(steps: Sequence[str], after_step: str | None) -> int:
        if after_step is None or after_step not in steps:
            raise BadInput(f"afterStep {after_step!r} is not one of the funnel's steps: {', '.join(steps)}")
        index = list(steps).index(after_step)
        if index == len(steps) - 1:
            raise BadInput(
                f"afterStep {after_step!r} is the last step: nobody drops off after it (use converted)"
            )
        return index

    @staticmethod
    def _args(
        kind: str,
        steps: Sequence[str] | None,
        filter: UserFilter,
        order: StepOrder,
        window_seconds: int | None,
        **extra: Any,
    ) -> dict[str, Any]:
        # Everything that changes the answer, the query kind included; no steps means the default funnel.
        return {
            "kind": kind,
            "steps": None if steps is None else list(steps),
            "filter": asdict(filter),
            "order": order.value,
            "window_seconds": window_seconds,
            **{k: (v.value if hasattr(v, "value") else v) for k, v in extra.items()},
        }

    async def _cached(self, filter: UserFilter, args: dict[str, Any], compute: Any, decode: Any) -> Any:
        key = keys.funnel(filter.device, _day_or_range(filter.start, filter.end), args)
        return await read_through(
            self.services.cache, self.services.cache_stats, key, ttl_for(filter.end), compute, decode
        )


# -- cached JSON back to records ------------------------------------------------------------------
def _steps(rows: list[dict[str, Any]]) -> list[FunnelStepResult]:
    return [FunnelStepResult(**row) for row in rows]


def _funnel_result(d: dict[str, Any]) -> FunnelResult:
    return FunnelResult(
        steps=_steps(d["steps"]),
        overall_conversion_rate=d["overall_conversion_rate"],
        breakdowns=[
            FunnelBreakdown(
                key=b["key"], steps=_steps(b["steps"]), overall_conversion_rate=b["overall_conversion_rate"]
            )
            for b in d["breakdowns"]
        ],
    )


def _trend_point(d: dict[str, Any]) -> TrendPoint:
    return TrendPoint(period=d["period"], steps=_steps(d["steps"]), conversion_rate=d["conversion_rate"])


def _dashboard(d: dict[str, Any]) -> DashboardMetrics:
    return DashboardMetrics(**{**d, "by_device": [DeviceMetrics(**row) for row in d["by_device"]]})
