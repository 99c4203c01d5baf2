"""A running gateway follows its persisted-query manifest: `funnelgate persist` (or any rewrite of the file)
takes effect without a restart, a removed operation stops running (even a body the request reader
remembered), and a file that cannot be used after a change keeps the last good allow-list."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.security import persisted as persisted_module
from gateway.security.persisted import Operation, PersistedQueries, write_manifest
from gateway.web.persist import register
from tests.security.conftest import client_of, with_settings

FUNNEL = "query Steps { funnel { steps { name users } } }"
HEALTH = "{ health { status } }"
LOGGER = "gateway.security.persisted"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def op(text: str) -> Operation:
    return Operation(sha(text), text)


async def eventually(check: Callable[[], Awaitable[bool]], tries: int = 100) -> bool:
    """Whether ``check`` passes within ``tries`` polls (the gateway looks at the file once a second)."""
    for _ in range(tries):
        if await check():
            return True
        await asyncio.sleep(0.1)
    return False


async def answer(client: Any, body: dict) -> tuple[int, dict]:
    response = await client.post("/graphql", json=body)
    return response.status, await response.json()


def code(body: dict) -> str | None:
    errors = body.get("errors")
    return errors[0]["extensions"]["code"] if errors else None


async def test_an_operation_registered_by_persist_runs_without_a_restart(services, tmp_path):
    manifest = tmp_path / "persisted.json"
    write_manifest(manifest, [op(FUNNEL)])
    configured = with_settings(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(configured) as client:
        status, refused = await answer(client, {"query": HEALTH})
        assert (status, code(refused)) == (400, "OPERATION_NOT_ALLOWED")
        assert "funnelgate persist FILE" in refused["errors"][0]["message"]
        document = tmp_path / "health.graphql"
        document.write_text(HEALTH)
        done = register(configured.settings, [document])
        assert (len(done.added), done.already, done.problems, done.total) == (1, [], [], 2)

        async def allowed() -> bool:
            status, body = await answer(client, {"query": HEALTH})
            return status == 200 and body.get("data") == {"health": {"status": "ok"}}

        assert await eventually(allowed)
        by_hash = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": sha(HEALTH)}}}
        assert (await answer(client, by_hash))[1]["data"] == {"health": {"status": "ok"}}
        status, funnel = await answer(client, {"query": FUNNEL})  # the operation registered before runs still
        assert status == 200 and "errors" not in funnel and funnel["data"]["funnel"]["steps"]


async def test_an_operation_removed_from_the_file_stops_running_even_a_remembered_body(services, tmp_path):
    manifest = tmp_path / "persisted.json"
    write_manifest(manifest, [op(FUNNEL), op(HEALTH)])
    configured = with_settings(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(configured) as client:
        for _ in range(3):  # the same small body: remembered by the request reader after the first
            status, body = await answer(client, {"query": HEALTH})
            assert (status, body.get("data")) == (200, {"health": {"status": "ok"}})
        write_manifest(manifest, [op(FUNNEL)])

        async def refused() -> bool:
            status, body = await answer(client, {"query": HEALTH})
            return (status, code(body)) == (400, "OPERATION_NOT_ALLOWED")

        assert await eventually(refused)
        status, funnel = await answer(client, {"query": FUNNEL})
        assert status == 200 and "errors" not in funnel


def _broken(kind: str) -> Callable[[Path], None]:
    contents = {
        "empty": "",
        "not-json": '{"format": "apollo-persisted-query-manifest", "operations": [',
        "other-format": json.dumps({"format": "something-else", "operations": []}),
        "wrong-id": json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": "ab" * 32, "name": None, "type": "query", "body": HEALTH}],
            }
        ),
        "operations-not-a-list": json.dumps({"format": "apollo-persisted-query-manifest", "operations": "x"}),
        "operation-not-an-object": json.dumps(
            {"format": "apollo-persisted-query-manifest", "operations": [1]}
        ),
        "not-utf8": b'{"format": "\xff"}',
    }
    if kind == "removed":
        return lambda path: path.unlink()
    value = contents[kind]
    if isinstance(value, bytes):
        return lambda path: path.write_bytes(value)
    return lambda path: path.write_text(value)  # in place, as an editor might


BROKEN = [
    "empty",
    "not-json",
    "other-format",
    "wrong-id",
    "operations-not-a-list",
    "operation-not-an-object",
    "not-utf8",
    "removed",
]


@pytest.mark.parametrize("kind", BROKEN)
async def test_a_file_that_cannot_be_used_keeps_the_last_good_allow_list(services, tmp_path, caplog, kind):
    manifest = tmp_path / "persisted.json"
    write_manifest(manifest, [op(FUNNEL)])
    configured = with_settings(services, persisted_queries="allowlist", persisted_queries_file=manifest)
    async with client_of(configured) as client:
        with caplog.at_level(logging.ERROR, LOGGER):
            _broken(kind)(manifest)

            async def logged() -> bool:
                await answer(client, {"query": HEALTH})  # a request makes the gateway look at the file
                return any(
                    r.levelno == logging.ERROR and str(manifest) in r.getMessage() for r in caplog.records
                )

            assert await eventually(logged)
        assert "keeping the 1 operation(s) read before" in caplog.text
        status, funnel = await answer(client, {"query": FUNNEL})  # the last good allow-list, not an empty one
        assert status == 200 and "errors" not in funnel and funnel["data"]["funnel"]["steps"]
        status, other = await answer(client, {"query": HEALTH})
        assert (status, code(other)) == (400, "OPERATION_NOT_ALLOWED")
        write_manifest(manifest, [op(FUNNEL), op(HEALTH)])  # fixed: read again

        async def allowed() -> bool:
            status, body = await answer(client, {"query": HEALTH})
            return status == 200 and body.get("data") == {"health": {"status": "ok"}}

        assert await eventually(allowed)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _allowlist(path: Path) -> PersistedQueries:
    return PersistedQueries.from_file(None, None, "allowlist", path, 10_000)  # type: ignore[arg-type]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    """The reload's clock, moved by hand."""
    clock = _Clock()
    monkeypatch.setattr(persisted_module, "monotonic", clock)
    return clock


