"""Session reports: the dashboard of a date range and the most frequent paths, Redis first."""

from __future__ import annotations

from datetime import date

from gateway.cache import keys
from gateway.cache.aside import read_through
from gateway.cache.versions import range_versions
from gateway.models import DashboardMetrics, PathCount, UserFilter
from gateway.services import Services
from gateway.validation import check_page_size, check_range


async def dashboard(
    services: Services,
    start: date | None,
    end: date | None,
    device: str | None = None,
    sex: str | None = None,
) -> DashboardMetrics:
    check_range(start, end)

    async def compute() -> DashboardMetrics:
        return await services.store.dashboard(start, end, device, sex)

    key, ttl = keys.dashboard(start, end, device, sex), keys.ttl_for_range(end)
    tokens = range_versions(keys.VERSION_SESSIONS, device, sex, start, end)  # sessions by start day
    return await read_through(
        services.cache, services.cache_stats, key, ttl, compute, DashboardMetrics, tokens
    )


async def top_paths(services: Services, limit: int, filter: UserFilter) -> list[PathCount]:
    check_page_size(limit, services.settings.max_page_size, "limit")
    check_range(filter.start, filter.end)

    async def compute() -> list[PathCount]:
        return await services.store.top_paths(limit, filter)

    key, ttl = keys.top_paths({"limit": limit, "filter": filter}), keys.ttl_for_range(filter.end)
    tokens = range_versions(keys.VERSION_SESSIONS, filter.device, filter.sex, filter.start, filter.end)
    return await read_through(
        services.cache, services.cache_stats, key, ttl, compute, list[PathCount], tokens
    )
