"""Fixtures for the ingestion tests: the fixture CSV directories and a real embedded store per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.models import Breakdown, FunnelQuery, UserFilter
from gateway.stores.contracts import DocumentStore
from gateway.stores.duckdb.store import DuckDBStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ingest"

# The fixture users every valid case carries (see tests/fixtures/ingest/clean), written out by hand.
BASE_USERS: dict[int, tuple[date, str, str]] = {
    1: (date(2015, 1, 1), "desktop", "male"),
    2: (date(2015, 1, 1), "mobile", "female"),
    3: (date(2015, 1, 2), "desktop", "female"),
    4: (date(2015, 1, 2), "mobile", "male"),
    5: (date(2015, 1, 3), "desktop", "male"),
    6: (date(2015, 1, 3), "desktop", "female"),
}
BASE_PAGES = {"home": {1, 2, 3, 4, 5, 6}, "search": {1, 2, 3, 4}, "payment": {1, 2}, "confirmation": {1}}
STEPS = ("home", "search", "payment", "confirmation")
# Users per step: everyone reaching a step reached the ones before it in these files.
BASE_FUNNEL = [6, 4, 2, 1]
BASE_DESKTOP = [4, 2, 1, 1]  # users 1, 3, 5, 6
BASE_MOBILE = [2, 2, 1, 0]  # users 2, 4


def fixture_dir(case: str) -> Path:
    return FIXTURES / case


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[DocumentStore]:
    opened = await DuckDBStore.open(tmp_path / "t.duckdb")
    await opened.ensure_indexes()
    try:
        yield opened
    finally:
        await opened.close()


async def funnel_users(
    store: DocumentStore, steps: tuple[str, ...] = STEPS
) -> tuple[list[int], dict[str | None, list[int]]]:
    """Users per step overall and per device."""
    result = await store.funnel(FunnelQuery(steps, UserFilter(), breakdown=Breakdown.DEVICE))
    return [s.users for s in result.steps], {b.key: [s.users for s in b.steps] for b in result.breakdowns}


async def dump(store: DocumentStore) -> dict[str, Any]:
    """Every document the store holds for the ingested collections, in a stable order."""
    page = await store.list_users(UserFilter(), first=100_000, after=None)
    ids = page.user_ids
    users = await store.users_by_ids(ids)
    sessions = [s for per_user in await store.sessions_by_user_ids(ids) for s in per_user]
    visits = [v for per_user in await store.visits_by_user_ids(ids) for v in per_user]
    session_ids = [s["session_id"] for s in sessions]
    interactions = [
        i for per_session in await store.interactions_by_session_ids(session_ids) for i in per_session
    ]
    return {
        "users": users,
        "sessions": sessions,
        "visits": visits,
        "interactions": interactions,
        "analytics": await store.funnel_analytics(None, None, None),
        "default_funnel": await store.default_funnel(),
    }
