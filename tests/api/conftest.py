"""Real backends for the API tests: DuckDB and Milvus Lite in tmp_path, a private redis-server.

Every test gets fresh services with the hand-made fixture of ``fixture_data`` loaded; proxies let a
test count (or break) calls to a backend without touching the adapters.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.config import load_settings
from gateway.services import Services, open_services
from gateway.stores.collections import PAGE_VISITS, USER_INTERACTIONS, USER_SESSIONS, USERS, page_vector_id
from gateway.stores.vectors import PAGE_VECTORS, USER_VECTORS, page_partition
from gateway.web.query_runner import run_query
from tests.api import fixture_data as fx


class CountingProxy:
    """Forwards everything to ``target`` and counts calls per method name."""

    def __init__(self, target: Any) -> None:
        self._target = target
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attr(*args, **kwargs)

        return counted

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class FailingProxy:
    """Forwards to ``target`` except the methods in ``failures``, which raise the given exception."""

    def __init__(self, target: Any, failures: dict[str, Callable[[], Exception]]) -> None:
        self._target = target
        self._failures = failures

    def __getattr__(self, name: str) -> Any:
        if name in self._failures:
            make = self._failures[name]

            async def broken(*args: Any, **kwargs: Any) -> Any:
                raise make()

            return broken
        return getattr(self._target, name)


class RecordingCache(CountingProxy):
    """Counts cache calls and remembers every (key, ttl) written, so a test can forget them again."""

    def __init__(self, target: Any) -> None:
        super().__init__(target)
        self.written: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        if name == "set_many":

            async def set_many(items: Sequence[tuple[str, bytes, int]]) -> None:
                self.calls["set_many"] += 1
                for key, _, ttl in items:
                    self.written[key] = ttl
                await self._target.set_many(items)

            return set_many
        return super().__getattr__(name)

    async def forget(self) -> None:
        await self._target.delete(list(self.written))
        self.written.clear()


async def load_fixture(services: Services) -> None:
    store = services.store
    await store.insert_many(USERS, fx.USERS)
    await store.insert_many(USER_SESSIONS, fx.SESSIONS)
    await store.insert_many(PAGE_VISITS, fx.VISITS)
    await store.insert_many(USER_INTERACTIONS, fx.INTERACTIONS)
    await store.set_default_funnel(fx.DEFAULT_FUNNEL)
    await load_vectors(services.vectors, fx.VECTORS, fx.DEVICE, fx.CONVERTED_USERS, fx.PAGE_VECTORS)


async def load_vectors(
    vectors: Any,
    user_vectors: dict[int, list[float]],
    device: dict[int, str | None],
    converted: set[int],
    page_vectors: dict[str, dict[int, list[float]]],
) -> None:
    """Hand-made vectors built and switched to as ``embed`` does (version 1 of both collections)."""
    dim = len(next(iter(user_vectors.values())))
    users = await vectors.create_version(USER_VECTORS, 1, dim)
    rows = [
        {"id": uid, "embedding": vec, "device": device[uid], "converted": uid in converted}
        for uid, vec in user_vectors.items()
    ]
    await vectors.insert(users, rows)
    pages = await vectors.create_version(PAGE_VECTORS, 1, dim)
    for k, (page_type, per_user) in enumerate(sorted(page_vectors.items())):
        page_rows = [
            {
                "id": page_vector_id(uid, k),
                "embedding": vec,
                "user_id": uid,
                "page_type": page_type,
                "device": device[uid],
            }
            for uid, vec in per_user.items()
        ]
        await vectors.insert(pages, page_rows, partition=page_partition(page_type))
    for spec, name in ((USER_VECTORS, users), (PAGE_VECTORS, pages)):
        await vectors.build_index(name)
        await vectors.switch(spec.name, name)


@pytest.fixture
async def services(tmp_path: Path, redis_env: dict[str, str]) -> AsyncIterator[Services]:
    """``redis_env``: the private redis-server, or the cluster where a module parametrises ``redis_mode``."""
    settings = load_settings(env={"FUNNEL_DATA_DIR": str(tmp_path / "data"), **redis_env})
    async with open_services(settings) as opened:
        await load_fixture(opened)
        yield opened


@pytest.fixture
def counted(services: Services) -> Services:
    """The same backends behind counting proxies: ``counted.store.calls``, ``counted.vectors.calls``..."""
    return dataclasses.replace(
        services,
        store=CountingProxy(services.store),
        vectors=CountingProxy(services.vectors),
        cache=RecordingCache(services.cache),
    )


async def run(services: Services, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return await run_query(services, query, variables)


async def data_of(services: Services, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run a query that must succeed; its ``data``."""
    result = await run_query(services, query, variables)
    assert "errors" not in result, result["errors"]
    return result["data"]


def error_codes(result: dict[str, Any]) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]
