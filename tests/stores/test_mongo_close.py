"""Closing a MongoStore whose server is down does not wait out server selection.

PyMongo's close() ends the client's server sessions first (endSessions), selecting a server for it with
the client's serverSelectionTimeoutMS: with MongoDB down, `serve` took ~5.6 s to stop on SIGTERM instead
of ~0.1 s (measured against the wire server, stopped). The store bounds that step with a client-side
operation timeout (``pymongo.timeout``), which server selection honours: asserted here by the timeout in
force when the sessions are ended, not by a clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import _csot

from gateway.stores.mongo import store as mongo_store
from gateway.stores.mongo.store import MongoStore


async def test_close_bounds_ending_the_sessions_of_an_unreachable_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = MongoStore.connect("mongodb://127.0.0.1:1/?directConnection=true", "funnel_test", timeout_ms=3000)
    client: Any = store._client
    # A session of an earlier call, as a serving gateway always has: close() must end it.
    topology = await client._get_topology()
    monkeypatch.setattr(topology, "pop_all_sessions", lambda: [{"id": "a session"}])
    seen: list[float | None] = []
    real_end = client._end_sessions

    async def end_sessions(session_ids: list[Any]) -> None:
        seen.append(_csot.remaining())  # the bound server selection will use (None: its 3 s)
        await real_end(session_ids)

    monkeypatch.setattr(client, "_end_sessions", end_sessions)
    await store.close()
    assert len(seen) == 1
    assert seen[0] is not None and 0 < seen[0] <= mongo_store.CLOSE_TIMEOUT_S < 3