def _funnel_allowlist(tmp_path: Path) -> tuple[Path, PersistedQueries]:
    """A manifest registering FUNNEL, and the allowlist read from it."""
    manifest = tmp_path / "persisted.json"
    write_manifest(manifest, [op(FUNNEL)])
    return manifest, _allowlist(manifest)


async def test_the_file_is_looked_at_no_more_than_once_a_second(tmp_path, clock):
    manifest, queries = _funnel_allowlist(tmp_path)
    write_manifest(manifest, [op(FUNNEL), op(HEALTH)])
    clock.now = 1000.5  # half a second after start-up: not looked at yet
    await queries.refresh()
    assert set(queries.registered) == {sha(FUNNEL)} and queries.generation == 0
    clock.now = 1001.0
    await queries.refresh()
    assert set(queries.registered) == {sha(FUNNEL), sha(HEALTH)} and queries.generation == 1
    await queries.refresh()  # unchanged, and too soon anyway: nothing read
    assert queries.generation == 1
    clock.now = 1003.0
    await queries.refresh()  # looked at, unchanged: not read again
    assert queries.generation == 1
    assert await queries.resolve(HEALTH, None) == HEALTH


@pytest.mark.parametrize(("limit", "threads"), [(0, 1), (1 << 20, 0)], ids=["large", "small"])
async def test_a_large_file_is_read_off_the_event_loop(tmp_path, monkeypatch, clock, limit, threads):
    monkeypatch.setattr(persisted_module, "OFF_LOOP_BYTES", limit)
    calls: list[Any] = []
    real = asyncio.to_thread

    async def to_thread(func: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(persisted_module.asyncio, "to_thread", to_thread)
    manifest, queries = _funnel_allowlist(tmp_path)
    write_manifest(manifest, [op(HEALTH)])
    clock.now += 2
    await queries.refresh()
    assert set(queries.registered) == {sha(HEALTH)}
    assert len(calls) == threads


async def test_a_reload_outlives_the_request_that_started_it(tmp_path, monkeypatch, clock):
    # A client that leaves cancels its request (handler_cancellation). The reload it started used to go
    # with it, after the file's version was noted: the gateway stayed on the old allowlist for good.
    monkeypatch.setattr(persisted_module, "OFF_LOOP_BYTES", 0)  # read in a worker thread: an await
    manifest, queries = _funnel_allowlist(tmp_path)
    write_manifest(manifest, [op(FUNNEL), op(HEALTH)])
    clock.now += 2
    request = asyncio.ensure_future(queries.refresh())
    await asyncio.sleep(0)  # the read is under way in its thread
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    for _ in range(100):
        if queries.generation:
            break
        await asyncio.sleep(0.02)
    assert set(queries.registered) == {sha(FUNNEL), sha(HEALTH)} and queries.generation == 1


async def test_a_file_gone_between_its_look_and_its_read_keeps_the_allowlist(
    tmp_path, monkeypatch, clock, caplog
):
    manifest, queries = _funnel_allowlist(tmp_path)
    manifest.unlink()
    monkeypatch.setattr(persisted_module, "_signature", lambda path: (1, 2, 3, 4, 5))  # looked at: there
    clock.now += 2
    await queries.refresh()
    assert set(queries.registered) == {sha(FUNNEL)} and queries.generation == 0  # not emptied
    assert "cannot be used" in caplog.text


async def test_a_manifest_nested_past_the_recursion_limit_keeps_the_allowlist(tmp_path, clock, caplog):
    manifest, queries = _funnel_allowlist(tmp_path)
    manifest.write_text("[" * 100_000 + "]" * 100_000)
    clock.now += 2
    await queries.refresh()  # used to raise RecursionError out of the request: a 500
    assert set(queries.registered) == {sha(FUNNEL)} and "cannot be used" in caplog.text
